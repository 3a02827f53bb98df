//! The JSON text of a core state, written by the core: the very bytes
//! `carepath._instants.dumps(carepath._native.state_json.state_dict(...))` gives with orjson
//! present (keys sorted by their UTF-8 bytes, compact separators, orjson's string escaping and
//! float spelling), without building the Python dictionary first.
//!
//! A store encodes every state it saves; the dictionary and its encoding cost about as much as
//! the step itself. Every rule of `state_dict` (`_clock`, `_row`, `_secs`, `_instant`: defaults
//! and implied values left out, whole seconds as integers, seconds rounded to microseconds as a
//! `timedelta` or a `datetime` holds them) is applied here in the same order.
//!
//! Whatever this writer cannot spell exactly as today's path does stops it ([`Skip`]): an integer
//! beyond 64 bits, a string with a lone surrogate, a non-finite clock number, a dict key that is
//! not a `str`, a value of any other type (a `datetime`, a `Decimal`, a subclass), nesting deeper
//! than [`MAX_DEPTH`], any Python error. The Python path then writes the text, as it does today.
//! The ISO 8601 texts of the instants (`now`, `opened`, `next_wakeup`) come from the Python
//! callable the caller passes (`state_json._iso`, cached per timezone).

use std::fmt::Write as _;

use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString, PyTuple, PyType};

use crate::state::{round_us, ClockW, Owner, Pend, Rec, Snap, Status};

/// The writer stopped: the Python path writes the text instead.
#[derive(Debug, PartialEq, Eq)]
pub struct Skip;

impl From<PyErr> for Skip {
    fn from(_: PyErr) -> Self {
        Skip
    }
}

impl From<std::fmt::Error> for Skip {
    fn from(_: std::fmt::Error) -> Self {
        Skip
    }
}

type W<T = ()> = Result<T, Skip>;

/// Nesting of case data beyond which the Python path writes the text (orjson stops at 255).
pub const MAX_DEPTH: usize = 128;

/// 2**53: `_n` writes a whole float below it as an integer.
const EXACT: f64 = 9_007_199_254_740_992.0;

struct Types {
    proxy: Py<PyType>,
    record: Py<PyType>,
    pending: Py<PyType>,
}

static TYPES: GILOnceCell<Types> = GILOnceCell::new();

fn types(py: Python<'_>) -> PyResult<&Types> {
    TYPES.get_or_try_init(py, || {
        let t = |m: &str, n: &str| -> PyResult<Py<PyType>> {
            Ok(py
                .import(m)?
                .getattr(n)?
                .downcast_into::<PyType>()?
                .unbind())
        };
        Ok(Types {
            proxy: t("types", "MappingProxyType")?,
            record: t("carepath.state", "ClockRecord")?,
            pending: t("carepath.state", "Pending")?,
        })
    })
}

// -- scalars -----------------------------------------------------------------------------------

