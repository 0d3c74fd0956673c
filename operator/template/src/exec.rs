//! Evaluator, following Go's `text/template` `exec.go` with `missingkey=error`: the same evaluation order, argument
//! checks and error texts, and the same "current node" bookkeeping that decides which node an error message names.
use super::alloc::{Budget, Buf, Str};
use super::funcs::semver;
use super::funcs::{self, Ctx, FnError, Func, Ty};
use super::parse::{Branch, Command, List, Node, Number, Operand, Pipe, Trees};
use super::value::{self, ListKind, Overflow, Value};
use super::{Limits, TemplateError, TemplateErrorKind};

/// Where evaluation is: the node Go's `state.at` last recorded, for error context.
#[derive(Clone, Copy)]
enum At<'t> {
    None,
    Op(&'t Operand),
    Pipe(&'t Pipe),
    Cmd(&'t Command),
    Action(&'t Pipe),
    Branch(&'static str, &'t Branch),
    Template(usize, &'t str),
}

impl At<'_> {
    fn pos(&self) -> Option<usize> {
        match self {
            At::None => None,
            At::Op(o) => Some(o.pos()),
            At::Pipe(p) | At::Action(p) => Some(p.pos),
            At::Cmd(c) => Some(c.pos),
            At::Branch(_, b) => Some(b.pos),
            At::Template(p, _) => Some(*p),
        }
    }

    fn context(&self) -> String {
        match self {
            At::None => String::new(),
            At::Op(o) => o.to_string(),
            At::Pipe(p) => p.to_string(),
            At::Cmd(c) => c.to_string(),
            At::Action(p) => format!("{{{{{p}}}}}"),
            At::Branch(kw, b) => format!("{{{{{kw} {}}}}}", b.pipe),
            At::Template(_, q) => format!("{{{{template {q}}}}}"),
        }
    }
}

/// An execution error before it is located.
struct Fail {
    msg: String,
    limit: bool,
}

type R<T> = Result<T, Fail>;

enum Flow {
    Normal,
    Break,
    Continue,
}

struct State<'t> {
    trees: &'t Trees,
    exec_name: &'t str,
    vars: Vec<(String, Value)>,
    at: At<'t>,
    /// The output, charged to the render's budget as it grows.
    out: Buf,
    ctx: Ctx,
    depth: usize,
    /// Dot is an element of an `interface {}` container (inside `range` over `[]interface {}` or a
    /// `map[string]interface {}`).
    dot_iface: bool,
    /// Set when the error has been located (line/col) already.
    located: Option<(Option<usize>, String, String)>,
}

/// Execute `trees` (parsed from `src` under `name`) with `data` as dot, charging `budget` for every value built.
pub fn execute(
    name: &str,
    src: &str,
    trees: &Trees,
    data: &Value,
    limits: Limits,
    budget: &Budget,
) -> Result<Vec<u8>, TemplateError> {
    let mut st = State {
        trees,
        exec_name: name,
        vars: vec![("$".into(), data.clone())],
        at: At::None,
        out: Buf::new(budget),
        ctx: Ctx::new(limits, budget.clone()),
        depth: 0,
        dot_iface: false,
        located: None,
    };
    let res = st.walk_list(data, &trees.main);
    let out = std::mem::replace(&mut st.out, Buf::new(budget));
    // Maps changed in place may form cycles (`set $d "self" $d`); break them so nothing leaks.
    st.vars.clear();
    st.ctx.break_cycles();
    match res.and_then(|_| {
        out.into_vec().map_err(|e| Fail {
            msg: e.to_string(),
            limit: true,
        })
    }) {
        Ok(out) => Ok(out),
        Err(f) => {
            let (pos, context, exec_name) = st.located.unwrap_or((None, String::new(), name.to_string()));
            Err(make_error(name, src, pos, &context, &exec_name, f))
        }
    }
}

fn make_error(name: &str, src: &str, pos: Option<usize>, context: &str, exec_name: &str, f: Fail) -> TemplateError {
    let kind = if f.limit {
        TemplateErrorKind::Limit
    } else {
        TemplateErrorKind::Execute
    };
    match pos {
        None => TemplateError {
            name: name.into(),
            line: 1,
            col: None,
            kind,
            message: format!("template: {exec_name}: {}", f.msg),
        },
        Some(pos) => {
            let before = src.as_bytes().get(..pos).unwrap_or(src.as_bytes());
            let line = 1 + before.iter().filter(|&&c| c == b'\n').count();
            let col = match before.iter().rposition(|&c| c == b'\n') {
                Some(nl) => pos - (nl + 1),
                None => pos,
            };
            TemplateError {
                name: name.into(),
                line,
                col: Some(col),
                kind,
                message: format!(
                    "template: {name}:{line}:{col}: executing {exec_name:?} at <{context}>: {}",
                    f.msg
                ),
            }
        }
    }
}

/// `Some(final)` is the value piped in from the previous command.
type Final = Option<Value>;

impl<'t> State<'t> {
    fn at(&mut self, at: At<'t>) {
        self.at = at;
    }

    /// Fail at the current node.
    fn fail<T>(&mut self, msg: impl Into<String>) -> R<T> {
        self.located = Some((self.at.pos(), self.at.context(), self.exec_name.to_string()));
        Err(Fail {
            msg: msg.into(),
            limit: false,
        })
    }

    fn fail_limit<T>(&mut self, msg: impl Into<String>) -> R<T> {
        self.located = Some((self.at.pos(), self.at.context(), self.exec_name.to_string()));
        Err(Fail {
            msg: msg.into(),
            limit: true,
        })
    }

    fn step(&mut self, n: u64) -> R<()> {
        match self.ctx.charge(n) {
            Ok(()) => Ok(()),
            Err(FnError::Limit(m) | FnError::Msg(m)) => self.fail_limit(m),
        }
    }

    /// Fail at the current node with what a function or the budget reported.
    fn fail_fn<T>(&mut self, e: impl Into<FnError>) -> R<T> {
        match e.into() {
            FnError::Limit(m) => self.fail_limit(m),
            FnError::Msg(m) => self.fail(m),
        }
    }

    fn write(&mut self, b: &[u8]) -> R<()> {
        if self.out.len().saturating_add(b.len()) > self.ctx.limits.max_output {
            return self.fail_limit(format!(
                "output exceeds the limit of {} bytes",
                self.ctx.limits.max_output
            ));
        }
        self.out.extend_from_slice(b);
        if let Err(e) = self.out.ok() {
            return self.fail_fn(e);
        }
        Ok(())
    }

    fn walk_list(&mut self, dot: &Value, list: &'t List) -> R<Flow> {
        for node in list {
            match self.walk(dot, node)? {
                Flow::Normal => {}
                f => return Ok(f),
            }
        }
        Ok(Flow::Normal)
    }

    fn walk(&mut self, dot: &Value, node: &'t Node) -> R<Flow> {
        match node {
            Node::Text(t) => {
                self.write(t)?;
            }
            Node::Action(pipe) => {
                self.at(At::Action(pipe));
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    self.at(At::Action(pipe));
                    self.print_value(&v)?;
                }
            }
            Node::If(b) => return self.walk_if_with(dot, b, false),
            Node::With(b) => return self.walk_if_with(dot, b, true),
            Node::Range(b) => return self.walk_range(dot, b),
            Node::Template {
                pos,
                name,
                quoted,
                pipe,
            } => {
                self.at(At::Template(*pos, quoted));
                self.walk_template(dot, *pos, name, quoted, pipe.as_ref())?;
            }
            Node::Break { .. } => return Ok(Flow::Break),
            Node::Continue { .. } => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn print_value(&mut self, v: &Value) -> R<()> {
        let text = match v {
            Value::Nil => Str::from_static(b"<no value>"),
            v => match v.to_go_string(&self.ctx.budget) {
                Ok(s) => s,
                Err(Overflow::TooDeep) => {
                    return self.fail_limit(format!("value nested deeper than {}", value::MAX_VALUE_DEPTH));
                }
                Err(Overflow::Budget(e)) => return self.fail_fn(e),
            },
        };
        self.write(&text)
    }

    fn walk_if_with(&mut self, dot: &Value, b: &'t Branch, with: bool) -> R<Flow> {
        let mark = self.vars.len();
        self.at(At::Branch(if with { "with" } else { "if" }, b));
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let flow = if val.truthy() {
            if with {
                let saved = std::mem::replace(&mut self.dot_iface, false);
                let r = self.walk_list(&val, &b.list);
                self.dot_iface = saved;
                r
            } else {
                self.walk_list(dot, &b.list)
            }
        } else if let Some(e) = &b.else_list {
            self.walk_list(dot, e)
        } else {
            Ok(Flow::Normal)
        };
        self.vars.truncate(mark);
        flow
    }

    fn walk_range(&mut self, dot: &Value, r: &'t Branch) -> R<Flow> {
        self.at(At::Branch("range", r));
        let outer = self.vars.len();
        let val = self.eval_pipeline(dot, &r.pipe)?;
        let mark = self.vars.len();
        let ndecl = r.pipe.decl.len();
        let mut ran = false;
        let elem_iface = matches!(val, Value::List(ListKind::Any | ListKind::AnyList, _) | Value::Map(_));
        let items: Box<dyn Iterator<Item = (Value, Value)>> = match &val {
            Value::Int(n) | Value::Int64(n) => {
                if ndecl > 1 {
                    let s = value_string(&val);
                    return self.fail(format!("can't use {s} to iterate over more than one variable"));
                }
                let int64 = matches!(val, Value::Int64(_));
                let n = (*n).max(0);
                Box::new((0..n).map(move |i| (Value::Nil, if int64 { Value::Int64(i) } else { Value::Int(i) })))
            }
            Value::Uint64(n) => {
                if ndecl > 1 {
                    return self.fail(format!("can't use {n} to iterate over more than one variable"));
                }
                Box::new((0..*n).map(|i| (Value::Nil, Value::Uint64(i))))
            }
            Value::List(_, l) => {
                let l = l.clone();
                Box::new((0..l.len()).map(move |i| (Value::Int(i as i64), l.get(i).cloned().unwrap_or(Value::Nil))))
            }
            Value::Map(_) | Value::StrMap(_) => {
                let entries = match val.map_entries(&self.ctx.budget) {
                    Ok(e) => e.unwrap_or_default(),
                    Err(e) => return self.fail_fn(e),
                };
                Box::new(entries.into_iter().map(|(k, v)| (Value::Str(Str::shared(k)), v)))
            }
            Value::Nil => Box::new(std::iter::empty()),
            other => {
                let s = value_string(other);
                return self.fail(format!("range can't iterate over {s}"));
            }
        };
        for (index, elem) in items {
            ran = true;
            self.step(1)?;
            self.set_range_vars(r, index, elem.clone())?;
            let saved_iface = std::mem::replace(&mut self.dot_iface, elem_iface);
            let flow = self.walk_list(&elem, &r.list);
            self.dot_iface = saved_iface;
            self.vars.truncate(mark);
            match flow? {
                Flow::Break => break,
                Flow::Normal | Flow::Continue => {}
            }
        }
        let mut flow = Flow::Normal;
        if !ran && let Some(e) = &r.else_list {
            flow = self.walk_list(dot, e)?;
        }
        self.vars.truncate(outer);
        // break/continue inside the else list of a range belong to an enclosing range.
        Ok(flow)
    }

    fn set_range_vars(&mut self, r: &'t Branch, index: Value, elem: Value) -> R<()> {
        let decl = &r.pipe.decl;
        if decl.is_empty() {
            return Ok(());
        }
        if r.pipe.is_assign {
            if decl.len() > 1 {
                self.set_var(&decl[0], index)?;
                self.set_var(&decl[1], elem)?;
            } else {
                self.set_var(&decl[0], elem)?;
            }
        } else {
            let n = self.vars.len();
            if decl.len() > 1
                && let Some(slot) = n.checked_sub(2).and_then(|i| self.vars.get_mut(i))
            {
                slot.1 = index;
            }
            if let Some(slot) = n.checked_sub(1).and_then(|i| self.vars.get_mut(i)) {
                slot.1 = elem;
            }
        }
        Ok(())
    }

    fn walk_template(
        &mut self,
        dot: &Value,
        pos: usize,
        name: &'t str,
        quoted: &'t str,
        pipe: Option<&'t Pipe>,
    ) -> R<()> {
        let Some(list) = self.trees.defined.get(name) else {
            return self.fail(format!("template {name:?} not defined"));
        };
        if self.depth >= self.ctx.limits.max_template_depth {
            return self.fail_limit(format!(
                "exceeded maximum template depth ({})",
                self.ctx.limits.max_template_depth
            ));
        }
        let new_dot = match pipe {
            Some(p) => self.eval_pipeline(dot, p)?,
            None => Value::Nil,
        };
        let _ = (pos, quoted);
        let saved_vars = std::mem::replace(&mut self.vars, vec![("$".into(), new_dot.clone())]);
        let saved_name = std::mem::replace(&mut self.exec_name, name);
        self.depth += 1;
        let saved_iface = std::mem::replace(&mut self.dot_iface, false);
        let r = self.walk_list(&new_dot, list);
        self.dot_iface = saved_iface;
        self.depth -= 1;
        self.exec_name = saved_name;
        self.vars = saved_vars;
        r.map(|_| ())
    }

    fn set_var(&mut self, name: &str, v: Value) -> R<()> {
        for slot in self.vars.iter_mut().rev() {
            if slot.0 == name {
                slot.1 = v;
                return Ok(());
            }
        }
        self.fail(format!("undefined variable: {name}"))
    }

    fn var_value(&mut self, name: &str) -> R<Value> {
        for slot in self.vars.iter().rev() {
            if slot.0 == name {
                return Ok(slot.1.clone());
            }
        }
        self.fail(format!("undefined variable: {name}"))
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &'t Pipe) -> R<Value> {
        self.at(At::Pipe(pipe));
        let mut value: Final = None;
        for cmd in &pipe.cmds {
            self.step(1)?;
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        let value = value.unwrap_or(Value::Nil);
        for v in &pipe.decl {
            if pipe.is_assign {
                self.set_var(v, value.clone())?;
            } else {
                self.vars.push((v.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&mut self, args: &'t [Operand], fin: &Final) -> R<()> {
        if args.len() > 1 || fin.is_some() {
            let first = args.first().map(|a| a.to_string()).unwrap_or_default();
            return self.fail(format!("can't give argument to non-function {first}"));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Value, cmd: &'t Command, fin: Final) -> R<Value> {
        let Some(first) = cmd.args.first() else {
            return self.fail("empty command");
        };
        match first {
            Operand::Field { idents, .. } => {
                self.at(At::Op(first));
                let iface = self.dot_iface;
                return self.eval_field_chain(dot, dot.clone(), first, idents, &cmd.args, fin, iface);
            }
            Operand::Chain { node, fields, .. } => return self.eval_chain(dot, first, node, fields, &cmd.args, fin),
            Operand::Ident { name, .. } => return self.eval_function(dot, first, name, At::Cmd(cmd), &cmd.args, fin),
            Operand::Pipe(p) => {
                self.not_a_function(&cmd.args, &fin)?;
                return self.eval_pipeline(dot, p);
            }
            Operand::Variable { idents, .. } => return self.eval_variable(dot, first, idents, &cmd.args, fin),
            _ => {}
        }
        self.at(At::Op(first));
        self.not_a_function(&cmd.args, &fin)?;
        match first {
            Operand::Bool { val, .. } => Ok(Value::Bool(*val)),
            Operand::Dot { .. } => Ok(dot.clone()),
            Operand::Nil { .. } => self.fail("nil is not a command"),
            Operand::Number { num, .. } => self.ideal_constant(first, num),
            Operand::Str { text, .. } => Ok(Value::Str(Str::shared(text.clone()))),
            _ => self.fail(format!("can't evaluate command {:?}", first.to_string())),
        }
    }

    fn ideal_constant(&mut self, node: &'t Operand, num: &Number) -> R<Value> {
        self.at(At::Op(node));
        let t = &num.text;
        let is_hex_int = t.len() > 2 && (t.starts_with("0x") || t.starts_with("0X")) && !t.contains(['p', 'P']);
        let is_rune = t.starts_with('\'');
        if let Some(f) = num.float
            && !is_hex_int
            && !is_rune
            && t.contains(['.', 'e', 'E', 'p', 'P'])
        {
            return Ok(Value::Float(f));
        }
        if let Some(i) = num.int {
            return Ok(Value::Int(i));
        }
        self.fail(format!("{t} overflows int"))
    }

    fn eval_chain(
        &mut self,
        dot: &Value,
        chain: &'t Operand,
        node: &'t Operand,
        fields: &'t [String],
        args: &'t [Operand],
        fin: Final,
    ) -> R<Value> {
        self.at(At::Op(chain));
        if let Operand::Nil { .. } = node {
            return self.fail(format!("indirection through explicit nil in {chain}"));
        }
        let recv = self.eval_arg(dot, Ty::Any, node)?;
        self.eval_field_chain(dot, recv, chain, fields, args, fin, false)
    }

    fn eval_variable(
        &mut self,
        dot: &Value,
        node: &'t Operand,
        idents: &'t [String],
        args: &'t [Operand],
        fin: Final,
    ) -> R<Value> {
        self.at(At::Op(node));
        let name = idents.first().map(String::as_str).unwrap_or("$");
        let v = self.var_value(name)?;
        if idents.len() == 1 {
            self.not_a_function(args, &fin)?;
            return Ok(v);
        }
        self.eval_field_chain(dot, v, node, &idents[1..], args, fin, false)
    }

    /// `.X.Y.Z`, the last of which may take arguments (it cannot: we have no methods, so that is an error).
    #[allow(clippy::too_many_arguments)]
    fn eval_field_chain(
        &mut self,
        dot: &Value,
        mut recv: Value,
        node: &'t Operand,
        idents: &'t [String],
        args: &'t [Operand],
        fin: Final,
        mut iface: bool,
    ) -> R<Value> {
        let n = idents.len();
        // `iface`: the receiver's static type is `interface {}` (an element of a `map[string]interface {}` or
        // `[]interface {}`), which Go's messages name instead of the dynamic type.
        for (i, ident) in idents.iter().enumerate() {
            let last = i + 1 == n;
            let (a, f): (&'t [Operand], Final) = if last { (args, fin.clone()) } else { (&[], None) };
            let from_iface_map = matches!(recv, Value::Map(_));
            recv = self.eval_field(dot, ident, node, a, f, recv, iface)?;
            iface = from_iface_map;
        }
        Ok(recv)
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_field(
        &mut self,
        dot: &Value,
        name: &str,
        node: &'t Operand,
        args: &'t [Operand],
        fin: Final,
        recv: Value,
        iface: bool,
    ) -> R<Value> {
        let has_args = args.len() > 1 || fin.is_some();
        match &recv {
            Value::Nil if iface => self.fail(format!("nil pointer evaluating interface {{}}.{name}")),
            Value::Nil => self.fail(format!("nil data; no entry for key {name:?}")),
            Value::Map(_) | Value::StrMap(_) => {
                if has_args {
                    return self.fail(format!("{name} is not a method but has arguments"));
                }
                match recv.map_get(name.as_bytes()) {
                    Some(v) => Ok(v),
                    None => self.fail(format!("map has no entry for key {name:?}")),
                }
            }
            Value::Time(t) => match super::funcs::dates::time_method(&self.ctx.budget, t, name) {
                Ok(Some(v)) if !has_args => Ok(v),
                Err(e) => self.fail_fn(e),
                _ => {
                    let _ = node;
                    self.fail(format!("can't evaluate field {name} in type time.Time"))
                }
            },
            Value::Semver(v) => {
                // A method: Go counts its arguments (the rest of the command, then the piped value) before
                // evaluating them as `*semver.Version`s.
                let Some(want) = semver::arity(v, name) else {
                    return self.fail(format!("can't evaluate field {name} in type {}", recv.type_name()));
                };
                let got = args.len().saturating_sub(1) + usize::from(fin.is_some());
                if got != want {
                    return self.fail(format!("wrong number of args for {name}: want {want} got {got}"));
                }
                let mut argv = Vec::new();
                for a in args.iter().skip(1) {
                    argv.push(self.eval_arg(dot, Ty::Semver, a)?);
                }
                if let Some(f) = fin {
                    argv.push(self.validate_type(f, Ty::Semver)?);
                }
                match semver::call(&self.ctx.budget, v, name, &argv) {
                    Ok(out) => Ok(out),
                    Err(FnError::Msg(m)) => self.fail(format!("error calling {name}: {m}")),
                    Err(e) => self.fail_fn(e),
                }
            }
            Value::Cert(c) => match c.field(name) {
                Some(_) if has_args => self.fail(format!("{name} has arguments but cannot be invoked as function")),
                Some(v) => Ok(Value::Str(v.clone())),
                None => self.fail(format!("can't evaluate field {name} in type {}", recv.type_name())),
            },
            other => {
                let ty = if iface { "interface {}" } else { other.type_name() };
                self.fail(format!("can't evaluate field {name} in type {ty}"))
            }
        }
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        node: &'t Operand,
        name: &'t str,
        call_at: At<'t>,
        args: &'t [Operand],
        fin: Final,
    ) -> R<Value> {
        self.at(At::Op(node));
        let Some(func) = funcs::lookup(name) else {
            return self.fail(format!("{name:?} is not a defined function"));
        };
        self.eval_call(dot, &func, name, call_at, args, fin)
    }

    fn eval_call(
        &mut self,
        dot: &Value,
        func: &Func,
        name: &str,
        call_at: At<'t>,
        args: &'t [Operand],
        fin: Final,
    ) -> R<Value> {
        let args = args.get(1..).unwrap_or(&[]);
        let num_in = args.len() + usize::from(fin.is_some());
        let nparams = func.params.len();
        let num_fixed = if func.variadic.is_some() {
            if num_in < nparams {
                return self.fail(format!(
                    "wrong number of args for {name}: want at least {nparams} got {}",
                    args.len()
                ));
            }
            nparams
        } else {
            if num_in != nparams {
                return self.fail(format!("wrong number of args for {name}: want {nparams} got {num_in}"));
            }
            args.len()
        };

        // and/or short-circuit and return the deciding value.
        if name == "and" || name == "or" {
            let want = name == "or";
            let mut v = Value::Nil;
            for a in args {
                v = self.eval_arg(dot, Ty::Any, a)?;
                if v.truthy() == want {
                    return Ok(v);
                }
            }
            if let Some(f) = fin {
                v = f;
            }
            return Ok(v);
        }

        let mut argv = Vec::with_capacity(num_in);
        let mut i = 0;
        while i < num_fixed && i < args.len() {
            let ty = func.params.get(i).copied().unwrap_or(Ty::Any);
            argv.push(self.eval_arg(dot, ty, &args[i])?);
            i += 1;
        }
        if let Some(vty) = func.variadic {
            while i < args.len() {
                argv.push(self.eval_arg(dot, vty, &args[i])?);
                i += 1;
            }
        }
        if let Some(f) = fin {
            let ty = match func.variadic {
                Some(vty) if num_in > num_fixed => vty,
                _ => func.params.get(num_in - 1).copied().unwrap_or(Ty::Any),
            };
            argv.push(self.validate_type(f, ty)?);
        }
        match (func.f)(&mut self.ctx, argv) {
            Ok(v) => {
                // Bound what any function can build, and charge big results against the work budget (which then
                // also bounds the total memory a template can allocate).
                let size = match &v {
                    Value::Str(b) => b.len(),
                    Value::List(_, l) => l.len().saturating_mul(16),
                    _ => 0,
                };
                if size > self.ctx.limits.max_value_len {
                    self.at(call_at);
                    return self.fail_limit(format!(
                        "{name} produced a value over the limit of {} bytes",
                        self.ctx.limits.max_value_len
                    ));
                }
                self.step((size / 64) as u64)?;
                Ok(v)
            }
            Err(FnError::Msg(m)) => {
                self.at(call_at);
                self.fail(format!("error calling {name}: {m}"))
            }
            Err(FnError::Limit(m)) => {
                self.at(call_at);
                self.fail_limit(m)
            }
        }
    }

    fn validate_type(&mut self, v: Value, ty: Ty) -> R<Value> {
        let ok = match (&v, ty) {
            (_, Ty::Any) => true,
            (Value::Nil, Ty::Map | Ty::Semver | Ty::AnyList) => return Ok(Value::Nil),
            (Value::Nil, _) => return self.fail(format!("invalid value; expected {}", ty.go_name())),
            (Value::Str(_), Ty::Str)
            | (Value::Int(_), Ty::Int)
            | (Value::Float(_), Ty::Float)
            | (Value::Bool(_), Ty::Bool) => true,
            (Value::Map(_), Ty::Map) => true,
            (Value::Semver(v), Ty::Semver) => v.pointer,
            (Value::List(ListKind::Any, _), Ty::AnyList) | (Value::Cert(_), Ty::Cert) => true,
            _ => false,
        };
        if ok {
            Ok(v)
        } else {
            self.fail(format!(
                "wrong type for value; expected {}; got {}",
                ty.go_name(),
                v.type_name()
            ))
        }
    }

    fn eval_arg(&mut self, dot: &Value, ty: Ty, n: &'t Operand) -> R<Value> {
        self.at(At::Op(n));
        match n {
            Operand::Dot { .. } => return self.validate_type(dot.clone(), ty),
            Operand::Nil { .. } => {
                return match ty {
                    Ty::Any | Ty::Map | Ty::Semver | Ty::AnyList => Ok(Value::Nil),
                    _ => self.fail(format!("cannot assign nil to {}", ty.go_name())),
                };
            }
            Operand::Field { idents, .. } => {
                let iface = self.dot_iface;
                let v = self.eval_field_chain(dot, dot.clone(), n, idents, std::slice::from_ref(n), None, iface)?;
                return self.validate_type(v, ty);
            }
            Operand::Variable { idents, .. } => {
                let v = self.eval_variable(dot, n, idents, &[], None)?;
                return self.validate_type(v, ty);
            }
            Operand::Pipe(p) => {
                let v = self.eval_pipeline(dot, p)?;
                return self.validate_type(v, ty);
            }
            Operand::Ident { name, .. } => {
                let v = self.eval_function(dot, n, name, At::Op(n), &[], None)?;
                return self.validate_type(v, ty);
            }
            Operand::Chain { node, fields, .. } => {
                let v = self.eval_chain(dot, n, node, fields, &[], None)?;
                return self.validate_type(v, ty);
            }
            _ => {}
        }
        match (ty, n) {
            (Ty::Bool, Operand::Bool { val, .. }) => Ok(Value::Bool(*val)),
            (Ty::Bool, _) => self.fail(format!("expected bool; found {n}")),
            (Ty::Float, Operand::Number { num, .. }) if num.float.is_some() => {
                Ok(Value::Float(num.float.unwrap_or(0.0)))
            }
            (Ty::Float, _) => self.fail(format!("expected float; found {n}")),
            (Ty::Int, Operand::Number { num, .. }) if num.int.is_some() => Ok(Value::Int(num.int.unwrap_or(0))),
            (Ty::Int, _) => self.fail(format!("expected integer; found {n}")),
            // Go's SetUint on a uint32 keeps the low 32 bits.
            (Ty::Uint32, Operand::Number { num, .. }) if num.is_uint => {
                Ok(Value::Uint64(num.int.map_or(0, |i| i as u64) & u64::from(u32::MAX)))
            }
            (Ty::Uint32, _) => self.fail(format!("expected unsigned integer; found {n}")),
            (Ty::Str, Operand::Str { text, .. }) => Ok(Value::Str(Str::shared(text.clone()))),
            (Ty::Str, _) => self.fail(format!("expected string; found {n}")),
            (Ty::Any, Operand::Bool { val, .. }) => Ok(Value::Bool(*val)),
            (Ty::Any, Operand::Str { text, .. }) => Ok(Value::Str(Str::shared(text.clone()))),
            (Ty::Any, Operand::Number { num, .. }) => self.ideal_constant(n, num),
            (Ty::Map | Ty::Semver | Ty::AnyList | Ty::Cert, _) | (Ty::Any, _) => {
                self.fail(format!("can't handle {n} for arg of type {}", ty.go_name()))
            }
        }
    }
}

/// `%v` of a value for error messages about its type (never a secret string: callers only use it for ints/kinds).
fn value_string(v: &Value) -> String {
    match v {
        Value::Int(i) | Value::Int64(i) => i.to_string(),
        Value::Uint64(u) => u.to_string(),
        Value::Bool(b) => b.to_string(),
        other => format!("<{}>", other.type_name()),
    }
}
