//! The engine step: `Engine(plain, helpers)` holds a lowered playbook; `start`, `handle` and
//! `advance` run one step each and return it as plain tuples (`_native/backend.py` builds the
//! public objects from them).

pub mod def;
pub mod hooks;
pub mod run;

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyInt, PyList, PySet, PyString, PyTuple, PyType};

use crate::state::{ClockW, CoreState, Pend, PyObj, Status};
use def::Playbook;
use run::{Frozen, Run, Slot};

/// Python callables the core uses for what stays in Python: instants as `datetime`s, clock
/// records, wall-clock day arithmetic, value coercion and the engine's exception types.
pub struct Helpers {
    pub dt: PyObj,
    pub record: PyObj,
    pub wall_days: PyObj,
    /// `wall_months(t, months, days)`: calendar months then days in the playbook's zone.
    pub wall_months: PyObj,
    pub duration: PyObj,
    pub iso: PyObj,
    pub coerce: PyObj,
    pub describe: PyObj,
    pub invalid: PyObj,
    pub signal_loop: PyObj,
    pub case_error: PyObj,
    /// `consents(data, channel) -> bool`: the customer's consent to that channel (SPEC §10).
    pub consents: PyObj,
    /// `special(data, name)`: `assignee`, and `consent.<channel>` with its default (SPEC §10).
    pub special: PyObj,
    /// `opt_updates(type, view) -> dict | None`: what an opt-out/opt-in or `agent.assigned`
    /// event writes.
    pub opt_updates: PyObj,
    /// `zoned(name, zone) -> (calendar, lowered) | None`: calendar `name` (declared
    /// `timezone: customer`) built in the IANA zone `zone`, as `Plan.zoned` builds it
    pub zoned: PyObj,
    /// `typed_data` bound to the playbook's date, datetime and decimal fields; `None` when it
    /// has none (conditions then read the case data as it is)
    pub typed_view: Option<PyObj>,
    /// `types.MappingProxyType`: an event's `data`
    pub mappingproxy: Py<PyType>,
}

impl Helpers {
    fn from_py(d: &Bound<'_, PyAny>) -> PyResult<Self> {
        let g = |k: &str| -> PyResult<PyObj> { Ok(d.get_item(k)?.unbind()) };
        Ok(Helpers {
            mappingproxy: d
                .py()
                .import("types")?
                .getattr("MappingProxyType")?
                .downcast_into::<PyType>()?
                .unbind(),
            dt: g("dt")?,
            record: g("record")?,
            wall_days: g("wall_days")?,
            wall_months: g("wall_months")?,
            duration: g("duration")?,
            iso: g("iso")?,
            coerce: g("coerce")?,
            describe: g("describe")?,
            invalid: g("invalid")?,
            signal_loop: g("signal_loop")?,
            case_error: g("case_error")?,
            consents: g("consents")?,
            special: g("special")?,
            opt_updates: g("opt_updates")?,
            zoned: g("zoned")?,
            typed_view: match d.get_item("typed_view") {
                Ok(f) if !f.is_none() => Some(f.unbind()),
                _ => None,
            },
        })
    }

    /// Case `data` as conditions read it (`WorkingCase.fields`): its date, datetime and decimal
    /// fields held as text read as their type; `data` itself when there are none.
    pub fn typed<'py>(&self, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        match &self.typed_view {
            None => Ok(data.clone()),
            Some(f) => f.bind(data.py()).call1((data,)),
        }
    }
}