/// A JSON string as orjson writes it: `"` and `\` escaped, the control characters below U+0020
/// as `\b \t \n \f \r` or `\u00xx`, everything else (non-ASCII included) kept as UTF-8.
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    if !s.bytes().fold(false, |any, b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    }) {
        // the usual case: nothing to escape
        out.push_str(s);
        out.push('"');
        return;
    }
    let mut start = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\t' => "\\t",
            b'\r' => "\\r",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]); // `b` is ASCII: `i` is a character boundary
        if short.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        } else {
            out.push_str(short);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// A fixed buffer for one float's shortest digits (no allocation per number).
struct Digits {
    buf: [u8; 40],
    len: usize,
}

impl std::fmt::Write for Digits {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// A finite float as orjson spells it: Python's `repr` (the shortest digits that read back to
/// the same float), but in plain decimals from `1e-5` on (`0.00001`, where `repr` writes
/// `1e-05`) and with the exponent unpadded (`1e-7`, `1e+16`). `-0.0` keeps its sign.
pub fn write_float(out: &mut String, x: f64) -> W {
    if !x.is_finite() {
        return Err(Skip);
    }
    let mut d = Digits {
        buf: [0; 40],
        len: 0,
    };
    let ax = x.abs();
    write!(d, "{ax:e}")?; // "1.2345e-7", "1e16", "0e0": the shortest round-trip digits
    let shortest = std::str::from_utf8(&d.buf[..d.len]).map_err(|_| Skip)?;
    // Among the shortest, `repr` takes the one nearest the float (ties to even), which Rust's
    // shortest mode does not promise (`562949953421312.25`: `.2` for `repr`, `.3` for Rust): the
    // nearest of that many digits, when it reads back to the float.
    let n = shortest
        .split_once('e')
        .map_or(0, |(m, _)| m.len() - usize::from(m.contains('.')));
    let mut e = Digits {
        buf: [0; 40],
        len: 0,
    };
    write!(e, "{:.*e}", n.saturating_sub(1), ax)?;
    let nearest = std::str::from_utf8(&e.buf[..e.len]).map_err(|_| Skip)?;
    let text = if nearest != shortest && nearest.parse::<f64>() == Ok(ax) {
        nearest
    } else {
        shortest
    };
    let (mant, exp) = text.split_once('e').ok_or(Skip)?;
    let exp: i32 = exp.parse().map_err(|_| Skip)?;
    let (lead, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if x.is_sign_negative() {
        out.push('-');
    }
    if (-5..16).contains(&exp) {
        let digits_len = lead.len() + frac.len();
        if exp < 0 {
            out.push_str("0.");
            for _ in 0..(-exp - 1) {
                out.push('0');
            }
            out.push_str(lead);
            out.push_str(frac);
        } else {
            let point = usize::try_from(exp).map_err(|_| Skip)? + 1; // digits before the point
            let all = [lead, frac];
            let mut written = 0;
            for part in all {
                for ch in part.chars() {
                    if written == point {
                        out.push('.');
                    }
                    out.push(ch);
                    written += 1;
                }
            }
            if digits_len <= point {
                for _ in digits_len..point {
                    out.push('0');
                }
                out.push_str(".0");
            }
        }
    } else {
        out.push_str(lead);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        write_u64(out, false, u64::from(exp.unsigned_abs()));
    }
    Ok(())
}

fn write_int(out: &mut String, i: i64) -> W {
    write_u64(out, i < 0, i.unsigned_abs());
    Ok(())
}

/// An integer's decimal digits (no `fmt` machinery: a state holds dozens).
fn write_u64(out: &mut String, negative: bool, mut u: u64) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    if negative {
        out.push('-');
    }
    out.push_str(std::str::from_utf8(&buf[at..]).unwrap_or("0")); // ASCII digits
}

/// `_n(x)` written: a whole float below 2**53 as an integer, any other finite float as orjson
/// spells it.
pub fn write_n(out: &mut String, x: f64) -> W {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < EXACT {
        write_int(out, x as i64)
    } else {
        write_float(out, x)
    }
}

fn write_opt_n(out: &mut String, x: Option<f64>) -> W {
    match x {
        Some(v) => write_n(out, v),
        None => {
            out.push_str("null");
            Ok(())
        }
    }
}

/// `timedelta(seconds=x).total_seconds()`: `x` split as CPython's `timedelta` constructor splits
/// a float (whole seconds exactly, the fraction's microseconds rounded half to even), divided
/// back. Beyond 2**53 microseconds the division is not the float's own: the Python path.
pub fn td_seconds(x: f64) -> W<f64> {
    if !x.is_finite() || x.abs() >= EXACT / 1e6 {
        return Err(Skip);
    }
    let ip = x.trunc();
    let frac = x - ip; // exact, as modf
    let mut sum = (ip as i64) * 1_000_000;
    if frac != 0.0 {
        let d = frac * 1e6;
        let ip2 = d.trunc();
        let left = d - ip2;
        sum += ip2 as i64;
        let mut whole = left.round(); // C `round`: half away from zero
        if (whole - left).abs() == 0.5 {
            let odd = f64::from(u8::from(sum & 1 == 1));
            whole = 2.0 * ((left + odd) * 0.5).round() - odd;
        }
        sum += whole as i64;
    }
    Ok(sum as f64 / 1e6)
}

/// `_instant(x)`'s value: POSIX seconds as a `datetime` holds them and `round_micros` reads them
/// back (whole seconds unchanged).
fn instant(x: f64) -> W<f64> {
    if !x.is_finite() {
        return Err(Skip);
    }
    if x.fract() == 0.0 && x.abs() < EXACT {
        return Ok(x);
    }
    Ok(round_us(round_us(x)))
}

/// `float(_n(x))`: what `_clock` compares a history row's value with.
fn n_value(x: f64) -> f64 {
    if x.fract() == 0.0 && x.abs() < EXACT {
        (x as i64) as f64
    } else {
        x
    }
}

// -- Python values -----------------------------------------------------------------------------

/// An exact `str`'s text (a lone surrogate stops the writer, as it stops orjson).
fn text<'a>(v: &'a Bound<'_, PyAny>) -> W<&'a str> {
    if !v.is_exact_instance_of::<PyString>() {
        return Err(Skip);
    }
    Ok(v.downcast::<PyString>().map_err(PyErr::from)?.to_str()?)
}

/// A mapping's `(key, value)` pairs.
type Items<'py> = Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>;

/// A mapping's items sorted by key (exact `str` keys only), keys borrowed from the items.
fn sorted_items<'a, 'py>(items: &'a Items<'py>) -> W<Vec<(&'a str, &'a Bound<'py, PyAny>)>> {
    let mut out = Vec::with_capacity(items.len());
    for (k, v) in items {
        out.push((text(k)?, v));
    }
    out.sort_unstable_by(|a, b| a.0.cmp(b.0)); // `str` order is the order of the UTF-8 bytes
    Ok(out)
}

fn mapping_items<'py>(v: &Bound<'py, PyAny>, proxy: bool) -> W<Option<Items<'py>>> {
    if v.is_exact_instance_of::<PyDict>() {
        return Ok(Some(
            v.downcast::<PyDict>()
                .map_err(PyErr::from)?
                .iter()
                .collect(),
        ));
    }
    if proxy && v.get_type().is(types(v.py())?.proxy.bind(v.py())) {
        let items = v.downcast::<PyMapping>().map_err(PyErr::from)?.items()?;
        let mut out = Vec::with_capacity(items.len());
        for it in items.iter() {
            let pair = it.downcast_into::<PyTuple>().map_err(PyErr::from)?;
            out.push((pair.get_item(0)?, pair.get_item(1)?));
        }
        return Ok(Some(out));
    }
    Ok(None)
}

