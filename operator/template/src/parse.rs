//! Parser for Go `text/template`: builds the tree Go's `text/template/parse` builds, with the same checks at parse time
//! (undefined functions and variables, `break` outside `range`, misplaced `else`/`end`).
use std::collections::BTreeMap;
use std::fmt;

use super::lex::{Keyword, Tok, Token};

/// Nesting limit for control structures and parenthesised pipelines; Go has none, but a recursive parser needs one.
pub const MAX_PARSE_DEPTH: usize = 100;

/// A list of nodes (the body of a template or a control structure).
pub type List = Vec<Node>;

#[derive(Debug, Clone)]
pub enum Node {
    Text(Vec<u8>),
    Action(Pipe),
    If(Branch),
    With(Branch),
    Range(Branch),
    Template {
        pos: usize,
        name: String,
        quoted: String,
        pipe: Option<Pipe>,
    },
    Break {
        #[allow(dead_code, reason = "the position Go's tree records; no error names a break")]
        pos: usize,
    },
    Continue {
        #[allow(dead_code, reason = "the position Go's tree records; no error names a continue")]
        pos: usize,
    },
}

/// `if`, `with` and `range`: a pipeline, a body and an optional else body.
#[derive(Debug, Clone)]
pub struct Branch {
    pub pos: usize,
    pub pipe: Pipe,
    pub list: List,
    pub else_list: Option<List>,
}

#[derive(Debug, Clone)]
pub struct Pipe {
    pub pos: usize,
    /// `$x := …` or `$x = …` (`is_assign`), or `$i, $v := …` in range.
    pub decl: Vec<String>,
    pub is_assign: bool,
    pub cmds: Vec<Command>,
}

#[derive(Debug, Clone)]
pub struct Command {
    pub pos: usize,
    pub args: Vec<Operand>,
}

/// A parsed number literal, with every interpretation Go's parser computes.
#[derive(Debug, Clone)]
pub struct Number {
    pub text: String,
    pub int: Option<i64>,
    pub is_uint: bool,
    pub float: Option<f64>,
}

#[derive(Debug, Clone)]
pub enum Operand {
    /// `.a.b`
    Field {
        pos: usize,
        idents: Vec<String>,
    },
    /// `$x.a.b` (`idents[0]` is the variable name with its `$`)
    Variable {
        pos: usize,
        idents: Vec<String>,
    },
    /// `(pipe).a.b` or `term.a`
    Chain {
        pos: usize,
        node: Box<Operand>,
        fields: Vec<String>,
    },
    /// A function name.
    Ident {
        pos: usize,
        name: String,
    },
    Dot {
        pos: usize,
    },
    Nil {
        pos: usize,
    },
    Bool {
        pos: usize,
        val: bool,
    },
    Number {
        pos: usize,
        num: Number,
    },
    Str {
        pos: usize,
        quoted: String,
        /// The unquoted text, shared by every evaluation (a literal costs no allocation when used).
        text: bytes::Bytes,
    },
    Pipe(Box<Pipe>),
}

