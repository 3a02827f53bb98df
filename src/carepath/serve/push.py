"""``carepath serve --deliver-url URL``: actions POSTed to the host one by one (SPEC §9).

The pusher is a client of the service's own pull delivery: it claims a few due items through the
runtime, POSTs each action object (``{id, playbook, case, type, params, at, source}``, as
``carepath run --actions`` writes it) with ``Idempotency-Key: <action id>``, then acknowledges a
2xx answer, or gives the item back for a retry (back-off doubling from the first delay, at most
60 s, up to an hour) on anything else. A failed hand-over is logged at WARNING by the runtime.
Delivery is at least once: a crash between the POST and the acknowledgement sends the same
action again, under the same key.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from carepath.serve.service import POLL, Service

if TYPE_CHECKING:
    import httpx

    from carepath.runtime import OutboxItem

__all__ = ["BATCH", "TIMEOUT", "Pusher"]

log = logging.getLogger("carepath.serve.push")

#: Items claimed at once, and the longest wait for one answer. The lease covers the batch (2 × 5 s)
#: with room to spare, so a slow host never has a claim lapse under it, and is short, so the
#: claims of a killed server lapse soon: its successor re-delivers them within ~12 s.
BATCH = 2
TIMEOUT = 5.0
LEASE = timedelta(seconds=12)
MAX_BACKOFF = 3600.0


class Pusher:
    """Delivers the service's due actions to ``url``; ``backoff`` is the first retry delay (s)."""

    def __init__(self, service: Service, url: str, *, backoff: float = 10.0) -> None:
        if not 0 < backoff <= 60:
            raise ValueError(f"the first retry must come within 60 s, got {backoff!r} s")
        self.service = service
        self.url = url
        self.backoff = backoff
        self.next_retry: float | None = None  # the earliest retry this pusher scheduled (loop time)

    def retry_in(self, attempts: int) -> timedelta:
        """The back-off after the ``attempts``-th failed hand-over."""
        return timedelta(seconds=min(self.backoff * 2.0 ** max(0, attempts - 1), MAX_BACKOFF))

    async def run(self) -> None:
        """Deliver until the service stops; the batch in hand is finished first."""
        import httpx

        svc = self.service
        async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as client:
            while not svc.stop.is_set():
                svc.work.clear()
                try:
                    items = await svc.writer(svc.rt.claim, limit=BATCH, lease=LEASE)
                except Exception as exc:
                    log.error("claiming actions to deliver failed: %s: %s", type(exc).__name__, exc)
                    items = []
                if not items:
                    await _either(svc.stop, svc.work, self._idle())
                    continue
                for item in items:
                    await self.push(client, item)

    def _idle(self) -> float:
        """How long to wait for work: :data:`POLL`, or less when a retry falls due sooner."""
        now = asyncio.get_running_loop().time()
        if self.next_retry is not None and self.next_retry <= now:
            self.next_retry = None
        if self.next_retry is None:
            return POLL
        return min(POLL, self.next_retry - now)

    async def push(self, client: httpx.AsyncClient, item: OutboxItem) -> None:
        """POST one item, then ack it (2xx) or give it back to be retried."""
        import httpx

        svc = self.service
        body = item.action.to_json().encode("utf-8")
        headers = {"Content-Type": "application/json", "Idempotency-Key": item.id}
        try:
            answer = await client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            error = f"POST {self.url}: {type(exc).__name__}: {exc}".rstrip(": ")
        else:
            if 200 <= answer.status_code < 300:
                ok = await svc.writer(svc.rt.ack, item.id, playbook=item.playbook)
                if not ok:
                    log.warning(
                        "action %s was delivered after its claim lapsed; it may be delivered again",
                        item.id,
                        extra={"playbook": item.playbook, "case": item.case, "action_id": item.id},
                    )
                return
            error = f"POST {self.url}: HTTP {answer.status_code}"
        retry_in = self.retry_in(item.attempts)
        await svc.writer(
            svc.rt.nack,
            item.id,
            retry_in=retry_in,
            reason=error,
            playbook=item.playbook,
        )
        # measured after the nack, so the item is available by then
        now = asyncio.get_running_loop().time()
        due = now + retry_in.total_seconds() + 0.001
        if self.next_retry is None or self.next_retry <= now or due < self.next_retry:
            self.next_retry = due


async def _either(a: asyncio.Event, b: asyncio.Event, seconds: float) -> None:
    """Wait until ``a`` or ``b`` is set, or ``seconds`` pass."""
    waits = [asyncio.ensure_future(a.wait()), asyncio.ensure_future(b.wait())]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
