"""``carepath serve`` under load, from a second process on loopback: events/s ingested over HTTP
in batches of 100 on SQLite, and the latency of single-event POSTs (p50, p99, max).

    .venv/bin/python bench/bench_serve.py [--events N] [--singles M] [--connections C]
                                          [--concurrent K] [--sync full|normal] [--against REV]…

This script is the client; the server is a real ``carepath serve`` subprocess on a free loopback
port with a fresh SQLite store. The load is bounded (N batched events, then M single POSTs, one at
a time, then M more from K connections at once) and the server is stopped with SIGTERM at the end, so the bench stops by itself. The log is
the retail example repeated with distinct case keys (as ``bench_runtime.py``); every answer is
checked (all ``applied``), and the store's processed count must equal N + 2M.

For scale, the same batches are first submitted in this process, without HTTP, to a runtime on a
fresh store of the same kind (``Runtime.submit_many(batch=100)``): the ratio of the two rates is
what HTTP, JSON and the service add.

With ``--against REV`` (repeatable) the same load is then sent to a server running git revision
``REV``'s source (``git archive`` into the temporary folder, first on ``PYTHONPATH``), on a fresh
store: the same interpreter and installed packages (the native core, uvicorn's parsers), one
after the other on the same machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

import httpx  # noqa: E402 - the serve extra
from _revision import archive, core_library  # noqa: E402


def events(n: int, tag: str) -> list[dict[str, Any]]:
    """``n`` events: the retail example repeated with distinct case keys, in time order."""
    base = [
        json.loads(x)
        for x in (ROOT / "examples/events/vn-retail-support.jsonl").read_text().splitlines()
        if x.strip()
    ]
    out = []
    k = 0
    while len(out) < n:
        for e in base:
            e2 = dict(e, id=f"{e['id']}-{tag}{k}", case=f"{e['case']}-{tag}{k}")
            e2["at"] = (datetime.fromisoformat(e["at"]) + timedelta(seconds=k % 3600)).isoformat()
            out.append(e2)
        k += 1
    out.sort(key=lambda e: datetime.fromisoformat(e["at"]))
    # whole copies of the log keep every case complete; cut at n (a case may lose its last events)
    return out[:n]


def revision_src(rev: str, tmp: Path) -> Path:
    """Git revision ``rev``'s ``src`` and ``examples``, extracted under ``tmp`` (its server runs
    from there: the same interpreter and installed packages), with the revision's own native core
    when its ``core/`` differs from this checkout's (``_revision.core_library``)."""
    where = tmp / f"rev-{re.sub(r'[^A-Za-z0-9]', '_', rev)}"
    where.mkdir()
    archive(rev, "src/carepath", "examples", into=where)
    lib = core_library(rev)
    if lib is not None:  # its own core, first on PYTHONPATH: it shadows the installed one
        shutil.copyfile(lib, where / "src" / "carepath_core.abi3.so")
    return where


