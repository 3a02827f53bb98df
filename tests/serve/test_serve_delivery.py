"""``--deliver-url`` (webhooks with ``Idempotency-Key``, retried with back-off) and a SIGKILL in the
middle of a stream of POSTs: after a restart on the same store and a re-post of everything,
every event is applied exactly once and every action delivered at least once under its id."""

from __future__ import annotations

import signal
import threading
import zlib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from serving import WAIT, Receiver, Served, ago, event, launch, receiver, tickets, until

__all__ = ["launch", "receiver", "tickets"]  # fixtures


def test_actions_are_posted_one_by_one_under_their_id_and_retried_until_2xx(
    launch: Callable[..., Served],
    receiver: Callable[..., Receiver],
    tickets: Path,
    tmp_path: Path,
) -> None:
    # every first delivery fails (500, then for one key a 404 too): each is retried after back-off
    first_fail = receiver(
        fail=lambda key, n: 500 if n == 0 else 404 if key == "D-2:1" and n == 1 else 200
    )
    store = f"sqlite:///{tmp_path / 'd.db'}"
    s = launch(str(tickets), "--store", store, "--deliver-url", first_fail.url, "--backoff", "0.2")
    with s.client() as http:
        t = ago(minutes=1)
        http.post("/events", json=[event(f"d{i}", "ticket.opened", f"D-{i}", t) for i in range(4)])
        keys = {f"D-{i}:1" for i in range(4)}  # each ticket's `send hello`

        def delivered() -> bool:
            items = [
                i for k in range(4) for i in http.get(f"/cases/tickets/D-{k}").json()["outbox"]
            ]
            return {i["id"] for i in items if i["status"] == "delivered"} == keys

        until(delivered, "every action to be delivered")
        metrics = http.get("/metrics").text
    with first_fail.lock:
        got = list(first_fail.got)
    assert {k for k, _ in got} == keys
    for key in keys:
        bodies = [b for k, b in got if k == key]
        assert len(bodies) == (3 if key == "D-2:1" else 2)
        assert all(b == bodies[0] for b in bodies)  # the same action each time
        assert bodies[0]["id"] == key and bodies[0]["type"] == "send"
        assert set(bodies[0]) == {"id", "playbook", "case", "type", "params", "at", "source"}
    assert "carepath_deliveries_total 4.0" in metrics
    assert 'carepath_delivery_failures_total{final="false"} 5.0' in metrics
    assert s.stop() == 0
    log = s.stderr()
    assert log.count("WARNING") == 5 and "HTTP 500" in log and "HTTP 404" in log
    assert "action D-2:1 (send) failed (attempt 2 of 8" in log


def test_a_receiver_that_is_down_is_retried_then_the_action_is_dead(
    launch: Callable[..., Served], tickets: Path, tmp_path: Path
) -> None:
    import socket

    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    s = launch(str(tickets), "--deliver-url", f"http://127.0.0.1:{port}/x", "--backoff", "0.01")
    with s.client() as http:
        http.post("/events", json=event("n1", "ticket.opened", "N-1", ago(minutes=1)))

        def dead() -> bool:
            items = http.get("/cases/tickets/N-1").json()["outbox"]
            return any(i["status"] == "dead" for i in items)

        until(dead, "the action to end dead after 8 attempts")
        [item] = [i for i in http.get("/cases/tickets/N-1").json()["outbox"] if i["type"] == "send"]
    assert item["attempts"] == 8 and "ConnectError" in item["last_error"]
    assert s.stop() == 0
    assert "is dead after 8 attempts" in s.stderr()


CASES = 30
NOTES = 4


def _stream() -> list[list[dict[str, Any]]]:
    """Batches of 10 events: each case opened, then noted ``NOTES`` times, all in the past."""
    t0 = ago(
        minutes=10
    )  # the reply clock breaches 20 minutes from now: no wake-up moves the cases past their events
    events = [
        event(
            f"k{c}-{n}",
            "note.added" if n else "ticket.opened",
            f"K-{c:02d}",
            t0 + timedelta(seconds=n),
        )
        for n in range(NOTES + 1)
        for c in range(CASES)
    ]
    return [events[i : i + 10] for i in range(0, len(events), 10)]


def _post_all(
    served: Served,
    batches: list[list[dict[str, Any]]],
    answered: list[Any],
    stop: threading.Event | None = None,
) -> None:
    with served.client() as http:
        for batch in batches:
            if stop is not None and stop.is_set():
                return
            try:
                answered.append(http.post("/events", json=batch).json())
            except httpx.HTTPError:
                return  # the server was killed under us


@pytest.mark.slow  # the killed server's claims lapse first (12 s)
def test_sigkill_in_a_stream_of_posts_loses_nothing(
    launch: Callable[..., Served],
    receiver: Callable[..., Receiver],
    tickets: Path,
    tmp_path: Path,
) -> None:
    # a receiver that fails one delivery in five (by key), so retries are in flight at the kill
    sink = receiver(
        fail=lambda key, n: 503 if n == 0 and zlib.crc32(key.encode()) % 5 == 0 else 200
    )
    store = f"sqlite:///{tmp_path / 'k.db'}"
    args = (str(tickets), "--store", store, "--deliver-url", sink.url, "--backoff", "0.2")
    batches = _stream()
    first = launch(*args)
    answered: list[Any] = []
    poster = threading.Thread(target=_post_all, args=(first, batches, answered))
    poster.start()
    until(lambda: len(answered) >= len(batches) // 2, "half the stream to be answered")
    first.stop(signal.SIGKILL)  # in the middle of the stream: a batch may be in hand
    poster.join(WAIT)
    assert len(answered) < len(batches)

    second = launch(*args)
    again: list[Any] = []
    _post_all(second, batches, again)  # everything, from the start
    assert len(again) == len(batches)
    statuses = [r["status"] for answer in again for r in answer]
    assert set(statuses) <= {"applied", "duplicate"}
    before = sum(1 for answer in answered for r in answer if r["status"] == "applied")
    assert statuses.count("duplicate") >= before  # what was answered before is not applied again

    with second.client() as http:

        def all_delivered() -> list[dict[str, Any]] | None:
            items = [
                i
                for c in range(CASES)
                for i in http.get(f"/cases/tickets/K-{c:02d}").json()["outbox"]
                if i["type"] == "send"
            ]
            return items if all(i["status"] == "delivered" for i in items) else None

        items = until(all_delivered, "every send to be delivered")
        states = [http.get(f"/cases/tickets/K-{c:02d}").json()["state"] for c in range(CASES)]
    assert second.stop() == 0
    # exactly once: each case took its NOTES notes once (one `send` each, plus the hello)
    assert len(items) == CASES * (NOTES + 1)
    assert all(st["stage"] == "open" for st in states)
    # at least once, always under the same id with the same action
    with sink.lock:
        got = list(sink.got)
    assert {i["id"] for i in items} <= {k for k, _ in got}
    by_id = {i["id"]: i["action"] for i in items}
    for key, body in got:
        assert body == by_id[key]