/// A JSON value of case data as `json_data` then orjson write it: `None`, `bool`, `int` (64
/// bits), `float` (a non-finite one as `null`, as `json_value` makes it), `str`, `list` and
/// `tuple` (as lists), `dict` (and, with `proxy`, a `MappingProxyType`: `json_value` makes them
/// dicts) with `str` keys. Anything else stops the writer.
pub fn write_value(out: &mut String, v: &Bound<'_, PyAny>, depth: usize, proxy: bool) -> W {
    if depth > MAX_DEPTH {
        return Err(Skip);
    }
    if v.is_none() {
        out.push_str("null");
    } else if v.is_exact_instance_of::<PyString>() {
        write_str(out, text(v)?);
    } else if v.is_exact_instance_of::<PyBool>() {
        out.push_str(if v.is_truthy()? { "true" } else { "false" });
    } else if v.is_exact_instance_of::<PyInt>() {
        if let Ok(i) = v.extract::<i64>() {
            write_int(out, i)?;
        } else {
            let u: u64 = v.extract()?; // beyond 64 bits: orjson refuses it, the Python path
            write_u64(out, false, u);
        }
    } else if v.is_exact_instance_of::<PyFloat>() {
        let x = v.downcast::<PyFloat>().map_err(PyErr::from)?.value();
        if x.is_finite() {
            write_float(out, x)?;
        } else {
            out.push_str("null");
        }
    } else if v.is_exact_instance_of::<PyList>() {
        let l = v.downcast::<PyList>().map_err(PyErr::from)?;
        out.push('[');
        for (i, x) in l.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_value(out, &x, depth + 1, proxy)?;
        }
        out.push(']');
    } else if v.is_exact_instance_of::<PyTuple>() {
        let t = v.downcast::<PyTuple>().map_err(PyErr::from)?;
        out.push('[');
        for (i, x) in t.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_value(out, &x, depth + 1, proxy)?;
        }
        out.push(']');
    } else if let Some(items) = mapping_items(v, proxy)? {
        out.push('{');
        for (i, (k, x)) in sorted_items(&items)?.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_str(out, k);
            out.push(':');
            write_value(out, x, depth + 1, proxy)?;
        }
        out.push('}');
    } else {
        return Err(Skip);
    }
    Ok(())
}

/// `_n(v)` of a Python value, written.
fn write_n_py(out: &mut String, v: &Bound<'_, PyAny>) -> W {
    if v.is_exact_instance_of::<PyFloat>() {
        return write_n(out, v.downcast::<PyFloat>().map_err(PyErr::from)?.value());
    }
    write_value(out, v, 0, false)
}

