"""What the people-facing report shows beyond SPEC §6's contract keys, computed once from the
replay: the playbook's own names for its clocks, channels and tiers; attainment and breach *rates*
per channel, segment and tier; staffing per channel against each channel's own first-response
target; how much of each goal's window the data covers; and, from a store, the backlog, its
ageing and the open cases past a deadline.

All of it sits under the report's ``details`` key (not a contract: the JSON of SPEC §6 is
unchanged); the renderers read it when present.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from carepath._instants import local_hour, per_quarter_hour, to_iso, zone
from carepath.staffing import agents_needed

if TYPE_CHECKING:
    from carepath.compile.ir import Playbook
    from carepath.drivers.replay import Replay
    from carepath.metrics import Metrics

__all__ = ["AGE_BUCKETS", "MAX_BREACHED_ROWS", "details"]

GROUPINGS = ("channel", "segment", "tier")
#: Upper bounds (seconds) of the backlog's age buckets; the last is open-ended.
AGE_BUCKETS = (3600, 4 * 3600, 86400, 3 * 86400, 7 * 86400)
#: The list of open cases past a deadline keeps the most overdue ones.
MAX_BREACHED_ROWS = 500
_HOUR = timedelta(hours=1)


def details(
    playbook: Playbook, rp: Replay, m: Metrics, answer_within: float | None
) -> dict[str, Any]:
    """The ``details`` object of a report (see the module docstring)."""
    tz = zone(playbook.timezone)
    spec = playbook.spec
    cycles = _cycles(rp)
    return {
        "names": {
            "clocks": {n: c.title for n, c in spec.slas.items()} if spec.slas else {},
            "channels": {n: c.title if c else None for n, c in (spec.channels or {}).items()},
            "tiers": {n: t.title if t else None for n, t in (spec.tiers or {}).items()},
            "custom": {n: c.title for n, c in spec.metrics.custom.items()},
        },
        "rates": _rates(cycles),
        "staffing_by_channel": _staffing_by_channel(
            playbook, rp, m, tz, answer_within, _channel_targets(cycles)
        ),
        "goal_windows": _goal_windows(playbook, rp, tz),
        "backlog": _backlog(playbook, rp, tz) if rp.from_store else None,
    }


#: Finished clock cycles counted by ``(clock, met, target, case values)``: few distinct, so the
#: rates and the channels' targets read one count per kind of cycle, not one per cycle.
Cycles = Counter[tuple[str, int, float, Any]]


def _cycles(rp: Replay) -> Cycles:
    """The replay's clock cycles counted by kind (see :data:`Cycles`), read from the fact
    columns without building a record per cycle (``met``: 1 met, 0 missed, -1 cancelled;
    ``target``: NaN when the cycle ran against none)."""
    facts = rp.records
    return Counter(zip(facts.clock, facts.met, facts.target, facts.ctx, strict=True))


def _rates(cycles: Cycles) -> dict[str, list[dict[str, Any]]]:
    """Per grouping: one row per (group, clock) with finished cycles, met, missed and the rates."""
    cells: dict[str, Counter[tuple[str, str, bool]]] = {g: Counter() for g in GROUPINGS}
    for (clock, met_, _, ctx), n in cycles.items():
        if met_ < 0:  # cancelled
            continue
        met = met_ == 1
        for g, v in (("channel", ctx.channel), ("segment", ctx.segment), ("tier", ctx.tier)):
            cells[g][(v or "(none)", clock, met)] += n
    out: dict[str, list[dict[str, Any]]] = {}
    for g, cnt in cells.items():
        keys = sorted({(k[0], k[1]) for k in cnt})
        rows = []
        for group, clock in keys:
            met_n, br = cnt[(group, clock, True)], cnt[(group, clock, False)]
            n = met_n + br
            rows.append(
                {
                    "group": group,
                    "clock": clock,
                    "finished": n,
                    "met": met_n,
                    "breached": br,
                    "attainment": met_n / n,
                    "breach_rate": br / n,
                }
            )
        out[g] = rows
    return out


def _channel_targets(cycles: Cycles) -> dict[str, float]:
    """Each channel's first-response target as the playbook applied it: the target most of the
    channel's finished ``first_response`` cycles ran against (ties: the shorter)."""
    seen: dict[str, Counter[float]] = {}
    for (clock, _, target, ctx), n in cycles.items():
        if clock != "first_response" or target != target:  # NaN: no target
            continue
        ch = ctx.channel or "(none)"
        c = seen.get(ch)
        if c is None:
            c = seen[ch] = Counter()
        c[target] += n
    return {ch: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for ch, c in sorted(seen.items())}


