//! The expression VM: conditions and `set:` value expressions as a small stack bytecode.
//!
//! `carepath._native.lower_expr.lower_expr(expr)` lowers the Python source that
//! `carepath.expr.compile_expr` generated (a `lambda F, E, S: …` over the helpers of
//! `carepath._expr_runtime`) into a list of instructions, one per construct of that generated
//! code, so the VM follows the reference's evaluation order and null rules by construction. Every
//! primitive reproduces the Python operation it stands for on the values of [`crate::value`]
//! (exact `int`/`float` comparisons, `list` vs `tuple`, aware vs naive datetimes, `str.lower`…);
//! where a value or an edge case is not modelled, evaluation stops with
//! [`EvalError::Fallback`] and the caller runs `Expr.fn`, the reference, instead.
//!
//! The instruction format (each a tuple whose first item is the name):
//!
//! | instruction | effect |
//! |---|---|
//! | `("const", c)` | push a constant (`c` as encoded by `lower_expr.encode`) |
//! | `("field", name)` / `("special", name)` | push `F.get(name)` / `S.get(name)` |
//! | `("event", key)` / `("evpath", flat, parts)` | push `E.get(key)` / `_ev(E, flat, parts)` |
//! | `("is_none",)` `("not_none",)` `("is_true",)` `("not",)` | `x is None`, `x is not None`, `x is True`, `not x` |
//! | `("eq",)` `("ne",)` `("in",)` `("not_in",)` | Python's `==`, `!=`, `in`, `not in` |
//! | `("call", helper, argc)` | a `_expr_runtime` helper (`_lt` … `_now`; `S` is implicit) |
//! | `("store", slot)` / `("load", slot)` | the walrus temporaries (`store` keeps the value) |
//! | `("and", target)` / `("or", target)` | Python's `and`/`or`: jump keeping a falsy/truthy top, else pop |
//! | `("tuple", n)` / `("list",)` | build a tuple of `n` items / `list(x)` of the top |

use std::cell::RefCell;
use std::cmp::Ordering;
use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::value::{ymd_to_ordinal, Tz, Value, DAY_US, EPOCH_ORDINAL};

/// Why the VM did not give a value: the caller evaluates the reference (`Expr.fn`) instead.
#[derive(Clone, Debug, PartialEq)]
pub enum EvalError {
    /// A value or a case the VM does not model with the reference's exact semantics.
    Fallback(&'static str),
}

impl std::fmt::Display for EvalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EvalError::Fallback(why) => write!(f, "not evaluated natively: {why}"),
        }
    }
}

type R<T> = Result<T, EvalError>;

fn fb<T>(why: &'static str) -> R<T> {
    Err(EvalError::Fallback(why))
}

/// Where a program reads its names: the three mappings of `lambda F, E, S`.
pub trait Scope {
    /// A case field, `F.get(name)` (flat dotted name).
    fn get(&self, name: &str) -> Option<Value>;
    /// `E.get(key)`: a key of the event view (`type`, `at`, `case`, `id` or a data key).
    fn event(&self, key: &str) -> Option<Value>;
    /// `_ev(E, flat, parts)`: `E[flat]` if present, else the walk `E[parts[0]][parts[1]]…`
    /// through mappings (null as soon as a step is not a mapping or is absent).
    fn event_path(&self, flat: &str, parts: &[Arc<str>]) -> Option<Value>;
    /// A special, `S.get(name)`: `stage`, `segment`, `now`, `sla.<clock>.breached`…
    fn special(&self, name: &str) -> Option<Value>;
}

/// The helpers of `carepath._expr_runtime` the generated code calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Helper {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    In,
    Nin,
    Lower,
    Upper,
    Len,
    DaysSince,
    HoursSince,
    Abs,
    Min,
    Max,
    Round,
    Neg,
    Now,
    Add,
    Sub,
    Mul,
    Div,
    Dec,
    Dur,
    Inst,
}

impl Helper {
    fn parse(name: &str) -> Option<Helper> {
        Some(match name {
            "_lt" => Helper::Lt,
            "_le" => Helper::Le,
            "_gt" => Helper::Gt,
            "_ge" => Helper::Ge,
            "_eq" => Helper::Eq,
            "_ne" => Helper::Ne,
            "_in" => Helper::In,
            "_nin" => Helper::Nin,
            "_lower" => Helper::Lower,
            "_upper" => Helper::Upper,
            "_len" => Helper::Len,
            "_days_since" => Helper::DaysSince,
            "_hours_since" => Helper::HoursSince,
            "_abs" => Helper::Abs,
            "_min" => Helper::Min,
            "_max" => Helper::Max,
            "_round" => Helper::Round,
            "_neg" => Helper::Neg,
            "_now" => Helper::Now,
            "_add" => Helper::Add,
            "_sub" => Helper::Sub,
            "_mul" => Helper::Mul,
            "_div" => Helper::Div,
            "_dec" => Helper::Dec,
            "_dur" => Helper::Dur,
            "_inst" => Helper::Inst,
            _ => return None,
        })
    }

    /// The argument counts the helper accepts (`S` not counted).
    fn arity(self) -> (usize, usize) {
        match self {
            Helper::Lt
            | Helper::Le
            | Helper::Gt
            | Helper::Ge
            | Helper::Eq
            | Helper::Ne
            | Helper::In
            | Helper::Nin
            | Helper::Add
            | Helper::Sub
            | Helper::Mul
            | Helper::Div => (2, 2),
            Helper::Dec | Helper::Dur | Helper::Inst => (1, 1),
            Helper::Lower
            | Helper::Upper
            | Helper::Len
            | Helper::DaysSince
            | Helper::HoursSince
            | Helper::Abs
            | Helper::Neg => (1, 1),
            Helper::Min | Helper::Max => (1, 16),
            Helper::Round => (1, 2),
            Helper::Now => (0, 0),
        }
    }
}

/// One instruction (see the module documentation).
#[derive(Clone, Debug)]
pub enum Op {
    Const(Value),
    Field(Arc<str>),
    Event(Arc<str>),
    EventPath(Arc<str>, Arc<[Arc<str>]>),
    Special(Arc<str>),
    IsNone,
    NotNone,
    IsTrue,
    Not,
    Eq,
    Ne,
    In,
    NotIn,
    Call(Helper, usize),
    Store(usize),
    Load(usize),
    And(usize),
    Or(usize),
    Tuple(usize),
    List,
}

