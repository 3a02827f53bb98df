"""The store interface: what the :class:`~carepath.runtime.Runtime` needs from a database.

The runtime owns every decision (routing, entry and re-entry, rejection, retries and back-off);
a store only keeps rows and makes a unit of work atomic. A new store (PostgreSQL, a key-value
store…) implements :class:`Store` and :class:`Tx`; the shared test suite
(``tests/runtime/test_store.py``) runs against every factory it is given.

Rules a store must keep
-----------------------
* :meth:`Store.atomic` runs ``fn(tx)`` in ONE transaction and commits, or rolls back and
  re-raises. On contention (a busy database file, a serialization failure, a deadlock, a
  unique-key race on ``processed``) it rolls back and calls ``fn`` again with a fresh ``tx``:
  ``fn`` must therefore have no side effects outside ``tx`` (the runtime keeps it so).
* Inside a transaction, :meth:`Tx.load`, :meth:`Tx.prefetch` and :meth:`Tx.due` lock the case rows
  they return until commit (SQLite: the database write lock taken by ``BEGIN IMMEDIATE``; PostgreSQL:
  ``SELECT … FOR UPDATE`` / ``FOR UPDATE SKIP LOCKED``), so one case is never advanced by two
  workers at once. :meth:`Tx.prefetch` answers a whole batch of events at once (their processed
  ids, their cases, locked in one deterministic order), so a batch costs a fixed number of round
  trips whatever its size; a store that cannot do better inherits the one-by-one default.
* Outbox rows are claimed with a lease that ends on the runtime's clock (:meth:`Tx.claim_outbox`);
  a claim whose lease has ended may be taken by anyone. Finishing a claim is idempotent and says
  whether it changed the item (:meth:`Tx.finish_outbox`). Both are :class:`Tx` methods, so the
  runtime can commit the end of a delivery together with the ``action.delivered`` /
  ``action.failed`` event it submits to the case (SPEC §9); :meth:`Store.claim_outbox` and
  :meth:`Store.finish_outbox` run them in a transaction of their own.
* Instants cross the interface as POSIX seconds (``float``) of the runtime's clock.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from carepath._records import fast_init
from carepath.errors import StoreError
from carepath.runtime.erasure import Erasure, erase
from carepath.state import Action, CaseState

if TYPE_CHECKING:
    from carepath.compile.ir import Playbook
    from carepath.runtime.purge import Purge

__all__ = [
    "Claimed",
    "OutboxItem",
    "OutboxStats",
    "Prefetched",
    "Rejected",
    "Store",
    "StoreError",
    "Tx",
]

CaseKey = tuple[str, str]

T = TypeVar("T")


@fast_init
@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One action waiting for (or done with) delivery. ``id`` is the action's id."""

    id: str
    playbook: str
    case: str
    type: str
    status: str  # pending | delivered | dead
    attempts: int
    action: Action
    available_at: float = 0.0  # earliest (next) hand-over, POSIX seconds
    claimed_until: float | None = None
    claimed_by: str | None = None
    last_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{id, playbook, case, type, status, attempts, action}`` (+ ``last_error`` when set)."""
        d: dict[str, Any] = {
            "id": self.id,
            "playbook": self.playbook,
            "case": self.case,
            "type": self.type,
            "status": self.status,
            "attempts": self.attempts,
            "action": self.action.to_dict(),
        }
        if self.last_error:
            d["last_error"] = self.last_error
        return d

    # mapping-style access, so ``item["status"]`` works as the SPEC's `{id, …}` items suggest
    def __getitem__(self, key: str) -> Any:
        if key == "action":
            return self.action
        if key in ("id", "playbook", "case", "type", "status", "attempts", "last_error"):
            return getattr(self, key)
        raise KeyError(key)


@dataclass(frozen=True, slots=True)
class Rejected:
    """An event that was not applied: ``{event, reason, message, at}``.

    ``event`` is the event as received (a JSON object), or ``{"raw": text}`` for a line that is
    not JSON; ``reason`` is ``out_of_order | invalid | unknown_case | playbook_mismatch``;
    ``at`` the runtime's time of receipt (POSIX seconds); ``cases`` the (playbook, case) keys
    involved, when known.
    """

    event: dict[str, Any]
    reason: str
    message: str
    at: float
    cases: tuple[tuple[str, str], ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON shape, ``at`` as ISO 8601."""
        from carepath._instants import to_iso

        return {
            "event": self.event,
            "reason": self.reason,
            "message": self.message,
            "at": to_iso(self.at),
            "cases": [{"playbook": p, "case": c} for p, c in self.cases],
        }

    def __getitem__(self, key: str) -> Any:
        if key in ("event", "reason", "message", "cases"):
            return getattr(self, key)
        if key == "at":
            from carepath._instants import to_iso

            return to_iso(self.at)
        raise KeyError(key)


