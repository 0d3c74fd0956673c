//! The function table: `text/template` builtins, sprig v3 (minus `env`, `expandenv`, `getHostByName`, as in ESO) and
//! ESO's helpers. Each function declares Go-like parameter types so argument checks fail like Go's reflection does.
use super::Limits;
use super::alloc::{Budget, Buf, Exhausted, ListBuf, Map};
use super::value::{Overflow, Str, TooDeep, Value};

pub mod asn1;
pub mod builtins;
pub mod case;
pub mod crypto;
pub mod dates;
pub mod defaults;
pub mod dicts;
pub mod encoding;
pub mod jwk;
pub mod lists;
pub mod numeric;
pub mod pem;
pub mod pkcs12;
pub mod regex;
pub mod semver;
pub mod strings;
pub mod x509;
pub mod yaml11;
pub mod yaml_json;

/// A parameter type, named as Go prints it in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    /// `interface {}` (and the builtins' `reflect.Value`): anything, including nil.
    Any,
    Str,
    Int,
    Float,
    Bool,
    /// `map[string]interface {}`
    Map,
    /// `*semver.Version` (the argument of a version's comparison methods)
    Semver,
    /// `uint32` (`derivePassword`'s counter): only an unsigned number literal converts to it.
    Uint32,
    /// `[]interface {}` (the IP addresses and DNS names of sprig's certificate generators): a list or nil.
    AnyList,
    /// sprig's `certificate` struct (the CA of `genSignedCert`).
    Cert,
}

impl Ty {
    pub fn go_name(self) -> &'static str {
        match self {
            Ty::Any => "interface {}",
            Ty::Str => "string",
            Ty::Int => "int",
            Ty::Float => "float64",
            Ty::Bool => "bool",
            Ty::Map => "map[string]interface {}",
            Ty::Semver => "*semver.Version",
            Ty::Uint32 => "uint32",
            Ty::AnyList => "[]interface {}",
            Ty::Cert => "sprig.certificate",
        }
    }
}

/// What a function call failed with: Go reports `error calling NAME: MSG`.
#[derive(Debug, Clone)]
pub enum FnError {
    Msg(String),
    /// A resource limit (size, steps); reported without the `error calling` prefix.
    Limit(String),
}

impl FnError {
    pub fn msg(m: impl Into<String>) -> FnError {
        FnError::Msg(m.into())
    }
}

impl From<TooDeep> for FnError {
    fn from(_: TooDeep) -> FnError {
        FnError::Limit(format!("value nested deeper than {}", super::value::MAX_VALUE_DEPTH))
    }
}

impl From<Exhausted> for FnError {
    fn from(e: Exhausted) -> FnError {
        FnError::Limit(e.to_string())
    }
}

impl From<Overflow> for FnError {
    fn from(e: Overflow) -> FnError {
        match e {
            Overflow::TooDeep => TooDeep.into(),
            Overflow::Budget(e) => e.into(),
        }
    }
}

pub type FnResult = Result<Value, FnError>;

/// Per-execution state functions may use: limits, the work budget and the render's memory budget.
pub struct Ctx {
    pub limits: Limits,
    pub steps: u64,
    /// The render's memory budget: every value a function builds is charged here first (through [`Buf`],
    /// [`ListBuf`] and [`Map`], the only constructors of heap values).
    pub budget: Budget,
    /// Maps changed in place (`set`, `merge`…): the only way to build a reference cycle. Emptied after execution.
    pub mutated: Vec<std::rc::Weak<std::cell::RefCell<std::collections::BTreeMap<bytes::Bytes, Value>>>>,
}

impl Ctx {
    pub fn new(limits: Limits, budget: Budget) -> Ctx {
        Ctx {
            limits,
            steps: 0,
            budget,
            mutated: Vec::new(),
        }
    }

    /// An empty string buffer charging this render's budget.
    pub fn buf(&self) -> Buf {
        Buf::new(&self.budget)
    }

    /// A string buffer with room for `n` bytes, charged now (and refused over the per-value limit first).
    pub fn buf_with(&self, n: usize) -> Result<Buf, FnError> {
        self.check_len(n as u128)?;
        Ok(Buf::with_capacity(&self.budget, n)?)
    }