/// The most walrus temporaries a program may use (the compiler makes one per `!=`/`not in`
/// against a literal, and an expression has at most 256 nodes).
const MAX_SLOTS: usize = 256;

/// A checked program: every jump goes forward to a point of the same stack depth, the stack
/// never underflows and the program leaves exactly one value.
#[derive(Clone, Debug)]
pub struct Program {
    ops: Vec<Op>,
    slots: usize,
    max_stack: usize,
}

impl Program {
    /// Check `ops` and build the program; the error says what is wrong.
    pub fn new(ops: Vec<Op>) -> Result<Program, String> {
        let n = ops.len();
        let mut depth: Vec<Option<usize>> = vec![None; n + 1];
        depth[0] = Some(0);
        let mut slots = 0usize;
        let mut max_stack = 0usize;
        let mut stored: Vec<bool> = Vec::new();
        for (pc, op) in ops.iter().enumerate() {
            let Some(d) = depth[pc] else {
                return Err(format!("instruction {pc} is unreachable"));
            };
            let need = |k: usize| -> Result<(), String> {
                if d < k {
                    Err(format!(
                        "instruction {pc} ({op:?}) needs {k} values, the stack has {d}"
                    ))
                } else {
                    Ok(())
                }
            };
            let mut set = |at: usize, v: usize| -> Result<(), String> {
                match depth[at] {
                    Some(old) if old != v => Err(format!("stack depth {old} or {v} at {at}")),
                    _ => {
                        depth[at] = Some(v);
                        Ok(())
                    }
                }
            };
            let next = match op {
                Op::Const(_) | Op::Field(_) | Op::Event(_) | Op::EventPath(..) | Op::Special(_) => {
                    d + 1
                }
                Op::Load(s) => {
                    if !stored.get(*s).copied().unwrap_or(false) {
                        return Err(format!("instruction {pc} loads slot {s} before a store"));
                    }
                    d + 1
                }
                Op::IsNone | Op::NotNone | Op::IsTrue | Op::Not | Op::List => {
                    need(1)?;
                    d
                }
                Op::Store(s) => {
                    need(1)?;
                    if *s >= MAX_SLOTS {
                        return Err(format!("instruction {pc} stores to slot {s}"));
                    }
                    slots = slots.max(s + 1);
                    if stored.len() <= *s {
                        stored.resize(s + 1, false);
                    }
                    stored[*s] = true;
                    d
                }
                Op::Eq | Op::Ne | Op::In | Op::NotIn => {
                    need(2)?;
                    d - 1
                }
                Op::Call(h, argc) => {
                    let (lo, hi) = h.arity();
                    if *argc < lo || *argc > hi {
                        return Err(format!("{h:?} takes {lo} to {hi} arguments, not {argc}"));
                    }
                    need(*argc)?;
                    d - argc + 1
                }
                Op::Tuple(k) => {
                    need(*k)?;
                    d - k + 1
                }
                Op::And(t) | Op::Or(t) => {
                    need(1)?;
                    if *t <= pc || *t > n {
                        return Err(format!("instruction {pc} jumps to {t}"));
                    }
                    set(*t, d)?;
                    d - 1
                }
            };
            max_stack = max_stack.max(next);
            set(pc + 1, next)?;
        }
        if depth[n] != Some(1) {
            return Err(format!("the program leaves {:?} values, not 1", depth[n]));
        }
        Ok(Program {
            ops,
            slots,
            max_stack,
        })
    }

    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Run the program. A value that could not be handed back to Python as the reference's own
    /// (a foreign value, a `Decimal`) is a fallback too.
    pub fn eval(&self, scope: &dyn Scope) -> Result<Value, EvalError> {
        // Reuse a stack buffer per thread (a pool, so a nested evaluation gets its own).
        let mut stack = STACKS
            .with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.pop()))
            .unwrap_or_default();
        let r = self.run(scope, &mut stack);
        stack.clear();
        STACKS.with(|p| {
            if let Ok(mut p) = p.try_borrow_mut() {
                if p.len() < 8 {
                    p.push(stack);
                }
            }
        });
        r
    }

    fn run(&self, scope: &dyn Scope, stack: &mut Vec<Value>) -> Result<Value, EvalError> {
        let mut small: [Value; 4] = std::array::from_fn(|_| Value::Null);
        let mut big: Vec<Value>;
        let slots: &mut [Value] = if self.slots <= small.len() {
            &mut small
        } else {
            big = vec![Value::Null; self.slots];
            &mut big
        };
        stack.reserve(self.max_stack);
        let mut pc = 0usize;
        while let Some(op) = self.ops.get(pc) {
            pc += 1;
            match op {
                Op::Const(v) => stack.push(v.clone()),
                Op::Field(n) => stack.push(scope.get(n).unwrap_or(Value::Null)),
                Op::Event(k) => stack.push(scope.event(k).unwrap_or(Value::Null)),
                Op::EventPath(f, p) => stack.push(scope.event_path(f, p).unwrap_or(Value::Null)),
                Op::Special(n) => stack.push(scope.special(n).unwrap_or(Value::Null)),
                Op::IsNone => {
                    let v = pop(stack)?;
                    stack.push(Value::Bool(v.is_null()));
                }
                Op::NotNone => {
                    let v = pop(stack)?;
                    stack.push(Value::Bool(!v.is_null()));
                }
                Op::IsTrue => {
                    let v = pop(stack)?;
                    stack.push(Value::Bool(matches!(v, Value::Bool(true))));
                }
                Op::Not => {
                    let v = pop(stack)?;
                    stack.push(Value::Bool(!truthy(&v)?));
                }
                Op::Eq | Op::Ne => {
                    let b = pop(stack)?;
                    let a = pop(stack)?;
                    let e = py_eq(&a, &b)?;
                    stack.push(Value::Bool(if matches!(op, Op::Eq) { e } else { !e }));
                }
                Op::In | Op::NotIn => {
                    let b = pop(stack)?;
                    let a = pop(stack)?;
                    let items = match &b {
                        Value::List(xs) | Value::Tuple(xs) => xs,
                        _ => return fb("'in' over something other than a list or tuple"),
                    };
                    let found = py_contains(items, &a)?;
                    stack.push(Value::Bool(if matches!(op, Op::In) {
                        found
                    } else {
                        !found
                    }));
                }
                Op::Call(h, argc) => {
                    let at = stack
                        .len()
                        .checked_sub(*argc)
                        .ok_or(EvalError::Fallback("stack underflow"))?;
                    let v = call(*h, &stack[at..], scope)?;
                    stack.truncate(at);
                    stack.push(v);
                }
                Op::Store(s) => {
                    let v = stack
                        .last()
                        .ok_or(EvalError::Fallback("stack underflow"))?
                        .clone();
                    *slots.get_mut(*s).ok_or(EvalError::Fallback("bad slot"))? = v;
                }
                Op::Load(s) => stack.push(
                    slots
                        .get(*s)
                        .ok_or(EvalError::Fallback("bad slot"))?
                        .clone(),
                ),
                Op::And(t) | Op::Or(t) => {
                    let v = stack.last().ok_or(EvalError::Fallback("stack underflow"))?;
                    let keep = truthy(v)? == matches!(op, Op::Or(_));
                    if keep {
                        pc = *t;
                    } else {
                        stack.pop();
                    }
                }
                Op::Tuple(k) => {
                    let at = stack
                        .len()
                        .checked_sub(*k)
                        .ok_or(EvalError::Fallback("stack underflow"))?;
                    let items = stack.split_off(at);
                    stack.push(Value::Tuple(Arc::from(items)));
                }
                Op::List => match pop(stack)? {
                    Value::List(xs) | Value::Tuple(xs) => stack.push(Value::List(xs)),
                    _ => return fb("list() of something other than a list or tuple"),
                },
            }
        }
        let v = pop(stack)?;
        if v.is_opaque() {
            return fb("the result is a value the core does not model");
        }
        Ok(v)
    }

    /// Whether the condition holds: its value `is True` (as the engine tests it).
    pub fn holds(&self, scope: &dyn Scope) -> Result<bool, EvalError> {
        Ok(matches!(self.eval(scope)?, Value::Bool(true)))
    }
}

