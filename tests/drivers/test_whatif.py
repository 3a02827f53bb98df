"""The what-if of a change of SLA targets replays under the second playbook only the cases the
change can reach, and gives the report of two whole replays, byte for byte."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carepath import Event, load, loads
from carepath.compile.ir import Playbook
from carepath.drivers import shard
from carepath.drivers.replay import replay_log
from carepath.drivers.shard import replay_log_sharded
from carepath.drivers.whatif import changed_targets
from carepath.engine.engine import Engine
from carepath.metrics import Collector
from carepath.report import build_report, compare_reports, render
from strategies import disturbed_logs, retail_lines

ROOT = Path(__file__).resolve().parents[2]
RETAIL = ROOT / "examples" / "vn-retail-support.yaml"
TEXT = RETAIL.read_text(encoding="utf-8")
VIP_CHAT = 'channel in ["chat", "zalo"]\', within: 10m}'


def variant(tmp_path: Path, text: str, name: str = "other.yaml") -> Playbook:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load(path)


@pytest.fixture(scope="module")
def retail() -> Playbook:
    return load(RETAIL)


@pytest.fixture(scope="module")
def lines() -> list[str]:
    return retail_lines(5)


# -- which playbooks qualify ---------------------------------------------------------------------
def test_a_changed_target_is_named_by_its_sla_and_index(tmp_path: Path, retail: Playbook) -> None:
    other = variant(tmp_path, TEXT.replace(VIP_CHAT, VIP_CHAT.replace("10m", "5m"), 1))
    assert changed_targets(retail, other) == {"first_response": frozenset({0})}
    assert changed_targets(other, retail) == {"first_response": frozenset({0})}


def test_a_target_calendar_counts_as_a_change(tmp_path: Path, retail: Playbook) -> None:
    old = '{when: channel == "phone", within: 30m}'
    new = '{when: channel == "phone", within: 30m, calendar: always}'
    assert old in TEXT
    other = variant(tmp_path, TEXT.replace(old, new, 1))
    assert changed_targets(retail, other) == {"first_response": frozenset({3})}


def test_changed_thresholds_reach_every_target_of_their_sla(
    tmp_path: Path, retail: Playbook
) -> None:
    other = variant(
        tmp_path,
        TEXT.replace("{at: 80%, do: {notify: assignee", "{at: 60%, do: {notify: assignee", 1),
    )
    assert changed_targets(retail, other) == {"resolution": frozenset({0, 1, 2, 3})}


def test_what_no_replay_reads_may_differ(tmp_path: Path, retail: Playbook) -> None:
    text = TEXT.replace('version: "2027.01"', 'version: "2027.02"', 1)
    text = re.sub(r"(?m)^title: .*$", "title: Another title", text, count=1)
    other = variant(tmp_path, text)
    assert other.version != retail.version
    assert changed_targets(retail, other) == {}


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # a target's condition: the cases that select it are others
        ('{when: channel == "phone", within: 30m}', '{when: channel == "email", within: 30m}'),
        # a stage, a clock's start, the opening event: anything else is a new replay
        ("stop: {on: agent.replied}", "stop: {on: [agent.replied, agent.called]}"),
        ("timezone: Asia/Ho_Chi_Minh", "timezone: Asia/Bangkok"),
    ],
)
def test_any_other_change_replays_both_whole(
    tmp_path: Path, retail: Playbook, old: str, new: str
) -> None:
    assert old in TEXT
    other = variant(tmp_path, TEXT.replace(old, new, 1))
    assert changed_targets(retail, other) is None


# -- the engine notes the cases that select a watched target -------------------------------------
WATCHED = """\
carepath: 1
id: watch
version: 1
fields: {priority: {type: enum, values: [normal, urgent], default: normal}}
start: {on: case.opened}
stages:
  open:
    initial: true
    on:
      escalated: {set: {priority: urgent}}
      solved: {to: done}
  done: {final: true}
slas:
  reply:
    start: {on: case.opened}
    stop: {enter: done}
    targets:
      - {when: priority == "urgent", within: 30m}
      - {within: 2h}
