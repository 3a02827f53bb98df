//! One step's mutable working copy of a case (`_Run` of `engine.py`), method for method.

use rustc_hash::FxHashSet as HashSet;
use std::collections::VecDeque;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList, PyString, PyTuple};

use super::def::{py_max, ActionDef, Delay, Playbook, SetDef, Severity, Verb};
use super::hooks::{Cal, CalRef, Cond};
use super::Helpers;
use std::sync::Arc;

use crate::state::{round_us, ClockW, CoreState, Kind, Owner, Pend, PyObj, Rec, Snap, Status};
use crate::value::Value;

pub const MAX_SIGNAL_DEPTH: usize = 16;
pub const MAX_HISTORY: usize = 20;
pub const MAX_ITEMS_PER_STEP: usize = 100_000;
pub const EPS: f64 = 1e-6;

/// A clock as the step's input state holds it.
pub enum Frozen<'a> {
    /// never touched: pending, cycle 0
    Pending,
    /// a Python `Clock`
    Py(PyObj),
    /// a clock of the core's own state (shared with the next state when the step leaves it as is)
    Core(&'a Arc<ClockW>),
}

pub struct Slot<'a> {
    pub frozen: Frozen<'a>,
    pub fstatus: Status,
    pub fbreached: bool,
    pub w: Option<ClockW>,
}

pub struct Sig {
    pub type_: String,
    pub at: f64,
    pub sla: Option<String>,
    pub cycle: Option<i64>,
    pub record: Option<Rec>,
    pub data: Option<PyObj>,
}

pub enum Item {
    Clock(usize),
    Pending(usize),
}

pub struct Run<'a, 'py> {
    pub py: Python<'py>,
    pub pb: &'a Playbook,
    pub h: &'a Helpers,
    pub case: String,
    pub stage: usize,
    pub data: Bound<'py, PyAny>,
    /// what conditions read: `data` with its date, datetime and decimal text typed (issue 15 #7)
    pub fields: Bound<'py, PyAny>,
    pub data_w: Option<Bound<'py, PyDict>>,
    pub tier: Option<String>,
    pub segment: Option<String>,
    pub segments: Vec<String>,
    pub slots: Vec<Slot<'a>>,
    /// the clocks with a working copy, in the order they got it (`_Run.clocks`)
    pub order: Vec<usize>,
    pub now: f64,
    pub opened: f64,
    pub seq: i64,
    pub epoch: i64,
    pub ended: bool,
    pub pending: Vec<Pend>,
    pub pseq: i64,
    pub pseq0: i64,
    pub sends: Bound<'py, PyAny>,
    pub sends_w: Option<Bound<'py, PyDict>>,
    pub actions: Vec<PyObj>,
    pub signals: Vec<Sig>,
    pub queue: VecDeque<(usize, usize)>,
    pub depth: usize,
    pub event: Option<PyObj>,
    pub view: Option<Bound<'py, PyAny>>,
    pub changed: Option<HashSet<String>>,
    pub empty: Bound<'py, PyAny>,
    /// bumped whenever the case data changes (the scope shows its `channel`)
    pub data_gen: u64,
    /// the last scope built, shared by conditions while it still shows the run
    pub scope_cache: std::cell::RefCell<Option<Bound<'py, super::Scope>>>,
    /// `timezone.fallback` raised in this step
    pub tz_fallback: bool,
    /// the targets whose selection is noted (`Engine.watch`)
    pub watch: Option<&'a super::Watch>,
}

impl<'a, 'py> Run<'a, 'py> {
    // -- bookkeeping ------------------------------------------------------------------------------
    fn note_changed(&mut self, names: &[&str]) {
        let set = self.changed.get_or_insert_with(HashSet::default);
        for n in names {
            set.insert((*n).to_string());
        }
    }

    pub fn set_now(&mut self, t: f64) {
        if t > self.now {
            self.now = t;
        }
    }

