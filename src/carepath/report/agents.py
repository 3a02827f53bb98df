"""The report's table per agent (SPEC §10, ``carepath report --roster FILE``): the ``allocation``
key of the JSON report (its rows; :func:`carepath.report.view.agents_table` shows them).

Each agent of the roster, in roster order, with the cases the replay's allocator (or the log's
own ``agent.assigned`` events) gave it: ``cases`` assigned, ``first_response_median`` (seconds,
the median of the finished ``first_response`` clock cycles of those cases), ``aht`` (mean
``contact.handled`` duration while the agent held the case), ``fcr`` (share of its solved cases
answered with a single reply and never reopened), ``csat`` (share of CSAT answers of 4 or 5),
``sla_attainment`` (met / (met + breached) over every clock of its cases) and ``open`` (the cases it
still holds at the end). A value without samples is ``null``; ``queued`` counts the ``assign``
actions that found nobody free.
"""

from __future__ import annotations

from statistics import median
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carepath.drivers.replay import Replay

__all__ = ["agent_rows"]


def agent_rows(rp: Replay) -> dict[str, Any] | None:
    """``{"agents": [row…], "queued": n}`` for a replay with a roster, else ``None``."""
    f = rp.agents
    if f is None:
        return None
    holder = f.holder
    first: dict[str, list[float]] = {}
    met: dict[str, list[int]] = {}
    facts = rp.records
    for i in range(len(facts)):
        agent = holder.get(facts.case[i])
        if agent is None:
            continue
        m = facts.met[i]  # 1 met, 0 breached, -1 cancelled
        if m >= 0:
            cell = met.setdefault(agent, [0, 0])
            cell[0 if m == 1 else 1] += 1
        if facts.clock[i] == "first_response" and m >= 0:
            first.setdefault(agent, []).append(facts.elapsed_s(i))
    fcr: dict[str, list[float]] = {}
    cases = getattr(rp.facts, "cases", None) or {}
    for cid, rec in cases.items():
        agent = holder.get(cid)
        if agent is not None and rec[1] is not None:
            fcr.setdefault(agent, []).append(1.0 if rec[0] == 1 and not rec[3] else 0.0)
    open_: dict[str, int] = {}
    for cid, agent in holder.items():
        st = rp.states.get(cid)
        if st is not None and not st.ended:
            open_[agent] = open_.get(agent, 0) + 1

    def mean(xs: list[float] | None) -> float | None:
        return sum(xs) / len(xs) if xs else None

    rows = []
    for a in f.roster:
        mt = met.get(a.id)
        rows.append(
            {
                "agent": a.id,
                "name": a.name,
                "tiers": list(a.tiers),
                "cases": len(f.cases.get(a.id, ())),
                "first_response_median": median(first[a.id]) if a.id in first else None,
                "aht": mean(f.aht.get(a.id)),
                "aht_samples": len(f.aht.get(a.id, ())),
                "fcr": mean(fcr.get(a.id)),
                "fcr_samples": len(fcr.get(a.id, ())),
                "csat": mean(f.csat.get(a.id)),
                "csat_samples": len(f.csat.get(a.id, ())),
                "sla_attainment": mt[0] / (mt[0] + mt[1]) if mt else None,
                "open": open_.get(a.id, 0),
            }
        )
    return {"agents": rows, "queued": f.queued}
