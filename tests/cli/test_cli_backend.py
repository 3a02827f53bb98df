"""CAREPATH_ENGINE that cannot run a playbook is a setting to fix: one line, exit 2, no 'bug'."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _carepath(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "carepath", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=ROOT,
        timeout=120,
    )


#: A condition on how much of a clock is left: the one thing the native core leaves to the reference
ELAPSED = """
carepath: 1
id: left
version: "1"
timezone: Asia/Ho_Chi_Minh
tiers: {L1: {}, L2: {}}
start: {on: case.opened}
slas:
  answer: {start: {on: case.opened}, stop: {on: agent.replied}, targets: [{within: 4h}]}
stages:
  open:
    initial: true
    on:
      nudge: {do: [{escalate: L2}], when: sla.answer.remaining < duration("1h")}
      agent.replied: done
  done: {final: true}
"""


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (
            "native",
            "the native core does not support it: stages.open.on.nudge: the condition "
            "'sla.answer.remaining < duration(\"1h\")' reads sla.answer.remaining",
        ),
        ("rust", "CAREPATH_ENGINE must be python or native, not 'rust'"),
    ],
)
def test_an_engine_that_cannot_run_is_one_line_and_exit_2(
    value: str, said: str, tmp_path: Path
) -> None:
    if value == "native":
        pytest.importorskip("carepath_core")
    (tmp_path / "left.yaml").write_text(ELAPSED, encoding="utf-8")
    (tmp_path / "left.jsonl").write_text(
        '{"id": "e1", "type": "case.opened", "at": "2027-03-01T09:00:00+07:00", "case": "C1"}\n',
        encoding="utf-8",
    )
    done = _carepath(
        "simulate",
        str(tmp_path / "left.yaml"),
        str(tmp_path / "left.jsonl"),
        env={"CAREPATH_ENGINE": value},
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("carepath: ") and said in lines[0], lines
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""