// -- the state ---------------------------------------------------------------------------------

/// A JSON object written key by key (the caller gives the keys in sorted order).
struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    fn new(out: &'a mut String) -> Self {
        out.push('{');
        Obj { out, first: true }
    }

    fn key(&mut self, k: &str) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        write_str(self.out, k);
        self.out.push(':');
        self.out
    }

    fn end(self) {
        self.out.push('}');
    }
}

/// A history row's values as `_row` gives them (numbers already as `_n` writes them).
struct Row {
    cycle: i64,
    started: f64,
    stopped: f64,
    elapsed: f64,
    paused: f64,
    target: Option<f64>,
    met: Option<bool>,
    failed: Option<f64>,
}

fn secs_value(x: f64) -> W<f64> {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < EXACT {
        return Ok(x);
    }
    td_seconds(x)
}

fn opt_bool(v: &Bound<'_, PyAny>) -> W<Option<bool>> {
    if v.is_none() {
        Ok(None)
    } else if v.is_exact_instance_of::<PyBool>() {
        Ok(Some(v.is_truthy()?))
    } else {
        Err(Skip)
    }
}

fn total_seconds(v: &Bound<'_, PyAny>) -> W<Option<f64>> {
    if v.is_none() {
        return Ok(None);
    }
    let x: f64 = v.call_method0("total_seconds")?.extract()?;
    if !x.is_finite() {
        return Err(Skip);
    }
    Ok(Some(x))
}

fn row(py: Python<'_>, r: &Rec) -> W<Row> {
    match r {
        Rec::Raw(cycle, started, stopped, elapsed, paused, target, met, failed) => Ok(Row {
            cycle: *cycle,
            started: instant(*started)?,
            stopped: instant(*stopped)?,
            elapsed: secs_value(*elapsed)?,
            paused: secs_value(*paused)?,
            target: target.map(secs_value).transpose()?,
            met: *met,
            failed: failed.map(secs_value).transpose()?,
        }),
        Rec::Py(o) => {
            let o = o.bind(py);
            if !o.get_type().is(types(py)?.record.bind(py)) {
                return Err(Skip);
            }
            let cycle = o.getattr("cycle")?;
            if !cycle.is_exact_instance_of::<PyInt>() {
                return Err(Skip);
            }
            let stamp = |name: &str| -> W<f64> {
                let x: f64 = o.getattr(name)?.call_method0("timestamp")?.extract()?;
                if !x.is_finite() {
                    return Err(Skip);
                }
                Ok(round_us(x))
            };
            Ok(Row {
                cycle: cycle.extract()?,
                started: stamp("started")?,
                stopped: stamp("stopped")?,
                elapsed: total_seconds(&o.getattr("elapsed")?)?.ok_or(Skip)?,
                paused: total_seconds(&o.getattr("paused")?)?.ok_or(Skip)?,
                target: total_seconds(&o.getattr("target")?)?,
                met: opt_bool(&o.getattr("met")?)?,
                failed: total_seconds(&o.getattr("failed_by")?)?,
            })
        }
    }
}

fn write_row(out: &mut String, r: &Row) -> W {
    out.push('[');
    write_int(out, r.cycle)?;
    for x in [r.started, r.stopped, r.elapsed, r.paused] {
        out.push(',');
        write_n(out, x)?;
    }
    out.push(',');
    write_opt_n(out, r.target)?;
    out.push(',');
    out.push_str(match r.met {
        Some(true) => "true",
        Some(false) => "false",
        None => "null",
    });
    out.push(',');
    write_opt_n(out, r.failed)?;
    out.push(']');
    Ok(())
}

