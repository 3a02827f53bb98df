"""The runtime's allocator (SPEC §9, §10): the allocation half of
:class:`~carepath.runtime.Runtime` (a mixin, like delivery).

An ``assign`` action with a ``strategy`` that a submitted event produces is allocated inside the
event's own transaction: the allocation lock is taken (:meth:`Tx.lock_allocation`), the agents'
loads are read from the store, :func:`~carepath.runtime.allocation.choose` picks an agent, the
assignment is written and ``agent.assigned {agent}`` (id ``<action id>/assigned``) is applied to
the case — all or nothing. With nobody free the ``assign`` is queued in the store and the result
carries an ``assign.queued`` signal; every :meth:`run_due` (each poll of the worker loop) tries
the queue again. An ``assign`` fired by a wake-up (a delayed one) is queued and allocated at the
end of that same ``run_due``. A case that ends stops counting in its agent's load; an
``agent.assigned`` sent by a host (a manual assignment) is recorded as the case's holder too.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, MutableMapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from carepath.compile.ir import AGENT_ASSIGNED
from carepath.events import Event
from carepath.runtime.allocation import QUEUED, Agent, Roster, check_roster, choose, roster_of
from carepath.state import Action, CaseState, Signal

if TYPE_CHECKING:
    from carepath.engine.engine import Engine
    from carepath.runtime._tally import Tally
    from carepath.runtime.store import Store, Tx

__all__ = ["Allocating"]

log = logging.getLogger("carepath.runtime.allocation")

_MAX_DEPTH = 4  # an `agent.assigned` handler that assigns again is allocated at the next poll


def wants_agent(action: Action) -> bool:
    """An ``assign`` with a strategy: the allocator's to answer."""
    return action.type == "assign" and bool(action.params.get("strategy"))


class Allocating:
    """The allocation half of the runtime; inert without a roster."""

    store: Store
    engines: dict[str, Engine]
    batch: int
    roster: Roster
    counters: Counter[str]
    _alloc_depth: int

    def _now(self) -> datetime:
        raise NotImplementedError  # pragma: no cover - the runtime's

    def _apply(
        self,
        tx: Tx,
        ev: Event,
        key: tuple[str, str],
        cache: MutableMapping[tuple[str, str], CaseState | None],
        seen: set[str],
        tally: Tally,
    ) -> Any:
        raise NotImplementedError  # pragma: no cover - the runtime's

    def _init_allocation(self, roster: Any) -> None:
        self.roster = roster_of(roster)
        self._alloc_depth = 0
        if self.roster:
            pbs = [e.playbook for e in self.engines.values()]
            check_roster(
                self.roster,
                {t for pb in pbs for t in pb.tiers},
                [set(pb.calendars) for pb in pbs],
            )

    def _after_step(
        self,
        tx: Tx,
        ev: Event | None,
        state: CaseState,
        actions: Sequence[Action],
        cache: MutableMapping[tuple[str, str], CaseState | None] | None,
        seen: set[str] | None,
        tally: Tally,
        out: Callable[[Any], None] | None = None,
    ) -> None:
        """Keep the allocation rows in step with one case's step: record an ``agent.assigned``,
        release an ended case, allocate (or queue) its ``assign`` actions."""
        if not self.roster:
            return
        now = self._now().timestamp()
        if ev is not None and ev.type == AGENT_ASSIGNED and state.data.get("assignee"):
            tx.lock_allocation()
            tx.set_assignment(state.playbook, state.case, str(state.data["assignee"]), now, None)
        if state.ended:
            tx.drop_assignment(state.playbook, state.case)
            return
        for action in actions:
            if not wants_agent(action):
                continue
            if cache is None or seen is None or self._alloc_depth >= _MAX_DEPTH:
                tx.queue_assignment(action, now)
                continue
            self._allocate(tx, action, cache, seen, tally, out)

    def _is_open(self, playbook: str, t: float) -> Callable[[Agent], bool]:
        calendars = self.engines[playbook].playbook.calendars

        def is_open(agent: Agent) -> bool:
            cal = calendars.get(agent.calendar or "")
            return cal is None or cal.is_open_s(t)

        return is_open

    def _allocate(
        self,
        tx: Tx,
        action: Action,
        cache: MutableMapping[tuple[str, str], CaseState | None],
        seen: set[str],
        tally: Tally,
        out: Callable[[Any], None] | None,
        *,
        retry: bool = False,
    ) -> bool:
        """Pick an agent for ``action`` and apply ``agent.assigned`` in ``tx``; with nobody free,
        queue it (and, on the first try, hand ``out`` an ``assign.queued`` signal)."""
        key = (action.playbook, action.case)
        state = cache.get(key)
        if state is None or state.ended:
            tx.unqueue_assignment(*key)
            return False
        tier = str(action.params.get("tier"))
        strategy = str(action.params.get("strategy"))
        skills = tuple(action.params.get("skills") or ())
        now = self._now()
        tx.lock_allocation()
        agent = choose(
            self.roster,
            tier,
            strategy,
            skills,
            tx.agent_loads(),
            last=tx.last_assigned(tier),
            is_open=self._is_open(action.playbook, now.timestamp()),
        )
        if agent is None:
            if not retry:
                tx.queue_assignment(action, now.timestamp())
                at = max(action.at, state.now)
                data: dict[str, Any] = {"action": action.id, "tier": tier, "strategy": strategy}
                if skills:
                    data["skills"] = list(skills)
                log.info(
                    "nobody free in tier %s for %s/%s: queued",
                    tier,
                    *key,
                    extra={"playbook": key[0], "case": key[1], "action_id": action.id},
                )
                if out is not None:
                    out(Signal(QUEUED, at, data=data))
            return False
        tx.unqueue_assignment(*key)
        tx.set_assignment(key[0], key[1], agent.id, now.timestamp(), tier)
        at = max(action.at if not retry else now, state.now)
        ev = Event(
            id=f"{action.id}/assigned",
            type=AGENT_ASSIGNED,
            at=at,
            case=action.case,
            data={"agent": agent.id},
        )
        log.info(
            "%s/%s assigned to %s (%s, tier %s)",
            *key,
            agent.id,
            strategy,
            tier,
            extra={"playbook": key[0], "case": key[1], "action_id": action.id},
        )
        self._alloc_depth += 1
        try:
            result = self._apply(tx, ev, key, cache, seen, tally)
        finally:
            self._alloc_depth -= 1
        if out is not None:
            out(result)
        return True

    def _retry_queued(self) -> int:
        """Try the queued ``assign`` actions again (each poll); returns how many found an agent."""
        if not self.roster:
            return 0
        from carepath.runtime._tally import Tally

        tally = Tally()

        def unit(tx: Tx) -> int:
            tally.clear()
            queued = tx.queued_assignments(self.batch)
            if not queued:
                return 0
            # cases first, the allocation lock after: a holder of the lock never waits for a case
            cache: dict[tuple[str, str], CaseState | None] = {}
            for a in queued:
                cache[(a.playbook, a.case)] = tx.load(a.playbook, a.case)
            seen: set[str] = set()
            n = 0
            for a in queued:
                if tx.seen(f"{a.id}/assigned"):
                    tx.unqueue_assignment(a.playbook, a.case)
                    continue
                n += self._allocate(tx, a, cache, seen, tally, None, retry=True)
            return n

        n = self.store.atomic(unit)
        self.counters.update(tally)
        tally.log()
        return n
