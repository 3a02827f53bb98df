"""The rows of allocation (SPEC §10) in the SQL stores: who holds which open case, the agent each
tier chose last, and the ``assign`` actions waiting for a free agent.

One mixin serves SQLite and PostgreSQL (:class:`AllocationRows`); a store's transaction says how
to run a statement (``_arun``), its placeholder and table names. The load of every agent is
counted in the store, inside the transaction that chooses, under one lock
(:meth:`lock_allocation`: SQLite's ``BEGIN IMMEDIATE`` write lock already serializes every
writer; PostgreSQL takes a transaction-scoped advisory lock), so two workers never give one agent
more than its capacity.
"""

from __future__ import annotations

import json
from typing import Any

from carepath.state import Action

__all__ = ["PG_MIGRATION", "SQLITE_MIGRATION", "AllocationRows"]

SQLITE_MIGRATION = """
CREATE TABLE IF NOT EXISTS assignments (
    playbook TEXT NOT NULL,
    case_key TEXT NOT NULL,
    agent    TEXT NOT NULL,
    at       REAL NOT NULL,
    PRIMARY KEY (playbook, case_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS assignments_agent ON assignments (agent);
CREATE TABLE IF NOT EXISTS alloc_last (
    tier  TEXT PRIMARY KEY,
    agent TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alloc_queue (
    playbook TEXT NOT NULL,
    case_key TEXT NOT NULL,
    action   TEXT NOT NULL,
    since    REAL NOT NULL,
    PRIMARY KEY (playbook, case_key)
) WITHOUT ROWID
"""

PG_MIGRATION = """
CREATE TABLE IF NOT EXISTS {s}.assignments (
    playbook text NOT NULL,
    case_key text NOT NULL,
    agent    text NOT NULL,
    at       double precision NOT NULL,
    PRIMARY KEY (playbook, case_key)
);
CREATE INDEX IF NOT EXISTS assignments_agent ON {s}.assignments (agent);
CREATE TABLE IF NOT EXISTS {s}.alloc_last (
    tier  text PRIMARY KEY,
    agent text NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.alloc_queue (
    playbook text NOT NULL,
    case_key text NOT NULL,
    action   text NOT NULL,
    since    double precision NOT NULL,
    PRIMARY KEY (playbook, case_key)
);
"""


class AllocationRows:
    """Allocation rows for a SQL transaction (a mixin of its ``Tx``)."""

    _P = "?"

    def _arun(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError  # pragma: no cover

    def _atable(self, name: str) -> str:
        return name

    def lock_allocation(self) -> None:
        """Serialize allocations until commit (SQLite: the write lock is already held)."""

    def agent_loads(self) -> dict[str, int]:
        """Open assigned cases per agent."""
        t = self._atable("assignments")
        return {a: int(n) for a, n in self._arun(f"SELECT agent, count(*) FROM {t} GROUP BY agent")}

    def last_assigned(self, tier: str) -> str | None:
        """The agent the allocator chose last in ``tier``."""
        p = self._P
        rows = self._arun(
            f"SELECT agent FROM {self._atable('alloc_last')} WHERE tier = {p}", (tier,)
        )
        return str(rows[0][0]) if rows else None

    def set_assignment(
        self, playbook: str, case: str, agent: str, at: float, tier: str | None
    ) -> None:
        """``agent`` holds the case (replacing a former holder); with ``tier``, it is also that
        tier's last choice."""
        p = self._P
        self._arun(
            f"INSERT INTO {self._atable('assignments')} (playbook, case_key, agent, at) "
            f"VALUES ({p}, {p}, {p}, {p}) ON CONFLICT (playbook, case_key) DO UPDATE SET "
            "agent = excluded.agent, at = excluded.at",
            (playbook, case, agent, at),
        )
        if tier is not None:
            self._arun(
                f"INSERT INTO {self._atable('alloc_last')} (tier, agent) VALUES ({p}, {p}) "
                "ON CONFLICT (tier) DO UPDATE SET agent = excluded.agent",
                (tier, agent),
            )

    def drop_assignment(self, playbook: str, case: str) -> None:
        """The case no longer counts in anybody's load (it ended); a queued ``assign`` goes too."""
        p = self._P
        for t in ("assignments", "alloc_queue"):
            self._arun(
                f"DELETE FROM {self._atable(t)} WHERE playbook = {p} AND case_key = {p}",
                (playbook, case),
            )

    def queue_assignment(self, action: Action, since: float) -> None:
        """Keep an ``assign`` nobody was free for (one per case: a later one replaces it)."""
        p = self._P
        self._arun(
            f"INSERT INTO {self._atable('alloc_queue')} (playbook, case_key, action, since) "
            f"VALUES ({p}, {p}, {p}, {p}) ON CONFLICT (playbook, case_key) DO UPDATE SET "
            "action = excluded.action, since = excluded.since",
            (action.playbook, action.case, action.to_json(), since),
        )

    def queued_assignments(self, limit: int) -> list[Action]:
        """The queued ``assign`` actions, oldest first."""
        p = self._P
        rows = self._arun(
            f"SELECT action FROM {self._atable('alloc_queue')} ORDER BY since, playbook, case_key "
            f"LIMIT {p}",
            (limit,),
        )
        return [Action.from_dict(json.loads(r[0])) for r in rows]

    def unqueue_assignment(self, playbook: str, case: str) -> None:
        """Forget the case's queued ``assign``."""
        p = self._P
        self._arun(
            f"DELETE FROM {self._atable('alloc_queue')} WHERE playbook = {p} AND case_key = {p}",
            (playbook, case),
        )