/// `_clock(c, now_s)`: a field is written when it differs from what the decoder infers, else
/// when it differs from its default (`Clock.to_dict`'s rules, in its order; keys sorted).
fn write_clock(py: Python<'_>, out: &mut String, c: &ClockW, now_s: f64) -> W {
    let elapsed = round_us(c.elapsed_s); // the frozen values a state holds
    let paused = round_us(c.paused_s);
    let closed = matches!(c.status, Status::Met | Status::Breached | Status::Cancelled);
    let last = match c.history.last() {
        Some(r) if closed => Some(row(py, r)?),
        _ => None,
    };
    // (started, as_of, elapsed, paused): `Some(value)` where the field is written
    let (mut started_w, mut as_of_w, mut elapsed_w, mut paused_w) = (None, None, None, None);
    let (closed_target, implied_target) = match &last {
        Some(r) if r.cycle == c.cycle => {
            // the closed cycle's own values are its last row
            if c.started_s != Some(n_value(r.started)) {
                started_w = Some(c.started_s);
            }
            if c.as_of_s != Some(n_value(r.stopped)) {
                as_of_w = Some(c.as_of_s);
            }
            if elapsed != n_value(r.elapsed) {
                elapsed_w = Some(elapsed);
            }
            if paused != n_value(r.paused) {
                paused_w = Some(paused);
            }
            (r.target.map(n_value), true)
        }
        _ => {
            if c.started_s.is_some() {
                started_w = Some(c.started_s);
            }
            let implied_as_of = if c.status != Status::Pending {
                Some(now_s)
            } else {
                None
            };
            if c.as_of_s != implied_as_of {
                as_of_w = Some(c.as_of_s);
            }
            if elapsed != 0.0 {
                elapsed_w = Some(elapsed);
            }
            if paused != 0.0 {
                paused_w = Some(paused);
            }
            (None, false)
        }
    };
    let target_w = if implied_target {
        c.target_s != closed_target
    } else {
        c.target_s.is_some()
    };
    let implied_due = if c.breached { c.breach_s } else { None };
    let mut o = Obj::new(out);
    if let Some(x) = as_of_w {
        write_opt_n(o.key("as_of_s"), x)?;
    }
    if let Some(x) = c.breach_s {
        write_n(o.key("breach_s"), x)?;
    }
    if c.breached {
        o.key("breached").push_str("true");
    }
    if let Some(cal) = &c.calendar {
        write_str(o.key("calendar"), cal);
    }
    if c.conds != 0 {
        write_int(o.key("conds"), c.conds)?;
    }
    if c.cycle != 0 {
        write_int(o.key("cycle"), c.cycle)?;
    }
    if c.due_s != implied_due {
        write_opt_n(o.key("due_s"), c.due_s)?;
    }
    if let Some(x) = elapsed_w {
        write_n(o.key("elapsed_s"), x)?;
    }
    if c.fired != 0 {
        write_u64(o.key("fired"), false, c.fired as u64);
    }
    if !c.history.is_empty() {
        let w = o.key("history");
        w.push('[');
        for (i, r) in c.history.iter().enumerate() {
            if i > 0 {
                w.push(',');
            }
            write_row(w, &row(py, r)?)?;
        }
        w.push(']');
    }
    if let Some(x) = c.pause_from_s {
        write_n(o.key("pause_from_s"), x)?;
    }
    if let Some(x) = paused_w {
        write_n(o.key("paused_s"), x)?;
    }
    if !c.pauses.is_empty() {
        let w = o.key("pauses");
        w.push('[');
        for (i, (a, b)) in c.pauses.iter().enumerate() {
            if i > 0 {
                w.push(',');
            }
            w.push('[');
            write_n(w, *a)?;
            w.push(',');
            write_n(w, *b)?;
            w.push(']');
        }
        w.push(']');
    }
    if let Some(x) = started_w {
        write_opt_n(o.key("started_s"), x)?;
    }
    write_str(o.key("status"), c.status.as_str());
    if let Some(i) = c.target_index {
        write_int(o.key("target_index"), i)?;
    }
    if target_w {
        write_opt_n(o.key("target_s"), c.target_s)?;
    }
    o.end();
    Ok(())
}

