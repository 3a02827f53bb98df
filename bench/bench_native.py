"""The native step against the Python step on the support-desk example (issue 16, Measure).

    .venv/bin/python bench/bench_native.py [--cases 1000] [--repeat 3] [--profile native|python]

CPU time (``time.process_time``), both backends side by side in this one process, over the same
realistic multi-case stream ``bench_engine.stream`` builds (all three SLA clocks running,
thresholds, retargets, pauses, timers), with ``trace=False`` as runtimes use it. Also times a
bare ``transitions`` dispatch of the same events for scale. Build the core in release mode first
(``scripts/bootstrap`` does; ``maturin develop`` alone builds a debug core, several times slower).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_engine import bare_transitions, run_engine, stream  # noqa: E402

from carepath import Engine, load  # noqa: E402


def cpu(eng: Engine, events: list, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t = time.process_time()
        run_engine(eng, events)
        best = min(best, time.process_time() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", choices=["native", "python"])
    args = ap.parse_args()

    pb = load(ROOT / "examples" / "vn-retail-support.yaml")
    native = Engine(pb, trace=False, backend="native")
    python = Engine(pb, trace=False, backend="python")
    events = stream(args.cases)
    n = len(events)
    print(f"stream: {n} events over {args.cases} cases (support desk, all clocks running)")
    run_engine(native, events[:2000])
    run_engine(python, events[:2000])
    if args.profile:
        eng = native if args.profile == "native" else python
        prof = cProfile.Profile()
        prof.enable()
        run_engine(eng, events)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return
    tn = cpu(native, events, args.repeat)
    tp = cpu(python, events, args.repeat)
    tb = min(bare_transitions(pb, events)[0] for _ in range(args.repeat))
    print(f"native step   : {tn * 1e6 / n:7.1f} µs/event  ({n / tn:10,.0f} events/s)")
    print(f"python step   : {tp * 1e6 / n:7.1f} µs/event  ({n / tp:10,.0f} events/s)")
    print(f"bare transitions dispatch: {tb * 1e6 / n:5.1f} µs/event (wall time)")
    print(f"native / python speed-up: {tp / tn:.2f}×; native vs bare dispatch: {tb / tn:.2f}× of its speed")


if __name__ == "__main__":
    main()