thread_local! {
    static STACKS: RefCell<Vec<Vec<Value>>> = const { RefCell::new(Vec::new()) };
}

fn pop(stack: &mut Vec<Value>) -> R<Value> {
    stack.pop().ok_or(EvalError::Fallback("stack underflow"))
}

// -- Python semantics -----------------------------------------------------------------------------

/// `bool(x)`.
pub fn truthy(v: &Value) -> R<bool> {
    Ok(match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Int(i) => *i != 0,
        Value::Float(f) => *f != 0.0,
        Value::Str(s) => !s.is_empty(),
        Value::List(xs) | Value::Tuple(xs) => !xs.is_empty(),
        Value::Date(_) | Value::DateTime(..) => true,
        Value::Duration(us) => *us != 0,
        Value::Decimal(_) | Value::Foreign(_) => return fb("truth of an unmodelled value"),
    })
}

/// An `int` (or `bool`) against a `float`, exactly as Python compares them.
fn cmp_int_float(i: i64, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    if f >= TWO63 {
        return Some(Ordering::Less);
    }
    if f < -TWO63 {
        return Some(Ordering::Greater);
    }
    let t = f.trunc();
    let ti = t as i64; // exact: |t| < 2^63
    match i.cmp(&ti) {
        Ordering::Equal => 0.0f64.partial_cmp(&(f - t)),
        o => Some(o),
    }
}

enum Num {
    I(i64),
    F(f64),
}

fn num(v: &Value) -> Option<Num> {
    match v {
        Value::Bool(b) => Some(Num::I(i64::from(*b))),
        Value::Int(i) => Some(Num::I(*i)),
        Value::Float(f) => Some(Num::F(*f)),
        _ => None,
    }
}

fn cmp_num(a: &Num, b: &Num) -> Option<Ordering> {
    match (a, b) {
        (Num::I(x), Num::I(y)) => Some(x.cmp(y)),
        (Num::F(x), Num::F(y)) => x.partial_cmp(y),
        (Num::I(x), Num::F(y)) => cmp_int_float(*x, *y),
        (Num::F(x), Num::I(y)) => cmp_int_float(*y, *x).map(Ordering::reverse),
    }
}

fn unmodelled(v: &Value) -> bool {
    matches!(v, Value::Decimal(_) | Value::Foreign(_))
}

fn has_nan(v: &Value) -> bool {
    match v {
        Value::Float(f) => f.is_nan(),
        Value::List(xs) | Value::Tuple(xs) => xs.iter().any(has_nan),
        _ => false,
    }
}

/// Python's `a == b`.
pub fn py_eq(a: &Value, b: &Value) -> R<bool> {
    if let (Value::Str(x), Value::Str(y)) = (a, b) {
        return Ok(x == y);
    }
    if unmodelled(a) || unmodelled(b) {
        return fb("== with an unmodelled value");
    }
    if let (Some(x), Some(y)) = (num(a), num(b)) {
        return Ok(cmp_num(&x, &y) == Some(Ordering::Equal));
    }
    Ok(match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Date(x), Value::Date(y)) => x == y,
        (Value::DateTime(x, tx), Value::DateTime(y, ty)) => {
            (*tx == Tz::Naive) == (*ty == Tz::Naive) && x == y
        }
        (Value::Duration(x), Value::Duration(y)) => x == y,
        (Value::List(xs), Value::List(ys)) | (Value::Tuple(xs), Value::Tuple(ys)) => {
            // Items compare with `is` first: only a NaN can tell the two apart.
            if has_nan(a) || has_nan(b) {
                return fb("container comparison with a NaN");
            }
            if xs.len() != ys.len() {
                return Ok(false);
            }
            for (x, y) in xs.iter().zip(ys.iter()) {
                if !py_eq(x, y)? {
                    return Ok(false);
                }
            }
            true
        }
        _ => false,
    })
}

