//! The values conditions and `set:` expressions compute with, modelled on exactly the Python
//! objects the reference runtime (`carepath._expr_runtime`) sees: `None`, `bool`, `int`, `float`,
//! `str`, `list`, `tuple` (list literals compile to tuples), `datetime.date`, `datetime.datetime`,
//! `datetime.timedelta` and `decimal.Decimal`.
//!
//! Instants and durations are kept as integer microseconds, as `datetime`/`timedelta` keep them,
//! so comparisons and `days_since`/`hours_since` are exact. Anything the core does not model (a
//! dict, a set, an `int` beyond 64 bits, a datetime whose offset depends on `fold`, a `str`
//! subclass…) becomes [`Value::Foreign`]: the VM refuses to compute with it and the caller runs
//! the Python reference instead (see [`crate::expr::EvalError::Fallback`]).

use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyBool, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};

/// `date(1970, 1, 1).toordinal()`.
pub const EPOCH_ORDINAL: i64 = 719_163;
/// Microseconds per day.
pub const DAY_US: i64 = 86_400_000_000;

/// The time zone of a `datetime`, as far as the VM needs it.
#[derive(Clone, Debug, PartialEq)]
pub enum Tz {
    /// No tzinfo (or one whose `utcoffset()` is `None`): `us` is the wall time read as UTC.
    Naive,
    /// A `datetime.timezone` without a name, of this offset in seconds.
    Fixed(i32),
    /// A `zoneinfo.ZoneInfo` of this key, whose offset at this instant is the `i32` (seconds).
    Zone(Arc<str>, i32),
}

impl Tz {
    /// The UTC offset in seconds, `None` when naive.
    pub fn offset(&self) -> Option<i32> {
        match self {
            Tz::Naive => None,
            Tz::Fixed(o) | Tz::Zone(_, o) => Some(*o),
        }
    }
}

/// A value of the expression language.
#[derive(Clone, Debug)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Arc<str>),
    /// A `decimal.Decimal`, by its `str()`; the VM computes nothing with it (fallback).
    Decimal(Arc<str>),
    /// A `datetime.date`, by its proleptic Gregorian ordinal (`date.toordinal()`).
    Date(i32),
    /// A `datetime.datetime`: microseconds since the epoch (the instant when aware, the wall time
    /// read as UTC when naive) and its zone. Never a datetime whose offset depends on `fold`.
    DateTime(i64, Tz),
    /// A `datetime.timedelta`, in microseconds.
    Duration(i64),
    List(Arc<[Value]>),
    Tuple(Arc<[Value]>),
    /// A Python value the VM does not model, by its type name.
    Foreign(Arc<str>),
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(Arc::from(s))
    }

    /// Whether the value is `None`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Whether this value, or anything inside it, is one the VM cannot hand back to Python as
    /// the very object the reference would (a foreign value, a `Decimal`).
    pub fn is_opaque(&self) -> bool {
        match self {
            Value::Foreign(_) | Value::Decimal(_) => true,
            Value::List(xs) | Value::Tuple(xs) => xs.iter().any(Value::is_opaque),
            _ => false,
        }
    }

    /// The epoch seconds of an aware datetime (as `datetime.timestamp()` would give).
    pub fn epoch_seconds(&self) -> Option<f64> {
        match self {
            Value::DateTime(us, tz) if *tz != Tz::Naive => Some(*us as f64 / 1e6),
            _ => None,
        }
    }
}

// -- calendar arithmetic on proleptic Gregorian ordinals ------------------------------------------

/// `date(y, m, d).toordinal()`; `None` for an invalid date or a year outside 1..=9999.
pub fn ymd_to_ordinal(y: i64, m: i64, d: i64) -> Option<i64> {
    if !(1..=9999).contains(&y) || !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    let yy = y - 1;
    let before_year = yy * 365 + yy / 4 - yy / 100 + yy / 400;
    const CUM: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let leap = m > 2 && is_leap(y);
    Some(before_year + CUM[(m - 1) as usize] + i64::from(leap) + d)
}

pub fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

pub fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// `date.fromordinal(n)` as `(year, month, day)` (for `1 <= n <= 3_652_059`).
pub fn ordinal_to_ymd(n: i64) -> (i64, i64, i64) {
    // Days since 0000-03-01 in the proleptic calendar (civil_from_days, H. Hinnant).
    let z = n - EPOCH_ORDINAL + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

// -- Python conversions ---------------------------------------------------------------------------

struct Types {
    date: Py<PyType>,
    datetime: Py<PyType>,
    timedelta: Py<PyType>,
    timezone: Py<PyType>,
    utc: Py<PyAny>,
    decimal: Py<PyType>,
    zoneinfo: Py<PyType>,
}

static TYPES: GILOnceCell<Types> = GILOnceCell::new();

fn types(py: Python<'_>) -> PyResult<&Types> {
    TYPES.get_or_try_init(py, || {
        let dt = py.import("datetime")?;
        let t = |m: &Bound<'_, PyModule>, n: &str| -> PyResult<Py<PyType>> {
            Ok(m.getattr(n)?.downcast_into::<PyType>()?.unbind())
        };
        Ok(Types {
            date: t(&dt, "date")?,
            datetime: t(&dt, "datetime")?,
            timedelta: t(&dt, "timedelta")?,
            timezone: t(&dt, "timezone")?,
            utc: dt.getattr("timezone")?.getattr("utc")?.unbind(),
            decimal: t(&py.import("decimal")?, "Decimal")?,
            zoneinfo: t(&py.import("zoneinfo")?, "ZoneInfo")?,
        })
    })
}

