"""The samples behind every metric, extracted once from a :class:`~carepath.drivers.replay.Replay`.

Each metric keeps its samples in time order with the local date they count on (an event by its
``at``, a clock cycle by the instant it stopped, a case for ``fcr``/``reopen_rate`` by its first
``case.solved``) and the case's values then, so a window is two bisections and a filter one pass.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from carepath._instants import per_quarter_hour, zone
from carepath._native.raw import case_values, ctx_key
from carepath.drivers.cycles import Ctx
from carepath.errors import MetricError
from carepath.metrics.series import GROUPS, Series, Where
from carepath.metrics.stats import stat as _stat
from carepath.metrics.stats import summary
from carepath.metrics.targets import KIND, TIME_METRIC_CLOCK

if TYPE_CHECKING:
    from carepath.compile.ir import Playbook
    from carepath.drivers.replay import Replay
    from carepath.events import Event
    from carepath.state import CaseState

__all__ = [
    "CONVENTIONAL_EVENTS",
    "GROUPS",
    "Collector",
    "Measure",
    "MetricError",
    "Metrics",
    "Series",
]

#: The conventional event types the built-in metrics read (renamed under ``metrics.events``).
CONVENTIONAL_EVENTS = (
    "survey.answered",
    "agent.replied",
    "case.solved",
    "case.reopened",
    "contact.handled",
    "order.placed",
    "order.returned",
    "complaint.filed",
    "case.opened",
)
_SURVEY_RANGE = {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}


@dataclass(frozen=True)
class Measure:
    """A metric's value over some samples: ``value`` (None only without samples), ``samples``,
    and for time metrics the ``stats`` (mean, median, p90, p95)."""

    value: float | None
    samples: int
    stats: Mapping[str, float | int | None] | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.stats is not None:
            return dict(self.stats)
        return {"value": self.value, "samples": self.samples}


@dataclass
class _Custom:
    kind: str
    num: Series = field(default_factory=Series)
    den: Series = field(default_factory=Series)


#: A custom metric's rule for one event type: ``(metric, when, value, counts in the numerator,
#: counts in the denominator, over_when, reads the case, reads the event)``.
_Rule = tuple[str, Any, Any, bool, bool, Any, bool, bool]


class _TypePlan(NamedTuple):
    """What the collector does with an event of one type (:meth:`Collector._plan_of`): whether
    its samples group by the case's values, which conventional metrics it feeds (``solve``: 1 a
    reply, 2 a solve, 3 a reopening, 0 none) and the custom metrics' rules."""

    ctx: bool
    survey: bool
    solve: int
    handled: bool
    order: bool
    returned: bool
    complaint: bool
    opened: bool
    rules: tuple[_Rule, ...]
    rules_read_case: bool
    rules_read_event: bool
    event_keys: frozenset[str] | None
    """The keys of the event's view the rules read (None: they may read any)."""


def _of_event(name: str) -> bool:
    """Whether an expression's dotted ``name`` reads the event (else a case field or a special)."""
    return name == "event" or name.startswith("event.")


def _reads(*exprs: Any) -> tuple[bool, bool]:
    """``(reads the case, reads the event)``: whether the compiled expressions name a case field
    or a special (or read ``now``), and whether they name the event."""
    case = event = False
    for expr in exprs:
        if expr is None:
            continue
        if getattr(expr, "uses_now", False):
            case = True
        for n in getattr(expr, "names", ()):
            if _of_event(n):
                event = True
            else:
                case = True
    return case, event


def _event_keys(exprs: Iterable[Any]) -> frozenset[str] | None:
    """The keys of the event's view that compiled expressions read: an ``event.a.b`` name reads
    the view's ``a`` (the compiler reads the view by ``E.get(key)``, or by its first key for a
    dotted one); None when one reads the event as a whole."""
    keys: set[str] = set()
    for expr in exprs:
        for n in getattr(expr, "names", ()) if expr is not None else ():
            if n == "event" or (_of_event(n) and not n[len("event.") :]):
                return None
            if _of_event(n):
                keys.add(n[len("event.") :].split(".")[0])
    return frozenset(keys)


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int | float | Decimal):
        f = float(v)
        return f if math.isfinite(f) else None
    if hasattr(v, "total_seconds"):
        return float(v.total_seconds())
    return None


#: The keys of an event's view that are the event's own, whatever its data holds.
_EVENT_ATTRS = frozenset({"type", "at", "case", "id"})
_ABSENT = object()


