"""Durable events/s and wake-ups/s on PostgreSQL with 1, 2 and 4 worker processes (ratio to one
worker), beside SQLite and the pure engine on the same event log.

    .venv/bin/python bench/bench_postgres.py [--copies N] [--batch N] [--url postgresql://…]

Events are partitioned by case key over the workers; each worker submits its share in batches of
``--batch`` events per transaction (one commit each, ``synchronous_commit`` as the server has it,
``on`` by default: every commit waits for the WAL fsync). Wake-ups: every worker runs
``run_due(until)`` at once on the shared store (``FOR UPDATE SKIP LOCKED``). Each run uses a fresh
schema, dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
import uuid
import zlib
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_runtime import log  # noqa: E402

import carepath  # noqa: E402
from carepath.clock import ManualClock  # noqa: E402
from carepath.runtime import Runtime, open_store  # noqa: E402
from carepath.simulate import Simulator  # noqa: E402
from carepath.state import Event  # noqa: E402

PLAYBOOK = ROOT / "examples/vn-retail-support.yaml"
UNTIL = datetime.fromisoformat("2027-04-01T00:00:00+07:00")


def _worker(url: str, lines: list[str], batch: int, barrier: Any, out: Any) -> None:
    store = open_store(url)
    rt = Runtime([carepath.load(PLAYBOOK)], store, clock=ManualClock(), batch=200)
    barrier.wait()
    t = time.perf_counter()
    rt.submit_many(lines, batch=batch)
    submit_s = time.perf_counter() - t
    barrier.wait()
    t = time.perf_counter()
    woken = rt.run_due(UNTIL)
    due_s = time.perf_counter() - t
    out.put((submit_s, woken, due_s, rt.counters["applied"]))
    store.close()


def _pg(url: str, lines: list[str], workers: int, batch: int) -> tuple[float, float]:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    u = f"{url}{'&' if '?' in url else '?'}schema={schema}"
    open_store(u).close()  # migrate once
    parts: list[list[str]] = [[] for _ in range(workers)]
    for x in lines:
        parts[zlib.crc32(json.loads(x)["case"].encode()) % workers].append(x)
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(workers + 1), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(u, p, batch, barrier, out)) for p in parts]
    for p in procs:
        p.start()
    barrier.wait()
    t = time.perf_counter()
    barrier.wait()
    submit_wall = time.perf_counter() - t
    t = time.perf_counter()
    res = [out.get() for _ in procs]
    due_wall = time.perf_counter() - t
    for p in procs:
        p.join()
    applied = sum(r[3] for r in res)
    woken = sum(r[1] for r in res)
    s = open_store(u)
    assert applied == len(lines) == s.processed_count(), (applied, len(lines))
    s.drop()  # type: ignore[attr-defined]
    s.close()
    return applied / submit_wall, woken / max(due_wall, 1e-9)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=60)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args()
    pb = carepath.load(PLAYBOOK)
    lines = log(args.copies)
    n = len(lines)
    print(f"{n} events, {args.copies * 17} cases, batch {args.batch} events per transaction")

    t = time.perf_counter()
    sim = Simulator(pb)
    for e in (Event.from_dict(json.loads(x)) for x in lines):
        sim.feed(e)
    engine = n / (time.perf_counter() - t)

    with tempfile.TemporaryDirectory() as d:
        s = open_store(f"sqlite:///{d}/b.db")
        rt = Runtime([pb], s, clock=ManualClock())
        t = time.perf_counter()
        rt.submit_many(lines, batch=args.batch)
        sq_ev = n / (time.perf_counter() - t)
        t = time.perf_counter()
        w = rt.run_due(UNTIL)
        sq_wk = w / (time.perf_counter() - t)
        s.close()

    print(f"{'':28}{'events/s':>10}{'ratio':>8}{'wake-ups/s':>12}{'ratio':>8}")
    print(f"{'pure engine (in memory)':28}{engine:>10,.0f}{'':>8}")
    print(f"{'SQLite (synchronous=full)':28}{sq_ev:>10,.0f}{'':>8}{sq_wk:>12,.0f}")
    base: tuple[float, float] | None = None
    for w in (1, 2, 4):
        ev, wk = _pg(args.url, lines, w, args.batch)
        base = base or (ev, wk)
        print(f"{f'PostgreSQL, {w} worker(s)':28}{ev:>10,.0f}{ev / base[0]:>8.2f}{wk:>12,.0f}{wk / base[1]:>8.2f}")


if __name__ == "__main__":
    main()
