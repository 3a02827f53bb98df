"""A worker killed with SIGKILL while it acknowledges never leaves an item delivered without its
``action.delivered`` event applied to the case, or the event without the item (SPEC §7, §9): both
commit together. Real processes on SQLite and PostgreSQL; the clock is injected. Marked slow (a
few seconds a store: a new process each round)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

import carepath
from carepath.runtime import Runtime, open_store
from carepath.runtime.clock import ManualClock
from conftest import postgres_schema_url

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
T0 = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
CASES = 60

PLAYBOOK = """
carepath: 1
id: acks
version: "1"
timezone: UTC
start: {on: ticket.opened}
stages:
  open:
    initial: true
    enter: [{send: hello}]
    on: {action.delivered: sent}
    after: [{in: 1d, to: done}]
  sent:
    after: [{in: 1d, to: done}]
  done: {final: true}
"""

_WORKER = textwrap.dedent("""
    import sys
    from datetime import datetime, timedelta
    import carepath
    from carepath.runtime import Runtime, open_store
    from carepath.runtime.clock import ManualClock

    url, playbook, at, n = sys.argv[1:5]
    clock = ManualClock(datetime.fromisoformat(at))
    rt = Runtime([carepath.loads(open(playbook).read())], open_store(url), clock=clock)
    done = 0
    while items := rt.claim(limit=5):
        for item in items:
            rt.ack(item.id)
            done += 1
            print(done, flush=True)
    print("end", flush=True)
""")

URLS: dict[str, Callable[[Path], str]] = {
    "sqlite": lambda tmp: f"sqlite:///{tmp / 'cases.db'}",
    "postgres": lambda tmp: postgres_schema_url(),
}


def _consistent(url: str) -> int:
    """The number of delivered items, after checking each has its event applied and no more."""
    store = open_store(url)
    try:
        delivered = {i.case for i in store.outbox(status="delivered")}
        sent = {s.case for s in store.cases() if s.stage == "sent"}
        assert delivered == sent
        assert store.processed_count() == CASES + len(delivered)
        return len(delivered)
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(URLS))
def test_sigkill_while_acking_keeps_items_and_events_together(kind: str, tmp_path: Path) -> None:
    url = URLS[kind](tmp_path)
    playbook = tmp_path / "acks.yaml"
    playbook.write_text(PLAYBOOK, encoding="utf-8")
    store = open_store(url)
    rt = Runtime([carepath.loads(PLAYBOOK)], store, clock=ManualClock(T0))
    rt.submit_many(
        {"id": f"o{k}", "type": "ticket.opened", "at": T0.isoformat(), "case": f"T-{k}"}
        for k in range(CASES)
    )
    store.close()
    rng = random.Random(18)
    delivered, round_ = 0, 0
    while delivered < CASES:
        # each round a minute later: the leases of the killed worker have lapsed
        at = T0.replace(minute=round_ + 1).isoformat()
        round_ += 1
        proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER, url, str(playbook), at, str(CASES)],
            stdout=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        assert proc.stdout is not None
        stop_after = rng.randint(1, 25)
        for line in proc.stdout:
            if line.strip() == "end" or int(line) >= stop_after:
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)
        delivered = _consistent(url)
        assert round_ < 40, "no progress"
    assert delivered == CASES
