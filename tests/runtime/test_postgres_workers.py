"""Many workers on one PostgreSQL store: 4 processes, events partitioned by case key, all firing
wake-ups and delivering the outbox at once on a simulated timeline; one killed with SIGKILL at
random points and restarted; backends terminated mid-run (the database "restarting").

The timeline is global: a driver moves it in rounds ``G1 < G2 < …``. In round k every worker first
submits its own events up to ``G_k`` (a barrier), then every worker runs ``run_due(G_k)`` and
``deliver(G_k)`` at once — so a wake-up of a case never fires before an earlier event of that
case, whichever worker holds it (the engine fires a case's earlier wake-ups itself when an event
arrives). The reference is the same rounds in one process on SQLite.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import textwrap
import time
import zlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import carepath
from carepath.runtime import Runtime, open_store
from carepath.runtime.clock import ManualClock
from conftest import postgres_schema_url, postgres_url

ROOT = Path(__file__).resolve().parents[2]
RETAIL = str(ROOT / "examples" / "vn-retail-support.yaml")
EVENTS = ROOT / "examples" / "events" / "vn-retail-support.jsonl"
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
END = datetime.fromisoformat("2027-04-01T00:00:00+07:00")
WORKERS = 4

_WORKER = textwrap.dedent("""
    import json, sys
    from datetime import datetime
    import carepath
    from carepath.runtime.clock import ManualClock
    from carepath.runtime import Runtime, open_store

    url, playbook, events_path, out_path, name = sys.argv[1:6]
    events = [json.loads(x) for x in open(events_path, encoding="utf-8")]
    store = open_store(url)
    clock = ManualClock()
    rt = Runtime([carepath.load(playbook)], store, clock=clock, worker=name, batch=25)
    out = open(out_path, "a", encoding="utf-8")
    rt.handlers["*"] = lambda a, s: (out.write(json.dumps(a.to_dict(), sort_keys=True) + "\\n"), out.flush())
    done = 0
    print("ready", flush=True)
    for cmd in sys.stdin:
        verb, k, g = cmd.split()
        t = datetime.fromisoformat(g)
        clock.set(t)
        if verb == "submit":  # a new worker starts from the top: what was applied is skipped by id
            mine = [e["line"] for e in events[done:] if e["at"] <= g]
            rt.submit_many(mine, batch=10)
            done += len(mine)
        else:
            rt.run_due(t)
            rt.deliver(t)
        print(f"{verb} {k}", flush=True)