/// What conditions see besides fields and the event (`_Scope`): a snapshot of the run.
#[pyclass(module = "carepath_core", frozen)]
pub struct Scope {
    pub stage_idx: usize,
    pub data_gen: u64,
    pub stage: String,
    pub segment: Option<String>,
    pub segments: Vec<String>,
    pub tier: Option<String>,
    pub channel: PyObj,
    pub now: f64,
    pub dt: PyObj,
    pub clocks: Vec<(String, &'static str, bool)>,
    /// the case data, for `assignee` and `consent.<channel>` (SPEC §10)
    pub data: PyObj,
    /// `special(data, name)`: the reference's reading of those two built-ins
    pub special: PyObj,
}

impl Scope {
    /// Whether this snapshot still shows `run` (so conditions may share it).
    pub fn shows(&self, run: &Run<'_, '_>) -> bool {
        self.stage_idx == run.stage
            && self.data_gen == run.data_gen
            && self.now.to_bits() == run.now.to_bits()
            && self.tier == run.tier
            && self.segment == run.segment
            && self.segments == run.segments
            && self.clocks.iter().zip(&run.slots).all(|(c, s)| match &s.w {
                Some(w) => c.1 == w.status.as_str() && c.2 == w.breached,
                None => c.1 == s.fstatus.as_str() && c.2 == s.fbreached,
            })
    }
}

#[pymethods]
impl Scope {
    #[pyo3(signature = (name, default=None))]
    fn get(&self, py: Python<'_>, name: &str, default: Option<PyObj>) -> PyResult<PyObj> {
        let default = default.unwrap_or_else(|| py.None());
        Ok(match name {
            "stage" => self.stage.as_str().into_pyobject(py)?.into_any().unbind(),
            "segment" => self
                .segment
                .as_deref()
                .into_pyobject(py)?
                .into_any()
                .unbind(),
            "segments" => PyList::new(py, &self.segments)?.into_any().unbind(),
            "tier" => self.tier.as_deref().into_pyobject(py)?.into_any().unbind(),
            "now" => self.dt.bind(py).call1((self.now,))?.unbind(),
            "channel" => self.channel.clone_ref(py),
            "assignee" => self.special.bind(py).call1((&self.data, name))?.unbind(),
            _ if name.starts_with("consent.") => {
                self.special.bind(py).call1((&self.data, name))?.unbind()
            }
            _ if name.starts_with("sla.") => {
                let parts: Vec<&str> = name.split('.').collect();
                if parts.len() != 3 {
                    return Ok(default);
                }
                match self.clocks.iter().find(|c| c.0 == parts[1]) {
                    None => default,
                    Some(c) => match parts[2] {
                        "status" => c.1.into_pyobject(py)?.into_any().unbind(),
                        "breached" => pyo3::types::PyBool::new(py, c.2)
                            .to_owned()
                            .into_any()
                            .unbind(),
                        _ => default,
                    },
                }
            }
            _ => default,
        })
    }

    fn __getitem__(&self, py: Python<'_>, name: &str) -> PyResult<PyObj> {
        self.get(py, name, None)
    }

    fn __len__(&self) -> usize {
        0
    }
}

/// Targets whose selection an engine notes (`Engine.watch`): per clock (playbook order), per
/// target, whether it is watched; the keys of the cases that selected one go into `hits`.
pub struct Watch {
    pub targets: Vec<Vec<bool>>,
    pub hits: Py<PySet>,
}

#[pyclass(module = "carepath_core", frozen)]
pub struct Engine {
    pb: Playbook,
    h: Helpers,
    watch: OnceLock<Watch>,
}

fn guard<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown".into());
            Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
                "carepath_core bug: {msg}"
            )))
        }
    }
}

