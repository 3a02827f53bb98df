"""`carepath test`: the scenario format, its runner, its failure reports and JUnit output."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from carepath.cli.app import main
from carepath.diagnostics import format_diagnostics
from carepath.loading.loader import check_file
from carepath.testing.scenario import find_scenario_files, run_file

ROOT = Path(__file__).resolve().parents[2]
EX = ROOT / "examples"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["test", *args])
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, text: str, name: str = "support.test.yaml") -> Path:
    (tmp_path / "support.yaml").write_text(
        (EX / "vn-retail-support.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    return f


def test_example_scenarios_pass(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, str(EX), "--color", "never")
    assert code == 0, out + err
    assert "0 failed in 4 file(s)" in out
    assert "FAIL" not in out


def test_a_playbook_path_runs_its_scenario_file() -> None:
    assert find_scenario_files(str(EX / "vn-retail-support.yaml")) == [
        str(EX / "vn-retail-support.test.yaml")
    ]


def test_each_example_scenario_file_has_many_passing_scenarios() -> None:
    for name in ("vn-retail-support.test.yaml", "omnichannel-journey.test.yaml"):
        res = run_file(str(EX / name))
        assert res.passed, [f.render() for r in res.results for f in r.failures]
        assert len(res.results) >= 10


FAILING = """\
playbook: support.yaml
start: 2027-03-01 09:00
case: T-1
scenarios:
  - name: passes
    given:
      - {event: case.opened, data: {channel: email}}
    expect: {stage: new}
  - name: wrong stage and clock
    steps:
      - event: case.opened
        data: {channel: chat}
      - advance: +20m
      - expect:
          stage: open
          clocks:
            first_response: {status: met, due: 2027-03-01 09:30}
          actions: [{send: ack_email}]
      - expect: {stage: new}
"""


def test_failures_show_file_line_and_diff(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    f = write(tmp_path, FAILING)
    code, out, _ = run(capsys, str(f), "--color", "never")
    assert code == 1
    assert "ok   passes" in out and "FAIL wrong stage and clock" in out
    assert f"{f}:15:18: scenario 'wrong stage and clock', step 3" in out  # the `stage:` value
    assert "stage: expected 'open', got 'new'" in out
    assert "clocks.first_response.status: expected 'met', got 'running'" in out
    assert (
        "clocks.first_response.due: expected 2027-03-01T09:30:00+07:00, got 2027-03-01T09:15:00+07:00"
        in out
    )
    assert "actions: expected exactly 1, in order:" in out
    assert "- escalate L1 → L2" in out  # what was emitted, listed under "got"
    assert "1 passed, 1 failed" in out


def test_junit(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    f = write(tmp_path, FAILING)
    code, out, err = run(capsys, str(f), "--format", "junit")
    assert code == 1
    root = ET.fromstring(out)
    assert root.tag == "testsuites" and root.get("failures") == "1"
    cases = root.findall("./testsuite/testcase")
    assert [c.get("name") for c in cases] == ["passes", "wrong stage and clock"]
    fail = cases[1].find("failure")
    assert fail is not None and "stage: expected 'open'" in (fail.text or "")
    assert "1 failed" in err


def test_junit_on_examples_is_clean(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(EX), "-f", "junit")
    assert code == 0
    root = ET.fromstring(out)
    assert root.get("failures") == "0" and len(root.findall("./testsuite")) == 4


def test_name_filter(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    f = write(tmp_path, FAILING)
    code, out, _ = run(capsys, str(f), "-k", "passes")
    assert code == 0 and "1 scenario(s): 1 passed" in out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "scenarios:\n  - name: x\n    steps:\n      - {event: case.opened, dta: {}}\n",
            "unknown key `dta` (did you mean `data`?)",
        ),
        (
            "scenarios:\n  - name: x\n    steps:\n      - {event: case.opened, at: +1h}\n",
            "relative time '+1h' before any instant is known",
        ),
        (
            "start: 2027-03-01 09:00\nscenarios:\n  - name: x\n    steps:\n      - {event: case.opened, data: {channel: email}}\n"
            "      - {expect: {clocks: {first_responce: met}}}\n",
            "no clock 'first_responce'",
        ),
        (
            "start: 2027-03-01 09:00\nscenarios:\n  - name: x\n    steps:\n      - {advance: +1h, expect: {}}\n",
            "exactly one of `event`, `advance`, `expect`",
        ),
    ],
)
def test_invalid_scenarios_are_reported_with_their_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, message: str
) -> None:
    f = write(tmp_path, "playbook: support.yaml\n" + text)
    code, out, _ = run(capsys, str(f))
    assert code == 1
    assert message in out
    assert f"{f}:" in out


def test_rejected_events(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    f = write(
        tmp_path,
        """\
start: 2027-03-01 09:00
scenarios:
  - name: unexpected rejection
    steps:
      - {event: case.opened, data: {channel: fax}}
  - name: expected rejection that is accepted
    steps:
      - {event: case.opened, data: {channel: email}, rejected: true}
""",
    )
    code, out, _ = run(capsys, str(f))
    assert code == 1
    assert "case.opened was rejected" in out and "fax" in out
    assert "case.opened was accepted, but the step expects it rejected" in out


def test_invalid_playbook_shows_validate_diagnostics(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "bad.yaml").write_text(
        "carepath: 1\nid: bad\nversion: '1'\nstagez: {}\n", encoding="utf-8"
    )
    (tmp_path / "bad.test.yaml").write_text(
        "scenarios: []\n", encoding="utf-8"
    )  # playbook: bad.yaml by default
    code, out, _ = run(capsys, str(tmp_path), "--color", "never")
    assert code == 1
    res = check_file(str(tmp_path / "bad.yaml"))
    assert format_diagnostics(res.diagnostics, "text", sources=res.sources).rstrip() in out


def test_missing_paths_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, str(tmp_path / "nope.test.yaml"))
    assert code == 2 and "no such file" in err
    code, _, err = run(capsys, str(tmp_path))  # an empty folder
    assert code == 2 and "no scenario files" in err


def test_missing_playbook_of_a_scenario_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    f = tmp_path / "x.test.yaml"
    f.write_text("playbook: gone.yaml\nscenarios: []\n", encoding="utf-8")
    code, out, _ = run(capsys, str(f))
    assert code == 1 and "playbook gone.yaml not found" in out
