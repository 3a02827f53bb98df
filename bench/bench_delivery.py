"""Delivery throughput on a SQLite file: handlers (``deliver``), pull delivery (``claim`` + ``ack``)
and the cost of reporting ``action.delivered`` to the case (SPEC §9), in CPU time.

    .venv/bin/python bench/bench_delivery.py [--items 3000] [--against REV]

Each run opens a fresh store with ``--items`` cases of one ``send`` each, then delivers them all.
``quiet``: a playbook that does not ask for delivery reports; ``follow``: one that handles
``action.delivered`` (each delivery then also applies that event to its case, in the same
transaction). ``--against REV`` times the handler path of git revision REV in this process, on the
same playbook and store shape (its package is extracted with ``git archive`` and imported under
another name, as in ``bench_engine.py``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from _revision import import_revision  # noqa: E402

import carepath  # noqa: E402

T0 = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)

QUIET = """
carepath: 1
id: bench
version: "1"
timezone: UTC
start: {on: ticket.opened}
stages:
  open:
    initial: true
    enter: [{send: hello}]
    on: {ticket.closed: done, HANDLED}
    after: [{in: 1d, to: done}]
  sent:
    on: {ticket.closed: done}
    after: [{in: 1d, to: done}]
  done: {final: true}
"""

PLAYBOOKS = {
    "quiet": QUIET.replace(", HANDLED", ""),
    "follow": QUIET.replace("HANDLED", "action.delivered: sent"),
}


def _fresh(mod: ModuleType, text: str, items: int, tmp: Path) -> Any:
    runtime = importlib.import_module(f"{mod.__name__}.runtime")
    clock_mod = importlib.import_module(f"{mod.__name__}.runtime.clock")
    path = tmp / f"{mod.__name__}-{time.monotonic_ns()}.db"
    store = runtime.open_store(f"sqlite:///{path}")
    rt = runtime.Runtime([mod.loads(text)], store, clock=clock_mod.ManualClock(T0))
    at = T0.isoformat()
    rt.submit_many(
        (
            {"id": f"o{k}", "type": "ticket.opened", "at": at, "case": f"T-{k}"}
            for k in range(items)
        ),
        batch=200,
    )
    rt.clock.advance(timedelta(seconds=1))
    return rt


def _push(rt: Any) -> float:
    rt.handlers["*"] = lambda action, state: None
    t = time.process_time()
    n = rt.deliver()
    took = time.process_time() - t
    rt.store.close()
    return float(n / took)


def _pull(rt: Any) -> float:
    t = time.process_time()
    n = 0
    while items := rt.claim(limit=100):
        for item in items:
            assert rt.ack(item.id)
            n += 1
    took = time.process_time() - t
    rt.store.close()
    return n / took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--against", metavar="REV", help="also time the handler path of revision REV")
    args = ap.parse_args()
    then = import_revision(args.against) if args.against else None
    tmp = Path(tempfile.mkdtemp(prefix="carepath-bench-"))
    print(
        f"{args.items} items a run, SQLite file (synchronous=FULL), best of {args.repeat}, CPU time"
    )
    for name, text in PLAYBOOKS.items():
        push = max(_push(_fresh(carepath, text, args.items, tmp)) for _ in range(args.repeat))
        pull = max(_pull(_fresh(carepath, text, args.items, tmp)) for _ in range(args.repeat))
        line = f"{name:<7} deliver(): {push:9,.0f} items/s   claim+ack: {pull:9,.0f} items/s"
        if then is not None and name == "quiet":
            old = max(_push(_fresh(then, text, args.items, tmp)) for _ in range(args.repeat))
            line += (
                f"   deliver() at {args.against}: {old:9,.0f} items/s (now/then {push / old:.2f}×)"
            )
        print(line)


if __name__ == "__main__":
    main()
