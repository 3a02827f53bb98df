"""Durable events/s and wake-ups/s on PostgreSQL with 1, 2 and 4 worker processes (ratios to one
worker) for a few batch sizes, beside SQLite and the pure engine on the same event log, and where
one worker's time goes.

    .venv/bin/python bench/bench_postgres.py [--copies N] [--batches 10,100,1000] [--workers 1,2,4]
                                             [--repeat N] [--url postgresql://…] [--against REV]…
                                             [--no-breakdown]

Events are partitioned by case key over the workers; each worker submits its share in batches of
``B`` events per transaction (one commit each; ``synchronous_commit`` as the server has it, ``on``
by default: every commit waits for the WAL fsync). Wake-ups: every worker then runs
``run_due(until)`` at once on the shared store (``FOR UPDATE SKIP LOCKED``). Each run uses a fresh
schema, dropped afterwards; with ``--repeat N`` each figure is the best of N runs (the machine is
shared, so the best run is the least disturbed one).

With ``--against REV`` (repeatable) every row is also run by git revision ``REV`` in the same
run, interleaved (its workers import that revision; the in-process rows import it beside the
current one, see ``bench/_revision.py``), and printed beside the current figure with the ratio.

"pure engine" is :func:`carepath.engine.router.route` — the decision every runtime makes — over a dict
in memory: the floor under every durable figure.

The breakdown runs one worker in this process with timers around the phases of a batch: the engine
(``route``), decoding states (``CaseState.from_json`` or a cache hit), encoding them (``to_json``
and the outbox JSON), the prefetch round trip (processed ids and ``FOR UPDATE``), the flush round
trip (one ``INSERT … unnest`` per table, pipelined, with the server's work), the commit (WAL fsync)
and the rest of the runtime. It also reads the CPU time of this process and of every ``postgres``
process on the machine (``/proc``), so client and server CPU per event can be set against the
machine's cores.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from _revision import attr, example, packages  # noqa: E402
from bench_runtime import log  # noqa: E402

import carepath  # noqa: E402
from carepath.runtime import Runtime, open_store  # noqa: E402
from carepath.runtime.clock import ManualClock  # noqa: E402

PLAYBOOK = ROOT / "examples/vn-retail-support.yaml"
UNTIL = datetime.fromisoformat("2027-04-01T00:00:00+07:00")


# -- the runs -------------------------------------------------------------------------------------
def _package(name: str, path: str, core: tuple[str, str] | None = None) -> Any:
    """The package ``name`` (``carepath`` or an extracted revision under ``path``, with its own
    native core ``core``, ``(module, library)``, when it has one: without it the revision's
    engine would run on Python in the worker process)."""
    import importlib

    if core is not None:
        from _revision import load_core

        load_core(*core)
    if path:
        sys.path.insert(0, path)
    return importlib.import_module(name)


def _worker(
    pkg: tuple[str, str, tuple[str, str] | None],
    url: str,
    lines: list[str],
    batch: int,
    barrier: Any,
    out: Any,
) -> None:
    try:
        cp = _package(*pkg)
        store = attr(cp, "runtime.open_store")(url)
        clock = attr(cp, "runtime.clock.ManualClock", "clock.ManualClock")
        rt = attr(cp, "runtime.Runtime")(
            [cp.load(example(cp, PLAYBOOK.name))], store, clock=clock(), batch=200
        )
    except BaseException:
        barrier.abort()  # the bench reports this row as not run rather than wait for ever
        raise
    barrier.wait()
    t, cpu = time.perf_counter(), time.process_time()
    rt.submit_many(lines, batch=batch)
    submit_s, cpu = time.perf_counter() - t, time.process_time() - cpu
    barrier.wait()
    t = time.perf_counter()
    woken = rt.run_due(UNTIL)
    due_s = time.perf_counter() - t
    out.put((submit_s, woken, due_s, rt.counters["applied"], cpu))
    store.close()


def _schema_url(url: str, extra: str = "") -> str:
    return f"{url}{'&' if '?' in url else '?'}schema=bench_{uuid.uuid4().hex[:8]}{extra}"


def _where(cp: Any) -> tuple[str, str, tuple[str, str] | None]:
    """How a worker process imports ``cp``: (module name, folder to put on its path, its own
    native core as ``(module, library)`` or ``None``)."""
    if cp is carepath:
        return "carepath", "", None
    from _revision import CORES

    return cp.__name__, str(Path(cp.__file__).resolve().parent.parent), CORES.get(cp.__name__)


def _pg(
    cp: Any, url: str, lines: list[str], workers: int, batch: int
) -> tuple[float, float, float]:
    """(events/s, wake-ups/s, CPU µs per event) of ``workers`` processes of package ``cp`` on a
    fresh schema; the CPU is the workers' while they submit plus the server's meanwhile (see
    :func:`_postgres_cpu`)."""
    u = _schema_url(url)
    attr(cp, "runtime.open_store")(u).close()  # migrate once
    parts: list[list[str]] = [[] for _ in range(workers)]
    for x in lines:
        parts[zlib.crc32(json.loads(x)["case"].encode()) % workers].append(x)
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(workers + 1), ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(_where(cp), u, p, batch, barrier, out)) for p in parts
    ]
    for p in procs:
        p.start()
    barrier.wait()
    t, srv = time.perf_counter(), _postgres_cpu(_dbname(url))
    barrier.wait()
    submit_wall = time.perf_counter() - t
    srv = _postgres_cpu(_dbname(url)) - srv
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
    cpu = sum(r[4] for r in res) + srv
    return applied / submit_wall, woken / max(due_wall, 1e-9), cpu / len(lines) * 1e6


def _engine(cp: Any, lines: list[str]) -> tuple[float, float]:
    """events/s of ``route`` over a dict: the runtime's decisions with no store at all."""
    engine = attr(cp, "engine.engine.Engine", "engine.Engine", "Engine")
    route = attr(cp, "engine.router.route", "router.route")
    event = attr(cp, "events.Event", "Event")
    subject = engine(cp.load(example(cp, PLAYBOOK.name)), trace=False)
    events = [event.from_dict(json.loads(x)) for x in lines]
    cases: dict[str, Any] = {}
    t = time.perf_counter()
    for e in events:
        key = subject.case_key(e)
        assert key
        r = route(subject, cases.get(key), e)
        if r.step is not None:
            cases[key] = r.step.state
    return len(events) / (time.perf_counter() - t), 0.0