/// A pending item as `[_n(due), kind, ref, list(owner), seq, _n(origin)]` (`Pending.to_list`
/// for one a Python state held).
fn write_pending(py: Python<'_>, out: &mut String, p: &Pend) -> W {
    out.push('[');
    if let Some(o) = &p.obj {
        let o = o.bind(py);
        if !o.get_type().is(types(py)?.pending.bind(py)) {
            return Err(Skip);
        }
        write_n_py(out, &o.getattr("due")?)?;
        out.push(',');
        write_value(out, &o.getattr("kind")?, 0, false)?;
        out.push(',');
        write_value(out, &o.getattr("ref")?, 0, false)?;
        out.push(',');
        let owner = o.getattr("owner")?;
        if !(owner.is_exact_instance_of::<PyTuple>() || owner.is_exact_instance_of::<PyList>()) {
            return Err(Skip);
        }
        write_value(out, &owner, 0, false)?;
        out.push(',');
        write_value(out, &o.getattr("seq")?, 0, false)?;
        out.push(',');
        write_n_py(out, &o.getattr("origin")?)?;
    } else {
        write_n(out, p.due)?;
        out.push(',');
        write_str(out, p.kind.as_str());
        out.push(',');
        write_str(out, &p.ref_);
        out.push(',');
        match &p.owner {
            Owner::Keep | Owner::Other => out.push_str("[]"),
            Owner::Stage(e) => {
                out.push_str("[\"stage\",");
                write_int(out, *e)?;
                out.push(']');
            }
            Owner::Clock(n, c) => {
                out.push_str("[\"clock\",");
                write_str(out, n);
                out.push(',');
                write_int(out, *c)?;
                out.push(']');
            }
        }
        out.push(',');
        write_int(out, p.seq)?;
        out.push(',');
        write_n(out, p.origin)?;
    }
    out.push(']');
    Ok(())
}

fn write_iso(out: &mut String, iso: &Bound<'_, PyAny>, x: Option<f64>, tz: &Bound<'_, PyAny>) -> W {
    match x {
        None => out.push_str("null"),
        Some(t) => {
            let s = iso.call1((t, tz))?;
            write_str(out, text(&s)?);
        }
    }
    Ok(())
}

/// The state's JSON text (see the module documentation). `consts` is `(format, playbook id,
/// version, content hash, timezone)`; `iso(x, timezone)` gives an instant's ISO 8601 text.
pub fn state_json(
    py: Python<'_>,
    s: &Snap,
    consts: &Bound<'_, PyTuple>,
    iso: &Bound<'_, PyAny>,
) -> W<String> {
    if consts.len() != 5 {
        return Err(Skip);
    }
    let (format, pbid, version, hash, tz) = (
        consts.get_item(0)?,
        consts.get_item(1)?,
        consts.get_item(2)?,
        consts.get_item(3)?,
        consts.get_item(4)?,
    );
    let names = &s.shared.clock_names;
    if names.len() != s.clocks.len() {
        return Err(Skip);
    }
    let mut out = String::with_capacity(2048);
    let mut o = Obj::new(&mut out);
    write_str(o.key("case"), &s.case);
    {
        let mut order: Vec<usize> = (0..names.len()).collect();
        order.sort_unstable_by(|a, b| names[*a].as_bytes().cmp(names[*b].as_bytes()));
        let w = o.key("clocks");
        let mut co = Obj::new(w);
        for i in order {
            let w = co.key(&names[i]);
            match &s.clocks[i] {
                None => w.push_str("{\"status\":\"pending\"}"),
                Some(c) => write_clock(py, w, c, s.now)?,
            }
        }
        co.end();
    }
    {
        let data = s.data.bind(py);
        let items = mapping_items(data, true)?.ok_or(Skip)?;
        let w = o.key("data");
        w.push('{');
        for (i, (k, x)) in sorted_items(&items)?.iter().enumerate() {
            if i > 0 {
                w.push(',');
            }
            write_str(w, k);
            w.push(':');
            write_value(w, x, 1, true)?;
        }
        w.push('}');
    }
    if s.ended {
        o.key("ended").push_str("true");
    }
    write_int(o.key("epoch"), s.epoch)?;
    write_value(o.key("format"), &format, 0, false)?;
    write_iso(o.key("next_wakeup"), iso, s.next_wakeup, &tz)?;
    write_iso(o.key("now"), iso, Some(s.now), &tz)?;
    write_iso(o.key("opened"), iso, Some(s.opened), &tz)?;
    if !s.pending.is_empty() {
        let w = o.key("pending");
        w.push('[');
        for (i, p) in s.pending.iter().enumerate() {
            if i > 0 {
                w.push(',');
            }
            write_pending(py, w, p)?;
        }
        w.push(']');
    }
    {
        let w = o.key("playbook");
        let mut po = Obj::new(w);
        write_value(po.key("hash"), &hash, 0, false)?;
        write_value(po.key("id"), &pbid, 0, false)?;
        write_value(po.key("version"), &version, 0, false)?;
        po.end();
    }
    if s.segment.as_deref() != s.segments.first().map(String::as_str) {
        match &s.segment {
            Some(x) => write_str(o.key("segment"), x),
            None => o.key("segment").push_str("null"),
        }
    }
    {
        let w = o.key("segments");
        w.push('[');
        for (i, x) in s.segments.iter().enumerate() {
            if i > 0 {
                w.push(',');
            }
            write_str(w, x);
        }
        w.push(']');
    }
    if let Some(sends) = &s.sends {
        let sends = sends.bind(py);
        if sends.is_truthy()? {
            let items = mapping_items(sends, true)?.ok_or(Skip)?;
            let w = o.key("sends");
            w.push('{');
            for (i, (k, v)) in sorted_items(&items)?.iter().enumerate() {
                if i > 0 {
                    w.push(',');
                }
                write_str(w, k);
                w.push(':');
                // `list(v)`: a tuple or a list of numbers
                if !(v.is_exact_instance_of::<PyTuple>() || v.is_exact_instance_of::<PyList>()) {
                    return Err(Skip);
                }
                write_value(w, v, 1, false)?;
            }
            w.push('}');
        }
    }
    write_int(o.key("seq"), s.seq)?;
    write_str(o.key("stage"), &s.shared.stage_names[s.stage]);
    match &s.tier {
        Some(x) => write_str(o.key("tier"), x),
        None => o.key("tier").push_str("null"),
    }
    write_value(o.key("timezone"), &tz, 0, false)?;
    o.end();
    Ok(out)
}