    fn dt(&self, t: f64) -> PyResult<Bound<'py, PyAny>> {
        self.h.dt.bind(self.py).call1((t,))
    }

    fn err(&self, f: &PyObj, msg: String) -> PyErr {
        let ev = match &self.event {
            Some(e) => e.clone_ref(self.py),
            None => self.py.None(),
        };
        match f.bind(self.py).call1((msg, ev)) {
            Ok(exc) => PyErr::from_value(exc),
            Err(e) => e,
        }
    }

    fn signal(
        &mut self,
        type_: String,
        sla: Option<String>,
        cycle: Option<i64>,
        record: Option<Rec>,
        data: Option<PyObj>,
    ) {
        self.signals.push(Sig {
            type_,
            at: self.now,
            sla,
            cycle,
            record,
            data,
        });
        self.queue
            .push_back((self.signals.len() - 1, self.depth + 1));
    }

    fn channel_value(&self) -> PyResult<Bound<'py, PyAny>> {
        self.data.call_method1(
            pyo3::intern!(self.py, "get"),
            (pyo3::intern!(self.py, "channel"),),
        )
    }

    fn channel_name(&self) -> PyResult<Option<String>> {
        let v = self.channel_value()?;
        let s = v.str()?.to_string();
        Ok(if self.pb.channels.contains_key(&s) {
            Some(s)
        } else {
            None
        })
    }

    pub fn calendar(&mut self, name: Option<&str>) -> PyResult<CalRef<'a>> {
        let n = self.cal_name(name)?;
        if !self.pb.customer_cals.is_empty() && self.pb.customer_cals.contains(&n) {
            return self.customer_calendar(&n);
        }
        let pb = self.pb;
        pb.calendars
            .get(&n)
            .map(CalRef::Shared)
            .ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(n.clone()))
    }

    /// Calendar `name` (declared `timezone: customer`) in the zone the case's
    /// `customer_timezone` field names; the playbook's own, and a `timezone.fallback` signal
    /// (once a step), when the field is missing or names no zone (`_Run.customer_calendar`).
    fn customer_calendar(&mut self, name: &str) -> PyResult<CalRef<'a>> {
        let py = self.py;
        let pb = self.pb;
        let zone = match &pb.customer_tz {
            Some(field) => self.data.call_method1(pyo3::intern!(py, "get"), (field,))?,
            None => py.None().into_bound(py),
        };
        let zone_s: Option<String> = zone
            .downcast::<PyString>()
            .ok()
            .map(|s| s.to_string())
            .filter(|s| !s.is_empty());
        if let Some(z) = zone_s {
            let key = (name.to_string(), z);
            let cached = pb.zoned.lock().ok().and_then(|m| m.get(&key).cloned());
            let found = match cached {
                Some(found) => found,
                None => {
                    let got = self.h.zoned.bind(py).call1((name, &key.1))?;
                    let built = if got.is_none() {
                        None
                    } else {
                        Some(Arc::new(Cal::from_py(&got)?))
                    };
                    if let Ok(mut m) = pb.zoned.lock() {
                        if m.len() >= 1024 {
                            m.clear(); // bounded: zones are few, hostile values are not
                        }
                        m.insert(key, built.clone());
                    }
                    built
                }
            };
            if let Some(c) = found {
                return Ok(CalRef::Zoned(c));
            }
        }
        if !self.tz_fallback {
            self.tz_fallback = true;
            let data = PyDict::new(py);
            data.set_item(pyo3::intern!(py, "calendar"), name)?;
            data.set_item(pyo3::intern!(py, "zone"), &zone)?;
            data.set_item(pyo3::intern!(py, "timezone"), &pb.timezone)?;
            self.signal(
                "timezone.fallback".into(),
                None,
                None,
                None,
                Some(data.into_any().unbind()),
            );
        }
        pb.calendars
            .get(name)
            .map(CalRef::Shared)
            .ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(name.to_string()))
    }

    fn cal_name(&self, name: Option<&str>) -> PyResult<String> {
        Ok(match name {
            None => "always".to_string(),
            Some("channel") => match self.channel_name()? {
                Some(ch) => self.pb.channels[&ch].calendar.clone(),
                None => "always".to_string(),
            },
            Some(n) => n.to_string(),
        })
    }

    fn scope(&self) -> PyResult<Bound<'py, PyAny>> {
        if let Some(sc) = self.scope_cache.borrow().as_ref() {
            if sc.get().shows(self) {
                return Ok(sc.clone().into_any());
            }
        }
        let clocks: Vec<(String, &'static str, bool)> = self
            .slots
            .iter()
            .enumerate()
            .map(|(i, s)| match &s.w {
                Some(w) => (
                    self.pb.clocks[i].name.clone(),
                    w.status.as_str(),
                    w.breached,
                ),
                None => (
                    self.pb.clocks[i].name.clone(),
                    s.fstatus.as_str(),
                    s.fbreached,
                ),
            })
            .collect();
        let sc = super::Scope {
            stage_idx: self.stage,
            data_gen: self.data_gen,
            stage: self.pb.stages[self.stage].name.clone(),
            segment: self.segment.clone(),
            segments: self.segments.clone(),
            tier: self.tier.clone(),
            channel: self.channel_value()?.unbind(),
            now: self.now,
            dt: self.h.dt.clone_ref(self.py),
            clocks,
            data: self.data.clone().unbind(),
            special: self.h.special.clone_ref(self.py),
        };
        let sc = Bound::new(self.py, sc)?;
        *self.scope_cache.borrow_mut() = Some(sc.clone());
        Ok(sc.into_any())
    }

    fn holds(&self, e: &Option<Cond>, view: Option<&Bound<'py, PyAny>>) -> PyResult<bool> {
        let Some(c) = e else { return Ok(true) };
        let v = view.unwrap_or(&self.empty);
        if let Cond::Native(p, _) = c {
            if let Ok(b) = p.holds(&RunScope { run: self, view: v }) {
                return Ok(b);
            }
        }
        let scope = self.scope()?;
        c.holds(self.py, &self.fields, v, &scope)
    }

    /// The value of an expression (a `set:` value).
    fn value(&self, c: &Cond, view: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        if let Cond::Native(p, _) = c {
            if let Ok(v) = p.eval(&RunScope { run: self, view }) {
                return Ok(v.to_py(self.py)?.into_bound(self.py));
            }
        }
        let scope = self.scope()?;
        c.value(self.py, &self.fields, view, &scope)
    }

    // -- data ---------------------------------------------------------------------------------------
    fn apply_sets(
        &mut self,
        sets: &[SetDef],
        view: Option<&Bound<'py, PyAny>>,
        source: &str,
    ) -> PyResult<Bound<'py, PyDict>> {
        let py = self.py;
        let out = PyDict::new(py);
        if sets.is_empty() {
            return Ok(out);
        }
        let v0 = view.unwrap_or(&self.empty);
        for s in sets {
            let v = match &s.expr {
                None => s.literal.bind(py).clone(),
                Some(e) => self.value(e, v0)?,
            };
            if s.kind.accepts_as_is(&v)? {
                out.set_item(s.key.bind(py), v)?; // the usual case: no call into Python
                continue;
            }
            let r = self.h.coerce.bind(py).call1((v, s.ftype.bind(py)))?;
            let ok: bool = r.get_item(0)?.extract()?;
            if !ok {
                let desc = self
                    .h
                    .describe
                    .bind(py)
                    .call1((s.ftype.bind(py),))?
                    .str()?
                    .to_string();
                let shown = r.get_item(2)?.repr()?.to_string();
                return Err(self.err(
                    &self.h.invalid,
                    format!("{source}: {} = {shown} is not a valid {desc}", s.field),
                ));
            }
            out.set_item(s.key.bind(py), r.get_item(1)?)?;
        }
        self.write_data(&out)?;
        Ok(out)
    }

    /// Write `out` into the case's data (copied on first write).
    pub fn write_data(&mut self, out: &Bound<'py, PyDict>) -> PyResult<()> {
        let py = self.py;
        if !out.is_empty() {
            if self.data_w.is_none() {
                let w = match self.data.downcast::<PyDict>() {
                    Ok(d) => d.copy()?,
                    Err(_) => {
                        let w = PyDict::new(py);
                        w.call_method1(pyo3::intern!(py, "update"), (&self.data,))?;
                        w
                    }
                };
                self.data = w.clone().into_any();
                self.data_w = Some(w);
            }
            if let Some(w) = &self.data_w {
                w.update(out.as_mapping())?;
            }
            self.fields = self.h.typed(&self.data)?;
            self.data_gen += 1;
            let set = self.changed.get_or_insert_with(HashSet::default);
            for k in out.keys().iter() {
                // a str's UTF-8 as it is; anything else (or a lone surrogate) as `str()` shows it
                match k.downcast::<PyString>().ok().and_then(|k| k.to_str().ok()) {
                    Some(text) => set.insert(text.to_owned()),
                    None => set.insert(k.to_string()),
                };
            }
        }
        Ok(())
    }

    /// `a` again on the next of its `fallback` channels after `failed` that the customer
    /// consents to; `send.suppressed` for those without consent, `send.exhausted` when none is
    /// left (`carepath.engine.actions.fall_back`).
    fn fall_back(
        &mut self,
        a: &'a ActionDef,
        view: Option<&Bound<'py, PyAny>>,
        failed: &Bound<'py, PyAny>,
    ) -> PyResult<()> {
        if a.fallback.is_empty() {
            return Ok(());
        }
        let py = self.py;
        let failed_s: Option<String> = failed.extract().ok();
        let start = match &failed_s {
            Some(f) => a.fallback.iter().position(|c| c == f).map_or(0, |i| i + 1),
            None => 0,
        };
        for ch in &a.fallback[start..] {
            if failed_s.as_deref() == Some(ch.as_str()) {
                continue;
            }
            let c = pyo3::types::PyString::new(py, ch).into_any();
            if self.consented(a, &c)? {
                return self.emit(a, view, Some(ch));
            }
        }
        let data = PyDict::new(py);
        data.set_item(pyo3::intern!(self.py, "channel"), failed)?;
        data.set_item(pyo3::intern!(self.py, "template"), a.arg.bind(py))?;
        data.set_item(pyo3::intern!(self.py, "source"), &a.source)?;
        self.signal(
            "send.exhausted".into(),
            None,
            None,
            None,
            Some(data.into_any().unbind()),
        );
        Ok(())
    }

    /// `action.failed` of a `send`/`survey` with a `fallback`: on to its next channel
    /// (`carepath.engine.delivery.on_failed`).
    pub fn on_failed(&mut self, view: &Bound<'py, PyAny>) -> PyResult<()> {
        let pb = self.pb;
        let action = view.call_method1("get", ("action",))?;
        let Ok(action) = action.downcast::<pyo3::types::PyMapping>() else {
            return Ok(());
        };
        let kind = action.call_method1("get", ("type",))?;
        if !(kind.eq("send")? || kind.eq("survey")?) {
            return Ok(());
        }
        let source = action.call_method1("get", ("source",))?.str()?.to_string();
        let Some(&ai) = pb.action_by_source.get(&source) else {
            return Ok(());
        };
        let a = &pb.actions[ai];
        if a.fallback.is_empty() {
            return Ok(());
        }
        let params = action.call_method1("get", ("params",))?;
        let failed = match params.downcast::<pyo3::types::PyMapping>() {
            Ok(m) => m.call_method1("get", ("channel",))?,
            Err(_) => self.py.None().into_bound(self.py),
        };
        self.fall_back(a, Some(view), &failed)
    }

    /// Whether the customer consents to `channel`; when not, raise `send.suppressed` (SPEC §10).
    fn consented(&mut self, a: &ActionDef, channel: &Bound<'py, PyAny>) -> PyResult<bool> {
        let py = self.py;
        let ok = self
            .h
            .consents
            .bind(py)
            .call1((&self.data, channel))?
            .is_truthy()?;
        if !ok {
            let data = PyDict::new(py);
            data.set_item(pyo3::intern!(self.py, "reason"), "no_consent")?;
            data.set_item(pyo3::intern!(self.py, "channel"), channel)?;
            data.set_item(pyo3::intern!(self.py, "template"), a.arg.bind(py))?;
            data.set_item(pyo3::intern!(self.py, "source"), &a.source)?;
            self.signal(
                "send.suppressed".into(),
                None,
                None,
                None,
                Some(data.into_any().unbind()),
            );
        }
        Ok(ok)
    }

    /// `start.set` of the opening event.
    pub fn apply_sets_start(&mut self, view: &Bound<'py, PyAny>) -> PyResult<()> {
        let pb = self.pb;
        self.apply_sets(&pb.start_sets, Some(view), "start.set")
            .map(|_| ())
    }

    pub fn recompute_segments(&mut self, view: Option<&Bound<'py, PyAny>>) -> PyResult<()> {
        let mut segs = Vec::new();
        let pb = self.pb;
        for (name, e) in &pb.segments {
            if self.holds(e, view)? {
                segs.push(name.clone());
            }
        }
        if segs != self.segments {
            self.segments = segs;
            self.note_changed(&["segment", "segments"]);
        }
        self.segment = self.segments.first().cloned();
        Ok(())
    }

    // -- dispatch -------------------------------------------------------------------------------------
    fn pick(
        &self,
        handlers: Option<&'a Vec<super::def::HandlerDef>>,
        view: &Bound<'py, PyAny>,
    ) -> PyResult<Option<&'a super::def::HandlerDef>> {
        if let Some(hs) = handlers {
            for h in hs {
                if h.when.is_none() || self.holds(&h.when, Some(view))? {
                    return Ok(Some(h));
                }
            }
        }
        Ok(None)
    }

    pub fn dispatch(
        &mut self,
        type_: &str,
        view: &Bound<'py, PyAny>,
        entered: &mut Vec<usize>,
    ) -> PyResult<()> {
        let pb = self.pb;
        let st = &pb.stages[self.stage];
        let mut h = self.pick(st.on.get(type_), view)?;
        if h.is_none() && !st.final_ {
            h = self.pick(pb.root_on.get(type_), view)?;
        }
        if let Some(h) = h {
            if !h.sets.is_empty() {
                self.apply_sets(&h.sets, Some(view), &format!("{}.set", h.source))?;
                self.recompute_segments(Some(view))?;
            }
            match h.to {
                Some(to) => self.transition(to, &h.do_, Some(view), entered)?,
                None => self.run_actions(&h.do_, Some(view), Owner::Stage(self.epoch))?,
            }
        }
        self.after_change(type_, Some(view), entered)
    }

    fn after_change(
        &mut self,
        type_: &str,
        view: Option<&Bound<'py, PyAny>>,
        entered: &[usize],
    ) -> PyResult<()> {
        self.eval_clocks(type_, view, entered)?;
        if self.ended {
            return Ok(());
        }
        // a final stage ends the case; so does an `exit.on` event whose `exit.when` holds
        let exits = self.pb.stages[self.stage].final_
            || (self.pb.exit_on.iter().any(|t| t == type_)
                && self.holds(&self.pb.exit_when, view)?);
        if exits {
            self.end_case()?;
        }
        Ok(())
    }

    fn transition(
        &mut self,
        to: usize,
        do_: &[usize],
        view: Option<&Bound<'py, PyAny>>,
        entered: &mut Vec<usize>,
    ) -> PyResult<()> {
        let old = self.stage;
        let old_epoch = self.epoch;
        self.epoch += 1;
        self.pending.retain(|p| p.owner != Owner::Stage(old_epoch));
        let owner = Owner::Stage(self.epoch);
        let pb = self.pb;
        self.run_actions(&pb.stages[old].exit, view, owner.clone())?;
        self.run_actions(do_, view, owner)?;
        self.stage = to;
        self.enter_stage(to, view, false)?;
        entered.push(to);
        Ok(())
    }

    pub fn enter_stage(
        &mut self,
        idx: usize,
        view: Option<&Bound<'py, PyAny>>,
        bump: bool,
    ) -> PyResult<()> {
        if bump {
            self.epoch += 1;
        }
        let pb = self.pb;
        let st = &pb.stages[idx];
        self.stage = idx;
        self.run_actions(&st.enter, view, Owner::Stage(self.epoch))?;
        if st.final_ {
            return Ok(());
        }
        for &t in &st.after {
            self.arm_timer(t)?;
        }
        for &s in &st.every {
            let now = self.now;
            self.arm_schedule(s, now)?;
        }
        Ok(())
    }

    fn arm_timer(&mut self, ti: usize) -> PyResult<()> {
        let t = &self.pb.timers[ti].1;
        let mut due = self.delay_due(self.now, &t.delay, t.calendar.as_deref())?;
        if let Some(w) = &t.window {
            due = self.calendar(Some(w))?.next_open_s(self.py, due)?;
        }
        let source = self.timer_source(ti);
        self.add_pending(due, Kind::Timer, source, Owner::Stage(self.epoch));
        Ok(())
    }

    fn timer_source(&self, ti: usize) -> String {
        self.pb
            .timer_by_source
            .iter()
            .find(|(_, v)| **v == ti)
            .map(|(k, _)| k.clone())
            .unwrap_or_default()
    }

    fn schedule_source(&self, si: usize) -> String {
        self.pb
            .schedule_by_source
            .iter()
            .find(|(_, v)| **v == si)
            .map(|(k, _)| k.clone())
            .unwrap_or_default()
    }

    fn arm_schedule(&mut self, si: usize, after: f64) -> PyResult<()> {
        let s = &self.pb.schedules[si].1;
        let mut due: f64 = s
            .schedule
            .bind(self.py)
            .call_method1("next_after_s", (after,))?
            .extract()?;
        if let Some(w) = &s.window {
            due = self.calendar(Some(w))?.next_open_s(self.py, due)?;
        }
        let source = self.schedule_source(si);
        self.add_pending(due, Kind::Schedule, source, Owner::Stage(self.epoch));
        Ok(())
    }

    fn add_pending(&mut self, due: f64, kind: Kind, ref_: String, owner: Owner) {
        // one more than the highest seq pending now: a function of what is pending, whatever
        // way a host split its calls (issue 15 #8)
        let seq = self.pending.iter().map(|p| p.seq).max().unwrap_or(0) + 1;
        self.pending.push(Pend {
            due: round_us(due),
            kind,
            ref_: Arc::from(ref_.as_str()),
            owner,
            seq,
            origin: self.now,
            obj: None,
        });
    }

    fn delay_due(&mut self, t: f64, d: &Delay, calendar: Option<&str>) -> PyResult<f64> {
        if d.business_days != 0 {
            return self
                .calendar(Some(calendar.unwrap_or("channel")))?
                .add_days_s(self.py, t, d.business_days);
        }
        if let Some(c) = calendar {
            return self.calendar(Some(c))?.add_s(self.py, t, d.seconds);
        }
        if d.months != 0 {
            // calendar months, then days, in the playbook's zone: the reference's arithmetic
            let w: f64 = self
                .h
                .wall_months
                .bind(self.py)
                .call1((t, d.months, d.days))?
                .extract()?;
            return Ok(w + d.seconds);
        }
        if d.days != 0 {
            // `always` is in the playbook's zone: its table holds the zone's transitions
            let w = self
                .calendar(None)?
                .wall_days(self.py, t, d.days, &self.h.wall_days)?;
            return Ok(w + d.seconds);
        }
        Ok(round_us(t + d.seconds))
    }

    // -- actions ------------------------------------------------------------------------------------------
    fn run_actions(
        &mut self,
        acts: &[usize],
        view: Option<&Bound<'py, PyAny>>,
        owner: Owner,
    ) -> PyResult<()> {
        let pb = self.pb;
        for &ai in acts {
            let a = &pb.actions[ai];
            let own = if a.keep { Owner::Keep } else { owner.clone() };
            if let Some(d) = &a.delay {
                let mut due = self.delay_due(self.now, d, a.calendar.as_deref())?;
                if let Some(w) = &a.window {
                    due = self.calendar(Some(w))?.next_open_s(self.py, due)?;
                }
                self.add_pending(due, Kind::Action, a.source.clone(), own);
            } else if let Some(w) = &a.window {
                let cal = self.calendar(Some(w))?;
                if !cal.is_open_s(self.py, self.now)? {
                    let due = cal.next_open_s(self.py, self.now)?;
                    self.add_pending(due, Kind::Action, a.source.clone(), own);
                } else {
                    self.emit(a, view, None)?;
                }
            } else {
                self.emit(a, view, None)?;
            }
        }
        Ok(())
    }

    /// Emit `a` now (`over`: a fallback's channel), as `carepath.engine.actions.emit`.
    fn emit(
        &mut self,
        a: &'a ActionDef,
        view: Option<&Bound<'py, PyAny>>,
        over: Option<&str>,
    ) -> PyResult<()> {
        if a.when.is_some() && !self.holds(&a.when, view)? {
            return Ok(());
        }
        let py = self.py;
        let params = a.params.bind(py).copy()?;
        if let Some(c) = over {
            params.set_item(pyo3::intern!(self.py, "channel"), c)?;
        }
        let arg = a.arg.bind(py);
        match a.verb {
            Verb::Notify => {
                params.set_item(pyo3::intern!(self.py, "to"), arg)?;
                if a.arg_s.as_deref() == Some("assignee") {
                    params.set_item(
                        pyo3::intern!(self.py, "agent"),
                        self.data.call_method1("get", ("assignee",))?,
                    )?;
                }
            }
            Verb::Send => {
                let mut channel = params
                    .get_item("channel")?
                    .filter(|c| c.is_truthy().unwrap_or(false));
                if channel.is_none() {
                    channel = Some(self.channel_value()?);
                }
                let channel = channel.unwrap_or_else(|| py.None().into_bound(py));
                params.set_item(pyo3::intern!(self.py, "template"), arg)?;
                params.set_item(pyo3::intern!(self.py, "channel"), &channel)?;
                if !self.consented(a, &channel)? {
                    return self.fall_back(a, view, &channel);
                }
                let ch = if channel.is_none() {
                    None
                } else {
                    let s = channel.str()?.to_string();
                    self.pb.channels.get(&s).map(|c| (s, c))
                };
                // a template the channel exempts neither counts nor is capped
                let ch = ch.filter(|(_, c)| {
                    a.arg_s
                        .as_ref()
                        .is_none_or(|t| !c.cap_exempt.iter().any(|x| x == t))
                });
                if let Some((chname, ch)) = ch {
                    if let (Some(per), Some(mx)) = (ch.cap_per, ch.cap_max) {
                        let prev = self
                            .sends
                            .call_method1("get", (&chname, PyTuple::empty(py)))?;
                        // the values as the state holds them (an integer read from JSON stays one)
                        let mut recent: Vec<Bound<'py, PyAny>> = Vec::new();
                        for t in prev.try_iter()? {
                            let t = t?;
                            if t.extract::<f64>()? > self.now - per {
                                recent.push(t);
                            }
                        }
                        if self.sends_w.is_none() {
                            let w = PyDict::new(py);
                            w.call_method1("update", (&self.sends,))?;
                            self.sends = w.clone().into_any();
                            self.sends_w = Some(w);
                        }
                        let sends = self.sends_w.clone().expect("set above");
                        if recent.len() as i64 >= mx {
                            let data = PyDict::new(py);
                            data.set_item(pyo3::intern!(self.py, "channel"), &chname)?;
                            data.set_item(pyo3::intern!(self.py, "template"), arg)?;
                            data.set_item(pyo3::intern!(self.py, "source"), &a.source)?;
                            if ch.cap_defer && mx > 0 {
                                // room again when the oldest send that counts leaves the window
                                let oldest = &recent[recent.len() - mx as usize];
                                let due = oldest.extract::<f64>()? + per;
                                let mut own_channel = a
                                    .params
                                    .bind(py)
                                    .get_item("channel")?
                                    .filter(|c| c.is_truthy().unwrap_or(false));
                                if own_channel.is_none() {
                                    own_channel = Some(self.channel_value()?);
                                }
                                let own_channel =
                                    own_channel.unwrap_or_else(|| py.None().into_bound(py));
                                let ref_ = if channel.ne(&own_channel)? {
                                    // a fallback's channel goes with it
                                    format!("{}#{}", a.source, chname)
                                } else {
                                    a.source.clone()
                                };
                                let own = if a.keep {
                                    Owner::Keep
                                } else {
                                    Owner::Stage(self.epoch)
                                };
                                self.add_pending(due, Kind::Action, ref_, own);
                                data.set_item(
                                    pyo3::intern!(self.py, "until"),
                                    self.h.iso.bind(py).call1((due,))?,
                                )?;
                            }
                            self.signal(
                                "capped".into(),
                                None,
                                None,
                                None,
                                Some(data.into_any().unbind()),
                            );
                            sends.set_item(&chname, PyTuple::new(py, recent)?)?;
                            return Ok(());
                        }
                        recent.push(self.now.into_pyobject(py)?.into_any());
                        let keep = recent.len().saturating_sub(mx.max(0) as usize);
                        let tail: Vec<Bound<'py, PyAny>> = recent[keep..].to_vec();
                        sends.set_item(&chname, PyTuple::new(py, tail)?)?;
                    }
                }
            }
            Verb::Survey => {
                params.set_item(pyo3::intern!(self.py, "survey"), arg)?;
                if !params.contains("channel")? {
                    params.set_item(pyo3::intern!(self.py, "channel"), self.channel_value()?)?;
                }
                let channel = params.get_item("channel")?.expect("set above");
                if !self.consented(a, &channel)? {
                    return self.fall_back(a, view, &channel);
                }
            }
            Verb::Assign => {
                params.set_item(pyo3::intern!(self.py, "tier"), arg)?;
                params.set_item(pyo3::intern!(self.py, "from"), self.tier.as_deref())?;
                self.tier = a.arg_s.clone();
                self.note_changed(&["tier"]);
            }
            Verb::Escalate => {
                let tiers = &self.pb.tiers;
                let old = self.tier.clone();
                let new = if a.arg_s.as_deref() == Some("next") {
                    match old.as_ref().and_then(|o| tiers.iter().position(|t| t == o)) {
                        None => tiers.first().cloned(),
                        Some(i) if i + 1 < tiers.len() => Some(tiers[i + 1].clone()),
                        Some(_) => {
                            let data = PyDict::new(py);
                            data.set_item(pyo3::intern!(self.py, "tier"), old.as_deref())?;
                            self.signal(
                                "tier.exhausted".into(),
                                None,
                                None,
                                None,
                                Some(data.into_any().unbind()),
                            );
                            old.clone()
                        }
                    }
                } else {
                    a.arg_s.clone()
                };
                params.set_item(pyo3::intern!(self.py, "tier"), new.as_deref())?;
                params.set_item(pyo3::intern!(self.py, "from"), old.as_deref())?;
                self.tier = new;
                self.note_changed(&["tier"]);
            }
            Verb::Set => {
                let values = self.apply_sets(&a.sets, view, &a.source)?;
                params.set_item(pyo3::intern!(self.py, "values"), values)?;
                self.recompute_segments(view)?;
            }
            Verb::Task => {
                params.set_item(pyo3::intern!(self.py, "task"), arg)?;
                if let Some(due) = params.get_item("due")? {
                    let (seconds, days, business_days, months): (f64, i64, i64, i64) =
                        self.h.duration.bind(py).call1((due,))?.extract()?;
                    let t = self.delay_due(
                        self.now,
                        &Delay {
                            seconds,
                            days,
                            business_days,
                            months,
                        },
                        None,
                    )?;
                    params.set_item(
                        pyo3::intern!(self.py, "due"),
                        self.h.iso.bind(py).call1((t,))?,
                    )?;
                }
            }
            Verb::Emit => params.set_item(pyo3::intern!(self.py, "name"), arg)?,
            Verb::Other => {}
        }
        self.seq += 1;
        let id = format!("{}:{}", self.case, self.seq);
        let act = (
            id,
            a.verb_name.as_str(),
            params,
            self.now,
            a.source.as_str(),
        )
            .into_pyobject(py)?;
        self.actions.push(act.into_any().unbind());
        Ok(())
    }

    // -- clocks ---------------------------------------------------------------------------------------------
    /// The working copy of clock `i`, made on first use.
    fn cw(&mut self, i: usize) -> PyResult<()> {
        if self.slots[i].w.is_none() {
            let w = match &self.slots[i].frozen {
                Frozen::Py(f) => ClockW::from_py(f.bind(self.py))?,
                Frozen::Core(c) => c.from_snap(self.py),
                Frozen::Pending => ClockW::pending(),
            };
            self.slots[i].w = Some(w);
            self.order.push(i);
        }
        Ok(())
    }

    fn w(&mut self, i: usize) -> &mut ClockW {
        self.slots[i].w.as_mut().expect("a working copy")
    }

    fn touch(&mut self, i: usize) -> PyResult<()> {
        let t = self.now;
        let c = self.slots[i].w.as_ref().expect("a working copy");
        let as_of = match c.as_of_s {
            Some(a) if c.status.is_open() && t > a => a,
            _ => return Ok(()),
        };
        let name = c.calendar.clone();
        let cal = self.calendar(name.as_deref())?;
        let span = cal.elapsed_s(self.py, as_of, t)?;
        let c = self.w(i);
        if c.status == Status::Running {
            c.elapsed_s += span;
        } else {
            c.paused_s += span;
        }
        c.as_of_s = Some(t);
        Ok(())
    }

    fn due_at(&mut self, i: usize, as_of: f64, pos: f64, rem: f64) -> PyResult<f64> {
        let c = self.slots[i].w.as_ref().expect("a working copy");
        if let Some(d) = c.memo_get(pos) {
            return Ok(d);
        }
        let name = c.calendar.clone();
        let cal = self.calendar(name.as_deref())?;
        let due = round_us(cal.add_s(self.py, as_of, rem)?);
        self.w(i).memo.push((pos, due));
        Ok(due)
    }

    fn clock_due(&mut self, i: usize) -> PyResult<Option<f64>> {
        let c = self.slots[i].w.as_ref().expect("a working copy");
        if c.breached {
            return Ok(c.breach_s);
        }
        let (Some(target), Some(as_of)) = (c.target_s, c.as_of_s) else {
            return Ok(None);
        };
        if c.status != Status::Running {
            return Ok(None);
        }
        let rem = target - c.elapsed_s;
        if rem <= 0.0 {
            return Ok(Some(as_of));
        }
        self.due_at(i, as_of, target, rem).map(Some)
    }

    fn clock_next(&mut self, i: usize) -> PyResult<Option<f64>> {
        let ths = &self.pb.clocks[i].thresholds;
        let c = self.slots[i].w.as_ref().expect("a working copy");
        let (Some(target), Some(as_of)) = (c.target_s, c.as_of_s) else {
            return Ok(None);
        };
        if c.status != Status::Running {
            return Ok(None);
        }
        let mut pos: Option<f64> = if c.breached { None } else { Some(target) };
        if c.fired < ths.len() {
            let th = &ths[c.fired];
            let p = th.at(target);
            match pos {
                None => pos = Some(p),
                Some(q) => {
                    if p < q - EPS || ((p - q).abs() <= EPS && th.severity == Severity::Warning) {
                        pos = Some(p);
                    }
                }
            }
        }
        let Some(pos) = pos else { return Ok(None) };
        let rem = pos - c.elapsed_s;
        if rem <= EPS {
            return Ok(Some(if as_of > self.now { as_of } else { self.now }));
        }
        self.due_at(i, as_of, pos, rem).map(Some)
    }

    fn choose_target(&self, i: usize) -> PyResult<usize> {
        let d = &self.pb.clocks[i];
        let view = self.view.as_ref();
        for (k, t) in d.targets.iter().enumerate() {
            if t.when.is_none() || self.holds(&t.when, view)? {
                return Ok(k);
            }
        }
        Ok(d.targets.len() - 1)
    }

    fn target_seconds(&self, i: usize, idx: usize, cal: &Cal) -> PyResult<f64> {
        let t = &self.pb.clocks[i].targets[idx];
        if let Some(bd) = t.business_days.filter(|b| *b != 0) {
            let c = self.slots[i].w.as_ref().expect("a working copy");
            let start = c.started_s.unwrap_or(self.now);
            let end = cal.add_days_s(self.py, start, bd)?;
            return Ok(round_us(cal.elapsed_s(self.py, start, end)?));
        }
        Ok(t.seconds.unwrap_or(0.0))
    }

    fn start_cycle(&mut self, i: usize) -> PyResult<()> {
        let now = self.now;
        {
            let c = self.w(i);
            c.cycle += 1;
            c.status = Status::Running;
            c.memo.clear();
            c.started_s = Some(now);
            c.as_of_s = Some(now);
            c.elapsed_s = 0.0;
            c.paused_s = 0.0;
            c.pause_from_s = None;
            c.pauses.clear();
            c.breached = false;
            c.breach_s = None;
            c.fired = 0;
        }
        let idx = self.choose_target(i)?;
        let d = &self.pb.clocks[i];
        let tdef = &d.targets[idx];
        let cal_name = self.cal_name(Some(tdef.calendar.as_deref().unwrap_or(&d.calendar)))?;
        let cal = self.calendar(Some(&cal_name))?;
        {
            let c = self.w(i);
            if c.calendar.as_deref() != Some(cal_name.as_str()) {
                c.calendar = Some(Arc::from(cal_name.as_str()));
            }
            c.target_index = Some(idx as i64);
        }
        self.selected(i, idx)?;
        let ts = self.target_seconds(i, idx, &cal)?;
        let c = self.w(i);
        c.target_s = Some(ts);
        let cycle = c.cycle;
        let name = d.name.clone();
        self.signal(
            format!("sla.{name}.started"),
            Some(name),
            Some(cycle),
            None,
            None,
        );
        Ok(())
    }

    fn end_cycle(&mut self, i: usize, how: &str) -> PyResult<()> {
        self.touch(i)?;
        let now = self.now;
        let py = self.py;
        let name = self.pb.clocks[i].name.clone();
        let c = self.w(i);
        if c.status == Status::Paused {
            if let Some(pf) = c.pause_from_s {
                c.pauses.push((pf, now));
                c.pause_from_s = None;
            }
        }
        let target = c.target_s;
        let breached = c.breached;
        let (met, failed, status, sig): (Option<bool>, Option<f64>, Status, &str) =
            if how == "stop" || (how == "final" && breached) {
                let failed = if !breached {
                    None
                } else {
                    target.map(|t| py_max(0.0, c.elapsed_s - t))
                };
                if breached {
                    (Some(false), failed, Status::Breached, "missed")
                } else {
                    (Some(true), failed, Status::Met, "met")
                }
            } else {
                (None, None, Status::Cancelled, "cancelled")
            };
        let started = match c.started_s {
            Some(s) if s != 0.0 => s,
            _ => now,
        };
        let rec = Rec::Raw(
            c.cycle,
            started,
            now,
            round_us(c.elapsed_s),
            round_us(c.paused_s),
            target,
            met,
            failed,
        );
        let c = self.w(i);
        c.history.push(rec.clone_ref(py));
        if c.history.len() > MAX_HISTORY {
            let n = c.history.len() - MAX_HISTORY;
            c.history.drain(..n);
        }
        c.status = status;
        c.memo.clear();
        c.due_s = if breached { c.breach_s } else { None };
        c.pauses.clear();
        let cycle = c.cycle;
        self.pending
            .retain(|p| !matches!(&p.owner, Owner::Clock(n, cy) if **n == *name && *cy == cycle));
        self.signal(
            format!("sla.{name}.{sig}"),
            Some(name),
            Some(cycle),
            Some(rec),
            None,
        );
        Ok(())
    }

    /// Target `idx` of clock `i` was selected: note the case when that target is watched.
    fn selected(&self, i: usize, idx: usize) -> PyResult<()> {
        if let Some(w) = self.watch {
            if w.targets.get(i).and_then(|t| t.get(idx)) == Some(&true) {
                w.hits.bind(self.py).add(self.case.as_str())?;
            }
        }
        Ok(())
    }

    pub fn retarget(&mut self, i: usize, force: bool) -> PyResult<()> {
        // a breached cycle keeps the target it breached: a breach is never undone (issue 15 #21)
        if self.slots[i].w.as_ref().is_some_and(|w| w.breached) {
            return Ok(());
        }
        let idx = self.choose_target(i)?;
        let d = &self.pb.clocks[i];
        let tdef = &d.targets[idx];
        let cal_name = self.cal_name(Some(tdef.calendar.as_deref().unwrap_or(&d.calendar)))?;
        let now = self.now;
        let (start, pauses) = {
            let c = self.slots[i].w.as_ref().expect("a working copy");
            if !force
                && Some(idx as i64) == c.target_index
                && Some(cal_name.as_str()) == c.calendar.as_deref()
            {
                return Ok(());
            }
            let mut pauses = c.pauses.clone();
            if c.status == Status::Paused {
                if let Some(pf) = c.pause_from_s {
                    pauses.push((pf, now));
                }
            }
            (c.started_s.unwrap_or(now), pauses)
        };
        let cal = self.calendar(Some(&cal_name))?;
        let mut paused = 0.0;
        for (a, b) in &pauses {
            paused += cal.elapsed_s(self.py, *a, *b)?;
        }
        {
            let c = self.w(i);
            if c.calendar.as_deref() != Some(cal_name.as_str()) {
                c.calendar = Some(Arc::from(cal_name.as_str()));
            }
            c.memo.clear();
            c.target_index = Some(idx as i64);
        }
        self.selected(i, idx)?;
        let ts = self.target_seconds(i, idx, &cal)?;
        let el = cal.elapsed_s(self.py, start, now)?;
        let c = self.w(i);
        c.target_s = Some(ts);
        c.elapsed_s = py_max(0.0, el - paused);
        c.paused_s = paused;
        c.as_of_s = Some(now);
        Ok(())
    }

    fn crossing(&mut self, i: usize) -> PyResult<f64> {
        let name = self.slots[i]
            .w
            .as_ref()
            .expect("a working copy")
            .calendar
            .clone();
        let cal = self.calendar(name.as_deref())?;
        let c = self.slots[i].w.as_ref().expect("a working copy");
        let mut remaining = c.target_s.unwrap_or(0.0);
        let mut t0 = c.started_s.unwrap_or(self.now);
        for (a, b) in &c.pauses {
            let seg = cal.elapsed_s(self.py, t0, *a)?;
            if seg >= remaining {
                return Ok(round_us(cal.add_s(self.py, t0, remaining)?));
            }
            remaining -= seg;
            t0 = *b;
        }
        let x = round_us(cal.add_s(self.py, t0, remaining)?);
        Ok(if x < self.now { x } else { self.now })
    }

    fn eval_clocks(
        &mut self,
        type_: &str,
        view: Option<&Bound<'py, PyAny>>,
        entered: &[usize],
    ) -> PyResult<()> {
        self.view = view.cloned();
        let pb = self.pb;
        for i in 0..pb.clocks.len() {
            let d = &pb.clocks[i];
            let mut needs_retarget = d.retarget;
            if let Some(reads) = &d.reads {
                let touched = match &self.changed {
                    None => false,
                    Some(ch) => reads.iter().any(|r| ch.contains(r)),
                };
                if !touched {
                    needs_retarget = false;
                }
            }
            let mut hits: u8 = d.on_bits.get(type_).copied().unwrap_or(0);
            for st in entered {
                hits |= d.enter_bits.get(st).copied().unwrap_or(0);
            }
            let quiet = !d.has_when && hits == 0;
            if self.slots[i].w.is_none() {
                if quiet {
                    continue;
                }
                if !d.has_when && hits & 4 == 0 {
                    let status = self.slots[i].fstatus;
                    if !(hits & 1 != 0 && (status == Status::Pending || d.repeat)) {
                        continue;
                    }
                }
                self.cw(i)?;
            }
            if quiet {
                if self.w(i).status.is_open() {
                    if d.pause.is_some() {
                        self.pause_or_resume(i, view)?;
                    }
                    if needs_retarget {
                        self.retarget(i, false)?;
                    }
                }
                continue;
            }
            if d.has_when {
                let mut conds: i64 = 0;
                for (bit, trig) in [(1, &d.start), (2, &d.stop), (4, &d.reset), (8, &d.cancel)] {
                    if let Some(t) = trig {
                        if t.when.is_some() && self.holds(&t.when, view)? {
                            conds |= bit;
                        }
                    }
                }
                let c = self.w(i);
                let rising = conds & !c.conds;
                c.conds = conds;
                hits |= rising as u8;
            }
            if hits & 2 != 0 && self.w(i).status.is_open() {
                self.end_cycle(i, "stop")?;
            }
            if hits & 8 != 0 && self.w(i).status.is_open() {
                self.end_cycle(i, "cancel")?;
            }
            if hits & 4 != 0 {
                if self.w(i).status.is_open() {
                    self.end_cycle(i, "reset")?;
                }
                let cycle = self.w(i).cycle + 1;
                self.signal(
                    format!("sla.{}.reset", d.name),
                    Some(d.name.clone()),
                    Some(cycle),
                    None,
                    None,
                );
                self.start_cycle(i)?;
                needs_retarget = false;
            } else if hits & 1 != 0 && {
                let s = self.w(i).status;
                s == Status::Pending || (d.repeat && !s.is_open())
            } {
                self.start_cycle(i)?;
                needs_retarget = false;
            }
            if self.w(i).status.is_open() {
                if d.pause.is_some() {
                    self.pause_or_resume(i, view)?;
                }
                if needs_retarget {
                    self.retarget(i, false)?;
                }
            }
        }
        self.view = None;
        Ok(())
    }

    fn pause_or_resume(&mut self, i: usize, view: Option<&Bound<'py, PyAny>>) -> PyResult<()> {
        let d = &self.pb.clocks[i];
        let p = d.pause.as_ref().expect("a pause");
        let holds =
            p.stages.contains(&self.stage) || (p.when.is_some() && self.holds(&p.when, view)?);
        let status = self.w(i).status;
        let now = self.now;
        if holds && status == Status::Running {
            self.touch(i)?;
            let c = self.w(i);
            c.status = Status::Paused;
            c.memo.clear();
            c.pause_from_s = Some(now);
            let cycle = c.cycle;
            self.signal(
                format!("sla.{}.paused", d.name),
                Some(d.name.clone()),
                Some(cycle),
                None,
                None,
            );
        } else if !holds && status == Status::Paused {
            self.touch(i)?;
            let c = self.w(i);
            c.status = Status::Running;
            c.memo.clear();
            if let Some(pf) = c.pause_from_s {
                c.pauses.push((pf, now));
                if c.pauses.len() > 64 {
                    c.pauses.remove(0);
                }
            }
            c.pause_from_s = None;
            let cycle = c.cycle;
            self.signal(
                format!("sla.{}.resumed", d.name),
                Some(d.name.clone()),
                Some(cycle),
                None,
                None,
            );
        }
        Ok(())
    }

    fn fire_clock(&mut self, i: usize) -> PyResult<()> {
        self.touch(i)?;
        let d = &self.pb.clocks[i];
        let ths = &d.thresholds;
        let py = self.py;
        loop {
            let c = self.slots[i].w.as_ref().expect("a working copy");
            let target = c.target_s.unwrap_or(0.0);
            let owner = Owner::Clock(Arc::from(d.name.as_str()), c.cycle);
            let nxt = ths.get(c.fired);
            let th_pos = nxt.map(|t| t.at(target));
            let due_breach = !c.breached && c.elapsed_s >= target - EPS;
            let due_th = th_pos.is_some_and(|p| c.elapsed_s >= p - EPS);
            if let (true, Some(th), Some(pos)) = (due_th, nxt, th_pos) {
                if !due_breach || pos < target - EPS || th.severity == Severity::Warning {
                    let cycle = c.cycle;
                    self.w(i).fired += 1;
                    self.run_actions(&th.do_, None, owner)?;
                    match th.severity {
                        Severity::Warning | Severity::Overdue => {
                            let kind = if th.severity == Severity::Warning {
                                "warning"
                            } else {
                                "overdue"
                            };
                            let data = PyDict::new(py);
                            data.set_item(pyo3::intern!(self.py, "at"), &th.text)?;
                            self.signal(
                                format!("sla.{}.{kind}", d.name),
                                Some(d.name.clone()),
                                Some(cycle),
                                None,
                                Some(data.into_any().unbind()),
                            );
                        }
                        Severity::Breached => {}
                    }
                    continue;
                }
            }
            if due_breach {
                let late = c.elapsed_s > target + 1.0;
                let cycle = c.cycle;
                self.w(i).breached = true;
                let b = if late { self.crossing(i)? } else { self.now };
                let c = self.w(i);
                c.breach_s = Some(b);
                c.due_s = Some(b);
                self.signal(
                    format!("sla.{}.breached", d.name),
                    Some(d.name.clone()),
                    Some(cycle),
                    None,
                    None,
                );
                loop {
                    let fired = self.w(i).fired;
                    if fired < ths.len() && (ths[fired].at(target) - target).abs() <= EPS {
                        self.w(i).fired += 1;
                        self.run_actions(&ths[fired].do_, None, owner.clone())?;
                    } else {
                        break;
                    }
                }
                continue;
            }
            break;
        }
        Ok(())
    }

    fn end_case(&mut self) -> PyResult<()> {
        for k in 0..self.order.len() {
            let i = self.order[k];
            if self.w(i).status.is_open() {
                self.end_cycle(i, "final")?;
            }
        }
        self.ended = true;
        self.pending
            .retain(|p| p.kind == Kind::Action && p.owner == Owner::Keep);
        Ok(())
    }

    // -- signals ------------------------------------------------------------------------------------------
    pub fn drain_signals(&mut self) -> PyResult<()> {
        let py = self.py;
        while let Some((si, depth)) = self.queue.pop_front() {
            if depth > MAX_SIGNAL_DEPTH {
                let msg = format!(
                    "signals raised signals more than {MAX_SIGNAL_DEPTH} levels deep (last: {})",
                    self.signals[si].type_
                );
                return Err(self.err(&self.h.signal_loop, msg));
            }
            let ty = self.signals[si].type_.clone();
            if self.ended || !self.pb.event_types.contains(&ty) {
                continue;
            }
            let s = &self.signals[si];
            let view = PyDict::new(py);
            view.set_item(pyo3::intern!(self.py, "type"), &s.type_)?;
            view.set_item(pyo3::intern!(self.py, "at"), self.dt(s.at)?)?;
            view.set_item(pyo3::intern!(self.py, "case"), &self.case)?;
            view.set_item(pyo3::intern!(self.py, "id"), py.None())?;
            view.set_item(pyo3::intern!(self.py, "sla"), s.sla.as_deref())?;
            view.set_item(pyo3::intern!(self.py, "cycle"), s.cycle)?;
            if let Some(d) = &s.data {
                view.call_method1("update", (d.bind(py),))?;
            }
            let saved = self.depth;
            self.depth = depth;
            let mut entered = Vec::new();
            self.dispatch(&ty, view.as_any(), &mut entered)?;
            self.depth = saved;
        }
        Ok(())
    }

    // -- due items ----------------------------------------------------------------------------------------
    pub fn deadline_items(&mut self) -> PyResult<Vec<(f64, u8, &'static str, String)>> {
        let mut items: Vec<(f64, u8, &'static str, String)> = Vec::new();
        if !self.ended {
            for k in 0..self.order.len() {
                let i = self.order[k];
                let d = &self.pb.clocks[i];
                let c = self.slots[i].w.as_ref().expect("a working copy");
                if c.status != Status::Running {
                    continue;
                }
                if let (Some(due), false) = (c.due_s, c.breached) {
                    items.push((due, 0, "clock", d.name.clone()));
                }
                if let (true, Some(target), Some(as_of)) =
                    (c.fired < d.thresholds.len(), c.target_s, c.as_of_s)
                {
                    let th = &d.thresholds[c.fired];
                    let rem = th.at(target) - c.elapsed_s;
                    let tdue = if rem <= 0.0 {
                        as_of
                    } else {
                        self.due_at(i, as_of, th.at(target), rem)?
                    };
                    items.push((tdue, 0, "threshold", format!("{}:{}", d.name, th.text)));
                }
            }
        }
        for p in &self.pending {
            items.push((p.due, p.kind.order(), p.kind.as_str(), p.ref_.to_string()));
        }
        items.sort_by(|a, b| {
            a.0.partial_cmp(&b.0)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(a.1.cmp(&b.1))
                .then(a.2.cmp(b.2))
                .then(a.3.cmp(&b.3))
        });
        Ok(items)
    }

    fn next_item(&mut self) -> PyResult<Option<(f64, Item)>> {
        let mut best: Option<(f64, u8, i64, Item)> = None;
        fn better(c: (f64, u8, i64), b: &Option<(f64, u8, i64, Item)>) -> bool {
            match b {
                None => true,
                Some((d, o, t, _)) => {
                    (c.0, c.1, c.2).partial_cmp(&(*d, *o, *t)) == Some(std::cmp::Ordering::Less)
                }
            }
        }
        if !self.ended {
            for k in 0..self.order.len() {
                let i = self.order[k];
                if let Some(n) = self.clock_next(i)? {
                    if better((n, 0, i as i64), &best) {
                        best = Some((n, 0, i as i64, Item::Clock(i)));
                    }
                }
            }
        }
        for (pi, p) in self.pending.iter().enumerate() {
            let order = p.kind.order();
            let mut tie = p.seq;
            if p.kind == Kind::Timer {
                if let Some(&ti) = self.pb.timer_by_source.get(&*p.ref_) {
                    tie = self.pb.timers[ti].1.index;
                }
            }
            if better((p.due, order, tie), &best) {
                best = Some((p.due, order, tie, Item::Pending(pi)));
            }
        }
        Ok(best.map(|(d, _, _, it)| (d, it)))
    }

    pub fn fire_due(&mut self, limit: f64, inclusive: bool) -> PyResult<()> {
        for _ in 0..MAX_ITEMS_PER_STEP {
            let Some((due, item)) = self.next_item()? else {
                return Ok(());
            };
            if due > limit + if inclusive { EPS } else { -EPS } {
                return Ok(());
            }
            self.set_now(due);
            self.event = None;
            match item {
                Item::Clock(i) => {
                    self.fire_clock(i)?;
                    self.after_change("", None, &[])?;
                }
                Item::Pending(pi) => {
                    let p = self.pending.remove(pi);
                    self.fire_pending(p)?;
                }
            }
            self.drain_signals()?;
        }
        Err(self.err(
            &self.h.case_error,
            format!("more than {MAX_ITEMS_PER_STEP} items fell due in one step; advance in smaller steps"),
        ))
    }

    fn fire_pending(&mut self, p: Pend) -> PyResult<()> {
        let pb = self.pb;
        match p.kind {
            Kind::Action => {
                // `source#channel`: a deferred send on a fallback's channel
                let (source, over) = match p.ref_.split_once('#') {
                    Some((s, c)) => (s, Some(c).filter(|c| !c.is_empty())),
                    None => (&*p.ref_, None),
                };
                if let Some(&ai) = pb.action_by_source.get(source) {
                    self.emit(&pb.actions[ai], None, over)?;
                }
                self.after_change("", None, &[])?;
            }
            Kind::Timer => {
                let Some(&ti) = pb.timer_by_source.get(&*p.ref_) else {
                    return Err(pyo3::exceptions::PyKeyError::new_err(p.ref_.to_string()));
                };
                let (stage, t) = &pb.timers[ti];
                if *stage != self.stage || self.ended {
                    return Ok(());
                }
                if !self.holds(&t.when, None)? {
                    return Ok(());
                }
                let mut entered = Vec::new();
                match t.to {
                    Some(to) => self.transition(to, &t.do_, None, &mut entered)?,
                    None => self.run_actions(&t.do_, None, Owner::Stage(self.epoch))?,
                }
                self.after_change("", None, &entered)?;
            }
            Kind::Schedule => {
                let Some(&si) = pb.schedule_by_source.get(&*p.ref_) else {
                    return Err(pyo3::exceptions::PyKeyError::new_err(p.ref_.to_string()));
                };
                let (stage, s) = &pb.schedules[si];
                if *stage != self.stage || self.ended {
                    return Ok(());
                }
                if self.holds(&s.when, None)? {
                    self.run_actions(&s.do_, None, Owner::Stage(self.epoch))?;
                }
                let now = self.now;
                self.arm_schedule(si, now)?;
                self.after_change("", None, &[])?;
            }
        }
        Ok(())
    }

    // -- finish -----------------------------------------------------------------------------------------------
    /// The step's result as plain tuples (see `_native/backend.py`).
    pub fn finish(mut self) -> PyResult<Bound<'py, PyTuple>> {
        let py = self.py;
        for k in 0..self.order.len() {
            let i = self.order[k];
            self.touch(i)?;
            let c = self.slots[i].w.as_ref().expect("a working copy");
            let due = if c.status.is_open() || c.breached {
                self.clock_due(i)?
            } else {
                None
            };
            self.w(i).due_s = due;
        }
        let items = self.deadline_items()?;
        let nw = items.first().map(|x| x.0);
        let items_py = PyList::empty(py);
        for (d, _, k, n) in &items {
            items_py.append((*d, *k, py_key(py, n)))?;
        }
        if self.pending.len() > 1 {
            self.pending.sort_by(|a, b| {
                a.due
                    .partial_cmp(&b.due)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then(a.seq.cmp(&b.seq))
            });
        }
        let signals = PyList::empty(py);
        for s in &self.signals {
            let rec = match &s.record {
                Some(r) => r.to_py(py)?,
                None => py.None(),
            };
            let data = match &s.data {
                Some(d) => d.clone_ref(py),
                None => py.None(),
            };
            let sla = s.sla.as_deref().map(|x| py_key(py, x));
            signals.append((py_key(py, &s.type_), s.at, sla, s.cycle, rec, data))?;
        }
        let data: PyObj = match &self.data_w {
            Some(w) => w.clone().into_any().unbind(),
            None => self.data.clone().unbind(),
        };
        let sends: Option<PyObj> = match &self.sends_w {
            Some(w) => {
                let kept = PyDict::new(py);
                for (k, v) in w.iter() {
                    if v.is_truthy()? {
                        kept.set_item(k, v)?;
                    }
                }
                if kept.is_empty() {
                    None
                } else {
                    Some(kept.into_any().unbind())
                }
            }
            None => {
                if self.sends.is_truthy()? {
                    Some(self.sends.clone().unbind())
                } else {
                    None
                }
            }
        };
        let mut clocks = Vec::with_capacity(self.slots.len());
        for s in self.slots.drain(..) {
            clocks.push(match (s.w, s.frozen) {
                (Some(mut w), _) => {
                    // a state keeps no memo (the next step seeds its own) nor spare capacity
                    w.memo = Vec::new();
                    w.pauses.shrink_to_fit();
                    w.history.shrink_to_fit();
                    Some(Arc::new(w))
                }
                // a clock the step never touched (a closed one): the same, not a copy (every
                // reader rounds its figures as a working copy from it does)
                (None, Frozen::Core(c)) => Some(Arc::clone(c)),
                (None, Frozen::Py(o)) => Some(Arc::new(ClockW::from_py(o.bind(py))?)),
                (None, Frozen::Pending) => None,
            });
        }
        // the typed read view is kept only when it differs from the data
        let fields = if self.fields.is(data.bind(py)) {
            None
        } else {
            Some(self.fields.clone().unbind())
        };
        let case_py = PyString::new(py, &self.case);
        let stage_py = self.pb.stage_py[self.stage].clone_ref(py);
        let (now, ended) = (self.now, self.ended);
        let snap = Snap {
            shared: self.pb.shared.clone(),
            case: self.case,
            stage: self.stage,
            data,
            fields,
            tier: self.tier,
            segment: self.segment,
            segments: self.segments,
            clocks,
            now: self.now,
            opened: self.opened,
            seq: self.seq,
            epoch: self.epoch,
            ended: self.ended,
            pending: {
                let mut p = self.pending;
                p.shrink_to_fit();
                p
            },
            sends,
            next_wakeup: nw,
        };
        let core = Bound::new(py, CoreState { snap })?;
        let actions = PyList::new(py, self.actions.iter().map(|a| a.bind(py)))?;
        let out: Vec<PyObj> = vec![
            core.into_any().unbind(),
            actions.into_any().unbind(),
            signals.into_any().unbind(),
            items_py.into_any().unbind(),
            case_py.into_any().unbind(),
            stage_py.into_any(),
            now.into_pyobject(py)?.into_any().unbind(),
            PyBool::new(py, ended).to_owned().into_any().unbind(),
            nw.into_pyobject(py)?.into_any().unbind(),
        ];
        PyTuple::new(py, out)
    }
}

