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


# --- #24: terminal escape sequences in ids, types and data -----------------------------------------

ESC_ID = "T-1\x1b]0;pwned\x07\x1b[2J\u202egnp.exe\x9b31m\r\nFAKE"


def test_term_safe_escapes_controls_bidi_and_line_breaks() -> None:
    from carepath._terminal import json_term_safe, term_safe

    safe = term_safe(ESC_ID)
    assert safe == "T-1\\x1b]0;pwned\\x07\\x1b[2J\\u202egnp.exe\\x9b31m\\x0d\\x0aFAKE"
    assert term_safe("Nguyễn Thị Mai 👩‍💻 ≤ 5") == "Nguyễn Thị Mai 👩‍💻 ≤ 5"
    doc = json.dumps({"case": ESC_ID}, ensure_ascii=False, indent=2)
    assert json.loads(json_term_safe(doc)) == {"case": ESC_ID}
    assert _clean(json_term_safe(doc))


def _clean(text: str) -> bool:
    """No terminal control but newlines, no bidi control."""
    import re

    return not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", text)


def _hostile_events(tmp_path: Path) -> str:
    lines = [
        {"id": "e1\x1b[2J", "type": "case.opened", "at": "2027-02-01T09:12:00+07:00", "case": ESC_ID,
         "data": {"channel": "email", "customer_name": "x\x1b]0;t\x07", "topic": "delivery"}},
        {"id": "e2\u202e", "type": "agent.replied\x1b[31m", "at": "2027-02-01T10:05:00+07:00", "case": ESC_ID,
         "data": {"agent": "ag"}},
        {"id": "e3\x9b", "type": "agent.replied", "at": "2027-02-01T10:06:00+07:00", "case": ESC_ID,
         "data": {"agent": "ag\x1b[8m"}},
        {"id": "e4\x1b[2J", "type": "agent.replied", "at": "2027-02-01T08:00:00+07:00", "case": ESC_ID,
         "data": {"agent": "ag"}},  # out of order: rejected, its id in the message
    ]
    path = tmp_path / "hostile.jsonl"
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in lines), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("fmt", ["table", "jsonl"])
def test_simulate_prints_no_terminal_control_from_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    code, out, err = _cli(capsys, "simulate", RETAIL, _hostile_events(tmp_path), "--format", fmt,
                          "--color", "never")
    assert code == 1  # the event out of order
    assert _clean(out.replace("\n", " ")) and _clean(err.replace("\n", " "))
    assert "pwned" in out


def test_run_and_cases_print_no_terminal_control_from_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = f"sqlite:///{tmp_path / 'c.db'}"
    code, out, err = _cli(capsys, "run", RETAIL, "--events", _hostile_events(tmp_path), "--store", store,
                          "--actions", "-")
    assert code == 1
    assert _clean(out.replace("\n", " ")) and _clean(err.replace("\n", " "))
    for argv in (["list"], ["list", "--format", "json"], ["rejected"], ["rejected", "--format", "json"],
                 ["show", ESC_ID], ["show", ESC_ID, "--format", "json"]):
        code, out, err = _cli(capsys, "cases", "--store", store, *argv)
        assert code == 0, (argv, err)
        assert _clean(out.replace("\n", " ")) and _clean(err.replace("\n", " ")), argv
        assert "pwned" in out or "e4\\x1b[2J" in out


def test_text_report_prints_no_terminal_control_from_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for fmt in ("text", "json"):
        _, out, err = _cli(capsys, "report", RETAIL, _hostile_events(tmp_path), "--format", fmt)
        assert _clean(out.replace("\n", " ")) and _clean(err.replace("\n", " "))
