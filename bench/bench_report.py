"""Benchmark: ``carepath report`` over a generated event log (default 1,000,000 events).

    .venv/bin/python bench/bench_report.py [--events N] [--profile]

The log (``retail``: examples/vn-retail-support.yaml, with the Tết peak) is generated once and
cached under ``artifacts/``. Prints the time of each phase: reading the JSONL, the engine replay,
building the report (metrics, goals, load, Erlang C staffing) and rendering JSON and HTML.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from carepath import load  # noqa: E402
from carepath.generate import generate, write_jsonl  # noqa: E402
from carepath.replay import read_events, replay  # noqa: E402
from carepath.report import build_report, render  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--profile", action="store_true", help="print the 25 costliest functions of the replay")
    args = ap.parse_args()
    cache = ROOT / "artifacts" / f"bench-retail-{args.events}.jsonl"
    cache.parent.mkdir(exist_ok=True)
    if not cache.exists():
        t = time.perf_counter()
        n = write_jsonl(generate("retail", days=400, seed=7, max_events=args.events), cache)
        print(f"generated {n} events in {time.perf_counter() - t:.1f} s → {cache}")
    pb = load(ROOT / "examples" / "vn-retail-support.yaml")
    t0 = time.perf_counter()
    events = read_events(cache)
    t1 = time.perf_counter()
    if args.profile:
        prof = cProfile.Profile()
        rp = prof.runcall(replay, pb, events)
    else:
        rp = replay(pb, events)
    t2 = time.perf_counter()
    report = build_report(pb, rp)
    t3 = time.perf_counter()
    js = render(report, "json")
    page = render(report, "html")
    t4 = time.perf_counter()
    n = len(events)
    print(f"events {n}  cases {report['cases']}  clock cycles {len(rp.records)}  peak {report['load']['peak']}")
    print(f"read    {t1 - t0:7.2f} s  ({(t1 - t0) / n * 1e6:6.1f} µs/event)")
    print(f"replay  {t2 - t1:7.2f} s  ({(t2 - t1) / n * 1e6:6.1f} µs/event: the engine)")
    print(f"metrics {t3 - t2:7.2f} s  (metrics, goals, load, staffing)")
    print(f"render  {t4 - t3:7.2f} s  (json {len(js) // 1024} KiB, html {len(page) // 1024} KiB)")
    print(f"total   {t4 - t0:7.2f} s  for {n} events (target: about 10 s)")
    if args.profile:
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
