"""Benchmark: ``carepath report`` over a generated event log (default 1,000,000 events).

    .venv/bin/python bench/bench_report.py [--events N] [--against REV] [--workers N] [--phases]
                                           [--timeline] [--sharded]

The log (``retail``: examples/vn-retail-support.yaml, with the Tết peak) is generated once and
cached under ``artifacts/``. Prints one row per way of making the report, each as
``carepath report --format json`` computes it (replay, metrics, goals, staffing, JSON):

* ``report``       this revision, ``--workers`` processes (default: the usable CPUs);
* ``report, 1``    this revision in one process;
* ``what-if``      this revision, ``--compare`` a variant of the playbook (a tighter VIP chat
  target, another version): the second playbook replays only the cases that selected that
  target (:mod:`carepath.drivers.whatif`);
* ``what-if whole`` the same what-if with both replays of every case (``incremental=False``);
* with ``--against REV``, the same ``report`` and ``what-if`` rows of git revision ``REV``, its
  package extracted with ``git archive`` and imported in this process under another name.

``--sharded`` keeps only the rows over workers (``report`` and ``what-if``, and ``REV``'s).

Each row runs in a child forked from this one process (the same code, data and moment), so its
peak memory is its own: ``CPU`` is the user + system seconds of the child and of its workers,
``wall`` the elapsed seconds, ``Σ peak RSS`` the child's peak RSS plus each worker's (an upper
bound: the pages a worker shares with its parent count twice, and the peaks need not coincide),
``peak Σ PSS`` the largest sum of the processes' proportional set sizes, sampled every 50 ms (the
memory the report holds at once; shared pages counted once). The sampling reads each process's
``/proc/PID/smaps_rollup`` (2.7 ms for a process of 500 MiB: a sixth of a core for three such
processes, which the two workers need), so the CPU and wall time come from runs without it and
the memory from one more run of each row with it (``mem`` in the printed lines). ``--repeat``
runs every row again and keeps the least CPU and wall, the most memory. The reports of all rows
are checked to be byte-identical (the what-if ones between themselves).

``--timeline`` prints, for one report and one what-if over ``--workers`` processes, when each
step of the sharded report ends (wall seconds from the start): the workers' replay (their last
instant said), their results received (finish, export, pickling, unpickling), the shares merged,
the reports built, the JSON rendered: the serial tail after the replay is what more workers
cannot shorten.

``--phases`` prints, as before, the CPU time of each phase of a one-process report in µs per
event (read, decode, events, engine, collect, metrics, render), measured by separate passes
(``collect`` times a replay whose ``route`` and ``advance`` return recorded results).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib
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

from _revision import import_revision  # noqa: E402

from carepath import load  # noqa: E402
from carepath.drivers.generate import generate, write_jsonl  # noqa: E402
from carepath.drivers.replay import batch_gc, read_events, replay, replay_log  # noqa: E402
from carepath.engine import router  # noqa: E402
from carepath.engine.engine import Engine  # noqa: E402
from carepath.metrics import Collector  # noqa: E402
from carepath.report import build_report, build_reports, compare_reports, render  # noqa: E402

AIM_S = 10.0
MILLION = 1_000_000


def replay_without_engine(pb: Any, events: Any, clock: Callable[[], float]) -> float:
    """The replay's own cost: record what ``route`` and the engine's ``handle`` and ``advance``
    (the native core's, when it runs the steps) return in one replay, then time a second replay in
    which they hand back those results instead of running the engine (the stubs cost about 0.1 µs
    a call, counted here)."""
    results: list[Any] = []
    route, init = router.route, Engine.__init__
    inside = [0]  # the router's own engine calls are part of what it returns

    def record_route(*a: Any) -> Any:
        inside[0] += 1
        try:
            r = route(*a)
        finally:
            inside[0] -= 1
        results.append(r)
        return r

    def recording(fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*a: Any) -> Any:
            r = fn(*a)
            if not inside[0]:
                results.append(r)
            return r

        return call

    def init_recording(self: Engine, *a: Any, **k: Any) -> None:
        init(self, *a, **k)
        self.handle = recording(self.handle)  # type: ignore[method-assign]
        self.advance = recording(self.advance)  # type: ignore[method-assign]

    try:
        router.route = record_route  # type: ignore[assignment]
        Engine.__init__ = init_recording  # type: ignore[method-assign]
        replay(pb, events, sink=Collector(pb), keep_events=False)
        gc.collect()
        gc.freeze()  # the recorded steps would not exist in a real replay: keep the collector off them
        nxt = iter(results).__next__

        def init_stubbed(self: Engine, *a: Any, **k: Any) -> None:
            init(self, *a, **k)
            self.handle = self.advance = lambda *a: nxt()  # type: ignore[method-assign]

        router.route = lambda *a: nxt()  # type: ignore[assignment]
        Engine.__init__ = init_stubbed  # type: ignore[method-assign]
        t = clock()
        replay(pb, events, sink=Collector(pb), keep_events=False)
        return clock() - t
    finally:
        gc.unfreeze()
        router.route = route  # type: ignore[assignment]
        Engine.__init__ = init  # type: ignore[method-assign]


def read_lines(path: Path) -> list[str]:
    """The lines of ``path``, stripped (the reading phase alone)."""
    with path.open(encoding="utf-8") as fh:
        return [s for s in (line.strip() for line in fh) if s]


def decode_lines(path: Path) -> list[Any]:
    """The lines of ``path`` decoded by ``json.loads`` (reading + JSON)."""
    with path.open(encoding="utf-8") as fh, batch_gc():
        return [json.loads(s) for s in (line.strip() for line in fh) if s]


def phases(pb: Any, cache: Path, profile: bool) -> None:
    """The CPU time of each phase of a one-process report (see the module docstring)."""
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

    t = clock()
    rp = replay_log([pb], cache, Collector)[0]
    report = build_report(pb, rp)
    render(report, "json")
    t_total = clock() - t

    n = report["events"]
    us = 1e6 / n
    print(f"events {n}  cases {report['cases']}  peak {report['load']['peak']}")
    rows = [
        ("read", t_read, "lines: I/O, UTF-8, strip"),
        ("decode", t_decode, "JSON"),
        ("events", t_events, "field checks, Event objects"),
        ("engine", t_replay - t_collect, "router.route + Engine.advance: replay − collect"),
        ("collect", t_collect, "replay loop, case bookkeeping, metric samples: engine stubbed"),
        ("metrics", t_metrics, "metrics, goals, load, staffing"),
        ("render", t_render, f"json {len(js) // 1024} KiB, html {len(page) // 1024} KiB"),
    ]
    for name, sec, what in rows:
        print(f"{name:8} {sec:7.2f} s  {sec * us:7.1f} µs/event  ({what})")
    print(
        f"{'total':8} {t_total:7.2f} s  {t_total * us:7.1f} µs/event  (one process: read, replay, report, JSON)"
    )
    if profile:
        prof = cProfile.Profile()
        prof.runcall(replay_log, [pb], cache, Collector)
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)


def what_if_playbook(tmp: Path) -> Path:
    """The retail playbook with a tighter VIP chat first-response target, as another version."""
    text = (ROOT / "examples" / "vn-retail-support.yaml").read_text(encoding="utf-8")
    other = text.replace('version: "2027.01"', 'version: "2027.01-whatif"', 1).replace(
        'channel in ["chat", "zalo"]\', within: 10m}',
        'channel in ["chat", "zalo"]\', within: 5m}',
        1,
    )
    assert other != text
    path = tmp / "vn-retail-support-whatif.yaml"
    path.write_text(other, encoding="utf-8")
    return path


def _pss_kib(root: int) -> int:
    """The proportional set size (KiB) of process ``root`` and its descendants, now (Linux)."""
    total, todo, seen = 0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fh:
                for line in fh:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
            with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as fh:
                todo += [int(x) for x in fh.read().split()]
        except OSError:  # ended meanwhile
            continue
    return total


def measured(
    make: Callable[[], tuple[str, list[int]]], sample: bool = True
) -> tuple[float, float, float, float, str]:
    """Run ``make`` in a forked child: (CPU s of it and its workers, wall s, peak MiB as the sum
    of each process's peak RSS, peak MiB of the processes' PSS summed every 50 ms, digest);
    without ``sample``, the PSS is not sampled (0).

    ``make`` returns the report's JSON and the peak RSS (KiB) of each worker it used."""
    import hashlib
    import os
    import pickle
    import threading

    r, w = os.pipe()
    t = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child: make the report, send its digest and the peaks back
        os.close(r)
        code = 0
        try:
            text, workers = make()
            own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            msg = pickle.dumps((hashlib.sha256(text.encode()).hexdigest(), own + sum(workers)))
        except BaseException as exc:
            msg, code = pickle.dumps((f"failed: {exc!r}", 0)), 1
        with os.fdopen(w, "wb") as fh:
            fh.write(msg)
        os._exit(code)
    os.close(w)
    peak = [0]
    done = threading.Event()

    def sampling() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], _pss_kib(pid))

    sampler = threading.Thread(target=sampling, daemon=True)
    if sample:
        sampler.start()
    with os.fdopen(r, "rb") as fh:
        digest, kib = pickle.loads(fh.read())
    done.set()
    if sample:
        sampler.join()
    _, _status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t
    return ru.ru_utime + ru.ru_stime, wall, kib / 1024, peak[0] / 1024, digest


