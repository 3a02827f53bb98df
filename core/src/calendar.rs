//! Business time in the core: the same algebra over open intervals as `carepath.calendar`.
//!
//! A calendar's open time comes from Python one local year at a time
//! (`carepath._native.lower_calendar`: holidays, overrides and DST applied by the reference
//! `materialise_year`), as [`YearData`]: the year's open intervals in epoch seconds, its open
//! dates, the local midnights that bound it and its UTC-offset transitions. The core flattens a
//! contiguous range of years into the reference's [`Table`] (merged intervals with prefix sums)
//! and answers every question with the reference's own bisections and float expressions, so the
//! results are the reference's, bit for bit wherever the reference's arithmetic is exact (it is
//! for every instant and duration on the engine's microsecond grid). The datetime API's integer
//! microsecond arithmetic (`add_us`, `subtract_us`, `elapsed_us`) is reproduced exactly.
//!
//! Years are fetched lazily, as the reference materialises them, through a [`YearSource`];
//! growth is bounded as in the reference: a year without open time is [`CalError::NoOpenTime`]
//! (rule 10), never a loop, and so is a year outside 2..=9997. The source is never called with
//! the calendar's lock held, so a Python source cannot deadlock against the GIL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::value::{ordinal_to_ymd, DAY_US, EPOCH_ORDINAL};

/// The reference's `MIN_YEAR`, `MAX_YEAR`.
pub const MIN_YEAR: i32 = 2;
pub const MAX_YEAR: i32 = 9997;
/// Rule 10: no open time within this many seconds is an error, never a hang.
pub const HORIZON: f64 = 366.0 * 86400.0;
const M: i64 = 1_000_000;

/// Why a calendar gave no answer.
#[derive(Clone, Debug, PartialEq)]
pub enum CalError {
    /// The reference raises `carepath.errors.NoOpenTime` with this message.
    NoOpenTime(String),
    /// The reference raises `ValueError`/`OverflowError` (an instant that is not finite…).
    Invalid(String),
    /// The year source failed (a Python exception while materialising a year).
    Source(String),
}

impl std::fmt::Display for CalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CalError::NoOpenTime(m) | CalError::Invalid(m) | CalError::Source(m) => f.write_str(m),
        }
    }
}

type R<T> = Result<T, CalError>;

/// One local year of a calendar, as `lower_calendar.year_data` gives it.
#[derive(Clone, Debug, Default)]
pub struct YearData {
    /// Open intervals `[open, close)` opening on the year's local dates, sorted.
    pub intervals: Vec<(f64, f64)>,
    /// Ordinals of the year's open dates.
    pub days: Vec<i64>,
    /// `local_epoch(Jan 1, 0)`, `local_epoch(Jan 1, 2 days)`, `local_epoch(next Jan 1, 0)`.
    pub start: f64,
    pub start2: f64,
    pub next_start: f64,
    /// The UTC offset (seconds) in effect just before the first transition of the year.
    pub offset0: i32,
    /// The zone's transitions in the year (and a few days around it): `(instant, before, after)`.
    pub transitions: Vec<(f64, i32, i32)>,
}

/// Where the years come from.
pub trait YearSource: Send + Sync {
    fn year(&self, year: i32) -> R<YearData>;
}

/// Materialised local years `y0..=y1`; queries are exact for `qlo <= t < qhi` (the reference's
/// `Table`, plus the zone's transitions over the range).
#[derive(Debug, Default)]
pub struct Table {
    pub y0: i32,
    pub y1: i32,
    pub qlo: f64,
    pub qhi: f64,
    pub o: Vec<f64>,
    pub c: Vec<f64>,
    pub cum: Vec<f64>,
    pub cend: Vec<f64>,
    pub days: Vec<i64>,
    offset0: i32,
    trans: Vec<(f64, i32, i32)>,
    trans_utc: Vec<f64>,
    /// `trans[k].0 + max(before, after)`: the local wall instants where fold=0 changes offset
    /// (and `+ min(..)`, where fold=1 does), as zoneinfo's `trans_list_wall`.
    trans_wall: Vec<f64>,
    trans_wall1: Vec<f64>,
}

