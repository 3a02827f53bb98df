"""Hostile and unusual input at the command line and in reports (issue 15, #22–#29): bad input
gives one clear line on standard error and a documented exit code (SPEC §8) — never exit 3 (an
internal error), a traceback or a write where only a read was asked. Each test is named after
what it protects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from carepath.cli.app import EXIT_INTERNAL, main
from carepath.report.text import fmt_duration
from carepath.staffing import MAX_AGENTS, agents_needed

ROOT = Path(__file__).resolve().parent.parent
RETAIL = str(ROOT / "examples" / "vn-retail-support.yaml")
RETAIL_EVENTS = ROOT / "examples" / "events" / "vn-retail-support.jsonl"


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code != EXIT_INTERNAL, err
    assert "Traceback" not in err
    return code, out, err


def _events(tmp_path: Path, *extra: dict[str, object]) -> str:
    first = RETAIL_EVENTS.read_text(encoding="utf-8").splitlines()[0]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([first, *(json.dumps(e) for e in extra)]) + "\n", encoding="utf-8")
    return str(path)


# --- #22: a huge handling time ------------------------------------------------------------------


def test_staffing_refuses_traffic_beyond_max_agents_at_once() -> None:
    with pytest.raises(ValueError, match="more than"):
        agents_needed(1, 3600.0, 1e300, 20.0, 0.8)
    with pytest.raises(ValueError, match="more than"):
        agents_needed(1, 3600.0, 3600.0 * MAX_AGENTS, 20.0, 0.8)


def test_huge_durations_print_bounded() -> None:
    assert fmt_duration(1e300) == "1.16e+295d"
    assert fmt_duration(float("inf")) == "∞"
    assert fmt_duration(-1e300) == "-1.16e+295d"
    assert fmt_duration(3725) == "1h 02m"


@pytest.mark.parametrize("fmt", ["text", "json", "html"])
def test_report_with_a_1e300_handling_time_has_no_staffing_and_no_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    events = _events(tmp_path, {"id": "x9", "type": "contact.handled", "at": "2027-02-01T14:29:00+07:00",
                                "case": "T-1001", "data": {"duration": 1e300}})
    code, out, _ = _cli(capsys, "report", RETAIL, events, "--format", fmt)
    assert code in (0, 1)
    if fmt == "json":
        assert all(row["agents"] is None for row in json.loads(out)["staffing"])
