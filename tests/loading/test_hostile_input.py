"""Hostile and unusual playbook input (issue 15, #9–#14 and #30): each gets a clear, located error
and a documented exit code — never exit 3, a traceback, a hang or unbounded memory.

The "linear, not quadratic" tests use no clock: they feed inputs large enough that the old
quadratic code would take minutes (or hours), and assert the answer. A regression shows up as a
suite that does not finish, not as a flaky timing.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import carepath
from carepath.cli.app import main
from carepath.diagnostics import Diagnostic, format_diagnostics
from carepath.durations import DurationError, parse_duration
from carepath.loading import check, check_file
from carepath.loading.files import FileProblem, read_bounded, read_head
from carepath.loading.yaml import Limits, YamlError, load_yaml
from carepath.metrics.targets import TargetError, parse_target
from carepath.testing.scenario import run_file

BASE = """carepath: 1
id: t
version: "1"
start: {on: case.opened}
stages:
  new: {initial: true, on: {x: done}, after: [{in: 1h, to: done}]}
  done: {final: true}
"""


def errors(text: str, **kw: Any) -> list[Diagnostic]:
    return [d for d in check(text, **kw).diagnostics if d.severity == "error"]


def finishes(fn: Callable[[], Any], seconds: float = 60) -> Any:
    """Run ``fn`` in a daemon thread; fail (instead of hanging the suite) when it does not return."""
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # handed back to the test
            out["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"{fn} did not return within {seconds} s (blocked?)"
    if "error" in out:
        raise out["error"]
    return out["value"]


# -- #9 alias amplification ----------------------------------------------------------------------
def test_alias_amplification_is_bounded_by_the_text_it_repeats() -> None:
    big = "x" * 900_000
    aliases = "".join(f"  t{i}: {{text: *a}}\n" for i in range(1000))
    text = BASE + f'title: &a "{big}"\ntemplates:\n{aliases}'
    (d,) = errors(text)
    assert d.code == "CP105"
    assert "characters" in d.message and "*a" in d.message
    assert (d.line, d.col) == (11, 14)  # the second alias, which crosses the bound: a located error


def test_alias_text_is_counted_through_nested_anchors() -> None:
    # each level doubles the text, few nodes: the node count alone would let it through
    levels = ['a0: &a0 "' + "y" * 2000 + '"']
    levels += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}]" for i in range(1, 12)]
    with pytest.raises(YamlError) as exc:
        load_yaml("\n".join(levels) + "\n")
    assert [p.code for p in exc.value.problems] == ["CP105"]


def test_ordinary_aliases_still_load() -> None:
    text = BASE + "calendars:\n  a: {hours: &h {mon-fri: ['08:00-17:00']}}\n  b: {hours: *h}\n"
    assert check(text).ok


# -- #10 quadratic regular expressions -----------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "1" * 60_000 + "x",  # the reported case: quadratic in the old finditer
        "1" * 1_000_000 + "h",
        "1h" * 500_000,
        "P" + "1" * 1_000_000,
        "PT" + "1" * 500_000 + "S",
        " " * 1_000_000,
    ],
)
def test_duration_parser_is_linear_on_hostile_text(text: str) -> None:
    with pytest.raises(DurationError) as exc:
        parse_duration(text)
    assert len(str(exc.value)) < 200  # the message quotes a clip, not the input


def test_duration_scanner_still_reads_every_short_form() -> None:
    assert parse_duration("1h30m").seconds == 5400
    assert parse_duration("2bd").business_days == 2
    assert parse_duration("2w").days == 14
    assert parse_duration(" 45s ").seconds == 45
    for bad in ("1h1h", "1x", "h", "1", "1bd2h", "01234567890123456789h", "١h"):
        with pytest.raises(DurationError):
            parse_duration(bad)


def test_long_duration_in_a_playbook_is_a_located_error() -> None:
    text = BASE.replace("{in: 1h, to: done}", "{in: " + "1" * 60_000 + "x, to: done}")
    (d,) = errors(text)
    assert (d.code, d.line, d.path) == ("CP204", 6, "stages.new.after[0].in")
    assert "60,001 characters" in d.message


@pytest.mark.parametrize(
    "raw",
    [
        ">=" + " " * 1_000_000 + "x",
        " " * 1_000_000,
        ">= " + "9" * 1_000_000 + "%",
        "<" + "\t " * 500_000,
    ],
)
def test_goal_target_pattern_is_linear(raw: str) -> None:
    with pytest.raises(TargetError) as exc:
        parse_target(raw, "share")
    assert len(str(exc.value)) < 200


def test_goal_target_reads_what_it_read_before() -> None:
    t = parse_target("  <=   " + " " * 100_000 + "2h  ", "time")
    assert (t.op, t.value) == ("<=", 7200.0)
    assert parse_target(">= 90%", "share").value == 0.9
    assert parse_target(">40", "nps").op == ">"
    with pytest.raises(TargetError):
        parse_target(">=", "share")
    with pytest.raises(TargetError):
        parse_target("90%", "share")


# -- #11 text diagnostics ------------------------------------------------------------------------
class _CountingText(str):
    splits = 0

    def splitlines(self, keepends: bool = False) -> list[str]:
        type(self).splits += 1
        return super().splitlines(keepends)


def test_text_diagnostics_split_each_source_once() -> None:
    src = _CountingText("".join(f"k{i}: 1\n" for i in range(48_000)))
    diags = [
        Diagnostic("error", "CP201", f"unknown key 'k{i}'", "p.yaml", i + 1, 1)
        for i in range(48_000)
    ]
    out = format_diagnostics(diags, "text", sources={"p.yaml": src})
    assert _CountingText.splits == 1
    assert "48000 | k47999: 1" in out and out.endswith("48000 | k47999: 1\n      | ^\n")


def test_validate_prints_48k_unknown_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "keys.yaml"
    p.write_text(BASE + "".join(f"k{i}: 1\n" for i in range(48_000)))
    assert main(["validate", str(p)]) == 1
    out = capsys.readouterr().out
    assert out.count("CP201") == 48_000


# -- #12 loader crashes --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "verb", ["send", "notify", "survey", "assign", "escalate", "set", "task", "emit"]
)
def test_action_verb_without_a_value_is_a_located_error(verb: str) -> None:
    text = BASE.replace("new: {initial: true,", f"new: {{initial: true, enter: [{{{verb}: }}],")
    (d,) = errors(text)
    assert (d.code, d.line, d.path) == ("CP203", 6, f"stages.new.enter[0].{verb}")
    assert f"`{verb}` needs a value" in d.message


@pytest.mark.parametrize(
    "literal", ["1" * 4301, "-" + "9" * 5000, "0x" + "f" * 4000, "0o" + "7" * 5000]
)
def test_integer_literal_over_the_int_string_limit_is_a_located_error(literal: str) -> None:
    (d,) = errors(BASE + f"title: {literal}\n")
    assert (d.code, d.line, d.col) == ("CP101", 8, 8)
    assert "4,300 digits" in d.message
    (d,) = errors(BASE + f"segments: {{{literal}: true}}\n")  # as a key: longer than any key
    assert (d.code, d.line, d.col) == ("CP101", 8, 12)


def test_integer_key_over_the_int_string_limit_is_a_located_error() -> None:
    with pytest.raises(YamlError) as exc:
        load_yaml("{" + "1" * 4301 + ": x}\n", Limits(max_key_chars=10_000))
    (p,) = exc.value.problems
    assert (p.code, p.line, p.col) == ("CP101", 1, 2) and "4,300 digits" in p.message


def test_integer_literal_at_the_limit_still_loads() -> None:
    value, _ = load_yaml("n: " + "9" * 4300 + "\nh: 0x" + "f" * 3000 + "\n")
    assert value["n"] == int("9" * 4300)
    str(value["h"])  # printable: every int the loader returns can be shown in a message


def test_validate_of_a_huge_integer_exits_1_not_3(tmp_path: Path) -> None:
    p = tmp_path / "big.yaml"
    p.write_text(BASE.replace('version: "1"', "version: " + "1" * 5000))
    assert main(["validate", "-q", str(p)]) == 1


# -- #13 includes and file reading ---------------------------------------------------------------
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")


@needs_fifo
def test_include_of_a_fifo_is_an_error_not_a_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "shared.yaml")
    main_file = tmp_path / "main.yaml"
    main_file.write_text(BASE + "include: shared.yaml\n")
    res = finishes(lambda: check_file(main_file))
    (d,) = [d for d in res.diagnostics if d.severity == "error"]
    assert (d.code, d.line, d.path) == ("CP107", 8, "include")
    assert "not a regular file" in d.message


@needs_fifo
def test_folder_holding_a_fifo_named_yaml_is_an_error_not_a_hang(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "good.yaml").write_text(BASE)
    os.mkfifo(tmp_path / "x.yaml")
    assert finishes(lambda: main(["validate", "-q", str(tmp_path)])) == 2
    assert (
        "x.yaml:1:1: error CP100: cannot read file: not a regular file" in capsys.readouterr().out
    )
    with pytest.raises(FileProblem):
        finishes(lambda: read_head(tmp_path / "x.yaml", 10))


def test_sizes_are_checked_before_reading(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as fh:  # sparse: 3 GB on paper, nothing on disk; reading it would be 3 GB
        fh.truncate(3 * 10**9)
    res = check_file(huge)
    assert [(d.code, d.message) for d in res.diagnostics] == [
        ("CP104", "file is 3,000,000,000 bytes; the limit is 1,048,576")
    ]
    (tmp_path / "main.yaml").write_text(BASE + "include: huge.yaml\n")
    (d,) = check_file(tmp_path / "main.yaml").diagnostics
    assert (d.code, d.line, d.path) == ("CP104", 8, "include")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_reading_is_bounded_even_when_the_size_is_not_known() -> None:
    # /proc files report size 0: only the bounded read stops them
    with pytest.raises(FileProblem) as exc:
        read_bounded("/proc/self/status", 16)
    assert exc.value.code == "CP104"
    assert len(read_head("/proc/self/status", 16)) == 16


def test_nul_in_an_include_path_is_a_located_error(tmp_path: Path) -> None:
    text = BASE + 'include: ["ok.yaml", "a\\0b.yaml"]\n'
    (tmp_path / "ok.yaml").write_text("tiers: {L1: {}}\n")
    (d,) = errors(text, base_dir=tmp_path)
    assert (d.code, d.line, d.col, d.path) == ("CP107", 8, 22, "include[1]")
    assert "NUL" in d.message


def test_include_of_a_folder_or_symlink_loop_is_a_located_error(tmp_path: Path) -> None:
    (tmp_path / "dir.yaml").mkdir()
    (tmp_path / "loop.yaml").symlink_to(tmp_path / "loop.yaml")
    found = errors(BASE + "include: [dir.yaml, loop.yaml]\n", base_dir=tmp_path)
    assert [(d.code, d.path) for d in found] == [("CP107", "include[0]"), ("CP107", "include[1]")]


# -- #14 strict booleans -------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["yes", "on", "y", "1", "0", '"true"', "'false'", "Yes", "off"])
@pytest.mark.parametrize(
    ("where", "template"),
    [
        ("stages.done.final", "  done: {{final: {v}}}\n"),
        ("stages.done.initial", "  done: {{final: true, initial: {v}}}\n"),
        (
            "slas.s.repeat",
            "  done: {{final: true}}\nslas:\n  s: {{start: {{on: x}}, targets: [{{within: 1h}}], repeat: {v}}}\n",
        ),
        ("channels.c.automated", "  done: {{final: true}}\nchannels:\n  c: {{automated: {v}}}\n"),
        ("stages.new.enter[0].keep", None),
    ],
)
def test_only_true_and_false_are_booleans(value: str, where: str, template: str | None) -> None:
    if template is None:
        text = BASE.replace(
            "new: {initial: true,",
            f"new: {{initial: true, enter: [{{send: hi, in: 1h, keep: {value}}}],",
        )
    else:
        text = BASE.replace("  done: {final: true}\n", template.format(v=value))
    found = [d for d in errors(text) if d.path == where]
    assert found, errors(text)
    d = found[0]
    assert d.code == "CP203" and "expected true or false" in d.message
    assert d.hint and "only true and false" in d.hint


@pytest.mark.parametrize(
    ("where", "line"), [("when: 1", "stages.new.on.x.when"), ("when: 0.5", "stages.new.on.x.when")]
)
def test_a_number_is_not_a_condition(where: str, line: str) -> None:
    text = BASE.replace("on: {x: done}", f"on: {{x: {{to: done, {where}}}}}")
    (d,) = errors(text)
    assert (d.code, d.path) == ("CP203", line)
    assert "true or false" in d.message


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("carepath: 1", "carepath: true", "carepath"),
        ('version: "1"', "version: true", "version"),
    ],
)
def test_true_is_not_one(old: str, new: str, path: str) -> None:
    assert any(d.path == path for d in errors(BASE.replace(old, new)))


def test_numbers_are_not_booleans_or_strings() -> None:
    text = BASE + "staffing: {target: true, shrinkage: '0.1'}\n"
    assert sorted(d.path for d in errors(text)) == ["staffing.shrinkage", "staffing.target"]


# -- #30 carepath test: "did you mean" for a mistyped step key ----------------------------------
def test_scenario_step_with_a_mistyped_key_says_did_you_mean(tmp_path: Path) -> None:
    (tmp_path / "pb.yaml").write_text(BASE)
    (tmp_path / "pb.test.yaml").write_text(
        "scenarios:\n  - name: one\n    start: 2026-01-05T09:00:00+00:00\n    steps:\n"
        "      - evnt: case.opened\n        case: C1\n      - expect: {stage: new}\n"
    )
    res = run_file(str(tmp_path / "pb.test.yaml"))
    (f,) = res.results[0].failures
    assert (f.line, f.col) == (5, 9)
    assert "unknown key `evnt` (did you mean `event`?)" in f.message


@needs_fifo
def test_scenario_file_that_is_a_fifo_is_an_error_not_a_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "x.test.yaml")
    res = finishes(lambda: run_file(str(tmp_path / "x.test.yaml")))
    assert res.error is not None and "not a regular file" in res.error.message


def test_no_limit_leaks_into_python_int_conversion() -> None:
    # the loader's bound holds even when this process lowered Python's own limit
    if not hasattr(sys, "set_int_max_str_digits"):
        pytest.skip("Python without an int-string limit")
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(640)
    try:
        with pytest.raises(YamlError) as exc:
            load_yaml("n: " + "1" * 1000 + "\n", Limits())
        assert exc.value.problems[0].code == "CP101"
    finally:
        sys.set_int_max_str_digits(old)


# -- found by tests/test_fuzz.py ------------------------------------------------------------------
def test_lone_surrogate_in_loads_text_is_a_located_error() -> None:
    # libyaml raised UnicodeEncodeError (exit 3 through any host that passed such a str)
    (d,) = errors(BASE + "title: a\ud800b\n")
    assert (d.code, d.line, d.col) == ("CP101", 8, 9)
    assert "U+D800" in d.message


def test_duration_field_of_an_event_is_read_in_linear_time() -> None:
    # the reported case: a long digit run in a duration-typed event field (31 s for one event)
    from datetime import UTC, datetime

    from carepath.runtime import Runtime
    from carepath.runtime.clock import ManualClock
    from carepath.runtime.sqlite import SQLiteStore

    pb = carepath.loads(BASE + "events:\n  case.opened: {wait: {type: duration, default: 1h}}\n")
    t0 = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
    store = SQLiteStore(":memory:")
    try:
        rt = Runtime([pb], store, clock=ManualClock(t0))
        event = {"id": "e1", "type": "case.opened", "at": t0.isoformat(), "case": "C1"}
        res = rt.submit({**event, "data": {"wait": "1" * 200_000 + "x"}})
        assert (res.status, res.reason) == ("rejected", "invalid")
        assert rt.submit({**event, "id": "e2", "data": {"wait": "2h"}}).status == "applied"
    finally:
        store.close()


def test_scenario_skip_is_a_boolean(tmp_path: Path) -> None:
    (tmp_path / "pb.yaml").write_text(BASE)
    (tmp_path / "pb.test.yaml").write_text(
        "scenarios:\n  - name: one\n    skip: yes\n    steps: []\n"
        "  - name: two\n    skip: true\n    steps: []\n"
    )
    one, two = run_file(str(tmp_path / "pb.test.yaml")).results
    assert "`skip` is true or false, got 'yes'" in one.failures[0].message
    assert (one.failures[0].line, one.failures[0].col) == (3, 11)
    assert two.skipped and two.passed


def test_text_diagnostics_on_one_long_line_print_in_linear_space() -> None:
    # 40,000 unknown keys in one flow mapping: each finding used to print the whole 500 KB line
    keys = ", ".join(f"k{i}: 1" for i in range(40_000))
    text = BASE + "tiers: {L1: {" + keys + "}}\n"
    res = check(text, file="p.yaml")
    assert len(res.diagnostics) == 40_000
    out = format_diagnostics(res.diagnostics, "text", sources=res.sources)
    assert len(out) < 40_000 * 400
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if "unknown key 'k39999'" in line)
    excerpt, caret = lines[at + 1], lines[at + 2]  # the finding's excerpt and caret
    assert excerpt.startswith("    8 | …") and len(excerpt) < 200
    assert excerpt[caret.index("^") :].startswith("k39999")


def test_a_huge_key_is_refused_and_a_long_one_clipped_in_paths() -> None:
    # an explicit key escapes YAML's 1,024-character bound on keys; pydantic copies the key into
    # the location of every error below it (2,000 errors x 300 KB = 600 MB)
    keys = ", ".join(f"k{i}: 1" for i in range(2_000))
    (d,) = errors(BASE + f"tiers:\n  ? {'s' * 300_000}\n  : {{{keys}}}\n")
    assert (d.code, d.line, d.col) == ("CP101", 9, 5)
    assert "a key of 300,000 characters; keys have at most 1,024" in d.message
    res = check(BASE + f"tiers:\n  ? {'s' * 1000}\n  : {{{keys}}}\n", file="p.yaml")
    assert len(res.diagnostics) == 2_000
    for d in res.diagnostics:
        assert len(d.path) < 120 and len(d.message) < 200


def test_includes_are_bounded_in_number_and_read_once(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text("tiers: {L1: {}}\n")
    many = "include: [" + ", ".join(["t.yaml"] * 50_000) + "]\n"
    (d,) = errors(BASE + many, base_dir=tmp_path)  # one finding, no file read 50,000 times
    assert (d.code, d.path) == ("CP107", "include")
    assert "50,000 includes; the limit is 64" in d.message
    (d,) = errors(BASE + "include: [t.yaml, ./t.yaml]\n", base_dir=tmp_path)
    assert (d.code, d.path) == ("CP107", "include[1]")
    assert "same file as include[0]" in d.message


def test_findings_after_pruned_list_items_keep_their_own_paths() -> None:
    # the schema rejects goals[0], [1] and [3]; the checker removes them and checks the rest: the
    # unknown metric is goals[2]'s and the missing window goals[4]'s (they were hidden, or named
    # and located at the item that had moved into their index)
    goals = '[1, 2, {id: g, metric: nosuch, target: ">= 1", window: rolling 30d}, 3, {id: h, metric: csat, target: ">= 1%"}]'
    found = [(d.code, d.path, d.col) for d in errors(BASE + f"goals: {goals}\n")]
    assert found == [
        ("CP203", "goals[0]", 9),
        ("CP203", "goals[1]", 12),
        ("CP203", "goals[3]", 77),
        ("CP509", "goals[2].metric", 31),
        ("CP511", "goals[4]", 80),
    ]