fn bisect_right<T: PartialOrd>(a: &[T], x: &T) -> usize {
    let (mut lo, mut hi) = (0, a.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if x < &a[mid] {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

fn bisect_left<T: PartialOrd>(a: &[T], x: &T) -> usize {
    let (mut lo, mut hi) = (0, a.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if &a[mid] < x {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

impl Table {
    fn empty() -> Table {
        Table {
            y0: 0,
            y1: -1,
            qlo: f64::INFINITY,
            qhi: f64::NEG_INFINITY,
            ..Table::default()
        }
    }

    /// Flatten years `y0..=y1` (all present in `years`) into merged intervals with prefix sums.
    fn build(years: &HashMap<i32, Arc<YearData>>, y0: i32, y1: i32) -> Option<Table> {
        let mut t = Table {
            y0,
            y1,
            ..Table::default()
        };
        for y in y0..=y1 {
            let data = years.get(&y)?;
            t.days.extend_from_slice(&data.days);
            for &(a, b) in &data.intervals {
                match t.c.last_mut() {
                    Some(last) if a <= *last => {
                        if b > *last {
                            *last = b;
                        }
                    }
                    _ => {
                        t.o.push(a);
                        t.c.push(b);
                    }
                }
            }
            for &tr in &data.transitions {
                if t.trans.last().is_none_or(|l| tr.0 > l.0) {
                    t.trans.push(tr);
                }
            }
        }
        let mut total = 0.0;
        for (a, b) in t.o.iter().zip(&t.c) {
            t.cum.push(total);
            total += b - a;
            t.cend.push(total);
        }
        let first = years.get(&y0)?;
        t.offset0 = first.offset0;
        t.trans_utc = t.trans.iter().map(|x| x.0).collect();
        t.trans_wall = t
            .trans
            .iter()
            .map(|&(u, b, a)| u + f64::from(b.max(a)))
            .collect();
        t.trans_wall1 = t
            .trans
            .iter()
            .map(|&(u, b, a)| u + f64::from(b.min(a)))
            .collect();
        t.qlo = first.start2;
        t.qhi = years.get(&y1)?.next_start;
        Some(t)
    }

    fn covers(&self, t: f64) -> bool {
        self.qlo <= t && t < self.qhi
    }

    /// Open seconds from the table's start up to `t`.
    pub fn f(&self, t: f64) -> f64 {
        let i = bisect_right(&self.o, &t) as isize - 1;
        if i < 0 {
            return 0.0;
        }
        let i = i as usize;
        if t < self.c[i] {
            self.cum[i] + (t - self.o[i])
        } else {
            self.cend[i]
        }
    }

    /// The reference's `_f_us`: exact open microseconds up to `t_us`.
    fn f_us(&self, t_us: i64) -> i64 {
        let i = bisect_right(&self.o, &(t_us as f64 / 1e6)) as isize - 1;
        if i < 0 {
            return 0;
        }
        let i = i as usize;
        if t_us < (self.c[i] as i64) * M {
            (self.cum[i] as i64) * M + t_us - (self.o[i] as i64) * M
        } else {
            (self.cend[i] as i64) * M
        }
    }

    /// `datetime.fromtimestamp(u, zone)` as (wall microseconds read as UTC, fold).
    fn local(&self, u: f64) -> (i64, u8) {
        let us = timestamp_us(u);
        let ts = us.div_euclid(M) as f64;
        let k = bisect_right(&self.trans_utc, &ts);
        if k == 0 {
            return (us + i64::from(self.offset0) * M, 0);
        }
        let (t, before, after) = self.trans[k - 1];
        let fold = u8::from(before > after && ts < t + f64::from(before - after));
        (us + i64::from(after) * M, fold)
    }

    /// The offset of local wall time `w` (seconds, wall read as UTC) with this `fold` (PEP 495:
    /// fold=0 gives the earlier reading of a repeated time and moves a skipped one forward).
    fn offset_wall(&self, w: f64, fold: u8) -> i32 {
        let walls = if fold == 0 {
            &self.trans_wall
        } else {
            &self.trans_wall1
        };
        let k = bisect_right(walls, &w);
        if k == 0 {
            self.offset0
        } else {
            self.trans[k - 1].2
        }
    }
}

/// `datetime.fromtimestamp(u)`'s split of `u` into whole seconds and microseconds
/// (`ROUND_HALF_EVEN` on the fractional part), as total microseconds.
pub fn timestamp_us(u: f64) -> i64 {
    let ip = u.trunc();
    let mut fp = ((u - ip) * 1e6).round_ties_even();
    let mut ip = ip as i64;
    if fp >= 1e6 {
        ip += 1;
        fp -= 1e6;
    } else if fp < 0.0 {
        ip -= 1;
        fp += 1e6;
    }
    ip * M + fp as i64
}

/// `datetime.fromtimestamp(u, ZoneInfo("UTC")).isoformat()`.
pub fn iso_utc(u: f64) -> String {
    let us = timestamp_us(u);
    let (y, mo, d) = ordinal_to_ymd(us.div_euclid(DAY_US) + EPOCH_ORDINAL);
    let r = us.rem_euclid(DAY_US);
    let (h, mi, s, f) = (r / 3_600_000_000, r / 60_000_000 % 60, r / M % 60, r % M);
    let frac = if f != 0 {
        format!(".{f:06}")
    } else {
        String::new()
    };
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}+00:00")
}

/// A business-time calendar (see the module documentation).
pub struct Calendar {
    always: bool,
    source: Box<dyn YearSource>,
    years: Mutex<HashMap<i32, Arc<YearData>>>,
    tab: Mutex<Arc<Table>>,
}

impl std::fmt::Debug for Calendar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Calendar {{ always: {} }}", self.always)
    }
}

fn invalid(t: f64) -> CalError {
    CalError::Invalid(format!("not a finite instant: {t}"))
}

impl Calendar {
    /// A calendar over `source`; `always` for the 24x7 calendar (whose source is only asked for
    /// the zone's transitions, by `add_days`).
    pub fn new(always: bool, source: Box<dyn YearSource>) -> Calendar {
        Calendar {
            always,
            source,
            years: Mutex::new(HashMap::new()),
            tab: Mutex::new(Arc::new(Table::empty())),
        }
    }

    /// Seed already materialised years (no effect on results, only on when the source is asked).
    pub fn seed(&self, data: Vec<(i32, YearData)>) {
        if let Ok(mut ys) = self.years.lock() {
            for (y, d) in data {
                ys.entry(y).or_insert_with(|| Arc::new(d));
            }
        }
    }

    pub fn always(&self) -> bool {
        self.always
    }

    fn current(&self) -> Arc<Table> {
        match self.tab.lock() {
            Ok(t) => t.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The reference's `_make_table(y0, y1)`: fetch missing years (lock not held), then build.
    fn make_table(&self, y0: i32, y1: i32) -> R<Arc<Table>> {
        if y0 < MIN_YEAR || y1 > MAX_YEAR {
            return Err(CalError::NoOpenTime(format!(
                "business time beyond the years {MIN_YEAR}-{MAX_YEAR} is not supported"
            )));
        }
        let missing: Vec<i32> = {
            let ys = self
                .years
                .lock()
                .map_err(|_| CalError::Source("poisoned".into()))?;
            (y0..=y1).filter(|y| !ys.contains_key(y)).collect()
        };
        let mut fetched = Vec::with_capacity(missing.len());
        for y in missing {
            fetched.push((y, self.source.year(y)?));
        }
        let table = {
            let mut ys = self
                .years
                .lock()
                .map_err(|_| CalError::Source("poisoned".into()))?;
            for (y, d) in fetched {
                ys.entry(y).or_insert_with(|| Arc::new(d));
            }
            Table::build(&ys, y0, y1).ok_or_else(|| CalError::Source("a year is missing".into()))?
        };
        let table = Arc::new(table);
        if let Ok(mut cur) = self.tab.lock() {
            if table.y0 <= cur.y0 && table.y1 >= cur.y1 || cur.y1 < cur.y0 {
                *cur = table.clone();
            }
        }
        Ok(table)
    }

    /// The reference's `_cover(t)`: a table with `qlo <= t < qhi`.
    fn cover(&self, t: f64) -> R<Arc<Table>> {
        let tab = self.current();
        if tab.covers(t) {
            return Ok(tab);
        }
        if !t.is_finite() {
            return Err(invalid(t));
        }
        // The UTC year; the loops below widen the range to the local year's as the reference.
        let day = (t / 86400.0).floor();
        let year = if day.abs() < 4e6 {
            ordinal_to_ymd(day as i64 + EPOCH_ORDINAL).0
        } else {
            0
        };
        if !(1..=9999).contains(&year) {
            // datetime.fromtimestamp raises before the reference's own year check
            return Err(CalError::Invalid(format!("year of {t} is out of range")));
        }
        let year = year as i32;
        let (mut y0, mut y1) = if tab.y1 >= tab.y0 {
            (tab.y0.min(year), tab.y1.max(year))
        } else {
            (year, year)
        };
        let mut tab = self.make_table(y0, y1)?;
        while t < tab.qlo {
            y0 -= 1;
            tab = self.make_table(y0, y1)?;
        }
        while t >= tab.qhi {
            y1 += 1;
            tab = self.make_table(y0, y1)?;
        }
        Ok(tab)
    }

    fn grow_forward(&self, tab: Arc<Table>, since: f64) -> R<Arc<Table>> {
        let mut tab = {
            let cur = self.current();
            if cur.y0 <= tab.y0 && cur.y1 >= tab.y1 {
                cur
            } else {
                tab
            }
        };
        loop {
            if tab.c.last().is_some_and(|&c| c > since) {
                return Ok(tab);
            }
            if tab.qhi - since > HORIZON {
                return Err(CalError::NoOpenTime(format!(
                    "the calendar has no open time within a year after {}",
                    iso_utc(since)
                )));
            }
            tab = self.make_table(tab.y0, tab.y1 + 1)?;
        }
    }

    fn grow_back(&self, tab: Arc<Table>, since: f64) -> R<Arc<Table>> {
        let mut tab = {
            let cur = self.current();
            if cur.y0 <= tab.y0 && cur.y1 >= tab.y1 {
                cur
            } else {
                tab
            }
        };
        loop {
            if tab.o.first().is_some_and(|&o| o < since) {
                return Ok(tab);
            }
            if since - tab.qlo > HORIZON {
                return Err(CalError::NoOpenTime(format!(
                    "the calendar has no open time within a year before {}",
                    iso_utc(since)
                )));
            }
            tab = self.make_table(tab.y0 - 1, tab.y1)?;
        }
    }

    fn table_for(&self, t: f64) -> R<Arc<Table>> {
        let tab = self.current();
        if tab.covers(t) {
            Ok(tab)
        } else {
            self.cover(t)
        }
    }

    // -- epoch-seconds API (the reference's `*_s`) ----------------------------------------------

    /// `is_open_s`.
    pub fn try_is_open(&self, t: f64) -> R<bool> {
        if self.always {
            return Ok(true);
        }
        let tab = self.table_for(t)?;
        let i = bisect_right(&tab.o, &t) as isize - 1;
        Ok(i >= 0 && t < tab.c[i as usize])
    }

    /// `next_open_s`.
    pub fn try_next_open(&self, t: f64) -> R<f64> {
        if self.always {
            return Ok(t);
        }
        let tab = self.table_for(t)?;
        let i = bisect_right(&tab.o, &t) as isize - 1;
        if i >= 0 && t < tab.c[i as usize] {
            return Ok(t);
        }
        let n = (i + 1) as usize;
        if n < tab.o.len() {
            return Ok(tab.o[n]);
        }
        // _next_open_slow
        let tab = self.grow_forward(tab, t)?;
        let i = bisect_right(&tab.o, &t) as isize - 1;
        if i >= 0 && t < tab.c[i as usize] {
            return Ok(t);
        }
        tab.o
            .get((i + 1) as usize)
            .copied()
            .ok_or_else(|| CalError::Source("no interval after growth".into()))
    }

    /// `add_s`.
    pub fn try_add(&self, t: f64, seconds: f64) -> R<f64> {
        if self.always {
            return Ok(t + seconds);
        }
        if seconds <= 0.0 {
            return if seconds == 0.0 {
                self.try_next_open(t)
            } else {
                self.try_subtract(t, -seconds)
            };
        }
        let tab = self.table_for(t)?;
        let i = bisect_right(&tab.o, &t) as isize - 1;
        let target = if i < 0 {
            seconds
        } else {
            let i = i as usize;
            if t < tab.c[i] {
                tab.cum[i] + (t - tab.o[i]) + seconds
            } else {
                tab.cend[i] + seconds
            }
        };
        let j = bisect_left(&tab.cend, &target);
        if j < tab.o.len() {
            return Ok(tab.o[j] + (target - tab.cum[j]));
        }
        // _add_slow
        let mut tab = tab;
        loop {
            let target = tab.f(t) + seconds;
            let j = bisect_left(&tab.cend, &target);
            if j < tab.o.len() {
                return Ok(tab.o[j] + (target - tab.cum[j]));
            }
            let since = match tab.c.last() {
                Some(&c) => t.max(c),
                None => t,
            };
            tab = self.grow_forward(tab, since)?;
        }
    }

    /// `subtract_s`.
    pub fn try_subtract(&self, t: f64, seconds: f64) -> R<f64> {
        if self.always {
            return Ok(t - seconds);
        }
        if seconds <= 0.0 {
            return if seconds == 0.0 {
                Ok(t)
            } else {
                self.try_add(t, -seconds)
            };
        }
        let mut tab = self.table_for(t)?;
        let mut target = tab.f(t) - seconds;
        loop {
            let j = bisect_right(&tab.cum, &target) as isize - 1;
            if j >= 0 {
                let j = j as usize;
                return Ok(tab.o[j] + (target - tab.cum[j]));
            }
            let since = tab.o.first().copied().unwrap_or(t);
            tab = self.grow_back(tab, since)?;
            target = tab.f(t) - seconds;
        }
    }

    /// `elapsed_s`: open seconds in `[a, b)`, negative for `a > b`.
    pub fn try_elapsed(&self, a: f64, b: f64) -> R<f64> {
        if self.always {
            return Ok(b - a);
        }
        if a > b {
            return Ok(-self.try_elapsed(b, a)?);
        }
        let mut tab = self.current();
        if !(tab.qlo <= a && b < tab.qhi) {
            self.cover(a)?;
            tab = self.cover(b)?;
        }
        Ok(tab.f(b) - tab.f(a))
    }

    /// `add_days_s`: `n` business days after `t` (rule 6).
    pub fn try_add_days(&self, t: f64, n: i64) -> R<f64> {
        if self.always {
            let tab = self.table_for(t)?;
            let (local, fold) = tab.local(t);
            let wall = n
                .checked_mul(DAY_US)
                .and_then(|d| d.checked_add(local))
                .ok_or_else(|| CalError::Invalid("date value out of range".into()))?;
            return self.wall_epoch(wall, fold);
        }
        let s = self.try_next_open(t)?;
        if n == 0 {
            return Ok(s);
        }
        let mut tab = self.table_for(s)?;
        let (local, fold) = tab.local(s);
        let ordinal = local.div_euclid(DAY_US) + EPOCH_ORDINAL;
        let tod = local.rem_euclid(DAY_US);
        let k = loop {
            let days = &tab.days;
            let k = if n > 0 {
                (bisect_right(days, &ordinal) as i64).saturating_add(n - 1)
            } else {
                (bisect_left(days, &ordinal) as i64).saturating_add(n)
            };
            if 0 <= k && (k as usize) < days.len() {
                break k as usize;
            }
            tab = if k >= days.len() as i64 {
                let since = tab.c.last().copied().unwrap_or(s);
                self.grow_forward(tab, since)?
            } else {
                let since = tab.o.first().copied().unwrap_or(s);
                self.grow_back(tab, since)?
            };
        };
        let wall = (tab.days[k] - EPOCH_ORDINAL) * DAY_US + tod;
        let u = self.wall_epoch(wall, fold)?;
        self.try_next_open(u)
    }

    /// The engine's wall-clock days (`WorkingCase.delay_due` with `d`/`w`): `t` read in the
    /// calendar's zone, `n` days added to its wall time, read back with fold=0 (datetime
    /// arithmetic drops the fold) and rounded to microseconds — whatever the calendar's hours.
    pub fn try_wall_days(&self, t: f64, n: i64) -> R<f64> {
        let tab = self.table_for(t)?;
        let (local, _fold) = tab.local(t);
        let wall = n
            .checked_mul(DAY_US)
            .and_then(|d| d.checked_add(local))
            .ok_or_else(|| CalError::Invalid("date value out of range".into()))?;
        self.wall_epoch(wall, 0).map(crate::state::round_us)
    }

    /// `datetime.combine(day, time, zone).timestamp()` of a wall time in microseconds (the time
    /// keeps the fold of the instant it was read from, as `datetime.time()` does).
    fn wall_epoch(&self, wall_us: i64, fold: u8) -> R<f64> {
        let w = (wall_us.div_euclid(M)) as f64;
        let mut tab = self.table_for(w)?;
        // The table must hold the transitions around the wall time (a day either way).
        if !(tab.covers(w - 86400.0) && tab.covers(w + 86400.0)) {
            self.cover(w - 86400.0)?;
            tab = self.cover(w + 86400.0)?;
        }
        let off = tab.offset_wall(w, fold);
        let us = wall_us - i64::from(off) * M;
        Ok(us as f64 / 1e6)
    }

    // -- the datetime API's exact microsecond arithmetic --------------------------------------

    /// `_add_us` (`d_us > 0`): the earliest `u >= t` with `d` of open time in `[t, u)`.
    pub fn add_us(&self, t_us: i64, d_us: i64) -> R<i64> {
        if self.always {
            return t_us
                .checked_add(d_us)
                .ok_or_else(|| CalError::Invalid("instant out of range".into()));
        }
        let mut tab = self.table_for(t_us as f64 / 1e6)?;
        loop {
            let target = tab
                .f_us(t_us)
                .checked_add(d_us)
                .ok_or_else(|| CalError::Invalid("duration out of range".into()))?;
            let j = bisect_left(&tab.cend, &(target as f64 / 1e6));
            if j < tab.o.len() {
                return Ok((tab.o[j] as i64) * M + target - (tab.cum[j] as i64) * M);
            }
            let tf = t_us as f64 / 1e6;
            let since = match tab.c.last() {
                Some(&c) => tf.max(c),
                None => tf,
            };
            tab = self.grow_forward(tab, since)?;
        }
    }

    /// `_sub_us` (`d_us > 0`).
    pub fn subtract_us(&self, t_us: i64, d_us: i64) -> R<i64> {
        if self.always {
            return t_us
                .checked_sub(d_us)
                .ok_or_else(|| CalError::Invalid("instant out of range".into()));
        }
        let mut tab = self.table_for(t_us as f64 / 1e6)?;
        loop {
            let target = tab
                .f_us(t_us)
                .checked_sub(d_us)
                .ok_or_else(|| CalError::Invalid("duration out of range".into()))?;
            let j = bisect_right(&tab.cum, &(target as f64 / 1e6)) as isize - 1;
            if j >= 0 {
                let j = j as usize;
                return Ok((tab.o[j] as i64) * M + target - (tab.cum[j] as i64) * M);
            }
            let since = tab.o.first().copied().unwrap_or(t_us as f64 / 1e6);
            tab = self.grow_back(tab, since)?;
        }
    }

    /// `elapsed(a, b)` of the datetime API, in microseconds.
    pub fn elapsed_us(&self, a_us: i64, b_us: i64) -> R<i64> {
        if self.always {
            return b_us
                .checked_sub(a_us)
                .ok_or_else(|| CalError::Invalid("interval out of range".into()));
        }
        let (ta, tb) = (a_us as f64 / 1e6, b_us as f64 / 1e6);
        let (lo, hi) = (ta.min(tb) - 1.0, ta.max(tb) + 1.0);
        let mut tab = self.current();
        if !(tab.qlo <= lo && hi < tab.qhi) {
            self.cover(lo)?;
            tab = self.cover(hi)?;
        }
        Ok(tab.f_us(b_us) - tab.f_us(a_us))
    }

    // -- the agreed infallible forms --------------------------------------------------------------

    /// `add_s`; `None` where the reference raises.
    pub fn add(&self, start: f64, business_secs: f64) -> Option<f64> {
        self.try_add(start, business_secs).ok()
    }

    /// `elapsed_s`; NaN where the reference raises (use [`Calendar::try_elapsed`] to know why).
    pub fn elapsed(&self, a: f64, b: f64) -> f64 {
        self.try_elapsed(a, b).unwrap_or(f64::NAN)
    }

    /// `is_open_s`; false where the reference raises.
    pub fn is_open(&self, t: f64) -> bool {
        self.try_is_open(t).unwrap_or(false)
    }

    /// `next_open_s`; `None` where the reference raises.
    pub fn next_open(&self, t: f64) -> Option<f64> {
        self.try_next_open(t).ok()
    }

    /// `add_days_s`; `None` where the reference raises.
    pub fn add_days(&self, t: f64, n: i64) -> Option<f64> {
        self.try_add_days(t, n).ok()
    }
}

// -- Python ---------------------------------------------------------------------------------------

/// Years from `lower_calendar.year_data(cal, year)`.
pub struct PySource {
    func: Py<PyAny>,
}

/// A [`YearData`] from the tuple `lower_calendar.year_data` returns.
pub fn year_from_py(d: &Bound<'_, PyAny>) -> PyResult<YearData> {
    Ok(YearData {
        intervals: d.get_item(0)?.extract()?,
        days: d.get_item(1)?.extract()?,
        start: d.get_item(2)?.extract()?,
        start2: d.get_item(3)?.extract()?,
        next_start: d.get_item(4)?.extract()?,
        offset0: d.get_item(5)?.extract()?,
        transitions: d.get_item(6)?.extract()?,
    })
}

impl YearSource for PySource {
    fn year(&self, year: i32) -> R<YearData> {
        Python::with_gil(|py| {
            self.func
                .bind(py)
                .call1((year,))
                .and_then(|d| year_from_py(&d))
                .map_err(|e| CalError::Source(e.to_string()))
        })
    }
}

impl Calendar {
    /// The calendar of `lower_calendar.lower_calendar(cal)`: `{"always": bool, "timezone": str,
    /// "years": {year: data}, "year": callable(year) -> data}`.
    pub fn from_py(d: &Bound<'_, PyAny>) -> PyResult<Calendar> {
        let always: bool = d.get_item("always")?.extract()?;
        let func = d.get_item("year")?.unbind();
        let cal = Calendar::new(always, Box::new(PySource { func }));
        let mut seed = Vec::new();
        for item in d.get_item("years")?.call_method0("items")?.try_iter()? {
            let item = item?;
            let y: i32 = item.get_item(0)?.extract()?;
            seed.push((y, year_from_py(&item.get_item(1)?)?));
        }
        cal.seed(seed);
        Ok(cal)
    }
}

/// The core's calendar for Python (tests, and the engine half's use through `from_py`).
#[pyclass(module = "carepath_core", name = "_Calendar", frozen)]
pub struct PyCalendar {
    pub cal: Calendar,
}

fn raise(py: Python<'_>, e: CalError) -> PyErr {
    match e {
        CalError::NoOpenTime(m) => match py
            .import("carepath.errors")
            .and_then(|m2| m2.getattr("NoOpenTime"))
            .and_then(|cls| cls.call1((m.clone(),)))
        {
            Ok(exc) => PyErr::from_value(exc),
            Err(err) => err,
        },
        CalError::Invalid(m) | CalError::Source(m) => PyValueError::new_err(m),
    }
}

#[pymethods]
impl PyCalendar {
    #[new]
    fn new(lowered: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(PyCalendar {
            cal: Calendar::from_py(lowered)?,
        })
    }
    fn add_s(&self, py: Python<'_>, t: f64, seconds: f64) -> PyResult<f64> {
        self.cal.try_add(t, seconds).map_err(|e| raise(py, e))
    }
    fn subtract_s(&self, py: Python<'_>, t: f64, seconds: f64) -> PyResult<f64> {
        self.cal.try_subtract(t, seconds).map_err(|e| raise(py, e))
    }
    fn elapsed_s(&self, py: Python<'_>, a: f64, b: f64) -> PyResult<f64> {
        self.cal.try_elapsed(a, b).map_err(|e| raise(py, e))
    }
    fn is_open_s(&self, py: Python<'_>, t: f64) -> PyResult<bool> {
        self.cal.try_is_open(t).map_err(|e| raise(py, e))
    }
    fn next_open_s(&self, py: Python<'_>, t: f64) -> PyResult<f64> {
        self.cal.try_next_open(t).map_err(|e| raise(py, e))
    }
    fn add_days_s(&self, py: Python<'_>, t: f64, n: i64) -> PyResult<f64> {
        self.cal.try_add_days(t, n).map_err(|e| raise(py, e))
    }
    fn _wall_days_s(&self, py: Python<'_>, t: f64, n: i64) -> PyResult<f64> {
        self.cal.try_wall_days(t, n).map_err(|e| raise(py, e))
    }
    fn _add_us(&self, py: Python<'_>, t_us: i64, d_us: i64) -> PyResult<i64> {
        self.cal.add_us(t_us, d_us).map_err(|e| raise(py, e))
    }
    fn _sub_us(&self, py: Python<'_>, t_us: i64, d_us: i64) -> PyResult<i64> {
        self.cal.subtract_us(t_us, d_us).map_err(|e| raise(py, e))
    }
    fn _elapsed_us(&self, py: Python<'_>, a_us: i64, b_us: i64) -> PyResult<i64> {
        self.cal.elapsed_us(a_us, b_us).map_err(|e| raise(py, e))
    }
}

/// `_calendar_add(lowered, t, seconds)` and friends: one-shot forms for tests.
#[pyfunction]
fn _calendar_add(
    py: Python<'_>,
    lowered: &Bound<'_, PyAny>,
    t: f64,
    seconds: f64,
) -> PyResult<f64> {
    let cal = Calendar::from_py(lowered)?;
    cal.try_add(t, seconds).map_err(|e| raise(py, e))
}

#[pyfunction]
fn _calendar_elapsed(py: Python<'_>, lowered: &Bound<'_, PyAny>, a: f64, b: f64) -> PyResult<f64> {
    let cal = Calendar::from_py(lowered)?;
    cal.try_elapsed(a, b).map_err(|e| raise(py, e))
}

/// Register the calendar's Python surface.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyCalendar>()?;
    m.add_function(wrap_pyfunction!(_calendar_add, m)?)?;
    m.add_function(wrap_pyfunction!(_calendar_elapsed, m)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mon–Fri 09:00–17:00 UTC, no holidays, as the reference would materialise it.
    struct Weekdays;
    impl YearSource for Weekdays {
        fn year(&self, year: i32) -> R<YearData> {
            let first = crate::value::ymd_to_ordinal(i64::from(year), 1, 1).unwrap();
            let next = crate::value::ymd_to_ordinal(i64::from(year) + 1, 1, 1).unwrap();
            let mut d = YearData {
                start: ((first - EPOCH_ORDINAL) * 86400) as f64,
                next_start: ((next - EPOCH_ORDINAL) * 86400) as f64,
                ..YearData::default()
            };
            d.start2 = d.start + 2.0 * 86400.0;
            for n in first..next {
                if (n - 1) % 7 < 5 {
                    let mid = ((n - EPOCH_ORDINAL) * 86400) as f64;
                    d.intervals.push((mid + 9.0 * 3600.0, mid + 17.0 * 3600.0));
                    d.days.push(n);
                }
            }
            Ok(d)
        }
    }

    /// Open only in 2026.
    struct OneYear;
    impl YearSource for OneYear {
        fn year(&self, year: i32) -> R<YearData> {
            let mut d = Weekdays.year(year)?;
            if year != 2026 {
                d.intervals.clear();
                d.days.clear();
            }
            Ok(d)
        }
    }

    const MON_2026_03_02: f64 = 1_772_409_600.0;

    #[test]
    fn add_lands_on_the_close() {
        let cal = Calendar::new(false, Box::new(Weekdays));
        let nine = MON_2026_03_02 + 9.0 * 3600.0;
        assert_eq!(cal.add(nine, 8.0 * 3600.0), Some(nine + 8.0 * 3600.0));
        assert_eq!(
            cal.add(nine, 8.0 * 3600.0 + 1.0),
            Some(nine + 86400.0 + 1.0)
        );
        // Friday 16:00 + 2h = Monday 10:00
        let fri = nine + 4.0 * 86400.0 + 7.0 * 3600.0;
        assert_eq!(cal.add(fri, 7200.0), Some(nine + 7.0 * 86400.0 + 3600.0));
    }

    #[test]
    fn elapsed_next_open_is_open() {
        let cal = Calendar::new(false, Box::new(Weekdays));
        let nine = MON_2026_03_02 + 9.0 * 3600.0;
        assert_eq!(cal.elapsed(nine, nine + 7.0 * 86400.0), 5.0 * 8.0 * 3600.0);
        assert_eq!(cal.elapsed(nine + 7.0 * 86400.0, nine), -5.0 * 8.0 * 3600.0);
        assert!(cal.is_open(nine));
        assert!(!cal.is_open(nine + 8.0 * 3600.0));
        assert_eq!(cal.next_open(nine + 8.0 * 3600.0), Some(nine + 86400.0));
        assert_eq!(cal.next_open(nine + 0.5), Some(nine + 0.5));
        // across the new year, both ways
        let a = nine - 70.0 * 86400.0;
        assert_eq!(cal.try_subtract(cal.add(a, 1e6).unwrap(), 1e6), Ok(a));
        assert_eq!(cal.add_us(9 * 3600 * M, 3600 * M), Ok(10 * 3600 * M));
        assert_eq!(cal.elapsed_us(0, 86400 * 7 * M), Ok(5 * 8 * 3600 * M));
    }

    #[test]
    fn add_days_counts_open_dates() {
        let cal = Calendar::new(false, Box::new(Weekdays));
        let fri = MON_2026_03_02 + 4.0 * 86400.0 + 10.0 * 3600.0;
        assert_eq!(cal.add_days(fri, 1), Some(fri + 3.0 * 86400.0));
        assert_eq!(cal.add_days(fri, -5), Some(fri - 7.0 * 86400.0));
    }

    #[test]
    fn no_open_time_is_an_error_not_a_hang() {
        let cal = Calendar::new(false, Box::new(OneYear));
        let t = MON_2026_03_02;
        assert!(cal.add(t, 1e9).is_none());
        assert!(matches!(cal.try_add(t, 1e9), Err(CalError::NoOpenTime(_))));
        assert!(matches!(
            cal.try_next_open(t + 400.0 * 86400.0),
            Err(CalError::NoOpenTime(_))
        ));
        assert!(matches!(
            cal.try_is_open(f64::NAN),
            Err(CalError::Invalid(_))
        ));
        assert!(matches!(cal.try_is_open(1e18), Err(CalError::Invalid(_))));
        assert!(matches!(
            cal.try_is_open(253_402_000_000.0),
            Err(CalError::NoOpenTime(_))
        ));
    }

    /// Daily 22:00–02:00 UTC (an interval crossing midnight touches the next one's start).
    struct Nights;
    impl YearSource for Nights {
        fn year(&self, year: i32) -> R<YearData> {
            let mut d = Weekdays.year(year)?;
            let first = crate::value::ymd_to_ordinal(i64::from(year), 1, 1).unwrap();
            let next = crate::value::ymd_to_ordinal(i64::from(year) + 1, 1, 1).unwrap();
            d.intervals.clear();
            d.days.clear();
            for n in first..next {
                let mid = ((n - EPOCH_ORDINAL) * 86400) as f64;
                d.intervals.push((mid, mid + 2.0 * 3600.0));
                d.intervals.push((mid + 22.0 * 3600.0, mid + 26.0 * 3600.0));
                d.days.push(n);
            }
            Ok(d)
        }
    }

    #[test]
    fn touching_intervals_merge_and_subtract_lands_on_an_opening() {
        let cal = Calendar::new(false, Box::new(Nights));
        let ten_pm = MON_2026_03_02 + 22.0 * 3600.0;
        // 22:00 + 4h = 02:00 next day, one merged interval (no stop at midnight)
        assert_eq!(cal.add(ten_pm, 4.0 * 3600.0), Some(ten_pm + 4.0 * 3600.0));
        assert!(cal.is_open(ten_pm + 2.0 * 3600.0));
        // back 4h from 02:00 lands on the 22:00 opening, and 5h on 21:00 of the day before
        assert_eq!(
            cal.try_subtract(ten_pm + 4.0 * 3600.0, 4.0 * 3600.0),
            Ok(ten_pm)
        );
        assert_eq!(
            cal.try_subtract(ten_pm + 4.0 * 3600.0, 5.0 * 3600.0),
            Ok(ten_pm - 86400.0 + 3.0 * 3600.0)
        );
        // the µs API is exact where floats are not
        let t = (MON_2026_03_02 as i64 + 23 * 3600) * M + 1;
        assert_eq!(
            cal.add_us(t, 3 * 3600 * M),
            Ok(t + 3 * 3600 * M + 20 * 3600 * M)
        );
        assert_eq!(cal.elapsed_us(t, t + 86400 * M), Ok(4 * 3600 * M));
    }

    /// UTC+1, +2 from 2026-03-29 01:00 UTC to 2026-10-25 01:00 UTC (Europe/Berlin), 24x7.
    struct Berlin;
    impl YearSource for Berlin {
        fn year(&self, year: i32) -> R<YearData> {
            let mut d = Weekdays.year(year)?;
            d.intervals.clear();
            d.days.clear();
            d.offset0 = 3600;
            if year == 2026 {
                d.transitions = vec![(1_774_746_000.0, 3600, 7200), (1_792_890_000.0, 7200, 3600)];
            }
            Ok(d)
        }
    }

    #[test]
    fn wall_times_follow_pep_495() {
        let cal = Calendar::new(true, Box::new(Berlin));
        // Sat 28 Mar 02:30 CET + 1 day = Sun 29 Mar 02:30, which does not exist: fold=0 reads it
        // with the offset before (+1), i.e. 03:30 CEST
        let sat = 1_774_661_400.0; // 2026-03-28T01:30:00Z = 02:30 CET
        assert_eq!(cal.add_days(sat, 1), Some(sat + 86400.0));
        // 2026-10-25 00:30Z is 02:30 CEST (fold=0), 01:30Z is 02:30 CET (fold=1): a day later
        // each keeps its own reading of the wall time, both now unambiguous at +1
        let first = 1_792_888_200.0;
        let second = first + 3600.0;
        assert_eq!(cal.add_days(first, 1), Some(first + 86400.0 + 3600.0));
        assert_eq!(cal.add_days(second, 1), Some(second + 86400.0));
        // and back: 02:30 on the 26th has fold=0, so the repeated 02:30 reads as its first
        assert_eq!(cal.add_days(second + 86400.0, -1), Some(first));
    }

    #[test]
    fn iso_and_rounding() {
        assert_eq!(iso_utc(0.0), "1970-01-01T00:00:00+00:00");
        assert_eq!(iso_utc(1.5), "1970-01-01T00:00:01.500000+00:00");
        assert_eq!(timestamp_us(-0.5), -500_000);
    }
}
