"""Reliability of the SQLite runtime with real processes: SIGKILL at random points, and two
processes writing one database file at once. Marked slow; bounded to a few seconds each."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from carepath.runtime import open_store

ROOT = Path(__file__).resolve().parents[2]
RETAIL = str(ROOT / "examples" / "vn-retail-support.yaml")
EVENTS = ROOT / "examples" / "events" / "vn-retail-support.jsonl"
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}


def _copies(n: int) -> list[str]:
    """The example log ``n`` times over, with distinct case keys and ids, in time order."""
    base = [json.loads(x) for x in EVENTS.read_text(encoding="utf-8").splitlines() if x.strip()]
    out: list[dict[str, Any]] = []
    for k in range(n):
        for e in base:
            e2 = dict(e)
            e2["id"] = f"{e['id']}-{k}"
            e2["case"] = f"{e['case']}-{k}"
            at = datetime.fromisoformat(e["at"]) + timedelta(seconds=k)
            e2["at"] = at.isoformat()
            out.append(e2)
    out.sort(key=lambda e: datetime.fromisoformat(e["at"]))
    lines = [json.dumps(e, ensure_ascii=False) for e in out]
    # a few bad lines in the middle: rejected each time, recorded once, never blocking
    lines.insert(len(lines) // 3, "{broken")
    lines.insert(
        len(lines) // 2,
        json.dumps({"id": "ghost", "type": "agent.replied", "at": out[0]["at"], "case": "NO-SUCH"}),
    )
    return lines


def _run_cmd(db: Path, events: Path, actions: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "carepath",
        "run",
        RETAIL,
        "--store",
        f"sqlite:///{db}",
        "--events",
        str(events),
        "--actions",
        str(actions),
        "--batch",
        "3",
        "--until",
        "2027-04-01T00:00:00+07:00",
        "-q",
    ]


def _snapshot(db: Path) -> tuple[dict[str, str], dict[str, dict[str, Any]], int]:
    s = open_store(f"sqlite:///{db}")
    try:
        states = {c.case: c.to_json() for c in s.cases()}
        items = {i.id: i.to_dict() for i in s.outbox()}
        return states, items, s.processed_count()
    finally:
        s.close()


@pytest.mark.slow
def test_sigkill_at_random_points_loses_nothing_and_applies_everything_once(tmp_path: Path) -> None:
    lines = _copies(4)
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines) + "\n", encoding="utf-8")
    n_good = len(lines) - 2

    # the reference: one clean run
    ref_db, ref_actions = tmp_path / "ref.db", tmp_path / "ref-actions.jsonl"
    t = time.monotonic()
    rc = subprocess.run(
        _run_cmd(ref_db, events, ref_actions), env=ENV, capture_output=True, text=True, check=False
    )
    full = time.monotonic() - t
    print(f"one clean run: {full:.2f} s")
    assert rc.returncode == 1, rc.stderr  # the two bad lines
    ref_states, ref_items, ref_processed = _snapshot(ref_db)
    assert ref_processed == n_good and all(i["status"] == "delivered" for i in ref_items.values())

    # the same run, killed with SIGKILL at random instants, restarted each time
    db, actions = tmp_path / "crash.db", tmp_path / "actions.jsonl"
    rng = random.Random(20270201)
    kills = 0
    for _ in range(15):
        p = subprocess.Popen(
            _run_cmd(db, events, actions),
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.15, max(0.3, full * 0.9)))
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            kills += 1
        p.wait()
    assert kills >= 5
    final = subprocess.run(
        _run_cmd(db, events, actions), env=ENV, capture_output=True, text=True, check=False
    )
    assert final.returncode == 1, final.stderr

    states, items, processed = _snapshot(db)
    assert processed == n_good  # every event applied exactly once (ids are unique per event)
    assert states == ref_states  # …and the same result as a run that never crashed
    assert items == {k: {**v, "attempts": items[k]["attempts"]} for k, v in ref_items.items()}
    assert all(i["status"] == "delivered" for i in items.values())
    written: dict[str, list[dict[str, Any]]] = {}
    for x in actions.read_text(encoding="utf-8").splitlines():
        a = json.loads(x)  # every line is whole: flushed before the item is marked delivered
        written.setdefault(a["id"], []).append(a)
    assert set(written) == set(items)  # no action lost
    for aid, copies in written.items():  # a repeated action keeps its id and content
        assert all(c == items[aid]["action"] for c in copies)
    s = open_store(f"sqlite:///{db}")
    assert [r.reason for r in s.rejected()] == ["invalid", "unknown_case"]
    assert s.integrity_check() == "ok"  # type: ignore[attr-defined]
    s.close()


_WORKER = textwrap.dedent("""
    import json, sys
    from datetime import timedelta
    import carepath
    from carepath.runtime.clock import ManualClock
    from carepath.runtime import Runtime, open_store
    from carepath.events import Event

    db, events, out, start = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    lines = [x for x in open(events, encoding="utf-8").read().splitlines() if x.strip()]
    store = open_store("sqlite:///" + db)        # both processes create and migrate at once
    pb = carepath.load(sys.argv[5])
    clock = ManualClock(Event.from_dict(json.loads(lines[0])).at)
    rt = Runtime([pb], store, clock=clock)
    fh = open(out, "a", encoding="utf-8")
    rt.handlers["*"] = lambda a, s: (fh.write(json.dumps(a.to_dict()) + "\\n"), fh.flush())
    for i, line in enumerate(lines):
        e = Event.from_dict(json.loads(line))
        clock.advance_to(e.at)
        r = rt.submit(line)  # (no run_due here: the other process's timeline is not ours)
        assert r.status == "applied", r
        if i % 7 == 0:
            rt.deliver()
    rt.deliver()
    store.close()
