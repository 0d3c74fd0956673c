//! sprig list functions. They accept any slice (`[]interface {}`, `[]string`, `[]int`) and mostly return
//! `[]interface {}`, as sprig's reflection-based versions do.
use super::numeric::to_i64;
use super::{Ctx, FnError, FnResult, arg, i};
use crate::alloc::{List, ListBuf};
use crate::value::{ListKind, Value, deep_equal};

fn kind_name(v: &Value) -> &'static str {
    v.kind_name()
}

fn items<'a>(v: &'a Value, what: &str) -> Result<&'a List, FnError> {
    match v {
        Value::List(_, l) => Ok(l),
        Value::Nil => Err(FnError::msg(
            "runtime error: invalid memory address or nil pointer dereference",
        )),
        other => Err(FnError::msg(format!("Cannot {what} on type {}", kind_name(other)))),
    }
}

/// A `[]interface {}` of these elements.
fn any_list(ctx: &Ctx, items: &[Value]) -> FnResult {
    let mut out = ctx.list_buf(items.len())?;
    out.extend_from_slice(items)?;
    Ok(Value::List(ListKind::Any, out.finish()))
}

fn done(out: ListBuf) -> FnResult {
    Ok(Value::List(ListKind::Any, out.finish()))
}

pub fn list(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    any_list(ctx, &a)
}

fn push_impl(ctx: &Ctx, mut a: Vec<Value>, front: bool) -> FnResult {
    let v = arg(&mut a, 1);
    let l = items(&a[0], if front { "prepend" } else { "push" })?;
    let mut out = ctx.list_buf(l.len().saturating_add(1))?;
    if front {
        out.push(v)?;
        out.extend_from_slice(l)?;
    } else {
        out.extend_from_slice(l)?;
        out.push(v)?;
    }
    done(out)
}

pub fn push(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    push_impl(ctx, a, false)
}

pub fn must_push(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    push_impl(ctx, a, false)
}

pub fn prepend(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    push_impl(ctx, a, true)
}

pub fn must_prepend(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    push_impl(ctx, a, true)
}

pub fn first(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(items(&a[0], "find first")?.first().cloned().unwrap_or(Value::Nil))
}

pub fn must_first(c: &mut Ctx, a: Vec<Value>) -> FnResult {
    first(c, a)
}

pub fn last(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(items(&a[0], "find last")?.last().cloned().unwrap_or(Value::Nil))
}

pub fn must_last(c: &mut Ctx, a: Vec<Value>) -> FnResult {
    last(c, a)
}

pub fn rest(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let l = items(&a[0], "find rest")?;
    any_list(ctx, l.get(1..).unwrap_or(&[]))
}

pub fn must_rest(c: &mut Ctx, a: Vec<Value>) -> FnResult {
    rest(c, a)
}

pub fn initial(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let l = items(&a[0], "find initial")?;
    any_list(ctx, &l[..l.len().saturating_sub(1)])
}

pub fn must_initial(c: &mut Ctx, a: Vec<Value>) -> FnResult {
    initial(c, a)
}

pub fn reverse(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let l = items(&a[0], "find reverse")?;
    let mut out = ctx.list_buf(l.len())?;
    out.extend_from_slice(l)?;
    out.as_mut_slice().reverse();
    done(out)
}

pub fn must_reverse(c: &mut Ctx, a: Vec<Value>) -> FnResult {
    reverse(c, a)
}

fn contains(l: &[Value], v: &Value) -> Result<bool, FnError> {
    for e in l {
        if deep_equal(e, v, 0)? {
            return Ok(true);
        }
    }
    Ok(false)
}

pub fn uniq(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let l = items(&a[0], "find uniq")?;
    ctx.charge((l.len() as u64).saturating_mul(l.len() as u64) / 64)?;
    let mut out = ctx.list_buf(0)?;
    for e in l.iter() {
        if !contains(out.as_slice(), e)? {
            out.push(e.clone())?;
        }
    }
    done(out)
}

pub fn must_uniq(c: &mut Ctx, a: Vec<Value>) -> FnResult {
    uniq(c, a)
}

pub fn without(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let l = items(&a[0], "find without")?;
    ctx.charge((l.len() as u64).saturating_mul(a.len() as u64) / 64)?;
    let mut out = ctx.list_buf(0)?;
    for e in l.iter() {
        if !contains(&a[1..], e)? {
            out.push(e.clone())?;
        }
    }
    done(out)
}

pub fn must_without(c: &mut Ctx, a: Vec<Value>) -> FnResult {
    without(c, a)
}

pub fn has(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    match &a[1] {
        Value::Nil => Ok(Value::Bool(false)),
        Value::List(_, l) => Ok(Value::Bool(contains(l, &a[0])?)),
        other => Err(FnError::msg(format!("Cannot find has on type {}", kind_name(other)))),
    }
}

pub fn must_has(c: &mut Ctx, a: Vec<Value>) -> FnResult {
    has(c, a)
}

/// sprig `slice`: keeps the slice's element type, like `reflect.Value.Slice`.
pub fn slice(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (kind, l) = match &a[0] {
        Value::List(k, l) => (*k, l),
        other => {
            return Err(FnError::msg(format!(
                "list should be type of slice or array but {}",
                kind_name(other)
            )));
        }
    };
    if l.is_empty() {
        return Ok(Value::Nil);
    }
    let start = a.get(1).map_or(0, to_i64);
    let end = a.get(2).map_or(l.len() as i64, to_i64);
    if start < 0 || end < start || end as u64 > l.len() as u64 {
        return Err(FnError::msg("reflect.Value.Slice: slice index out of bounds"));
    }
    let part = &l[start as usize..end as usize];
    let mut out = ctx.list_buf(part.len())?;
    out.extend_from_slice(part)?;
    Ok(Value::List(kind, out.finish()))
}

pub fn must_slice(c: &mut Ctx, a: Vec<Value>) -> FnResult {
    slice(c, a)
}

pub fn concat(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut out = ctx.list_buf(0)?;
    for l in &a {
        match l {
            Value::List(_, items) => {
                ctx.check_len((out.len() + items.len()) as u128)?;
                out.extend_from_slice(items)?;
            }
            // sprig asks reflect for the kind of a nil interface: a nil dereference.
            Value::Nil => {
                return Err(FnError::msg(
                    "runtime error: invalid memory address or nil pointer dereference",
                ));
            }
            other => return Err(FnError::msg(format!("Cannot concat type {} as list", kind_name(other)))),
        }
    }
    done(out)
}

pub fn chunk(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let size = i(&a[0]);
    let l = items(&a[1], "chunk")?;
    if size <= 0 {
        return Err(FnError::msg("runtime error: integer divide by zero"));
    }
    let mut chunks = ctx.list_buf(l.len().div_ceil(size as usize))?;
    for c in l.chunks(size as usize) {
        chunks.push(any_list(ctx, c)?)?;
    }
    Ok(Value::List(ListKind::AnyList, chunks.finish()))
}

pub fn must_chunk(c: &mut Ctx, a: Vec<Value>) -> FnResult {
    chunk(c, a)
}

pub fn compact(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let l = items(&a[0], "compact")?;
    let mut out = ctx.list_buf(0)?;
    for v in l.iter().filter(|v| !v.is_empty()) {
        out.push(v.clone())?;
    }
    done(out)
}

pub fn must_compact(c: &mut Ctx, a: Vec<Value>) -> FnResult {
    compact(c, a)
}
