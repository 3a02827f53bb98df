"""The native step against the Python step on the support-desk example (issue 16, Measure).

    .venv/bin/python bench/bench_native.py [--cases 1000] [--repeat 3] [--profile native|python]

Also the after-sales example (``zalo-care``: quiet hours in the customer's own zone, a Zalo cap
that defers, an exempt receipt, consent and fallbacks; SPEC §10) over :func:`zalo_stream`, whose
cases live in three zones or none, through both backends (until this revision the core refused
that playbook and ``auto`` ran it on the Python engine).

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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_engine import bare_transitions, run_engine, stream  # noqa: E402

from carepath import Engine, load  # noqa: E402


def cpu(subject: Engine, events: list[Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t = time.process_time()
        run_engine(subject, events)
        best = min(best, time.process_time() - t)
    return best


def zalo_stream(cases: int, seed: int = 7) -> list[Any]:
    """Purchases (a third of the customers abroad, some with no zone), repeat purchases two to
    four weeks apart, complaints answered or not, opt-outs from Zalo: in time order, with a
    daily ``action.delivered``-free wake-up of every case left to the engine's own timers."""
    import random
    from datetime import datetime, timedelta

    from carepath import Event

    rnd = random.Random(seed)
    t0 = datetime.fromisoformat("2027-01-04T08:00:00+07:00")
    zones = ["Asia/Ho_Chi_Minh", "Europe/Berlin", "America/New_York", None]
    out: list[tuple[datetime, int, Any]] = []
    n = 0
    for c in range(cases):
        case = f"KH-{c}"
        at = t0 + timedelta(minutes=rnd.randrange(60 * 24 * 30))
        data: dict[str, Any] = {"amount": rnd.randrange(1, 50) * 100_000}
        data["channel"] = rnd.choice(["zalo", "zalo", "zalo", "facebook", "sms", "email"])
        zone = rnd.choice(zones)
        if zone is not None:
            data["tz"] = zone
        events = [("purchase.made", at, data)]
        for _ in range(rnd.randrange(4)):
            at += timedelta(days=rnd.randrange(14, 29), minutes=rnd.randrange(600))
            events.append(("purchase.repeated", at, {"amount": rnd.randrange(1, 30) * 100_000}))
            if rnd.random() < 0.3:
                at += timedelta(minutes=rnd.randrange(30, 300))
                src = rnd.choice(["email", "zalo", "facebook", "phone"])
                events.append(("complaint.received", at, {"source": src}))
                if rnd.random() < 0.7:
                    at += timedelta(hours=rnd.randrange(1, 40))
                    events.append(("complaint.resolved", at, {}))
            if rnd.random() < 0.1:
                at += timedelta(minutes=5)
                events.append(("customer.opted_out", at, {"channel": "zalo"}))
        for type_, when, d in events:
            n += 1
            out.append((when, n, Event(f"z{n}", type_, when, case, d)))
    out.sort(key=lambda x: (x[0], x[1]))
    return [e for _, _, e in out]


def memory_per_case(backend: str, n: int = 20000) -> tuple[float, int]:
    """(bytes of RSS per in-flight case, JSON bytes of one), on a fresh engine: opened + replied."""
    import os
    from datetime import datetime, timedelta

    from carepath import Event

    subject = Engine(
        load(ROOT / "examples" / "vn-retail-support.yaml"), trace=False, backend=backend
    )
    t0 = datetime.fromisoformat("2027-03-01T09:00:00+07:00")
    opened = [
        Event(id=f"m{i}", type="case.opened", at=t0, case=f"M-{i}", data={"channel": "email"})
        for i in range(n)
    ]
    replied = [
        Event(
            id=f"r{i}", type="agent.replied", at=t0 + timedelta(minutes=20), case=f"M-{i}", data={}
        )
        for i in range(n)
    ]

    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    subject.handle(subject.start(opened[0]).state, replied[0])
    gc.collect()
    base = rss()
    keep = [
        subject.handle(subject.start(o).state, r).state
        for o, r in zip(opened, replied, strict=True)
    ]
    gc.collect()
    return (rss() - base) / n, len(keep[0].to_json())


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
        subject = native if args.profile == "native" else python
        prof = cProfile.Profile()
        prof.enable()
        run_engine(subject, events)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return
    tn = cpu(native, events, args.repeat)
    tp = cpu(python, events, args.repeat)
    tb = min(bare_transitions(pb, events)[0] for _ in range(args.repeat))
    print(f"native step   : {tn * 1e6 / n:7.1f} µs/event  ({n / tn:10,.0f} events/s)")
    print(f"python step   : {tp * 1e6 / n:7.1f} µs/event  ({n / tp:10,.0f} events/s)")
    print(f"bare transitions dispatch: {tb * 1e6 / n:5.1f} µs/event (wall time)")
    print(
        f"native / python speed-up: {tp / tn:.2f}×; native vs bare dispatch: {tb / tn:.2f}× of its speed"
    )
    zpb = load(ROOT / "examples" / "zalo-care.yaml")
    zevents = zalo_stream(max(1, args.cases * 2))
    zn = len(zevents)
    znative = Engine(zpb, trace=False, backend="native")
    zpython = Engine(zpb, trace=False, backend="python")
    run_engine(znative, zevents[:2000])
    run_engine(zpython, zevents[:2000])
    tzn = cpu(znative, zevents, args.repeat)
    tzp = cpu(zpython, zevents, args.repeat)
    print(f"zalo-care: {zn} events over {args.cases * 2} customers (three zones or none)")
    print(f"native step   : {tzn * 1e6 / zn:7.1f} µs/event  ({zn / tzn:10,.0f} events/s)")
    print(f"python step   : {tzp * 1e6 / zn:7.1f} µs/event  ({zn / tzp:10,.0f} events/s)")
    print(f"native / python speed-up: {tzp / tzn:.2f}×")
    if sys.platform.startswith(
        "linux"
    ):  # RSS: the core's memory is not Python's (tracemalloc misses it)
        for backend in ("native", "python"):
            per, js = memory_per_case(backend)
            print(f"{backend:<6} memory per in-flight case: {per:6.0f} B (RSS); JSON state {js} B")


if __name__ == "__main__":
    main()