""")


def _events(copies: int) -> list[dict[str, Any]]:
    """The example log ``copies`` times over (distinct keys and ids), plus two bad lines."""
    base = [json.loads(x) for x in EVENTS.read_text(encoding="utf-8").splitlines() if x.strip()]
    out: list[dict[str, Any]] = []
    for k in range(copies):
        for e in base:
            at = datetime.fromisoformat(e["at"]) + timedelta(seconds=37 * k)
            out.append(
                {**e, "id": f"{e['id']}-{k}", "case": f"{e['case']}-{k}", "at": at.isoformat()}
            )
    out.sort(key=lambda e: datetime.fromisoformat(e["at"]))
    out.insert(len(out) // 3, {"raw": "{broken", "case": "X", "at": out[len(out) // 3]["at"]})
    out.insert(
        len(out) // 2,
        {"id": "ghost", "type": "agent.replied", "at": out[len(out) // 2]["at"], "case": "NO-SUCH"},
    )
    for e in out:
        e["_at"] = datetime.fromisoformat(e["at"]).astimezone(END.tzinfo).isoformat()
    return out


def _rounds(events: list[dict[str, Any]], n: int) -> list[str]:
    ats = sorted({e["_at"] for e in events})
    picks = sorted({ats[min(len(ats) - 1, (i * len(ats)) // n)] for i in range(1, n)} | {ats[-1]})
    return [*picks, END.isoformat(), (END + timedelta(minutes=5)).isoformat()]


def _line(e: dict[str, Any]) -> str:
    return str(e["raw"]) if "raw" in e else json.dumps({k: v for k, v in e.items() if k != "_at"})


def _reference(
    events: list[dict[str, Any]], rounds: list[str]
) -> tuple[dict[str, str], dict[str, Any], int]:
    store = open_store("sqlite://:memory:")
    clock = ManualClock()
    rt = Runtime([carepath.load(RETAIL)], store, clock=clock)
    rt.handlers["*"] = lambda a, s: None
    done = 0
    for g in rounds:
        t = datetime.fromisoformat(g)
        clock.set(t)
        batch = [e for e in events[done:] if e["_at"] <= g]
        done += len(batch)
        rt.submit_many([_line(e) for e in batch], batch=10)
        rt.run_due(t)
        rt.deliver(t)
    try:
        return (
            {c.case: c.to_json() for c in store.cases()},
            {i.id: i.action.to_dict() for i in store.outbox()},
            store.processed_count(),
        )
    finally:
        store.close()


class _Driver:
    def __init__(self, url: str, tmp: Path, parts: list[list[dict[str, Any]]]) -> None:
        self.url, self.tmp = url, tmp
        self.script = tmp / "worker.py"
        self.script.write_text(_WORKER, encoding="utf-8")
        self.files = []
        for i, part in enumerate(parts):
            f = tmp / f"events-{i}.jsonl"
            f.write_text(
                "".join(json.dumps({"at": e["_at"], "line": _line(e)}) + "\n" for e in part),
                encoding="utf-8",
            )
            self.files.append(f)
        self.incarnation = [0] * len(parts)
        self.procs: list[subprocess.Popen[str]] = [self._start(i) for i in range(len(parts))]
        for p in self.procs:
            self._expect(p, "ready")
        self.restarts = 0

    def _start(self, i: int) -> subprocess.Popen[str]:
        self.incarnation[i] += 1
        out = self.tmp / f"delivered-{i}-{self.incarnation[i]}.jsonl"
        return subprocess.Popen(
            [
                sys.executable,
                str(self.script),
                self.url,
                RETAIL,
                str(self.files[i]),
                str(out),
                f"w{i}.{self.incarnation[i]}",
            ],
            env=ENV,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    @staticmethod
    def _expect(p: subprocess.Popen[str], want: str, timeout: float = 60.0) -> bool:
        assert p.stdout is not None
        ready, _, _ = select.select([p.stdout], [], [], timeout)
        line = p.stdout.readline().strip() if ready else "timeout"
        if line == want:
            return True
        if line == "timeout":
            raise AssertionError(f"worker did not answer {want!r} in {timeout} s")
        p.wait(timeout=30)
        if p.returncode != -signal.SIGKILL:
            assert p.stderr is not None
            raise AssertionError(f"worker failed ({p.returncode}): {p.stderr.read()[-3000:]}")
        return False

    def phase(
        self, verb: str, k: int, g: str, kill: int | None = None, terminate: bool = False
    ) -> None:
        cmd = f"{verb} {k} {g}\n"
        for i, p in enumerate(self.procs):
            if p.poll() is not None:  # killed in the last phase after it had already answered
                assert p.returncode == -signal.SIGKILL, p.stderr.read() if p.stderr else ""
                self.restarts += 1
                p = self.procs[i] = self._start(i)
                assert self._expect(p, "ready")
            assert p.stdin is not None
            p.stdin.write(cmd)
            p.stdin.flush()
        if kill is not None:
            time.sleep(random.uniform(0.0, 0.04))
            self.procs[kill].send_signal(signal.SIGKILL)
        if terminate:
            time.sleep(random.uniform(0.0, 0.02))
            _terminate_backends()
        for i in range(len(self.procs)):
            while not self._expect(self.procs[i], f"{verb} {k}"):
                self.restarts += 1  # killed: start a new one and give it the same phase again
                self.procs[i] = self._start(i)
                assert self._expect(self.procs[i], "ready")
                stdin = self.procs[i].stdin
                assert stdin is not None
                stdin.write(cmd)
                stdin.flush()

    def close(self) -> None:
        for p in self.procs:
            if p.stdin is not None:
                p.stdin.close()
            p.wait(timeout=30)
            # 0, or killed at the very end after it had answered its last phase
            assert p.returncode in (0, -signal.SIGKILL), p.stderr.read() if p.stderr else ""


def _terminate_backends() -> None:
    """What a database restart does to the workers: every connection to the test database dies."""
    import psycopg

    url = postgres_url()
    with psycopg.connect(url, autocommit=True) as c:
        c.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )


def _run(
    tmp_path: Path, *, kills: int, terminations: int, copies: int = 6, rounds_n: int = 14
) -> None:
    random.seed(int(os.environ.get("CAREPATH_TEST_SEED", "7")))
    events = _events(copies)
    rounds = _rounds(events, rounds_n)
    url = postgres_schema_url()
    parts: list[list[dict[str, Any]]] = [[] for _ in range(WORKERS)]
    for e in events:
        parts[zlib.crc32(str(e.get("case")).encode()) % WORKERS].append(e)
    drv = _Driver(url, tmp_path, parts)
    try:
        phases = [(verb, k, g) for k, g in enumerate(rounds) for verb in ("submit", "tick")]
        kill_at = set(random.sample(range(len(phases) - 2), kills))
        term_at = set(random.sample(range(len(phases) - 2), terminations))
        for n, (verb, k, g) in enumerate(phases):
            drv.phase(
                verb,
                k,
                g,
                kill=random.randrange(WORKERS) if n in kill_at else None,
                terminate=n in term_at,
            )
        drv.close()
    finally:
        for p in drv.procs:
            if p.poll() is None:
                p.kill()
    want_states, want_actions, want_processed = _reference(events, rounds)
    s = open_store(url)
    try:
        assert {c.case: c.to_json() for c in s.cases()} == want_states  # equal to one process
        assert s.processed_count() == want_processed  # every event applied exactly once
        items = s.outbox()
        assert {i.id: i.action.to_dict() for i in items} == want_actions
        assert all(
            i.status == "delivered" and i.claimed_by is None for i in items
        )  # nothing pending or claimed
        assert {r.reason for r in s.rejected()} == {"invalid", "unknown_case"} and len(
            s.rejected()
        ) == 2
        delivered: dict[str, str] = {}
        for f in tmp_path.glob("delivered-*.jsonl"):
            for ln in f.read_text(encoding="utf-8").splitlines():
                a = json.loads(ln)
                assert delivered.setdefault(a["id"], ln) == ln  # same id, same content, every time
        assert set(delivered) == set(want_actions)  # every action delivered at least once
        assert all(json.loads(v) == want_actions[k] for k, v in delivered.items())
        if kills:
            assert drv.restarts >= 1
    finally:
        s.drop()  # type: ignore[attr-defined]
        s.close()


@pytest.mark.slow
def test_four_workers_one_killed_at_random_points(tmp_path: Path) -> None:
    _run(tmp_path, kills=6, terminations=0)


@pytest.mark.slow
def test_workers_reconnect_when_the_database_drops_every_connection(tmp_path: Path) -> None:
    _run(tmp_path, kills=0, terminations=4)
