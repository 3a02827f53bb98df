"""A new playbook version for open cases (SPEC §9): ``migrate_cases`` and ``check_versions`` on
every store of the store suite."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import carepath
from carepath.runtime import Runtime, Store, check_versions, migrate_cases
from carepath.runtime.clock import ManualClock
from test_store import STORE_FACTORIES

T0 = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)

DESK = """
carepath: 1
id: desk
version: "VERSION"
timezone: UTC
start: {on: ticket.opened, set: {priority: =event.priority}}
fields:
  priority: {type: enum, values: [low, high], default: low}
events:
  ticket.opened: {priority: {type: enum, values: [low, high], default: low}}
slas:
  first_response:
    start: {on: ticket.opened}
    stop: {on: agent.replied}
    calendar: always
    targets:
      - {when: priority == "high", within: HIGH}
      - {within: 8h}
stages:
  STAGE:
    initial: true
    on: {agent.replied: done, ticket.closed: done}
    after: [{in: 3d, to: done}]
  done: {final: true}
"""


def desk(version: str = "1", high: str = "4h", stage: str = "new") -> carepath.Playbook:
    text = DESK.replace("VERSION", version).replace("HIGH", high).replace("STAGE", stage)
    return carepath.loads(text)


@pytest.fixture(params=sorted(STORE_FACTORIES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = STORE_FACTORIES[request.param](tmp_path)
    yield s
    s.close()


def _fill(store: Store, pb: carepath.Playbook) -> Runtime:
    rt = Runtime([pb], store, clock=ManualClock(T0))
    for n, prio in enumerate(["high", "high", "low", "low", "high"]):
        at = (T0 + timedelta(minutes=n)).isoformat()
        r = rt.submit(
            {
                "id": f"o{n}",
                "type": "ticket.opened",
                "at": at,
                "case": f"T-{n}",
                "data": {"priority": prio},
            }
        )
        assert r.status == "applied", r
    # one case ends: it stays on its version
    r = rt.submit(
        {"id": "r4", "type": "agent.replied", "at": T0.replace(hour=10).isoformat(), "case": "T-4"}
    )
    assert r.status == "applied" and r.cases[0].ended
    return rt


def test_migrate_moves_open_cases_and_counts_due_times(store: Store) -> None:
    v1, v2 = desk("1"), desk("2", high="1h")
    _fill(store, v1)
    assert store.open_versions() == [("desk", "1", v1.content_hash, 4)]
    assert store.stale_keys("desk", v2.content_hash) == ["T-0", "T-1", "T-2", "T-3"]
    msg = check_versions(store, [v2], {"desk": "desk-v2.yaml"}, url="sqlite:///c.db")
    assert msg is not None
    assert "4 open case(s) of desk version 1 (the playbook given is version 2)" in msg
    assert "`carepath cases migrate --store sqlite:///c.db --to desk-v2.yaml`" in msg
    assert check_versions(store, [v1]) is None

    before = {s.case: s for s in store.cases()}
    dry = migrate_cases(store, v2, dry_run=True)
    assert (dry.moved, dry.earlier, dry.later, dry.unchanged, dry.failed) == (4, 2, 0, 2, [])
    assert {s.case: s for s in store.cases()} == before  # a dry run writes nothing

    report = migrate_cases(store, v2, batch=3)
    assert (report.moved, report.earlier, report.later, report.unchanged) == (4, 2, 0, 2)
    after = {s.case: s for s in store.cases()}
    assert {k: (s.version, s.ended) for k, s in after.items()} == {
        "T-0": ("2", False),
        "T-1": ("2", False),
        "T-2": ("2", False),
        "T-3": ("2", False),
        "T-4": ("1", True),
    }
    assert after["T-0"].clocks["first_response"].due == T0 + timedelta(hours=1)
    assert after["T-2"].clocks["first_response"].due == T0 + timedelta(hours=8, minutes=2)
    assert check_versions(store, [v2]) is None
    # idempotent: nothing is left to move
    again = migrate_cases(store, v2)
    assert (again.moved, again.failed) == (0, [])
    # the moved cases run on the new version
    rt = Runtime([v2], store, clock=ManualClock(T0 + timedelta(hours=2)))
    assert rt.run_due() == 2  # the two high-priority cases breached at 10:00 and 10:01
    r = rt.submit(
        {"id": "r0", "type": "agent.replied", "at": rt.clock().isoformat(), "case": "T-0"}
    )
    assert r.status == "applied"
    assert r.cases[0].clocks["first_response"].status == "breached"


def test_a_stage_the_new_version_lacks_needs_a_map(store: Store) -> None:
    _fill(store, desk("1"))
    v2 = desk("2", stage="waiting")
    report = migrate_cases(store, v2)
    assert report.moved == 0 and [k for k, _ in report.failed] == ["T-0", "T-1", "T-2", "T-3"]
    assert "'new'" in report.failed[0][1]
    assert {s.version for s in store.cases()} == {"1"}
    report = migrate_cases(store, v2, {"new": "waiting"})
    assert (report.moved, report.failed) == (4, [])
    assert {s.stage for s in store.cases() if not s.ended} == {"waiting"}


def test_same_version_other_content_is_another_version(store: Store) -> None:
    _fill(store, desk("1"))
    edited = desk("1", high="2h")
    msg = check_versions(store, [edited])
    assert msg is not None and "version 1 with other content" in msg
    assert migrate_cases(store, edited).moved == 4
    assert check_versions(store, [edited]) is None


def test_other_playbooks_are_left_alone(store: Store) -> None:
    _fill(store, desk("1"))
    other = carepath.loads(
        DESK.replace("id: desk", "id: other")
        .replace("VERSION", "9")
        .replace("HIGH", "1h")
        .replace("STAGE", "new")
    )
    assert check_versions(store, [other]) is None
    assert migrate_cases(store, other).moved == 0
    assert {s.playbook for s in store.cases()} == {"desk"}