"""

T0 = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


def ev(case: str, type_: str, minutes: int, n: int) -> Event:
    return Event(id=f"{case}-{n}", type=type_, at=T0 + timedelta(minutes=minutes), case=case)


@pytest.mark.parametrize("backend", ["python", "auto"])
def test_the_engine_notes_the_cases_that_select_a_watched_target(backend: str) -> None:
    """``a`` selects the urgent target when it is raised (a retarget), ``b`` never does, ``c``
    only when its clock is measured again after the breach of the 2 h target... which keeps its
    target: a breached cycle is never retargeted."""
    engine = Engine(loads(WATCHED), backend=backend)
    reached = engine.watch_targets({"reply": [0]})
    a = engine.start(ev("a", "case.opened", 0, 0)).state
    b = engine.start(ev("b", "case.opened", 0, 0)).state
    c = engine.start(ev("c", "case.opened", 0, 0)).state
    assert reached == set()
    a = engine.handle(a, ev("a", "escalated", 10, 1)).state
    assert reached == {"a"}
    engine.handle(b, ev("b", "solved", 20, 1))
    c = engine.handle(c, ev("c", "escalated", 180, 1)).state  # breached at 11:00: kept
    assert c.clocks["reply"].breached and c.clocks["reply"].target_index == 1
    assert reached == {"a"}
    with pytest.raises(ValueError, match="already watches"):
        engine.watch_targets({"reply": [1]})


def test_watching_an_unknown_clock_or_target_is_refused() -> None:
    engine = Engine(loads(WATCHED), backend="python")
    with pytest.raises(ValueError, match="no clock 'nope'"):
        engine.watch_targets({"nope": [0]})
    with pytest.raises(ValueError, match="no target"):
        Engine(loads(WATCHED)).watch_targets({"reply": [2]})


# -- the same report as two whole replays --------------------------------------------------------
def reports(pbs: list[Playbook], path: Path, workers: int, incremental: bool) -> bytes:
    rps = (
        replay_log_sharded(pbs, path, Collector, workers=workers, incremental=incremental)
        if incremental
        else replay_log(pbs, path, Collector)
    )
    docs = [build_report(pb, rp) for pb, rp in zip(pbs, rps, strict=True)]
    return render(compare_reports(docs[0], docs[1]), "json").encode("utf-8")


def replayed_whole(pbs: list[Playbook], path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Assert that the what-if of ``pbs`` over ``path`` (one process) gives the report of two
    whole replays without taking the shortcut (no reached cases taken out of the first)."""
    calls: list[int] = []
    rest_part = shard.rest_part
    monkeypatch.setattr(shard, "rest_part", lambda *a: calls.append(1) or rest_part(*a))
    assert reports(pbs, path, 1, True) == reports(pbs, path, 1, False)
    assert calls == []


WITHIN = re.compile(r"within: (\w+)")
DURATIONS = ["1m", "5m", "10m", "20m", "45m", "1h", "3h", "8h", "1bd", "2bd"]


@st.composite
def target_changes(draw: Any) -> str:
    """The retail playbook with some SLA targets' ``within`` changed, and maybe a threshold."""
    text = TEXT
    spans = [m.span(1) for m in WITHIN.finditer(text)]
    picked = draw(st.lists(st.sampled_from(range(len(spans))), max_size=3, unique=True))
    for i in sorted(picked, reverse=True):
        a, b = spans[i]
        text = text[:a] + draw(st.sampled_from(DURATIONS)) + text[b:]
    if draw(st.booleans()):
        text = text.replace("{at: 75%, do: {notify: L2", "{at: 50%, do: {notify: L2", 1)
    return text.replace('version: "2027.01"', 'version: "2027.01-whatif"', 1)


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), workers=st.integers(1, 2))
def test_any_change_of_targets_gives_the_report_of_two_whole_replays(
    tmp_path: Path, lines: list[str], retail: Playbook, data: st.DataObject, workers: int
) -> None:
    """On the generated log cut short and disturbed (lines out of order, bad lines, ids met
    twice in one case or in two, escaped case keys), under any change of targets and
    thresholds, in this process and in two workers."""
    log = data.draw(disturbed_logs(lines))
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(log) + "\n", encoding="utf-8")
    other = variant(tmp_path, data.draw(target_changes()))
    assert changed_targets(retail, other) is not None
    pbs = [retail, other]
    assert reports(pbs, path, workers, True) == reports(pbs, path, workers, False)