def against_rows(
    rev: str, tmp: Path, cache: Path, workers: int
) -> list[tuple[str, Callable[[], tuple[str, list[int]]]]]:
    """The ``report`` and ``what-if`` rows of git revision ``rev`` (its sharded replay with
    ``workers`` processes when it has one, else one process)."""
    old = import_revision(rev)
    opb = old.load(ROOT / "examples" / "vn-retail-support.yaml")
    oother = old.load(tmp / "vn-retail-support-whatif.yaml")

    try:  # a revision with the sharded replay runs with as many workers as this one
        then_shard: Any = importlib.import_module(f"{old.__name__}.drivers.shard")
    except ImportError:
        then_shard = None

    def then(pbs: list[Any]) -> Callable[[], tuple[str, list[int]]]:
        def make() -> tuple[str, list[int]]:
            rep = importlib.import_module(f"{old.__name__}.report")
            collector = importlib.import_module(f"{old.__name__}.metrics").Collector
            if then_shard is not None:
                stats: dict[str, Any] = {}
                rps = then_shard.replay_log_sharded(
                    pbs, cache, collector, workers=workers, stats=stats
                )
            else:
                rps = importlib.import_module(f"{old.__name__}.drivers.replay").replay_log(
                    pbs, cache, collector
                )
            both = getattr(rep, "build_reports", None)  # as its command builds them
            docs = (
                both(pbs, rps)
                if both is not None
                else [rep.build_report(p, rp) for p, rp in zip(pbs, rps, strict=True)]
            )
            doc = docs[0] if len(docs) == 1 else rep.compare_reports(docs[0], docs[1])
            return rep.render(doc, "json"), []

        return make

    n_then = workers if then_shard is not None else 1
    return [
        (f"report, {rev}, {n_then}", then([opb])),
        (f"what-if, {rev}, {n_then}", then([opb, oother])),
    ]


