//! sprig defaults, flow control and reflection helpers.
use super::{Ctx, FnError, FnResult, arg, s, text};
use crate::alloc::{Budget, ListBuf, Map};
use crate::value::{self, MAX_VALUE_DEPTH, Overflow, Value};

pub fn default(_: &mut Ctx, mut a: Vec<Value>) -> FnResult {
    let d = arg(&mut a, 0);
    match a.get(1) {
        Some(g) if !g.is_empty() => Ok(arg(&mut a, 1)),
        _ => Ok(d),
    }
}

pub fn empty(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(a[0].is_empty()))
}

pub fn coalesce(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(a.into_iter().find(|v| !v.is_empty()).unwrap_or(Value::Nil))
}

pub fn all(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(a.iter().all(|v| !v.is_empty())))
}

pub fn any(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(a.iter().any(|v| !v.is_empty())))
}

pub fn ternary(_: &mut Ctx, mut a: Vec<Value>) -> FnResult {
    let cond = matches!(a[2], Value::Bool(true));
    Ok(if cond { arg(&mut a, 0) } else { arg(&mut a, 1) })
}

/// A deep copy: maps are copied, so changing the copy does not change the original. Every map and list of the
/// copy is charged to `budget`.
pub fn copy_value(budget: &Budget, v: &Value, depth: usize) -> Result<Value, Overflow> {
    if depth > MAX_VALUE_DEPTH {
        return Err(Overflow::TooDeep);
    }
    Ok(match v {
        Value::Map(_) => {
            let out = Map::new(budget)?;
            for (k, e) in v.map_entries(budget)?.unwrap_or_default() {
                // A fresh map has no other handle: it cannot be busy.
                let _ = out.insert(budget, k, copy_value(budget, &e, depth + 1)?)?;
            }
            Value::Map(out)
        }
        Value::List(k, l) => {
            let mut out = ListBuf::with_capacity(budget, l.len())?;
            for e in l.iter() {
                out.push(copy_value(budget, e, depth + 1)?)?;
            }
            Value::List(*k, out.finish())
        }
        other => other.clone(),
    })
}

pub fn deep_copy(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(copy_value(&ctx.budget, &a[0], 0)?)
}

pub fn type_of(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::from_static(a[0].type_name().as_bytes()))
}

pub fn type_is(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(s(&a[0]) == a[1].type_name().as_bytes()))
}

pub fn type_is_like(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let t = a[1].type_name();
    let target = text(&a[0]);
    Ok(Value::Bool(target == t || format!("*{target}") == t))
}

pub fn kind_of(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::from_static(a[0].kind_name().as_bytes()))
}

pub fn kind_is(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(s(&a[0]) == a[1].kind_name().as_bytes()))
}

pub fn deep_equal(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(value::deep_equal(&a[0], &a[1], 0)?))
}

/// `fail "message"`: the message is template text, never a secret value.
pub fn fail(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Err(FnError::msg(text(&a[0]).into_owned()))
}
