"""Benchmark: ``carepath report`` over a generated event log (default 1,000,000 events).

    .venv/bin/python bench/bench_report.py [--events N] [--profile]

The log (``retail``: examples/vn-retail-support.yaml, with the Tết peak) is generated once and
cached under ``artifacts/``. Prints the time of each phase in µs per event, and the whole report
extrapolated to 1,000,000 events next to the aim (about 10 s on one core):

* ``read``     reading the lines (I/O, UTF-8, strip);
* ``decode``   JSON decoding of each line;
* ``events``   checking the fields and building the :class:`~carepath.events.Event` objects;
* ``engine``   routing + the engine (``router.route`` and ``Engine.advance``): replay − collect;
* ``collect``  the rest of the replay: the loop, case bookkeeping, the metrics' samples (``Collector``),
  timed in a replay whose ``route`` and ``advance`` return results recorded in an earlier one
  (those results are frozen out of the garbage collector's sight: a real replay does not hold them);
* ``metrics``  metrics, goals, load and Erlang C staffing (``build_report``);
* ``render``   JSON and HTML.

Times are CPU seconds of the process (``time.process_time``), so a busy machine inflates them
less than wall-clock time would. ``read``, ``decode`` and ``events`` are measured by separate passes
over the same file (lines only; lines + JSON; the reader the CLI uses) and subtracted. ``total`` is
the report as the CLI computes it (``replay_log`` streaming the file, metrics, JSON), timed end to
end once more.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from carepath import load  # noqa: E402
from carepath.drivers.generate import generate, write_jsonl  # noqa: E402
from carepath.drivers.replay import batch_gc, read_events, replay, replay_log  # noqa: E402
from carepath.engine import router  # noqa: E402
from carepath.engine.engine import Engine  # noqa: E402
from carepath.metrics import Collector  # noqa: E402
from carepath.report import build_report, render  # noqa: E402

AIM_S = 10.0
MILLION = 1_000_000


def replay_without_engine(pb: Any, events: Any, clock: Callable[[], float]) -> float:
    """The replay's own cost: record what ``route`` and ``Engine.advance`` return in one replay,
    then time a second replay in which they hand back those results instead of running the
    engine (the stubs cost about 0.1 µs a call, counted here)."""
    results: list[Any] = []
    route, advance = router.route, Engine.advance

    def record_route(*a: Any) -> Any:
        r = route(*a)
        results.append(r)
        return r

    def record_advance(self: Engine, *a: Any) -> Any:
        r = advance(self, *a)
        results.append(r)
        return r

    try:
        router.route = record_route  # type: ignore[assignment]
        Engine.advance = record_advance  # type: ignore[method-assign]
        replay(pb, events, sink=Collector(pb), keep_events=False)
        gc.collect()
        gc.freeze()  # the recorded steps would not exist in a real replay: keep the collector off them
        nxt = iter(results).__next__
        router.route = lambda *a: nxt()  # type: ignore[assignment]
        Engine.advance = lambda self, *a: nxt()  # type: ignore[method-assign]
        t = clock()
        replay(pb, events, sink=Collector(pb), keep_events=False)
        return clock() - t
    finally:
        gc.unfreeze()
        router.route = route  # type: ignore[assignment]
        Engine.advance = advance  # type: ignore[method-assign]


def read_lines(path: Path) -> list[str]:
    """The lines of ``path``, stripped (the reading phase alone)."""
    with path.open(encoding="utf-8") as fh:
        return [s for s in (line.strip() for line in fh) if s]


def decode_lines(path: Path) -> list[Any]:
    """The lines of ``path`` decoded by ``json.loads`` (reading + JSON)."""
    with path.open(encoding="utf-8") as fh, batch_gc():
        return [json.loads(s) for s in (line.strip() for line in fh) if s]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=MILLION)
    ap.add_argument(
        "--profile", action="store_true", help="print the 25 costliest functions of the replay"
    )
    args = ap.parse_args()
    cache = ROOT / "artifacts" / f"bench-retail-{args.events}.jsonl"
    cache.parent.mkdir(exist_ok=True)
    if not cache.exists():
        t = time.perf_counter()
        n = write_jsonl(generate("retail", days=400, seed=7, max_events=args.events), cache)
        print(f"generated {n} events in {time.perf_counter() - t:.1f} s → {cache}")
    pb = load(ROOT / "examples" / "vn-retail-support.yaml")
    clock = time.process_time  # CPU seconds of this process: the machine may be shared

    t = clock()
    read_lines(cache)
    t_read = clock() - t
    gc.collect()
    t = clock()
    decode_lines(cache)
    t_decode = clock() - t - t_read
    gc.collect()

    t = clock()
    events = read_events(cache)
    t_events = clock() - t - t_read - t_decode
    t = clock()
    rp = replay(pb, events, sink=Collector(pb), keep_events=False)
    t_replay = clock() - t
    t = clock()
    report = build_report(pb, rp)
    t_metrics = clock() - t
    t = clock()
    js = render(report, "json")
    page = render(report, "html")
    t_render = clock() - t
    del rp, report
    gc.collect()
    t_collect = replay_without_engine(pb, events, clock)
    del events
    gc.collect()

    # end to end, as `carepath report --format json` computes it (streaming the log)
    t = clock()
    rp = replay_log([pb], cache, Collector)[0]
    report = build_report(pb, rp)
    render(report, "json")
    t_total = clock() - t

    n = report["events"]
    us = 1e6 / n
    print(f"events {n}  cases {report['cases']}  peak {report['load']['peak']}")
    phases = [
        ("read", t_read, "lines: I/O, UTF-8, strip"),
        ("decode", t_decode, "JSON"),
        ("events", t_events, "field checks, Event objects"),
        ("engine", t_replay - t_collect, "router.route + Engine.advance: replay − collect"),
        ("collect", t_collect, "replay loop, case bookkeeping, metric samples: engine stubbed"),
        ("metrics", t_metrics, "metrics, goals, load, staffing"),
        ("render", t_render, f"json {len(js) // 1024} KiB, html {len(page) // 1024} KiB"),
    ]
    for name, s, what in phases:
        print(f"{name:8} {s:7.2f} s  {s * us:7.1f} µs/event  ({what})")
    outside = sum(s for name, s, _ in phases if name != "engine")
    print(
        f"{'total':8} {t_total:7.2f} s  {t_total * us:7.1f} µs/event  (end to end: read, replay, report, JSON)"
    )
    print(
        f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (all phases; the events list of the "
        f"phase runs included)"
    )
    print(
        f"1M events: {t_total * us:.1f} s extrapolated (aim: about {AIM_S:.0f} s); "
        f"outside the engine {outside * us:.1f} µs/event → {outside * us:.1f} s per 1M"
    )
    if args.profile:
        prof = cProfile.Profile()
        prof.runcall(replay_log, [pb], cache, Collector)
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