impl Engine {
    fn run_from<'a, 'py>(&'a self, state: &Bound<'py, PyAny>) -> PyResult<Run<'a, 'py>> {
        let py = state.py();
        let pb = &self.pb;
        let stage_name: String = state.getattr("stage")?.extract()?;
        let stage = *pb
            .stage_index
            .get(&stage_name)
            .ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(stage_name.clone()))?;
        let clocks = state.getattr("clocks")?;
        let mut slots = Vec::with_capacity(pb.clocks.len());
        let mut order = Vec::new();
        // working copies for the open clocks, in the state's order (as `_Run.__init__`)
        let mut open_in_state = Vec::new();
        for (i, d) in pb.clocks.iter().enumerate() {
            let f = clocks.call_method1("get", (&d.name,))?;
            if f.is_none() {
                slots.push(Slot {
                    frozen: Frozen::Pending,
                    fstatus: Status::Pending,
                    fbreached: false,
                    w: None,
                });
            } else {
                let fstatus = Status::parse(&f.getattr("status")?.extract::<String>()?)?;
                let fbreached: bool = f.getattr("breached")?.extract()?;
                let w = if fstatus.is_open() {
                    Some(ClockW::from_py(&f)?)
                } else {
                    None
                };
                if w.is_some() {
                    open_in_state.push((i, d.name.as_str()));
                }
                slots.push(Slot {
                    frozen: Frozen::Py(f.unbind()),
                    fstatus,
                    fbreached,
                    w,
                });
            }
        }
        if open_in_state.len() > 1 {
            // the state's mapping order decides
            let mut pos = Vec::new();
            for (k, name) in clocks.call_method0("keys")?.try_iter()?.enumerate() {
                let name: String = name?.extract()?;
                pos.push((name, k));
            }
            open_in_state.sort_by_key(|(_, n)| {
                pos.iter()
                    .find(|(m, _)| m == n)
                    .map(|x| x.1)
                    .unwrap_or(usize::MAX)
            });
        }
        order.extend(open_in_state.iter().map(|x| x.0));
        let mut pending = Vec::new();
        let mut pseq0 = 0;
        for p in state.getattr("pending")?.try_iter()? {
            let p = Pend::from_py(&p?)?;
            pseq0 = pseq0.max(p.seq);
            pending.push(p);
        }
        let data = state.getattr("data")?;
        Ok(Run {
            py,
            pb,
            h: &self.h,
            case: state.getattr("case")?.extract()?,
            stage,
            fields: self.h.typed(&data)?,
            data,
            data_w: None,
            tier: state.getattr("tier")?.extract()?,
            segment: state.getattr("segment")?.extract()?,
            segments: state.getattr("segments")?.extract()?,
            slots,
            order,
            now: state.getattr("now_s")?.extract()?,
            opened: state.getattr("opened_s")?.extract()?,
            seq: state.getattr("seq")?.extract()?,
            epoch: state.getattr("epoch")?.extract()?,
            ended: state.getattr("ended")?.extract()?,
            pending,
            pseq: -1,
            pseq0,
            sends: state.getattr("sends")?,
            sends_w: None,
            actions: Vec::new(),
            signals: Vec::new(),
            queue: VecDeque::new(),
            depth: 0,
            event: None,
            view: None,
            changed: None,
            empty: PyDict::new(py).into_any(),
            data_gen: 0,
            scope_cache: std::cell::RefCell::new(None),
            tz_fallback: false,
            watch: self.watch.get(),
        })
    }
}

impl Engine {
    /// A run from the core's own state of a previous step (no Python object is read).
    fn run_from_snap<'a, 'py>(
        &'a self,
        py: Python<'py>,
        core: &'a CoreState,
    ) -> PyResult<Run<'a, 'py>> {
        let pb = &self.pb;
        let s = &core.snap;
        let mut slots = Vec::with_capacity(pb.clocks.len());
        let mut order = Vec::new();
        for (i, c) in s.clocks.iter().enumerate() {
            slots.push(match c {
                None => Slot {
                    frozen: Frozen::Pending,
                    fstatus: Status::Pending,
                    fbreached: false,
                    w: None,
                },
                Some(c) => {
                    let w = if c.status.is_open() {
                        order.push(i);
                        Some(c.from_snap(py))
                    } else {
                        None
                    };
                    Slot {
                        frozen: Frozen::Core(c),
                        fstatus: c.status,
                        fbreached: c.breached,
                        w,
                    }
                }
            });
        }
        let pending: Vec<Pend> = s.pending.iter().map(|p| p.clone_ref(py)).collect();
        let pseq0 = pending.iter().map(|p| p.seq).max().unwrap_or(0).max(0);
        Ok(Run {
            py,
            pb,
            h: &self.h,
            case: s.case.clone(),
            stage: s.stage,
            data: s.data.bind(py).clone(),
            fields: match &s.fields {
                Some(f) => f.bind(py).clone(),
                None => s.data.bind(py).clone(),
            },
            data_w: None,
            tier: s.tier.clone(),
            segment: s.segment.clone(),
            segments: s.segments.clone(),
            slots,
            order,
            now: s.now,
            opened: s.opened,
            seq: s.seq,
            epoch: s.epoch,
            ended: s.ended,
            pending,
            pseq: -1,
            pseq0,
            sends: match &s.sends {
                Some(x) => x.bind(py).clone(),
                None => PyDict::new(py).into_any(),
            },
            sends_w: None,
            actions: Vec::new(),
            signals: Vec::new(),
            queue: VecDeque::new(),
            depth: 0,
            event: None,
            view: None,
            changed: None,
            empty: PyDict::new(py).into_any(),
            data_gen: 0,
            scope_cache: std::cell::RefCell::new(None),
            tz_fallback: false,
            watch: self.watch.get(),
        })
    }