impl Operand {
    pub fn pos(&self) -> usize {
        match self {
            Operand::Field { pos, .. }
            | Operand::Variable { pos, .. }
            | Operand::Chain { pos, .. }
            | Operand::Ident { pos, .. }
            | Operand::Dot { pos }
            | Operand::Nil { pos }
            | Operand::Bool { pos, .. }
            | Operand::Number { pos, .. }
            | Operand::Str { pos, .. } => *pos,
            Operand::Pipe(p) => p.pos,
        }
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Field { idents, .. } => {
                for i in idents {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Operand::Variable { idents, .. } => write!(f, "{}", idents.join(".")),
            Operand::Chain { node, fields, .. } => {
                if let Operand::Pipe(_) = **node {
                    write!(f, "({node})")?;
                } else {
                    write!(f, "{node}")?;
                }
                for field in fields {
                    write!(f, ".{field}")?;
                }
                Ok(())
            }
            Operand::Ident { name, .. } => f.write_str(name),
            Operand::Dot { .. } => f.write_str("."),
            Operand::Nil { .. } => f.write_str("nil"),
            Operand::Bool { val, .. } => write!(f, "{val}"),
            Operand::Number { num, .. } => f.write_str(&num.text),
            Operand::Str { quoted, .. } => f.write_str(quoted),
            Operand::Pipe(p) => write!(f, "{p}"),
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            if let Operand::Pipe(_) = a {
                write!(f, "({a})")?;
            } else {
                write!(f, "{a}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            write!(
                f,
                "{} {} ",
                self.decl.join(", "),
                if self.is_assign { "=" } else { ":=" }
            )?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// A parse error: Go reports `template: NAME:LINE: MSG`.
#[derive(Debug, Clone)]
pub struct ParseError {
    pub line: usize,
    pub msg: String,
}

/// The parsed templates of one source: the main body and the `define`d/`block` templates by name.
#[derive(Debug, Clone, Default)]
pub struct Trees {
    pub main: List,
    pub defined: BTreeMap<String, List>,
}

struct Parser<'a> {
    toks: &'a [Token],
    i: usize,
    vars: Vec<String>,
    range_depth: usize,
    depth: usize,
    is_func: &'a dyn Fn(&str) -> bool,
    trees: Trees,
}

/// Parse tokens into trees. `is_func` says whether a function name is defined (Go checks this at parse time).
pub fn parse(toks: &[Token], is_func: &dyn Fn(&str) -> bool) -> Result<Trees, ParseError> {
    let mut p = Parser {
        toks,
        i: 0,
        vars: vec!["$".into()],
        range_depth: 0,
        depth: 0,
        is_func,
        trees: Trees::default(),
    };
    let main = p.top()?;
    p.trees.main = main;
    Ok(p.trees)
}

/// What ended a list of nodes.
enum ListEnd {
    Eof,
    End,
    Else(usize),
}

impl<'a> Parser<'a> {
    fn tok(&self) -> &'a Token {
        // The lexer always ends with Eof, and we never advance past it.
        let last = self.toks.len().saturating_sub(1);
        &self.toks[self.i.min(last)]
    }

    fn next(&mut self) -> &'a Token {
        let t = self.tok();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn skip_space(&mut self) {
        while matches!(self.tok().tok, Tok::Space) {
            self.next();
        }
    }

    fn next_non_space(&mut self) -> &'a Token {
        self.skip_space();
        self.next()
    }

    fn peek_non_space(&mut self) -> &'a Token {
        self.skip_space();
        self.tok()
    }

    fn err<T>(&self, msg: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            line: self.tok().line,
            msg: msg.into(),
        })
    }

    fn err_at<T>(&self, t: &Token, msg: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            line: t.line,
            msg: msg.into(),
        })
    }

    fn unexpected<T>(&self, t: &Token, context: &str) -> Result<T, ParseError> {
        self.err_at(t, format!("unexpected {} in {context}", describe(&t.tok)))
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_PARSE_DEPTH {
            return self.err(format!("template nesting deeper than {MAX_PARSE_DEPTH}"));
        }
        Ok(())
    }

    fn top(&mut self) -> Result<List, ParseError> {
        let mut list = Vec::new();
        loop {
            match &self.tok().tok {
                Tok::Eof => return Ok(list),
                Tok::LeftDelim => {
                    // `{{define` is only allowed at the top level.
                    let save = self.i;
                    self.next();
                    if matches!(self.peek_non_space().tok, Tok::Keyword(Keyword::Define)) {
                        self.next();
                        self.definition()?;
                        continue;
                    }
                    self.i = save;
                    match self.text_or_action()? {
                        Some(n) => list.push(n),
                        None => {
                            let t = self.tok();
                            return self.err_at(t, format!("unexpected {}", describe_keyword_at(self.toks, self.i)));
                        }
                    }
                }
                _ => {
                    if let Some(n) = self.text_or_action()? {
                        list.push(n);
                    }
                }
            }
        }
    }

    /// `{{define "name"}} … {{end}}`
    fn definition(&mut self) -> Result<(), ParseError> {
        let t = self.next_non_space();
        let name = match &t.tok {
            Tok::Str(q) | Tok::RawStr(q) => unquote_string(q).map_err(|m| ParseError { line: t.line, msg: m })?,
            _ => return self.unexpected(t, "define clause"),
        };
        let name = String::from_utf8_lossy(&name).into_owned();
        let t = self.next_non_space();
        if !matches!(t.tok, Tok::RightDelim) {
            return self.unexpected(t, "define clause");
        }
        let saved = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let (list, end) = self.item_list()?;
        self.vars = saved;
        if let ListEnd::Else(_) = end {
            return self.err("unexpected {{else}}");
        }
        if let ListEnd::Eof = end {
            return self.err("unexpected EOF");
        }
        self.add_tree(name, list);
        Ok(())
    }

    fn add_tree(&mut self, name: String, list: List) {
        // Go replaces an existing empty definition; a later non-empty one also wins.
        self.trees.defined.insert(name, list);
    }

    /// Nodes until `{{end}}`, `{{else}}` or EOF.
    fn item_list(&mut self) -> Result<(List, ListEnd), ParseError> {
        self.enter()?;
        let mut list = Vec::new();
        loop {
            if matches!(self.tok().tok, Tok::Eof) {
                self.depth -= 1;
                return Ok((list, ListEnd::Eof));
            }
            if matches!(self.tok().tok, Tok::LeftDelim) {
                let save = self.i;
                self.next();
                let t = self.peek_non_space();
                match t.tok {
                    Tok::Keyword(Keyword::End) => {
                        self.next();
                        let t = self.next_non_space();
                        if !matches!(t.tok, Tok::RightDelim) {
                            return self.unexpected(t, "end");
                        }
                        self.depth -= 1;
                        return Ok((list, ListEnd::End));
                    }
                    Tok::Keyword(Keyword::Else) => {
                        let pos = t.pos;
                        self.next();
                        self.depth -= 1;
                        return Ok((list, ListEnd::Else(pos)));
                    }
                    Tok::Keyword(Keyword::Define) => {
                        return self.err_at(t, "unexpected <define> in command");
                    }
                    _ => self.i = save,
                }
            }
            if let Some(n) = self.text_or_action()? {
                list.push(n);
            }
        }
    }

    fn text_or_action(&mut self) -> Result<Option<Node>, ParseError> {
        let t = self.next_non_space();
        match &t.tok {
            Tok::Text(s) => Ok(Some(Node::Text(s.clone()))),
            Tok::LeftDelim => self.action().map(Some),
            _ => self.unexpected(t, "input"),
        }
    }

    fn action(&mut self) -> Result<Node, ParseError> {
        let t = self.peek_non_space();
        match &t.tok {
            Tok::Keyword(Keyword::Block) => {
                self.next();
                self.block(t.pos)
            }
            Tok::Keyword(Keyword::Break) => {
                self.next();
                self.break_continue(t, "break").map(|pos| Node::Break { pos })
            }
            Tok::Keyword(Keyword::Continue) => {
                self.next();
                self.break_continue(t, "continue").map(|pos| Node::Continue { pos })
            }
            Tok::Keyword(Keyword::Else) => self.err_at(t, "unexpected {{else}}"),
            Tok::Keyword(Keyword::End) => self.err_at(t, "unexpected {{end}}"),
            Tok::Keyword(Keyword::If) => {
                self.next();
                self.control(t.pos, "if").map(Node::If)
            }
            Tok::Keyword(Keyword::Range) => {
                self.next();
                self.range_depth += 1;
                let r = self.control(t.pos, "range");
                self.range_depth -= 1;
                r.map(Node::Range)
            }
            Tok::Keyword(Keyword::Template) => {
                self.next();
                self.template_call(t.pos)
            }
            Tok::Keyword(Keyword::With) => {
                self.next();
                self.control(t.pos, "with").map(Node::With)
            }
            _ => {
                let pipe = self.pipeline("command", true)?;
                Ok(Node::Action(pipe))
            }
        }
    }

    fn break_continue(&mut self, kw: &Token, name: &str) -> Result<usize, ParseError> {
        let t = self.next_non_space();
        if !matches!(t.tok, Tok::RightDelim) {
            return self.unexpected(t, &format!("{{{{{name}}}}}"));
        }
        if self.range_depth == 0 {
            return self.err_at(kw, format!("{{{{{name}}}}} outside {{{{range}}}}"));
        }
        Ok(kw.pos)
    }

    /// `if`/`range`/`with` pipeline, body, optional `else`, `end`.
    fn control(&mut self, pos: usize, context: &str) -> Result<Branch, ParseError> {
        let nvars = self.vars.len();
        let r = self.control_inner(pos, context);
        self.vars.truncate(nvars);
        r
    }

    fn control_inner(&mut self, pos: usize, context: &str) -> Result<Branch, ParseError> {
        self.enter()?;
        let pipe = self.pipeline(context, true)?;
        if pipe.decl.is_empty() && context == "range" {
            // fine
        }
        let (list, end) = self.item_list()?;
        let else_list = match end {
            ListEnd::Eof => return self.err("unexpected EOF"),
            ListEnd::End => None,
            ListEnd::Else(else_pos) => {
                // `{{else if …}}` / `{{else with …}}` chain into a nested control structure.
                let t = self.peek_non_space();
                match (&t.tok, context) {
                    (Tok::Keyword(Keyword::If), "if") => {
                        self.next();
                        let nested = self.control(else_pos, "if")?;
                        Some(vec![Node::If(nested)])
                    }
                    (Tok::Keyword(Keyword::With), "with") => {
                        self.next();
                        let nested = self.control(else_pos, "with")?;
                        Some(vec![Node::With(nested)])
                    }
                    _ => {
                        let t = self.next_non_space();
                        if !matches!(t.tok, Tok::RightDelim) {
                            return self.unexpected(t, "else");
                        }
                        let (else_list, end) = self.item_list()?;
                        match end {
                            ListEnd::End => Some(else_list),
                            ListEnd::Else(_) => return self.err("expected end; found {{else}}"),
                            ListEnd::Eof => return self.err("unexpected EOF"),
                        }
                    }
                }
            }
        };
        self.depth -= 1;
        Ok(Branch {
            pos,
            pipe,
            list,
            else_list,
        })
    }

    fn template_name(&mut self, context: &str) -> Result<(String, String, usize), ParseError> {
        let t = self.next_non_space();
        match &t.tok {
            Tok::Str(q) | Tok::RawStr(q) => {
                let name = unquote_string(q).map_err(|m| ParseError { line: t.line, msg: m })?;
                Ok((String::from_utf8_lossy(&name).into_owned(), q.clone(), t.pos))
            }
            _ => self.unexpected(t, context),
        }
    }

    /// `{{template "name" pipeline}}`
    fn template_call(&mut self, _pos: usize) -> Result<Node, ParseError> {
        let (name, quoted, pos) = self.template_name("template clause")?;
        let pipe = if matches!(self.peek_non_space().tok, Tok::RightDelim) {
            self.next();
            None
        } else {
            Some(self.pipeline("template clause", true)?)
        };
        Ok(Node::Template {
            pos,
            name,
            quoted,
            pipe,
        })
    }

    /// `{{block "name" pipeline}} … {{end}}`: define the template and call it.
    fn block(&mut self, _pos: usize) -> Result<Node, ParseError> {
        let (name, quoted, pos) = self.template_name("block clause")?;
        let pipe = self.pipeline("block clause", true)?;
        let saved = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let (list, end) = self.item_list()?;
        self.vars = saved;
        match end {
            ListEnd::End => {}
            ListEnd::Else(_) => return self.err("unexpected {{else}}"),
            ListEnd::Eof => return self.err("unexpected EOF"),
        }
        self.add_tree(name.clone(), list);
        Ok(Node::Template {
            pos,
            name,
            quoted,
            pipe: Some(pipe),
        })
    }

    /// A pipeline up to `}}` (`to_delim`) or `)`.
    fn pipeline(&mut self, context: &str, to_delim: bool) -> Result<Pipe, ParseError> {
        self.enter()?;
        let start = self.peek_non_space();
        let mut pipe = Pipe {
            pos: start.pos,
            decl: Vec::new(),
            is_assign: false,
            cmds: Vec::new(),
        };
        // Declarations: `$x :=`, `$x =`, `$i, $v :=` (range only).
        if let Tok::Variable(name) = &start.tok {
            let save = self.i;
            self.next();
            let after = self.peek_non_space();
            match &after.tok {
                Tok::Declare | Tok::Assign => {
                    self.next();
                    pipe.is_assign = matches!(after.tok, Tok::Assign);
                    pipe.decl.push(name.clone());
                    if pipe.is_assign {
                        if !self.vars.contains(name) {
                            return self.err(format!("undefined variable {name:?}"));
                        }
                    } else {
                        self.vars.push(name.clone());
                    }
                }
                Tok::Char(',') if context == "range" => {
                    self.next();
                    let t = self.next_non_space();
                    let Tok::Variable(second) = &t.tok else {
                        return self.err_at(t, "range can only initialize variables");
                    };
                    let op = self.next_non_space();
                    match op.tok {
                        Tok::Declare | Tok::Assign => {
                            pipe.is_assign = matches!(op.tok, Tok::Assign);
                            pipe.decl.push(name.clone());
                            pipe.decl.push(second.clone());
                            for v in [name, second] {
                                if pipe.is_assign {
                                    if !self.vars.contains(v) {
                                        return self.err(format!("undefined variable {v:?}"));
                                    }
                                } else {
                                    self.vars.push(v.clone());
                                }
                            }
                        }
                        _ => return self.err_at(op, format!("missing := or = in {context} declaration")),
                    }
                }
                Tok::Char(',') => return self.err_at(after, format!("too many declarations in {context}")),
                _ => self.i = save,
            }
        }
        loop {
            let t = self.peek_non_space();
            match &t.tok {
                Tok::RightDelim if to_delim => {
                    self.next();
                    break;
                }
                Tok::RightParen if !to_delim => {
                    self.next();
                    break;
                }
                Tok::Bool(_)
                | Tok::CharConst(_)
                | Tok::Dot
                | Tok::Field(_)
                | Tok::Identifier(_)
                | Tok::Number(_)
                | Tok::Nil
                | Tok::RawStr(_)
                | Tok::Str(_)
                | Tok::Variable(_)
                | Tok::LeftParen => {
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return self.unexpected(t, context),
            }
        }
        if pipe.cmds.is_empty() {
            return self.err(format!("missing value for {context}"));
        }
        // Go: non-executable commands after the first one.
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if let Some(first) = c.args.first()
                && matches!(
                    first,
                    Operand::Bool { .. }
                        | Operand::Dot { .. }
                        | Operand::Nil { .. }
                        | Operand::Number { .. }
                        | Operand::Str { .. }
                )
            {
                let _ = i;
                return self.err(format!("non executable command in pipeline stage {}", i + 1));
            }
        }
        self.depth -= 1;
        Ok(pipe)
    }

    fn command(&mut self) -> Result<Command, ParseError> {
        let pos = self.peek_non_space().pos;
        let mut cmd = Command { pos, args: Vec::new() };
        loop {
            self.skip_space();
            if let Some(op) = self.operand()? {
                cmd.args.push(op);
            }
            let t = self.tok();
            match &t.tok {
                Tok::Space => {
                    self.next();
                    continue;
                }
                Tok::RightDelim | Tok::RightParen => {}
                Tok::Pipe => {
                    self.next();
                }
                _ => return self.unexpected(t, "operand"),
            }
            break;
        }
        if cmd.args.is_empty() {
            return self.err("empty command");
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> Result<Option<Operand>, ParseError> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if let Tok::Field(_) = self.tok().tok {
            let pos = self.tok().pos;
            let mut fields = Vec::new();
            while let Tok::Field(f) = &self.tok().tok {
                fields.push(f.trim_start_matches('.').to_string());
                self.next();
            }
            // Go merges the fields into a field/variable node, which then takes the chain's position.
            return Ok(Some(match node {
                Operand::Field { mut idents, .. } => {
                    idents.extend(fields);
                    Operand::Field { pos, idents }
                }
                Operand::Variable { mut idents, .. } => {
                    idents.extend(fields);
                    Operand::Variable { pos, idents }
                }
                Operand::Bool { .. }
                | Operand::Str { .. }
                | Operand::Number { .. }
                | Operand::Nil { .. }
                | Operand::Dot { .. } => {
                    return self.err(format!("unexpected . after term {:?}", node.to_string()));
                }
                other => Operand::Chain {
                    pos,
                    node: Box::new(other),
                    fields,
                },
            }));
        }
        Ok(Some(node))
    }

    fn term(&mut self) -> Result<Option<Operand>, ParseError> {
        let t = self.tok();
        let pos = t.pos;
        let op = match &t.tok {
            Tok::Identifier(name) => {
                if !(self.is_func)(name) {
                    return self.err_at(t, format!("function {name:?} not defined"));
                }
                Operand::Ident {
                    pos,
                    name: name.clone(),
                }
            }
            Tok::Dot => Operand::Dot { pos },
            Tok::Nil => Operand::Nil { pos },
            Tok::Variable(name) => {
                if !self.vars.contains(name) {
                    return self.err_at(t, format!("undefined variable {name:?}"));
                }
                Operand::Variable {
                    pos,
                    idents: vec![name.clone()],
                }
            }
            Tok::Field(f) => Operand::Field {
                pos,
                idents: vec![f.trim_start_matches('.').to_string()],
            },
            Tok::Bool(b) => Operand::Bool { pos, val: *b },
            Tok::CharConst(text) | Tok::Number(text) => {
                let num = parse_number(text, matches!(t.tok, Tok::CharConst(_)))
                    .map_err(|m| ParseError { line: t.line, msg: m })?;
                Operand::Number { pos, num }
            }
            Tok::LeftParen => {
                self.next();
                let pipe = self.pipeline("parenthesized pipeline", false)?;
                return Ok(Some(Operand::Pipe(Box::new(pipe))));
            }
            Tok::Str(q) | Tok::RawStr(q) => {
                let text = unquote_string(q).map_err(|m| ParseError { line: t.line, msg: m })?;
                Operand::Str {
                    pos,
                    quoted: q.clone(),
                    text: text.into(),
                }
            }
            _ => return Ok(None),
        };
        self.next();
        Ok(Some(op))
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Eof => "EOF".into(),
        Tok::Text(s) => format!("{:?}", String::from_utf8_lossy(s)),
        Tok::LeftDelim => "\"{{\"".into(),
        Tok::RightDelim => "\"}}\"".into(),
        Tok::Space => "space".into(),
        Tok::Field(s)
        | Tok::Variable(s)
        | Tok::Identifier(s)
        | Tok::Number(s)
        | Tok::CharConst(s)
        | Tok::Str(s)
        | Tok::RawStr(s) => {
            format!("<{s}>")
        }
        Tok::Keyword(k) => format!("<{}>", keyword_name(*k)),
        Tok::Dot => "<.>".into(),
        Tok::Bool(b) => format!("<{b}>"),
        Tok::Nil => "<nil>".into(),
        Tok::Pipe => "<|>".into(),
        Tok::LeftParen => "<(>".into(),
        Tok::RightParen => "<)>".into(),
        Tok::Declare => "\":=\"".into(),
        Tok::Assign => "\"=\"".into(),
        Tok::Char(c) => format!("{:?}", c.to_string()),
    }
}

