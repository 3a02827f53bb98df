"""Progress of the long commands (issue 17): a bar on a terminal (real subprocesses on a
pseudo-terminal), plain log lines on a pipe (real subprocesses), the numbers and the cadence
(in process, with an injected clock)."""

from __future__ import annotations

import fcntl
import io
import itertools
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carepath.cli import logs
from carepath.cli.progress import (
    INTERVAL_ENV,
    Progress,
    interval_from_env,
    style_for,
)
from carepath.drivers.generate import generate, write_jsonl
from carepath.runtime.clock import ManualClock

ROOT = Path(__file__).resolve().parents[2]
RETAIL = str(ROOT / "examples" / "vn-retail-support.yaml")
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
for _name in ("CAREPATH_DEBUG", INTERVAL_ENV):
    ENV.pop(_name, None)
N_EVENTS = 10_000


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated retail log of :data:`N_EVENTS` lines (in ``at`` order)."""
    path = tmp_path_factory.mktemp("progress") / "retail.jsonl"
    write_jsonl(generate("retail", start=date(2026, 11, 1), max_events=N_EVENTS), str(path))
    assert sum(1 for _ in path.open(encoding="utf-8")) == N_EVENTS
    return path


# -- the numbers, in process ----------------------------------------------------------------------
class Seconds:
    """A monotonic clock in seconds read off a :class:`ManualClock` (time is injected)."""

    def __init__(self) -> None:
        self.manual = ManualClock("2027-03-01T09:00:00+00:00")
        self.t0 = self.manual().timestamp()

    def __call__(self) -> float:
        return self.manual().timestamp() - self.t0

    def advance(self, seconds: float) -> None:
        self.manual.advance(seconds)


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    err = io.StringIO()
    handler = logs.install("warning", "text", stream=err)
    try:
        yield err
    finally:
        logs.uninstall(handler)


def _messages(err: io.StringIO) -> list[str]:
    return [line.split(" carepath.progress: ", 1)[1] for line in err.getvalue().splitlines()]


def test_plain_lines_every_interval_and_a_closing_line(captured: io.StringIO) -> None:
    clock = Seconds()
    p = Progress("report", "lines", total=1_000_000, in_bytes=True, clock=clock, interval=10)
    clock.advance(9)
    p.update(100_000, 9_000)  # not yet 10 s: nothing
    assert _messages(captured) == []
    clock.advance(1)
    p.update(250_000, 20_000)
    clock.advance(5)
    p.update(400_000, 30_000)  # 5 s after the last line: nothing
    clock.advance(5)
    p.update(500_000, 40_000)
    clock.advance(2)
    p.update(1_000_000, 80_000)
    p.close()
    p.close()  # once
    assert _messages(captured) == [
        "report: 20,000 lines, 25 % of 1.0 MB, 2,000 lines/s, 0:00:10 elapsed, about 0:00:30 left",
        "report: 40,000 lines, 50 % of 1.0 MB, 2,000 lines/s, 0:00:20 elapsed, about 0:00:20 left",
        "report: done: 80,000 lines in 0:00:22 (3,636 lines/s)",
    ]


def test_a_short_command_writes_nothing(captured: io.StringIO) -> None:
    clock = Seconds()
    with Progress("run", "events", total=500, clock=clock, interval=10) as p:
        clock.advance(3)
        p.update(500)
    assert captured.getvalue() == ""


def test_without_a_total_no_share_and_no_time_left(captured: io.StringIO) -> None:
    clock = Seconds()
    p = Progress("report", "lines", clock=clock, interval=0)
    clock.advance(4)
    p.update(12_000, 12_000)
    assert _messages(captured) == ["report: 12,000 lines, 3,000 lines/s, 0:00:04 elapsed"]


def test_a_second_pass_measures_its_rate_from_its_start(captured: io.StringIO) -> None:
    clock = Seconds()
    p = Progress("report", "lines", total=1000, in_bytes=True, clock=clock, interval=0)
    clock.advance(10)
    p.update(1000, 100)  # read whole (100 lines in 10 s)...
    clock.advance(2)
    p.update(100, 10)  # ...then replayed, sorted: a new pass
    clock.advance(2)
    p.update(500, 50)
    assert _messages(captured)[1:] == [
        "report: 10 lines, 10 % of 1.0 kB, 0:00:12 elapsed",
        "report: 50 lines, 50 % of 1.0 kB, 20 lines/s, 0:00:14 elapsed, about 0:00:03 left",
    ]


def test_extra_counts_and_a_total_learnt_later(captured: io.StringIO) -> None:
    clock = Seconds()
    p = Progress("cases migrate", "cases", clock=clock, interval=0)
    p.update(0, total=400)
    clock.advance(2)
    p.update(200, extra="3 failed")
    assert _messages(captured)[-1] == (
        "cases migrate: 200 cases, 50 % of 400 cases, 100 cases/s, 0:00:02 elapsed, "
        "about 0:00:02 left, 3 failed"
    )


def test_json_records_carry_the_numbers() -> None:
    err = io.StringIO()
    handler = logs.install("error", "json", stream=err)  # the level does not hide them
    try:
        clock = Seconds()
        p = Progress("report", "lines", total=2000, in_bytes=True, clock=clock, interval=0)
        clock.advance(1)
        p.update(500, 40)
    finally:
        logs.uninstall(handler)
    record = json.loads(err.getvalue())
    assert record["logger"] == "carepath.progress"
    assert record["level"] == "info"
    assert record["msg"].startswith("report: 40 lines, 25 % of 2.0 kB, 40 lines/s")
    assert record["progress"] == {
        "command": "report",
        "unit": "lines",
        "count": 40,
        "rate": 40.0,
        "elapsed_s": 1.0,
        "position": 500,
        "total": 2000,
        "total_unit": "bytes",
        "eta_s": 3.0,
    }


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.tuples(st.floats(0, 30, allow_nan=False), st.integers(0, 5000)), max_size=40),
    interval=st.sampled_from([0.0, 1.0, 10.0]),
)
def test_lines_are_an_interval_apart_and_close_only_after_one(
    steps: list[tuple[float, int]], interval: float
) -> None:
    """Whatever the updates: two lines are never closer than the interval, the count never goes
    back within a pass, the share never passes 100 %, and a closing line follows any line."""
    err = io.StringIO()
    handler = logs.install("info", "json", stream=err)
    try:
        clock = Seconds()
        p = Progress("run", "events", total=50_000, in_bytes=True, clock=clock, interval=interval)
        position = count = 0
        for wait, more in steps:
            clock.advance(wait)
            position, count = position + more, count + more // 10
            p.update(position, count)
        p.close()
    finally:
        logs.uninstall(handler)
    records = [json.loads(line) for line in err.getvalue().splitlines()]
    numbers = [r["progress"] for r in records]
    assert all(r["logger"] == "carepath.progress" for r in records)
    for a, b in itertools.pairwise(numbers[:-1]):  # the closing line may come sooner
        assert b["elapsed_s"] - a["elapsed_s"] >= interval - 1e-6
        assert b["count"] >= a["count"]
    for r in records:
        pct = re.search(r"(\d+) % of", r["msg"])
        assert pct is None or int(pct.group(1)) <= 100
    if records:
        assert records[-1]["msg"].startswith(f"run: done: {count:,} events in ")
        assert len(records) >= 2


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("mode", "tty", "fmt", "level", "bar", "lines", "expected"),
    [
        ("auto", True, "text", None, True, True, "bar"),
        ("auto", False, "text", None, True, True, "lines"),
        ("auto", True, "json", None, True, True, "lines"),  # every line on stderr is JSON
        ("always", False, "text", None, True, True, "bar"),
        ("always", False, "json", None, True, True, "lines"),
        ("never", True, "text", None, True, True, None),
        ("never", False, "text", None, True, True, None),
        ("auto", False, "text", "warning", True, True, None),  # asked for warnings only
        ("auto", False, "text", "info", True, True, "lines"),
        ("auto", True, "text", None, False, True, None),  # simulate's table on the terminal
        ("auto", False, "text", None, False, True, "lines"),
        ("auto", False, "text", None, True, False, None),  # run --follow logs its batches
        ("auto", True, "text", None, True, False, "bar"),
    ],
)
def test_style(
    mode: str, tty: bool, fmt: str, level: str | None, bar: bool, lines: bool, expected: str | None
) -> None:
    stderr = Tty() if tty else io.StringIO()
    got = style_for(mode, stderr=stderr, log_format=fmt, log_level=level, bar=bar, lines=lines)
    assert got == expected


def test_interval_from_the_environment() -> None:
    assert interval_from_env({}) == 10.0
    assert interval_from_env({INTERVAL_ENV: "2.5"}) == 2.5
    assert interval_from_env({INTERVAL_ENV: "0"}) == 0.0
    for bad in ("soon", "-1", "nan", "inf"):
        with pytest.raises(ValueError, match=f"{INTERVAL_ENV}='{bad}': expected seconds"):
            interval_from_env({INTERVAL_ENV: bad})


# -- real subprocesses ----------------------------------------------------------------------------
def _carepath(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "carepath", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**ENV, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def _on_terminal(*args: str, out: Path | None = None) -> tuple[int, str]:
    """Run with standard error (and standard output unless ``out``) on a pseudo-terminal of
    160 columns; the exit code and everything the terminal received."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    stdout: Any = slave if out is None else out.open("wb")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "carepath", *args],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=slave,
            env=ENV,
        )
    finally:
        os.close(slave)
        if out is not None:
            stdout.close()
    chunks = []
    try:
        while True:
            try:
                data = os.read(master, 1 << 16)
            except OSError:  # EIO: every end of the terminal's other side is closed
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout=300)
    finally:
        os.close(master)
    return code, b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_report_draws_a_bar_on_a_terminal(log: Path, tmp_path: Path, workers: str) -> None:
    out = tmp_path / "report.json"
    code, seen = _on_terminal(
        "report", RETAIL, str(log), "--format", "json", "--workers", workers, out=out
    )
    assert code == 0, seen
    size = f"{log.stat().st_size / 1e6:.2f}MB"
    # the last drawing: every byte and every line, by one process or by both workers
    assert re.search(
        rf"\rreport: 100%\|█+\| {re.escape(size)}/{re.escape(size)} \[\d\d:\d\d<00:00, "
        rf"{N_EVENTS:,} lines, [\d,]+ lines/s\]",
        seen,
    ), seen
    assert seen.endswith("\r"), seen  # erased at the end
    assert "carepath.progress" not in seen
    report = json.loads(out.read_text(encoding="utf-8"))  # standard output is the report alone
    assert report["cases"] > 0


