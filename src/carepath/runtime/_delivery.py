"""Delivery (SPEC §7, §9): handing outbox items to handlers, pull delivery (``claim``/``ack``/
``nack``), the ``action.delivered``/``action.failed`` events, and the worker loop ``run_forever``.

Every end of a delivery is one transaction: the outbox row changes and, where the case's playbook
wants it, the reserved event (``<action id>/delivered`` or ``/failed``) is applied to the case in
the same commit, so a crash never keeps one without the other.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from carepath._instants import dt, zone
from carepath.events import Event
from carepath.runtime._tally import Tally
from carepath.runtime.store import Claimed, OutboxItem, Store, Tx

if TYPE_CHECKING:
    from carepath.compile.ir import ActionDef, Playbook
    from carepath.engine.engine import Engine
    from carepath.runtime.purge import Purge
    from carepath.state import Action, CaseState

__all__ = ["ActionHandler", "BatchHandler", "Delivery", "feedback_kinds"]

log = logging.getLogger("carepath.runtime.delivery")

#: How often the worker loop applies the playbooks' retention (SPEC §10: daily).
PURGE_EVERY = timedelta(days=1)

ActionHandler = Callable[["Action", "CaseState | None"], Any]
#: A handler that takes the due actions of one claim at once (``Runtime.action(…, batch=True)``).
BatchHandler = Callable[[list["Action"]], Any]

#: The reserved event types the runtime submits when an item ends, by outcome.
FEEDBACK = {"delivered": "action.delivered", "failed": "action.failed"}

#: The longest lease a claim may take (SPEC §7: the claims of a killed worker lapse within 60 s).
MAX_LEASE = timedelta(seconds=60)


def _actions(pb: Playbook) -> Iterable[ActionDef]:
    """Every action the playbook can emit, wherever it is declared."""
    handlers = [h for hs in pb.on.values() for h in hs]
    for stage in pb.stages.values():
        yield from stage.enter
        yield from stage.exit
        handlers.extend(h for hs in stage.on.values() for h in hs)
        for timer in stage.after:
            yield from timer.do
        for sched in stage.every:
            yield from sched.do
    for h in handlers:
        yield from h.do
    for clock in pb.clocks.values():
        for th in clock.thresholds:
            yield from th.do


def _has_fallback(a: ActionDef) -> bool:
    return a.verb in ("send", "survey") and bool(
        getattr(a, "fallback", None) or a.params.get("fallback")
    )


def feedback_kinds(pb: Playbook) -> frozenset[str]:
    """Which of ``delivered``/``failed`` the runtime reports to ``pb``'s cases: those whose event
    type the playbook mentions, both when a ``send``/``survey`` has a ``fallback`` (SPEC §9)."""
    if any(_has_fallback(a) for a in _actions(pb)):
        return frozenset(FEEDBACK)
    return frozenset(k for k, t in FEEDBACK.items() if t in pb.event_types)


@dataclass(frozen=True, slots=True)
class _End:
    """How one hand-over ended: ``delivered``; else pending again from ``retry_at``, or dead
    (``retry_at`` is ``None``) with ``error``."""

    item: OutboxItem
    delivered: bool
    retry_at: float | None = None
    error: str | None = None
    permanent: bool = False


@dataclass(frozen=True, slots=True)
class _Lease:
    item: OutboxItem
    until: float


def _extra(item: OutboxItem) -> dict[str, Any]:
    return {"playbook": item.playbook, "case": item.case, "action_id": item.id}


class Delivery:
    """The delivery half of :class:`~carepath.runtime.Runtime` (a mixin: it reads the runtime's
    store, clock, handlers and retry settings, declared here and set by the runtime)."""

    store: Store
    engines: dict[str, Engine]
    handlers: dict[str, ActionHandler]
    batch_handlers: dict[str, BatchHandler]
    worker: str
    max_attempts: int
    backoff: timedelta
    max_backoff: timedelta
    lease: timedelta
    batch: int
    counters: Counter[str]
    _keys: list[tuple[str, str]]

    def _now(self) -> datetime:
        raise NotImplementedError  # pragma: no cover - the runtime's

    def run_due(self, now: datetime | None = None) -> int:
        raise NotImplementedError  # pragma: no cover - the runtime's

    def _apply(
        self,
        tx: Tx,
        ev: Event,
        key: tuple[str, str],
        cache: dict[tuple[str, str], CaseState | None],
        seen: set[str],
        tally: Tally,
    ) -> Any:
        raise NotImplementedError  # pragma: no cover - the runtime's

    def _init_delivery(self) -> None:
        self._feedback = {pid: feedback_kinds(e.playbook) for pid, e in self.engines.items()}
        self._last_purge: datetime | None = None
        self._leases: dict[str, dict[str, _Lease]] = {}
        self._leases_lock = threading.Lock()

    # -- pushing to handlers ----------------------------------------------------------------------
    def _handler_for(self, type_: str) -> tuple[ActionHandler | None, BatchHandler | None]:
        """``(handler, batch handler)`` of ``type_``, one of them ``None``: its own (one by one
        or in batches), else the ``"*"`` one."""
        for t in (type_, "*"):
            fn, bfn = self.handlers.get(t), self.batch_handlers.get(t)
            if fn is not None or bfn is not None:
                return fn, bfn
        return None, None

    def deliver(self, now: datetime | None = None) -> int:
        """Hand due outbox items to their handlers; returns the number of hand-overs attempted.
        A handler that raises is retried after ``backoff·2^(attempts-1)`` (capped) on the
        runtime's clock; after ``max_attempts`` hand-overs the item is ``dead``. Items whose type
        has no handler (and no ``"*"``) stay pending for the host.

        Items are claimed ``batch`` at a time; every hand-over of a claim is made, then every
        outcome is committed at once (one transaction for the claim, with the reserved events):
        a crash in between hands those items over again, under the same ids (at least once).
        When every handler is a batch handler, a claim, its hand-overs and their outcomes are
        one transaction (a sink is called inside it; a transaction run again calls it again)."""
        if not self.handlers and not self.batch_handlers:
            return 0
        t = (now or self._now()).timestamp()
        known = self.handlers.keys() | self.batch_handlers.keys()
        types = None if "*" in known else sorted(known)
        until = t + self.lease.total_seconds()
        # the reserved events may queue new items due at once: then claim until none is left
        more = any(self._feedback.values())
        n = 0
        while True:
            if self.handlers:
                items = self._claim_items(t, self.batch, until, types)
                self._finish(self._hand_over(items, t), t, live=False)
            else:
                items = self._deliver_in_one(t, until, types)
            n += len(items)
            if not items or (len(items) < self.batch and not more):
                return n

    def _deliver_in_one(
        self, t: float, until: float, types: Sequence[str] | None
    ) -> list[OutboxItem]:
        """Claim, hand over to the batch handlers and end, in one transaction."""
        tally = Tally()

        def unit(tx: Tx) -> tuple[Claimed, list[_End], list[bool]]:
            tally.clear()
            got = self._claim_in(tx, t, self.batch, until, types, tally)
            ends = self._hand_over(got.items, t)
            return got, ends, self._finish_in(tx, ends, t, False, tally)

        got, ends, oks = self.store.atomic(unit)
        self._after_claim(got, tally)
        for e, ok in zip(ends, oks, strict=True):
            if ok:
                self._count_end(e, t)
        return got.items

    def _hand_over(self, items: Sequence[OutboxItem], t: float) -> list[_End]:
        """Call the handlers of ``items`` (in order; a batch handler once per run of its items)
        and say how each ended."""
        ends: list[_End] = []
        run: list[OutboxItem] = []
        run_fn: BatchHandler | None = None

        def flush_run() -> None:
            if run_fn is None or not run:
                return
            try:
                run_fn([i.action for i in run])
            except Exception as exc:
                err = f"{type(exc).__name__}: {exc}"[:2000]
                log.debug("batch handler of %d actions raised", len(run), exc_info=True)
                ends.extend(self._failed(i, err, t + self._backoff(i.attempts)) for i in run)
            else:
                ends.extend(_End(i, delivered=True) for i in run)
            run.clear()

        for item in items:
            fn, bfn = self._handler_for(item.type)
            if bfn is not None:
                if bfn is not run_fn:
                    flush_run()
                    run_fn = bfn
                run.append(item)
                continue
            flush_run()
            run_fn = None
            if fn is None:  # pragma: no cover - the claim filters by type
                continue
            try:
                fn(item.action, self.store.get(item.playbook, item.case))
            except Exception as exc:
                err = f"{type(exc).__name__}: {exc}"[:2000]
                log.debug("handler of action %s raised", item.id, exc_info=True, extra=_extra(item))
                ends.append(self._failed(item, err, t + self._backoff(item.attempts)))
            else:
                ends.append(_End(item, delivered=True))
        flush_run()
        return ends

    def _failed(
        self, item: OutboxItem, err: str, retry_at: float | None, permanent: bool = False
    ) -> _End:
        """A failed hand-over: back to pending from ``retry_at``, or ``dead`` (``retry_at`` is
        ``None``, or this was the last allowed attempt)."""
        dead = retry_at is None or item.attempts >= self.max_attempts
        return _End(item, False, None if dead else retry_at, err, permanent)

    def _backoff(self, attempts: int) -> float:
        first = self.backoff.total_seconds()
        return min(first * 2.0 ** max(0, attempts - 1), self.max_backoff.total_seconds())

    # -- pull delivery ----------------------------------------------------------------------------
    def claim(
        self,
        limit: int = 100,
        lease: timedelta = MAX_LEASE,
        types: Sequence[str] | None = None,
    ) -> list[OutboxItem]:
        """Lease up to ``limit`` due pending outbox items to this runtime (SPEC §9), oldest first.

        Each must be answered with :meth:`ack` or :meth:`nack` before ``lease`` (at most 60 s) ends
        on the runtime's clock; an unanswered claim lapses and the item can be claimed again (by
        anyone), counting one more attempt. ``types`` limits the action types (``None``: all).
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"claim limit must be a positive integer, got {limit!r}")
        if not isinstance(lease, timedelta) or not timedelta(0) < lease <= MAX_LEASE:
            raise ValueError(f"claim lease must be more than 0 s and at most 60 s, got {lease!r}")
        if isinstance(types, str):
            types = [types]
        now = self._now().timestamp()
        until = now + lease.total_seconds()
        items = self._claim_items(now, limit, until, None if types is None else list(types))
        with self._leases_lock:
            self._prune_leases(now)
            for item in items:
                self._leases.setdefault(item.id, {})[item.playbook] = _Lease(item, until)
        return items

    def ack(self, item_id: str, *, playbook: str | None = None) -> bool:
        """Mark a claimed item ``delivered``. ``False``, and nothing changes, unless the item is
        under a live lease of this runtime. ``playbook`` picks the item when this runtime holds
        leases on items of the same id in several playbooks."""
        now = self._now().timestamp()
        lease = self._take_lease(item_id, playbook, now)
        return lease is not None and self._finish([_End(lease.item, True)], now, live=True)[0]

    def nack(
        self,
        item_id: str,
        retry_in: timedelta = timedelta(minutes=5),
        permanent: bool = False,
        reason: str = "",
        *,
        playbook: str | None = None,
    ) -> bool:
        """Give a claimed item back as not delivered: it is claimable again ``retry_in`` later,
        or ``dead`` when ``permanent`` or when it had its last allowed attempt (``max_attempts``);
        ``reason`` is kept as its ``last_error``. ``False``, and nothing changes, unless the item
        is under a live lease of this runtime."""
        if not isinstance(retry_in, timedelta) or retry_in < timedelta(0):
            raise ValueError(f"retry_in must be a timedelta of 0 s or more, got {retry_in!r}")
        now = self._now().timestamp()
        lease = self._take_lease(item_id, playbook, now)
        if lease is None:
            return False
        err = (str(reason) or "nack")[:2000]
        retry_at = None if permanent else now + retry_in.total_seconds()
        end = self._failed(lease.item, err, retry_at, permanent)
        return self._finish([end], now, live=True)[0]

    def _take_lease(self, item_id: str, playbook: str | None, now: float) -> _Lease | None:
        with self._leases_lock:
            held = self._leases.get(item_id, {})
            if playbook is None and len(held) > 1:
                raise ValueError(
                    f"item {item_id!r} is claimed in several playbooks ({', '.join(sorted(held))}): "
                    "name the playbook"
                )
            pid = playbook if playbook is not None else next(iter(held), None)
            lease = held.pop(pid, None) if pid is not None else None
            if not held:
                self._leases.pop(item_id, None)
        if lease is None or lease.until <= now:
            return None
        return lease

    def _prune_leases(self, now: float) -> None:
        for item_id in [
            i for i, h in self._leases.items() if all(x.until <= now for x in h.values())
        ]:
            del self._leases[item_id]

    # -- the end of a delivery --------------------------------------------------------------------
    def _claim_items(
        self, now: float, limit: int, until: float, types: Sequence[str] | None
    ) -> list[OutboxItem]:
        """Claim in one transaction; the items found dead (their last lease lapsed) are reported
        to their cases in the same commit."""
        tally = Tally()

        def unit(tx: Tx) -> Claimed:
            tally.clear()
            return self._claim_in(tx, now, limit, until, types, tally)

        got = self.store.atomic(unit)
        self._after_claim(got, tally)
        return got.items

    def _claim_in(
        self,
        tx: Tx,
        now: float,
        limit: int,
        until: float,
        types: Sequence[str] | None,
        tally: Tally,
    ) -> Claimed:
        got = tx.claim_outbox(now, limit, until, self.worker, types, self.max_attempts)
        for item in got.dead:
            reason = item.last_error or "lease lapsed"
            self._report(tx, item, "failed", now, tally, reason=reason, permanent=False)
        return got

    def _after_claim(self, got: Claimed, tally: Tally) -> None:
        self.counters.update(tally)
        tally.log()
        for item in got.dead:
            self.counters["dead"] += 1
            log.warning(
                "action %s (%s) is dead after %d attempts: %s",
                item.id,
                item.type,
                item.attempts,
                item.last_error or "lease lapsed",
                extra=_extra(item),
            )

    def _finish(self, ends: Sequence[_End], now: float, *, live: bool) -> list[bool]:
        """End claims in one commit, each with its reserved event where the playbook wants one;
        says for each whether it changed the item (``live``: only under a live lease of ours)."""
        if not ends:
            return []
        tally = Tally()

        def unit(tx: Tx) -> list[bool]:
            tally.clear()
            return self._finish_in(tx, ends, now, live, tally)

        oks = self.store.atomic(unit)
        self.counters.update(tally)
        tally.log()
        for e, ok in zip(ends, oks, strict=True):
            if ok:
                self._count_end(e, now)
        return oks

    def _finish_in(
        self, tx: Tx, ends: Sequence[_End], now: float, live: bool, tally: Tally
    ) -> list[bool]:
        oks: list[bool] = []
        run: list[OutboxItem] = []  # delivered items that report nothing, ended together

        def end_run() -> None:
            if run:
                oks.extend(tx.finish_delivered([(i.playbook, i.id) for i in run], self.worker, now))
                run.clear()

        feedback = self._feedback
        for e in ends:
            item = e.item
            if e.delivered and not live and "delivered" not in feedback.get(item.playbook, ()):
                run.append(item)
                continue
            end_run()
            ok = tx.finish_outbox(
                item.playbook,
                item.id,
                self.worker,
                delivered=e.delivered,
                retry_at=e.retry_at,
                error=e.error,
                live_at=now if live else None,
                delivered_at=now if e.delivered else None,
            )
            kind = "delivered" if e.delivered else "failed" if e.retry_at is None else None
            if ok and kind is not None:
                self._report(tx, item, kind, now, tally, reason=e.error, permanent=e.permanent)
            oks.append(ok)
        end_run()
        return oks

    def _count_end(self, e: _End, now: float) -> None:
        item = e.item
        if e.delivered:
            self.counters["delivered"] += 1
        elif e.retry_at is None:
            self.counters["dead"] += 1
            log.warning(
                "action %s (%s) is dead after %d attempts%s: %s",
                item.id,
                item.type,
                item.attempts,
                " (permanent failure)" if e.permanent else "",
                e.error,
                extra=_extra(item),
            )
        else:
            self.counters["failed"] += 1
            log.warning(
                "action %s (%s) failed (attempt %d of %d, retried at %s): %s",
                item.id,
                item.type,
                item.attempts,
                self.max_attempts,
                dt(e.retry_at, zone("UTC")).isoformat(),
                e.error,
                extra=_extra(item),
            )

    def _report(
        self,
        tx: Tx,
        item: OutboxItem,
        kind: str,
        now: float,
        tally: Tally,
        *,
        reason: str | None = None,
        permanent: bool = False,
    ) -> None:
        """Apply ``action.delivered``/``action.failed`` to the item's case, inside ``tx``, when its
        playbook wants it. Its ``at`` is the runtime's time, or the case's ``now`` if later."""
        if kind not in self._feedback.get(item.playbook, ()):
            return
        event_id = f"{item.id}/{kind}"
        key = (item.playbook, item.case)
        pre = tx.prefetch([event_id], [key])
        cache = dict(pre.states)
        state = cache.get(key)
        at = dt(now, zone("UTC"))
        if state is not None and state.now > at:
            at = state.now
        data: dict[str, Any] = {"action": item.action.to_dict()}
        if kind == "failed":
            data["reason"] = reason or ""
            data["permanent"] = bool(permanent)
        ev = Event(event_id, FEEDBACK[kind], at, item.case, data)
        self._apply(tx, ev, key, cache, set(pre.seen), tally)

    # -- the worker loop --------------------------------------------------------------------------
    def run_forever(self, stop: threading.Event | None = None, poll: float = 1.0) -> None:
        """Fire due wake-ups and deliver due actions until ``stop`` is set (SPEC §9): after a round
        that did nothing, wait for the store to signal work (:meth:`Store.wait_for_work`) at most
        ``poll`` seconds, or until the next wake-up if sooner. An error of the store is logged and
        the loop goes on after ``poll``; handlers' errors are retried with back-off."""
        if not poll > 0:
            raise ValueError(f"poll must be a positive number of seconds, got {poll!r}")
        log.info(
            "worker %s started on %s", self.worker, self.store.url or type(self.store).__name__
        )
        while stop is None or not stop.is_set():
            try:
                busy = self.run_due() + self.deliver()
                self.purge_due()
            except Exception as exc:
                log.error("worker round failed: %s: %s", type(exc).__name__, exc)
                log.debug("worker round failed", exc_info=True)
                busy = 0
            if busy or (stop is not None and stop.is_set()):
                continue
            self._idle(stop, poll)
        log.info("worker %s stopped", self.worker)

    def purge_due(self, now: datetime | None = None) -> Purge | None:
        """Apply the playbooks' ``retention`` (:meth:`Store.purge`, SPEC §10) if this runtime has
        not done so in the last :data:`PURGE_EVERY` (a day) of its clock: the worker loop calls
        it every round, so a worker purges when it starts and daily after that. Returns the
        counts, or ``None`` when nothing was due or no playbook declares a retention."""
        playbooks = [e.playbook for e in self.engines.values() if e.playbook.retention]
        if not playbooks:
            return None
        now = self._now() if now is None else now
        last = self._last_purge
        if last is not None and now - last < PURGE_EVERY:
            return None
        done = self.store.purge(playbooks, now.timestamp())
        self._last_purge = now
        log.info(
            "retention applied: %d case(s), %d action(s), %d rejected event(s) purged",
            done.cases,
            done.actions,
            done.rejected,
        )
        return done

    def _idle(self, stop: threading.Event | None, poll: float) -> None:
        timeout = poll
        try:
            nxt = self.store.next_wakeup(self._keys)
        except Exception:  # the next round says what is wrong
            nxt = None
        if nxt is not None:
            timeout = min(poll, max(0.0, nxt - self._now().timestamp()))
        if timeout <= 0:
            return
        if type(self.store).wait_for_work is Store.wait_for_work and stop is not None:
            stop.wait(timeout)  # a store that can only sleep: sleep on the stop event instead
        else:
            self.store.wait_for_work(timeout)
