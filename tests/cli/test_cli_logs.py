"""``--log-level`` and ``--log-format`` on every command (SPEC §9), in real subprocesses."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from carepath.cli.app import build_parser

ROOT = Path(__file__).resolve().parents[2]
RETAIL = str(ROOT / "examples" / "vn-retail-support.yaml")
RETAIL_EVENTS = ROOT / "examples" / "events" / "vn-retail-support.jsonl"
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
ENV.pop("CAREPATH_DEBUG", None)


def _carepath(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "carepath", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=ENV,
        input=stdin,
    )


def _records(stderr: str) -> list[dict[str, Any]]:
    """Every line of ``stderr`` as a JSON record (fails on a line that is not one)."""
    out = []
    for line in stderr.splitlines():
        record = json.loads(line)
        assert {"ts", "level", "logger", "msg"} <= set(record), line
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["ts"])
        assert record["level"] in ("debug", "info", "warning", "error")
        assert record["logger"].startswith("carepath")
        out.append(record)
    return out


def _events(tmp_path: Path, *extra: str) -> Path:
    path = tmp_path / "e.jsonl"
    head = RETAIL_EVENTS.read_text(encoding="utf-8").splitlines(keepends=True)[:5]
    path.write_text("".join(head) + "".join(x + "\n" for x in extra), encoding="utf-8")
    return path


def test_every_command_and_subcommand_takes_the_options() -> None:
    parser = build_parser()
    commands = {
        name: p
        for a in parser._actions
        if hasattr(a, "choices") and isinstance(a.choices, dict)
        for name, p in a.choices.items()
    }
    assert {"run", "cases", "validate", "simulate"} <= set(commands)
    for name, p in commands.items():
        opts = {o for a in p._actions for o in a.option_strings}
        assert {"--log-level", "--log-format"} <= opts, name


def test_run_json_logs_every_rejected_event_with_its_reason(tmp_path: Path) -> None:
    events = _events(
        tmp_path,
        "not json",
        '{"id": "x1", "type": "agent.replied", "at": "2027-03-01T09:00:00+07:00", "case": "NOPE"}',
    )
    store = f"sqlite:///{tmp_path / 'c.db'}"
    r = _carepath("run", RETAIL, "--store", store, "--events", str(events), "--log-format", "json")
    assert r.returncode == 1
    records = _records(r.stderr)
    rejected = [x for x in records if x["msg"].startswith("rejected event")]
    assert [(x["level"], x["logger"]) for x in rejected] == [("warning", "carepath.runtime")] * 2
    assert "invalid" in rejected[0]["msg"] and "line 6" in rejected[0]["msg"]
    assert rejected[1]["event_id"] == "x1" and rejected[1]["case"] == "NOPE"
    assert "unknown_case" in rejected[1]["msg"] and rejected[1]["playbook"] == "vn-retail-support"
    summary = records[-1]
    assert summary["level"] == "info" and "7 events" in summary["msg"], records


def test_log_level_filters_and_takes_any_case(tmp_path: Path) -> None:
    events = _events(tmp_path, "not json")
    store = f"sqlite:///{tmp_path / 'c.db'}"
    r = _carepath("run", RETAIL, "--store", store, "--events", str(events), "--log-level", "ERROR")
    assert r.returncode == 1 and "rejected event" not in r.stderr
    # the level given before the command holds too; text lines keep one format
    r = _carepath(
        "--log-level", "Warning", "run", RETAIL, "--store", store, "--events", str(events)
    )
    assert r.returncode == 1
    warn = [x for x in r.stderr.splitlines() if "rejected event" in x]
    assert len(warn) == 1
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING carepath.runtime: ", warn[0])


def test_bad_log_options_are_usage_errors() -> None:
    r = _carepath("validate", RETAIL, "--log-level", "loud")
    assert r.returncode == 2
    assert "--log-level 'loud': expected one of debug, info, warning, error" in r.stderr
    r = _carepath("validate", RETAIL, "--log-format", "xml")
    assert r.returncode == 2 and "--log-format 'xml'" in r.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "/no/such/playbook.yaml"],
        ["validate", RETAIL, "--strict"],
        ["cases", "--store", "sqlite:///{tmp}/c.db", "show", "NOPE"],
        ["run", RETAIL, "--events", "/no/such/file.jsonl"],
        ["run", "--no-such-option"],
        ["simulate", RETAIL, str(RETAIL_EVENTS), "--until", "not a time"],
    ],
)
def test_json_format_makes_every_stderr_line_json(args: list[str], tmp_path: Path) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    r = _carepath(*args, "--log-format", "json")
    records = _records(r.stderr)
    assert records, r.stderr
    if r.returncode != 0:
        assert any(x["level"] == "error" for x in records), records


def test_json_format_before_the_command_and_on_cases(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'c.db'}"
    r = _carepath("--log-format=json", "cases", "--store", store, "show", "NOPE")
    assert r.returncode == 2
    [record] = _records(r.stderr)
    assert record["level"] == "error" and "no store at" in record["msg"]


def test_failed_deliveries_are_logged_with_their_reason(tmp_path: Path) -> None:
    events = _events(tmp_path)
    store = f"sqlite:///{tmp_path / 'c.db'}"
    r = _carepath(
        "run",
        RETAIL,
        "--store",
        store,
        "--events",
        str(events),
        "--actions",
        "/dev/full",
        "--log-format",
        "json",
        "--log-level",
        "debug",
    )
    assert r.returncode == 2
    records = _records(r.stderr)
    failed = [x for x in records if x["logger"] == "carepath.runtime.delivery"]
    warnings = [x for x in failed if x["level"] == "warning"]
    assert warnings and all("No space left on device" in x["msg"] for x in warnings)
    assert all({"playbook", "case", "action_id"} <= set(x) for x in warnings)
    tracebacks = [x for x in failed if x["level"] == "debug"]
    assert tracebacks and "Traceback" in tracebacks[0]["exc"]


def test_json_levels_of_plain_lines() -> None:
    r = _carepath("validate", RETAIL, "--log-format", "json")
    assert r.returncode == 0
    [summary] = _records(r.stderr)
    assert summary["level"] == "info" and "1 playbook(s) checked" in summary["msg"]
    r = _carepath("run", "--no-such-option", "--log-format", "json")
    assert r.returncode == 2
    records = _records(r.stderr)
    assert records[-1]["level"] == "error" and "carepath run: error: " in records[-1]["msg"]
    assert {x["level"] for x in records[:-1]} == {"info"}  # the usage lines