/// Python's `a in items` for a list or tuple (`item is a or item == a`).
fn py_contains(items: &[Value], a: &Value) -> R<bool> {
    if has_nan(a) {
        return fb("'in' with a NaN");
    }
    for x in items {
        if unmodelled(x) {
            return fb("'in' over an unmodelled item");
        }
        if py_eq(x, a)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `a < b` (`Less`), `a > b` (`Greater`)… as Python orders them: `Ok(None)` where Python raises
/// `TypeError`, `Ok(Some(None))` for unordered (NaN).
type Order = Option<Option<Ordering>>;

fn py_order(a: &Value, b: &Value) -> R<Order> {
    if unmodelled(a) || unmodelled(b) {
        return fb("ordering an unmodelled value");
    }
    if let (Some(x), Some(y)) = (num(a), num(b)) {
        return Ok(Some(cmp_num(&x, &y)));
    }
    Ok(match (a, b) {
        (Value::Str(x), Value::Str(y)) => Some(Some(x.as_bytes().cmp(y.as_bytes()))),
        (Value::Date(x), Value::Date(y)) => Some(Some(x.cmp(y))),
        (Value::DateTime(x, tx), Value::DateTime(y, ty)) => {
            if (*tx == Tz::Naive) != (*ty == Tz::Naive) {
                None
            } else {
                Some(Some(x.cmp(y)))
            }
        }
        (Value::Duration(x), Value::Duration(y)) => Some(Some(x.cmp(y))),
        (Value::List(_), Value::List(_)) | (Value::Tuple(_), Value::Tuple(_)) => {
            return fb("ordering lists")
        }
        _ => None,
    })
}

#[derive(Clone, Copy)]
enum Rel {
    Lt,
    Le,
    Gt,
    Ge,
}

/// `bool(a OP b)`; `None` where Python raises.
fn py_rel(a: &Value, b: &Value, rel: Rel) -> R<Option<bool>> {
    Ok(py_order(a, b)?.map(|o| match (o, rel) {
        (None, _) => false,
        (Some(o), Rel::Lt) => o == Ordering::Less,
        (Some(o), Rel::Le) => o != Ordering::Greater,
        (Some(o), Rel::Gt) => o == Ordering::Greater,
        (Some(o), Rel::Ge) => o != Ordering::Less,
    }))
}

/// Characters whose `str.lower`/`str.upper` agree between CPython 3.11 and Rust for certain:
/// Latin scripts and combining marks (Unicode has not changed their case mappings in decades).
fn case_safe(s: &str) -> bool {
    s.chars().all(|c| {
        let u = c as u32;
        u < 0x0250 || (0x0300..0x0370).contains(&u) || (0x1E00..0x1F00).contains(&u)
    })
}

fn helper_rel(args: &[Value], rel: Rel) -> R<Value> {
    let (a, b) = (&args[0], &args[1]);
    if a.is_null() || b.is_null() {
        return Ok(Value::Bool(false));
    }
    Ok(Value::Bool(py_rel(a, b, rel)?.unwrap_or(false)))
}

fn call(h: Helper, args: &[Value], scope: &dyn Scope) -> R<Value> {
    let (lo, hi) = h.arity();
    if args.len() < lo || args.len() > hi {
        return fb("wrong number of arguments");
    }
    match h {
        Helper::Lt => helper_rel(args, Rel::Lt),
        Helper::Le => helper_rel(args, Rel::Le),
        Helper::Gt => helper_rel(args, Rel::Gt),
        Helper::Ge => helper_rel(args, Rel::Ge),
        Helper::Eq | Helper::Ne => {
            let (a, b) = (&args[0], &args[1]);
            if a.is_null() || b.is_null() {
                return Ok(Value::Bool(false));
            }
            let e = py_eq(a, b)?;
            Ok(Value::Bool(if h == Helper::Eq { e } else { !e }))
        }
        Helper::In | Helper::Nin => {
            let (a, b) = (&args[0], &args[1]);
            if a.is_null() {
                return Ok(Value::Bool(false));
            }
            let items = match b {
                Value::List(xs) | Value::Tuple(xs) => xs,
                Value::Foreign(_) => return fb("'in' over an unmodelled container"),
                _ => return Ok(Value::Bool(false)),
            };
            let found = py_contains(items, a)?;
            Ok(Value::Bool(if h == Helper::In { found } else { !found }))
        }
        Helper::Lower | Helper::Upper => match &args[0] {
            Value::Str(s) => {
                if !case_safe(s) {
                    return fb("case mapping outside the Latin scripts");
                }
                let t = if h == Helper::Lower {
                    s.to_lowercase()
                } else {
                    s.to_uppercase()
                };
                Ok(Value::Str(Arc::from(t.as_str())))
            }
            Value::Foreign(_) => fb("lower/upper of an unmodelled value"),
            _ => Ok(Value::Null),
        },
        Helper::Len => match &args[0] {
            Value::Str(s) => Ok(Value::Int(s.chars().count() as i64)),
            Value::List(xs) | Value::Tuple(xs) => Ok(Value::Int(xs.len() as i64)),
            Value::Foreign(_) => fb("len of an unmodelled value"),
            _ => Ok(Value::Null),
        },
        Helper::Abs | Helper::Neg => {
            let neg = h == Helper::Neg;
            match &args[0] {
                Value::Int(i) => match if neg {
                    i.checked_neg()
                } else {
                    i.checked_abs()
                } {
                    Some(r) => Ok(Value::Int(r)),
                    None => fb("integer beyond 64 bits"),
                },
                Value::Float(f) => Ok(Value::Float(if neg { -f } else { f.abs() })),
                // Every i64 of microseconds is inside timedelta's range.
                Value::Duration(us) => match if neg {
                    us.checked_neg()
                } else {
                    us.checked_abs()
                } {
                    Some(r) => Ok(Value::Duration(r)),
                    None => fb("duration beyond 64 bits"),
                },
                Value::Decimal(_) | Value::Foreign(_) => fb("arithmetic on an unmodelled value"),
                _ => Ok(Value::Null),
            }
        }
        Helper::Round => round(args),
        Helper::Min => extreme(args, Ordering::Less),
        Helper::Max => extreme(args, Ordering::Greater),
        Helper::Now => Ok(scope.special("now").unwrap_or(Value::Null)),
        Helper::DaysSince | Helper::HoursSince => since(h, &args[0], scope),
        Helper::Add | Helper::Sub | Helper::Mul | Helper::Div => arith(h, &args[0], &args[1]),
        Helper::Dec => match &args[0] {
            Value::Null | Value::Bool(_) | Value::Date(_) | Value::DateTime(..) => {
                Ok(args[0].clone())
            }
            Value::Duration(_) | Value::List(_) | Value::Tuple(_) => Ok(args[0].clone()),
            _ => fb("a decimal operand"),
        },
        Helper::Dur => match &args[0] {
            Value::Int(i) if i.unsigned_abs() <= MAX_DURATION_S as u64 => {
                Ok(Value::Duration(i * 1_000_000))
            }
            Value::Int(_) | Value::Float(_) | Value::Foreign(_) | Value::Decimal(_) => {
                fb("a duration kept as seconds")
            }
            v => Ok(v.clone()),
        },
        Helper::Inst => match &args[0] {
            Value::Str(_) | Value::Foreign(_) => fb("an instant kept as text"),
            v => Ok(v.clone()),
        },
    }
}

/// `carepath.expr.arithmetic.MAX_NUMBER`: the largest magnitude arithmetic takes or gives.
const MAX_NUMBER: i64 = 1_000_000_000_000_000;
/// `carepath.expr.arithmetic.MAX_DURATION` in seconds (36,600 days).
const MAX_DURATION_S: i64 = 36_600 * 86_400;

/// `_add`/`_sub`/`_mul`/`_div` of `carepath.expr.arithmetic` on the values the VM models
/// exactly: ints and floats within the bounds, durations by ints; null for what the reference
/// makes null (null, bools, strings, lists, a mix it does not compute, a division by zero); a
/// fallback for everything else — decimals, instants, float durations, and any overflow (the
/// reference then raises the `InvalidEvent` itself).
fn arith(h: Helper, a: &Value, b: &Value) -> R<Value> {
    let max_us = (MAX_DURATION_S as i128) * 1_000_000;
    let operand = |v: &Value| -> R<Option<Value>> {
        Ok(match v {
            Value::Int(i) if i.unsigned_abs() <= MAX_NUMBER as u64 => Some(v.clone()),
            Value::Float(f) if f.is_finite() && f.abs() <= MAX_NUMBER as f64 => Some(v.clone()),
            Value::Duration(us) if (*us as i128).abs() <= max_us => Some(v.clone()),
            Value::Int(_) | Value::Float(_) | Value::Duration(_) => {
                return fb("an operand beyond the bounds")
            }
            Value::Decimal(_) | Value::DateTime(..) | Value::Foreign(_) => {
                return fb("an operand the VM does not compute")
            }
            _ => None,
        })
    };
    let (Some(a), Some(b)) = (operand(a)?, operand(b)?) else {
        return Ok(Value::Null);
    };
    let num = |r: f64| -> R<Value> {
        if r.is_finite() && r.abs() <= MAX_NUMBER as f64 {
            Ok(Value::Float(r))
        } else {
            fb("a result beyond the bounds")
        }
    };
    let int = |r: i128| -> R<Value> {
        if r.abs() <= MAX_NUMBER as i128 {
            Ok(Value::Int(r as i64))
        } else {
            fb("a result beyond the bounds")
        }
    };
    let dur = |r: i128| -> R<Value> {
        if r.abs() <= max_us {
            Ok(Value::Duration(r as i64))
        } else {
            fb("a result beyond the bounds")
        }
    };
    let f = |v: &Value| match v {
        Value::Int(i) => *i as f64,
        Value::Float(x) => *x,
        _ => f64::NAN,
    };
    match (h, &a, &b) {
        (Helper::Div, _, Value::Int(0)) => Ok(Value::Null),
        (Helper::Div, _, Value::Float(z)) if *z == 0.0 => Ok(Value::Null),
        (Helper::Div, _, Value::Duration(0)) => Ok(Value::Null),
        (_, Value::Int(x), Value::Int(y)) => match h {
            Helper::Add => int(*x as i128 + *y as i128),
            Helper::Sub => int(*x as i128 - *y as i128),
            Helper::Mul => int(*x as i128 * *y as i128),
            _ => num(*x as f64 / *y as f64),
        },
        (_, Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            let (x, y) = (f(&a), f(&b));
            num(match h {
                Helper::Add => x + y,
                Helper::Sub => x - y,
                Helper::Mul => x * y,
                _ => x / y,
            })
        }
        (Helper::Add, Value::Duration(x), Value::Duration(y)) => dur(*x as i128 + *y as i128),
        (Helper::Sub, Value::Duration(x), Value::Duration(y)) => dur(*x as i128 - *y as i128),
        (Helper::Mul, Value::Duration(x), Value::Int(y))
        | (Helper::Mul, Value::Int(y), Value::Duration(x)) => dur(*x as i128 * *y as i128),
        (_, Value::Duration(_), _) | (_, _, Value::Duration(_)) => match (h, &a, &b) {
            // timedelta with a float, or divided: rounded by Python's rules: the reference's
            (Helper::Mul | Helper::Div, Value::Duration(_), Value::Float(_))
            | (Helper::Mul, Value::Float(_), Value::Duration(_))
            | (Helper::Div, Value::Duration(_), _) => fb("duration arithmetic that rounds"),
            _ => Ok(Value::Null), // a mix Python refuses (TypeError): null
        },
        _ => Ok(Value::Null),
    }
}

fn round(args: &[Value]) -> R<Value> {
    let digits = match args.get(1) {
        None => None,
        Some(Value::Int(n)) if (0..=15).contains(n) => Some(*n as usize),
        Some(_) => return fb("round() with an unusual digit count"),
    };
    match &args[0] {
        Value::Int(i) => Ok(Value::Int(*i)),
        Value::Float(f) => match digits {
            None => {
                if !f.is_finite() {
                    return Ok(Value::Null); // OverflowError / ValueError
                }
                let r = f.round_ties_even();
                if r.abs() >= 9.2e18 {
                    return fb("round() beyond 64 bits");
                }
                Ok(Value::Int(r as i64))
            }
            Some(n) => {
                if !f.is_finite() {
                    return Ok(Value::Float(*f));
                }
                // Both are correctly rounded, ties to even, on the exact binary value.
                let text = format!("{f:.n$}");
                match text.parse::<f64>() {
                    Ok(r) => Ok(Value::Float(r)),
                    Err(_) => fb("round() formatting"),
                }
            }
        },
        Value::Decimal(_) | Value::Foreign(_) => fb("round() of an unmodelled value"),
        _ => Ok(Value::Null),
    }
}

fn extreme(args: &[Value], want: Ordering) -> R<Value> {
    let xs: &[Value] = if args.len() == 1 {
        match &args[0] {
            Value::List(xs) | Value::Tuple(xs) if !xs.is_empty() => xs,
            Value::Foreign(_) => return fb("min/max over an unmodelled value"),
            _ => return Ok(Value::Null),
        }
    } else {
        args
    };
    if xs.iter().any(Value::is_null) {
        return Ok(Value::Null);
    }
    let mut best = &xs[0];
    for x in &xs[1..] {
        // min: `x < best`, max: `x > best`; a TypeError makes the whole call null.
        match py_order(x, best)? {
            None => return Ok(Value::Null),
            Some(o) => {
                if o == Some(want) {
                    best = x;
                }
            }
        }
    }
    if xs.len() == 1 && unmodelled(best) {
        return fb("min/max of an unmodelled value");
    }
    Ok(best.clone())
}

/// Outcome of reading an ISO text the way `datetime.fromisoformat` (Python 3.11) would.
enum Iso {
    At(i64, Tz),
    /// Python certainly rejects it (and `date.fromisoformat` too).
    Invalid,
    /// Not a form this reader knows: let the reference decide.
    Unknown,
}

fn digits(s: &[u8]) -> Option<i64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0i64, |a, d| a * 10 + i64::from(d - b'0')))
}