    /// An empty list builder charging this render's budget.
    pub fn list_buf(&self, capacity: usize) -> Result<ListBuf, FnError> {
        self.check_len(capacity as u128)?;
        Ok(ListBuf::with_capacity(&self.budget, capacity)?)
    }

    /// A new, empty `map[string]interface {}`.
    pub fn new_map(&self) -> Result<Map, FnError> {
        Ok(Map::new(&self.budget)?)
    }

    /// A string holding a copy of `b`, charged before it is copied. For results of bounded size made by a
    /// library call (a number, a hash, a fixed message); everything else is written into a [`Buf`].
    pub fn copy_str(&self, b: &[u8]) -> Result<Str, FnError> {
        Ok(Buf::copy_of(&self.budget, b)?.into_str()?)
    }

    /// [`Ctx::copy_str`] as a value.
    pub fn str_value(&self, b: impl AsRef<[u8]>) -> FnResult {
        Ok(Value::Str(self.copy_str(b.as_ref())?))
    }

    /// Remember a map that was changed in place.
    pub fn mutated(&mut self, m: &Map) {
        self.mutated.push(m.downgrade());
    }

    /// Break any reference cycles among the changed maps. Call when no value of the execution is needed any more:
    /// a map still alive then is kept alive only by a cycle.
    pub fn break_cycles(&mut self) {
        for w in self.mutated.drain(..) {
            if let Some(mut inner) = w.upgrade().as_ref().and_then(|m| m.try_borrow_mut().ok()) {
                let _old = std::mem::take(&mut *inner);
            }
        }
    }

    /// Spend `n` units of the execution budget.
    pub fn charge(&mut self, n: u64) -> Result<(), FnError> {
        self.steps = self.steps.saturating_add(n);
        if self.steps > self.limits.max_steps {
            return Err(FnError::Limit(format!(
                "template exceeded its budget of {} steps",
                self.limits.max_steps
            )));
        }
        Ok(())
    }

    /// Refuse to build a value of `len` bytes or elements over the size limit.
    pub fn check_len(&self, len: u128) -> Result<(), FnError> {
        if len > self.limits.max_value_len as u128 {
            return Err(FnError::Limit(format!(
                "value would exceed the limit of {} bytes",
                self.limits.max_value_len
            )));
        }
        Ok(())
    }
}

/// A function: fixed parameter types, an optional variadic element type, the implementation.
pub struct Func {
    pub params: &'static [Ty],
    pub variadic: Option<Ty>,
    pub f: fn(&mut Ctx, Vec<Value>) -> FnResult,
}

macro_rules! f {
    ($f:path, [$($p:ident),*]) => {
        Func { params: &[$(Ty::$p),*], variadic: None, f: $f }
    };
    ($f:path, [$($p:ident),*], ...$v:ident) => {
        Func { params: &[$(Ty::$p),*], variadic: Some(Ty::$v), f: $f }
    };
}