class Prefetched(NamedTuple):
    """What :meth:`Tx.prefetch` found: the ``seen`` (already processed) ids among those asked, and
    the current ``states`` of every asked ``(playbook, case)`` key (``None``: no such case yet)."""

    seen: frozenset[str]
    states: dict[CaseKey, CaseState | None]


class Claimed(NamedTuple):
    """What :meth:`Tx.claim_outbox` did: the ``items`` now leased to the caller, and the items it
    found ``dead`` instead (their last allowed hand-over lapsed without an answer)."""

    items: list[OutboxItem]
    dead: list[OutboxItem]


class OutboxStats(NamedTuple):
    """What :meth:`Store.outbox_stats` counts: items by ``status`` (``pending``, ``delivered``,
    ``dead``; a status with no item is absent) and ``oldest_due``, the earliest ``available_at``
    of a pending item that is available at the given instant (``None``: none is)."""

    by_status: dict[str, int]
    oldest_due: float | None


class Tx(abc.ABC):
    """One open transaction. Everything written through it commits together or not at all."""

    def prefetch(self, event_ids: Collection[str], keys: Collection[CaseKey]) -> Prefetched:
        """Everything a batch of events reads, at once: which of ``event_ids`` were processed
        before, and the cases ``keys`` (``None`` for a key without a case), locked until commit
        like :meth:`load`. Stores lock the keys in one deterministic order (sorted), so two
        batches sharing cases wait for each other instead of deadlocking.

        The default asks :meth:`seen` and :meth:`load` one by one; a networked store overrides
        it with a constant number of round trips (PostgreSQL: one ``= ANY`` query and one
        ``FOR UPDATE`` query, pipelined).
        """
        seen = frozenset(i for i in set(event_ids) if self.seen(i))
        return Prefetched(seen, {k: self.load(*k) for k in sorted(set(keys))})

    @abc.abstractmethod
    def seen(self, event_id: str) -> bool:
        """Whether ``event_id`` was processed (applied or ignored) before."""

    @abc.abstractmethod
    def mark_processed(self, event_id: str, at: float) -> None:
        """Record ``event_id`` as processed (at the runtime time ``at``)."""

    @abc.abstractmethod
    def load(self, playbook: str, case: str) -> CaseState | None:
        """The case ``(playbook, case)``, locked until commit; ``None`` if unknown."""

    @abc.abstractmethod
    def save(self, state: CaseState, at: float) -> None:
        """Insert or replace the case (state, stage, version/hash and the wake-up index)."""

    @abc.abstractmethod
    def due(
        self,
        now: float,
        limit: int,
        playbooks: Sequence[tuple[str, str]],
        exclude: Iterable[tuple[str, str]] = (),
    ) -> list[CaseState]:
        """Up to ``limit`` cases whose next wake-up is ≤ ``now``, earliest first, locked (skipping
        rows locked by others), of the given ``(playbook id, content hash)`` pairs only, without
        the ``exclude`` keys."""

    @abc.abstractmethod
    def add_outbox(self, actions: Sequence[Action]) -> None:
        """Queue actions as ``pending`` items available at their ``at``; an existing
        ``(playbook, id)`` is left as it is (a replayed step never duplicates an item)."""

    def add_step_outbox(self, step: Any) -> None:
        """:meth:`add_outbox` of an engine step's actions. The SQL stores take a native step's
        rows straight from the core's tuples (:func:`carepath._native.raw.outbox_rows`),
        without building its ``Action`` objects."""
        self.add_outbox(step.actions)

    @abc.abstractmethod
    def add_rejected(self, rejected: Rejected) -> None:
        """Record a rejected event. The same event content rejected for the same reason is
        stored once (replays after a crash do not pile up copies)."""

    @abc.abstractmethod
    def claim_outbox(
        self,
        now: float,
        limit: int,
        lease_until: float,
        worker: str,
        types: Sequence[str] | None = None,
        max_attempts: int | None = None,
    ) -> Claimed:
        """Claim up to ``limit`` pending items available at ``now`` whose claim is free or lapsed
        (``claimed_until ≤ now``), of ``types`` (``None`` = any), oldest first, skipping rows
        locked by others; increment their ``attempts`` and stamp ``claimed_until``/``claimed_by``.
        An item that already had ``max_attempts`` hand-overs is marked ``dead`` instead (with
        ``last_error`` kept, or ``lease lapsed``) and returned in :attr:`Claimed.dead`."""

    @abc.abstractmethod
    def finish_outbox(
        self,
        playbook: str,
        item_id: str,
        worker: str,
        *,
        delivered: bool,
        retry_at: float | None = None,
        error: str | None = None,
        live_at: float | None = None,
        delivered_at: float | None = None,
    ) -> bool:
        """End a claim: ``delivered`` → ``delivered`` (with ``delivered_at``, the instant it was
        delivered becomes its ``available_at``: what ``retention.delivered_actions`` counts
        from); otherwise ``retry_at`` → pending again from
        then, or ``None`` → ``dead``; returns whether the item changed. A failure is taken only
        from the worker holding the claim (it is ignored if another worker took the lapsed
        lease); ``delivered`` wins over any other state but ``delivered``. With ``live_at`` every
        outcome requires a pending item under ``worker``'s lease still live at ``live_at``
        (``claimed_until > live_at``): the rule of ``Runtime.ack``/``nack``."""

    def finish_delivered(
        self, items: Sequence[tuple[str, str]], worker: str, delivered_at: float | None
    ) -> list[bool]:
        """:meth:`finish_outbox` with ``delivered=True`` (and ``delivered_at``) of every
        ``(playbook, id)`` of ``items``, in order; whether each changed its item. The default
        ends them one by one; a store may end them all with a few statements."""
        return [
            self.finish_outbox(pb, item_id, worker, delivered=True, delivered_at=delivered_at)
            for pb, item_id in items
        ]

    # -- allocation (SPEC §10): a store without these cannot run a roster ----------------------
    def lock_allocation(self) -> None:
        """Serialize allocations until commit, so loads read here stay true until then."""
        raise StoreError(f"{type(self).__name__} does not keep allocation rows")

    def agent_loads(self) -> dict[str, int]:
        """Open assigned cases per agent."""
        raise StoreError(f"{type(self).__name__} does not keep allocation rows")

    def last_assigned(self, tier: str) -> str | None:
        """The agent the allocator chose last in ``tier``."""
        raise StoreError(f"{type(self).__name__} does not keep allocation rows")

    def set_assignment(
        self, playbook: str, case: str, agent: str, at: float, tier: str | None
    ) -> None:
        """``agent`` holds the case; with ``tier``, it is that tier's last choice."""
        raise StoreError(f"{type(self).__name__} does not keep allocation rows")

    def drop_assignment(self, playbook: str, case: str) -> None:
        """The case no longer counts in anybody's load; its queued ``assign`` goes too."""
        raise StoreError(f"{type(self).__name__} does not keep allocation rows")

    def queue_assignment(self, action: Action, since: float) -> None:
        """Keep an ``assign`` nobody was free for (one per case)."""
        raise StoreError(f"{type(self).__name__} does not keep allocation rows")

    def queued_assignments(self, limit: int) -> list[Action]:
        """The queued ``assign`` actions, oldest first."""
        raise StoreError(f"{type(self).__name__} does not keep allocation rows")

    def unqueue_assignment(self, playbook: str, case: str) -> None:
        """Forget the case's queued ``assign``."""
        raise StoreError(f"{type(self).__name__} does not keep allocation rows")


