//! sprig's `snakecase`, `kebabcase` and `camelcase`, which use huandu/xstrings' word rules: words are runs of
//! connectors (`-`, `_`, spaces), punctuation, an upper-case letter with its lower-case tail (or an acronym), lower-case
//! letters, digits, or anything else; numbers glue to neighbouring words in specific ways.

fn is_connector(c: char) -> bool {
    c == '-' || c == '_' || c.is_whitespace()
}

/// Go's `unicode.IsPunct` (Unicode category P) for ASCII; outside ASCII, the general punctuation blocks.
fn is_punct(c: char) -> bool {
    if c.is_ascii() {
        return matches!(
            c,
            '!' | '"'
                | '#'
                | '%'
                | '&'
                | '\''
                | '('
                | ')'
                | '*'
                | ','
                | '-'
                | '.'
                | '/'
                | ':'
                | ';'
                | '?'
                | '@'
                | '['
                | '\\'
                | ']'
                | '_'
                | '{'
                | '}'
        );
    }
    matches!(c, '\u{a1}' | '\u{a7}' | '\u{ab}' | '\u{b6}' | '\u{b7}' | '\u{bb}' | '\u{bf}' | '\u{2010}'..='\u{2027}' | '\u{2030}'..='\u{205e}' | '\u{3001}'..='\u{3003}' | '\u{3008}'..='\u{3011}')
}

