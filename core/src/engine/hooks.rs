//! The two seams between the engine and its collaborators: business-time calendars and
//! conditions. Each is an enum so that a native implementation can take over case by case; the
//! `Py` variants call the reference objects (`Calendar`, `Expr.fn`) and so give exactly their
//! results.

use pyo3::prelude::*;
use pyo3::types::PyBool;

pub enum Cal {
    /// A `carepath.calendar.Calendar` (or its `_Always`), called through its `*_s` methods.
    Py(Py<PyAny>),
}

impl Cal {
    pub fn from_py(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Cal::Py(obj.clone().unbind()))
    }

    pub fn add_s(&self, py: Python<'_>, t: f64, seconds: f64) -> PyResult<f64> {
        match self {
            Cal::Py(o) => o.bind(py).call_method1("add_s", (t, seconds))?.extract(),
        }
    }

    pub fn elapsed_s(&self, py: Python<'_>, a: f64, b: f64) -> PyResult<f64> {
        match self {
            Cal::Py(o) => o.bind(py).call_method1("elapsed_s", (a, b))?.extract(),
        }
    }

    pub fn next_open_s(&self, py: Python<'_>, t: f64) -> PyResult<f64> {
        match self {
            Cal::Py(o) => o.bind(py).call_method1("next_open_s", (t,))?.extract(),
        }
    }

    pub fn is_open_s(&self, py: Python<'_>, t: f64) -> PyResult<bool> {
        match self {
            Cal::Py(o) => o.bind(py).call_method1("is_open_s", (t,))?.extract(),
        }
    }

    pub fn add_days_s(&self, py: Python<'_>, t: f64, n: i64) -> PyResult<f64> {
        match self {
            Cal::Py(o) => o.bind(py).call_method1("add_days_s", (t, n))?.extract(),
        }
    }
}

pub enum Cond {
    /// A compiled expression's function `fn(fields, event, scope)`.
    Py(Py<PyAny>),
}

impl Cond {
    pub fn from_py(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Cond::Py(obj.clone().unbind()))
    }

    /// The value of the expression.
    pub fn value<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        view: &Bound<'py, PyAny>,
        scope: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match self {
            Cond::Py(f) => f.bind(py).call1((data, view, scope)),
        }
    }

    /// Whether the condition holds (its value `is True`).
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