/// `YYYY-MM-DD[(T| )HH[:MM[:SS[.f{1,6}]]][Z|±HH:MM]]`; anything else is `Unknown` unless it
/// cannot start an ISO date at all.
fn parse_iso(s: &str) -> Iso {
    let b = s.as_bytes();
    if b.len() < 4 || !b[..4].iter().all(u8::is_ascii_digit) || !s.is_ascii() {
        return if s.is_ascii() {
            Iso::Invalid
        } else {
            Iso::Unknown
        };
    }
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Iso::Unknown;
    }
    let (Some(y), Some(m), Some(d)) = (digits(&b[0..4]), digits(&b[5..7]), digits(&b[8..10]))
    else {
        return Iso::Unknown;
    };
    let Some(ord) = ymd_to_ordinal(y, m, d) else {
        return Iso::Unknown;
    };
    let day_us = (ord - EPOCH_ORDINAL) * DAY_US;
    if b.len() == 10 {
        return Iso::At(day_us, Tz::Naive);
    }
    if b[10] != b'T' && b[10] != b' ' {
        return Iso::Unknown;
    }
    let mut rest = &b[11..];
    let take2 = |rest: &mut &[u8]| -> Option<i64> {
        let v = digits(rest.get(..2)?)?;
        *rest = &rest[2..];
        Some(v)
    };
    let Some(h) = take2(&mut rest) else {
        return Iso::Unknown;
    };
    let (mut mi, mut sec, mut frac) = (0, 0, 0);
    if rest.first() == Some(&b':') {
        rest = &rest[1..];
        let Some(v) = take2(&mut rest) else {
            return Iso::Unknown;
        };
        mi = v;
        if rest.first() == Some(&b':') {
            rest = &rest[1..];
            let Some(v) = take2(&mut rest) else {
                return Iso::Unknown;
            };
            sec = v;
            if rest.first() == Some(&b'.') {
                let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
                if !(1..=6).contains(&n) {
                    return Iso::Unknown;
                }
                let Some(f) = digits(&rest[1..1 + n]) else {
                    return Iso::Unknown;
                };
                frac = f * 10i64.pow((6 - n) as u32);
                rest = &rest[1 + n..];
            }
        }
    }
    if h > 23 || mi > 59 || sec > 59 {
        return Iso::Unknown;
    }
    let wall = day_us + ((h * 60 + mi) * 60 + sec) * 1_000_000 + frac;
    match rest {
        [] => Iso::At(wall, Tz::Naive),
        [b'Z'] => Iso::At(wall, Tz::Fixed(0)),
        [sign @ (b'+' | b'-'), hh @ .., b':', m1, m2] if hh.len() == 2 => {
            let (Some(oh), Some(om)) = (digits(hh), digits(&[*m1, *m2])) else {
                return Iso::Unknown;
            };
            if oh > 23 || om > 59 {
                return Iso::Unknown;
            }
            let off = (oh * 3600 + om * 60) * if *sign == b'-' { -1 } else { 1 };
            Iso::At(wall - off * 1_000_000, Tz::Fixed(off as i32))
        }
        _ => Iso::Unknown,
    }
}