fn is_alphabet(c: char) -> bool {
    c.is_alphabetic()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Word {
    Invalid,
    Number,
    Upper,
    Alphabet,
    Connector,
    Punct,
    Other,
}

/// xstrings' `nextWord`: the kind of the next word, the word, the rest.
fn next_word(s: &str) -> (Word, &str, &str) {
    let mut it = s.char_indices();
    let Some((_, first)) = it.next() else {
        return (Word::Invalid, "", "");
    };
    let end_while = |from: usize, pred: &dyn Fn(char) -> bool| -> usize {
        s[from..]
            .char_indices()
            .find(|&(_, c)| !pred(c))
            .map_or(s.len(), |(i, _)| from + i)
    };
    let first_len = first.len_utf8();
    let (wt, end) = if is_connector(first) {
        (Word::Connector, end_while(first_len, &is_connector))
    } else if is_punct(first) {
        (Word::Punct, end_while(first_len, &is_punct))
    } else if first.is_uppercase() {
        match s[first_len..].chars().next() {
            None => (Word::Upper, first_len),
            Some(c) if c.is_uppercase() => {
                // An acronym: all capitals, except the last one when a lower-case letter follows it.
                let end = end_while(first_len, &|c: char| c.is_uppercase());
                match s[end..].chars().next() {
                    Some(n) if is_alphabet(n) => {
                        let last = s[..end].chars().next_back().map_or(0, char::len_utf8);
                        (Word::Upper, end - last)
                    }
                    _ => (Word::Upper, end),
                }
            }
            Some(c) if is_alphabet(c) => (
                Word::Upper,
                end_while(first_len, &|c: char| is_alphabet(c) && !c.is_uppercase()),
            ),
            Some(_) => (Word::Upper, first_len),
        }
    } else if is_alphabet(first) {
        (
            Word::Alphabet,
            end_while(first_len, &|c: char| is_alphabet(c) && !c.is_uppercase()),
        )
    } else if first.is_numeric() {
        (Word::Number, end_while(first_len, &char::is_numeric))
    } else {
        (
            Word::Other,
            end_while(first_len, &|c: char| {
                !(is_connector(c) || is_alphabet(c) || c.is_numeric() || is_punct(c))
            }),
        )
    };
    (wt, &s[..end], &s[end..])
}

fn to_lower(buf: &mut String, wt: Word, word: &str, connector: char) {
    if wt != Word::Upper && wt != Word::Connector {
        buf.push_str(word);
        return;
    }
    for c in word.chars() {
        if is_connector(c) {
            buf.push(connector);
        } else if c.is_uppercase() {
            buf.extend(c.to_lowercase());
        } else {
            buf.push(c);
        }
    }
}

/// xstrings' `camelCaseToLowerCase` (`ToSnakeCase` with `_`, `ToKebabCase` with `-`).
pub fn to_lower_case(s: &str, connector: char) -> String {
    let mut buf = String::with_capacity(s.len() + 8);
    if s.is_empty() {
        return buf;
    }
    let (mut wt, mut word, mut rest) = next_word(s);
    while !rest.is_empty() {
        if wt != Word::Connector {
            to_lower(&mut buf, wt, word, connector);
        }
        let (prev, last) = (wt, word);
        (wt, word, rest) = next_word(rest);
        match prev {
            Word::Number => {
                while wt == Word::Alphabet || wt == Word::Number {
                    to_lower(&mut buf, wt, word, connector);
                    (wt, word, rest) = next_word(rest);
                }
                if wt != Word::Invalid && wt != Word::Punct && wt != Word::Connector {
                    buf.push(connector);
                }
            }
            Word::Connector => to_lower(&mut buf, prev, last, connector),
            Word::Punct => {}
            _ => {
                if wt != Word::Number {
                    if wt != Word::Connector && wt != Word::Punct {
                        buf.push(connector);
                    }
                    continue;
                }
                if rest.is_empty() {
                    continue;
                }
                let num = word;
                (wt, word, rest) = next_word(rest);
                if wt != Word::Alphabet {
                    to_lower(&mut buf, Word::Number, num, connector);
                    if wt != Word::Connector && wt != Word::Punct {
                        buf.push(connector);
                    }
                    continue;
                }
                buf.push(connector);
                to_lower(&mut buf, Word::Number, num, connector);
                while wt == Word::Alphabet || wt == Word::Number {
                    to_lower(&mut buf, wt, word, connector);
                    (wt, word, rest) = next_word(rest);
                }
                if wt != Word::Invalid && wt != Word::Connector && wt != Word::Punct {
                    buf.push(connector);
                }
            }
        }
    }
    to_lower(&mut buf, wt, word, connector);
    buf
}

fn upper(c: char) -> char {
    let mut it = c.to_uppercase();
    match (it.next(), it.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

fn lower(c: char) -> char {
    let mut it = c.to_lowercase();
    match (it.next(), it.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

/// xstrings' `ToPascalCase` (sprig's `camelcase`).
pub fn to_pascal_case(s: &str) -> String {
    let mut buf = String::with_capacity(s.len());
    let mut chars = s.chars();
    let mut first_upper = false;
    let mut r0 = '\0';
    let mut found = false;
    for c in chars.by_ref() {
        r0 = c;
        if !is_connector(c) {
            first_upper = c.is_uppercase();
            r0 = upper(c);
            found = true;
            break;
        }
        buf.push(c);
    }
    if !found {
        // xstrings writes the last rune once more when the text is only connectors (`-` → `--`).
        if !s.is_empty() {
            buf.push(r0);
        }
        return buf;
    }
    for c in chars {
        let r1 = r0;
        r0 = c;
        if is_connector(r0) && is_connector(r1) {
            buf.push(r1);
            continue;
        }
        if is_connector(r1) {
            first_upper = r0.is_uppercase();
            r0 = upper(r0);
        } else {
            if first_upper {
                if r0.is_uppercase() {
                    r0 = lower(r0);
                } else {
                    first_upper = false;
                }
            }
            buf.push(r1);
        }
    }
    buf.push(r0);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_xstrings() {
        assert_eq!(to_lower_case("FirstName", '_'), "first_name");
        assert_eq!(to_lower_case("HTTPServer", '_'), "http_server");
        assert_eq!(to_lower_case("x,y,z", '_'), "x,y,z");
        assert_eq!(to_lower_case("db.example.com", '-'), "db.example.com");
        assert_eq!(to_pascal_case("first_name"), "FirstName");
        assert_eq!(to_pascal_case("1.5"), "1.5");
        assert_eq!(to_pascal_case("-"), "--");
        assert_eq!(to_pascal_case(" \n"), " \n\n");
    }
}