/// Look a function up by name: ESO's helpers and sprig first (sprig's `slice` replaces the builtin), then builtins.
pub fn lookup(name: &str) -> Option<Func> {
    use self::{
        builtins as b, crypto as c, dates as dt, defaults as d, dicts as m, encoding as e, jwk as j, lists as l,
        numeric as n, pem as p, pkcs12 as k, regex as r, semver as sv, strings as s, x509 as x, yaml_json as y,
    };
    Some(match name {
        // text/template builtins
        "and" => f!(b::and_or_placeholder, [Any], ...Any),
        "or" => f!(b::and_or_placeholder, [Any], ...Any),
        "not" => f!(b::not, [Any]),
        "len" => f!(b::len, [Any]),
        "index" => f!(b::index, [Any], ...Any),
        "print" => f!(b::print, [], ...Any),
        "printf" => f!(b::printf, [Str], ...Any),
        "println" => f!(b::println, [], ...Any),
        "html" => f!(b::html, [], ...Any),
        "js" => f!(b::js, [], ...Any),
        "urlquery" => f!(b::urlquery, [], ...Any),
        "call" => f!(b::call, [Any], ...Any),
        "eq" => f!(b::eq, [Any], ...Any),
        "ne" => f!(b::ne, [Any, Any]),
        "lt" => f!(b::lt, [Any, Any]),
        "le" => f!(b::le, [Any, Any]),
        "gt" => f!(b::gt, [Any, Any]),
        "ge" => f!(b::ge, [Any, Any]),

        // ESO helpers
        "pkcs12key" => f!(k::pkcs12key, [Str]),
        "pkcs12keyPass" => f!(k::pkcs12key_pass, [Str, Str]),
        "pkcs12cert" => f!(k::pkcs12cert, [Str]),
        "pkcs12certPass" => f!(k::pkcs12cert_pass, [Str, Str]),
        "pemToPkcs12" => f!(k::pem_to_pkcs12, [Str, Str]),
        "pemToPkcs12Pass" => f!(k::pem_to_pkcs12_pass, [Str, Str, Str]),
        "fullPemToPkcs12" => f!(k::full_pem_to_pkcs12, [Str, Str]),
        "fullPemToPkcs12Pass" => f!(k::full_pem_to_pkcs12_pass, [Str, Str, Str]),
        "pemTruststoreToPKCS12" => f!(k::pem_truststore_to_pkcs12, [Str]),
        "pemTruststoreToPKCS12Pass" => f!(k::pem_truststore_to_pkcs12_pass, [Str, Str]),
        "filterPEM" => f!(p::filter_pem, [Str, Str]),
        "filterCertChain" => f!(p::filter_cert_chain, [Str, Str]),
        "certSANs" => f!(p::cert_sans, [Str]),
        "jwkPublicKeyPem" => f!(j::jwk_public_key_pem, [Str]),
        "jwkPrivateKeyPem" => f!(j::jwk_private_key_pem, [Str]),
        "toYaml" => f!(y::to_yaml, [Any]),
        "fromYaml" => f!(y::from_yaml, [Str]),
        "rsaDecrypt" => f!(c::rsa_decrypt, [Str, Str, Str, Str]),

        // sprig: dates
        "ago" => f!(dt::ago, [Any]),
        "date" => f!(dt::date, [Str, Any]),
        "date_in_zone" | "dateInZone" => f!(dt::date_in_zone, [Str, Any, Str]),
        "date_modify" | "dateModify" => f!(dt::date_modify, [Str, Any]),
        "must_date_modify" | "mustDateModify" => f!(dt::must_date_modify, [Str, Any]),
        "duration" => f!(dt::duration, [Any]),
        "durationRound" => f!(dt::duration_round, [Any]),
        "htmlDate" => f!(dt::html_date, [Any]),
        "htmlDateInZone" => f!(dt::html_date_in_zone, [Any, Str]),
        "now" => f!(dt::now, []),
        "toDate" => f!(dt::to_date, [Str, Str]),
        "mustToDate" => f!(dt::must_to_date, [Str, Str]),
        "unixEpoch" => f!(dt::unix_epoch, [Any]),

        // sprig: strings
        "hello" => f!(s::hello, []),
        "abbrev" => f!(s::abbrev, [Int, Str]),
        "abbrevboth" => f!(s::abbrevboth, [Int, Int, Str]),
        "trunc" => f!(s::trunc, [Int, Str]),
        "trim" => f!(s::trim, [Str]),
        "upper" => f!(s::upper, [Str]),
        "lower" => f!(s::lower, [Str]),
        "title" => f!(s::title, [Str]),
        "untitle" => f!(s::untitle, [Str]),
        "substr" => f!(s::substr, [Int, Int, Str]),
        "repeat" => f!(s::repeat, [Int, Str]),
        "trimall" | "trimAll" => f!(s::trim_all, [Str, Str]),
        "trimSuffix" => f!(s::trim_suffix, [Str, Str]),
        "trimPrefix" => f!(s::trim_prefix, [Str, Str]),
        "nospace" => f!(s::nospace, [Str]),
        "initials" => f!(s::initials, [Str]),
        "randAlphaNum" => f!(s::rand_alpha_num, [Int]),
        "randAlpha" => f!(s::rand_alpha, [Int]),
        "randAscii" => f!(s::rand_ascii, [Int]),
        "randNumeric" => f!(s::rand_numeric, [Int]),
        "swapcase" => f!(s::swapcase, [Str]),
        "shuffle" => f!(s::shuffle, [Str]),
        "snakecase" => f!(s::snakecase, [Str]),
        "camelcase" => f!(s::camelcase, [Str]),
        "kebabcase" => f!(s::kebabcase, [Str]),
        "wrap" => f!(s::wrap, [Int, Str]),
        "wrapWith" => f!(s::wrap_with, [Int, Str, Str]),
        "contains" => f!(s::contains, [Str, Str]),
        "hasPrefix" => f!(s::has_prefix, [Str, Str]),
        "hasSuffix" => f!(s::has_suffix, [Str, Str]),
        "quote" => f!(s::quote, [], ...Any),
        "squote" => f!(s::squote, [], ...Any),
        "cat" => f!(s::cat, [], ...Any),
        "indent" => f!(s::indent, [Int, Str]),
        "nindent" => f!(s::nindent, [Int, Str]),
        "replace" => f!(s::replace, [Str, Str, Str]),
        "plural" => f!(s::plural, [Str, Str, Int]),
        "sha1sum" => f!(c::sha1sum, [Str]),
        "sha256sum" => f!(c::sha256sum, [Str]),
        "sha512sum" => f!(c::sha512sum, [Str]),
        "adler32sum" => f!(c::adler32sum, [Str]),
        "toString" => f!(s::to_string, [Any]),
        "split" => f!(s::split, [Str, Str]),
        "splitList" => f!(s::split_list, [Str, Str]),
        "splitn" => f!(s::splitn, [Str, Int, Str]),
        "toStrings" => f!(s::to_strings, [Any]),
        "join" => f!(s::join, [Str, Any]),
        "sortAlpha" => f!(s::sort_alpha, [Any]),

        // sprig: numbers
        "atoi" => f!(n::atoi, [Str]),
        "int64" => f!(n::int64, [Any]),
        "int" => f!(n::int, [Any]),
        "float64" => f!(n::float64, [Any]),
        "seq" => f!(n::seq, [], ...Int),
        "toDecimal" => f!(n::to_decimal, [Any]),
        "until" => f!(n::until, [Int]),
        "untilStep" => f!(n::until_step, [Int, Int, Int]),
        "add1" => f!(n::add1, [Any]),
        "add" => f!(n::add, [], ...Any),
        "sub" => f!(n::sub, [Any, Any]),
        "div" => f!(n::div, [Any, Any]),
        "mod" => f!(n::modulo, [Any, Any]),
        "mul" => f!(n::mul, [Any], ...Any),
        "randInt" => f!(n::rand_int, [Int, Int]),
        "add1f" => f!(n::add1f, [Any]),
        "addf" => f!(n::addf, [], ...Any),
        "subf" => f!(n::subf, [Any], ...Any),
        "divf" => f!(n::divf, [Any], ...Any),
        "mulf" => f!(n::mulf, [Any], ...Any),
        "biggest" | "max" => f!(n::max, [Any], ...Any),
        "min" => f!(n::min, [Any], ...Any),
        "maxf" => f!(n::maxf, [Any], ...Any),
        "minf" => f!(n::minf, [Any], ...Any),
        "ceil" => f!(n::ceil, [Any]),
        "floor" => f!(n::floor, [Any]),
        "round" => f!(n::round, [Any, Int], ...Float),

        // sprig: defaults, JSON, reflection
        "default" => f!(d::default, [Any], ...Any),
        "empty" => f!(d::empty, [Any]),
        "coalesce" => f!(d::coalesce, [], ...Any),
        "all" => f!(d::all, [], ...Any),
        "any" => f!(d::any, [], ...Any),
        "compact" => f!(l::compact, [Any]),
        "mustCompact" => f!(l::must_compact, [Any]),
        "fromJson" => f!(y::from_json, [Str]),
        "toJson" => f!(y::to_json, [Any]),
        "toPrettyJson" => f!(y::to_pretty_json, [Any]),
        "toRawJson" => f!(y::to_raw_json, [Any]),
        "mustFromJson" => f!(y::must_from_json, [Str]),
        "mustToJson" => f!(y::must_to_json, [Any]),
        "mustToPrettyJson" => f!(y::must_to_pretty_json, [Any]),
        "mustToRawJson" => f!(y::must_to_raw_json, [Any]),
        "ternary" => f!(d::ternary, [Any, Any, Bool]),
        "deepCopy" | "mustDeepCopy" => f!(d::deep_copy, [Any]),
        "typeOf" => f!(d::type_of, [Any]),
        "typeIs" => f!(d::type_is, [Str, Any]),
        "typeIsLike" => f!(d::type_is_like, [Str, Any]),
        "kindOf" => f!(d::kind_of, [Any]),
        "kindIs" => f!(d::kind_is, [Str, Any]),
        "deepEqual" => f!(d::deep_equal, [Any, Any]),
        "fail" => f!(d::fail, [Str]),

        // sprig: paths
        "base" | "osBase" => f!(s::path_base, [Str]),
        "dir" | "osDir" => f!(s::path_dir, [Str]),
        "clean" | "osClean" => f!(s::path_clean, [Str]),
        "ext" | "osExt" => f!(s::path_ext, [Str]),
        "isAbs" | "osIsAbs" => f!(s::path_is_abs, [Str]),

        // sprig: encoding
        "b64enc" => f!(e::b64enc, [Str]),
        "b64dec" => f!(e::b64dec, [Str]),
        "b32enc" => f!(e::b32enc, [Str]),
        "b32dec" => f!(e::b32dec, [Str]),
        "hexdec" => f!(e::hexdec, [Str]),
        "urlParse" => f!(e::url_parse, [Str]),
        "urlJoin" => f!(e::url_join, [Map]),

        // sprig: dicts
        "dict" => f!(m::dict, [], ...Any),
        "get" => f!(m::get, [Map, Str]),
        "set" => f!(m::set, [Map, Str, Any]),
        "unset" => f!(m::unset, [Map, Str]),
        "hasKey" => f!(m::has_key, [Map, Str]),
        "pluck" => f!(m::pluck, [Str], ...Map),
        "keys" => f!(m::keys, [], ...Map),
        "pick" => f!(m::pick, [Map], ...Str),
        "omit" => f!(m::omit, [Map], ...Str),
        "merge" => f!(m::merge, [Map], ...Map),
        "mergeOverwrite" => f!(m::merge_overwrite, [Map], ...Map),
        "mustMerge" => f!(m::must_merge, [Map], ...Map),
        "mustMergeOverwrite" => f!(m::must_merge_overwrite, [Map], ...Map),
        "values" => f!(m::values, [Map]),
        "dig" => f!(m::dig, [], ...Any),

        // sprig: lists
        "list" | "tuple" => f!(l::list, [], ...Any),
        "append" | "push" => f!(l::push, [Any, Any]),
        "mustAppend" | "mustPush" => f!(l::must_push, [Any, Any]),
        "prepend" => f!(l::prepend, [Any, Any]),
        "mustPrepend" => f!(l::must_prepend, [Any, Any]),
        "first" => f!(l::first, [Any]),
        "mustFirst" => f!(l::must_first, [Any]),
        "rest" => f!(l::rest, [Any]),
        "mustRest" => f!(l::must_rest, [Any]),
        "last" => f!(l::last, [Any]),
        "mustLast" => f!(l::must_last, [Any]),
        "initial" => f!(l::initial, [Any]),
        "mustInitial" => f!(l::must_initial, [Any]),
        "reverse" => f!(l::reverse, [Any]),
        "mustReverse" => f!(l::must_reverse, [Any]),
        "uniq" => f!(l::uniq, [Any]),
        "mustUniq" => f!(l::must_uniq, [Any]),
        "without" => f!(l::without, [Any], ...Any),
        "mustWithout" => f!(l::must_without, [Any], ...Any),
        "has" => f!(l::has, [Any, Any]),
        "mustHas" => f!(l::must_has, [Any, Any]),
        "slice" => f!(l::slice, [Any], ...Any),
        "mustSlice" => f!(l::must_slice, [Any], ...Any),
        "concat" => f!(l::concat, [], ...Any),
        "chunk" => f!(l::chunk, [Int, Any]),
        "mustChunk" => f!(l::must_chunk, [Int, Any]),

        // sprig: crypto
        "bcrypt" => f!(c::bcrypt, [Str]),
        "htpasswd" => f!(c::htpasswd, [Str, Str, Str]),
        "genPrivateKey" => f!(x::gen_private_key, [Str]),
        "buildCustomCert" => f!(x::build_custom_cert, [Str, Str]),
        "genCA" => f!(x::gen_ca, [Str, Int]),
        "genCAWithKey" => f!(x::gen_ca_with_key, [Str, Int, Str]),
        "genSelfSignedCert" => f!(x::gen_self_signed_cert, [Str, AnyList, AnyList, Int]),
        "genSelfSignedCertWithKey" => f!(x::gen_self_signed_cert_with_key, [Str, AnyList, AnyList, Int, Str]),
        "genSignedCert" => f!(x::gen_signed_cert, [Str, AnyList, AnyList, Int, Cert]),
        "genSignedCertWithKey" => f!(x::gen_signed_cert_with_key, [Str, AnyList, AnyList, Int, Cert, Str]),
        "randBytes" => f!(c::rand_bytes, [Int]),
        "derivePassword" => f!(c::derive_password, [Uint32, Str, Str, Str, Str]),
        "encryptAES" => f!(c::encrypt_aes, [Str, Str]),
        "decryptAES" => f!(c::decrypt_aes, [Str, Str]),
        "uuidv4" => f!(c::uuidv4, []),

        // sprig: semantic versions (Masterminds/semver v3)
        "semver" => f!(sv::semver, [Str]),
        "semverCompare" => f!(sv::semver_compare, [Str, Str]),

        // sprig: regular expressions
        "regexMatch" => f!(r::regex_match, [Str, Str]),
        "mustRegexMatch" => f!(r::must_regex_match, [Str, Str]),
        "regexFindAll" => f!(r::regex_find_all, [Str, Str, Int]),
        "mustRegexFindAll" => f!(r::must_regex_find_all, [Str, Str, Int]),
        "regexFind" => f!(r::regex_find, [Str, Str]),
        "mustRegexFind" => f!(r::must_regex_find, [Str, Str]),
        "regexReplaceAll" => f!(r::regex_replace_all, [Str, Str, Str]),
        "mustRegexReplaceAll" => f!(r::must_regex_replace_all, [Str, Str, Str]),
        "regexReplaceAllLiteral" => f!(r::regex_replace_all_literal, [Str, Str, Str]),
        "mustRegexReplaceAllLiteral" => f!(r::must_regex_replace_all_literal, [Str, Str, Str]),
        "regexSplit" => f!(r::regex_split, [Str, Str, Int]),
        "mustRegexSplit" => f!(r::must_regex_split, [Str, Str, Int]),
        "regexQuoteMeta" => f!(r::regex_quote_meta, [Str]),

        _ => return None,
    })
}