/// `_days_since(t, S)` / `_hours_since(t, S)`.
fn since(h: Helper, t: &Value, scope: &dyn Scope) -> R<Value> {
    let now = scope.special("now").unwrap_or(Value::Null);
    let t = match t {
        Value::Str(s) => match parse_iso(s) {
            Iso::At(us, tz) => Value::DateTime(us, tz),
            Iso::Invalid => return Ok(Value::Null),
            Iso::Unknown => return fb("an ISO text this reader does not know"),
        },
        Value::Date(_) | Value::DateTime(..) => t.clone(),
        Value::Foreign(_) => return fb("days_since of an unmodelled value"),
        _ => return Ok(Value::Null),
    };
    let (now_us, now_tz) = match &now {
        Value::DateTime(us, tz) => (*us, tz.clone()),
        Value::Foreign(_) => return fb("an unmodelled now"),
        _ => return Ok(Value::Null),
    };
    let unit = if h == Helper::DaysSince {
        DAY_US
    } else {
        3_600_000_000
    };
    match t {
        Value::DateTime(us, tz) => {
            if (tz == Tz::Naive) != (now_tz == Tz::Naive) {
                return Ok(Value::Null); // TypeError: naive and aware
            }
            Ok(Value::Int((now_us - us).div_euclid(unit)))
        }
        Value::Date(ord) => {
            let wall_now = now_us + i64::from(now_tz.offset().unwrap_or(0)) * 1_000_000;
            let midnight = (i64::from(ord) - EPOCH_ORDINAL) * DAY_US;
            if h == Helper::DaysSince {
                // (now.date() - t).days
                return Ok(Value::Int(wall_now.div_euclid(DAY_US) - midnight / DAY_US));
            }
            // datetime(t, tzinfo=now.tzinfo): a zone's offset at that midnight is unknown here.
            let start = match now_tz {
                Tz::Naive => midnight,
                Tz::Fixed(o) => midnight - i64::from(o) * 1_000_000,
                Tz::Zone(..) => return fb("hours_since(date) in a zone"),
            };
            Ok(Value::Int((now_us - start).div_euclid(unit)))
        }
        _ => Ok(Value::Null),
    }
}

// -- lowering from Python -------------------------------------------------------------------------

fn s_item(t: &Bound<'_, PyAny>, i: usize) -> PyResult<String> {
    t.get_item(i)?.extract()
}

