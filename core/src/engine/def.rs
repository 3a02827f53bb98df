//! The playbook as the core holds it, read once from the plain form `lower.py` produces.

use rustc_hash::{FxHashMap as HashMap, FxHashSet};
use std::sync::Arc;

/// What every state of a playbook refers to rather than copies.
pub struct Shared {
    pub hash: Arc<str>,
    pub stage_names: Vec<Arc<str>>,
    pub clock_names: Vec<String>,
}

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyInt, PyList, PyString};

use super::hooks::{Cal, Cond};

pub type PyObj = Py<PyAny>;

#[derive(Clone, Copy, Debug)]
pub struct Delay {
    pub seconds: f64,
    pub days: i64,
    pub business_days: i64,
    /// calendar months (`mo`, `y`): the reference's `wall_months` places them (SPEC §10)
    pub months: i64,
}

pub struct SetDef {
    pub field: String,
    /// `field` as an interned Python string (a dictionary key made once, its hash kept)
    pub key: Py<PyString>,
    pub literal: PyObj,
    pub expr: Option<Cond>,
    pub ftype: PyObj,
    /// `ftype` as far as the already-valid values are checked without calling Python
    pub kind: FieldKind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Notify,
    Send,
    Survey,
    Assign,
    Escalate,
    Set,
    Task,
    Emit,
    Other,
}

pub struct ActionDef {
    pub verb: Verb,
    pub verb_name: String,
    pub arg: PyObj,
    pub arg_s: Option<String>,
    pub params: Py<PyDict>,
    pub source: String,
    pub delay: Option<Delay>,
    pub calendar: Option<String>,
    pub window: Option<String>,
    pub keep: bool,
    pub sets: Vec<SetDef>,
    /// Checked when the action would be emitted (SPEC §10): when false, it is not.
    pub when: Option<Cond>,
    /// The channels a `send`/`survey` falls back to, in order (SPEC §10).
    pub fallback: Vec<String>,
}

pub struct HandlerDef {
    pub to: Option<usize>,
    pub when: Option<Cond>,
    pub sets: Vec<SetDef>,
    pub do_: Vec<usize>,
    pub source: String,
}

pub struct TimerDef {
    pub index: i64,
    pub delay: Delay,
    pub to: Option<usize>,
    pub do_: Vec<usize>,
    pub when: Option<Cond>,
    pub calendar: Option<String>,
    pub window: Option<String>,
}

pub struct ScheduleDef {
    pub schedule: PyObj,
    pub window: Option<String>,
    pub do_: Vec<usize>,
    pub when: Option<Cond>,
}

pub struct StageDef {
    pub name: String,
    pub final_: bool,
    pub enter: Vec<usize>,
    pub exit: Vec<usize>,
    pub on: HashMap<String, Vec<HandlerDef>>,
    pub after: Vec<usize>,
    pub every: Vec<usize>,
}

pub struct TriggerDef {
    pub when: Option<Cond>,
}

pub struct PauseDef {
    pub stages: Vec<usize>,
    pub when: Option<Cond>,
}

pub struct TargetDef {
    pub when: Option<Cond>,
    pub seconds: Option<f64>,
    pub business_days: Option<i64>,
    pub calendar: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Warning,
    Breached,
    Overdue,
}

pub struct ThresholdDef {
    pub percent: Option<f64>,
    pub offset: Option<f64>,
    pub do_: Vec<usize>,
    pub text: String,
    pub severity: Severity,
}

impl ThresholdDef {
    /// `ThresholdDef.at`: the elapsed business seconds at which it fires for `target`.
    pub fn at(&self, target: f64) -> f64 {
        match self.percent {
            Some(p) => target * p / 100.0,
            None => py_max(0.0, target + self.offset.unwrap_or(0.0)),
        }
    }
}

/// Python's `max(a, b)` on floats: `b` only when it is strictly greater.
pub fn py_max(a: f64, b: f64) -> f64 {
    if b > a {
        b
    } else {
        a
    }
}

