//! The Go-template engine for External Secrets Operator (ESO) `engineVersion: v2` templates.
//!
//! ESO executes every template with Go's `text/template`, `Option("missingkey=error")`, sprig v3 (minus `env`,
//! `expandenv` and `getHostByName`) and its own PKCS#12/PEM/JWK/YAML/RSA helpers, over a data context `.` that is the
//! `map[string]string` of fetched secret values. This crate re-implements that, byte for byte: the lexer and parser
//! follow Go's (including its parse-time checks), the evaluator follows Go's (argument type checks,
//! `missingkey=error`, `%v` printing), and the function table holds the builtins, sprig and ESO's helpers.
//!
//! The API is small:
//! - [`Template::parse`] a source under a name (the target key; it appears in errors) with [`Delims`];
//! - [`Template::execute_in`] it over a data context ([`Value::from_data_in`], or [`Value::from_nested`] for two
//!   levels) and a [`Budget`], the memory one render may allocate, shared by all the templates of that render
//!   ([`Template::execute`] gives one template a budget of its own);
//! - per-template [`Limits`] (output size, value size, work steps, `{{template}}` nesting);
//! - every failure is a [`TemplateError`] with Go's message, the position and a [`TemplateErrorKind`].
//!
//! ```
//! use std::collections::BTreeMap;
//! use syncret_template::{Budget, Delims, Template, Value};
//!
//! let data = BTreeMap::from([
//!     ("user".to_string(), b"app".to_vec()),
//!     ("password".to_string(), b"s3cr3t".to_vec()),
//! ]);
//! let budget = Budget::default();
//! let dot = Value::from_data_in(&data, &budget).unwrap();
//! let t = Template::parse(
//!     "DATABASE_URL",
//!     "postgres://{{ .user }}:{{ .password | urlquery }}@db:5432/app",
//!     &Delims::default(),
//! )
//! .unwrap();
//! assert_eq!(t.execute_in(&dot, &budget).unwrap(), b"postgres://app:s3cr3t@db:5432/app");
//!
//! // Errors name the template and position, never the data.
//! let e = Template::parse("tls.crt", "{{ .missing }}", &Delims::default())
//!     .unwrap()
//!     .execute_in(&dot, &budget)
//!     .unwrap_err();
//! assert_eq!(
//!     e.message,
//!     r#"template: tls.crt:1:3: executing "tls.crt" at <.missing>: map has no entry for key "missing""#
//! );
//! ```
//!
//! Untrusted templates are bounded: each template by [`Limits`], and each render by its [`Budget`], which every
//! value the engine builds is charged against before it is allocated (see [`alloc`]). No input makes the engine
//! panic; errors never carry secret values: they name the template (the target key), the position and the
//! template node, and function errors are worded so that inputs and outputs do not appear. See the "Template
//! engine" section of syncret's `docs/design.md`.
#![forbid(unsafe_code)]
use std::collections::BTreeMap;

pub mod alloc;
mod exec;
mod fmt;
mod funcs;
mod lex;
mod parse;
pub mod value;

pub use alloc::{Budget, DEFAULT_BUDGET, Exhausted};
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

/// A parsed template, ready to execute any number of times (also from several threads: it holds no values).
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    src: String,
    trees: parse::Trees,
    limits: Limits,
}

impl Template {
    /// Parse `src` as template `name` (the target key; it appears in errors). As Go's parser does, this fails on
    /// syntax errors and on calls of functions that do not exist (so a function syncret leaves out fails here,
    /// before anything renders).
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

    /// The template's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Execute with `data` as `.` and `$`, charging every value built (and the output) to `budget`.
    pub fn execute_in(&self, data: &Value, budget: &Budget) -> Result<Vec<u8>, TemplateError> {
        exec::execute(&self.name, &self.src, &self.trees, data, self.limits, budget)
    }

    /// Execute with a budget of its own ([`DEFAULT_BUDGET`]).
    pub fn execute(&self, data: &Value) -> Result<Vec<u8>, TemplateError> {
        self.execute_in(data, &Budget::default())
    }
}

impl TemplateError {
    /// The error of a data context that does not fit the budget (`name` names what was being built).
    pub fn exhausted(name: &str, e: Exhausted) -> TemplateError {
        TemplateError {
            name: name.to_string(),
            line: 1,
            col: None,
            kind: TemplateErrorKind::Limit,
            message: format!("template: {name}: {e}"),
        }
    }
}

/// Parse and execute `src` over ESO's data context (`map[string]string` of `data`), with the default delimiters
/// and a budget of its own ([`DEFAULT_BUDGET`]).
pub fn render(name: &str, src: &str, data: &BTreeMap<String, Vec<u8>>) -> Result<Vec<u8>, TemplateError> {
    let budget = Budget::default();
    let dot = Value::from_data_in(data, &budget).map_err(|e| TemplateError::exhausted(name, e))?;
    Template::parse(name, src, &Delims::default())?.execute_in(&dot, &budget)
}
