//! sprig dictionary functions on `map[string]interface {}` (shared and mutable, as Go maps are).
use bytes::Bytes;

use super::strings::{str_list, strval};
use super::{Ctx, FnError, FnResult, arg, s, st};
use crate::alloc::{Busy, Map};
use crate::value::{ListKind, MAX_VALUE_DEPTH, Str, Value};

fn map_of(v: &Value) -> Option<&Map> {
    match v {
        Value::Map(m) => Some(m),
        _ => None,
    }
}

fn busy(_: Busy) -> FnError {
    FnError::msg("concurrent map writes")
}

/// The entries of a `map[string]interface {}` argument, copied out (charged).
fn entries(ctx: &Ctx, v: &Value) -> Result<Vec<(Bytes, Value)>, FnError> {
    match v {
        Value::Map(_) => Ok(v.map_entries(&ctx.budget)?.unwrap_or_default()),
        _ => Ok(Vec::new()),
    }
}

/// Set `key` in `m`, charged.
fn put(ctx: &Ctx, m: &Map, key: Bytes, v: Value) -> Result<(), FnError> {
    m.insert(&ctx.budget, key, v)?.map_err(busy)
}

pub fn dict(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let m = ctx.new_map()?;
    let mut it = a.into_iter();
    while let Some(k) = it.next() {
        let key = strval(ctx, &k)?;
        let v = it.next().unwrap_or(Value::Str(Str::default()));
        put(ctx, &m, key.bytes().clone(), v)?;
    }
    Ok(Value::Map(m))
}

pub fn get(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(a[0].map_get(s(&a[1])).unwrap_or(Value::Str(Str::default())))
}

pub fn set(ctx: &mut Ctx, mut a: Vec<Value>) -> FnResult {
    let key = st(&a[1]).bytes().clone();
    let v = arg(&mut a, 2);
    let Some(m) = map_of(&a[0]) else {
        return Err(FnError::msg("assignment to entry in nil map"));
    };
    put(ctx, m, key, v)?;
    let m = m.clone();
    ctx.mutated(&m);
    Ok(arg(&mut a, 0))
}

pub fn unset(_: &mut Ctx, mut a: Vec<Value>) -> FnResult {
    if let Some(m) = map_of(&a[0]) {
        m.remove(s(&a[1])).map_err(busy)?;
    }
    Ok(arg(&mut a, 0))
}

pub fn has_key(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(a[0].map_get(s(&a[1])).is_some()))
}

pub fn pluck(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let key = s(&a[0]);
    let mut out = ctx.list_buf(0)?;
    for v in a[1..].iter().filter_map(|d| d.map_get(key)) {
        out.push(v)?;
    }
    Ok(Value::List(ListKind::Any, out.finish()))
}

pub fn keys(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut out = Vec::new();
    for d in &a {
        out.extend(entries(ctx, d)?.into_iter().map(|(k, _)| Str::shared(k)));
    }
    str_list(ctx, out)
}

pub fn values(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let e = entries(ctx, &a[0])?;
    let mut out = ctx.list_buf(e.len())?;
    for (_, v) in e {
        out.push(v)?;
    }
    Ok(Value::List(ListKind::Any, out.finish()))
}

pub fn pick(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let m = ctx.new_map()?;
    for k in &a[1..] {
        if let Some(v) = a[0].map_get(s(k)) {
            put(ctx, &m, st(k).bytes().clone(), v)?;
        }
    }
    Ok(Value::Map(m))
}

pub fn omit(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let drop: Vec<&[u8]> = a[1..].iter().map(s).collect();
    let m = ctx.new_map()?;
    for (k, v) in entries(ctx, &a[0])? {
        if !drop.contains(&k.as_ref()) {
            put(ctx, &m, k, v)?;
        }
    }
    Ok(Value::Map(m))
}

/// mergo's notion of an empty (zero) value.
fn is_zero(v: &Value) -> bool {
    v.is_empty()
}

/// mergo `Merge`/`MergeWithOverwrite` of `src` into `dst`.
fn merge_into(ctx: &mut Ctx, dst: &Map, src: &Value, overwrite: bool, depth: usize) -> Result<(), FnError> {
    if depth > MAX_VALUE_DEPTH {
        return Err(FnError::msg("merge nested too deeply"));
    }
    let src_entries = entries(ctx, src)?;
    for (k, sv) in src_entries {
        if matches!(sv, Value::Nil) {
            continue;
        }
        let dv = dst
            .borrow()
            .map_err(|_| FnError::msg("concurrent map access"))?
            .get(&k)
            .cloned();
        if let (Some(Value::Map(dm)), Value::Map(sm)) = (&dv, &sv) {
            if !Map::ptr_eq(dm, sm) {
                merge_into(ctx, dm, &sv, overwrite, depth + 1)?;
                ctx.mutated(dm);
            }
            continue;
        }
        let set = match &dv {
            None => true,
            Some(d) => overwrite || is_zero(d),
        };
        if set {
            put(ctx, dst, k, sv)?;
        }
    }
    Ok(())
}

fn merge_impl(ctx: &mut Ctx, a: Vec<Value>, overwrite: bool) -> FnResult {
    let dst = match &a[0] {
        Value::Map(m) => m.clone(),
        _ => ctx.new_map()?,
    };
    for src in &a[1..] {
        merge_into(ctx, &dst, src, overwrite, 0)?;
    }
    ctx.mutated(&dst);
    Ok(Value::Map(dst))
}

pub fn merge(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    merge_impl(ctx, a, false)
}

pub fn must_merge(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    merge_impl(ctx, a, false)
}

pub fn merge_overwrite(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    merge_impl(ctx, a, true)
}

pub fn must_merge_overwrite(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    merge_impl(ctx, a, true)
}

/// `dig "a" "b" default dict`.
pub fn dig(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    if a.len() < 3 {
        return Err(FnError::msg("dig needs at least three arguments"));
    }
    let n = a.len();
    let mut cur = a[n - 1].clone();
    let def = a[n - 2].clone();
    for (idx, k) in a[..n - 2].iter().enumerate() {
        let Value::Str(key) = k else {
            return Err(FnError::msg(format!(
                "interface conversion: interface {{}} is {}, not string",
                k.type_name()
            )));
        };
        if !matches!(cur, Value::Map(_)) {
            return Err(FnError::msg(format!(
                "interface conversion: interface {{}} is {}, not map[string]interface {{}}",
                cur.type_name()
            )));
        }
        match cur.map_get(key) {
            None => return Ok(def),
            Some(v) => {
                if idx + 1 == n - 2 {
                    return Ok(v);
                }
                cur = v;
            }
        }
    }
    Ok(def)
}