    /// A run from `state`: the core's own state when it is one of this playbook's, else a `CaseState`.
    fn with_run<'py, T>(
        &self,
        state: &Bound<'py, PyAny>,
        f: impl FnOnce(Run<'_, 'py>) -> PyResult<T>,
    ) -> PyResult<T> {
        if let Ok(core) = state.downcast::<CoreState>() {
            let core = core.get();
            if Arc::ptr_eq(&core.snap.shared, &self.pb.shared)
                || *core.snap.shared.hash == *self.pb.hash
            {
                return f(self.run_from_snap(state.py(), core)?);
            }
        }
        f(self.run_from(state)?)
    }
}

impl Engine {
    /// A new dict of the mapping `data` (empty for a falsy one).
    fn dict_of<'py>(py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
        let view = PyDict::new(py);
        if data.is_truthy()? {
            view.call_method1(intern!(py, "update"), (data,))?;
        }
        Ok(view)
    }

    /// `Engine._event_view` when every declared field is already valid (or absent with a
    /// default); `None` otherwise (the reference then coerces or raises).
    fn event_view<'py>(
        &self,
        py: Python<'py>,
        event: &Bound<'py, PyAny>,
        type_obj: &Bound<'py, PyAny>,
        type_: &str,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let data = event.getattr(intern!(py, "data"))?;
        // an event's data is a read-only view of a dict: its `copy()` is the dict's, made in C
        let view = match data.downcast::<PyDict>() {
            Ok(d) => d.copy()?,
            Err(_) if data.get_type().is(&self.h.mappingproxy) => {
                match data
                    .call_method0(intern!(py, "copy"))?
                    .downcast_into::<PyDict>()
                {
                    Ok(d) => d,
                    Err(_) => Self::dict_of(py, &data)?,
                }
            }
            Err(_) => Self::dict_of(py, &data)?,
        };
        if let Some(fields) = self.pb.events.get(type_) {
            for f in fields {
                let v = view.get_item(f.key.bind(py))?;
                let ok = match &v {
                    Some(v) if v.is_exact_instance_of::<PyString>() => match &f.kind {
                        def::FieldKind::String => true,
                        def::FieldKind::Enum(values) => {
                            let s = v.downcast::<PyString>()?.to_str()?;
                            values.iter().any(|x| x == s)
                        }
                        _ => false,
                    },
                    Some(v) if v.is_exact_instance_of::<PyBool>() => {
                        matches!(f.kind, def::FieldKind::Bool)
                    }
                    Some(v) if v.is_exact_instance_of::<PyInt>() => {
                        matches!(f.kind, def::FieldKind::Int)
                    }
                    _ => false,
                };
                if ok {
                    continue;
                }
                if v.as_ref().is_none_or(|v| v.is_none()) {
                    // a date, datetime or decimal default is typed by the reference (typed_value)
                    if f.required || matches!(f.kind, def::FieldKind::Other) {
                        return Ok(None);
                    }
                    view.set_item(f.key.bind(py), f.default.bind(py))?;
                    continue;
                }
                return Ok(None);
            }
        }
        view.set_item(intern!(py, "type"), type_obj)?;
        view.set_item(intern!(py, "at"), event.getattr(intern!(py, "at"))?)?;
        view.set_item(intern!(py, "case"), event.getattr(intern!(py, "case"))?)?;
        view.set_item(intern!(py, "id"), event.getattr(intern!(py, "id"))?)?;
        Ok(Some(view))
    }
}

