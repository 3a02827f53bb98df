"""Allocation in a replay (SPEC §10: ``simulate``/``report`` ``--roster FILE``): the runtime's rule
(:func:`carepath.runtime.allocation.choose`) against the replayed load, and what each agent did.

The replay hands this every step's actions and every applied event. An ``assign`` with a
``strategy`` is answered at the end of the event that produced it: the held cases due before the
instant are advanced first (a case a timer ended no longer counts), loads are the open cases each
agent holds, and ``agent.assigned {agent}`` (id ``<action id>/assigned``) is applied to the case at
the action's instant. With nobody free the ``assign`` waits in a queue, tried again after every
later event (the replay's poll) — oldest first, as the runtime's queue. Everything is in event
order, so a replay allocates the same way every time (and is never sharded: loads couple cases).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from carepath.compile.ir import AGENT_ASSIGNED, ASSIGNEE
from carepath.events import Event
from carepath.runtime.allocation import Agent, Roster, choose

if TYPE_CHECKING:
    from carepath.compile.ir import Playbook
    from carepath.state import Action, CaseState

__all__ = ["AgentFacts", "ReplayAllocator"]


@dataclass
class AgentFacts:
    """Per agent, what the replay saw while the agent held a case (by agent id)."""

    roster: Roster
    cases: dict[str, set[str]] = field(default_factory=dict)
    """Case identities the agent was assigned."""
    csat: dict[str, list[float]] = field(default_factory=dict)
    """1.0 / 0.0 per CSAT answer (4 or 5 out of 5 is satisfied) on the agent's cases."""
    aht: dict[str, list[float]] = field(default_factory=dict)
    """``contact.handled`` durations (seconds) on the agent's cases."""
    holder: dict[str, str] = field(default_factory=dict)
    """Case identity → the agent holding it now."""
    queued: int = 0
    """``assign`` actions that found nobody free (each counted once)."""


class ReplayAllocator:
    """The allocator of one replay (see the module)."""

    def __init__(
        self,
        playbook: Playbook,
        roster: Roster,
        states: dict[str, CaseState],
        apply: Callable[[str, Event], CaseState | None],
        wake: Callable[[str, float], None],
    ) -> None:
        self.roster = roster
        self.states = states
        self.apply = apply  # (case identity, event) → the case's state after it, or None
        self.wake = wake  # (case identity, instant): fire what was due strictly before it
        self.calendars = playbook.calendars
        self.facts = AgentFacts(roster)
        self.last: dict[str, str] = {}
        self.wanted: list[tuple[str, Action]] = []
        self.queue: dict[str, Action] = {}  # case identity → its waiting assign (oldest first)
        rename = dict(playbook.spec.metrics.events)
        self.t_survey = rename.get("survey.answered", "survey.answered")
        self.t_handled = rename.get("contact.handled", "contact.handled")

    def actions(self, cid: str, actions: Any) -> None:
        """A step's actions: keep its ``assign`` actions that carry a strategy."""
        for a in actions:
            if a.type == "assign" and a.params.get("strategy"):
                self.wanted.append((cid, a))

    def observe(self, e: Event, cid: str | None, st: CaseState | None) -> None:
        """An applied event: keep the holder in step (a host's ``agent.assigned`` included) and
        the agent's samples."""
        if cid is None or st is None:
            return
        f = self.facts
        who = st.data.get(ASSIGNEE)
        if isinstance(who, str) and who and f.holder.get(cid) != who:
            f.holder[cid] = who
            f.cases.setdefault(who, set()).add(cid)
        agent = f.holder.get(cid)
        if agent is None:
            return
        data = e.data
        if e.type == self.t_survey and data.get("survey") == "csat":
            score = data.get("score")
            if isinstance(score, int | float) and not isinstance(score, bool) and 1 <= score <= 5:
                f.csat.setdefault(agent, []).append(1.0 if score >= 4 else 0.0)
        elif e.type == self.t_handled:
            d = data.get("duration")
            if isinstance(d, int | float) and not isinstance(d, bool) and d >= 0:
                f.aht.setdefault(agent, []).append(float(d))

    def poll(self, t: float) -> None:
        """Answer the new ``assign`` actions, then try the queue again (at instant ``t``)."""
        wanted, self.wanted = self.wanted, []
        for cid, a in wanted:
            self.queue.pop(cid, None)
            if not self._allocate(cid, a, t, first=True):
                self.queue[cid] = a
        for cid, a in list(self.queue.items()):
            if self._allocate(cid, a, t, first=False):
                del self.queue[cid]

    def _loads(self, t: float) -> Counter[str]:
        loads: Counter[str] = Counter()
        for cid, agent in list(self.facts.holder.items()):
            st = self.states.get(cid)
            if st is None:
                continue
            if not st.ended and st.next_wakeup_s is not None and st.next_wakeup_s < t:
                self.wake(cid, t)
                st = self.states[cid]
            if not st.ended:
                loads[agent] += 1
        return loads

    def _allocate(self, cid: str, a: Action, t: float, *, first: bool) -> bool:
        st = self.states.get(cid)
        if st is None or st.ended:
            return True  # nothing to allocate any more: off the queue
        tier = str(a.params.get("tier"))
        calendars = self.calendars

        def is_open(agent: Agent) -> bool:
            cal = calendars.get(agent.calendar or "")
            return cal is None or cal.is_open_s(t)

        agent = choose(
            self.roster,
            tier,
            str(a.params.get("strategy")),
            tuple(a.params.get("skills") or ()),
            self._loads(t),
            last=self.last.get(tier),
            is_open=is_open,
        )
        if agent is None:
            if first:
                self.facts.queued += 1
            return False
        self.last[tier] = agent.id
        st = self.states[cid]
        at = max(a.at, st.now) if first else max(st.now, a.at.fromtimestamp(t, a.at.tzinfo))
        ev = Event(
            id=f"{a.id}/assigned", type=AGENT_ASSIGNED, at=at, case=a.case, data={"agent": agent.id}
        )
        after = self.apply(cid, ev)
        if after is not None:
            self.observe(ev, cid, after)
        return True
