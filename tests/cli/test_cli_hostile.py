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

ROOT = Path(__file__).resolve().parents[2]
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
    events = _events(
        tmp_path,
        {
            "id": "x9",
            "type": "contact.handled",
            "at": "2027-02-01T14:29:00+07:00",
            "case": "T-1001",
            "data": {"duration": 1e300},
        },
    )
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
        {
            "id": "e1\x1b[2J",
            "type": "case.opened",
            "at": "2027-02-01T09:12:00+07:00",
            "case": ESC_ID,
            "data": {"channel": "email", "customer_name": "x\x1b]0;t\x07", "topic": "delivery"},
        },
        {
            "id": "e2\u202e",
            "type": "agent.replied\x1b[31m",
            "at": "2027-02-01T10:05:00+07:00",
            "case": ESC_ID,
            "data": {"agent": "ag"},
        },
        {
            "id": "e3\x9b",
            "type": "agent.replied",
            "at": "2027-02-01T10:06:00+07:00",
            "case": ESC_ID,
            "data": {"agent": "ag\x1b[8m"},
        },
        {
            "id": "e4\x1b[2J",
            "type": "agent.replied",
            "at": "2027-02-01T08:00:00+07:00",
            "case": ESC_ID,
            "data": {"agent": "ag"},
        },  # out of order: rejected, its id in the message
    ]
    path = tmp_path / "hostile.jsonl"
    path.write_text(
        "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in lines), encoding="utf-8"
    )
    return str(path)


@pytest.mark.parametrize("fmt", ["table", "jsonl"])
def test_simulate_prints_no_terminal_control_from_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    code, out, err = _cli(
        capsys, "simulate", RETAIL, _hostile_events(tmp_path), "--format", fmt, "--color", "never"
    )
    assert code == 1  # the event out of order
    assert _clean(out.replace("\n", " ")) and _clean(err.replace("\n", " "))
    assert "pwned" in out


def test_run_and_cases_print_no_terminal_control_from_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = f"sqlite:///{tmp_path / 'c.db'}"
    code, out, err = _cli(
        capsys,
        "run",
        RETAIL,
        "--events",
        _hostile_events(tmp_path),
        "--store",
        store,
        "--actions",
        "-",
    )
    assert code == 1
    assert _clean(out.replace("\n", " ")) and _clean(err.replace("\n", " "))
    for argv in (
        ["list"],
        ["list", "--format", "json"],
        ["rejected"],
        ["rejected", "--format", "json"],
        ["show", ESC_ID],
        ["show", ESC_ID, "--format", "json"],
    ):
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


# --- #25: one line and a documented exit code, never exit 3 ---------------------------------------


@pytest.mark.parametrize("target", ["folder", "missing/report.txt", "/dev/full"])
def test_report_output_that_cannot_be_written_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str
) -> None:
    (tmp_path / "folder").mkdir()
    out = target if target.startswith("/") else str(tmp_path / target)
    if target == "/dev/full" and not Path(target).exists():
        pytest.skip("no /dev/full here")
    code, _, err = _cli(capsys, "report", RETAIL, str(RETAIL_EVENTS), "-o", out)
    assert code == 2
    assert err.strip().splitlines()[-1].startswith(f"carepath report: cannot write {out}: ")


def _text_file(tmp_path: Path) -> str:
    path = tmp_path / "notadb"
    path.write_text("hello, I am no database\n" * 100, encoding="utf-8")
    return f"sqlite:///{path}"


@pytest.mark.parametrize(
    "argv",
    [
        ["report", RETAIL, "--store", "{url}"],
        ["cases", "--store", "{url}", "list"],
        ["db", "status", "--store", "{url}"],
        ["db", "migrate", "--store", "{url}"],
        ["run", RETAIL, "--events", str(RETAIL_EVENTS), "--store", "{url}"],
    ],
)
def test_a_store_that_is_a_text_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    url = _text_file(tmp_path)
    code, _, err = _cli(capsys, *(a.format(url=url) for a in argv))
    assert code == 2
    assert "file is not a database" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("value", ["1e400", "-1", "nan", "soon"])
def test_a_busy_timeout_that_is_no_wait_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}?busy_timeout={value}"
    code, _, err = _cli(capsys, "run", RETAIL, "--events", str(RETAIL_EVENTS), "--store", url)
    assert code == 2
    assert "busy_timeout=" in err
    assert not (tmp_path / "c.db").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["--start", "9999-12-30"],
        ["--base", "-5"],
        ["--peak", "nan"],
        ["--days", "-1"],
        ["-o", "{tmp}"],
        ["-o", "{tmp}/missing/x.jsonl"],
    ],
)
def test_generate_with_bad_arguments_or_output_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = _cli(
        capsys,
        "generate",
        "--days",
        "1",
        "--base",
        "3",
        "--peak",
        "3",
        *(a.format(tmp=tmp_path) for a in argv),
    )
    assert code == 2
    assert out == ""
    assert err.startswith("carepath generate: ")


def test_schema_check_of_an_endless_file_is_bounded(capsys: pytest.CaptureFixture[str]) -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero here")
    code, _, err = _cli(capsys, "schema", "--check", "/dev/zero")
    assert code == 1
    assert "out of date" in err


def test_schema_check_of_a_file_that_is_not_utf8_differs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "s.json").write_bytes(b"\xff\xfe{}")
    assert _cli(capsys, "schema", "--check", str(tmp_path / "s.json"))[0] == 1
    assert _cli(capsys, "schema", "--check", str(ROOT / "schemas" / "playbook.schema.json"))[0] == 0