/// `timedelta(seconds=x).total_seconds()` as the writer computes it (`None`: the Python path);
/// private, for the tests that hold it to CPython's.
#[pyfunction]
fn _timedelta_seconds(x: f64) -> Option<f64> {
    td_seconds(x).ok()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_timedelta_seconds, m)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(x: f64) -> String {
        let mut s = String::new();
        write_float(&mut s, x).expect("finite");
        s
    }

    #[test]
    fn floats_are_spelled_as_orjson_spells_them() {
        // each checked against orjson 3.13's `orjson.dumps(x)`
        let cases: &[(f64, &str)] = &[
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1.2345678901234568e17, "1.2345678901234568e+17"),
            (1e22, "1e+22"),
            (0.0001, "0.0001"),
            (1e-5, "0.00001"),
            (1.2345e-5, "0.000012345"),
            (1e-6, "1e-6"),
            (1.5e-7, "1.5e-7"),
            (-1e-7, "-1e-7"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (9007199254740992.0, "9007199254740992.0"),
            (1800000000.25, "1800000000.25"),
            (123.456, "123.456"),
            (2f64.powi(49) + 0.25, "562949953421312.2"), // a tie: the even digit, as `repr`
        ];
        for (x, want) in cases {
            assert_eq!(f(*x), *want, "{x:e}");
        }
        assert_eq!(write_float(&mut String::new(), f64::NAN), Err(Skip));
        assert_eq!(write_float(&mut String::new(), f64::INFINITY), Err(Skip));
    }

    #[test]
    fn n_writes_whole_floats_as_integers() {
        let n = |x: f64| {
            let mut s = String::new();
            write_n(&mut s, x).expect("finite");
            s
        };
        assert_eq!(n(1800.0), "1800");
        assert_eq!(n(-0.0), "0");
        assert_eq!(n(9007199254740991.0), "9007199254740991");
        assert_eq!(n(9007199254740992.0), "9007199254740992.0");
        assert_eq!(n(0.5), "0.5");
    }

    #[test]
    fn strings_are_escaped_as_orjson_escapes_them() {
        let mut s = String::new();
        write_str(&mut s, "a\"b\\c\n\t\r\u{8}\u{c}\u{0}\u{1f}\u{7f}é😀/");
        assert_eq!(s, "\"a\\\"b\\\\c\\n\\t\\r\\b\\f\\u0000\\u001f\u{7f}é😀/\"");
    }

    #[test]
    fn timedelta_seconds_round_half_to_even() {
        // values checked against CPython's timedelta(seconds=x).total_seconds()
        assert_eq!(td_seconds(1.5).ok(), Some(1.5));
        assert_eq!(td_seconds(0.0000005).ok(), Some(0.0));
        assert_eq!(td_seconds(0.0000015).ok(), Some(0.000002));
        assert_eq!(td_seconds(-0.0000015).ok(), Some(-0.000002));
        assert_eq!(td_seconds(3600.1234567).ok(), Some(3600.123457));
        assert_eq!(td_seconds(f64::NAN), Err(Skip));
        assert_eq!(td_seconds(1e10), Err(Skip));
    }
}
