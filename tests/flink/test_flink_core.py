"""The Flink job's pure logic (no PyFlink, no JVM): timestamps, the end of time, the verdict over
several playbooks, the fan-out, and the in-memory reference run against ``carepath run``."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from carepath import load
from carepath.engine.engine import Engine
from carepath.flink.core import (
    FLUSH_TS,
    HARD,
    NO_KEY,
    Record,
    Verdict,
    cap_us,
    event_ms,
    fan_out,
    micros,
    rejection,
    timer_ms,
)
from carepath.flink.reference import run_reference
from flink_common import (
    BAD,
    NAMES,
    events,
    flink_outcome,
    hostile_log,
    lines_of,
    merged_log,
    playbook,
    rejected_lines,
    run_rejected,
    runtime_run,
    with_bad_lines,
)


def test_import_carepath_does_not_import_pyflink() -> None:
    code = (
        "import sys, carepath, carepath.cli.app, carepath.flink, carepath.flink.core, carepath.flink.reference, "
        "carepath.cli.flink; carepath.cli.app.build_parser(); print('pyflink' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_timestamps_round_so_timers_never_fire_early() -> None:
    t = datetime(2027, 2, 1, 2, 0, 0, 123456, tzinfo=UTC)
    us = micros(t)
    assert event_ms(us) == us // 1000  # an event: down
    assert timer_ms(us / 1e6) == us // 1000 + 1  # a wake-up: up
    assert timer_ms(1_800_000_000.0) == 1_800_000_000_000  # whole milliseconds stay put
    assert timer_ms(1_800_000_000.0) < FLUSH_TS


def test_end_of_time_is_that_of_the_simulated_clock() -> None:
    assert cap_us(None, 100) == 100  # the last event
    assert cap_us(500, 100) == 500  # --until after it
    assert (
        cap_us(50, 100) == 99
    )  # --until before it: wake-ups strictly before the last event still fire
    assert cap_us(None, None) is None
    assert cap_us(7, None) == 7


def _rej(reason: str, pb: str = "p") -> str:
    return rejection({"id": "e"}, reason, "m", pb)


def test_verdict_ranks_rejections_like_the_runtime() -> None:
    v = Verdict(2)
    assert not v.add(0, "rejected", "unknown_case", _rej("unknown_case"))
    assert v.add(1, "applied")
    assert v.result() is None  # one playbook applying it is enough
    v = Verdict(2)
    v.add(0, "applied")
    v.add(1, "rejected", "out_of_order", _rej("out_of_order"))
    assert json.loads(v.result() or "{}")["reason"] == "out_of_order"  # a hard rejection wins
    v = Verdict(1, json.dumps([NO_KEY, _rej("invalid")]))
    v.add(0, "ignored")
    assert json.loads(v.result() or "{}")["reason"] == "invalid"  # "no case key" when nothing else
    v = Verdict(1, json.dumps([NO_KEY, _rej("invalid")]))
    v.add(0, "rejected", "unknown_case", _rej("unknown_case"))
    assert json.loads(v.result() or "{}")["reason"] == "unknown_case"
    assert Verdict.from_json(v.to_json()) == v
    assert HARD < NO_KEY


def test_fan_out_keys_events_per_playbook_and_rejects_bad_lines() -> None:
    engines = [Engine(load(playbook(n))) for n in NAMES]
    line = lines_of(events(NAMES[0]))[0]
    recs, rej = fan_out(engines, line)
    assert rej is None
    assert [r.key for r in recs] == ["0:T-1001"]
    assert Record.of(recs[0].to_tuple()) == recs[0]
    assert fan_out(engines, "   ") == ([], None)
    assert fan_out(engines, "# a comment") == ([], None)
    recs, rej = fan_out(engines, BAD["not-json"])
    assert recs == [] and json.loads(rej or "{}")["event"] == {"raw": BAD["not-json"]}
    recs, rej = fan_out(engines, BAD["no-at"])
    assert recs == [] and "`at`" in json.loads(rej or "{}")["message"]
    no_key = json.dumps({"id": "x", "type": "agent.replied", "at": "2027-02-01T10:00:00+07:00"})
    recs, rej = fan_out(engines, no_key)
    assert recs == [] and json.loads(rej or "{}")["reason"] == "invalid"
    other = json.dumps(
        {"id": "y", "type": "nobody.cares", "at": "2027-02-01T10:00:00+07:00", "case": "T-1"}
    )
    assert fan_out(engines, other) == ([], None)  # no playbook mentions it: ignored


@pytest.mark.parametrize("name", NAMES)
def test_reference_equals_carepath_run(tmp_path: Path, name: str) -> None:
    lines = lines_of(events(name))
    want = runtime_run(tmp_path, [playbook(name)], lines)
    ref = run_reference([load(playbook(name))], lines)
    got = flink_outcome(ref.actions, ref.state_lines(), ref.rejected)
    assert sorted(got.actions) == sorted(
        want.actions
    )  # byte for byte (the order differs across cases)
    assert got.states == want.states
    assert got.rejected == want.rejected == []


def test_reference_equals_carepath_run_with_until_and_bad_lines(tmp_path: Path) -> None:
    lines = with_bad_lines(merged_log())
    until = "2027-03-20T00:00:00+07:00"
    want = runtime_run(tmp_path, [playbook(n) for n in NAMES], lines, until=until)
    ref = run_reference(
        [load(playbook(n)) for n in NAMES], lines, until=datetime.fromisoformat(until)
    )
    got = flink_outcome(ref.actions, ref.state_lines(), ref.rejected)
    assert got.action_objects() == want.action_objects()
    assert got.states == want.states
    assert got.rejected == want.rejected
    assert {r for _, r in want.rejected} == {"invalid", "unknown_case"}


def test_reference_rejects_a_non_utf8_or_over_long_line_alone_as_run_does(tmp_path: Path) -> None:
    from carepath.flink.reference import read_lines

    log = hostile_log(tmp_path / "events.jsonl")
    pbs = [playbook(n) for n in NAMES]
    ref = run_reference([load(p) for p in pbs], read_lines(str(log)))
    refused = [r for r in rejected_lines(ref.rejected) if '"raw"' in r[0]]
    assert [m.split(":")[0] for _, _, m in refused] == sorted(
        f"line {n}" for n in (len(merged_log()) // 3 + 1, 2 * (len(merged_log()) + 1) // 3 + 1)
    )
    assert any("not UTF-8" in m for _, _, m in refused)
    assert any("longer than" in m for _, _, m in refused)
    # the rejected output is what `carepath run` records, message included, and the rest ran
    assert rejected_lines(ref.rejected) == run_rejected(tmp_path / "rt", pbs, log)
    clean = run_reference([load(p) for p in pbs], merged_log())
    assert ref.state_lines() == clean.state_lines()


# -- the `erase` control line (SPEC §10) -----------------------------------------------------------
def _erase_line(case: str, at: str, **more: str) -> str:
    return json.dumps({"control": "erase", "case": case, "at": at, **more})


def _without(state: str, fields: frozenset[str]) -> dict[str, object]:
    d = json.loads(state)
    d["data"] = {k: v for k, v in d["data"].items() if k not in fields}
    return d


def test_fan_out_keys_an_erase_line_per_playbook_and_rejects_a_malformed_one() -> None:
    engines = [Engine(load(playbook(n)), trace=False) for n in NAMES]
    at = "2027-02-02T00:00:00+07:00"
    recs, rej = fan_out(engines, _erase_line("T-1001", at))
    assert rej is None
    assert [r.key for r in recs] == ["0:T-1001", "1:T-1001"]
    assert {r.ts for r in recs} == {event_ms(micros(datetime.fromisoformat(at)))}
    recs, rej = fan_out(engines, _erase_line("T-1001", at, playbook=NAMES[1]))
    assert rej is None and [r.key for r in recs] == ["1:T-1001"]
    bad = {
        json.dumps({"control": "purge", "case": "T-1", "at": at}): "control 'purge' is unknown",
        json.dumps({"control": "erase", "at": at}): "case must be a non-empty string",
        json.dumps({"control": "erase", "case": "T-1"}): "at must be an ISO 8601 instant",
        json.dumps({"control": "erase", "case": "T-1", "at": "2027-02-02T00:00:00"}): "at must be",
        _erase_line("T-1", at, playbook="nope"): "playbook 'nope' is not one of the job's",
        _erase_line("T-1", at, field="customer.name"): "unknown member(s) field",
    }
    for line, why in bad.items():
        recs, rej = fan_out(engines, line)
        assert recs == [] and rej is not None, line
        got = json.loads(rej)
        assert got["reason"] == "invalid" and why in got["message"], got


def test_reference_erase_at_the_end_equals_store_erase_after_carepath_run(tmp_path: Path) -> None:
    from carepath.runtime import open_store

    pbs = [playbook(n) for n in NAMES]
    lines = merged_log()
    last = max(json.loads(ln)["at"] for ln in lines[-3:])
    plain = run_reference([load(p) for p in pbs], lines)
    res = run_reference([load(p) for p in pbs], [*lines, _erase_line("T-1001", last)])
    runtime_run(tmp_path, pbs, lines)  # the oracle: carepath run, then store.erase
    store = open_store(f"sqlite:///{tmp_path / 'cases.db'}")
    try:
        erased = store.erase("T-1001")
        want = sorted(s.to_json() for s in store.cases())
    finally:
        store.close()
    assert erased.values >= 1  # the example's customer name, at least
    assert sorted(s.to_json() for s in res.states.values()) == want
    assert res.actions == plain.actions and res.rejected == plain.rejected
    # only T-1001's personal values changed: its clocks, stage and wake-up did not
    for k, s in res.states.items():
        pii = load(pbs[NAMES.index(k[0])]).pii_fields
        if k[1] == "T-1001":
            assert all(s.data.get(f) is None for f in pii)
            assert plain.states[k].data != s.data
            assert _without(s.to_json(), pii) == _without(plain.states[k].to_json(), pii)
        else:
            assert s.to_json() == plain.states[k].to_json()


def test_reference_a_case_goes_on_after_an_erase_in_the_middle() -> None:
    pbs = [load(playbook(NAMES[0]))]
    lines = lines_of(events(NAMES[0]))
    opened = json.loads(lines[3])  # T-1007 opens; its later events come after the erasure
    assert opened["case"] == "T-1007" and opened["type"] == "case.opened"
    at = json.loads(lines[4])["at"]
    plain = run_reference(pbs, lines)
    res = run_reference(pbs, [*lines[:4], _erase_line("T-1007", at), *lines[4:]])
    key = (NAMES[0], "T-1007")
    pii = pbs[0].pii_fields
    assert plain.states[key].data.get("customer.name") == "Công ty TNHH Minh Phát"
    assert all(res.states[key].data.get(f) is None for f in pii)
    # every later event applied and every clock as without the erasure
    assert _without(res.states[key].to_json(), pii) == _without(plain.states[key].to_json(), pii)
    assert res.rejected == plain.rejected
    assert len(res.actions) == len(plain.actions)
