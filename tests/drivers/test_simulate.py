"""`carepath simulate` and carepath.drivers.simulate.Simulator against the examples and broken inputs."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from carepath.cli.app import main
from carepath.diagnostics import format_diagnostics
from carepath.drivers.simulate import Simulator, parse_events, read_events
from carepath.events import Event
from carepath.loading.loader import check_file, load

ROOT = Path(__file__).resolve().parents[2]
EX = ROOT / "examples"
SUPPORT = str(EX / "vn-retail-support.yaml")
SUPPORT_EVENTS = str(EX / "events" / "vn-retail-support.jsonl")
JOURNEY = str(EX / "omnichannel-journey.yaml")
JOURNEY_EVENTS = str(EX / "events" / "omnichannel-journey.jsonl")

BROKEN = """\
carepath: 1
id: broken
version: "1"
timezone: Asia/Ho_Chi_Minh
start: {on: case.opened}
stages:
  new:
    initial: true
    on: {agent.replied: opn}
  open: {final: true}
"""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["simulate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def ev(i: int, type_: str, at: str, case: str = "T-1", **data: object) -> dict[str, object]:
    return {"id": f"e{i}", "type": type_, "at": at, "case": case, "data": data}


@pytest.mark.parametrize(("pb", "events"), [(SUPPORT, SUPPORT_EVENTS), (JOURNEY, JOURNEY_EVENTS)])
def test_table_on_examples(capsys: pytest.CaptureFixture[str], pb: str, events: str) -> None:
    code, out, err = run(capsys, pb, events, "--color", "never")
    assert code == 0, err
    assert err == ""
    assert "\x1b[" not in out
    assert "(opened)" in out and "wake-up" in out
    assert "case(s)," in out.splitlines()[-1] or "case(s)" in out


def test_table_shows_sla_met_warned_breached_and_escalations(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, SUPPORT, SUPPORT_EVENTS, "--color", "never")
    assert code == 0
    for text in (
        "sla.first_response.met",
        "sla.first_response.warning",
        "sla.first_response.breached",
        "escalate L1 → L2",
        "escalate L2 → L3",
        "new → open",
        "due 2027-02-01 11:12:00",
    ):
        assert text in out, text


def test_color_only_when_asked_and_no_color_respected(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, out, _ = run(capsys, SUPPORT, SUPPORT_EVENTS, "--color", "always")
    assert "\x1b[" in out
    monkeypatch.setenv("NO_COLOR", "1")
    _, out, _ = run(capsys, SUPPORT, SUPPORT_EVENTS)  # auto: not a TTY and NO_COLOR
    assert "\x1b[" not in out


def test_jsonl_one_object_per_step(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, SUPPORT, SUPPORT_EVENTS, "--format", "jsonl")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    n_events = len(read_events(SUPPORT_EVENTS)[0])
    assert sum(1 for r in rows if r["event"] is not None) == n_events
    wakeups = [r for r in rows if r["event"] is None]
    assert wakeups, "timers and thresholds fire between events"
    for r in rows:
        assert {"event", "state", "actions", "signals", "deadlines", "at", "case"} <= set(r)
        if r["state"] is not None:
            assert r["state"]["case"] == r["case"]
    # time never goes backwards in the output
    ats = [datetime.fromisoformat(r["at"]) for r in rows]
    assert ats == sorted(ats)
    # a wake-up fires strictly before the next event of the log
    first_warning = next(
        r for r in rows if any(s["type"] == "sla.first_response.warning" for s in r["signals"])
    )
    assert first_warning["event"] is None


def test_until_advances_every_case(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, SUPPORT, SUPPORT_EVENTS, "-f", "jsonl")
    _, out2, _ = run(capsys, SUPPORT, SUPPORT_EVENTS, "-f", "jsonl", "--until", "2027-04-01")
    rows, rows2 = out.splitlines(), out2.splitlines()
    assert rows2[: len(rows)] == rows
    extra = [json.loads(x) for x in rows2[len(rows) :]]
    assert extra and all(r["event"] is None for r in extra)
    assert all(
        datetime.fromisoformat(r["at"]) <= datetime.fromisoformat("2027-04-01T00:00:00+07:00")
        for r in extra
    )
    final = {}
    for r in map(json.loads, rows2):
        if r["state"]:
            final[r["case"]] = r["state"]
    assert all(s["stage"] == "closed" or s["next_wakeup"] is None for s in final.values())


def test_bad_until(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, SUPPORT, SUPPORT_EVENTS, "--until", "tomorrow")
    assert code == 2 and "--until" in err


def test_bad_events_reported_with_line_and_run_goes_on(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lines = [
        json.dumps(ev(1, "case.opened", "2027-03-01T09:00:00+07:00", channel="email")),
        "{not json",
        json.dumps(ev(2, "case.opened", "2027-03-01T09:01:00+07:00", case="T-2", channel="fax")),
        json.dumps({"id": "e3", "type": "agent.replied", "case": "T-1"}),
        json.dumps(ev(4, "agent.replied", "2027-03-01T08:00:00+07:00")),  # older than the case
        json.dumps(ev(5, "agent.replied", "2027-03-01T09:30:00+07:00")),
    ]
    f = tmp_path / "events.jsonl"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out, err = run(capsys, SUPPORT, str(f), "-f", "jsonl")
    assert code == 1
    errs = err.splitlines()
    assert any(e.startswith(f"{f}:2: bad event: not JSON") for e in errs)
    assert any(e.startswith(f"{f}:3: bad event:") and "channel" in e for e in errs)
    assert any(e.startswith(f"{f}:4: bad event:") and "`at`" in e for e in errs)
    assert any(e.startswith(f"{f}:5: bad event:") and "older" in e for e in errs)
    rows = [json.loads(x) for x in out.splitlines()]
    assert [r["event"]["id"] for r in rows if r["event"]] == ["e1", "e5"]
    assert rows[-1]["state"]["stage"] == "open"


def test_yaml_events(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    f = tmp_path / "events.yaml"
    f.write_text(
        "- {id: a, type: case.opened, at: '2027-03-01T09:00:00+07:00', case: T-1, data: {channel: chat}}\n"
        "- {id: b, type: agent.replied, case: T-1}\n"
        "- {id: c, type: agent.replied, at: '2027-03-01T09:05:00+07:00', case: T-1}\n",
        encoding="utf-8",
    )
    code, out, err = run(capsys, SUPPORT, str(f), "-f", "jsonl")
    assert code == 1
    assert f"{f}:2: bad event: missing field `at`" in err
    rows = [json.loads(x) for x in out.splitlines()]
    assert rows[-1]["state"]["clocks"]["first_response"]["status"] == "met"


def test_unknown_case_and_unmentioned_types_are_ignored(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    f = tmp_path / "e.jsonl"
    f.write_text(
        json.dumps(ev(1, "agent.replied", "2027-03-01T09:00:00+07:00", case="NOPE")) + "\n"
    )
    code, out, _ = run(capsys, SUPPORT, str(f), "-f", "jsonl")
    assert code == 0
    row = json.loads(out)
    assert row["state"] is None and row["signals"][0]["type"] == "ignored"


def test_invalid_playbook_prints_validate_diagnostics(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pb = tmp_path / "broken.yaml"
    pb.write_text(BROKEN, encoding="utf-8")
    code, out, err = run(capsys, str(pb), SUPPORT_EVENTS)
    assert code == 1 and out == ""
    res = check_file(str(pb))
    assert format_diagnostics(res.diagnostics, "text", sources=res.sources) in err
    assert "did you mean" in err


@pytest.mark.parametrize("which", ["playbook", "events"])
def test_missing_files_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, which: str
) -> None:
    args = (
        [str(tmp_path / "nope.yaml"), SUPPORT_EVENTS]
        if which == "playbook"
        else [SUPPORT, str(tmp_path / "nope.jsonl")]
    )
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert "nope" in err and ("No such file" in err or "no such file" in err)


# -- the Simulator ------------------------------------------------------------------------------
def test_simulator_wakes_strictly_before_and_after_at_the_same_instant() -> None:
    sim = Simulator(load(SUPPORT))
    sim.feed(Event.from_dict(ev(1, "case.opened", "2027-03-01T09:00:00+07:00", channel="chat")))
    # the chat target is 15 min: breach at 09:15; a reply at exactly 09:15 meets it (SPEC §4.2)
    steps = sim.feed(Event.from_dict(ev(2, "agent.replied", "2027-03-01T09:15:00+07:00")))
    assert [s.kind for s in steps] == ["wakeup", "event"]  # the 75 % warning at 09:11:15 only
    assert steps[-1].state is not None
    assert steps[-1].state.clocks["first_response"].status == "met"


def test_simulator_interleaves_cases_in_time_order() -> None:
    sim = Simulator(load(SUPPORT))
    sim.feed(
        Event.from_dict(ev(1, "case.opened", "2027-03-01T09:00:00+07:00", case="A", channel="chat"))
    )
    sim.feed(
        Event.from_dict(ev(2, "case.opened", "2027-03-01T09:05:00+07:00", case="B", channel="chat"))
    )
    steps = sim.advance_to(datetime.fromisoformat("2027-03-01T09:30:00+07:00"))
    keyed = [(s.at, s.case) for s in steps]
    assert keyed == sorted(keyed)
    assert {s.case for s in steps} == {"A", "B"}


def test_reentry_after_exit_respects_min_interval() -> None:
    sim = Simulator(load(JOURNEY))
    sim.feed(
        Event.from_dict(
            ev(1, "customer.subscribed", "2027-03-01T10:00:00+07:00", case="K", channel="zalo")
        )
    )
    sim.feed(Event.from_dict(ev(2, "customer.unsubscribed", "2027-03-02T10:00:00+07:00", case="K")))
    assert sim.cases["K"].ended
    steps = sim.feed(
        Event.from_dict(
            ev(3, "customer.subscribed", "2027-03-10T10:00:00+07:00", case="K", channel="zalo")
        )
    )
    assert steps[-1].kind == "ignored"  # min_interval 90d
    steps = sim.feed(
        Event.from_dict(
            ev(4, "customer.subscribed", "2027-06-10T10:00:00+07:00", case="K", channel="zalo")
        )
    )
    assert steps[-1].kind == "event" and steps[-1].opened
    assert not sim.cases["K"].ended


def test_parse_events_jsonl_skips_blank_and_comment_lines() -> None:
    good, bad = parse_events('\n# comment\n{"id":"a","type":"x","at":"2027-01-01T00:00:00Z"}\n')
    assert [g.line for g in good] == [3] and bad == []