@pytest.mark.parametrize("resent", [False, True])
@pytest.mark.parametrize("workers", [1, 2])
def test_the_shortcut_is_taken_and_replays_few_cases(
    tmp_path: Path,
    lines: list[str],
    retail: Playbook,
    workers: int,
    resent: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bench's what-if (a tighter VIP chat target) replays under the second playbook the
    cases that selected that target and takes the rest from the first: the report is the same
    as two whole replays, and the second replay saw far fewer cases. Events resent within their
    own case (every 50th line again, a few lines later) keep the shortcut."""
    log = list(lines)
    if resent:
        for i in range(len(log) - 10, 0, -50):
            log.insert(i + 5, log[i])
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(log) + "\n", encoding="utf-8")
    other = variant(tmp_path, TEXT.replace(VIP_CHAT, VIP_CHAT.replace("10m", "5m"), 1))
    said = tmp_path / "reached.txt"  # written by the worker processes too
    rest_part = shard.rest_part

    def counting(whole: dict[str, Any], reached: dict[str, Any], *more: Any) -> Any:
        with said.open("a", encoding="utf-8") as fh:
            fh.write(f"{reached['cases']}\n")
        return rest_part(whole, reached, *more)

    monkeypatch.setattr(shard, "rest_part", counting)
    fast = reports([retail, other], path, workers, True)
    seen = [int(x) for x in said.read_text(encoding="utf-8").split()]
    one = replay_log([retail], path)[0]
    assert len(seen) >= workers and 0 < sum(seen) < one.cases / 5
    assert (one.duplicates > 0) is resent
    assert fast == reports([retail, other], path, workers, False)


def test_an_id_shared_by_a_reached_case_and_another_replays_the_share_whole(
    tmp_path: Path, lines: list[str], retail: Playbook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A later event of a case the change does not reach takes the id of an event of a case it
    reaches: which of the two is the duplicate is decided by the first, so the share is
    replayed whole under the second playbook — and the report is still that of two whole
    replays."""
    other = variant(tmp_path, TEXT.replace(VIP_CHAT, VIP_CHAT.replace("10m", "5m"), 1))
    engine = Engine(retail)
    reached = engine.watch_targets(changed_targets(retail, other) or {})
    events = [json.loads(x) for x in lines]
    states: dict[str, Any] = {}
    for e in events[:2000]:
        event = Event.from_dict(e)
        st = states.get(event.case)
        try:
            step = engine.start(event) if st is None else engine.handle(st, event)
        except Exception:
            continue
        states[event.case] = step.state
    hit = next(i for i, e in enumerate(events) if e["case"] in reached)
    miss = next(  # a case that ended unreached: nothing later can reach it
        i
        for i, e in enumerate(events)
        if i > hit + 50
        and e["case"] not in reached
        and e["case"] in states
        and states[e["case"]].ended
    )
    events[miss]["id"] = events[hit]["id"]
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    replayed_whole([retail, other], path, monkeypatch)


def test_the_cli_says_how_many_cases_the_second_playbook_replayed(
    tmp_path: Path, lines: list[str], retail: Playbook, capsys: pytest.CaptureFixture[str]
) -> None:
    """At ``--log-level info``, ``carepath report --compare`` says that the second playbook
    replayed only the reached cases, and how many; the first replay's ``reached`` holds them."""
    from carepath.cli.app import main

    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    other_path = tmp_path / "faster.yaml"
    other_path.write_text(TEXT.replace(VIP_CHAT, VIP_CHAT.replace("10m", "5m"), 1), "utf-8")
    other = load(other_path)
    rps = replay_log_sharded([retail, other], path, Collector, workers=2)
    assert rps[0].reached and rps[1].reached is None
    args = ["report", str(RETAIL), str(path), "--compare", str(other_path), "--format", "json"]
    assert main([*args, "--log-level", "info"]) == 0
    err = capsys.readouterr().err
    n = len(rps[0].reached)
    assert f"replayed only the {n} case keys whose clocks selected a changed target" in err
    assert main(args) == 0
    assert "replayed only" not in capsys.readouterr().err


def test_a_change_that_reaches_most_cases_replays_the_second_playbook_whole(
    tmp_path: Path, lines: list[str], retail: Playbook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last (unconditional) first-response target and the resolution thresholds reach
    nearly every case: two replays of them would cost more than one whole replay, so the share
    is replayed whole under the second playbook — with the same report."""
    text = TEXT.replace("      - {within: 2h}\n", "      - {within: 1h}\n", 1)
    text = text.replace("{at: 80%, do: {notify: assignee", "{at: 60%, do: {notify: assignee", 1)
    other = variant(tmp_path, text)
    assert changed_targets(retail, other) == {
        "first_response": frozenset({7}),
        "resolution": frozenset({0, 1, 2, 3}),
    }
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    replayed_whole([retail, other], path, monkeypatch)
    rps = replay_log_sharded([retail, other], path, Collector, workers=1)
    assert rps[0].reached is None  # nothing to say: the second playbook replayed every case