def test_the_bar_erases_itself_and_keeps_stdout_clean(log: Path, tmp_path: Path) -> None:
    code, seen = _on_terminal("report", RETAIL, str(log), "--format", "json", "--workers", "1")
    assert code == 0
    text = seen.replace("\r\n", "\n")  # the terminal's own line ends
    bar, report_text = text[: text.rindex("\r") + 1], text[text.rindex("\r") + 1 :]
    assert bar.startswith("\rreport:") and "100%" in bar  # drawn, then erased, before the report
    report = json.loads(report_text)
    assert report["cases"] > 0


def test_simulate_draws_no_bar_over_its_own_table(log: Path, tmp_path: Path) -> None:
    small = tmp_path / "small.jsonl"
    small.write_text("".join(log.open(encoding="utf-8").readlines()[:300]), encoding="utf-8")
    code, seen = _on_terminal("simulate", RETAIL, str(small))  # the table goes to the terminal
    assert code == 0
    assert "%|" not in seen
    out = tmp_path / "steps.jsonl"
    code, seen = _on_terminal("simulate", RETAIL, str(small), "--format", "jsonl", out=out)
    assert code == 0
    assert re.search(r"simulate: 100%\|█+\| 300/300 events \[", seen), seen
    assert len(out.read_text(encoding="utf-8").splitlines()) >= 300


