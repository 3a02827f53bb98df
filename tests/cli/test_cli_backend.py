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


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("native", "the native core does not support it: channels.zalo.frequency_cap"),
        ("rust", "CAREPATH_ENGINE must be python or native, not 'rust'"),
    ],
)
def test_an_engine_that_cannot_run_is_one_line_and_exit_2(value: str, said: str) -> None:
    if value == "native":
        pytest.importorskip("carepath_core")
    done = _carepath(
        "simulate",
        "examples/zalo-care.yaml",
        "examples/events/zalo-care.jsonl",
        env={"CAREPATH_ENGINE": value},
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("carepath: ") and said in lines[0], lines
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""
