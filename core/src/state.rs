//! The compact state the core works on: clocks, pending items and their conversions from the
//! Python `CaseState` pieces (read once per step) and to plain tuples (built once per step).

use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

pub type PyObj = Py<PyAny>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Status {
    Pending,
    Running,
    Paused,
    Met,
    Breached,
    Cancelled,
}

impl Status {
    pub fn parse(s: &str) -> PyResult<Self> {
        Ok(match s {
            "pending" => Status::Pending,
            "running" => Status::Running,
            "paused" => Status::Paused,
            "met" => Status::Met,
            "breached" => Status::Breached,
            "cancelled" => Status::Cancelled,
            _ => return Err(PyValueError::new_err(format!("unknown clock status {s:?}"))),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Met => "met",
            Status::Breached => "breached",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn is_open(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }
}

/// A clock's mutable working copy during a step (`_CW`).
pub struct ClockW {
    pub status: Status,
    pub cycle: i64,
    pub breached: bool,
    pub started_s: Option<f64>,
    pub as_of_s: Option<f64>,
    pub elapsed_s: f64,
    pub paused_s: f64,
    pub pause_from_s: Option<f64>,
    pub pauses: Vec<(f64, f64)>,
    pub target_index: Option<i64>,
    pub target_s: Option<f64>,
    /// shared: most states name the same few calendars (no allocation per clock or per step)
    pub calendar: Option<Arc<str>>,
    pub breach_s: Option<f64>,
    pub due_s: Option<f64>,
    pub fired: usize,
    pub conds: i64,
    pub history: Vec<Rec>,
    /// business-time due instants by position (exact float keys, as the reference's dict)
    pub memo: Vec<(f64, f64)>,
}

impl ClockW {
    pub fn pending() -> Self {
        ClockW {
            status: Status::Pending,
            cycle: 0,
            breached: false,
            started_s: None,
            as_of_s: None,
            elapsed_s: 0.0,
            paused_s: 0.0,
            pause_from_s: None,
            pauses: Vec::new(),
            target_index: None,
            target_s: None,
            calendar: None,
            breach_s: None,
            due_s: None,
            fired: 0,
            conds: 0,
            history: Vec::new(),
            memo: Vec::new(),
        }
    }

    /// Read a Python `Clock`.
    pub fn from_py(c: &Bound<'_, PyAny>) -> PyResult<Self> {
        let status = Status::parse(&c.getattr("status")?.extract::<String>()?)?;
        let mut pauses = Vec::new();
        for p in c.getattr("pauses")?.try_iter()? {
            pauses.push(p?.extract::<(f64, f64)>()?);
        }
        let mut history = Vec::new();
        for r in c.getattr("history")?.try_iter()? {
            history.push(Rec::Py(r?.unbind()));
        }
        let target_s: Option<f64> = c.getattr("target_s")?.extract()?;
        let due_s: Option<f64> = c.getattr("due_s")?.extract()?;
        let breached: bool = c.getattr("breached")?.extract()?;
        let memo = match (status, breached, due_s, target_s) {
            (Status::Running, false, Some(d), Some(t)) => vec![(t, d)],
            _ => Vec::new(),
        };
        Ok(ClockW {
            status,
            cycle: c.getattr("cycle")?.extract()?,
            breached,
            started_s: c.getattr("started_s")?.extract()?,
            as_of_s: c.getattr("as_of_s")?.extract()?,
            elapsed_s: c.getattr("elapsed_s")?.extract()?,
            paused_s: c.getattr("paused_s")?.extract()?,
            pause_from_s: c.getattr("pause_from_s")?.extract()?,
            pauses,
            target_index: c.getattr("target_index")?.extract()?,
            target_s,
            calendar: c
                .getattr("calendar")?
                .extract::<Option<String>>()?
                .map(|s| Arc::from(s.as_str())),
            breach_s: c.getattr("breach_s")?.extract()?,
            due_s,
            fired: c.getattr("fired")?.extract()?,
            conds: c.getattr("conds")?.extract()?,
            history,
            memo,
        })
    }

    pub fn memo_get(&self, pos: f64) -> Option<f64> {
        self.memo.iter().find(|(k, _)| *k == pos).map(|(_, v)| *v)
    }

    /// The fields of `Clock(name, ...)` after `name` and before `tz`, as `_CW.freeze` writes them.
    pub fn freeze<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyTuple>> {
        let pauses = PyTuple::new(py, self.pauses.iter().map(|p| (p.0, p.1)))?;
        let mut recs = Vec::with_capacity(self.history.len());
        for h in &self.history {
            recs.push(h.to_py(py)?);
        }
        let history = PyTuple::new(py, recs)?;
        let items: Vec<PyObj> = vec![
            PyString::new(py, name).into_any().unbind(),
            PyString::new(py, self.status.as_str()).into_any().unbind(),
            self.cycle.into_pyobject(py)?.into_any().unbind(),
            pyo3::types::PyBool::new(py, self.breached)
                .to_owned()
                .into_any()
                .unbind(),
            self.started_s.into_pyobject(py)?.into_any().unbind(),
            self.as_of_s.into_pyobject(py)?.into_any().unbind(),
            round_us(self.elapsed_s)
                .into_pyobject(py)?
                .into_any()
                .unbind(),
            round_us(self.paused_s)
                .into_pyobject(py)?
                .into_any()
                .unbind(),
            self.pause_from_s.into_pyobject(py)?.into_any().unbind(),
            pauses.into_any().unbind(),
            self.target_index.into_pyobject(py)?.into_any().unbind(),
            self.target_s.into_pyobject(py)?.into_any().unbind(),
            self.calendar
                .as_deref()
                .into_pyobject(py)?
                .into_any()
                .unbind(),
            self.breach_s.into_pyobject(py)?.into_any().unbind(),
            self.due_s.into_pyobject(py)?.into_any().unbind(),
            self.fired.into_pyobject(py)?.into_any().unbind(),
            self.conds.into_pyobject(py)?.into_any().unbind(),
            history.into_any().unbind(),
        ];
        PyTuple::new(py, items)
    }
}

/// One finished clock cycle: the `ClockRecord` of a Python state, or the numbers of one the core
/// ended (`(cycle, started, stopped, elapsed, paused, target, met, failed_by)`), built into a
/// `ClockRecord` only when read.
pub enum Rec {
    Py(PyObj),
    Raw(
        i64,
        f64,
        f64,
        f64,
        f64,
        Option<f64>,
        Option<bool>,
        Option<f64>,
    ),
}

impl Rec {
    pub fn clone_ref(&self, py: Python<'_>) -> Self {
        match self {
            Rec::Py(o) => Rec::Py(o.clone_ref(py)),
            Rec::Raw(a, b, c, d, e, f, g, h) => Rec::Raw(*a, *b, *c, *d, *e, *f, *g, *h),
        }
    }

    /// The `ClockRecord`, or the tuple of its numbers (`_native.backend` builds the record).
    pub fn to_py(&self, py: Python<'_>) -> PyResult<PyObj> {
        Ok(match self {
            Rec::Py(o) => o.clone_ref(py),
            Rec::Raw(a, b, c, d, e, f, g, h) => (*a, *b, *c, *d, *e, *f, *g, *h)
                .into_pyobject(py)?
                .into_any()
                .unbind(),
        })
    }
}

/// `_r`: POSIX seconds rounded to microseconds, as `round(x * 1_000_000) / 1_000_000`.
pub fn round_us(x: f64) -> f64 {
    // `round()` returns an int, so a negative zero comes back as 0.0: `+ 0.0` does the same
    (x * 1_000_000.0).round_ties_even() / 1_000_000.0 + 0.0
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Action,
    Timer,
    Schedule,
}

impl Kind {
    pub fn order(self) -> u8 {
        match self {
            Kind::Action => 1,
            Kind::Timer => 2,
            Kind::Schedule => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Action => "action",
            Kind::Timer => "timer",
            Kind::Schedule => "schedule",
        }
    }
}

#[derive(Clone, PartialEq)]
pub enum Owner {
    Keep,
    Stage(i64),
    Clock(Arc<str>, i64),
    /// anything else a state may hold: never matched by a cancellation
    Other,
}

/// A timer, delayed action or schedule (`Pending`); `obj` is the Python object it came from.
pub struct Pend {
    pub due: f64,
    pub kind: Kind,
    pub ref_: Arc<str>,
    pub owner: Owner,
    pub seq: i64,
    pub origin: f64,
    pub obj: Option<PyObj>,
}

impl Pend {
    pub fn from_py(p: &Bound<'_, PyAny>) -> PyResult<Self> {
        let kind = match p.getattr("kind")?.extract::<String>()?.as_str() {
            "action" => Kind::Action,
            "timer" => Kind::Timer,
            "schedule" => Kind::Schedule,
            k => return Err(PyValueError::new_err(format!("unknown pending kind {k:?}"))),
        };
        let o = p.getattr("owner")?;
        let n = o.len()?;
        let owner = if n == 0 {
            Owner::Keep
        } else {
            let tag: Option<String> = o.get_item(0)?.extract().ok();
            match (tag.as_deref(), n) {
                (Some("stage"), 2) => o
                    .get_item(1)?
                    .extract()
                    .map(Owner::Stage)
                    .unwrap_or(Owner::Other),
                (Some("clock"), 3) => match (
                    o.get_item(1)?.extract::<String>(),
                    o.get_item(2)?.extract::<i64>(),
                ) {
                    (Ok(a), Ok(b)) => Owner::Clock(Arc::from(a.as_str()), b),
                    _ => Owner::Other,
                },
                _ => Owner::Other,
            }
        };
        if owner == Owner::Other {
            return Err(PyValueError::new_err(
                "a pending item with an unknown owner",
            ));
        }
        Ok(Pend {
            due: p.getattr("due")?.extract()?,
            kind,
            ref_: Arc::from(p.getattr("ref")?.extract::<String>()?.as_str()),
            owner,
            seq: p.getattr("seq")?.extract()?,
            origin: p.getattr("origin")?.extract()?,
            obj: Some(p.clone().unbind()),
        })
    }

    pub fn clone_ref(&self, py: Python<'_>) -> Self {
        Pend {
            due: self.due,
            kind: self.kind,
            ref_: self.ref_.clone(),
            owner: self.owner.clone(),
            seq: self.seq,
            origin: self.origin,
            obj: self.obj.as_ref().map(|o| o.clone_ref(py)),
        }
    }

    /// The Python object it came from, or `(due, kind, ref, owner, seq, origin)` for a new one.
    pub fn to_py(&self, py: Python<'_>) -> PyResult<PyObj> {
        if let Some(o) = &self.obj {
            return Ok(o.clone_ref(py));
        }
        let owner: PyObj = match &self.owner {
            Owner::Keep | Owner::Other => PyTuple::empty(py).into_any().unbind(),
            Owner::Stage(e) => ("stage", *e).into_pyobject(py)?.into_any().unbind(),
            Owner::Clock(n, c) => ("clock", &**n, *c).into_pyobject(py)?.into_any().unbind(),
        };
        Ok((
            self.due,
            self.kind.as_str(),
            &*self.ref_,
            owner,
            self.seq,
            self.origin,
        )
            .into_pyobject(py)?
            .into_any()
            .unbind())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_us_is_pythons_round_half_even() {
        // values checked against CPython's round(x * 1_000_000) / 1_000_000
        assert_eq!(round_us(1.0000005), 1.000001);
        assert_eq!(round_us(1.0000015), 1.000002);
        assert_eq!(round_us(2.5e-6), 2e-6); // 2.5 → 2: half to even
        assert_eq!(round_us(1_800_000_000.123_456_7), 1_800_000_000.123_457);
        assert!(round_us(-0.0000005).is_sign_positive()); // round() gives the int 0, never -0.0
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            "pending",
            "running",
            "paused",
            "met",
            "breached",
            "cancelled",
        ] {
            assert_eq!(Status::parse(s).map(|x| x.as_str()).ok(), Some(s));
        }
        assert!(Status::parse("running")
            .map(|s| s.is_open())
            .unwrap_or(false));
        assert_eq!(Kind::Timer.order(), 2);
    }
}

impl ClockW {
    /// A working copy of a clock a previous native step left: its fields, and the due-time memo
    /// seeded the way `_CW.__init__` seeds it from a state.
    pub fn from_snap(&self, py: Python<'_>) -> Self {
        let memo = match (self.status, self.breached, self.due_s, self.target_s) {
            (Status::Running, false, Some(d), Some(t)) => vec![(t, d)],
            _ => Vec::new(),
        };
        ClockW {
            status: self.status,
            cycle: self.cycle,
            breached: self.breached,
            started_s: self.started_s,
            as_of_s: self.as_of_s,
            // a state holds the frozen (rounded) values
            elapsed_s: round_us(self.elapsed_s),
            paused_s: round_us(self.paused_s),
            pause_from_s: self.pause_from_s,
            pauses: self.pauses.clone(),
            target_index: self.target_index,
            target_s: self.target_s,
            calendar: self.calendar.clone(),
            breach_s: self.breach_s,
            due_s: self.due_s,
            fired: self.fired,
            conds: self.conds,
            history: self.history.iter().map(|h| h.clone_ref(py)).collect(),
            memo,
        }
    }
}

/// A case state as the core keeps it between steps: what `CaseState` holds, with clocks and
/// pending items in the core's own form (a clock never touched is `None`: pending, cycle 0).
pub struct Snap {
    pub shared: std::sync::Arc<crate::engine::def::Shared>,
    pub case: String,
    pub stage: usize,
    /// a dict, or the mapping of the Python state it came from
    pub data: PyObj,
    /// what conditions read of `data` when it differs (typed date, datetime, decimal text)
    pub fields: Option<PyObj>,
    pub tier: Option<String>,
    pub segment: Option<String>,
    pub segments: Vec<String>,
    /// shared between successive states while a step leaves a clock as it is
    pub clocks: Vec<Option<std::sync::Arc<ClockW>>>,
    pub now: f64,
    pub opened: f64,
    pub seq: i64,
    pub epoch: i64,
    pub ended: bool,
    pub pending: Vec<Pend>,
    /// a dict without empty entries, or the Python state's mapping; `None`: no sends
    pub sends: Option<PyObj>,
    pub next_wakeup: Option<f64>,
}

/// The core's state of a case (behind a lazily built `CaseState`).
#[pyclass(module = "carepath_core", frozen)]
pub struct CoreState {
    pub snap: Snap,
}

#[pymethods]
impl CoreState {
    /// `(playbook hash, case, stage, now, ended, next_wakeup)`: what a lazy state sets at once.
    fn head<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let s = &self.snap;
        (
            &*s.shared.hash,
            s.case.as_str(),
            &*s.shared.stage_names[s.stage],
            s.now,
            s.ended,
            s.next_wakeup,
        )
            .into_pyobject(py)
    }

    /// `(segment, channel, tier, stage)`: what a report groups a sample of the case by, the
    /// channel as the data holds it (`None` when it holds none), the names as interned strings;
    /// nothing else of the case is built (read for most events of a report).
    fn ctx_key<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        use crate::engine::run::py_key;
        let s = &self.snap;
        let data = s.data.bind(py);
        let key = pyo3::intern!(py, "channel");
        let channel = match data.downcast::<pyo3::types::PyDict>() {
            Ok(d) => d.get_item(key)?,
            Err(_) => Some(data.call_method1(pyo3::intern!(py, "get"), (key,))?),
        };
        (
            s.segment.as_deref().map(|x| py_key(py, x)),
            channel,
            s.tier.as_deref().map(|x| py_key(py, x)),
            py_key(py, &s.shared.stage_names[s.stage]),
        )
            .into_pyobject(py)
    }

    /// `(data, tier, segment, segments)`: the case's values without building its clocks (what
    /// a report groups by, read once per event).
    fn values<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let s = &self.snap;
        (
            s.data.clone_ref(py),
            s.tier.as_deref(),
            s.segment.as_deref(),
            PyTuple::new(py, &s.segments)?,
        )
            .into_pyobject(py)
    }

