"""Durable events/s on SQLite: ``carepath run --clock simulated --actions FILE`` over a generated
log (issue 17), ``Runtime.submit_many`` in batches, wake-ups/s, and the pure engine on the same
log, each beside older git revisions run in this same process (``--against REV``, repeatable).

    .venv/bin/python bench/bench_runtime.py [--events 200000] [--copies 40] [--sync full|normal]
                                            [--against REV]… [--repeat N] [--rows run,submit,wake]

* ``run``: the ``carepath run`` command itself (called in this process: the same parsing, store,
  batching and ``--actions`` writing as on the command line) on ``carepath generate retail
  --events N``, into a fresh SQLite file (``synchronous=full`` unless ``--sync normal``: every
  commit waits for its fsync) and a fresh actions file. Events/s is N over the wall time; CPU
  µs/event is this process's CPU time (the fsync waits are wall time only). Each revision's
  actions file is compared with the current one's (the same action objects: ``same``).
* ``submit``: ``Runtime.submit_many(lines, batch=B, timeline=True)`` on the retail example repeated
  ``--copies`` times with distinct case keys (the shape of the crash test), batches of 1 to 1,000.
* ``wake``: the same log ingested without firing anything, then every case woken at once by
  ``run_due`` (200 cases per transaction), beside the pure engine's ``advance`` of the same states.

With ``--repeat N`` each figure is the best of N runs, the revisions interleaved (the machine is
shared: the best run is the least disturbed one): the highest rate and, on its own, the least CPU
time per event (the two may come from different runs).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import sys
import tempfile
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from _revision import attr, cli_main, example, packages, timed  # noqa: E402

PLAYBOOK = ROOT / "examples/vn-retail-support.yaml"
UNTIL = datetime.fromisoformat("2027-04-01T00:00:00+07:00")


def log(copies: int) -> list[str]:
    """The retail example ``copies`` times over, distinct case keys and ids, in time order."""
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


# -- the rows: each returns (events or cases, wall s, CPU s, a digest of what it produced) ---------
def run_command(cp: ModuleType, events: Path, d: Path, sync: str) -> tuple[int, float, float, str]:
    """``carepath run --clock simulated --actions FILE`` of package ``cp`` into ``d``."""
    db, out = d / "run.db", d / "actions.jsonl"
    for p in (db, out, d / "run.db-wal", d / "run.db-shm"):
        p.unlink(missing_ok=True)
    argv = [
        "run",
        str(example(cp, PLAYBOOK.name)),
        "--store",
        f"sqlite:///{db}?synchronous={sync}",
        "--events",
        str(events),
        "--clock",
        "simulated",
        "--actions",
        str(out),
        "-q",
    ]
    wall, cpu, rc = timed(lambda: cli_main(cp)(argv))
    if rc not in (0, 1):
        raise RuntimeError(f"carepath run exited {rc}")
    with sqlite3.connect(db) as c:
        n = int(c.execute("SELECT count(*) FROM processed").fetchone()[0])
    actions = sorted(
        json.dumps(json.loads(x), sort_keys=True) for x in out.read_text("utf-8").splitlines()
    )
    return n, wall, cpu, hashlib.sha256("\n".join(actions).encode()).hexdigest()[:12]


def submit(cp: ModuleType, lines: list[str], d: Path, batch: int, sync: str) -> Any:
    store = attr(cp, "runtime.open_store")(f"sqlite:///{_fresh(d)}?synchronous={sync}")
    rt = attr(cp, "runtime.Runtime")(
        [cp.load(example(cp, PLAYBOOK.name))], store, clock=_clock(cp)()
    )
    wall, cpu, _ = timed(lambda: rt.submit_many(lines, batch=batch, timeline=True))
    digest = hashlib.sha256("".join(s.case + s.stage for s in store.cases()).encode())
    store.close()
    return len(lines), wall, cpu, digest.hexdigest()[:12]


def wake(cp: ModuleType, lines: list[str], d: Path, sync: str, engine: bool) -> Any:
    store = attr(cp, "runtime.open_store")(f"sqlite:///{_fresh(d)}?synchronous={sync}")
    rt = attr(cp, "runtime.Runtime")(
        [cp.load(example(cp, PLAYBOOK.name))], store, clock=_clock(cp)()
    )
    rt.submit_many(lines, batch=1000)
    if engine:  # the pure engine's advance of the same states, no store
        states = store.cases()
        subject = next(iter(rt.engines.values()))
        wall, cpu, _ = timed(lambda: [subject.advance(st, UNTIL) for st in states])
        n = len(states)
    else:
        wall, cpu, n = timed(lambda: rt.run_due(UNTIL))
    store.close()
    return n, wall, cpu, ""


def engine_only(cp: ModuleType, lines: list[str]) -> Any:
    sim_cls = attr(cp, "drivers.simulate.Simulator", "simulate.Simulator")
    event = attr(cp, "events.Event", "Event")
    events = [event.from_dict(json.loads(x)) for x in lines]
    sim = sim_cls(cp.load(example(cp, PLAYBOOK.name)))

    def feed() -> None:
        for e in events:
            sim.feed(e)

    wall, cpu, _ = timed(feed)
    return len(events), wall, cpu, ""


def _fresh(d: Path) -> Path:
    """A new database file name in ``d`` (every run starts from an empty store)."""
    return d / f"{uuid.uuid4().hex}.db"


def _clock(cp: ModuleType) -> Any:
    return attr(cp, "runtime.clock.ManualClock", "clock.ManualClock")


# -- printing -----------------------------------------------------------------------------------
def measure(
    label: str,
    impls: list[tuple[str, ModuleType]],
    fn: Callable[[ModuleType], Any],
    repeat: int,
    unit: str = "events/s",
) -> None:
    """Run ``fn`` for every package ``repeat`` times (interleaved); print the best of each."""
    best: dict[str, tuple[float, float, str] | str] = {}
    for _ in range(repeat):
        for name, cp in impls:
            try:
                n, wall, cpu, digest = fn(cp)
            except Exception as exc:  # an old revision that cannot run this row
                best.setdefault(name, f"n/a ({type(exc).__name__}: {str(exc)[:60]})")
                continue
            rate, us = n / wall, cpu / max(n, 1) * 1e6
            got = best.get(name)
            if not isinstance(got, tuple):
                best[name] = (rate, us, digest)
            else:  # the best rate and the least CPU, each of its own run
                best[name] = (max(rate, got[0]), min(us, got[1]), got[2])
    now = best.get("now")
    cells = []
    for name, _ in impls:
        got = best.get(name)
        if not isinstance(got, tuple):
            cells.append(f"{name}: {got}")
            continue
        rate, us, digest = got
        cell = f"{rate:9,.0f} {unit} ({us:6,.0f} µs CPU)"
        if name != "now" and isinstance(now, tuple):
            cell = f"{name}: {cell}, now/then {now[0] / rate:5.2f}×"
            if digest and now[2]:
                cell += ", same" if digest == now[2] else ", DIFFERENT output"
        cells.append(cell)
    print(f"  {label:<44}" + "   ".join(cells), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000, help="events of the `run` row")
    ap.add_argument("--copies", type=int, default=40, help="copies of the example log (other rows)")
    ap.add_argument("--sync", default="full", choices=("full", "normal"))
    ap.add_argument("--against", action="append", default=[], metavar="REV")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--rows", default="run,submit,wake")
    args = ap.parse_args()
    rows = set(args.rows.split(","))
    impls = packages(args.against)
    lines = log(args.copies)
    print(
        f"SQLite {sqlite3.sqlite_version}, synchronous={args.sync}; best of {args.repeat}; "
        "wall-clock rate (CPU time of this process per event)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        if "run" in rows:
            events = d / "events.jsonl"
            cli_main(impls[0][1])(
                ["generate", "retail", "--events", str(args.events), "-o", str(events)]
            )
            print(f"carepath generate retail --events {args.events:,}:")
            for name, _ in impls:
                (d / name).mkdir()
            measure(
                "carepath run --clock simulated --actions",
                impls,
                lambda cp: run_command(cp, events, d / _name(impls, cp), args.sync),
                args.repeat,
            )
        if rows & {"submit", "wake"}:
            print(
                f"the retail example × {args.copies}: {len(lines):,} events, {args.copies * 17} cases"
            )
            measure(
                "in-memory simulator (Simulator.feed)",
                impls,
                lambda cp: engine_only(cp, lines),
                args.repeat,
            )
        if "submit" in rows:
            for b in (1, 10, 100, 1000):
                what = "1 event per transaction" if b == 1 else f"batches of {b}"
                measure(
                    f"submit_many, {what}",
                    impls,
                    lambda cp, b=b: submit(cp, lines, d, b, args.sync),  # type: ignore[misc]
                    args.repeat,
                )
        if "wake" in rows:
            measure(
                "wake-ups: run_due (200 per transaction)",
                impls,
                lambda cp: wake(cp, lines, d, args.sync, engine=False),
                args.repeat,
                "cases/s",
            )
            measure(
                "wake-ups: pure engine advance",
                impls,
                lambda cp: wake(cp, lines, d, args.sync, engine=True),
                args.repeat,
                "cases/s",
            )


def _name(impls: list[tuple[str, ModuleType]], cp: ModuleType) -> str:
    return next(n for n, p in impls if p is cp)


if __name__ == "__main__":
    main()