def test_run_shows_what_it_did_on_a_terminal(log: Path, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'cases.db'}"
    code, seen = _on_terminal("run", RETAIL, "--events", str(log), "--store", store)
    assert code == 0, seen
    assert re.search(
        rf"run: 100%\|█+\| .*{N_EVENTS:,} events, [\d,]+ events/s, \d+ cases · \d+ actions · "
        r"\d+ breaches\]",
        seen,
    ), seen


def test_a_warning_comes_above_the_bar_on_a_line_of_its_own(log: Path, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
    events.write_text("".join([*lines[:5000], "{not an event\n", *lines[5000:]]), encoding="utf-8")
    store = f"sqlite:///{tmp_path / 'cases.db'}"
    code, seen = _on_terminal("run", RETAIL, "--events", str(events), "--store", store)
    assert code == 1  # an event was rejected
    warnings = [x for x in seen.split("\n") if "WARNING carepath.runtime" in x]
    assert len(warnings) == 1, seen
    # what the terminal shows of that line: the record alone (the bar was cleared before it)
    shown = warnings[0].rstrip("\r").rsplit("\r", 1)[-1]
    assert re.match(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING carepath.runtime: rejected", shown
    )
    assert "run: 100%|" in seen  # and the bar went on below it


def _progress_lines(stderr: str) -> list[str]:
    return [
        line.split(" carepath.progress: ", 1)[1]
        for line in stderr.splitlines()
        if " carepath.progress: " in line
    ]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_report_writes_plain_lines_on_a_pipe(log: Path, workers: str) -> None:
    done = _carepath(
        "report", RETAIL, str(log), "--format", "json", "--workers", workers,
        env={INTERVAL_ENV: "0"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    json.loads(done.stdout)  # the report alone on standard output
    lines = _progress_lines(done.stderr)
    assert len(lines) == len(done.stderr.splitlines())  # nothing else on standard error
    assert re.fullmatch(
        rf"report: {N_EVENTS:,} lines, 100 % of [\d.]+ MB, [\d,]+ lines/s, \d:\d\d:\d\d elapsed, "
        r"about 0:00:00 left",
        lines[-2],
    ), lines
    assert re.fullmatch(
        rf"report: done: {N_EVENTS:,} lines in \d:\d\d:\d\d \([\d,]+ lines/s\)", lines[-1]
    )
    if workers == "1":  # told every 4,096 lines and at the end
        assert [int(x.split()[1].replace(",", "")) for x in lines[:-1]] == [4096, 8192, N_EVENTS]


def test_a_what_if_of_targets_tells_its_progress_once(log: Path, tmp_path: Path) -> None:
    """The what-if of a change of targets reads the log a second time for the cases the change
    reaches (``carepath.drivers.whatif``): the progress is that of the first reading alone."""
    other = tmp_path / "faster.yaml"
    text = Path(RETAIL).read_text(encoding="utf-8")
    other.write_text(text.replace("within: 10m}", "within: 5m}", 1), encoding="utf-8")
    done = _carepath(
        "report", RETAIL, str(log), "--format", "json", "--workers", "1", "--compare", str(other),
        env={INTERVAL_ENV: "0"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["compare"]["events"] == N_EVENTS
    lines = _progress_lines(done.stderr)
    counts = [int(x.split()[1].replace(",", "")) for x in lines[:-1]]
    assert counts == sorted(set(counts)) and counts[-1] == N_EVENTS  # one reading, never back
    assert re.fullmatch(
        rf"report: done: {N_EVENTS:,} lines in \d:\d\d:\d\d \([\d,]+ lines/s\)", lines[-1]
    )


def test_report_lines_are_json_records_with_log_format_json(log: Path) -> None:
    done = _carepath(
        "report", RETAIL, str(log), "--format", "json", "--workers", "1", "--log-format", "json",
        env={INTERVAL_ENV: "0"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stderr.splitlines()]
    assert {r["logger"] for r in records} == {"carepath.progress"}
    numbers = [r["progress"] for r in records]
    assert [n["count"] for n in numbers] == [4096, 8192, N_EVENTS, N_EVENTS]
    assert numbers[-2]["position"] == numbers[-2]["total"] == log.stat().st_size
    assert numbers[-2]["total_unit"] == "bytes"
    assert records[-1]["msg"].startswith(f"report: done: {N_EVENTS:,} lines in ")


def test_no_lines_when_short_never_or_warnings_only(log: Path) -> None:
    quick = _carepath("report", RETAIL, str(log), "--format", "json", "--workers", "1")
    assert quick.returncode == 0
    assert quick.stderr == ""  # under the 10 s of the first line
    for extra in (["--progress", "never"], ["--log-level", "warning"]):
        done = _carepath(
            "report", RETAIL, str(log), "--format", "json", "--workers", "1", *extra,
            env={INTERVAL_ENV: "0"},
        )  # fmt: skip
        assert done.returncode == 0
        assert done.stderr == "", extra


def test_a_bad_interval_is_one_line(log: Path) -> None:
    done = _carepath("report", RETAIL, str(log), env={INTERVAL_ENV: "often"})
    assert done.returncode == 2
    assert done.stderr == (
        f"carepath: {INTERVAL_ENV}='often': expected seconds, a number 0 or more\n"
    )
    assert done.stdout == ""


def test_run_writes_plain_lines_every_batch_with_interval_zero(log: Path, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'cases.db'}"
    done = _carepath(
        "run", RETAIL, "--events", str(log), "--store", store, "--batch", "2500",
        env={INTERVAL_ENV: "0"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = _progress_lines(done.stderr)
    counts = [int(x.split()[1].replace(",", "")) for x in lines[:-1]]
    assert counts == [2500, 5000, 7500, 10_000]
    assert re.search(r"\d+ cases · \d+ actions · \d+ breaches$", lines[-2])
    assert lines[-1].startswith(f"run: done: {N_EVENTS:,} events in ")
    assert done.stderr.splitlines()[-1].startswith(f"carepath run: {N_EVENTS} events (")


def test_migrate_counts_cases_on_a_pipe(log: Path, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'cases.db'}"
    ran = _carepath("run", RETAIL, "--events", str(log), "--store", store, "-q")
    assert ran.returncode == 0, ran.stderr
    newer = tmp_path / "retail-2.yaml"
    newer.write_text(
        Path(RETAIL)
        .read_text(encoding="utf-8")
        .replace('version: "2027.01"', 'version: "2027.02"'),
        encoding="utf-8",
    )
    done = _carepath(
        "cases", "migrate", "--to", str(newer), "--store", store, "--batch", "50",
        "--format", "json", env={INTERVAL_ENV: "0"},
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    moved = json.loads(done.stdout)
    lines = _progress_lines(done.stderr)
    total = int(re.search(r"of ([\d,]+) cases", lines[0]).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert lines[0].startswith(f"cases migrate: 0 cases, 0 % of {total:,} cases")
    assert lines[-2].startswith(f"cases migrate: {total:,} cases, 100 % of {total:,} cases")
    assert total == moved["moved"] + len(moved["failed"]) > 0


def test_no_bar_library_for_help_or_a_pipe(log: Path) -> None:
    """tqdm is imported only to draw a bar: not by ``--help``, not for plain lines."""
    code = (
        "import sys\n"
        "from carepath.cli.app import main\n"
        "main(sys.argv[1:])\n"
        "print('tqdm' in sys.modules, file=sys.stderr)"
    )
    for args in (["--help"], ["report", RETAIL, str(log), "--workers", "1", "-o", os.devnull]):
        done = subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={**ENV, INTERVAL_ENV: "0"},
        )
        assert done.stderr.splitlines()[-1] == "False", done.stderr


def test_run_quiet_shows_no_progress_unless_asked(log: Path, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'cases.db'}"
    args = ["run", RETAIL, "--events", str(log), "--store", store, "--batch", "2500", "-q"]
    quiet = _carepath(*args, env={INTERVAL_ENV: "0"})
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""  # neither the summary nor the lines
    asked = _carepath(*args, "--progress", "always", env={INTERVAL_ENV: "0"})
    assert asked.returncode == 0, asked.stderr
    assert asked.stderr != ""  # the bar, asked for, even off a terminal
