//! Lexer for Go `text/template` source, following the token rules of Go's `text/template/parse` lexer: text and
//! actions, trim markers (`{{- ` and ` -}}`), comments, and the tokens inside an action.
use super::Delims;

/// A token kind. Strings hold the raw source text of the token.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// Plain text between actions (already trimmed by neighbouring trim markers).
    Text(Vec<u8>),
    LeftDelim,
    RightDelim,
    /// A run of spaces inside an action.
    Space,
    /// `.name`
    Field(String),
    /// `$` or `$name`
    Variable(String),
    /// `.`
    Dot,
    Identifier(String),
    Keyword(Keyword),
    Bool(bool),
    Nil,
    /// A number literal, raw text.
    Number(String),
    /// A character constant, raw text with quotes.
    CharConst(String),
    /// An interpreted string literal, raw text with quotes.
    Str(String),
    /// A raw string literal, raw text with backquotes.
    RawStr(String),
    Pipe,
    LeftParen,
    RightParen,
    /// `:=`
    Declare,
    /// `=`
    Assign,
    /// Any other printable ASCII character (only `,` is meaningful).
    Char(char),
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    Block,
    Break,
    Continue,
    Define,
    Else,
    End,
    If,
    Range,
    Template,
    With,
}

/// A token with its byte offset in the source and its line (1-based).
#[derive(Debug, Clone)]
pub struct Token {
    pub tok: Tok,
    pub pos: usize,
    pub line: usize,
}

/// A lexical error, reported by Go as `template: NAME:LINE: MSG`.
#[derive(Debug, Clone)]
pub struct LexError {
    pub line: usize,
    pub msg: String,
}

const LEFT_COMMENT: &str = "/*";
const RIGHT_COMMENT: &str = "*/";

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

struct Lexer<'a> {
    src: &'a str,
    left: &'a str,
    right: &'a str,
    pos: usize,
    line: usize,
    paren_depth: usize,
    out: Vec<Token>,
}