pub struct ClockDef {
    pub name: String,
    pub start: Option<TriggerDef>,
    pub stop: Option<TriggerDef>,
    pub pause: Option<PauseDef>,
    pub reset: Option<TriggerDef>,
    pub cancel: Option<TriggerDef>,
    pub repeat: bool,
    pub calendar: String,
    pub targets: Vec<TargetDef>,
    pub thresholds: Vec<ThresholdDef>,
    // the per-clock plan (Engine._clock_plan)
    pub on_bits: HashMap<String, u8>,
    pub enter_bits: HashMap<usize, u8>,
    pub has_when: bool,
    pub retarget: bool,
    pub reads: Option<Vec<String>>,
}

/// The type of a declared event field, as far as the event view's fast path checks it.
pub enum FieldKind {
    String,
    Enum(Vec<String>),
    Bool,
    Int,
    Other,
}

impl FieldKind {
    /// The kind of a `FieldType` object.
    pub fn of(t: &Bound<'_, PyAny>) -> PyResult<FieldKind> {
        let kind: String = t.getattr("kind")?.extract()?;
        Ok(match kind.as_str() {
            "string" => FieldKind::String,
            "enum" => FieldKind::Enum(t.getattr("values")?.extract()?),
            "bool" => FieldKind::Bool,
            "int" => FieldKind::Int,
            _ => FieldKind::Other,
        })
    }

    /// Whether `v` is valid for this kind as it is (`coerce` would return it unchanged): `None`,
    /// a `str` of a string or one of an enum's values, a `bool`, an `int` (exact types only).
    pub fn accepts_as_is(&self, v: &Bound<'_, PyAny>) -> PyResult<bool> {
        if v.is_none() {
            return Ok(true);
        }
        Ok(match self {
            FieldKind::String => v.is_exact_instance_of::<PyString>(),
            FieldKind::Enum(values) => {
                v.is_exact_instance_of::<PyString>() && {
                    let s = v.downcast::<PyString>()?.to_str()?;
                    values.iter().any(|x| x == s)
                }
            }
            FieldKind::Bool => v.is_exact_instance_of::<PyBool>(),
            FieldKind::Int => v.is_exact_instance_of::<PyInt>(),
            FieldKind::Other => false,
        })
    }
}

/// A declared event field: `(type, default, required)` of `Playbook.events`.
pub struct EventField {
    pub name: String,
    /// `name` as an interned Python string (a dictionary key made once, its hash kept)
    pub key: Py<PyString>,
    pub kind: FieldKind,
    pub default: PyObj,
    pub required: bool,
}

/// `(calendar, zone)` → that calendar built in that zone (`None`: no zone of that name).
pub type ZonedCals = HashMap<(String, String), Option<Arc<Cal>>>;

pub struct ChannelDef {
    pub calendar: String,
    pub cap_per: Option<f64>,
    pub cap_max: Option<i64>,
    /// `mode: defer`: a capped send is held until the window has room (else it is dropped)
    pub cap_defer: bool,
    /// `exempt: [template…]`: sends of these templates neither count nor are capped
    pub cap_exempt: Vec<String>,
}

pub struct Playbook {
    pub id: String,
    pub version: String,
    pub hash: String,
    /// shared by every state of this playbook: hash, stage names, clock names
    pub shared: Arc<Shared>,
    pub stages: Vec<StageDef>,
    /// each stage's name as an interned Python string (what a step hands back)
    pub stage_py: Vec<Py<PyString>>,
    pub stage_index: HashMap<String, usize>,
    pub initial: usize,
    /// `start.on`: the event types that open a case
    pub start_on: FxHashSet<String>,
    /// the case key is `event.case` and there is no `start.when`: the core opens cases alone
    pub start_fast: bool,
    pub root_on: HashMap<String, Vec<HandlerDef>>,
    pub actions: Vec<ActionDef>,
    pub action_by_source: HashMap<String, usize>,
    pub timers: Vec<(usize, TimerDef)>,
    pub timer_by_source: HashMap<String, usize>,
    pub schedules: Vec<(usize, ScheduleDef)>,
    pub schedule_by_source: HashMap<String, usize>,
    pub clocks: Vec<ClockDef>,
    pub clock_index: HashMap<String, usize>,
    pub segments: Vec<(String, Option<Cond>)>,
    pub segments_volatile: bool,
    pub start_sets: Vec<SetDef>,
    pub defaults: Py<PyDict>,
    pub tiers: Vec<String>,
    pub channels: HashMap<String, ChannelDef>,
    pub calendars: HashMap<String, Cal>,
    /// the calendars declared `timezone: customer` (SPEC §10): read in the zone the field
    /// `customer_tz` names
    pub customer_cals: FxHashSet<String>,
    pub customer_tz: Option<String>,
    /// the playbook's own zone (what a `timezone.fallback` signal says it fell back to)
    pub timezone: String,
    /// those calendars built in each zone met so far (`None`: no zone of that name), bounded
    pub zoned: std::sync::Mutex<ZonedCals>,
    pub exit_on: Vec<String>,
    pub exit_when: Option<Cond>,
    pub event_types: FxHashSet<String>,
    pub events: HashMap<String, Vec<EventField>>,
}