fn foreign(obj: &Bound<'_, PyAny>) -> Value {
    let name = obj
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".to_string());
    Value::Foreign(Arc::from(name.as_str()))
}

fn td_us(td: &Bound<'_, PyAny>) -> PyResult<Option<i64>> {
    let days: i64 = td.getattr("days")?.extract()?;
    let secs: i64 = td.getattr("seconds")?.extract()?;
    let us: i64 = td.getattr("microseconds")?.extract()?;
    Ok(days
        .checked_mul(DAY_US)
        .and_then(|d| d.checked_add(secs * 1_000_000 + us)))
}

fn wall_us(obj: &Bound<'_, PyAny>) -> PyResult<Option<i64>> {
    let y: i64 = obj.getattr("year")?.extract()?;
    let m: i64 = obj.getattr("month")?.extract()?;
    let d: i64 = obj.getattr("day")?.extract()?;
    let h: i64 = obj.getattr("hour")?.extract()?;
    let mi: i64 = obj.getattr("minute")?.extract()?;
    let s: i64 = obj.getattr("second")?.extract()?;
    let us: i64 = obj.getattr("microsecond")?.extract()?;
    Ok(ymd_to_ordinal(y, m, d)
        .map(|n| (n - EPOCH_ORDINAL) * DAY_US + ((h * 60 + mi) * 60 + s) * 1_000_000 + us))
}

fn datetime_from_py(obj: &Bound<'_, PyAny>, t: &Types) -> PyResult<Value> {
    let py = obj.py();
    let Some(wall) = wall_us(obj)? else {
        return Ok(foreign(obj));
    };
    // fold=1 survives in the object (repr, replace, time()): the core rebuilds fold=0 only.
    if obj.getattr("fold")?.extract::<i64>()? != 0 {
        return Ok(foreign(obj));
    }
    let tzinfo = obj.getattr("tzinfo")?;
    if tzinfo.is(t.utc.bind(py)) {
        return Ok(Value::DateTime(wall, Tz::Fixed(0)));
    }
    let off = obj.call_method0("utcoffset")?;
    if tzinfo.is_none() || off.is_none() {
        return Ok(Value::DateTime(wall, Tz::Naive));
    }
    let Some(off_us) = td_us(&off)? else {
        return Ok(foreign(obj));
    };
    if off_us % 1_000_000 != 0 {
        return Ok(foreign(obj)); // sub-second offsets: not worth modelling
    }
    let off_s = (off_us / 1_000_000) as i32;
    let tz = if tzinfo.get_type().is(t.timezone.bind(py)) {
        // A named timezone prints its name in repr() and tzname(): only the unnamed ones.
        let plain_tz = t.timezone.bind(py).call1((off.clone(),))?;
        let same_name = tzinfo
            .call_method1("tzname", (py.None(),))?
            .eq(plain_tz.call_method1("tzname", (py.None(),))?)?;
        if !(plain_tz.eq(&tzinfo)? && same_name) {
            return Ok(foreign(obj));
        }
        Tz::Fixed(off_s)
    } else if tzinfo.get_type().is(t.zoneinfo.bind(py)) {
        // Only a datetime whose offset does not depend on fold (not in a gap or a repeat).
        let kw = pyo3::types::PyDict::new(py);
        kw.set_item("fold", 1)?;
        let other = obj.call_method("replace", (), Some(&kw))?;
        if !other.call_method0("utcoffset")?.eq(&off)? {
            return Ok(foreign(obj));
        }
        let key = tzinfo.getattr("key")?;
        if key.is_none() {
            return Ok(foreign(obj));
        }
        // ZoneInfo(key) must give back this very zone object (the cache), else the identity differs.
        let again = t.zoneinfo.bind(py).call1((key.clone(),))?;
        if !again.is(&tzinfo) {
            return Ok(foreign(obj));
        }
        let key: String = key.extract()?;
        Tz::Zone(Arc::from(key.as_str()), off_s)
    } else {
        return Ok(foreign(obj));
    };
    Ok(Value::DateTime(wall - off_us, tz))
}