fn describe_keyword_at(toks: &[Token], i: usize) -> String {
    toks.get(i).map(|t| describe(&t.tok)).unwrap_or_default()
}

fn keyword_name(k: Keyword) -> &'static str {
    match k {
        Keyword::Block => "block",
        Keyword::Break => "break",
        Keyword::Continue => "continue",
        Keyword::Define => "define",
        Keyword::Else => "else",
        Keyword::End => "end",
        Keyword::If => "if",
        Keyword::Range => "range",
        Keyword::Template => "template",
        Keyword::With => "with",
    }
}

/// Go's `strconv.Unquote` for `"…"` and `` `…` `` literals, producing bytes (a `\xff` escape is not UTF-8).
pub fn unquote_string(q: &str) -> Result<Vec<u8>, String> {
    let b = q.as_bytes();
    if b.len() >= 2 && b[0] == b'`' && b[b.len() - 1] == b'`' {
        // Go drops carriage returns from raw strings.
        return Ok(b[1..b.len() - 1].iter().copied().filter(|&c| c != b'\r').collect());
    }
    if b.len() < 2 || b[0] != b'"' || b[b.len() - 1] != b'"' {
        return Err("invalid syntax".into());
    }
    let mut out = Vec::new();
    let mut i = 1;
    let end = b.len() - 1;
    while i < end {
        let c = b[i];
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let (n, consumed) = unescape(&b[i..end], b'"')?;
        out.extend_from_slice(&n);
        i += consumed;
    }
    Ok(out)
}