def _staffing_by_channel(
    playbook: Playbook,
    rp: Replay,
    m: Metrics,
    tz: Any,
    fallback: float | None,
    targets: dict[str, float],
) -> list[dict[str, Any]]:
    opened = rp.opened
    hour_col = per_quarter_hour([o[0] for o in opened], lambda k: local_hour(k, tz).timestamp(), {})
    per_hour: dict[str, Counter[float]] = {}
    for (channel, hour), n in Counter(
        zip([o[2].channel for o in opened], hour_col, strict=True)
    ).items():
        ch = channel or "(none)"
        c = per_hour.get(ch)
        if c is None:
            c = per_hour[ch] = Counter()
        c[hour] += n
    sp = playbook.spec.staffing
    rows = []
    for ch, hours in sorted(per_hour.items()):
        busiest, n = min(hours.items(), key=lambda kv: (-kv[1], kv[0]))
        aht_m = m.measure("aht", where={"channel": ch}) if ch != "(none)" else None
        aht = aht_m.value if aht_m is not None and aht_m.samples else None
        within = targets.get(ch, fallback)
        agents = None
        if aht is not None and aht > 0 and within is not None:
            try:
                agents = agents_needed(
                    n, _HOUR, aht, within, sp.target, sp.max_occupancy, sp.shrinkage
                )
            except ValueError:  # beyond staffing.MAX_AGENTS: no queue staffs it
                agents = None
        rows.append(
            {
                "channel": ch,
                "contacts": sum(hours.values()),
                "busiest_hour": to_iso(busiest, tz),
                "busiest_contacts": n,
                "aht": aht,
                "answer_within": within,
                "target": sp.target,
                "agents": agents,
            }
        )
    return rows


def _goal_windows(playbook: Playbook, rp: Replay, tz: Any) -> dict[str, dict[str, Any]]:
    """Per goal: whether its window rolls, its length, and how many of its days the data covers."""
    first = None if rp.first_s is None else datetime.fromtimestamp(rp.first_s, tz).date()
    last = None if rp.last_s is None else datetime.fromtimestamp(rp.last_s, tz).date()
    out: dict[str, dict[str, Any]] = {}
    for g in playbook.spec.goals or []:
        w = g.window
        rolling = w is not None and getattr(w, "from_", None) is None
        lo: date | None = getattr(w, "from_", None)
        hi: date | None = getattr(w, "to", None)
        if rolling and last is not None:
            from carepath.metrics import resolve_window

            win = resolve_window(w, last)
            lo, hi = win if win else (None, None)
        entry: dict[str, Any] = {"rolling": rolling, "days": None, "covered": None}
        if lo is not None and hi is not None:
            entry["days"] = (hi - lo).days + 1
            if first is not None and last is not None:
                a, b = max(lo, first), min(hi, last)
                entry["covered"] = max(0, (b - a).days + 1)
                entry["data_from"] = first.isoformat()
                entry["data_to"] = last.isoformat()
        out[g.id] = entry
    return out


def _backlog(playbook: Playbook, rp: Replay, tz: Any) -> dict[str, Any]:
    """Open cases of a store at its latest instant: count, ageing, by stage, and those past a
    deadline (most overdue first)."""
    final = {name for name, st in playbook.stages.items() if st.final}
    now = rp.last_s or 0.0
    ages = Counter[int]()
    stages: Counter[str] = Counter()
    late: list[dict[str, Any]] = []
    n_open = 0
    for cid, st in rp.states.items():
        if st.ended or st.stage in final:
            continue
        n_open += 1
        stages[st.stage] += 1
        age = max(0.0, now - st.opened_s)
        ages[next((i for i, b in enumerate(AGE_BUCKETS) if age < b), len(AGE_BUCKETS))] += 1
        ch = st.data.get("channel")
        for name, clock in st.clocks.items():
            if clock.is_open and clock.breached and clock.breach_s is not None:
                late.append(
                    {
                        "case": cid,
                        "clock": name,
                        "channel": None if ch is None else str(ch),
                        "tier": st.tier,
                        "stage": st.stage,
                        "breached_at": to_iso(clock.breach_s, tz),
                        "overdue": max(0.0, now - clock.breach_s),
                        "age": age,
                    }
                )
    late.sort(key=lambda r: (-r["overdue"], r["case"], r["clock"]))
    return {
        "as_of": to_iso(now, tz) if rp.last_s is not None else None,
        "open": n_open,
        "ageing": [{"up_to": b, "cases": ages[i]} for i, b in enumerate((*AGE_BUCKETS, None))],
        "by_stage": dict(sorted(stages.items())),
        "breached_open": late[:MAX_BREACHED_ROWS],
        "breached_open_total": len(late),
    }