/// A constant as `lower_expr.encode` writes it.
pub fn decode_const(c: &Bound<'_, PyAny>) -> PyResult<Value> {
    let tag: String = s_item(c, 0)?;
    Ok(match tag.as_str() {
        "null" => Value::Null,
        "bool" => Value::Bool(c.get_item(1)?.extract()?),
        "int" => Value::Int(c.get_item(1)?.extract()?),
        "float" => Value::Float(c.get_item(1)?.extract()?),
        "str" => Value::Str(Arc::from(s_item(c, 1)?.as_str())),
        "date" => Value::Date(c.get_item(1)?.extract()?),
        "dur" => Value::Duration(c.get_item(1)?.extract()?),
        "dt" => {
            let us: i64 = c.get_item(1)?.extract()?;
            let kind: String = s_item(c, 2)?;
            let off: i32 = c.get_item(3)?.extract()?;
            let tz = match kind.as_str() {
                "naive" => Tz::Naive,
                "fixed" => Tz::Fixed(off),
                "zone" => Tz::Zone(Arc::from(s_item(c, 4)?.as_str()), off),
                k => {
                    return Err(PyValueError::new_err(format!(
                        "unknown datetime kind {k:?}"
                    )))
                }
            };
            Value::DateTime(us, tz)
        }
        "tuple" | "list" => {
            let items = c.get_item(1)?;
            let vs: PyResult<Vec<Value>> = items.try_iter()?.map(|x| decode_const(&x?)).collect();
            let vs: Arc<[Value]> = Arc::from(vs?);
            if tag == "tuple" {
                Value::Tuple(vs)
            } else {
                Value::List(vs)
            }
        }
        t => return Err(PyValueError::new_err(format!("unknown constant tag {t:?}"))),
    })
}

impl Program {
    /// The program of `lower_expr.lower_expr(expr)`'s list of instruction tuples.
    pub fn from_py(code: &Bound<'_, PyAny>) -> PyResult<Program> {
        let mut ops = Vec::new();
        for ins in code.try_iter()? {
            let ins = ins?;
            let name: String = s_item(&ins, 0)?;
            let arc = |i: usize| -> PyResult<Arc<str>> { Ok(Arc::from(s_item(&ins, i)?.as_str())) };
            let usz = |i: usize| -> PyResult<usize> { ins.get_item(i)?.extract() };
            ops.push(match name.as_str() {
                "const" => Op::Const(decode_const(&ins.get_item(1)?)?),
                "field" => Op::Field(arc(1)?),
                "event" => Op::Event(arc(1)?),
                "special" => Op::Special(arc(1)?),
                "evpath" => {
                    let parts: Vec<String> = ins.get_item(2)?.extract()?;
                    let parts: Vec<Arc<str>> =
                        parts.iter().map(|p| Arc::from(p.as_str())).collect();
                    Op::EventPath(arc(1)?, Arc::from(parts))
                }
                "is_none" => Op::IsNone,
                "not_none" => Op::NotNone,
                "is_true" => Op::IsTrue,
                "not" => Op::Not,
                "eq" => Op::Eq,
                "ne" => Op::Ne,
                "in" => Op::In,
                "not_in" => Op::NotIn,
                "call" => {
                    let h: String = s_item(&ins, 1)?;
                    let helper = Helper::parse(&h)
                        .ok_or_else(|| PyValueError::new_err(format!("unknown helper {h:?}")))?;
                    Op::Call(helper, usz(2)?)
                }
                "store" => Op::Store(usz(1)?),
                "load" => Op::Load(usz(1)?),
                "and" => Op::And(usz(1)?),
                "or" => Op::Or(usz(1)?),
                "tuple" => Op::Tuple(usz(1)?),
                "list" => Op::List,
                n => return Err(PyValueError::new_err(format!("unknown instruction {n:?}"))),
            });
        }
        Program::new(ops).map_err(PyValueError::new_err)
    }
}

// -- Python exposure (tests) ----------------------------------------------------------------------

/// A [`Scope`] over the three Python mappings `F`, `E`, `S`, read exactly as the generated code
/// reads them.
pub struct PyScope<'py> {
    pub fields: Bound<'py, PyAny>,
    pub event: Bound<'py, PyAny>,
    pub specials: Bound<'py, PyAny>,
}

fn conv(r: PyResult<Bound<'_, PyAny>>) -> Option<Value> {
    match r {
        Ok(v) => Some(Value::from_py(&v).unwrap_or(Value::Foreign(Arc::from("error")))),
        Err(_) => Some(Value::Foreign(Arc::from("error"))),
    }
}

impl Scope for PyScope<'_> {
    fn get(&self, name: &str) -> Option<Value> {
        conv(self.fields.call_method1("get", (name,)))
    }
    fn event(&self, key: &str) -> Option<Value> {
        conv(self.event.call_method1("get", (key,)))
    }
    fn event_path(&self, flat: &str, parts: &[Arc<str>]) -> Option<Value> {
        let py = self.event.py();
        let walk = || -> PyResult<Bound<'_, PyAny>> {
            if self.event.contains(flat)? {
                return self.event.get_item(flat);
            }
            let mapping = py.import("collections.abc")?.getattr("Mapping")?;
            let mut v = self.event.clone();
            for p in parts {
                if !v.is_instance(&mapping)? {
                    return Ok(py.None().into_bound(py));
                }
                v = v.call_method1("get", (&**p,))?;
            }
            Ok(v)
        };
        conv(walk())
    }
    fn special(&self, name: &str) -> Option<Value> {
        conv(self.specials.call_method1("get", (name,)))
    }
}

/// `_expr_eval(code, F, E, S)`: the VM's value for Python mappings, or the `("fallback", why)`
/// tuple when it would defer to the reference.
#[pyfunction]
fn _expr_eval(
    py: Python<'_>,
    code: &Bound<'_, PyAny>,
    fields: Bound<'_, PyAny>,
    event: Bound<'_, PyAny>,
    specials: Bound<'_, PyAny>,
) -> PyResult<PyObject> {
    let prog = Program::from_py(code)?;
    let scope = PyScope {
        fields,
        event,
        specials,
    };
    match prog.eval(&scope) {
        Ok(v) => v.to_py(py),
        Err(EvalError::Fallback(why)) => {
            Ok(PyTuple::new(py, ["fallback", why])?.into_any().unbind())
        }
    }
}