/// Decode one backslash escape at the start of `s`: returns the bytes and how much input it used.
fn unescape(s: &[u8], quote: u8) -> Result<(Vec<u8>, usize), String> {
    let bad = || "invalid syntax".to_string();
    let c = *s.get(1).ok_or_else(bad)?;
    let simple = |b: u8| Ok((vec![b], 2));
    match c {
        b'a' => simple(7),
        b'b' => simple(8),
        b'f' => simple(12),
        b'n' => simple(b'\n'),
        b'r' => simple(b'\r'),
        b't' => simple(b'\t'),
        b'v' => simple(11),
        b'\\' => simple(b'\\'),
        b'\'' | b'"' if c == quote => simple(c),
        b'x' => {
            let h = s.get(2..4).ok_or_else(bad)?;
            let v = u8::from_str_radix(std::str::from_utf8(h).map_err(|_| bad())?, 16).map_err(|_| bad())?;
            Ok((vec![v], 4))
        }
        b'0'..=b'7' => {
            let h = s.get(1..4).ok_or_else(bad)?;
            let v = u32::from_str_radix(std::str::from_utf8(h).map_err(|_| bad())?, 8).map_err(|_| bad())?;
            let v = u8::try_from(v).map_err(|_| bad())?;
            Ok((vec![v], 4))
        }
        b'u' | b'U' => {
            let n = if c == b'u' { 4 } else { 8 };
            let h = s.get(2..2 + n).ok_or_else(bad)?;
            let v = u32::from_str_radix(std::str::from_utf8(h).map_err(|_| bad())?, 16).map_err(|_| bad())?;
            let ch = char::from_u32(v).ok_or_else(bad)?;
            Ok((ch.to_string().into_bytes(), 2 + n))
        }
        _ => Err(bad()),
    }
}

