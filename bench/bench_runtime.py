"""Durable events/s on SQLite (with and without batching), wake-ups/s, and the pure engine's
rate on the same log, so the storage overhead shows as a ratio.

    .venv/bin/python bench/bench_runtime.py [--copies N] [--sync full|normal]

The log is the retail example repeated N times with distinct case keys (same shape as the
crash test). "Durable" = committed to a file-backed store with the chosen synchronous level.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import carepath  # noqa: E402
from carepath.drivers.simulate import Simulator  # noqa: E402
from carepath.events import Event  # noqa: E402
from carepath.runtime import Runtime, open_store  # noqa: E402
from carepath.runtime.clock import ManualClock  # noqa: E402


def log(copies: int) -> list[str]:
    base = [
        json.loads(x)
        for x in (ROOT / "examples/events/vn-retail-support.jsonl").read_text().splitlines()
        if x.strip()
    ]
    out = []
    for k in range(copies):
        for e in base:
            e2 = dict(e, id=f"{e['id']}-{k}", case=f"{e['case']}-{k}")
            e2["at"] = (datetime.fromisoformat(e["at"]) + timedelta(seconds=k % 3600)).isoformat()
            out.append(e2)
    out.sort(key=lambda e: datetime.fromisoformat(e["at"]))
    return [json.dumps(e, ensure_ascii=False) for e in out]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=40)
    ap.add_argument("--sync", default="full", choices=("full", "normal"))
    args = ap.parse_args()
    pb = carepath.load(ROOT / "examples/vn-retail-support.yaml")
    lines = log(args.copies)
    events = [Event.from_dict(json.loads(x)) for x in lines]
    n = len(lines)
    until = datetime.fromisoformat("2027-04-01T00:00:00+07:00")
    print(
        f"{n} events, {args.copies * 17} cases, synchronous={args.sync}, SQLite {__import__('sqlite3').sqlite_version}"
    )

    t = time.perf_counter()
    sim = Simulator(pb)
    for e in events:
        sim.feed(e)
    engine_s = time.perf_counter() - t
    engine_rate = n / engine_s
    print(f"  pure engine (in memory)           {engine_rate:10,.0f} events/s")

    rows = []
    with tempfile.TemporaryDirectory() as d:
        for batch in (1, 10, 100, 1000):
            url = f"sqlite:///{d}/b{batch}.db?synchronous={args.sync}"
            store = open_store(url)
            rt = Runtime([pb], store, clock=ManualClock())
            t = time.perf_counter()
            rt.submit_many(lines, batch=batch, timeline=True)
            s = time.perf_counter() - t
            rows.append((batch, n / s))
            store.close()
        # wake-ups: ingest without firing anything on the way, then wake every case at once
        store = open_store(f"sqlite:///{d}/wake.db?synchronous={args.sync}")
        rt = Runtime([pb], store, clock=ManualClock())
        rt.submit_many(lines, batch=1000)
        states = store.cases()
        t = time.perf_counter()
        woken = rt.run_due(until)
        ws = time.perf_counter() - t
        subject = rt.engine(pb.id)
        t = time.perf_counter()
        for st in states:
            subject.advance(st, until)
        wes = time.perf_counter() - t
        store.close()
    for batch, rate in rows:
        label = "1 event per transaction" if batch == 1 else f"batches of {batch}"
        print(
            f"  SQLite, {label:<26}{rate:10,.0f} events/s   engine/runtime = {engine_rate / rate:5.1f}×"
        )
    print(
        f"  wake-ups: SQLite run_due           {woken / ws:10,.0f} cases/s  ({woken} cases, 200 per transaction)\n"
        f"  wake-ups, pure engine             {len(states) / wes:10,.0f} cases/s   engine/runtime = "
        f"{(len(states) / wes) / (woken / ws):5.1f}×"
    )


if __name__ == "__main__":
    main()