class Store(abc.ABC):
    """A durable home for cases, processed ids, the outbox and rejected events."""

    url: str = ""

    # -- transactions -------------------------------------------------------------------------
    @abc.abstractmethod
    def atomic(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` in one transaction (retrying it on contention) and return its result."""

    # -- outbox claims (each its own short transaction) -------------------------------------------
    def claim_outbox(
        self,
        now: float,
        limit: int,
        lease_until: float,
        worker: str,
        types: Sequence[str] | None = None,
        max_attempts: int | None = None,
    ) -> list[OutboxItem]:
        """:meth:`Tx.claim_outbox` in a transaction of its own; returns the claimed items."""
        return self.atomic(
            lambda tx: tx.claim_outbox(now, limit, lease_until, worker, types, max_attempts)
        ).items

    def finish_outbox(
        self,
        playbook: str,
        item_id: str,
        worker: str,
        *,
        delivered: bool,
        retry_at: float | None = None,
        error: str | None = None,
        live_at: float | None = None,
        delivered_at: float | None = None,
    ) -> bool:
        """:meth:`Tx.finish_outbox` in a transaction of its own."""
        return self.atomic(
            lambda tx: tx.finish_outbox(
                playbook,
                item_id,
                worker,
                delivered=delivered,
                retry_at=retry_at,
                error=error,
                live_at=live_at,
                delivered_at=delivered_at,
            )
        )

    @abc.abstractmethod
    def release_claims(self) -> int:
        """Make every claimed pending item claimable at once (a replay of a simulated timeline
        takes over the claims of the run it replaces); returns how many."""

    # -- reading ------------------------------------------------------------------------------
    @abc.abstractmethod
    def get(self, playbook_id: str, case_key: str) -> CaseState | None:
        """One case, or ``None``."""

    @abc.abstractmethod
    def cases(self, playbook_id: str | None = None) -> list[CaseState]:
        """Every case (of ``playbook_id``), ordered by playbook then key."""

    @abc.abstractmethod
    def outbox(
        self, status: str | None = None, playbook: str | None = None, case: str | None = None
    ) -> list[OutboxItem]:
        """Outbox items, oldest first, optionally filtered."""

    @abc.abstractmethod
    def rejected(self, case: str | None = None) -> list[Rejected]:
        """Rejected events, oldest first (``case``: those naming that case key)."""

    def open_versions(self) -> list[tuple[str, str, str, int]]:
        """``(playbook id, version, content hash, number of open cases)`` for every version that
        has open (not ended) cases, ordered. The default reads every case; SQL stores count."""
        n: dict[tuple[str, str, str], int] = {}
        for st in self.cases():
            if not st.ended:
                k = (st.playbook, st.version, st.content_hash)
                n[k] = n.get(k, 0) + 1
        return [(*k, v) for k, v in sorted(n.items())]

    def stale_keys(self, playbook_id: str, content_hash: str) -> list[str]:
        """The keys of the open cases of ``playbook_id`` whose content hash is not
        ``content_hash`` (the cases a migration moves), ordered."""
        return [
            st.case
            for st in self.cases(playbook_id)
            if not st.ended and st.content_hash != content_hash
        ]

    @abc.abstractmethod
    def processed_count(self) -> int:
        """How many event ids were processed."""

    @abc.abstractmethod
    def next_wakeup(self, playbooks: Sequence[tuple[str, str]] | None = None) -> float | None:
        """The earliest wake-up of any case (of those playbooks), or ``None``."""

    def case_page(
        self,
        *,
        after: str | None = None,
        limit: int = 100,
        playbook: str | None = None,
        stage: str | None = None,
    ) -> list[CaseState]:
        """Up to ``limit`` cases ordered by case key, then playbook, whose key sorts after
        ``after`` (every key when ``None``), of ``playbook`` and in ``stage`` when given: one page
        of a listing that goes on with ``after`` = the last key read. The default reads
        :meth:`cases`; the SQL stores ask the database for the page."""
        rows = sorted(
            (
                s
                for s in self.cases(playbook)
                if (stage is None or s.stage == stage) and (after is None or s.case > after)
            ),
            key=lambda s: (s.case, s.playbook),
        )
        return rows[: max(0, limit)]

    def outbox_stats(self, now: float) -> OutboxStats:
        """Outbox items by status and the oldest due pending item (see :class:`OutboxStats`), as of
        ``now``. The default reads :meth:`outbox`; the SQL stores count in the database."""
        by_status: dict[str, int] = {}
        oldest: float | None = None
        for item in self.outbox():
            by_status[item.status] = by_status.get(item.status, 0) + 1
            if item.status == "pending" and item.available_at <= now:
                oldest = item.available_at if oldest is None else min(oldest, item.available_at)
        return OutboxStats(by_status, oldest)

    # -- waiting ------------------------------------------------------------------------------
    def wait_for_work(self, timeout: float) -> bool:
        """Block until another process may have queued work (outbox rows, a nearer wake-up) or
        ``timeout`` seconds pass; ``True`` if woken early. A long-running worker calls it when idle.
        The default just sleeps (polling); PostgreSQL listens for ``NOTIFY``."""
        import time

        time.sleep(max(0.0, timeout))
        return False

    # -- lifecycle ----------------------------------------------------------------------------
    def erase(
        self,
        case: str | None = None,
        *,
        field: str | None = None,
        value: Any = None,
        playbook: str | None = None,
    ) -> Erasure:
        """Replace the personal data (``pii: true``) of one case (``case``), or of the cases whose
        ``field`` equals ``value``, with null; one transaction per case (SPEC §10)."""
        return erase(self, case, field=field, value=value, playbook=playbook)

    def purge(self, playbooks: Sequence[Playbook], now: float) -> Purge:
        """Delete what the ``retention`` of ``playbooks`` keeps no longer as of ``now`` (epoch
        seconds): ended cases one transaction per case, delivered actions, rejected events."""
        from carepath.runtime.purge import purge

        return purge(self, playbooks, now)

    @abc.abstractmethod
    def schema_version(self) -> int:
        """The schema version of the open store."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