/// Go's parse of a number or character constant (`text/template/parse.newNumber`).
pub fn parse_number(text: &str, is_char: bool) -> Result<Number, String> {
    if is_char {
        let b = text.as_bytes();
        let inner = b.get(1..b.len().saturating_sub(1)).unwrap_or(&[]);
        let r: u32 = if inner.first() == Some(&b'\\') {
            let (bytes, used) = unescape(inner, b'\'').map_err(|e| e.to_string())?;
            if used != inner.len() {
                return Err(format!("malformed character constant: {text}"));
            }
            match std::str::from_utf8(&bytes).ok().and_then(|s| s.chars().next()) {
                Some(c) if bytes.len() > 1 || c.is_ascii() => c as u32,
                _ => bytes.first().copied().map_or(0, u32::from),
            }
        } else {
            let s = std::str::from_utf8(inner).map_err(|_| "invalid syntax".to_string())?;
            let mut it = s.chars();
            match (it.next(), it.next()) {
                (Some(c), None) => c as u32,
                _ => return Err(format!("malformed character constant: {text}")),
            }
        };
        return Ok(Number {
            text: text.into(),
            int: Some(i64::from(r)),
            is_uint: true,
            float: Some(f64::from(r)),
        });
    }
    if text.ends_with('i') {
        return Err(format!("illegal number syntax: {text:?}"));
    }
    let int = parse_go_int(text);
    let mut num = Number {
        text: text.into(),
        int,
        is_uint: int.is_some_and(|i| i >= 0),
        float: None,
    };
    if let Some(i) = int {
        num.float = Some(i as f64);
    } else if let Some(u) = parse_go_uint(text) {
        num.is_uint = true;
        num.float = Some(u as f64);
    } else if let Some(f) = parse_go_float(text) {
        if !text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Err(format!("integer overflow: {text:?}"));
        }
        num.float = Some(f);
        if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 {
            num.int = Some(f as i64);
            num.is_uint = f >= 0.0;
        }
    }
    if num.int.is_none() && !num.is_uint && num.float.is_none() {
        return Err(format!("illegal number syntax: {text:?}"));
    }
    Ok(num)
}

