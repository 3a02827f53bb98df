"""What ``carepath serve`` does, apart from HTTP: the one thread that owns the runtime, the
answers the endpoints return, and the wake-ups fired on the real clock.

The runtime and its store are used from one thread only (:class:`Writer`): the engines (the
native core's states are built lazily from the core) and the runtime's counters are not meant to
be shared between threads, and a store has one writer anyway (SQLite takes a database-wide write
lock). Every request is one call on that thread; the event loop never waits on the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from carepath.serve.models import CaseDetail, CaseSummary, OutboxItemOut

if TYPE_CHECKING:
    from carepath.runtime import Runtime
    from carepath.state import CaseState

__all__ = ["Service", "Snapshot", "Writer"]

log = logging.getLogger("carepath.serve")

T = TypeVar("T")

#: Longest wait between two looks for due wake-ups (the bound of the wake-up lag when idle).
POLL = 1.0

#: The most events one group commit takes from the posts waiting (a post of more goes alone).
GROUP = 1000


class Writer:
    """One thread that runs every call on the runtime and its store, one at a time."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="carepath-writer")

    async def __call__(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kw))

    def close(self) -> None:
        """Finish the call in hand and stop the thread."""
        self._pool.shutdown(wait=True)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What ``/metrics`` reports, read at once on the writer thread."""

    counters: dict[str, int]
    outbox: dict[str, int]
    oldest_pending_age: float
    wakeup_lag: float


def _breached(state: CaseState) -> bool:
    return any(c.breached for c in state.clocks.values())


class Service:
    """The runtime behind the endpoints. ``token``: the bearer token clients must present
    (``None``: no authentication, loopback only)."""

    def __init__(self, runtime: Runtime, *, token: str | None = None) -> None:
        self.rt = runtime
        self.token = token
        self.writer = Writer()
        self.stop = asyncio.Event()
        self.work = asyncio.Event()  # set when actions may have been queued
        self.counters: Counter[str] = Counter()  # steps of posted events (the writer's)
        self._queue: deque[tuple[Sequence[Any], asyncio.Future[list[dict[str, Any]]]]] = deque()
        self._flusher: asyncio.Task[None] | None = None

    # -- the endpoints' work (each runs on the writer thread) -------------------------------------
    def _submit(self, events: Sequence[Any]) -> tuple[list[dict[str, Any]], bool]:
        from carepath.cli.cases import summary

        results = self.rt.submit_many(events, batch=max(1, len(events)))
        out = []
        queued = False
        for r in results:
            self.counters["event_steps"] += len(r.cases)
            queued = queued or bool(r.actions)
            # an EventResult's document, written as the model writes it (models.results_json):
            # a model per case and clock cost more than the event's step
            doc: dict[str, Any] = {"id": r.event_id, "status": r.status}
            if r.reason is not None:
                doc["reason"] = r.reason
            if r.status == "rejected" and r.message is not None:
                doc["message"] = r.message
            doc["cases"] = [summary(s) for s in r.cases]
            out.append(doc)
        return out, queued

    async def submit(self, events: Sequence[Any]) -> list[dict[str, Any]]:
        """Submit ``events`` in one transaction; what became of each (an
        :class:`~carepath.serve.models.EventResult` document each).

        Group commit: the posts that arrive while the writer is busy wait in a queue, and the
        next transaction takes them all, in the order they came (up to :data:`GROUP` events), so
        many small posts at once share a commit instead of queueing for one each. A post's
        events are never split between transactions."""
        if not events:
            return []
        done: asyncio.Future[list[dict[str, Any]]] = asyncio.get_running_loop().create_future()
        self._queue.append((events, done))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="carepath-submit")
        return await done

    async def _flush(self) -> None:
        try:
            while self._queue:
                group = [self._queue.popleft()]
                size = len(group[0][0])
                while self._queue and size + len(self._queue[0][0]) <= GROUP:
                    group.append(self._queue.popleft())
                    size += len(group[-1][0])
                try:
                    out, queued = await self.writer(
                        self._submit, [e for evs, _ in group for e in evs]
                    )
                except Exception as exc:  # the store failed: every post of the group hears it
                    for _, done in group:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                if queued:
                    self.work.set()
                start = 0
                for evs, done in group:
                    if not done.done():
                        done.set_result(out[start : start + len(evs)])
                    start += len(evs)
        finally:
            self._flusher = None

    def _case(self, playbook: str, case: str) -> CaseDetail | None:
        state = self.rt.store.get(playbook, case)
        if state is None:
            return None
        items = self.rt.store.outbox(playbook=playbook, case=case)
        return CaseDetail(state=state.to_dict(), outbox=[OutboxItemOut.of(i) for i in items])

    async def case(self, playbook: str, case: str) -> CaseDetail | None:
        """One case with its outbox items, or ``None``."""
        return await self.writer(self._case, playbook, case)

    def _scan(
        self, after: str | None, playbook: str | None, stage: str | None, page: int
    ) -> Iterator[CaseState]:
        """The cases after ``after`` in order, read page by page; a page never ends inside a key
        (the cases of one key in several playbooks come together)."""
        cursor = after
        while True:
            rows = self.rt.store.case_page(after=cursor, limit=page, playbook=playbook, stage=stage)
            if len(rows) < page:
                yield from rows
                return
            last = rows[-1].case
            whole = [r for r in rows if r.case != last]
            if not whole:  # one key fills the page: read it whole
                page *= 2
                continue
            yield from whole
            cursor = whole[-1].case

    def _cases(
        self,
        playbook: str | None,
        stage: str | None,
        breached: bool | None,
        limit: int,
        after: str | None,
    ) -> list[CaseSummary]:
        found: list[CaseState] = []
        for state in self._scan(after, playbook, stage, max(limit + 1, 200)):
            if breached is None or _breached(state) == breached:
                found.append(state)
                if len(found) > limit:
                    break
        if len(found) > limit:
            # the next page starts after the last key of this one: keep a key's cases together
            cut = found[limit].case
            kept = [s for s in found[:limit] if s.case != cut]
            found = kept or [s for s in found if s.case == cut]
        return [CaseSummary.of(s) for s in found]

    async def cases(
        self,
        *,
        playbook: str | None = None,
        stage: str | None = None,
        breached: bool | None = None,
        limit: int = 100,
        after: str | None = None,
    ) -> list[CaseSummary]:
        """At most ``limit`` case summaries ordered by key (then playbook), after the key ``after``."""
        return await self.writer(self._cases, playbook, stage, breached, limit, after)

    def _claim(self, limit: int, lease_s: float, types: list[str] | None) -> list[OutboxItemOut]:
        items = self.rt.claim(limit=limit, lease=timedelta(seconds=lease_s), types=types)
        return [OutboxItemOut.of(i) for i in items]

    async def claim(
        self, limit: int, lease_s: float, types: list[str] | None
    ) -> list[OutboxItemOut]:
        """Lease due pending items to the service (any authenticated client may answer them)."""
        return await self.writer(self._claim, limit, lease_s, types)

    async def ack(self, item_id: str, playbook: str | None) -> bool:
        """``Runtime.ack``: ``ValueError`` when the id is claimed in several playbooks."""
        return await self.writer(self.rt.ack, item_id, playbook=playbook)

    async def nack(
        self, item_id: str, playbook: str | None, retry_in_s: float, permanent: bool, reason: str
    ) -> bool:
        """``Runtime.nack``: ``ValueError`` when the id is claimed in several playbooks."""
        return await self.writer(
            self.rt.nack,
            item_id,
            retry_in=timedelta(seconds=retry_in_s),
            permanent=permanent,
            reason=reason,
            playbook=playbook,
        )

    async def healthy(self) -> None:
        """Raise unless the store answers."""
        await self.writer(self.rt.store.schema_version)

    def _snapshot(self) -> Snapshot:
        now = time.time()
        stats = self.rt.store.outbox_stats(now)
        nxt = self._next_wakeup()
        counters = dict(self.rt.counters)
        counters["event_steps"] = self.counters["event_steps"]
        return Snapshot(
            counters=counters,
            outbox=stats.by_status,
            oldest_pending_age=0.0
            if stats.oldest_due is None
            else max(0.0, now - stats.oldest_due),
            wakeup_lag=0.0 if nxt is None else max(0.0, now - nxt),
        )

    async def snapshot(self) -> Snapshot:
        """The figures of ``/metrics``."""
        return await self.writer(self._snapshot)

    # -- wake-ups ---------------------------------------------------------------------------------
    def _next_wakeup(self) -> float | None:
        t = self.rt.next_wakeup()
        return None if t is None else t.timestamp()

    def _fire(self) -> tuple[int, float | None]:
        fired = self.rt.run_due()
        self.rt.purge_due()  # the playbooks' retention, daily (SPEC §10)
        return fired, self._next_wakeup()

    async def wakeups(self) -> None:
        """Fire due wake-ups on the real clock until :attr:`stop` is set: look again at the next
        wake-up, or after :data:`POLL` seconds if sooner (an event may bring a nearer one)."""
        while not self.stop.is_set():
            delay = POLL
            try:
                n, nxt = await self.writer(self._fire)
            except Exception as exc:
                log.error("firing wake-ups failed: %s: %s", type(exc).__name__, exc)
                log.debug("firing wake-ups failed", exc_info=True)
            else:
                if n:
                    self.work.set()
                    delay = 0.0
                elif nxt is not None:
                    delay = min(POLL, max(0.0, nxt - time.time()))
            await pause(self.stop, delay)

    async def close(self) -> None:
        """Stop the thread once its call in hand is done."""
        await asyncio.get_running_loop().run_in_executor(None, self.writer.close)


async def pause(event: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less if ``event`` is set."""
    if seconds <= 0:
        await asyncio.sleep(0)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