""")


@pytest.mark.slow
def test_two_processes_on_one_database_file(tmp_path: Path) -> None:
    lines = [x for x in _copies(2) if x.startswith('{"')]
    a = [x for x in lines if json.loads(x)["case"].endswith("-0")]
    b = [x for x in lines if json.loads(x)["case"].endswith("-1")]
    ea, eb = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    ea.write_text("\n".join(a) + "\n", encoding="utf-8")
    eb.write_text("\n".join(b) + "\n", encoding="utf-8")
    db = tmp_path / "shared.db"
    script = tmp_path / "worker.py"
    script.write_text(_WORKER, encoding="utf-8")
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                str(db),
                str(ev),
                str(tmp_path / f"out-{n}.jsonl"),
                "0",
                RETAIL,
            ],
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n, ev in (("a", ea), ("b", eb))
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    s = open_store(f"sqlite:///{db}")
    try:
        assert s.integrity_check() == "ok"  # type: ignore[attr-defined]
        assert s.schema_version() == 3
        import carepath
        from carepath.runtime import Runtime
        from carepath.runtime.clock import ManualClock

        rt = Runtime(
            [carepath.load(RETAIL)],
            s,
            clock=ManualClock(datetime.fromisoformat("2027-04-01T00:00:00+07:00")),
        )
        assert rt.run_due() > 0
        out = tmp_path / "out-a.jsonl"
        with out.open("a", encoding="utf-8") as fh:
            rt.handlers["*"] = lambda a, st: fh.write(json.dumps(a.to_dict()) + "\n")
            rt.deliver()
        assert s.rejected() == []
        assert s.processed_count() == len(a) + len(b)
        keys = {json.loads(x)["case"] for x in a + b}
        assert {c.case for c in s.cases()} == keys
        items = s.outbox()
        assert items and all(i.status == "delivered" for i in items)
        written = [
            json.loads(x)["id"]
            for n in "ab"
            for x in (tmp_path / f"out-{n}.jsonl").read_text(encoding="utf-8").splitlines()
        ]
        # at least once (SPEC §7): two processes on their own simulated clocks may both hand over an
        # item whose lease lapsed on one of them; every id is there, and nothing else
        assert set(written) == {i.id for i in items}
    finally:
        s.close()