def test_run_with_actions_to_a_full_disk_exits_2_and_keeps_them_pending(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    store = f"sqlite:///{tmp_path / 'c.db'}"
    code, _, err = _cli(
        capsys,
        "run",
        RETAIL,
        "--events",
        str(RETAIL_EVENTS),
        "--store",
        store,
        "--actions",
        "/dev/full",
    )
    assert code == 2
    assert (
        err.strip().splitlines()[-1].startswith("carepath run: --actions: cannot write /dev/full: ")
    )
    code, out, _ = _cli(capsys, "cases", "--store", store, "list", "--format", "json")
    assert code == 0 and json.loads(out)


def test_simulate_on_a_calendar_closed_for_a_year_stops_with_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = Path(RETAIL).read_text(encoding="utf-8")
    text = text.replace(
        '      - {from: 2027-02-04, to: 2027-02-11, name: "Tết Đinh Mùi"}',
        '      - {from: 2027-01-01, to: 2028-12-31, name: "closed"}',
    )
    text = text.replace('      2027-01-30: ["08:00-12:00", "13:00-17:30"]\n', "")
    text = text.replace('      2027-02-10: ["09:00-12:00"]\n', "").replace("    overrides:\n", "")
    (tmp_path / "closed.yaml").write_text(text, encoding="utf-8")
    code, _, err = _cli(capsys, "simulate", str(tmp_path / "closed.yaml"), str(RETAIL_EVENTS))
    assert code == 1
    assert "no open time within a year" in err.strip().splitlines()[-1]


# --- #26: a missing playbook, an unreadable folder -------------------------------------------------


def test_report_with_a_missing_playbook_exits_2_without_a_raw_diagnostic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _cli(capsys, "report", str(tmp_path / "nothere.yaml"), str(RETAIL_EVENTS))
    assert code == 2
    assert "Diagnostic(" not in err
    assert err.strip() == f"carepath: {tmp_path / 'nothere.yaml'}: no such file"


def test_validate_of_an_unreadable_folder_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.scandir

    def scandir(path: object = ".") -> object:  # root reads any folder: refuse as chmod 000 would
        if str(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)
    code, _, err = _cli(capsys, "validate", str(locked))
    assert code == 2
    assert f"carepath: {locked}: cannot read the folder: Permission denied" in err


# --- #27: read-only commands write nothing ---------------------------------------------------------


def test_report_on_a_missing_store_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _cli(capsys, "report", RETAIL, "--store", f"sqlite:///{tmp_path / 'new.db'}")
    assert code == 2
    assert "no store at" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv", [["cases", "list"], ["cases", "rejected"], ["db", "status"], ["report", RETAIL]]
)
def test_read_only_commands_leave_an_empty_file_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    head, *rest = argv
    code, _, err = _cli(
        capsys,
        head,
        *([rest[0]] if head == "db" else []),
        "--store",
        f"sqlite:///{empty}",
        *([] if head == "db" else rest),
    )
    assert code in (1, 2), err  # db status: exit 1, the schema is missing
    assert empty.read_bytes() == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]


def test_read_only_commands_read_a_store_without_changing_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "c.db"
    _cli(capsys, "run", RETAIL, "--events", str(RETAIL_EVENTS), "--store", f"sqlite:///{db}")
    before = db.read_bytes()
    for argv in (
        ["cases", "--store", f"sqlite:///{db}", "list"],
        ["report", RETAIL, "--store", f"sqlite:///{db}"],
        ["db", "status", "--store", f"sqlite:///{db}"],
    ):
        code, out, err = _cli(capsys, *argv)
        assert code == 0, (argv, err)
        assert out
    assert db.read_bytes() == before


# --- #28: PostgreSQL schema names ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["abc%0A", "abc%0D%0A", "%0Aabc", "ABC", "a-b", "a%00", "a" * 64, ""]
)
def test_a_postgres_schema_name_with_a_trailing_newline_is_refused(name: str) -> None:
    pytest.importorskip("psycopg")
    from carepath.runtime import StoreError, open_store

    with pytest.raises(StoreError, match="bad schema name"):  # checked before connecting
        open_store(f"postgresql://postgres@127.0.0.1:1/postgres?schema={name}")


def test_a_postgres_schema_name_with_a_newline_exits_2_at_the_command_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("psycopg")
    code, _, err = _cli(
        capsys, "cases", "--store", "postgresql://postgres@127.0.0.1:1/postgres?schema=abc%0A"
    )
    assert code == 2
    assert "bad schema name 'abc\\n'" in err


# --- #29: run --follow logs on one channel in one format; psycopg's noise is quiet ------------------


def test_run_follow_writes_every_stderr_line_in_the_log_format(tmp_path: Path) -> None:
    import re
    import subprocess
    import sys

    events = tmp_path / "e.jsonl"
    events.write_text(
        "".join(RETAIL_EVENTS.read_text(encoding="utf-8").splitlines(keepends=True)[:3])
        + "not json\n",
        encoding="utf-8",
    )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "carepath",
            "run",
            RETAIL,
            "--events",
            str(events),
            "--store",
            f"sqlite:///{tmp_path / 'c.db'}",
            "--follow",
            "--until",
            "2000-01-01",
            "--poll",
            "0.05",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 1, r.stderr  # the line that is not JSON
    lines = r.stderr.strip().splitlines()
    assert any("rejected event" in x for x in lines) and any("batch:" in x for x in lines)
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING|ERROR) carepath[.\w]*: "
    assert all(re.match(stamp, x) for x in lines), lines


def test_logging_quiets_psycopg_below_error_unless_debugging() -> None:
    import logging

    from carepath.cli import logs

    for level in ("info", "debug"):
        handler = logs.install(level, "text")
        try:
            for name in ("psycopg", "psycopg.pool"):
                quiet = logging.getLogger(name).getEffectiveLevel() >= logging.ERROR
                assert quiet == (level != "debug")
        finally:
            logs.uninstall(handler)