def _sqlite(cp: Any, lines: list[str], batch: int) -> tuple[float, float]:
    pb = cp.load(example(cp, PLAYBOOK.name))
    clock = attr(cp, "runtime.clock.ManualClock", "clock.ManualClock")
    with tempfile.TemporaryDirectory() as d:
        s = attr(cp, "runtime.open_store")(f"sqlite:///{d}/b.db")
        rt = attr(cp, "runtime.Runtime")([pb], s, clock=clock())
        t = time.perf_counter()
        rt.submit_many(lines, batch=batch)
        ev = len(lines) / (time.perf_counter() - t)
        t = time.perf_counter()
        w = rt.run_due(UNTIL)
        wk = w / (time.perf_counter() - t)
        s.close()
    return ev, wk


# -- where one worker's time goes -------------------------------------------------------------------
def _dbname(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "postgres"


def _postgres_cpu(db: str | None = None) -> float:
    """CPU seconds used so far by every process named ``postgres`` (server, backends, WAL writer);
    with ``db``, not the backends connected to another database (other jobs' tests on the same
    server: a backend's command line is ``postgres: [cluster: ]user database host(port) …``)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().decode("utf-8", "replace").split()
        except OSError:
            continue
        name = stat[stat.find("(") + 1 : stat.rfind(")")]
        if db is not None and name == "postgres":
            host = next((i for i, w in enumerate(cmd) if "(" in w and w.endswith(")")), None)
            if host is not None and host >= 2 and cmd[host - 1] != db:
                continue  # a backend of another database
        if name == "postgres":
            fields = stat[stat.rfind(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


@contextmanager
def _timed(
    obj: Any, name: str, phase: str, acc: Counter[str], after: Callable[[], None] | None = None
) -> Iterator[None]:
    orig = getattr(obj, name)

    def wrapper(*a: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        try:
            return orig(*a, **kw)
        finally:
            acc[phase] += time.perf_counter() - t
            if after is not None:
                after()

    setattr(obj, name, wrapper)
    try:
        yield
    finally:
        setattr(obj, name, orig)


def _breakdown(url: str, lines: list[str], batch: int, extra: str = "") -> dict[str, float]:
    """µs per event of each phase of one in-process worker (``extra``: more URL options)."""
    from carepath.runtime import _cache, postgres

    u = _schema_url(url, extra)
    store = open_store(u)
    rt = Runtime([carepath.load(PLAYBOOK)], store, clock=ManualClock())
    acc: Counter[str] = Counter()
    last_flush = [0.0]

    def mark() -> None:
        last_flush[0] = time.perf_counter()

    atomic = store.atomic

    def timed_atomic(fn: Any) -> Any:
        r = atomic(fn)
        acc["commit (fsync)"] += time.perf_counter() - last_flush[0]
        return r

    store.atomic = timed_atomic  # type: ignore[method-assign]
    with (
        _timed(rt, "_decide", "engine (route)", acc),  # the routing function the runtime bound
        _timed(_cache.StateCache, "decode", "decode states", acc),
        _timed(_cache.StateCache, "encode", "encode states", acc),
        _timed(postgres._PgTx, "add_outbox", "encode outbox", acc),
        _timed(postgres._PgTx, "add_step_outbox", "encode outbox", acc),
        _timed(postgres._PgTx, "prefetch", "prefetch", acc),
        _timed(postgres._PgTx, "flush", "flush", acc, mark),
    ):
        cpu0, srv0 = time.process_time(), _postgres_cpu(_dbname(url))
        t = time.perf_counter()
        rt.submit_many(lines, batch=batch)
        wall = time.perf_counter() - t
        cpu, srv = time.process_time() - cpu0, _postgres_cpu(_dbname(url)) - srv0
    hits, misses = store.states.hits, store.states.misses  # type: ignore[attr-defined]
    store.drop()  # type: ignore[attr-defined]
    store.close()
    n = len(lines)
    us = {k: v / n * 1e6 for k, v in acc.items()}
    # prefetch and flush include the decoding and encoding timed inside them: show the round trips alone
    us["prefetch round trip"] = us.pop("prefetch") - us.get("decode states", 0.0)
    us["flush round trip"] = us.pop("flush") - us.get("encode states", 0.0)
    us["runtime (parse, bookkeeping)"] = wall / n * 1e6 - sum(us.values())
    us["= wall"] = wall / n * 1e6
    us["client CPU"] = cpu / n * 1e6
    us["server CPU (all postgres processes)"] = srv / n * 1e6
    us["state cache hit rate %"] = 100.0 * hits / max(1, hits + misses)
    return us


# -- main -----------------------------------------------------------------------------------------
def _row(
    label: str,
    impls: list[tuple[str, Any]],
    fn: Callable[[Any], tuple[float, ...]],
    repeat: int,
    base: dict[str, tuple[float, float]] | None = None,
) -> dict[str, tuple[float, float]]:
    """Best of ``repeat`` (revisions interleaved) for each package; one printed line: events/s and
    wake-ups/s (and their ratio to ``base``, the one-worker row) of the current code, then each
    revision's with now/then; where ``fn`` also gives CPU µs per event, the range over the runs
    (``cpu lo–hi µs/ev``)."""
    best: dict[str, tuple[float, float]] = {}
    cpus: dict[str, list[float]] = {}
    failed: dict[str, str] = {}
    for _ in range(repeat):
        for name, cp in impls:
            try:
                ev, wk, *cpu = fn(cp)
            except Exception as exc:  # an old revision that cannot run this row
                failed[name] = f"n/a ({type(exc).__name__}: {str(exc)[:50]})"
                continue
            got = best.get(name, (0.0, 0.0))
            best[name] = (max(got[0], ev), max(got[1], wk))
            cpus.setdefault(name, []).extend(cpu)
    cells = []
    for name, _ in impls:
        if name not in best:
            cells.append(f"{name}: {failed.get(name, 'n/a')}")
            continue
        ev, wk = best[name]
        cell = f"{ev:>9,.0f}"
        if base and name in base:
            cell += f" {ev / base[name][0]:>5.2f}×"
        if wk:
            cell += f" {wk:>9,.0f}"
            if base and name in base:
                cell += f" {wk / base[name][1]:>5.2f}×"
        if cpus.get(name):
            lo, hi = min(cpus[name]), max(cpus[name])
            cell += f" cpu {lo:,.0f}–{hi:,.0f} µs/ev"
        if name != "now" and "now" in best:
            cell = f"{name}: {cell}, now/then {best['now'][0] / ev:.2f}×"
            if cpus.get(name) and cpus.get("now"):
                cell += f" (cpu {min(cpus[name]) / min(cpus['now']):.2f}×)"
        cells.append(cell)
    print(f"{label:36}" + "   ".join(cells), flush=True)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=60)
    ap.add_argument("--batches", default="10,100,1000")
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--against", action="append", default=[], metavar="REV")
    ap.add_argument("--no-breakdown", action="store_true", help="skip the one-worker breakdown")
    args = ap.parse_args()
    batches = [int(x) for x in args.batches.split(",")]
    workers = [int(x) for x in args.workers.split(",")]
    impls = packages(args.against)
    lines = log(args.copies)
    n = len(lines)
    print(
        f"{n} events, {args.copies * 17} cases; {os.cpu_count()} cores shared by the workers and PostgreSQL; "
        f"best of {args.repeat}; events/s [ratio to 1 worker] wake-ups/s [ratio]"
    )
    _row("pure engine (route over a dict)", impls, lambda cp: _engine(cp, lines), args.repeat)
    for b in batches:
        _row(
            f"SQLite (synchronous=full), batch {b}",
            impls,
            lambda cp, b=b: _sqlite(cp, lines, b),  # type: ignore[misc]
            args.repeat,
        )
    for b in batches:
        base: dict[str, tuple[float, float]] | None = None
        for w in workers:
            got = _row(
                f"PostgreSQL, batch {b}, {w} worker(s)",
                impls,
                lambda cp, b=b, w=w: _pg(cp, args.url, lines, w, b),  # type: ignore[misc]
                args.repeat,
                base,
            )
            base = base or got
    if args.no_breakdown:
        return
    cols = [(f"batch {b}", args.url, b, "") for b in batches]
    cols.append((f"{batches[-1]}, cache off", args.url, batches[-1], "&state_cache=0"))
    cols.append(
        (f"{batches[-1]}, sync off", args.url, batches[-1], "&options=-csynchronous_commit%3Doff")
    )
    print(
        "\nOne worker, µs per event (sync off: synchronous_commit=off, not durable, to show the fsync)"
    )
    table = [(label, _breakdown(url, lines, b, extra)) for label, url, b, extra in cols]
    rows = list(dict.fromkeys(k for _, d in table for k in d))
    print(f"{'':38}" + "".join(f"{label:>18}" for label, _ in table))
    for k in rows:
        print(f"{k:38}" + "".join(f"{d.get(k, 0.0):>18,.0f}" for _, d in table))
    print(f"{'→ events/s':38}" + "".join(f"{1e6 / d['= wall']:>18,.0f}" for _, d in table))


if __name__ == "__main__":
    main()
