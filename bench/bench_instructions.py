"""Benchmark: the instructions one replay of the report costs, counted by cachegrind.

    .venv/bin/python bench/bench_instructions.py [--events N] [--against REV ...]

On a shared machine the CPU time of the same replay spreads by 10 % and more between runs, so a
change of a few per cent cannot be told from noise by timing it. Instruction counts do not depend
on how busy the machine is (two runs of the same code differ by about 0.1 %). For this revision
and each ``--against`` revision (imported beside it, as the other benches do), this runs
``valgrind --tool=cachegrind --cache-sim=no`` on a child that replays the first ``--events``
events of the cached 200,000-event retail log (``bench_report.py --events 200000`` writes it)
under examples/vn-retail-support.yaml with the metrics' collector, once and then twice, and
prints the difference: one replay, without the start-up, the imports and the decoding. The
children of a revision run two at a time. Needs ``valgrind`` (Debian's package).
"""

from __future__ import annotations

import argparse
import importlib
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

LOG = ROOT / "artifacts" / "bench-retail-200000.jsonl"
PLAYBOOK = ROOT / "examples" / "vn-retail-support.yaml"
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def child(rev: str, events: int, times: int) -> None:
    """Replay the first ``events`` events of the log ``times`` times (what cachegrind counts)."""
    if rev == "now":
        import carepath as pkg
    else:
        from _revision import import_revision

        pkg = import_revision(rev)
    name = pkg.__name__
    load = importlib.import_module(f"{name}.loading").load
    replay = importlib.import_module(f"{name}.drivers.replay")
    collector = importlib.import_module(f"{name}.metrics").Collector
    batch_gc = importlib.import_module(f"{name}.engine.batch_gc").batch_gc
    pb = load(PLAYBOOK)
    with LOG.open(encoding="utf-8") as fh:
        lines = [line for _, line in zip(range(events), fh, strict=False)]
    decoded = [replay.event_from_line(line.strip()) for line in lines]
    for _ in range(times):
        with batch_gc():
            feed, finish = replay._replayer(pb, collector(pb), False)
            for e in decoded:
                feed(e)
            finish()


def counted(rev: str, events: int, times: int) -> int:
    """The instructions of a child replaying ``times`` times, by cachegrind."""
    out = subprocess.run(
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--child",
            rev,
            str(events),
            str(times),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    m = _REFS.search(out.stderr)
    if m is None:
        raise SystemExit(f"cachegrind printed no instruction count:\n{out.stderr[-2000:]}")
    return int(m.group(1).replace(",", ""))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=30_000)
    ap.add_argument("--against", action="append", default=[], metavar="REV")
    ap.add_argument("--child", nargs=3, metavar=("REV", "EVENTS", "TIMES"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        rev, events, times = args.child
        child(rev, int(events), int(times))
        return 0
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    if not LOG.exists():
        raise SystemExit(f"{LOG} is missing: run bench/bench_report.py --events 200000 first")
    print(f"one replay of the first {args.events:,} events of {LOG.name} (cachegrind)")
    base = None
    for rev in ["now", *args.against]:
        with ThreadPoolExecutor(2) as pool:
            once, twice = pool.map(lambda n, r=rev: counted(r, args.events, n), (1, 2))
        one = twice - once
        if base is None:
            base = one
        label = "this revision" if rev == "now" else rev
        print(
            f"{label:16s} {one / 1e6:10,.0f} M instructions  {one / args.events:9,.0f} per event"
            f"  {one / base:6.3f} × this revision"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
