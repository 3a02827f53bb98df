"""``carepath validate`` and the command frame: exit codes and every output format."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from carepath.cli.app import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
INVALID = ROOT / "tests" / "invalid"
GOOD = """carepath: 1
id: good
version: "1"
fields:
  channel: {type: enum, values: [chat], default: chat}
channels:
  chat: {calendar: always}
start: {on: case.opened}
stages:
  new:
    initial: true
    on: {agent.replied: done}
    after: [{in: 7d, to: done}]
  done: {final: true}
"""
WARN = GOOD.replace("after: [{in: 7d, to: done}]", "after: [{in: 7d, do: [{send: hi}]}]")
BAD = GOOD.replace("agent.replied: done", "agent.replied: dnoe")


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, text in (("good", GOOD), ("warn", WARN), ("bad", BAD)):
        p = tmp_path / f"{name}.yaml"
        p.write_text(text)
        out[name] = p
    return out


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_exit_codes(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "validate", str(files["good"]))[0] == 0
    assert run(capsys, "validate", str(files["warn"]))[0] == 0
    assert run(capsys, "validate", "--strict", str(files["warn"]))[0] == 1
    assert run(capsys, "validate", str(files["bad"]))[0] == 1
    assert run(capsys, "validate", str(files["good"]), str(files["bad"]))[0] == 1
    assert run(capsys, "validate", str(files["good"].parent / "nope.yaml"))[0] == 2
    assert run(capsys, "validate", "--format", "xml", str(files["good"]))[0] == 2
    assert run(capsys, "validate")[0] == 2
    assert run(capsys, "frobnicate")[0] == 2
    assert run(capsys, "validate", str(INVALID / "cp103_tag.yaml"))[0] == 1  # unsafe YAML
    assert run(capsys, "validate", str(INVALID / "cp101_syntax.yaml"))[0] == 1  # broken YAML


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_path_that_is_no_file_is_named_as_such(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # SPEC §8: exit 2 for a path that cannot be read; it exists, so "no such file" would mislead
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    code, out, err = run(capsys, "validate", str(fifo))
    assert code == 2 and out == ""
    assert f"carepath: {fifo}: not a regular file or folder" in err
    assert "no such file" not in err


def test_examples_validate(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "validate", str(EXAMPLES))
    assert code == 0, out
    assert re.search(r"[1-9]\d* playbook\(s\) checked: 0 error\(s\)", err)


def test_text_shows_source_line_and_caret(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "validate", "--color", "never", str(files["bad"]))
    assert code == 1
    assert f"{files['bad']}:12:25: error CP301: unknown stage 'dnoe'" in out
    lines = out.splitlines()
    i = next(n for n, line in enumerate(lines) if "CP301" in line)
    assert lines[i + 1].endswith("on: {agent.replied: dnoe}")
    caret = lines[i + 2]
    assert caret.index("^") - caret.index("|") == lines[i + 1].index("dnoe") - lines[i + 1].index(
        "|"
    )
    assert "did you mean 'done'?" in out
    assert "\x1b[" not in out


def test_color_rules(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "\x1b[" in run(capsys, "validate", "--color", "always", str(files["bad"]))[1]
    # auto: captured stdout is not a terminal
    assert "\x1b[" not in run(capsys, "validate", str(files["bad"]))[1]
    from carepath.cli.validate import use_color

    class Tty:
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert use_color("auto", Tty())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_color("auto", Tty())


def test_json_is_one_document(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "validate", "--format", "json", str(files["bad"]), str(files["warn"])
    )
    assert code == 1
    doc = json.loads(out)
    assert {d["code"] for d in doc} == {"CP301", "CP602"}
    for d in doc:
        assert set(d) >= {"severity", "code", "message", "file", "line", "col", "path"}
    code, out, _ = run(capsys, "validate", "--format", "json", str(files["good"]))
    assert code == 0 and json.loads(out) == []


def test_sarif(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "validate", "--format", "sarif", str(files["bad"]))
    doc = json.loads(out)
    assert doc["version"] == "2.1.0"
    res = doc["runs"][0]["results"]
    assert res[0]["ruleId"] == "CP301"
    assert res[0]["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 12,
        "startColumn": 25,
    }


def test_junit(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "validate", "--format", "junit", str(files["bad"]), str(files["good"]))
    root = ET.fromstring(out)
    cases = root.findall(".//testcase")
    assert len(cases) == 2
    failed = [c for c in cases if c.find("failure") is not None]
    assert len(failed) == 1 and failed[0].get("name") == str(files["bad"])


def test_github(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "validate", "--format", "github", str(files["bad"]), str(files["warn"]))
    lines = out.strip().splitlines()
    assert len(lines) == 2
    pat = re.compile(r"^::(error|warning) file=[^,]+,line=\d+,col=\d+,title=CP\d{3}::.+$")
    assert all(pat.match(line) for line in lines), lines
    assert any(line.startswith("::warning") and "title=CP602" in line for line in lines)


def test_folder_mode_skips_scenarios_and_non_playbooks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "good.yml").write_text(GOOD)
    (tmp_path / "support.test.yaml").write_text(BAD)
    (tmp_path / "ci.yaml").write_text("jobs: {build: {steps: []}}\n")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "bad.yaml").write_text(BAD)
    code, _, err = run(capsys, "validate", str(tmp_path))
    assert code == 0
    assert "1 playbook(s) checked" in err
    # named directly, a non-playbook YAML file is validated (and fails)
    assert run(capsys, "validate", str(tmp_path / "ci.yaml"))[0] == 1


def test_internal_error_is_one_line(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import carepath.loading.loader

    def boom(*a: object, **k: object) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(carepath.loading.loader, "check_file", boom)
    monkeypatch.delenv("CAREPATH_DEBUG", raising=False)
    code, _, err = run(capsys, "validate", str(files["good"]))
    assert code == 3
    assert "internal error: RuntimeError: kaboom" in err
    assert "Traceback" not in err


def test_hostile_inputs_never_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hostile = [
        b"\xff\xfe\x00garbage",
        b"",
        b"[" * 100000,
        b"a: &a [*a]\n",
        b"carepath: 1\n" + b"x" * 2_000_000,
        b"carepath: 1\nid: t\nversion: 1\nstart: {on: x}\nstages: {s: {initial: true, on: {x: {when: '((((((((((((((((((((((((((((((((((((((((((((((((((((1'}}}}\n",
    ]
    for i, data in enumerate(hostile):
        p = tmp_path / f"h{i}.yaml"
        p.write_bytes(data)
        code, out, err = run(capsys, "validate", str(p))
        assert code == 1, (data[:40], out, err)
        assert "Traceback" not in out + err


def test_help_does_not_import_pydantic() -> None:
    code = (
        "import sys, carepath.cli.app\n"
        "try:\n    carepath.cli.app.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('pydantic' in sys.modules, 'yaml' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "False False"


def test_python_dash_m(files: dict[str, Path]) -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    p = subprocess.run(
        [sys.executable, "-m", "carepath", "validate", str(files["bad"])],
        capture_output=True,
        text=True,
        env=env,
    )
    assert p.returncode == 1 and "CP301" in p.stdout


def test_thousand_line_playbook_validates(tmp_path: Path) -> None:
    # how long it takes is bench/'s business (bench_validate.py), never a timed assertion here
    p = tmp_path / "big.yaml"
    p.write_text(big_playbook(1000))
    assert len(p.read_text().splitlines()) >= 1000
    r = subprocess.run(
        [sys.executable, "-m", "carepath", "validate", str(p)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stdout + r.stderr


def big_playbook(min_lines: int) -> str:
    """A realistic playbook of at least ``min_lines`` lines: calendars, segments, clocks, a chain of
    stages with handlers, timers and actions, and goals."""
    head = (
        GOOD.split("stages:")[0]
        .replace("id: good", "id: big")
        .replace(
            "channels:\n  chat: {calendar: always}",
            'calendars:\n  office:\n    hours:\n      mon-fri: ["08:00-12:00", "13:00-17:30"]\n'
            '      sat: ["08:00-12:00"]\n    holidays:\n      - 2026-04-30\n'
            "      - {from: 2026-02-14, to: 2026-02-22, name: Tet}\n"
            "channels:\n  chat: {calendar: office}",
        )
    )
    head = head.replace(
        "fields:\n",
        "fields:\n  priority: {type: enum, values: [low, normal, high, urgent], default: normal}\n",
    )
    head += (
        "tiers:\n  L1: {title: Agent}\n  L2: {title: Senior}\n  L3: {title: Supervisor}\n"
        'segments:\n  urgent: priority == "urgent"\n  rest: true\n'
    )
    lines = [head.rstrip("\n"), "stages:"]
    n = 0
    while True:
        nxt = f"s{n + 1}"
        lines += [
            f"  s{n}:",
            f"    title: Step {n}",
            *(["    initial: true"] if n == 0 else []),
            "    enter:",
            "      - {assign: L1}",
            f"      - {{send: step_{n}, in: 1h}}",
            "    on:",
            f"      agent.replied: {nxt}",
            "      customer.replied:",
            f'        - {{to: {nxt}, when: priority == "urgent", do: [{{notify: L2}}]}}',
            "        - {do: [{set: {priority: high}}]}",
            "    after:",
            "      - {in: 2h, calendar: office, do: [{notify: L2}]}",
            f"      - {{in: 3d, to: {nxt}}}",
        ]
        n += 1
        if len(lines) + 60 >= min_lines:
            break
    lines += [f"  s{n}: {{final: true}}", "on:", f"  case.cancelled: s{n}", "slas:"]
    lines += [
        "  first_response:",
        "    start: {on: case.opened}",
        "    stop: {on: agent.replied}",
        "    targets:",
        '      - {when: priority == "urgent", within: 30m}',
        "      - {within: 2h}",
        "    thresholds:",
        "      - {at: 75%, do: [{notify: L2}]}",
        "      - {at: 100%, do: [{escalate: next}]}",
        "      - {at: +1h, do: [{notify: L3}]}",
        "  resolution:",
        "    start: {on: case.opened}",
        f"    stop: {{enter: s{n}}}",
        '    targets: [{when: priority == "urgent", within: 8h}, {within: 3bd}]',
        "goals:",
        '  - {id: csat, metric: csat, target: ">= 90%", baseline: 85%, window: rolling 30d}',
        '  - {id: frt, metric: first_response_time, stat: p90, target: "<= 2h", window: rolling 30d}',
        '  - {id: fcr, metric: fcr, target: ">= 80%", window: {from: 2027-01-01, to: 2027-06-30}}',
    ]
    while len(lines) < min_lines:
        lines.append("# padding")
    return "\n".join(lines) + "\n"