def timeline(pbs: list[Any], cache: Path, workers: int) -> list[tuple[str, float]]:
    """``(step, wall seconds since the start)`` of one sharded report of ``pbs`` (see the module
    docstring), each step timed where it ends, in this process."""
    from carepath.drivers import shard

    marks: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    receive, merge = shard._receive, shard._merge
    heard = [0]

    def timed_receive(conn: Any) -> Any:
        msg = receive(conn)
        heard[0] += 1
        if heard[0] == workers:
            marks.append(("workers replayed (last instants said)", time.perf_counter() - t0))
        elif heard[0] == 2 * workers:
            marks.append(("results received (finish, export, unpickle)", time.perf_counter() - t0))
        return msg

    def timed_merge(*a: Any) -> Any:
        out = merge(*a)
        marks.append((f"shares merged ({a[0].id} {a[0].version})", time.perf_counter() - t0))
        return out

    try:
        shard._receive = timed_receive  # type: ignore[assignment]
        shard._merge = timed_merge  # type: ignore[assignment]
        rps = shard.replay_log_sharded(pbs, cache, Collector, workers=workers)
        docs = build_reports(pbs, rps)
        marks.append(("reports built", time.perf_counter() - t0))
        doc = docs[0] if len(docs) == 1 else compare_reports(docs[0], docs[1])
        render(doc, "json")
        marks.append(("JSON rendered", time.perf_counter() - t0))
    finally:
        shard._receive = receive  # type: ignore[assignment]
        shard._merge = merge  # type: ignore[assignment]
    return marks


