//! The Go-template engine for ESO `engineVersion: v2` templates.
//!
//! ESO executes every template with Go's `text/template`, `Option("missingkey=error")`, sprig v3 (minus `env`,
//! `expandenv` and `getHostByName`) and its own PKCS#12/PEM/JWK/YAML/RSA helpers, over a data context `.` that is the
//! `map[string]string` of fetched secret values. This crate re-implements that: [`lex`] and [`parse`] follow Go's
//! parser (including its parse-time checks), [`exec`] follows Go's evaluator (argument type checks, `missingkey=error`,
//! `%v` printing), and [`funcs`] holds the function table. See the "Template engine" section of `docs/design.md`.
//!
//! Errors never carry secret values: they name the template (the target key), the position and the template node, and
//! function errors are worded so that inputs and outputs do not appear.
#![forbid(unsafe_code)]
use std::collections::BTreeMap;

pub mod exec;
pub mod fmt;
pub mod funcs;
pub mod lex;
pub mod parse;
pub mod value;

pub use value::Value;

/// Action delimiters (`--template-left-delimiter` / `--template-right-delimiter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delims {
    pub left: String,
    pub right: String,
}

impl Default for Delims {
    fn default() -> Self {
        Delims {
            left: "{{".into(),
            right: "}}".into(),
        }
    }
}

/// Resource limits against hostile templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum rendered output in bytes.
    pub max_output: usize,
    /// Maximum size in bytes (or elements) of one value a function builds.
    pub max_value_len: usize,
    /// Work budget: commands evaluated, loop iterations and expensive function calls (weighted).
    pub max_steps: u64,
    /// Maximum nesting of `{{template}}` calls.
    pub max_template_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_output: 16 << 20,
            max_value_len: 16 << 20,
            max_steps: 2_000_000,
            max_template_depth: 100,
        }
    }
}

/// A template failed to parse or execute. The message follows Go's, e.g.
/// `template: tls.crt:1:3: executing "tls.crt" at <.foo>: map has no entry for key "foo"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    /// The template's name (the target key).
    pub name: String,
    /// 1-based line of the error.
    pub line: usize,
    /// Byte column within the line (Go's convention: 0-based), when known.
    pub col: Option<usize>,
    /// What kind of failure.
    pub kind: TemplateErrorKind,
    /// The complete message, Go-style.
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateErrorKind {
    Parse,
    Execute,
    /// A resource limit was hit.
    Limit,
}

/// A parsed template, ready to execute any number of times.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    src: String,
    trees: parse::Trees,
    limits: Limits,
}

impl Template {
    /// Parse `src` as template `name` (the target key; it appears in errors).
    pub fn parse(name: &str, src: &str, delims: &Delims) -> Result<Template, TemplateError> {
        let perr = |line: usize, msg: String| TemplateError {
            name: name.to_string(),
            line,
            col: None,
            kind: TemplateErrorKind::Parse,
            message: format!("template: {name}:{line}: {msg}"),
        };
        let toks = lex::lex(src, delims).map_err(|e| perr(e.line, e.msg))?;
        let trees = parse::parse(&toks, &|n| funcs::lookup(n).is_some()).map_err(|e| perr(e.line, e.msg))?;
        Ok(Template {
            name: name.to_string(),
            src: src.to_string(),
            trees,
            limits: Limits::default(),
        })
    }

    /// Replace the default [`Limits`].
    pub fn with_limits(mut self, limits: Limits) -> Template {
        self.limits = limits;
        self
    }

    /// Execute with `data` as `.` and `$`.
    pub fn execute(&self, data: &Value) -> Result<Vec<u8>, TemplateError> {
        exec::execute(&self.name, &self.src, &self.trees, data, self.limits)
    }
}

/// Parse and execute `src` over ESO's data context (`map[string]string` of `data`), with the default delimiters.
pub fn render(name: &str, src: &str, data: &BTreeMap<String, Vec<u8>>) -> Result<Vec<u8>, TemplateError> {
    Template::parse(name, src, &Delims::default())?.execute(&Value::from_data(data))
}