#[pymethods]
impl Engine {
    #[new]
    fn new(plain: &Bound<'_, PyAny>, helpers: &Bound<'_, PyAny>) -> PyResult<Self> {
        guard(|| {
            Ok(Engine {
                pb: Playbook::from_plain(plain)?,
                h: Helpers::from_py(helpers)?,
                watch: OnceLock::new(),
            })
        })
    }

    /// Note, from now on, the cases whose clocks select one of `targets` (per clock in the
    /// playbook's order, per target: whether it is watched) when a cycle starts or is
    /// retargeted: their keys are added to `hits`. Once per engine.
    fn watch(&self, targets: Vec<Vec<bool>>, hits: Py<PySet>) -> PyResult<()> {
        if targets.len() != self.pb.clocks.len() {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "watch: {} clocks given, the playbook has {}",
                targets.len(),
                self.pb.clocks.len()
            )));
        }
        self.watch
            .set(Watch { targets, hits })
            .map_err(|_| pyo3::exceptions::PyValueError::new_err("this engine already watches"))
    }

    /// Open a case: `(event, view, key, at, seq)` → the step's tuple.
    fn start<'py>(
        &self,
        py: Python<'py>,
        event: PyObj,
        view: &Bound<'py, PyAny>,
        key: String,
        at: f64,
        seq: i64,
    ) -> PyResult<Bound<'py, PyTuple>> {
        guard(|| {
            let pb = &self.pb;
            let defaults = pb.defaults.bind(py).copy()?;
            let slots = pb
                .clocks
                .iter()
                .map(|_| Slot {
                    frozen: Frozen::Pending,
                    fstatus: Status::Pending,
                    fbreached: false,
                    w: None,
                })
                .collect();
            let mut run = Run {
                py,
                pb,
                h: &self.h,
                case: key,
                stage: pb.initial,
                fields: self.h.typed(&defaults)?,
                data: defaults.into_any(),
                data_w: None,
                tier: None,
                segment: None,
                segments: Vec::new(),
                slots,
                order: Vec::new(),
                now: at,
                opened: at,
                seq,
                epoch: 0,
                ended: false,
                pending: Vec::new(),
                pseq: -1,
                pseq0: 0,
                sends: PyDict::new(py).into_any(),
                sends_w: None,
                actions: Vec::new(),
                signals: Vec::new(),
                queue: VecDeque::new(),
                depth: 0,
                event: Some(event),
                view: None,
                changed: None,
                empty: PyDict::new(py).into_any(),
                data_gen: 0,
                scope_cache: std::cell::RefCell::new(None),
                tz_fallback: false,
                watch: self.watch.get(),
            };
            let type_: String = view.get_item("type")?.extract()?;
            let fresh = run.data.clone();
            run.apply_sets_start(view)?;
            run.recompute_segments(Some(view))?;
            run.enter_stage(pb.initial, Some(view), true)?;
            let mut entered = vec![pb.initial];
            run.dispatch(&type_, view, &mut entered)?;
            run.drain_signals()?;
            run.fire_due(at, true)?;
            if run.data_w.is_none() {
                // a fresh case's data is its own dict even when nothing was set
                run.data_w = Some(fresh.downcast_into::<PyDict>()?);
            }
            run.finish()
        })
    }

    /// Apply an event (already validated; its view built) to a state.
    fn handle<'py>(
        &self,
        py: Python<'py>,
        state: &Bound<'py, PyAny>,
        event: PyObj,
        view: &Bound<'py, PyAny>,
        at: f64,
        nw: Option<f64>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        guard(|| {
            let type_: String = view.get_item("type")?.extract()?;
            self.with_run(state, |mut run| {
                if nw.is_some_and(|n| n < at) {
                    run.fire_due(at, false)?;
                }
                if !run.ended {
                    run.set_now(at);
                    run.event = Some(event);
                    if type_ == "customer.opted_out"
                        || type_ == "customer.opted_in"
                        || type_ == "agent.assigned"
                    {
                        let out = self.h.opt_updates.bind(py).call1((&type_, view))?;
                        if let Ok(d) = out.downcast::<PyDict>() {
                            run.write_data(d)?;
                        }
                    } else if type_ == "action.failed" {
                        run.on_failed(view)?;
                    }
                    if self.pb.segments_volatile {
                        run.recompute_segments(Some(view))?;
                    }
                    let mut entered = Vec::new();
                    run.dispatch(&type_, view, &mut entered)?;
                    run.drain_signals()?;
                }
                run.fire_due(at, true)?;
                run.finish()
            })
        })
    }

    /// `handle` for the usual case, checks and event view included: a state of this very
    /// engine, an event in order, of a type the playbook uses, whose declared fields are already
    /// valid. `None` when any of that does not hold: the caller takes the general path (which
    /// coerces, or raises the reference's errors).
    fn handle_fast<'py>(
        &self,
        py: Python<'py>,
        state: &Bound<'py, PyAny>,
        event: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyTuple>>> {
        guard(|| {
            let Ok(core) = state.downcast::<CoreState>() else {
                return Ok(None);
            };
            let snap = &core.get().snap;
            if !Arc::ptr_eq(&snap.shared, &self.pb.shared) || snap.ended {
                return Ok(None);
            }
            let at: f64 = event.getattr(intern!(py, "_ts"))?.extract()?;
            if at < snap.now - 1e-6 {
                return Ok(None);
            }
            let type_obj = event.getattr(intern!(py, "type"))?;
            let type_: String = type_obj.extract()?;
            if !self.pb.event_types.contains(&type_) {
                return Ok(None);
            }
            let Some(view) = self.event_view(py, event, &type_obj, &type_)? else {
                return Ok(None);
            };
            let nw = snap.next_wakeup;
            self.handle(py, state, event.clone().unbind(), view.as_any(), at, nw)
                .map(Some)
        })
    }

    /// `start(event)` when the core can open the case alone: a `start.on` type, no `start.when`,
    /// the key `event.case` (a non-empty string), every declared field already valid; `None`
    /// otherwise (the caller then takes the reference's way, which coerces or raises).
    fn start_fast<'py>(
        &self,
        py: Python<'py>,
        event: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyTuple>>> {
        guard(|| {
            if !self.pb.start_fast {
                return Ok(None);
            }
            let type_obj = event.getattr(intern!(py, "type"))?;
            let type_: String = type_obj.extract()?;
            if !self.pb.start_on.contains(&type_) {
                return Ok(None);
            }
            let key = event.getattr(intern!(py, "case"))?;
            let Ok(key) = key.downcast::<PyString>() else {
                return Ok(None);
            };
            let key = key.to_str()?.to_string();
            if key.is_empty() {
                return Ok(None);
            }
            let Some(view) = self.event_view(py, event, &type_obj, &type_)? else {
                return Ok(None);
            };
            let at: f64 = event.getattr(intern!(py, "_ts"))?.extract()?;
            self.start(py, event.clone().unbind(), view.as_any(), key, at, 0)
                .map(Some)
        })
    }

    /// Fire everything due at or before `t` (the caller has checked that something is).
    fn advance<'py>(&self, state: &Bound<'py, PyAny>, t: f64) -> PyResult<Bound<'py, PyTuple>> {
        guard(|| {
            self.with_run(state, |mut run| {
                run.fire_due(t, true)?;
                run.finish()
            })
        })
    }

    /// [`Self::advance`] of each state of `states` that is not `None` (the caller has checked
    /// that each has something due), for the end of a replay that keeps no state: the count of
    /// the actions by type, and `(index, output)` of each advance that gave signals. The new
    /// states are not kept.
    fn advance_many<'py>(
        &self,
        py: Python<'py>,
        states: &Bound<'py, PyList>,
        t: f64,
    ) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyList>)> {
        let counts = PyDict::new(py);
        let signalled = PyList::empty(py);
        for (i, state) in states.iter().enumerate() {
            if state.is_none() {
                continue;
            }
            let out = self.advance(&state, t)?;
            let actions = out.get_item(1)?;
            for a in actions.try_iter()? {
                let kind = a?.get_item(1)?;
                let n: usize = match counts.get_item(&kind)? {
                    Some(n) => n.extract()?,
                    None => 0,
                };
                counts.set_item(kind, n + 1)?;
            }
            if out.get_item(2)?.is_truthy()? {
                signalled.append((i, out))?;
            }
        }
        Ok((counts, signalled))
    }
}