/// What the core's expression VM reads: the run's case data, the event (or signal) view and
/// the specials, as `_Scope` gives them.
struct RunScope<'r, 'a, 'py> {
    run: &'r Run<'a, 'py>,
    view: &'r Bound<'py, PyAny>,
}

fn to_value(r: PyResult<Bound<'_, PyAny>>) -> Option<Value> {
    match r {
        Ok(v) => Some(Value::from_py(&v).unwrap_or_else(|_| Value::Foreign(Arc::from("error")))),
        Err(_) => Some(Value::Foreign(Arc::from("error"))),
    }
}

thread_local! {
    /// The names conditions read, as interned Python strings: a lookup by name makes no string
    /// and hashes none (the names are a playbook's, so few; the table starts again past 4,096).
    static KEYS: std::cell::RefCell<rustc_hash::FxHashMap<Box<str>, Py<PyString>>> =
        std::cell::RefCell::new(rustc_hash::FxHashMap::default());
}

/// `name` as an interned Python string, remembered.
pub(crate) fn py_key<'py>(py: Python<'py>, name: &str) -> Bound<'py, PyString> {
    KEYS.with(|keys| {
        if let Some(k) = keys.borrow().get(name) {
            return k.bind(py).clone();
        }
        let k = PyString::intern(py, name);
        let mut keys = keys.borrow_mut();
        if keys.len() >= 4096 {
            keys.clear();
        }
        keys.insert(name.into(), k.clone().unbind());
        k
    })
}

