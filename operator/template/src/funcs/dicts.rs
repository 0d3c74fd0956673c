//! sprig dictionary functions on `map[string]interface {}` (shared and mutable, as Go maps are).
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use bytes::Bytes;

use super::strings::strval;
use super::{Ctx, FnError, FnResult, arg, s};
use crate::value::{MAX_VALUE_DEPTH, MapRef, Value};

fn map_of(v: &Value) -> Option<&MapRef> {
    match v {
        Value::Map(m) => Some(m),
        _ => None,
    }
}

fn entries(v: &Value) -> Result<Vec<(Bytes, Value)>, FnError> {
    match v {
        Value::Map(m) => {
            let m = m.try_borrow().map_err(|_| FnError::msg("concurrent map access"))?;
            Ok(m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        }
        _ => Ok(Vec::new()),
    }
}

pub fn dict(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut m = BTreeMap::new();
    let mut it = a.into_iter();
    while let Some(k) = it.next() {
        let key = Bytes::from(strval(&k)?);
        let v = it.next().unwrap_or(Value::Str(Bytes::new()));
        m.insert(key, v);
    }
    Ok(Value::new_map(m))
}

pub fn get(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(a[0].map_get(s(&a[1])).unwrap_or(Value::Str(Bytes::new())))
}

pub fn set(ctx: &mut Ctx, mut a: Vec<Value>) -> FnResult {
    let key = Bytes::copy_from_slice(s(&a[1]));
    let v = arg(&mut a, 2);
    let Some(m) = map_of(&a[0]) else {
        return Err(FnError::msg("assignment to entry in nil map"));
    };
    m.try_borrow_mut()
        .map_err(|_| FnError::msg("concurrent map writes"))?
        .insert(key, v);
    ctx.mutated(m);
    Ok(arg(&mut a, 0))
}

pub fn unset(_: &mut Ctx, mut a: Vec<Value>) -> FnResult {
    if let Some(m) = map_of(&a[0]) {
        m.try_borrow_mut()
            .map_err(|_| FnError::msg("concurrent map writes"))?
            .remove(s(&a[1]));
    }
    Ok(arg(&mut a, 0))
}

pub fn has_key(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(a[0].map_get(s(&a[1])).is_some()))
}

pub fn pluck(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let key = s(&a[0]);
    Ok(Value::list(a[1..].iter().filter_map(|d| d.map_get(key)).collect()))
}

pub fn keys(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut out = Vec::new();
    for d in &a {
        out.extend(entries(d)?.into_iter().map(|(k, _)| k));
    }
    Ok(Value::str_list(out))
}

pub fn values(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::list(entries(&a[0])?.into_iter().map(|(_, v)| v).collect()))
}

pub fn pick(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut m = BTreeMap::new();
    for k in &a[1..] {
        if let Some(v) = a[0].map_get(s(k)) {
            m.insert(Bytes::copy_from_slice(s(k)), v);
        }
    }
    Ok(Value::new_map(m))
}

pub fn omit(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let drop: Vec<&[u8]> = a[1..].iter().map(s).collect();
    let m = entries(&a[0])?
        .into_iter()
        .filter(|(k, _)| !drop.contains(&k.as_ref()))
        .collect();
    Ok(Value::new_map(m))
}

/// mergo's notion of an empty (zero) value.
fn is_zero(v: &Value) -> bool {
    v.is_empty()
}

/// mergo `Merge`/`MergeWithOverwrite` of `src` into `dst`.
fn merge_into(ctx: &mut Ctx, dst: &MapRef, src: &Value, overwrite: bool, depth: usize) -> Result<(), FnError> {
    if depth > MAX_VALUE_DEPTH {
        return Err(FnError::msg("merge nested too deeply"));
    }
    let src_entries = entries(src)?;
    for (k, sv) in src_entries {
        if matches!(sv, Value::Nil) {
            continue;
        }
        let dv = dst
            .try_borrow()
            .map_err(|_| FnError::msg("concurrent map access"))?
            .get(&k)
            .cloned();
        if let (Some(Value::Map(dm)), Value::Map(sm)) = (&dv, &sv) {
            if !Rc::ptr_eq(dm, sm) {
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
            dst.try_borrow_mut()
                .map_err(|_| FnError::msg("concurrent map writes"))?
                .insert(k, sv);
        }
    }
    Ok(())
}

fn merge_impl(ctx: &mut Ctx, a: Vec<Value>, overwrite: bool) -> FnResult {
    let dst = match &a[0] {
        Value::Map(m) => Rc::clone(m),
        _ => Rc::new(RefCell::new(BTreeMap::new())),
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