    /// The state's JSON text, byte for byte what `dumps(state_dict(...))` writes
    /// (`crate::state_json`), or `None` where only the Python path writes it exactly. `consts`:
    /// `(format, playbook id, version, content hash, timezone)`; `iso(x, timezone)`: an
    /// instant's ISO 8601 text.
    fn to_json(
        &self,
        py: Python<'_>,
        consts: &Bound<'_, PyTuple>,
        iso: &Bound<'_, PyAny>,
    ) -> Option<String> {
        crate::state_json::state_json(py, &self.snap, consts, iso).ok()
    }

    /// Every field: `(data, tier, segment, segments, clocks, opened, seq, epoch, pending, sends)`;
    /// clocks as `Clock` field tuples (or `None` for a never-touched clock).
    fn rest<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let s = &self.snap;
        let clocks = pyo3::types::PyList::empty(py);
        for (c, name) in s.clocks.iter().zip(&s.shared.clock_names) {
            match c {
                Some(w) => clocks.append(w.freeze(py, name)?)?,
                None => clocks.append(py.None())?,
            }
        }
        let pending = pyo3::types::PyList::empty(py);
        for p in &s.pending {
            pending.append(p.to_py(py)?)?;
        }
        let sends: PyObj = match &s.sends {
            Some(x) => x.clone_ref(py),
            None => py.None(),
        };
        let items: Vec<PyObj> = vec![
            s.data.clone_ref(py),
            s.tier.as_deref().into_pyobject(py)?.into_any().unbind(),
            s.segment.as_deref().into_pyobject(py)?.into_any().unbind(),
            PyTuple::new(py, &s.segments)?.into_any().unbind(),
            clocks.into_any().unbind(),
            s.opened.into_pyobject(py)?.into_any().unbind(),
            s.seq.into_pyobject(py)?.into_any().unbind(),
            s.epoch.into_pyobject(py)?.into_any().unbind(),
            pending.into_any().unbind(),
            sends,
        ];
        PyTuple::new(py, items)
    }
}
