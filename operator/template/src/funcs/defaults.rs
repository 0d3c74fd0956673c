//! sprig defaults, flow control and reflection helpers.
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use super::{Ctx, FnError, FnResult, arg, s, text};
use crate::value::{self, MAX_VALUE_DEPTH, TooDeep, Value};

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

/// A deep copy: maps are copied, so changing the copy does not change the original.
pub fn copy_value(v: &Value, depth: usize) -> Result<Value, TooDeep> {
    if depth > MAX_VALUE_DEPTH {
        return Err(TooDeep);
    }
    Ok(match v {
        Value::Map(m) => {
            let m = m.try_borrow().map_err(|_| TooDeep)?;
            let mut out = BTreeMap::new();
            for (k, e) in m.iter() {
                out.insert(k.clone(), copy_value(e, depth + 1)?);
            }
            Value::Map(Rc::new(RefCell::new(out)))
        }
        Value::List(k, l) => {
            let mut out = Vec::with_capacity(l.len());
            for e in l.iter() {
                out.push(copy_value(e, depth + 1)?);
            }
            Value::List(*k, Rc::new(out))
        }
        other => other.clone(),
    })
}

pub fn deep_copy(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(copy_value(&a[0], 0)?)
}

pub fn type_of(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::from_string(a[0].type_name().to_string()))
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
    Ok(Value::from_string(a[0].kind_name().to_string()))
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
