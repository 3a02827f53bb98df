"""``report`` and ``simulate`` with ``--roster`` (SPEC §10): allocation against the replayed load,
the same way as the runtime, and the table per agent in text, JSON and HTML."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import carepath
from carepath.cli.app import main
from carepath.drivers.replay import read_events, replay
from carepath.drivers.simulate import Simulator
from carepath.metrics import Collector
from carepath.report import build_report
from carepath.runtime import Runtime, open_store
from carepath.runtime.allocation import load_roster, parse_roster
from carepath.runtime.clock import ManualClock

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(ROOT / "examples" / "eldercare-queue.yaml")
EVENTS = str(ROOT / "examples" / "events" / "eldercare-queue.jsonl")
ROSTER = str(ROOT / "examples" / "rosters" / "eldercare-queue.yaml")


def _report(*extra: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(["report", PLAYBOOK, EVENTS, "--roster", ROSTER, *extra])
    out, err = capsys.readouterr()
    return rc, out, err


def test_json_has_the_allocation_key(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _report("--format", "json", capsys=capsys)
    assert rc == 0, err
    block = json.loads(out)["allocation"]
    rows = block["agents"]
    assert [r["agent"] for r in rows] == ["ag.lan", "ag.minh", "ag.hoa", "ag.thu", "ag.son"]
    assert set(rows[0]) == {
        "agent",
        "name",
        "tiers",
        "cases",
        "first_response_median",
        "aht",
        "aht_samples",
        "fcr",
        "fcr_samples",
        "csat",
        "csat_samples",
        "sla_attainment",
        "open",
    }
    son = rows[-1]
    assert son["cases"] == 0 and son["csat"] is None and son["open"] == 0  # on leave
    caps = {a.id: a.capacity for a in load_roster(ROSTER)}
    assert all(r["open"] <= (caps[r["agent"]] or 10**9) for r in rows)
    assert sum(r["cases"] for r in rows) > 0 and isinstance(block["queued"], int)
    # without a roster the key is absent
    assert main(["report", PLAYBOOK, EVENTS, "--format", "json"]) == 0
    assert "allocation" not in json.loads(capsys.readouterr().out)


def test_text_and_html_show_the_table(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, out, _ = _report(capsys=capsys)
    assert rc == 0 and "== Agents ==" in out and "Lê Thị Hoa (ag.hoa)" in out
    assert "First response (median)" in out and "Open now" in out
    rc, out, _ = _report("--lang", "vi", capsys=capsys)
    assert rc == 0 and "== Nhân viên ==" in out
    html = tmp_path / "r.html"
    rc, _, _ = _report("--format", "html", "-o", str(html), capsys=capsys)
    text = html.read_text(encoding="utf-8")
    assert rc == 0 and "Phạm Thu (ag.thu)" in text and "Open now" in text


def test_bad_roster_and_store_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "r.yaml"
    bad.write_text("- {id: x, tiers: [L9]}\n", encoding="utf-8")
    assert main(["report", PLAYBOOK, EVENTS, "--roster", str(bad)]) == 2
    assert "tier 'L9'" in capsys.readouterr().err
    assert main(["simulate", PLAYBOOK, EVENTS, "--roster", str(bad)]) == 2
    url = f"sqlite:///{tmp_path / 'c.db'}"
    assert main(["report", PLAYBOOK, "--store", url, "--roster", ROSTER]) == 2
    assert "--roster replays an event log" in capsys.readouterr().err


def _holders_simulated(pb: Any, roster: Any, events: list[Any]) -> dict[str, Any]:
    sim = Simulator(pb, roster=roster)
    for e in events:
        sim.feed(e)
    return {k: s.data.get("assignee") for k, s in sim.cases.items()}


def _holders_replayed(pb: Any, roster: Any, events: list[Any]) -> dict[str, Any]:
    rp = replay(pb, events, sink=Collector(pb), keep_events=False, roster=roster)
    return {k: s.data.get("assignee") for k, s in rp.states.items()}


AGENTS = st.lists(
    st.fixed_dictionaries(
        {
            "tiers": st.sampled_from([["L1"], ["L2"], ["L1", "L2"]]),
            "capacity": st.one_of(st.none(), st.integers(0, 4)),
            "skills": st.sampled_from([[], ["elder-care"]]),
            "active": st.booleans(),
        }
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=20, deadline=None)
@given(agents=AGENTS, n=st.integers(20, 179))
def test_simulate_and_report_allocate_the_same_way(agents: list[dict[str, Any]], n: int) -> None:
    pb = carepath.load(PLAYBOOK)
    roster = parse_roster([{"id": f"a{i}", **a} for i, a in enumerate(agents)])
    events = read_events(EVENTS)[:n]
    sim = _holders_simulated(pb, roster, events)
    rep = _holders_replayed(pb, roster, events)
    assert sim == rep
    # capacity holds in the replay's open cases
    caps = {a.id: a.capacity for a in roster}
    rp = replay(pb, events, sink=Collector(pb), keep_events=False, roster=roster)
    held: dict[str, int] = {}
    for s in rp.states.values():
        if not s.ended and s.data.get("assignee"):
            held[s.data["assignee"]] = held.get(s.data["assignee"], 0) + 1
    assert all(held.get(a, 0) <= (c if c is not None else 10**9) for a, c in caps.items())
    assert build_report(pb, rp)["allocation"]["agents"][0]["agent"] == "a0"


def test_the_runtime_allocates_as_the_replay_when_nobody_waits(tmp_path: Path) -> None:
    pb = carepath.load(PLAYBOOK)
    roster = [
        {"id": "l1a", "tiers": ["L1"]},
        {"id": "l1b", "tiers": ["L1"]},
        {"id": "eld", "tiers": ["L2"], "skills": ["elder-care"]},
        {"id": "eld2", "tiers": ["L1", "L2"], "skills": ["elder-care"]},
    ]
    events = read_events(EVENTS)
    store = open_store(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        rt = Runtime([pb], store, clock=ManualClock(events[0].at), roster=roster)
        rs = rt.submit_many(events, timeline=True)
        assert all(r.ok for r in rs)
        ran = {s.case: s.data.get("assignee") for s in store.cases()}
    finally:
        store.close()
    assert ran == _holders_replayed(pb, parse_roster(roster), events)