fn opt_cond(x: &Bound<'_, PyAny>) -> PyResult<Option<Cond>> {
    if x.is_none() {
        Ok(None)
    } else {
        Ok(Some(Cond::from_py(x)?))
    }
}

fn opt_delay(x: &Bound<'_, PyAny>) -> PyResult<Option<Delay>> {
    if x.is_none() {
        return Ok(None);
    }
    let (seconds, days, business_days, months): (f64, i64, i64, i64) = x.extract()?;
    Ok(Some(Delay {
        seconds,
        days,
        business_days,
        months,
    }))
}

struct Builder<'a> {
    stage_index: &'a HashMap<String, usize>,
    actions: Vec<ActionDef>,
    action_by_source: HashMap<String, usize>,
}

impl Builder<'_> {
    fn stage(&self, name: &str) -> PyResult<usize> {
        self.stage_index.get(name).copied().ok_or_else(|| {
            pyo3::exceptions::PyValueError::new_err(format!("unknown stage {name:?}"))
        })
    }

    fn opt_stage(&self, x: &Bound<'_, PyAny>) -> PyResult<Option<usize>> {
        if x.is_none() {
            Ok(None)
        } else {
            Ok(Some(self.stage(&x.extract::<String>()?)?))
        }
    }

    fn sets(&self, x: &Bound<'_, PyAny>) -> PyResult<Vec<SetDef>> {
        let mut out = Vec::new();
        for s in x.try_iter()? {
            let s = s?;
            let field: String = s.get_item(0)?.extract()?;
            out.push(SetDef {
                key: PyString::intern(s.py(), &field).unbind(),
                field,
                literal: s.get_item(1)?.unbind(),
                expr: opt_cond(&s.get_item(2)?)?,
                kind: FieldKind::of(&s.get_item(3)?)?,
                ftype: s.get_item(3)?.unbind(),
            });
        }
        Ok(out)
    }

    fn actions(&mut self, x: &Bound<'_, PyAny>) -> PyResult<Vec<usize>> {
        let mut out = Vec::new();
        for a in x.try_iter()? {
            let a = a?;
            let verb_name: String = a.get_item(0)?.extract()?;
            let verb = match verb_name.as_str() {
                "notify" => Verb::Notify,
                "send" => Verb::Send,
                "survey" => Verb::Survey,
                "assign" => Verb::Assign,
                "escalate" => Verb::Escalate,
                "set" => Verb::Set,
                "task" => Verb::Task,
                "emit" => Verb::Emit,
                _ => Verb::Other,
            };
            let arg_s_obj = a.get_item(2)?;
            let def = ActionDef {
                verb,
                verb_name,
                arg: a.get_item(1)?.unbind(),
                arg_s: if arg_s_obj.is_none() {
                    None
                } else {
                    Some(arg_s_obj.extract()?)
                },
                params: a.get_item(3)?.downcast_into::<PyDict>()?.unbind(),
                source: a.get_item(4)?.extract()?,
                delay: opt_delay(&a.get_item(5)?)?,
                calendar: a.get_item(6)?.extract()?,
                window: a.get_item(7)?.extract()?,
                keep: a.get_item(8)?.extract()?,
                sets: self.sets(&a.get_item(9)?)?,
                when: opt_cond(&a.get_item(10)?)?,
                fallback: a.get_item(11)?.extract()?,
            };
            let i = self.actions.len();
            self.action_by_source.insert(def.source.clone(), i);
            self.actions.push(def);
            out.push(i);
        }
        Ok(out)
    }

    fn handlers(&mut self, x: &Bound<'_, PyAny>) -> PyResult<HashMap<String, Vec<HandlerDef>>> {
        let mut out = HashMap::default();
        let d = x.downcast::<PyDict>()?;
        for (k, hs) in d.iter() {
            let mut v = Vec::new();
            for h in hs.try_iter()? {
                let h = h?;
                v.push(HandlerDef {
                    to: self.opt_stage(&h.get_item(0)?)?,
                    when: opt_cond(&h.get_item(1)?)?,
                    sets: self.sets(&h.get_item(2)?)?,
                    do_: self.actions(&h.get_item(3)?)?,
                    source: h.get_item(4)?.extract()?,
                });
            }
            out.insert(k.extract()?, v);
        }
        Ok(out)
    }

    fn trigger(
        &self,
        x: &Bound<'_, PyAny>,
        bit: u8,
        on_bits: &mut HashMap<String, u8>,
        enter_bits: &mut HashMap<usize, u8>,
        has_when: &mut bool,
    ) -> PyResult<Option<TriggerDef>> {
        if x.is_none() {
            return Ok(None);
        }
        for ty in x.get_item(0)?.try_iter()? {
            *on_bits.entry(ty?.extract()?).or_insert(0) |= bit;
        }
        for st in x.get_item(1)?.try_iter()? {
            let i = self.stage(&st?.extract::<String>()?)?;
            *enter_bits.entry(i).or_insert(0) |= bit;
        }
        let when = opt_cond(&x.get_item(2)?)?;
        *has_when = *has_when || when.is_some();
        Ok(Some(TriggerDef { when }))
    }
}