/// `_value_roundtrip(x)`: `Value::from_py` then `to_py`; `...` for a value holding a foreign one.
#[pyfunction]
fn _value_roundtrip(py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<PyObject> {
    fn foreign(v: &Value) -> bool {
        match v {
            Value::Foreign(_) => true,
            Value::List(xs) | Value::Tuple(xs) => xs.iter().any(foreign),
            _ => false,
        }
    }
    let v = Value::from_py(x)?;
    if foreign(&v) {
        return Ok(py.Ellipsis());
    }
    v.to_py(py)
}

/// Register the test-only functions of the VM.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_expr_eval, m)?)?;
    m.add_function(wrap_pyfunction!(_value_roundtrip, m)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct M(HashMap<&'static str, Value>);
    impl Scope for M {
        fn get(&self, n: &str) -> Option<Value> {
            self.0.get(n).cloned()
        }
        fn event(&self, k: &str) -> Option<Value> {
            self.0.get(format!("event.{k}").as_str()).cloned()
        }
        fn event_path(&self, f: &str, _p: &[Arc<str>]) -> Option<Value> {
            self.event(f)
        }
        fn special(&self, n: &str) -> Option<Value> {
            self.0.get(n).cloned()
        }
    }

    fn run(ops: Vec<Op>, m: &M) -> R<Value> {
        Program::new(ops).unwrap().eval(m)
    }

    #[test]
    fn int_float_compare_exactly() {
        assert_eq!(cmp_int_float(1, 1.0), Some(Ordering::Equal));
        assert_eq!(
            cmp_int_float(9_007_199_254_740_993, 9_007_199_254_740_992.0),
            Some(Ordering::Greater)
        );
        assert_eq!(
            cmp_int_float(i64::MAX, i64::MAX as f64),
            Some(Ordering::Less)
        );
        assert_eq!(cmp_int_float(-3, -2.5), Some(Ordering::Less));
        assert_eq!(cmp_int_float(0, f64::NAN), None);
    }

    #[test]
    fn and_or_short_circuit() {
        let m = M(HashMap::from([("priority", Value::str("high"))]));
        let ops = vec![
            Op::Field(Arc::from("priority")),
            Op::Const(Value::str("high")),
            Op::Eq,
            Op::And(7),
            Op::Field(Arc::from("missing")),
            Op::Const(Value::Null),
            Op::Eq,
        ];
        assert!(matches!(run(ops, &m), Ok(Value::Bool(true))));
    }

    #[test]
    fn rejects_bad_programs() {
        assert!(Program::new(vec![Op::Eq]).is_err());
        assert!(Program::new(vec![Op::Const(Value::Null), Op::Const(Value::Null)]).is_err());
        assert!(Program::new(vec![Op::Load(0)]).is_err());
        assert!(Program::new(vec![Op::Const(Value::Null), Op::And(0)]).is_err());
    }

    #[test]
    fn iso_texts() {
        assert!(matches!(
            parse_iso("2026-04-30T08:00:00+07:00"),
            Iso::At(_, Tz::Fixed(25200))
        ));
        assert!(matches!(parse_iso("2026-04-30"), Iso::At(_, Tz::Naive)));
        assert!(matches!(parse_iso("hello"), Iso::Invalid));
        assert!(matches!(parse_iso("20260430"), Iso::Unknown));
    }
}

#[cfg(test)]
mod bench {
    use super::*;
    use std::collections::HashMap;

    struct M(HashMap<&'static str, Value>);
    impl Scope for M {
        fn get(&self, n: &str) -> Option<Value> {
            self.0.get(n).cloned()
        }
        fn event(&self, k: &str) -> Option<Value> {
            self.0.get(k).cloned()
        }
        fn event_path(&self, f: &str, _p: &[Arc<str>]) -> Option<Value> {
            self.event(f)
        }
        fn special(&self, n: &str) -> Option<Value> {
            self.0.get(n).cloned()
        }
    }

    /// `cargo test --release --lib -- --ignored --nocapture eval_cost`
    #[test]
    #[ignore]
    fn eval_cost() {
        let m = M(HashMap::from([
            ("segment", Value::str("vip")),
            ("channel", Value::str("chat")),
        ]));
        // segment == "vip" and channel in ["chat", "zalo"]
        let p = Program::new(vec![
            Op::Special(Arc::from("segment")),
            Op::Const(Value::str("vip")),
            Op::Eq,
            Op::And(8),
            Op::Field(Arc::from("channel")),
            Op::Const(Value::Tuple(Arc::from(vec![
                Value::str("chat"),
                Value::str("zalo"),
            ]))),
            Op::In,
            Op::IsTrue,
        ])
        .unwrap();
        let n = 1_000_000;
        let t = std::time::Instant::now();
        let mut k = 0;
        for _ in 0..n {
            k += usize::from(p.holds(&m).unwrap());
        }
        println!(
            "{:.1} ns per eval ({k})",
            t.elapsed().as_nanos() as f64 / n as f64
        );
        let q = Program::new(vec![Op::Const(Value::Bool(true))]).unwrap();
        let t = std::time::Instant::now();
        for _ in 0..n {
            k += usize::from(q.holds(&m).unwrap());
        }
        println!(
            "{:.1} ns per trivial eval ({k})",
            t.elapsed().as_nanos() as f64 / n as f64
        );
        let t = std::time::Instant::now();
        for _ in 0..n {
            k += usize::from(m.special("segment").is_some());
        }
        println!(
            "{:.1} ns per lookup ({k})",
            t.elapsed().as_nanos() as f64 / n as f64
        );
        for ops in [
            vec![
                Op::Special(Arc::from("segment")),
                Op::Const(Value::str("vip")),
                Op::Eq,
            ],
            vec![
                Op::Const(Value::str("vip")),
                Op::Const(Value::str("vip")),
                Op::Eq,
            ],
            vec![
                Op::Field(Arc::from("channel")),
                Op::Const(Value::Tuple(Arc::from(vec![
                    Value::str("chat"),
                    Value::str("zalo"),
                ]))),
                Op::In,
            ],
        ] {
            let q = Program::new(ops).unwrap();
            let t = std::time::Instant::now();
            for _ in 0..n {
                k += usize::from(q.holds(&m).unwrap());
            }
            println!(
                "{:.1} ns per part ({k})",
                t.elapsed().as_nanos() as f64 / n as f64
            );
        }
        let t = std::time::Instant::now();
        println!(
            "{:.1} ns per lookup ({k})",
            t.elapsed().as_nanos() as f64 / n as f64
        );
    }
}