class _DayCache:
    """POSIX seconds → local date ordinal (cached per quarter hour: UTC offsets are multiples of 15 min)."""

    def __init__(self, tz_name: str) -> None:
        self.tz = zone(tz_name)
        self.cache: dict[int, int] = {}

    def __call__(self, t: float) -> int:
        k = int(t // 900)
        d = self.cache.get(k)
        if d is None:
            d = self.cache[k] = self._of(k)
        return d

    def _of(self, k: int) -> int:
        return datetime.fromtimestamp(k * 900, self.tz).toordinal()

    def many(self, ts: Sequence[float]) -> list[int]:
        """``[self(t) for t in ts]``, without a call per instant (:func:`per_quarter_hour`)."""
        return per_quarter_hour(ts, self._of, self.cache)


class Collector:
    """The samples of the event-based metrics, taken from replayed events as they go.

    Hand one to a replay as its ``sink`` (:func:`~carepath.drivers.replay.replay`,
    :func:`~carepath.drivers.replay.replay_log`); :class:`Metrics` reads it from the replay's ``facts``. A
    replay that kept its events and had none is collected afterwards (:meth:`from_replay`), with
    the same result: the collector sees the same events, case identities and states either way.

    >>> col = Collector(playbook)                                       # doctest: +SKIP
    >>> Metrics(replay(playbook, events, sink=col, keep_events=False))  # doctest: +SKIP
    """

    def __init__(self, playbook: Playbook) -> None:
        self.playbook = playbook
        self.day = _DayCache(playbook.timezone)
        self.series: dict[str, Series] = {k: Series() for k in ("csat", "nps", "ces", "aht")}
        self.orders = Series()  # values: customer
        self.returns = Series()
        self.complaints = Series()
        self.contacts: list[float] = []  # instants of case.opened events
        self.custom: dict[str, _Custom] = {}
        #: per case: [agent replies before the first solve, first solve instant or None, ctx, reopened]
        self.cases: dict[str, list[Any]] = {}
        self._ctx: dict[tuple[Any, ...], Ctx] = {}  # one Ctx object per distinct value (memory)
        self._last_state: CaseState | None = None  # the last state ctx_of read, and its values
        self._last_ctx: Ctx | None = None
        rename = dict(playbook.spec.metrics.events)
        name = {conv: rename.get(conv, conv) for conv in CONVENTIONAL_EVENTS}
        self._custom_by_type = self._compile_custom()
        self._names = name
        self.types: frozenset[str] = frozenset({*name.values(), *self._custom_by_type})
        """The event types the metrics read (a replay hands only these over)."""
        #: the types whose samples group by the case's values (replies, reopenings and openings
        #: are counted without them)
        self._ctx_types = frozenset(
            {
                *(
                    name[t]
                    for t in (
                        "survey.answered",
                        "case.solved",
                        "contact.handled",
                        "order.placed",
                        "order.returned",
                        "complaint.filed",
                    )
                ),
                *self._custom_by_type,
            }
        )
        self.case_fields: frozenset[str] = frozenset({"channel", *self._fields_read()})
        """The case fields the metrics read of a case's ``data``: ``channel`` (a grouping key) and
        those the custom metrics' expressions name (a replay keeps only these of an ended case)."""
        self._plan = {t: self._plan_of(t) for t in self.types}
        self.caseless_together: frozenset[str] = frozenset(
            name[t] for t in ("agent.replied", "case.solved", "case.reopened")
        )
        """The types whose events without a case this collector keeps under one key (``fcr``,
        ``reopen_rate``): a sharded replay hands them all to one collector
        (:func:`~carepath.drivers.shard.caseless_together`)."""

    @classmethod
    def from_replay(cls, rp: Replay) -> Collector:
        """Collect from a replay that kept its events (or a store view, which has none)."""
        if not rp.kept:
            raise MetricError(
                "this replay kept no events and had no collector: pass sink=Collector(playbook)"
            )
        col = cls(rp.playbook)
        types = col.types
        for e, cid, st in zip(rp.events, rp.case_ids, rp.after, strict=True):
            if e.type in types:
                col(e, cid, st)
        return col

    def export(self) -> dict[str, Any]:
        """What this collector saw, as plain data (to send from a worker process)."""
        return {
            "series": self.series,
            "orders": self.orders,
            "returns": self.returns,
            "complaints": self.complaints,
            "contacts": self.contacts,
            "custom": {k: (c.num, c.den) for k, c in self.custom.items()},
            "cases": self.cases,
        }

    def merge(self, parts: list[dict[str, Any]]) -> None:
        """Take what collectors over disjoint sets of cases saw (:meth:`export`), as if this
        collector had seen every event: samples in day order (within a day in the order of the
        parts: no metric depends on it — every aggregate is a count, an exact ``fsum``, a sorted
        statistic or a sum of whole numbers), contacts in time order, cases together."""

        def series(get: Callable[[dict[str, Any]], Series]) -> Series:
            out = Series()
            for part in parts:
                s = get(part)
                out.days += s.days
                out.ctxs += s.ctxs
                out.values += s.values
            out.sort()
            return out

        for name in self.series:
            self.series[name] = series(lambda p, n=name: p["series"][n])  # type: ignore[misc]
        self.orders = series(lambda p: p["orders"])
        self.returns = series(lambda p: p["returns"])
        self.complaints = series(lambda p: p["complaints"])
        self.contacts = sorted(t for part in parts for t in part["contacts"])
        for cname, c in self.custom.items():
            c.num = series(lambda p, n=cname: p["custom"][n][0])  # type: ignore[misc]
            c.den = series(lambda p, n=cname: p["custom"][n][1])  # type: ignore[misc]
        for part in parts:
            self.cases.update(part["cases"])

    @staticmethod
    def without(whole: dict[str, Any], part: dict[str, Any]) -> dict[str, Any] | None:
        """What a collector saw (``whole``, an :meth:`export`) without what another one saw of
        some of the same cases (``part``), as an export; None when ``part`` is not contained in
        ``whole``. A sample is taken out wherever it sits within its day: no metric depends on
        the order within a day (see :meth:`merge`)."""

        series: dict[str, Series | None] = {
            name: s.without(part["series"][name]) for name, s in whole["series"].items()
        }
        plain = {n: whole[n].without(part[n]) for n in ("orders", "returns", "complaints")}
        custom = {
            name: (num.without(part["custom"][name][0]), den.without(part["custom"][name][1]))
            for name, (num, den) in whole["custom"].items()
        }
        if None in series.values() or None in plain.values():
            return None
        if any(None in pair for pair in custom.values()):
            return None
        out: dict[str, Any] = {"series": series, "custom": custom, **plain}
        gone_t = Counter(part["contacts"])
        contacts = []
        for t in whole["contacts"]:
            if gone_t.get(t):
                gone_t[t] -= 1
            else:
                contacts.append(t)
        if +gone_t or not part["cases"].keys() <= whole["cases"].keys():
            return None
        out["contacts"] = contacts
        out["cases"] = {k: v for k, v in whole["cases"].items() if k not in part["cases"]}
        return out

    def ctx_of(self, st: CaseState) -> Ctx:
        """The grouping values of ``st``, one :class:`Ctx` object per distinct value. The last
        state's are kept: a replay asks for those of the state its clock facts and this
        collector's samples of the same event share (:class:`~carepath.drivers.replay.FactSink`).
        States are immutable, so a state's values are those it was asked for before."""
        if st is self._last_state:
            return self._last_ctx  # type: ignore[return-value]
        k = ctx_key(st)
        c = self._ctx.get(k)
        if c is None:
            segment, ch, tier, stage = k
            c = self._ctx[k] = Ctx(segment, None if ch is None else str(ch), tier, stage)
        self._last_state, self._last_ctx = st, c
        return c

    def _plan_of(self, et: str) -> _TypePlan:
        """What an event of type ``et`` adds (see :class:`_TypePlan`), decided once per type."""
        name = self._names
        reply, solved, reopened = name["agent.replied"], name["case.solved"], name["case.reopened"]
        rules = tuple(
            (cname, when, value, as_num, as_den, den_when, *_reads(when, value, den_when))
            for cname, when, value, as_num, as_den, den_when in self._custom_by_type.get(et, ())
        )
        return _TypePlan(
            et in self._ctx_types,
            et == name["survey.answered"],
            1 if et == reply else 2 if et == solved else 3 if et == reopened else 0,
            et == name["contact.handled"],
            et == name["order.placed"],
            et == name["order.returned"],
            et == name["complaint.filed"],
            et == name["case.opened"],
            rules,
            any(r[6] for r in rules),
            any(r[7] for r in rules),
            _event_keys(x for r in rules for x in (r[1], r[2], r[5])),
        )

    def __call__(self, event: Event, case: str | None, state: CaseState | None) -> None:  # noqa: C901 - the per-event collector: one branch per conventional event type, kept inline for speed
        """Take one replayed event, its case identity and the case's state after it."""
        e, cid, st = event, case, state
        plan = self._plan.get(e.type)
        if plan is None:
            return
        ts = e._ts
        ctx = None if st is None or not plan.ctx else self.ctx_of(st)
        data = e.data
        day = self.day
        if plan.survey:
            kind = data.get("survey")
            score = _number(data.get("score"))
            rng = _SURVEY_RANGE.get(kind) if isinstance(kind, str) else None
            if rng is not None and score is not None and rng[0] <= score <= rng[1]:
                d = day(ts)
                if kind == "csat":
                    self.series["csat"].add(d, ctx, 1.0 if score >= 4 else 0.0)
                elif kind == "nps":
                    self.series["nps"].add(
                        d, ctx, 100.0 if score >= 9 else (-100.0 if score <= 6 else 0.0)
                    )
                else:
                    self.series["ces"].add(d, ctx, score)
        solve = plan.solve
        if solve:
            key = cid or f"?{e.case}"
            rec = self.cases.get(key)
            if rec is None:
                rec = self.cases[key] = [0, None, None, False]
            if solve == 1:  # a reply
                if rec[1] is None:
                    rec[0] += 1
            elif solve == 2:  # a solve
                if rec[1] is None:
                    rec[1], rec[2] = ts, ctx
            elif rec[1] is not None:  # a reopening
                rec[3] = True
        if plan.handled:
            v = _number(data.get("duration"))
            if v is not None and v >= 0:
                self.series["aht"].add(day(ts), ctx, v)
        if plan.order:
            cust = data.get("customer")
            self.orders.add(day(ts), ctx, str(cust) if cust is not None else (e.case or e.id))
        if plan.returned:
            self.returns.add(day(ts), ctx, 1)
        if plan.complaint:
            self.complaints.add(day(ts), ctx, 1)
        if plan.opened:
            self.contacts.append(ts)
        if plan.rules:
            self._custom_event(plan, e, st, ctx)

    def _fields_read(self) -> set[str]:
        """The case fields the custom metrics' expressions read: every name they use that is not
        the event's, and each of its dotted prefixes (``customer.tier`` is one field, or a
        ``customer`` field's member)."""
        out: set[str] = set()
        for rules in self._custom_by_type.values():
            for _cname, when, value, _num, _den, den_when in rules:
                for expr in (when, value, den_when):
                    for name in getattr(expr, "names", ()):
                        if _of_event(name):
                            continue
                        parts = name.split(".")
                        out.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
        return out

    def _compile_custom(self) -> dict[str, list[tuple[str, Any, Any, bool, bool, Any]]]:
        from carepath.errors import ExpressionError
        from carepath.expr.compiler import compile_expr
        from carepath.expr.types import BOOL, STRING, FieldType, TypeEnv

        pb = self.playbook
        spec = pb.spec
        specials: dict[str, FieldType] = {
            "stage": FieldType("enum", tuple(pb.stages)),
            "segment": FieldType("enum", tuple(spec.segments)) if spec.segments else STRING,
            "segments": FieldType(
                "list", (), FieldType("enum", tuple(spec.segments)) if spec.segments else STRING
            ),
            "tier": FieldType("enum", tuple(pb.tiers)) if pb.tiers else STRING,
        }
        if "channel" not in pb.fields and pb.channels:
            specials["channel"] = FieldType("enum", tuple(pb.channels))

        def env(et: str) -> TypeEnv:
            decl = pb.events.get(et)
            payload = None if decl is None else {k: v[0] for k, v in decl.items()}
            return TypeEnv(fields=pb.fields, event=payload, specials=specials)

        def comp(src: Any, et: str, what: str, want: Any = BOOL) -> Any:
            if src is None or src is True:
                return None
            try:
                return compile_expr(src, env(et), want=want)
            except ExpressionError as exc:
                raise MetricError(f"metrics.custom.{what}: {exc}") from None

        out: dict[str, list[tuple[str, Any, Any, bool, bool, Any]]] = {}
        for cname, cm in spec.metrics.custom.items():
            self.custom[cname] = _Custom(cm.type)
            when = comp(cm.when, cm.event, f"{cname}.when")
            value = (
                comp(cm.value, cm.event, f"{cname}.value", want=None) if cm.type == "mean" else None
            )
            if cm.type == "mean" and value is None:
                raise MetricError(
                    f"metrics.custom.{cname}: a mean needs `value` (an expression such as =event.amount)"
                )
            if cm.type == "ratio":
                over = cm.over or cm.event
                den_when = comp(cm.over_when, over, f"{cname}.over_when")
                if over == cm.event:
                    out.setdefault(cm.event, []).append((cname, when, None, True, True, den_when))
                else:
                    out.setdefault(cm.event, []).append((cname, when, None, True, False, None))
                    out.setdefault(over, []).append((cname, None, None, False, True, den_when))
            else:
                out.setdefault(cm.event, []).append((cname, when, value, True, False, None))
        return out

    def _custom_event(
        self, plan: _TypePlan, e: Event, st: CaseState | None, ctx: Ctx | None
    ) -> None:
        """The custom metrics' samples of one event: the case's values, the event's view and the
        specials are built once for all its rules, and only when an expression reads them."""
        fields: Mapping[str, Any] = {}
        scope: dict[str, Any] = {}
        view: dict[str, Any] = {}
        if st is not None and plan.rules_read_case:
            values = case_values(st)
            fields = values[0] or {}
            if ctx is not None:
                scope = {
                    "stage": ctx.stage,
                    "segment": ctx.segment,
                    "tier": ctx.tier,
                    "channel": ctx.channel,
                    "segments": list(values[3]),
                }
        if plan.rules_read_event:
            view = self._event_view(e, plan.event_keys)
        d = self.day(e._ts)
        for cname, when, value, as_num, as_den, den_when, _case, _event in plan.rules:
            c = self.custom[cname]
            if as_den and (den_when is None or den_when(fields, view, scope) is True):
                c.den.add(d, ctx, 1)
            if as_num and (when is None or when(fields, view, scope) is True):
                if c.kind == "mean":
                    v = _number(value(fields, view, scope))
                    if v is not None:
                        c.num.add(d, ctx, v)
                else:
                    c.num.add(d, ctx, 1)

    def _event_view(self, e: Event, keys: frozenset[str] | None = None) -> dict[str, Any]:
        """The event as expressions read it: its data, each declared field's default where the
        data has none, and ``type``, ``at``, ``case``, ``id``. With ``keys``, only those keys
        (what the rules read; the rest is not built)."""
        decl = self.playbook.events.get(e.type)
        if keys is not None:
            data = e.data
            narrow: dict[str, Any] = {}
            for k in keys:
                if k in _EVENT_ATTRS:
                    narrow[k] = getattr(e, k)
                    continue
                v = data.get(k, _ABSENT)
                if (v is None or v is _ABSENT) and decl and k in decl:
                    v = decl[k][1]
                if v is not _ABSENT:
                    narrow[k] = v
            return narrow
        view: dict[str, Any] = dict(e.data)
        if decl:
            for k, (_ft, default, _req) in decl.items():
                if view.get(k) is None:
                    view[k] = default
        view.update(type=e.type, at=e.at, case=e.case, id=e.id)
        return view


#: The metrics of the collector's own samples (no clock cycle, no case behind them).
_OWN_SERIES = frozenset({"csat", "nps", "ces", "aht"})


class Metrics:
    """Every metric of a replay: ``measure(name, …)``, ``group(name, by, …)``.

    >>> m = Metrics(replay(playbook, events))                       # doctest: +SKIP
    >>> m.measure("csat", first=date(2027, 2, 1), last=date(2027, 2, 28), where={"segment": "vip"})  # doctest: +SKIP
    """

    def __init__(self, rp: Replay) -> None:
        self.replay = rp
        self.playbook: Playbook = rp.playbook
        col = (
            rp.facts
            if isinstance(rp.facts, Collector) and rp.facts.playbook is rp.playbook
            else Collector.from_replay(rp)
        )
        self.collector = col
        self.day = col.day
        self.series: dict[str, Series] = dict(col.series)
        self.clock_series: dict[
            str, tuple[Series, Series]
        ] = {}  # clock → (elapsed of finished, met 1/0)
        self.orders = col.orders
        self.returns = col.returns
        self.complaints = col.complaints
        self.cases_opened = Series()
        self.contacts = col.contacts
        self.custom = col.custom
        self._built = False  # the series of the clock cycles and the cases: see _need

    def _need(self, metric: str) -> None:
        """Build the series made of the clock cycles and of the cases (:meth:`_build`) before
        the first metric that reads them: the collector's own samples (``csat``, ``nps``,
        ``ces``, ``aht``) need none, and a part of a report that reads only those never builds
        them (:func:`carepath.report.build.build_report`, ``apart``)."""
        if not self._built and metric not in _OWN_SERIES:
            self._build()
            self._built = True  # after: a reader in another thread never sees half of them

    # -- from the collected facts and the clock records -------------------------------------------
    def _build(self) -> None:
        day = self.day
        rp = self.replay
        # by first solve (stable: ties keep the order the cases appeared in; a Ctx and None do not compare)
        solved = sorted(
            (
                (rec[1], rec[2], rec[0], rec[3])
                for rec in self.collector.cases.values()
                if rec[1] is not None
            ),
            key=lambda r: r[0],
        )
        solved_days = day.many([r[0] for r in solved])
        solved_ctxs = [r[1] for r in solved]
        self.series["fcr"] = Series(
            solved_days,
            solved_ctxs,
            [1.0 if replies == 1 and not reopened else 0.0 for _, _, replies, reopened in solved],
        )
        self.series["reopen_rate"] = Series(
            list(solved_days), list(solved_ctxs), [1.0 if r[3] else 0.0 for r in solved]
        )
        opened = rp.opened
        self.cases_opened = Series(
            day.many([o[0] for o in opened]), [o[2] for o in opened], [1] * len(opened)
        )
        self.cases_opened.sort()
        # clock cycles, column by column (list comprehensions over the fact columns: this runs
        # over every finished cycle of the log)
        facts = rp.records
        met_col = facts.met
        kept = [i for i, m in enumerate(met_col) if m >= 0]  # not cancelled
        days = day.many(facts.stopped_s)
        ctx_col, clock_col, elapsed = facts.ctx, facts.clock, facts.elapsed
        by_clock: dict[str, list[int]] = {}
        for i in kept:
            idx = by_clock.get(clock_col[i])
            if idx is None:
                idx = by_clock[clock_col[i]] = []
            idx.append(i)
        for clock, idx in by_clock.items():
            el, met = self.clock_series[clock] = (Series(), Series())
            el.days = [days[i] for i in idx]
            el.ctxs = [ctx_col[i] for i in idx]
            el.values = [elapsed[i] for i in idx]  # whole microseconds (see ClockFacts)
            met.days, met.ctxs = el.days[:], el.ctxs[:]  # each series owns its columns
            met.values = [1.0 if met_col[i] == 1 else 0.0 for i in idx]
        allmet = Series(
            [days[i] for i in kept],
            [ctx_col[i] for i in kept],
            [1.0 if met_col[i] == 1 else 0.0 for i in kept],
        )
        self.series["sla_attainment"] = allmet
        for el, met in self.clock_series.values():
            el.sort()
            met.sort()

    # -- measuring -------------------------------------------------------------------------------
    def ordinal(self, d: date | None) -> int | None:
        return None if d is None else d.toordinal()

    def kind(self, metric: str) -> str:
        """``share``, ``nps``, ``ces``, ``time``, ``count``, ``ratio``, ``mean`` (custom)."""
        if metric in KIND:
            return KIND[metric]
        if metric in self.custom:
            return self.custom[metric].kind
        raise MetricError(f"unknown metric {metric!r}")

    def names(self) -> list[str]:
        """Built-in metric names, then custom ones."""
        return [*KIND, *self.custom]

    def measure(
        self,
        metric: str,
        first: date | None = None,
        last: date | None = None,
        where: Where | None = None,
        *,
        stat: str | None = None,
        sla: str | None = None,
    ) -> Measure:
        """The metric over local dates ``first..last`` (inclusive; None = unbounded), for cases whose
        values match ``where`` (``segment``, ``channel``, ``tier``, ``stage``). Time metrics use
        ``stat`` (default median) for ``value`` and carry all four statistics in ``stats``."""
        lo, hi = self.ordinal(first), self.ordinal(last)
        return self._measure(metric, lo, hi, where, stat, sla)

    def group(
        self,
        metric: str,
        by: str,
        first: date | None = None,
        last: date | None = None,
        *,
        stat: str | None = None,
        sla: str | None = None,
    ) -> dict[str | None, Measure]:
        """The metric per value of ``by`` (one of :data:`GROUPS`)."""
        if by not in GROUPS:
            raise MetricError(f"cannot group by {by!r}; expected one of {', '.join(GROUPS)}")
        lo, hi = self.ordinal(first), self.ordinal(last)
        keys: set[str | None] = set()
        for s in self._sources(metric, sla):
            keys.update(s.groups(lo, hi, by))
        return {
            k: self._measure(metric, lo, hi, {by: k} if k is not None else None, stat, sla)
            for k in sorted(keys, key=lambda x: (x is None, x or ""))
            if k is not None
        }

    def _sources(self, metric: str, sla: str | None) -> list[Series]:
        self._need(metric)
        if metric in TIME_METRIC_CLOCK:
            pair = self.clock_series.get(sla or TIME_METRIC_CLOCK[metric])
            return [] if pair is None else [pair[0]]
        if metric == "sla_attainment":
            if sla is not None:
                pair = self.clock_series.get(sla)
                return [] if pair is None else [pair[1]]
            return [self.series["sla_attainment"]]
        if metric in self.series:
            return [self.series[metric]]
        if metric == "repeat_purchase_rate":
            return [self.orders]
        if metric == "complaint_rate":
            return [self.cases_opened]
        if metric == "return_rate":
            return [self.orders]
        if metric in self.custom:
            c = self.custom[metric]
            return [c.den if c.kind == "ratio" else c.num]
        raise MetricError(f"unknown metric {metric!r}")

    def _measure(
        self,
        metric: str,
        lo: int | None,
        hi: int | None,
        where: Where | None,
        stat: str | None,
        sla: str | None,
    ) -> Measure:
        self._need(metric)
        if metric in TIME_METRIC_CLOCK or metric == "aht":
            if metric == "aht":
                vals = self.series["aht"].select(lo, hi, where)
            else:
                pair = self.clock_series.get(sla or TIME_METRIC_CLOCK[metric])
                vals = [] if pair is None else pair[0].select(lo, hi, where)
            st: dict[str, float | int | None] = summary(vals)
            which = stat or ("mean" if metric == "aht" else "median")
            value = st[which] if which in st else _stat(vals, which)
            if metric == "aht":  # a mean duration: {value, samples} and the time statistics
                st = {"value": value, **st}
            return Measure(None if not vals else value, len(vals), st)
        if metric == "sla_attainment" or metric in self.series:
            src = self._sources(metric, sla)
            vals = src[0].select(lo, hi, where) if src else []
            return Measure(math.fsum(vals) / len(vals) if vals else None, len(vals))
        if metric == "repeat_purchase_rate":
            counts: dict[Any, int] = {}
            for cust in self.orders.select(lo, hi, where):
                counts[cust] = counts.get(cust, 0) + 1
            n = len(counts)
            return Measure(sum(1 for c in counts.values() if c >= 2) / n if n else None, n)
        if metric == "complaint_rate":
            return _ratio(
                len(self.complaints.select(lo, hi, where)),
                len(self.cases_opened.select(lo, hi, where)),
            )
        if metric == "return_rate":
            return _ratio(
                len(self.returns.select(lo, hi, where)), len(self.orders.select(lo, hi, where))
            )
        if metric in self.custom:
            c = self.custom[metric]
            if c.kind == "count":
                n = len(c.num.select(lo, hi, where))
                return Measure(float(n), n)
            if c.kind == "ratio":
                return _ratio(len(c.num.select(lo, hi, where)), len(c.den.select(lo, hi, where)))
            vals = c.num.select(lo, hi, where)
            return Measure(math.fsum(vals) / len(vals) if vals else None, len(vals))
        raise MetricError(f"unknown metric {metric!r}")

    def all_builtin(self) -> dict[str, Measure]:
        """Every built-in metric with at least one sample, over the whole log."""
        out = {}
        for name in KIND:
            m = self._measure(name, None, None, None, None, None)
            if m.samples:
                out[name] = m
        return out

    def contact_instants(self) -> list[float]:
        """Instants of ``case.opened`` events (contacts, for load and staffing)."""
        return self.contacts


def _ratio(num: int, den: int) -> Measure:
    return Measure(num / den if den else None, den)


def iter_days(first: date, last: date) -> Iterable[date]:
    """Every date from ``first`` to ``last``, inclusive."""
    for o in range(first.toordinal(), last.toordinal() + 1):
        yield date.fromordinal(o)