def start(
    store: str, tmp: Path, rev: Path | None = None
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """A ``carepath serve`` subprocess on a free loopback port (revision ``rev``'s source if
    given, else this checkout's); its process, URL and standard-error file."""
    err = tmp / f"serve-{rev.name if rev else 'now'}.err"
    root = rev or ROOT
    cmd = [sys.executable, "-m", "carepath", "serve", str(root / "examples/vn-retail-support.yaml")]
    env = dict(os.environ)
    if rev is not None:
        env["PYTHONPATH"] = str(rev / "src")
    with err.open("wb") as fh:
        proc = subprocess.Popen(
            [*cmd, "--store", store, "--port", "0"], stderr=fh, cwd=tmp, env=env
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        m = re.search(r"listening on (http://\S+)", err.read_text(errors="replace"))
        if m:
            return proc, m.group(1), err
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"serve did not start: {err.read_text(errors='replace')}")


def ingest(url: str, batches: list[list[dict[str, Any]]], connections: int) -> float:
    """POST every batch over ``connections`` keep-alive connections; the wall time."""
    bodies = [json.dumps(b).encode() for b in batches]
    failures: list[str] = []
    cursor = iter(range(len(bodies)))
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            while True:
                with lock:
                    i = next(cursor, None)
                if i is None:
                    return
                r = http.post(
                    "/events", content=bodies[i], headers={"Content-Type": "application/json"}
                )
                got = r.json() if r.status_code == 200 else None
                if got is None or any(x["status"] != "applied" for x in got):
                    failures.append(f"batch {i}: HTTP {r.status_code} {r.text[:200]}")

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    took = time.perf_counter() - t
    if failures:
        raise SystemExit(f"{len(failures)} batches not applied, e.g. {failures[0]}")
    return took


def singles(url: str, evs: list[dict[str, Any]], connections: int = 1) -> list[float]:
    """POST each event alone over ``connections`` connections (each one after the other on its
    own); each round trip's seconds."""
    out: list[float] = []
    failures: list[str] = []

    def worker(part: list[dict[str, Any]]) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            for e in part:
                body = json.dumps(e).encode()
                t = time.perf_counter()
                r = http.post("/events", content=body, headers={"Content-Type": "application/json"})
                out.append(time.perf_counter() - t)
                if r.status_code != 200 or r.json()[0]["status"] != "applied":
                    failures.append(f"{r.status_code} {r.text[:200]}")

    # a case's events stay on one connection, in order
    parts: list[list[dict[str, Any]]] = [[] for _ in range(connections)]
    for e in evs:
        parts[hash(e["case"]) % connections].append(e)
    threads = [threading.Thread(target=worker, args=(p,)) for p in parts]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if failures:
        raise SystemExit(f"{len(failures)} single events not applied, e.g. {failures[0]}")
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def in_process(store: str, batches: list[list[dict[str, Any]]]) -> tuple[float, float]:
    """The same batches through ``Runtime.submit_many`` in this process; wall and CPU seconds."""
    sys.path.insert(0, str(ROOT / "src"))
    import carepath
    from carepath.runtime import Runtime, open_store

    rt = Runtime([carepath.load(ROOT / "examples/vn-retail-support.yaml")], open_store(store))
    t, cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        results = rt.submit_many(batch, batch=100)
        if any(r.status != "applied" for r in results):
            raise SystemExit("in-process: an event was not applied")
    took, cpu = time.perf_counter() - t, time.process_time() - cpu
    rt.store.close()
    return took, cpu


def pct(xs: list[float], p: float) -> float:
    """The ``p``-th percentile, nearest rank."""
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def serve_run(
    store: str, tmp: Path, work: tuple[Any, Any, Any], args: Any, rev: Path | None = None
) -> dict[str, Any]:
    """One server (``rev``'s source, or this checkout's) on a fresh ``store``, driven through the
    batches, then the single POSTs; its figures."""
    batches, single, many = work
    proc, url, err = start(store, tmp, rev)
    try:
        with httpx.Client(base_url=url) as http:  # warm up: imports, the first transaction
            http.post("/events", json=[])
        cpu = cpu_seconds(proc.pid)
        took = ingest(url, batches, args.connections)
        cpu = cpu_seconds(proc.pid) - cpu
        lat = singles(url, single)
        t = time.perf_counter()
        lat_many = singles(url, many, args.concurrent)
        took_many = time.perf_counter() - t
        metrics = httpx.get(f"{url}/metrics").text
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(60)
    applied = re.search(r'carepath_events_total\{status="applied"\} (\S+)', metrics)
    n_applied = int(float(applied.group(1))) if applied else -1
    expected = args.events + 2 * args.singles
    if n_applied != expected or rc != 0:
        print(err.read_text(errors="replace")[-2000:], file=sys.stderr)
        raise SystemExit(f"applied {n_applied:,} (expected {expected:,}); exit {rc}")
    return {"took": took, "cpu": cpu, "lat": lat, "lat_many": lat_many, "took_many": took_many}


def _report(name: str, r: dict[str, Any], args: Any, base: float) -> None:
    took, lat, lat_many = r["took"], r["lat"], r["lat_many"]
    print(f"{name}:")
    print(
        f"  ingest: {args.events:,} events in {args.events // 100:,} POSTs of 100: {took:.2f} s, "
        f"{args.events / took:,.0f} events/s; server CPU {r['cpu'] / args.events * 1e6:.0f} µs/event; "
        f"HTTP reaches {base / took:.0%} of the in-process rate"
    )
    print(
        f"  single-event POSTs: {len(lat):,} one at a time: p50 {pct(lat, 50) * 1e3:.2f} ms, "
        f"p99 {pct(lat, 99) * 1e3:.2f} ms, max {max(lat) * 1e3:.2f} ms "
        f"({len(lat) / sum(lat):,.0f} requests/s)"
    )
    print(
        f"  single-event POSTs from {args.concurrent} connections at once: {len(lat_many):,} in "
        f"{r['took_many']:.2f} s, {len(lat_many) / r['took_many']:,.0f} events/s, "
        f"p50 {pct(lat_many, 50) * 1e3:.2f} ms, p99 {pct(lat_many, 99) * 1e3:.2f} ms"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=50_000, help="events posted in batches of 100")
    ap.add_argument("--singles", type=int, default=2_000, help="single-event POSTs, one at a time")
    ap.add_argument("--connections", type=int, default=2, help="concurrent batch posters")
    ap.add_argument(
        "--concurrent",
        type=int,
        default=8,
        help="then single-event POSTs from this many connections at once (group commit)",
    )
    ap.add_argument("--sync", default="full", choices=("full", "normal"))
    ap.add_argument(
        "--against",
        action="append",
        default=[],
        metavar="REV",
        help="also serve from git revision REV's source, after the current one (repeatable)",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        opts = "?synchronous=normal" if args.sync == "normal" else ""
        batched = events(args.events, "b")
        batches = [batched[i : i + 100] for i in range(0, len(batched), 100)]
        work = (batches, events(args.singles, "s"), events(args.singles, "c"))
        base, base_cpu = in_process(f"sqlite:///{Path(tmp) / 'base.db'}{opts}", batches)
        runs = [
            ("now", serve_run(f"sqlite:///{Path(tmp) / 'now.db'}{opts}", Path(tmp), work, args))
        ]
        for rev in args.against:
            src = revision_src(rev, Path(tmp))
            store = f"sqlite:///{Path(tmp) / (src.name + '.db')}{opts}"
            runs.append((rev, serve_run(store, Path(tmp), work, args, src)))
        print(
            f"carepath serve on SQLite (synchronous={args.sync}), client and server on loopback, "
            f"{args.connections} connection(s); every event applied, exit 0"
        )
        print(
            f"in process, no HTTP (Runtime.submit_many, batch 100, this checkout): {base:.2f} s, "
            f"{args.events / base:,.0f} events/s, CPU {base_cpu / args.events * 1e6:.0f} µs/event"
        )
        for name, r in runs:
            _report(name, r, args, base)
        for name, r in runs[1:]:
            print(f"ingest now/{name}: {r['took'] / runs[0][1]['took']:.2f}×")


if __name__ == "__main__":
    main()