/// The bytes of a `Str` argument (the call machinery has already checked the type).
pub fn s(v: &Value) -> &[u8] {
    match v {
        Value::Str(b) => b,
        _ => b"",
    }
}

/// A `Str` argument as a shared string (for zero-copy slicing).
pub fn st(v: &Value) -> Str {
    match v {
        Value::Str(b) => b.clone(),
        _ => Str::default(),
    }
}

/// A `Str` argument as text (lossy for non-UTF-8).
pub fn text(v: &Value) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(s(v))
}

/// An `Int` argument.
pub fn i(v: &Value) -> i64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i,
        _ => 0,
    }
}

/// Take the `n`th argument out of `args`.
pub fn arg(args: &mut [Value], n: usize) -> Value {
    args.get_mut(n)
        .map(|v| std::mem::replace(v, Value::Nil))
        .unwrap_or(Value::Nil)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    #[test]
    fn self_referencing_maps_are_freed() {
        let mut ctx = Ctx::new(Limits::default(), Budget::default());
        let d = dicts::dict(&mut ctx, vec![]).unwrap();
        let Value::Map(m) = &d else { panic!("dict is a map") };
        let weak = m.downgrade();
        dicts::set(&mut ctx, vec![d.clone(), Value::from_static(b"self"), d.clone()]).unwrap();
        drop(d);
        assert!(weak.upgrade().is_some(), "the cycle keeps the map alive");
        ctx.break_cycles();
        assert!(weak.upgrade().is_none(), "breaking cycles frees it");
    }
}