/// Split an optional sign and a base prefix; digits keep their underscores.
fn split_int(text: &str) -> (bool, u32, &str, bool) {
    let (neg, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = rest.get(..2).map(str::to_ascii_lowercase);
    match lower.as_deref() {
        Some("0x") => (neg, 16, &rest[2..], true),
        Some("0o") => (neg, 8, &rest[2..], true),
        Some("0b") => (neg, 2, &rest[2..], true),
        _ if rest.len() > 1 && rest.starts_with('0') => (neg, 8, &rest[1..], true),
        _ => (neg, 10, rest, false),
    }
}

/// Go's underscore rule: only between digits, or right after a base prefix.
fn underscores_ok(digits: &str, prefixed: bool) -> bool {
    let b = digits.as_bytes();
    if b.is_empty() {
        return false;
    }
    let mut prev_us = prefixed; // `0x_1` is allowed
    if !prefixed && b[0] == b'_' {
        return false;
    }
    for (i, &c) in b.iter().enumerate() {
        if c == b'_' {
            if i > 0 && b[i - 1] == b'_' {
                return false;
            }
            prev_us = true;
        } else {
            prev_us = false;
        }
    }
    !prev_us || !digits.ends_with('_')
}

fn parse_go_uint_parts(text: &str) -> Option<(bool, u64)> {
    let (neg, base, digits, prefixed) = split_int(text);
    if digits.contains('_') && (!underscores_ok(digits, prefixed) || digits.ends_with('_')) {
        return None;
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if clean.is_empty() {
        return None;
    }
    u64::from_str_radix(&clean, base).ok().map(|v| (neg, v))
}

fn parse_go_int(text: &str) -> Option<i64> {
    let (neg, v) = parse_go_uint_parts(text)?;
    if neg {
        if v == 1u64 << 63 {
            Some(i64::MIN)
        } else {
            i64::try_from(v).ok().map(|v| -v)
        }
    } else {
        i64::try_from(v).ok()
    }
}

fn parse_go_uint(text: &str) -> Option<u64> {
    match parse_go_uint_parts(text)? {
        (false, v) => Some(v),
        (true, _) => None,
    }
}

fn parse_go_float(text: &str) -> Option<f64> {
    let lower = text.trim_start_matches(['+', '-']).to_ascii_lowercase();
    if lower.starts_with("0x") {
        return None; // hexadecimal floats are not supported
    }
    if text.contains('_') {
        let b = text.as_bytes();
        for (i, &c) in b.iter().enumerate() {
            if c == b'_' {
                let ok = i > 0 && b[i - 1].is_ascii_digit() && b.get(i + 1).is_some_and(u8::is_ascii_digit);
                if !ok {
                    return None;
                }
            }
        }
    }
    let clean: String = text.chars().filter(|&c| c != '_').collect();
    if !clean.bytes().any(|c| c.is_ascii_digit()) {
        return None;
    }
    clean.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        let n = parse_number("0x10", false).unwrap();
        assert_eq!(n.int, Some(16));
        let n = parse_number("1_000", false).unwrap();
        assert_eq!(n.int, Some(1000));
        let n = parse_number("010", false).unwrap();
        assert_eq!(n.int, Some(8));
        let n = parse_number("1.0", false).unwrap();
        assert_eq!((n.int, n.float), (Some(1), Some(1.0)));
        let n = parse_number("1.5", false).unwrap();
        assert_eq!((n.int, n.float), (None, Some(1.5)));
        let n = parse_number("'a'", true).unwrap();
        assert_eq!(n.int, Some(97));
        assert!(parse_number("99999999999999999999", false).is_err());
        assert!(parse_number("1__0", false).is_err());
    }

    #[test]
    fn unquote() {
        assert_eq!(unquote_string(r#""a\n\x41\u00e9""#).unwrap(), "a\nAé".as_bytes());
        assert_eq!(unquote_string("`a\\n`").unwrap(), b"a\\n");
        assert!(unquote_string(r#""\q""#).is_err());
    }
}