def print_timelines(report: list[Any], what_if: list[Any], cache: Path, workers: int) -> None:
    """:func:`timeline` of a report and of a what-if, printed."""
    for name, pbs in (("report", report), ("what-if", what_if)):
        print(f"{name}, {workers} workers, {cache.name} (wall s from the start):")
        for step, at in timeline(pbs, cache, workers):
            print(f"  {at:6.2f}  {step}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=MILLION)
    ap.add_argument("--against", metavar="REV", help="also run git revision REV, in this process")
    ap.add_argument("--workers", type=int, default=None, help="processes for the report row")
    ap.add_argument("--repeat", type=int, default=1, help="runs of every row (best kept)")
    ap.add_argument(
        "--sharded", action="store_true", help="only the rows over workers (no 1 process, no whole)"
    )
    ap.add_argument("--phases", action="store_true", help="the CPU time of each phase (1 process)")
    ap.add_argument(
        "--profile", action="store_true", help="with --phases: the 25 costliest functions"
    )
    ap.add_argument(
        "--timeline", action="store_true", help="when each step of a sharded report ends"
    )
    args = ap.parse_args()
    cache = ROOT / "artifacts" / f"bench-retail-{args.events}.jsonl"
    cache.parent.mkdir(exist_ok=True)
    if not cache.exists():
        t = time.perf_counter()
        n = write_jsonl(generate("retail", days=400, seed=7, max_events=args.events), cache)
        print(f"generated {n} events in {time.perf_counter() - t:.1f} s → {cache}")
    pb = load(ROOT / "examples" / "vn-retail-support.yaml")
    if args.phases:
        phases(pb, cache, args.profile)
        return 0
    import tempfile

    from carepath.drivers.shard import default_workers, replay_log_sharded

    tmp = Path(tempfile.mkdtemp(prefix="carepath-bench-"))
    other = load(what_if_playbook(tmp))
    workers = default_workers(cache) if args.workers is None else args.workers

    def now(pbs: list[Any], n: int, whole: bool = False) -> Callable[[], tuple[str, list[int]]]:
        def make() -> tuple[str, list[int]]:
            stats: dict[str, Any] = {}
            rps = replay_log_sharded(
                pbs, cache, Collector, workers=n, stats=stats, incremental=not whole
            )
            docs = build_reports(pbs, rps)
            doc = docs[0] if len(docs) == 1 else compare_reports(docs[0], docs[1])
            return render(doc, "json"), stats["worker_rss_kib"]

        return make

    if args.timeline:
        print_timelines([pb], [pb, other], cache, workers)
        return 0
    rows: list[tuple[str, Callable[[], tuple[str, list[int]]]]] = [
        (f"report, {workers} workers", now([pb], workers)),
        ("report, 1 process", now([pb], 1)),
        (f"what-if, {workers} workers", now([pb, other], workers)),
        (f"what-if whole, {workers} workers", now([pb, other], workers, whole=True)),
    ]
    if args.sharded:
        rows = [rows[0], rows[2]]
    if args.against:
        rows += against_rows(args.against, tmp, cache, workers)
    print(f"{args.events:,} events ({cache.name}); {len(rows)} rows, best of {args.repeat}")
    print(f"load average before: {Path('/proc/loadavg').read_text().split()[0]}")
    head = f"{'':28} {'CPU s':>8} {'wall s':>8} {'Σ peak RSS':>11} {'peak Σ PSS':>11}  sha256"
    print(head + "   (MiB; each row as it ends)")
    results: dict[str, tuple[float, float, float, float, str]] = {}
    for rep in range(args.repeat + 1):  # the last pass: the memory, sampled
        for name, make in rows:
            memory = rep == args.repeat
            cpu, wall, rss, pss, digest = measured(make, sample=memory)
            label = f"{name} (mem)" if memory else name
            print(f"{label:28} {cpu:8.1f} {wall:8.1f} {rss:11.0f} {pss:11.0f}  {digest[:12]}")
            best = results.get(name)
            if memory:
                assert best is not None
                cpu, wall, rss, pss = best[0], best[1], max(rss, best[2]), max(pss, best[3])
            elif best is not None:
                cpu, wall = min(cpu, best[0]), min(wall, best[1])
                rss = max(rss, best[2])
            results[name] = (cpu, wall, rss, pss, digest)
    print("best of each row (CPU, wall: least, not sampled; memory: most, sampled):")
    for name, (cpu, wall, rss, pss, digest) in results.items():
        print(f"{name:28} {cpu:8.1f} {wall:8.1f} {rss:11.0f} {pss:11.0f}  {digest[:12]}")
    print(f"load average after: {Path('/proc/loadavg').read_text().split()[0]}")
    reports = {r[4] for n, r in results.items() if n.startswith("report")}
    what_ifs = {r[4] for n, r in results.items() if n.startswith("what-if")}
    print(
        "reports byte-identical: " + ("yes" if len(reports) == 1 and len(what_ifs) == 1 else "NO")
    )
    print(
        f"aim: report ≤ {AIM_S:.0f} s wall and ≤ 1,024 MiB at 1,000,000 events; what-if ≤ 1.5 × report"
    )
    pairs = [
        (f"report, {workers} workers", f"what-if, {workers} workers"),
        (f"report, {workers} workers", f"what-if whole, {workers} workers"),
    ]
    if args.against:
        pairs.append((rows[-2][0], rows[-1][0]))
    for rep, whatif in (p for p in pairs if p[1] in results):  # --sharded: no whole what-if
        r, wi = results[rep], results[whatif]
        print(f"{whatif} ÷ {rep}: wall {wi[1] / r[1]:.2f}, CPU {wi[0] / r[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
