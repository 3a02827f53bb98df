"""Build the care report (SPEC §6) as a JSON-ready dict from a replay.

Shares are fractions, NPS is in points, times are seconds, instants ISO 8601 with the playbook
timezone's offset. The keys of SPEC §6 (``playbook``, ``period``, ``events``, ``cases``,
``metrics``, ``slas``, ``goals``, ``load``, ``staffing``) are contracts; the others (``custom``,
``activity``, ``staffing_params``, ``series``, ``details``) feed the text and HTML renderers and the what-if;
``allocation`` (only with a roster: ``{agents: [row…], queued}``, see :mod:`carepath.report.agents`)
is the table per agent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from carepath._instants import local_hour, per_quarter_hour, to_iso, zone
from carepath.metrics import Metrics, evaluate_goals
from carepath.report.agents import agent_rows
from carepath.report.details import details
from carepath.staffing import agents_needed

if TYPE_CHECKING:
    from carepath.compile.ir import Playbook
    from carepath.drivers.replay import Replay

__all__ = ["REPORT_KEYS", "Pending", "answer_within", "build_report", "compare_reports"]

REPORT_KEYS = (
    "playbook",
    "period",
    "events",
    "cases",
    "metrics",
    "slas",
    "goals",
    "load",
    "staffing",
)
STAFFING_PERIOD = timedelta(hours=1)


def answer_within(playbook: Playbook) -> float | None:
    """The last unconditional target of the ``first_response`` clock, in seconds (a ``bd`` target
    counts 8 h per business day here), or None without such a clock."""
    clock = playbook.clocks.get("first_response")
    if clock is None:
        return None
    for t in reversed(clock.targets):
        if t.when is None:
            if t.seconds is not None:
                return float(t.seconds)
            if t.business_days:
                return float(t.business_days) * 8 * 3600
    return None


def _week(d: date) -> date:
    return d - timedelta(days=d.weekday())


class Pending(Protocol):
    """A part of a report computed elsewhere (:class:`carepath.report.parallel.Forked`)."""

    def result(self) -> dict[str, Any]:
        """The part (waits for it)."""

    def cancel(self) -> None:
        """Stop computing it: it is not wanted (no-op once :meth:`result` gave it)."""


def build_report(
    playbook: Playbook,
    rp: Replay,
    *,
    apart: Callable[[Callable[[], dict[str, Any]]], Pending] | None = None,
) -> dict[str, Any]:
    """The report of one replay (or store view). ``apart``: starts the computing of a part of
    the report (its load, staffing and details) elsewhere, while the rest is computed here (see
    :func:`carepath.report.parallel.build_reports`); the report is the same."""
    from carepath.drivers.replay import batch_gc

    with batch_gc():
        side = None if apart is None else apart(partial(_side, playbook, rp))
        try:
            return _build(playbook, rp, side)
        finally:
            if side is not None:
                side.cancel()


def _side(playbook: Playbook, rp: Replay, m: Metrics | None = None) -> dict[str, Any]:
    """The report's ``load``, ``staffing``, ``staffing_params`` and ``details``: the part that
    reads no clock cycle's metric (``m``: the metrics of ``rp``, else made here, and then their
    series of clock cycles are never built: see :class:`~carepath.metrics.Metrics`)."""
    m = Metrics(rp) if m is None else m
    load, staffing, params = _load_and_staffing(playbook, m, zone(playbook.timezone))
    return {
        "load": load,
        "staffing": staffing,
        "staffing_params": params,
        "details": details(playbook, rp, m, params["answer_within"]),
    }


def _build(playbook: Playbook, rp: Replay, side: Pending | None = None) -> dict[str, Any]:
    tz = zone(playbook.timezone)
    m = Metrics(rp)
    last_day = None if rp.last_s is None else datetime.fromtimestamp(rp.last_s, tz).date()
    metrics = {name: meas.to_dict() for name, meas in m.all_builtin().items()}
    custom = {}
    for name in m.custom:
        meas = m.measure(name)
        custom[name] = {
            "type": m.custom[name].kind,
            "value": meas.value,
            "samples": meas.samples,
            "title": playbook.spec.metrics.custom[name].title,
        }
    # SLAs
    counts: dict[str, Counter[str]] = {c: Counter() for c in playbook.clocks}
    weekly: dict[str, dict[date, list[int]]] = {c: {} for c in playbook.clocks}
    day = m.day  # POSIX seconds → local date ordinal, cached per quarter hour
    weeks: dict[int, date] = {}
    facts = rp.records
    # counted by (clock, outcome, day) first: one dictionary update per finished cycle
    cells = Counter(zip(facts.clock, facts.met, day.many(facts.stopped_s), strict=True))
    for (clock, met_, o), n in cells.items():
        how = "met" if met_ == 1 else ("cancelled" if met_ < 0 else "breached")
        cnt = counts.get(clock)
        if cnt is None:
            cnt = counts[clock] = Counter()
        cnt[how] += n
        if met_ >= 0:
            wk = weeks.get(o)
            if wk is None:
                wk = weeks[o] = _week(date.fromordinal(o))
            cell = weekly.setdefault(clock, {}).setdefault(wk, [0, 0])
            cell[0 if met_ == 1 else 1] += n
    slas = {}
    for clock, cnt in counts.items():
        met, br = cnt["met"], cnt["breached"]
        slas[clock] = {
            "met": met,
            "breached": br,
            "attainment": met / (met + br) if met + br else None,
            "cancelled": cnt["cancelled"],
        }
    sla_weekly = {
        c: [
            {
                "week": wk.isoformat(),
                "met": v[0],
                "breached": v[1],
                "attainment": v[0] / (v[0] + v[1]),
            }
            for wk, v in sorted(w.items())
        ]
        for c, w in weekly.items()
    }
    # breaches (signals, open cycles included) by clock, channel and tier
    by_clock: Counter[str] = Counter()
    by_channel: Counter[str] = Counter()
    by_tier: Counter[str] = Counter()
    for _t, clock, ctx in rp.breaches:
        by_clock[clock] += 1
        by_channel[ctx.channel or "(none)"] += 1
        by_tier[ctx.tier or "(none)"] += 1
    # surveys per week
    surveys = _weekly_surveys(m)
    goals = [g.to_dict() for g in evaluate_goals(m, last_day)]
    part = _side(playbook, rp, m) if side is None else side.result()
    return {
        "playbook": {"id": playbook.id, "version": playbook.version, "title": playbook.title},
        "period": {"from": to_iso(rp.first_s, tz), "to": to_iso(rp.last_s, tz)},
        "events": rp.n_events,
        "cases": rp.cases,
        "metrics": metrics,
        "custom": custom,
        "slas": slas,
        "goals": goals,
        "load": part["load"],
        "staffing": part["staffing"],
        "staffing_params": part["staffing_params"],
        "activity": {
            "breaches": dict(sorted(by_clock.items())),
            "escalations": rp.escalations,
            "actions": dict(sorted(rp.actions.items())),
            "rejected": len(rp.rejected),
        },
        "series": {
            "sla_weekly": sla_weekly,
            "breaches_by": {
                "channel": dict(sorted(by_channel.items())),
                "tier": dict(sorted(by_tier.items())),
            },
            "surveys_weekly": surveys,
        },
        "source": "store" if rp.from_store else "events",
        "timezone": playbook.timezone,
        "details": part["details"],
        **({"allocation": alloc} if (alloc := agent_rows(rp)) is not None else {}),
    }


def _weekly_surveys(m: Metrics) -> list[dict[str, Any]]:
    weeks: dict[date, dict[str, list[float]]] = {}
    for name in ("csat", "nps"):
        s = m.series[name]
        for d, v in zip(s.days, s.values, strict=True):
            weeks.setdefault(_week(date.fromordinal(d)), {"csat": [], "nps": []})[name].append(v)
    out = []
    for wk, v in sorted(weeks.items()):
        out.append(
            {
                "week": wk.isoformat(),
                "csat": sum(v["csat"]) / len(v["csat"]) if v["csat"] else None,
                "csat_samples": len(v["csat"]),
                "nps": sum(v["nps"]) / len(v["nps"]) if v["nps"] else None,
                "nps_samples": len(v["nps"]),
            }
        )
    return out


def _load_and_staffing(
    playbook: Playbook, m: Metrics, tz: Any
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    def day_and_hour(k: int) -> tuple[str, float]:  # a quarter hour → its local date and hour
        start = local_hour(k, tz)
        return start.date().isoformat(), start.timestamp()

    per_day: Counter[str] = Counter()
    per_hour: Counter[float] = Counter()
    cells = Counter(per_quarter_hour(m.contact_instants(), day_and_hour, {}))
    for (day, hour), count in cells.items():
        per_day[day] += count
        per_hour[hour] += count
    days: list[dict[str, Any]] = [{"date": d, "contacts": n} for d, n in sorted(per_day.items())]
    peak: dict[str, Any] | None = None
    for row in days:
        if peak is None or row["contacts"] > peak["contacts"]:
            peak = dict(row)
    hours: list[dict[str, Any]] = [
        {"hour": to_iso(h, tz), "contacts": n} for h, n in sorted(per_hour.items())
    ]
    aht_m = m.measure("aht")
    aht = aht_m.stats["mean"] if aht_m.stats and aht_m.samples else None
    within = answer_within(playbook)
    sp = playbook.spec.staffing
    target = sp.target  # 0.8 unless `staffing: {target: …}` says otherwise
    params: dict[str, Any] = {
        "period": STAFFING_PERIOD.total_seconds(),
        "aht": aht,
        "answer_within": within,
        "target": target,
        "max_occupancy": sp.max_occupancy,
        "shrinkage": sp.shrinkage,
    }
    cache: dict[int, int | None] = {}
    staffing: list[dict[str, Any]] = []
    for row in hours:
        n: int = row["contacts"]
        if n not in cache:
            if aht is None or within is None or aht <= 0:
                cache[n] = None
            else:
                try:  # seconds, not timedelta: a huge observed aht (1e300 s) is no timedelta
                    cache[n] = agents_needed(
                        n, STAFFING_PERIOD, aht, within, target, sp.max_occupancy, sp.shrinkage
                    )
                except ValueError:  # beyond staffing.MAX_AGENTS: no queue staffs it
                    cache[n] = None
        staffing.append({"hour": row["hour"], "contacts": n, "agents": cache[n]})
    return {"per_day": days, "peak": peak, "per_hour": hours}, staffing, params


def compare_reports(base: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """The what-if object: ``{"base": …, "compare": …}``."""
    return {"base": base, "compare": other}
