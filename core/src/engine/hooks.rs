//! The two seams between the engine and its collaborators: business-time calendars and
//! conditions. Each is an enum so that a native implementation can take over case by case; the
//! `Py` variants call the reference objects (`Calendar`, `Expr.fn`) and so give exactly their
//! results.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyBool;

pub enum Cal {
    /// A `carepath.calendar.Calendar` (or its `_Always`), called through its `*_s` methods.
    Py(Py<PyAny>),
    /// The core's calendar; on any error the reference object answers (or raises) instead.
    Native(crate::calendar::Calendar, Py<PyAny>),
}

/// A calendar as a step uses it: one of the playbook's, or one built in the customer's zone.
pub enum CalRef<'a> {
    Shared(&'a Cal),
    Zoned(std::sync::Arc<Cal>),
}

impl std::ops::Deref for CalRef<'_> {
    type Target = Cal;

    fn deref(&self) -> &Cal {
        match self {
            CalRef::Shared(c) => c,
            CalRef::Zoned(c) => c,
        }
    }
}

impl Cal {
    /// From `(calendar, lowered)`: `lowered` is `lower_calendar(calendar)`, or `None` when the
    /// core's calendar cannot hold it.
    pub fn from_py(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let (cal, lowered): (Bound<'_, PyAny>, Bound<'_, PyAny>) = obj.extract()?;
        if lowered.is_none() {
            return Ok(Cal::Py(cal.unbind()));
        }
        Ok(Cal::Native(
            crate::calendar::Calendar::from_py(&lowered)?,
            cal.unbind(),
        ))
    }

    fn py_obj(&self) -> &Py<PyAny> {
        match self {
            Cal::Py(o) | Cal::Native(_, o) => o,
        }
    }

    pub fn add_s(&self, py: Python<'_>, t: f64, seconds: f64) -> PyResult<f64> {
        if let Cal::Native(c, _) = self {
            if let Ok(x) = c.try_add(t, seconds) {
                return Ok(x);
            }
        }
        self.py_obj()
            .bind(py)
            .call_method1(intern!(py, "add_s"), (t, seconds))?
            .extract()
    }

    pub fn elapsed_s(&self, py: Python<'_>, a: f64, b: f64) -> PyResult<f64> {
        if let Cal::Native(c, _) = self {
            if let Ok(x) = c.try_elapsed(a, b) {
                return Ok(x);
            }
        }
        self.py_obj()
            .bind(py)
            .call_method1(intern!(py, "elapsed_s"), (a, b))?
            .extract()
    }

    pub fn next_open_s(&self, py: Python<'_>, t: f64) -> PyResult<f64> {
        if let Cal::Native(c, _) = self {
            if let Ok(x) = c.try_next_open(t) {
                return Ok(x);
            }
        }
        self.py_obj()
            .bind(py)
            .call_method1(intern!(py, "next_open_s"), (t,))?
            .extract()
    }

    pub fn is_open_s(&self, py: Python<'_>, t: f64) -> PyResult<bool> {
        if let Cal::Native(c, _) = self {
            if let Ok(x) = c.try_is_open(t) {
                return Ok(x);
            }
        }
        self.py_obj()
            .bind(py)
            .call_method1(intern!(py, "is_open_s"), (t,))?
            .extract()
    }

    /// The engine's wall-clock days in this calendar's zone (see `Calendar::try_wall_days`);
    /// `fallback(t, n)` (the reference's arithmetic) when the core's calendar cannot answer.
    pub fn wall_days(&self, py: Python<'_>, t: f64, n: i64, fallback: &Py<PyAny>) -> PyResult<f64> {
        if let Cal::Native(c, _) = self {
            if let Ok(x) = c.try_wall_days(t, n) {
                return Ok(x);
            }
        }
        fallback.bind(py).call1((t, n))?.extract()
    }

    pub fn add_days_s(&self, py: Python<'_>, t: f64, n: i64) -> PyResult<f64> {
        if let Cal::Native(c, _) = self {
            if let Ok(x) = c.try_add_days(t, n) {
                return Ok(x);
            }
        }
        self.py_obj()
            .bind(py)
            .call_method1(intern!(py, "add_days_s"), (t, n))?
            .extract()
    }
}

pub enum Cond {
    /// A compiled expression's function `fn(fields, event, scope)`.
    Py(Py<PyAny>),
    /// The core's program of the expression, with the function for the values it defers.
    Native(crate::expr::Program, Py<PyAny>),
}

impl Cond {
    /// From `(fn, code)`: `code` is `lower_expr(expr)`, or `None` when the VM cannot run it.
    pub fn from_py(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let (f, code): (Bound<'_, PyAny>, Bound<'_, PyAny>) = obj.extract()?;
        if code.is_none() {
            return Ok(Cond::Py(f.unbind()));
        }
        Ok(match crate::expr::Program::from_py(&code) {
            Ok(p) => Cond::Native(p, f.unbind()),
            Err(_) => Cond::Py(f.unbind()),
        })
    }

    fn func(&self) -> &Py<PyAny> {
        match self {
            Cond::Py(f) | Cond::Native(_, f) => f,
        }
    }

    /// The value of the expression, by the reference function.
    pub fn value<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        view: &Bound<'py, PyAny>,
        scope: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.func().bind(py).call1((data, view, scope))
    }

    /// Whether the condition holds (its value `is True`), by the reference function.
    pub fn holds<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        view: &Bound<'py, PyAny>,
        scope: &Bound<'py, PyAny>,
    ) -> PyResult<bool> {
        let v = self.value(py, data, view, scope)?;
        Ok(v.downcast::<PyBool>().map(|b| b.is_true()).unwrap_or(false))
    }
}