impl Playbook {
    pub fn from_plain(plain: &Bound<'_, PyAny>) -> PyResult<Self> {
        let stages_raw = plain.get_item("stages")?;
        let mut stage_index = HashMap::default();
        for (i, st) in stages_raw.try_iter()?.enumerate() {
            stage_index.insert(st?.get_item(0)?.extract::<String>()?, i);
        }
        let mut b = Builder {
            stage_index: &stage_index,
            actions: Vec::new(),
            action_by_source: HashMap::default(),
        };
        let mut stages = Vec::new();
        let mut timers = Vec::new();
        let mut timer_by_source = HashMap::default();
        let mut schedules = Vec::new();
        let mut schedule_by_source = HashMap::default();
        for (si, st) in stages_raw.try_iter()?.enumerate() {
            let st = st?;
            let enter = b.actions(&st.get_item(2)?)?;
            let exit = b.actions(&st.get_item(3)?)?;
            let on = b.handlers(&st.get_item(4)?)?;
            let mut after = Vec::new();
            for t in st.get_item(5)?.try_iter()? {
                let t = t?;
                let source: String = t.get_item(7)?.extract()?;
                let def = TimerDef {
                    index: t.get_item(0)?.extract()?,
                    delay: opt_delay(&t.get_item(1)?)?.unwrap_or(Delay {
                        seconds: 0.0,
                        days: 0,
                        business_days: 0,
                        months: 0,
                    }),
                    to: b.opt_stage(&t.get_item(2)?)?,
                    do_: b.actions(&t.get_item(3)?)?,
                    when: opt_cond(&t.get_item(4)?)?,
                    calendar: t.get_item(5)?.extract()?,
                    window: t.get_item(6)?.extract()?,
                };
                timer_by_source.insert(source, timers.len());
                after.push(timers.len());
                timers.push((si, def));
            }
            let mut every = Vec::new();
            for s in st.get_item(6)?.try_iter()? {
                let s = s?;
                let source: String = s.get_item(5)?.extract()?;
                let def = ScheduleDef {
                    schedule: s.get_item(1)?.unbind(),
                    window: s.get_item(2)?.extract()?,
                    do_: b.actions(&s.get_item(3)?)?,
                    when: opt_cond(&s.get_item(4)?)?,
                };
                schedule_by_source.insert(source, schedules.len());
                every.push(schedules.len());
                schedules.push((si, def));
            }
            stages.push(StageDef {
                name: st.get_item(0)?.extract()?,
                final_: st.get_item(1)?.extract()?,
                enter,
                exit,
                on,
                after,
                every,
            });
        }
        let root_on = b.handlers(&plain.get_item("root_on")?)?;
        let mut clocks = Vec::new();
        let mut clock_index = HashMap::default();
        for c in plain.get_item("clocks")?.try_iter()? {
            let c = c?;
            let name: String = c.get_item(0)?.extract()?;
            let mut on_bits = HashMap::default();
            let mut enter_bits = HashMap::default();
            let mut has_when = false;
            let start = b.trigger(
                &c.get_item(1)?,
                1,
                &mut on_bits,
                &mut enter_bits,
                &mut has_when,
            )?;
            let stop = b.trigger(
                &c.get_item(2)?,
                2,
                &mut on_bits,
                &mut enter_bits,
                &mut has_when,
            )?;
            let reset = b.trigger(
                &c.get_item(4)?,
                4,
                &mut on_bits,
                &mut enter_bits,
                &mut has_when,
            )?;
            let cancel = b.trigger(
                &c.get_item(5)?,
                8,
                &mut on_bits,
                &mut enter_bits,
                &mut has_when,
            )?;
            let p = c.get_item(3)?;
            let pause = if p.is_none() {
                None
            } else {
                let mut stages = Vec::new();
                for s in p.get_item(0)?.try_iter()? {
                    stages.push(b.stage(&s?.extract::<String>()?)?);
                }
                Some(PauseDef {
                    stages,
                    when: opt_cond(&p.get_item(1)?)?,
                })
            };
            let calendar: String = c.get_item(7)?.extract()?;
            let mut targets = Vec::new();
            for t in c.get_item(8)?.try_iter()? {
                let t = t?;
                targets.push(TargetDef {
                    when: opt_cond(&t.get_item(1)?)?,
                    seconds: t.get_item(2)?.extract()?,
                    business_days: t.get_item(3)?.extract()?,
                    calendar: t.get_item(4)?.extract()?,
                });
            }
            let mut thresholds = Vec::new();
            for th in c.get_item(9)?.try_iter()? {
                let th = th?;
                let sev: String = th.get_item(4)?.extract()?;
                thresholds.push(ThresholdDef {
                    percent: th.get_item(0)?.extract()?,
                    offset: th.get_item(1)?.extract()?,
                    do_: b.actions(&th.get_item(2)?)?,
                    text: th.get_item(3)?.extract()?,
                    severity: match sev.as_str() {
                        "warning" => Severity::Warning,
                        "breached" => Severity::Breached,
                        _ => Severity::Overdue,
                    },
                });
            }
            let retarget = targets.len() > 1
                || targets
                    .iter()
                    .any(|t| t.when.is_some() || t.calendar.as_deref() == Some("channel"))
                || calendar == "channel";
            let reads: Option<Vec<String>> = c.get_item(10)?.extract()?;
            clock_index.insert(name.clone(), clocks.len());
            clocks.push(ClockDef {
                name,
                start,
                stop,
                pause,
                reset,
                cancel,
                repeat: c.get_item(6)?.extract()?,
                calendar,
                targets,
                thresholds,
                on_bits,
                enter_bits,
                has_when,
                retarget,
                reads,
            });
        }
        let mut segments = Vec::new();
        for s in plain.get_item("segments")?.try_iter()? {
            let s = s?;
            segments.push((s.get_item(0)?.extract()?, opt_cond(&s.get_item(1)?)?));
        }
        let mut channels = HashMap::default();
        for (k, v) in plain.get_item("channels")?.downcast::<PyDict>()?.iter() {
            channels.insert(
                k.extract()?,
                ChannelDef {
                    calendar: v.get_item(0)?.extract()?,
                    cap_per: v.get_item(1)?.extract()?,
                    cap_max: v.get_item(2)?.extract()?,
                    cap_defer: v.get_item(3)?.extract()?,
                    cap_exempt: v.get_item(4)?.extract()?,
                },
            );
        }
        let mut calendars = HashMap::default();
        for (k, v) in plain.get_item("calendars")?.downcast::<PyDict>()?.iter() {
            calendars.insert(k.extract()?, Cal::from_py(&v)?);
        }
        let start_sets = b.sets(&plain.get_item("start_sets")?)?;
        let initial = b.stage(&plain.get_item("initial")?.extract::<String>()?)?;
        let Builder {
            actions,
            action_by_source,
            ..
        } = b;
        let event_types = plain
            .get_item("event_types")?
            .extract::<Vec<String>>()?
            .into_iter()
            .collect();
        let defaults = plain
            .get_item("defaults")?
            .downcast_into::<PyDict>()?
            .unbind();
        let _ = PyList::empty(plain.py());
        let hash: String = plain.get_item("hash")?.extract()?;
        let shared = Arc::new(Shared {
            hash: Arc::from(hash.as_str()),
            stage_names: stages.iter().map(|s| Arc::from(s.name.as_str())).collect(),
            clock_names: clocks.iter().map(|c| c.name.clone()).collect(),
        });
        let stage_py = stages
            .iter()
            .map(|s| PyString::intern(plain.py(), &s.name).unbind())
            .collect();
        let start_on: Vec<String> = plain.get_item("start_on")?.extract()?;
        let start_fast: bool = plain.get_item("start_fast")?.extract()?;
        let mut events = HashMap::default();
        for (ty, fields) in plain.get_item("events")?.downcast::<PyDict>()?.iter() {
            let mut v = Vec::new();
            for f in fields.try_iter()? {
                let f = f?;
                let kind: String = f.get_item(1)?.extract()?;
                let name: String = f.get_item(0)?.extract()?;
                v.push(EventField {
                    key: PyString::intern(f.py(), &name).unbind(),
                    name,
                    kind: match kind.as_str() {
                        "string" => FieldKind::String,
                        "enum" => FieldKind::Enum(f.get_item(2)?.extract()?),
                        "bool" => FieldKind::Bool,
                        "int" => FieldKind::Int,
                        _ => FieldKind::Other,
                    },
                    default: f.get_item(3)?.unbind(),
                    required: f.get_item(4)?.extract()?,
                });
            }
            events.insert(ty.extract()?, v);
        }
        Ok(Playbook {
            stage_py,
            start_on: start_on.into_iter().collect(),
            start_fast,
            events,
            shared,
            id: plain.get_item("id")?.extract()?,
            version: plain.get_item("version")?.extract()?,
            hash,
            stages,
            stage_index,
            initial,
            root_on,
            actions,
            action_by_source,
            timers,
            timer_by_source,
            schedules,
            schedule_by_source,
            clocks,
            clock_index,
            segments,
            segments_volatile: plain.get_item("segments_volatile")?.extract()?,
            start_sets,
            defaults,
            tiers: plain.get_item("tiers")?.extract()?,
            channels,
            calendars,
            customer_cals: plain
                .get_item("customer_calendars")?
                .extract::<Vec<String>>()?
                .into_iter()
                .collect(),
            customer_tz: plain.get_item("customer_timezone")?.extract()?,
            timezone: plain.get_item("timezone")?.extract()?,
            zoned: std::sync::Mutex::new(HashMap::default()),
            exit_on: plain.get_item("exit_on")?.extract()?,
            exit_when: opt_cond(&plain.get_item("exit_when")?)?,
            event_types,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn th(percent: Option<f64>, offset: Option<f64>) -> ThresholdDef {
        ThresholdDef {
            percent,
            offset,
            do_: Vec::new(),
            text: String::new(),
            severity: Severity::Warning,
        }
    }

    #[test]
    fn thresholds_fire_where_the_reference_says() {
        // `target * percent / 100.0` and `max(0.0, target + offset)`, as ThresholdDef.at
        assert_eq!(th(Some(75.0), None).at(7200.0), 5400.0);
        assert_eq!(th(Some(80.0), None).at(97200.0), 77760.0);
        assert_eq!(th(None, Some(3600.0)).at(1800.0), 5400.0);
        assert_eq!(th(None, Some(-3600.0)).at(1800.0), 0.0);
    }

    #[test]
    fn py_max_keeps_the_first_of_equals() {
        assert!(py_max(0.0, -0.0).is_sign_positive());
        assert!(py_max(-0.0, 0.0).is_sign_negative());
        assert_eq!(py_max(0.0, 2.5), 2.5);
    }
}