fn mapping_get<'py>(m: &Bound<'py, PyAny>, key: &str) -> PyResult<Bound<'py, PyAny>> {
    let py = m.py();
    if let Ok(d) = m.downcast::<PyDict>() {
        return Ok(d
            .get_item(py_key(py, key))?
            .unwrap_or_else(|| py.None().into_bound(py)));
    }
    m.call_method1(pyo3::intern!(py, "get"), (py_key(py, key),))
}

impl crate::expr::Scope for RunScope<'_, '_, '_> {
    fn get(&self, name: &str) -> Option<Value> {
        to_value(mapping_get(&self.run.fields, name))
    }

    fn event(&self, key: &str) -> Option<Value> {
        to_value(mapping_get(self.view, key))
    }

    fn event_path(&self, flat: &str, parts: &[Arc<str>]) -> Option<Value> {
        let py = self.view.py();
        let walk = || -> PyResult<Bound<'_, PyAny>> {
            if self.view.contains(flat)? {
                return self.view.get_item(flat);
            }
            let mapping = py.import("collections.abc")?.getattr("Mapping")?;
            let mut v = self.view.clone();
            for p in parts {
                if !v.is_instance(&mapping)? {
                    return Ok(py.None().into_bound(py));
                }
                v = v.call_method1("get", (&**p,))?;
            }
            Ok(v)
        };
        to_value(walk())
    }

    fn special(&self, name: &str) -> Option<Value> {
        let r = self.run;
        let s = |x: &Option<String>| x.as_deref().map(Value::str).unwrap_or(Value::Null);
        Some(match name {
            "stage" => Value::str(&r.pb.stages[r.stage].name),
            "segment" => s(&r.segment),
            "segments" => Value::List(r.segments.iter().map(|x| Value::str(x)).collect()),
            "tier" => s(&r.tier),
            "now" => return to_value(r.h.dt.bind(r.py).call1((r.now,))),
            "channel" => return to_value(mapping_get(&r.data, "channel")),
            _ if name.starts_with("sla.") => {
                let parts: Vec<&str> = name.split('.').collect();
                if parts.len() != 3 {
                    return Some(Value::Null);
                }
                let Some(&i) = r.pb.clock_index.get(parts[1]) else {
                    return Some(Value::Null);
                };
                let slot = &r.slots[i];
                let (status, breached) = match &slot.w {
                    Some(w) => (w.status, w.breached),
                    None => (slot.fstatus, slot.fbreached),
                };
                match parts[2] {
                    "status" => Value::str(status.as_str()),
                    "breached" => Value::Bool(breached),
                    _ => Value::Null,
                }
            }
            _ => Value::Null,
        })
    }
}
