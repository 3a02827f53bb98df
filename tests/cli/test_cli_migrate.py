"""``carepath cases migrate`` and the refusal of ``run`` to start beside stranded cases
(SPEC §9), in real subprocesses on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import postgres_schema_url

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}

DESK = """
carepath: 1
id: desk
version: "VERSION"
timezone: UTC
start: {on: ticket.opened, set: {priority: =event.priority}}
fields:
  priority: {type: enum, values: [low, high], default: low}
events:
  ticket.opened: {priority: {type: enum, values: [low, high], default: low}}
slas:
  first_response:
    start: {on: ticket.opened}
    stop: {on: agent.replied}
    calendar: always
    targets:
      - {when: priority == "high", within: HIGH}
      - {within: 8h}
stages:
  STAGE:
    initial: true
    on: {agent.replied: done}
    after: [{in: 3d, to: done}]
  done: {final: true}
"""

URLS: dict[str, Callable[[Path], str]] = {
    "sqlite": lambda tmp: f"sqlite:///{tmp / 'cases.db'}",
    "postgres": lambda tmp: postgres_schema_url(),
}


def _carepath(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "carepath", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=ENV,
    )


def _write(tmp: Path, name: str, version: str, high: str, stage: str = "new") -> str:
    path = tmp / name
    text = DESK.replace("VERSION", version).replace("HIGH", high).replace("STAGE", stage)
    path.write_text(text, encoding="utf-8")
    return str(path)


def _events(tmp: Path, name: str, rows: list[tuple[str, str, str, str]]) -> str:
    path = tmp / name
    path.write_text(
        "".join(
            json.dumps({"id": i, "type": t, "at": at, "case": c, "data": {"priority": "high"}})
            + "\n"
            for i, t, at, c in rows
        ),
        encoding="utf-8",
    )
    return str(path)


@pytest.mark.parametrize("kind", sorted(URLS))
def test_run_refuses_stranded_cases_until_they_are_migrated(kind: str, tmp_path: Path) -> None:
    url = URLS[kind](tmp_path)
    v1 = _write(tmp_path, "v1.yaml", "1", "4h")
    v2 = _write(tmp_path, "v2.yaml", "2", "1h", stage="waiting")
    first = _events(
        tmp_path,
        "a.jsonl",
        [(f"o{n}", "ticket.opened", f"2027-02-01T09:0{n}:00+00:00", f"T-{n}") for n in range(3)],
    )
    r = _carepath("run", v1, "--store", url, "--events", first)
    assert r.returncode == 0, r.stderr
    later = _events(
        tmp_path, "b.jsonl", [("r0", "agent.replied", "2027-02-01T09:30:00+00:00", "T-0")]
    )

    r = _carepath("run", v2, "--store", url, "--events", later)
    assert r.returncode == 2
    assert "3 open case(s) of desk version 1 (the playbook given is version 2)" in r.stderr
    assert f"`carepath cases migrate --store {url} --to {v2}`" in r.stderr

    # a stage the new version lacks: nothing moves, exit 1, the way out named
    r = _carepath("cases", "--store", url, "migrate", "--to", v2)
    assert r.returncode == 1 and "--map OLD=NEW" in r.stderr
    r = _carepath("cases", "migrate", "--to", v2, "--map", "new=nowhere", "--store", url)
    assert r.returncode == 2 and "no stage 'nowhere'" in r.stderr
    r = _carepath("cases", "migrate", "--to", v2, "--map", "new", "--store", url)
    assert r.returncode == 2 and "expected OLD=NEW" in r.stderr

    # --store after the sub-command, as before it
    r = _carepath(
        "cases", "migrate", "--store", url, "--to", v2, "--map", "new=waiting", "--dry-run"
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == (
        "would move 3 open case(s) of desk to version 2: 3 now fall due earlier, 0 later, "
        "0 unchanged"
    )
    r = _carepath(
        "cases", "--store", url, "migrate", "--to", v2, "--map", "new=waiting", "-f", "json"
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert (doc["moved"], doc["earlier"], doc["later"], doc["failed"]) == (3, 3, 0, [])
    r = _carepath("cases", "migrate", "--to", v2, "--store", url, "--map", "new=waiting")
    assert r.returncode == 0 and r.stdout.startswith("moved 0 open case(s)")

    r = _carepath("run", v2, "--store", url, "--events", later)
    assert r.returncode == 0, r.stderr
    r = _carepath("cases", "list", "--store", url, "--format", "json")
    listed = {c["case"]: c for c in json.loads(r.stdout)}
    assert listed["T-0"]["stage"] == "done" and listed["T-1"]["stage"] == "waiting"
    assert listed["T-1"]["clocks"]["first_response"]["due"] == "2027-02-01T10:01:00+00:00"


def test_migrate_needs_an_existing_store_and_a_valid_playbook(tmp_path: Path) -> None:
    v2 = _write(tmp_path, "v2.yaml", "2", "1h")
    r = _carepath("cases", "migrate", "--to", v2, "--store", f"sqlite:///{tmp_path / 'no.db'}")
    assert r.returncode == 2 and "carepath: --store:" in r.stderr
    assert not (tmp_path / "no.db").exists()
    r = _carepath("cases", "migrate", "--to", str(tmp_path / "missing.yaml"))
    assert r.returncode == 2 and "no such file" in r.stderr