impl Value {
    /// The value of a Python object, exactly as the reference runtime would see it; what the VM
    /// does not model becomes [`Value::Foreign`]. Fails only when Python itself fails.
    pub fn from_py(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
        let py = obj.py();
        if obj.is_none() {
            return Ok(Value::Null);
        }
        if obj.is_exact_instance_of::<PyBool>() {
            return Ok(Value::Bool(obj.is_truthy()?));
        }
        if obj.is_exact_instance_of::<PyInt>() {
            return Ok(match obj.extract::<i64>() {
                Ok(i) => Value::Int(i),
                Err(_) => foreign(obj),
            });
        }
        if obj.is_exact_instance_of::<PyFloat>() {
            return Ok(Value::Float(obj.extract::<f64>()?));
        }
        if obj.is_exact_instance_of::<PyString>() {
            return Ok(match obj.extract::<String>() {
                Ok(s) => Value::Str(Arc::from(s.as_str())),
                Err(_) => foreign(obj), // lone surrogates
            });
        }
        if obj.is_exact_instance_of::<PyList>() {
            let items: PyResult<Vec<Value>> = obj
                .downcast::<PyList>()?
                .iter()
                .map(|x| Value::from_py(&x))
                .collect();
            return Ok(Value::List(Arc::from(items?)));
        }
        if obj.is_exact_instance_of::<PyTuple>() {
            let items: PyResult<Vec<Value>> = obj
                .downcast::<PyTuple>()?
                .iter()
                .map(|x| Value::from_py(&x))
                .collect();
            return Ok(Value::Tuple(Arc::from(items?)));
        }
        let t = types(py)?;
        let ty = obj.get_type();
        if ty.is(t.datetime.bind(py)) {
            return datetime_from_py(obj, t);
        }
        if ty.is(t.date.bind(py)) {
            let n: i64 = obj.call_method0("toordinal")?.extract()?;
            return Ok(Value::Date(n as i32));
        }
        if ty.is(t.timedelta.bind(py)) {
            return Ok(match td_us(obj)? {
                Some(us) => Value::Duration(us),
                None => foreign(obj),
            });
        }
        if ty.is(t.decimal.bind(py)) {
            let s: String = obj.str()?.extract()?;
            return Ok(Value::Decimal(Arc::from(s.as_str())));
        }
        Ok(foreign(obj))
    }

    /// The Python object for this value (a new, equal object of the same type).
    pub fn to_py(&self, py: Python<'_>) -> PyResult<PyObject> {
        Ok(match self {
            Value::Null => py.None(),
            Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any().unbind(),
            Value::Int(i) => i.into_pyobject(py)?.into_any().unbind(),
            Value::Float(f) => PyFloat::new(py, *f).into_any().unbind(),
            Value::Str(s) => PyString::new(py, s).into_any().unbind(),
            Value::List(xs) => {
                let items: PyResult<Vec<PyObject>> = xs.iter().map(|x| x.to_py(py)).collect();
                PyList::new(py, items?)?.into_any().unbind()
            }
            Value::Tuple(xs) => {
                let items: PyResult<Vec<PyObject>> = xs.iter().map(|x| x.to_py(py)).collect();
                PyTuple::new(py, items?)?.into_any().unbind()
            }
            Value::Decimal(s) => types(py)?.decimal.bind(py).call1((&**s,))?.unbind(),
            Value::Date(n) => types(py)?
                .date
                .bind(py)
                .call_method1("fromordinal", (*n,))?
                .unbind(),
            Value::Duration(us) => {
                let kw = pyo3::types::PyDict::new(py);
                kw.set_item("microseconds", *us)?;
                types(py)?.timedelta.bind(py).call((), Some(&kw))?.unbind()
            }
            Value::DateTime(us, tz) => {
                let t = types(py)?;
                let wall = us + i64::from(tz.offset().unwrap_or(0)) * 1_000_000;
                let (y, m, d) = ordinal_to_ymd(wall.div_euclid(DAY_US) + EPOCH_ORDINAL);
                let r = wall.rem_euclid(DAY_US);
                let (h, mi, s, f) = (
                    r / 3_600_000_000,
                    r / 60_000_000 % 60,
                    r / 1_000_000 % 60,
                    r % 1_000_000,
                );
                let tzinfo: PyObject = match tz {
                    Tz::Naive => py.None(),
                    Tz::Fixed(o) => {
                        let kw = pyo3::types::PyDict::new(py);
                        kw.set_item("seconds", *o)?;
                        let off = t.timedelta.bind(py).call((), Some(&kw))?;
                        t.timezone.bind(py).call1((off,))?.unbind()
                    }
                    Tz::Zone(key, _) => t.zoneinfo.bind(py).call1((&**key,))?.unbind(),
                };
                t.datetime
                    .bind(py)
                    .call1((y, m, d, h, mi, s, f, tzinfo))?
                    .unbind()
            }
            Value::Foreign(name) => {
                return Err(PyValueError::new_err(format!(
                    "carepath_core: a {name} value cannot be rebuilt from the core"
                )))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_round_trip() {
        assert_eq!(ymd_to_ordinal(1, 1, 1), Some(1));
        assert_eq!(ymd_to_ordinal(1970, 1, 1), Some(EPOCH_ORDINAL));
        assert_eq!(ymd_to_ordinal(2024, 2, 29), Some(738_945));
        assert_eq!(ymd_to_ordinal(2023, 2, 29), None);
        for n in (1..3_652_059).step_by(997) {
            let (y, m, d) = ordinal_to_ymd(n);
            assert_eq!(ymd_to_ordinal(y, m, d), Some(n));
        }
        assert_eq!(ordinal_to_ymd(3_652_059), (9999, 12, 31));
    }
}