/// Split `src` into tokens. Lexing stops at the first error, which Go reports before any parse error after it.
pub fn lex(src: &str, delims: &Delims) -> Result<Vec<Token>, LexError> {
    let left = if delims.left.is_empty() {
        "{{"
    } else {
        delims.left.as_str()
    };
    let right = if delims.right.is_empty() {
        "}}"
    } else {
        delims.right.as_str()
    };
    let mut l = Lexer {
        src,
        left,
        right,
        pos: 0,
        line: 1,
        paren_depth: 0,
        out: Vec::new(),
    };
    l.run()?;
    Ok(l.out)
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn err<T>(&self, msg: impl Into<String>) -> Result<T, LexError> {
        Err(LexError {
            line: self.line,
            msg: msg.into(),
        })
    }

    fn emit(&mut self, tok: Tok, pos: usize) {
        self.out.push(Token {
            tok,
            pos,
            line: self.line,
        });
    }

    fn advance(&mut self, n: usize) {
        let end = (self.pos + n).min(self.src.len());
        self.line += self
            .src
            .as_bytes()
            .get(self.pos..end)
            .map_or(0, |s| s.iter().filter(|&&c| c == b'\n').count());
        self.pos = end;
    }

    fn has_left_trim(s: &str) -> bool {
        let b = s.as_bytes();
        b.len() >= 2 && b[0] == b'-' && is_space(b[1])
    }

    /// At a right delimiter, possibly preceded by a trim marker: `(at, trim)`.
    fn at_right_delim(&self) -> (bool, bool) {
        let r = self.rest();
        if r.starts_with(self.right) {
            return (true, false);
        }
        let b = r.as_bytes();
        if b.len() >= 2 && is_space(b[0]) && b[1] == b'-' && r.get(2..).is_some_and(|s| s.starts_with(self.right)) {
            return (true, true);
        }
        (false, false)
    }

    fn skip_leading_space(&mut self) {
        let n = self.rest().bytes().take_while(|&c| is_space(c)).count();
        self.advance(n);
    }

    fn run(&mut self) -> Result<(), LexError> {
        loop {
            // Text up to the next left delimiter.
            let start = self.pos;
            match self.rest().find(self.left) {
                None => {
                    if self.pos < self.src.len() {
                        let text = self.rest().as_bytes().to_vec();
                        let line = self.line;
                        self.advance(self.src.len() - self.pos);
                        self.out.push(Token {
                            tok: Tok::Text(text),
                            pos: start,
                            line,
                        });
                    }
                    let pos = self.pos;
                    self.emit(Tok::Eof, pos);
                    return Ok(());
                }
                Some(x) => {
                    let delim_at = self.pos + x;
                    let after = self.src.get(delim_at + self.left.len()..).unwrap_or("");
                    let trim = Self::has_left_trim(after);
                    let mut text = self.src.get(self.pos..delim_at).unwrap_or("");
                    if trim {
                        text = text.trim_end_matches([' ', '\t', '\r', '\n']);
                    }
                    if !text.is_empty() {
                        let line = self.line;
                        self.out.push(Token {
                            tok: Tok::Text(text.as_bytes().to_vec()),
                            pos: start,
                            line,
                        });
                    }
                    self.advance(delim_at - self.pos);
                    self.left_delim(trim)?;
                }
            }
        }
    }

    fn left_delim(&mut self, trim: bool) -> Result<(), LexError> {
        let delim_pos = self.pos;
        self.advance(self.left.len());
        let marker = if trim { 2 } else { 0 };
        if self
            .src
            .get(self.pos + marker..)
            .is_some_and(|s| s.starts_with(LEFT_COMMENT))
        {
            self.advance(marker);
            return self.comment();
        }
        self.emit(Tok::LeftDelim, delim_pos);
        self.advance(marker);
        self.paren_depth = 0;
        self.inside_action()
    }

    fn comment(&mut self) -> Result<(), LexError> {
        self.advance(LEFT_COMMENT.len());
        let Some(x) = self.rest().find(RIGHT_COMMENT) else {
            return self.err("unclosed comment");
        };
        self.advance(x + RIGHT_COMMENT.len());
        let (at, trim) = self.at_right_delim();
        if !at {
            return self.err("comment ends before closing delimiter");
        }
        if trim {
            self.advance(2);
        }
        self.advance(self.right.len());
        if trim {
            self.skip_leading_space();
        }
        Ok(())
    }

    fn right_delim(&mut self, trim: bool) {
        if trim {
            self.advance(2);
        }
        let pos = self.pos;
        self.advance(self.right.len());
        self.emit(Tok::RightDelim, pos);
        if trim {
            self.skip_leading_space();
        }
    }

    fn inside_action(&mut self) -> Result<(), LexError> {
        loop {
            let (at, trim) = self.at_right_delim();
            if at {
                if self.paren_depth == 0 {
                    self.right_delim(trim);
                    return Ok(());
                }
                return self.err("unclosed left paren");
            }
            let start = self.pos;
            let Some(c) = self.rest().chars().next() else {
                return self.err("unclosed action");
            };
            match c {
                ' ' | '\t' | '\r' | '\n' => self.space(),
                '=' => {
                    self.advance(1);
                    self.emit(Tok::Assign, start);
                }
                ':' => {
                    if !self.rest().starts_with(":=") {
                        return self.err("expected :=");
                    }
                    self.advance(2);
                    self.emit(Tok::Declare, start);
                }
                '|' => {
                    self.advance(1);
                    self.emit(Tok::Pipe, start);
                }
                '"' => self.quote()?,
                '`' => self.raw_quote()?,
                '$' => self.field_or_variable(true)?,
                '\'' => self.char_const()?,
                '.' => {
                    let next = self.src.as_bytes().get(self.pos + 1).copied();
                    if next.is_some_and(|n| n.is_ascii_digit()) {
                        self.number()?;
                    } else {
                        self.field_or_variable(false)?;
                    }
                }
                '+' | '-' | '0'..='9' => self.number()?,
                c if is_alnum(c) => self.identifier()?,
                '(' => {
                    self.advance(1);
                    self.emit(Tok::LeftParen, start);
                    self.paren_depth += 1;
                }
                ')' => {
                    self.advance(1);
                    self.emit(Tok::RightParen, start);
                    if self.paren_depth == 0 {
                        return self.err("unexpected right paren");
                    }
                    self.paren_depth -= 1;
                }
                c if c.is_ascii() && !c.is_ascii_control() => {
                    self.advance(1);
                    self.emit(Tok::Char(c), start);
                }
                c => return self.err(format!("unrecognized character in action: {}", go_rune_repr(c))),
            }
        }
    }

    fn space(&mut self) {
        let start = self.pos;
        let n = self.rest().bytes().take_while(|&c| is_space(c)).count();
        // A trim-marked right delimiter starts with a space: leave that space to it.
        let end = start + n;
        let at_trim = self.src.as_bytes().get(end) == Some(&b'-')
            && self.src.get(end + 1..).is_some_and(|s| s.starts_with(self.right));
        if at_trim {
            self.advance(n - 1);
            if n == 1 {
                return;
            }
        } else {
            self.advance(n);
        }
        self.emit(Tok::Space, start);
    }

    fn at_terminator(&self) -> bool {
        let Some(c) = self.rest().chars().next() else {
            return true;
        };
        if matches!(c, ' ' | '\t' | '\r' | '\n' | '.' | ',' | '|' | ':' | ')' | '(') {
            return true;
        }
        self.rest().starts_with(self.right)
    }

    fn alnum_run(&self) -> usize {
        self.rest()
            .chars()
            .take_while(|&c| is_alnum(c))
            .map(char::len_utf8)
            .sum()
    }

    fn identifier(&mut self) -> Result<(), LexError> {
        let start = self.pos;
        let n = self.alnum_run();
        self.advance(n);
        if !self.at_terminator() {
            let c = self.rest().chars().next().unwrap_or(' ');
            return self.err(format!("bad character {}", go_rune_repr(c)));
        }
        let word = self.src.get(start..self.pos).unwrap_or("");
        let tok = match word {
            "block" => Tok::Keyword(Keyword::Block),
            "break" => Tok::Keyword(Keyword::Break),
            "continue" => Tok::Keyword(Keyword::Continue),
            "define" => Tok::Keyword(Keyword::Define),
            "else" => Tok::Keyword(Keyword::Else),
            "end" => Tok::Keyword(Keyword::End),
            "if" => Tok::Keyword(Keyword::If),
            "range" => Tok::Keyword(Keyword::Range),
            "template" => Tok::Keyword(Keyword::Template),
            "with" => Tok::Keyword(Keyword::With),
            "nil" => Tok::Nil,
            "true" => Tok::Bool(true),
            "false" => Tok::Bool(false),
            _ => Tok::Identifier(word.to_string()),
        };
        self.emit(tok, start);
        Ok(())
    }

    fn field_or_variable(&mut self, variable: bool) -> Result<(), LexError> {
        let start = self.pos;
        self.advance(1);
        if self.at_terminator() {
            if variable {
                self.emit(Tok::Variable("$".into()), start);
            } else {
                self.emit(Tok::Dot, start);
            }
            return Ok(());
        }
        let n = self.alnum_run();
        self.advance(n);
        if !self.at_terminator() {
            let c = self.rest().chars().next().unwrap_or(' ');
            return self.err(format!("bad character {}", go_rune_repr(c)));
        }
        let text = self.src.get(start..self.pos).unwrap_or("").to_string();
        if variable {
            self.emit(Tok::Variable(text), start);
        } else {
            self.emit(Tok::Field(text), start);
        }
        Ok(())
    }

    fn quote(&mut self) -> Result<(), LexError> {
        let start = self.pos;
        let b = self.src.as_bytes();
        let mut i = self.pos + 1;
        loop {
            match b.get(i) {
                None | Some(b'\n') => return self.err("unterminated quoted string"),
                Some(b'\\') => {
                    if matches!(b.get(i + 1), None | Some(b'\n')) {
                        return self.err("unterminated quoted string");
                    }
                    i += 2;
                }
                Some(b'"') => break,
                Some(_) => i += 1,
            }
        }
        self.advance(i + 1 - self.pos);
        let text = self.src.get(start..self.pos).unwrap_or("").to_string();
        self.emit(Tok::Str(text), start);
        Ok(())
    }

    fn raw_quote(&mut self) -> Result<(), LexError> {
        let start = self.pos;
        let Some(x) = self.src.get(self.pos + 1..).and_then(|s| s.find('`')) else {
            return self.err("unterminated raw quoted string");
        };
        let line = self.line;
        self.advance(x + 2);
        let text = self.src.get(start..self.pos).unwrap_or("").to_string();
        self.out.push(Token {
            tok: Tok::RawStr(text),
            pos: start,
            line,
        });
        Ok(())
    }

    fn char_const(&mut self) -> Result<(), LexError> {
        let start = self.pos;
        let b = self.src.as_bytes();
        let mut i = self.pos + 1;
        loop {
            match b.get(i) {
                None | Some(b'\n') => return self.err("unterminated character constant"),
                Some(b'\\') => {
                    if matches!(b.get(i + 1), None | Some(b'\n')) {
                        return self.err("unterminated character constant");
                    }
                    i += 2;
                }
                Some(b'\'') => break,
                Some(_) => i += 1,
            }
        }
        self.advance(i + 1 - self.pos);
        let text = self.src.get(start..self.pos).unwrap_or("").to_string();
        self.emit(Tok::CharConst(text), start);
        Ok(())
    }

    fn number(&mut self) -> Result<(), LexError> {
        let start = self.pos;
        let b = self.src.as_bytes();
        let mut i = self.pos;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let mut digits: &[u8] = b"0123456789_";
        let mut exp: &[u8] = b"eE";
        if b.get(i) == Some(&b'0') {
            match b.get(i + 1) {
                Some(b'x' | b'X') => {
                    i += 2;
                    digits = b"0123456789abcdefABCDEF_";
                    exp = b"pP";
                }
                Some(b'o' | b'O') => {
                    i += 2;
                    digits = b"01234567_";
                    exp = b"";
                }
                Some(b'b' | b'B') => {
                    i += 2;
                    digits = b"01_";
                    exp = b"";
                }
                _ => {}
            }
        }
        while b.get(i).is_some_and(|c| digits.contains(c)) {
            i += 1;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            while b.get(i).is_some_and(|c| digits.contains(c)) {
                i += 1;
            }
        }
        if !exp.is_empty() && b.get(i).is_some_and(|c| exp.contains(c)) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            while b.get(i).is_some_and(|c| b"0123456789_".contains(c)) {
                i += 1;
            }
        }
        if b.get(i) == Some(&b'i') {
            i += 1;
        }
        self.advance(i - self.pos);
        let next = self.rest().chars().next();
        if next.is_some_and(is_alnum) {
            let text = self
                .src
                .get(start..self.pos + next.map_or(0, char::len_utf8))
                .unwrap_or("");
            return self.err(format!("bad number syntax: {text:?}"));
        }
        let text = self.src.get(start..self.pos).unwrap_or("").to_string();
        self.emit(Tok::Number(text), start);
        Ok(())
    }
}

/// Go's `%#U` of a rune: `U+0021 '!'`.
pub fn go_rune_repr(c: char) -> String {
    if c.is_control() {
        format!("U+{:04X}", c as u32)
    } else {
        format!("U+{:04X} '{c}'", c as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Tok> {
        lex(src, &Delims::default())
            .unwrap()
            .into_iter()
            .map(|t| t.tok)
            .collect()
    }

    #[test]
    fn trims_and_fields() {
        assert_eq!(
            kinds("a  {{- .x.y -}}\n b"),
            vec![
                Tok::Text(b"a".to_vec()),
                Tok::LeftDelim,
                Tok::Field(".x".into()),
                Tok::Field(".y".into()),
                Tok::RightDelim,
                Tok::Text(b"b".to_vec()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn comment_is_dropped() {
        assert_eq!(
            kinds("x {{- /* c */ -}} y"),
            vec![Tok::Text(b"x".to_vec()), Tok::Text(b"y".to_vec()), Tok::Eof]
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            lex("{{ \"abc }}", &Delims::default()).unwrap_err().msg,
            "unterminated quoted string"
        );
        assert_eq!(lex("{{ .a ", &Delims::default()).unwrap_err().msg, "unclosed action");
    }
}
