"""``carepath run --roster`` and ``carepath serve --roster`` (SPEC §10): the allocator assigns the
example's cases to its roster; a bad roster file refuses to start with one line naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from carepath.cli.app import main
from carepath.runtime import open_store
from carepath.runtime.allocation import load_roster

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(ROOT / "examples" / "eldercare-queue.yaml")
EVENTS = str(ROOT / "examples" / "events" / "eldercare-queue.jsonl")
ROSTER = str(ROOT / "examples" / "rosters" / "eldercare-queue.yaml")


def test_run_with_the_example_roster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    acts = tmp_path / "actions.jsonl"
    rc = main(
        [
            "run",
            PLAYBOOK,
            "--store",
            url,
            "--events",
            EVENTS,
            "--roster",
            ROSTER,
            "--actions",
            str(acts),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "179 applied" in err and "assigned to agents" in err  # the allocator's own, apart
    store = open_store(url)
    try:
        states = store.cases()
        held = {s.case: s.data.get("assignee") for s in states}
        assert set(held.values()) - {None} <= {"ag.lan", "ag.minh", "ag.hoa", "ag.thu"}
        seniors = [s for s in states if s.segment == "seniors" and s.data.get("assignee")]
        assert seniors and all(s.data["assignee"] in ("ag.hoa", "ag.thu") for s in seniors)
        loads = store.atomic(lambda tx: tx.agent_loads())
        open_held: dict[str, int] = {}
        for s in states:
            if not s.ended and s.data.get("assignee"):
                open_held[s.data["assignee"]] = open_held.get(s.data["assignee"], 0) + 1
        assert loads == open_held
        caps = {a.id: a.capacity for a in load_roster(ROSTER)}
        assert all(n <= (caps[a] or 10**9) for a, n in loads.items())
    finally:
        store.close()
    notes = [json.loads(x) for x in acts.read_text(encoding="utf-8").splitlines()]
    # entering `assigned` follows `agent.assigned`: its notify always names the agent (a case
    # answered before anybody was free has no assignee: its later notifies say null)
    named = [a for a in notes if a["source"] == "stages.assigned.enter[0]"]
    assert named and all(a["params"]["agent"] for a in named)


@pytest.mark.parametrize("command", ["run", "serve"])
@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "- {id: a, tiers: [L7]}\n",
            "--roster: agent 1 (a): tier 'L7' is not a tier of the playbooks",
        ),
        ("- {id: a, tiers: [L1], calendar: nights}\n", "calendar 'nights' is not a calendar"),
        (
            "- {id: a, tiers: [L1], capacity: lots}\n",
            "roster.yaml: agent 1 (a): `capacity` must be",
        ),
        ("- {id: a\n", "roster.yaml:2:"),
    ],
)
def test_a_bad_roster_refuses_to_start(
    command: str, text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roster = tmp_path / "roster.yaml"
    roster.write_text(text, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'c.db'}"
    args = [command, PLAYBOOK, "--store", url, "--roster", str(roster)]
    if command == "run":
        args += ["--events", EVENTS]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "c.db").exists()  # refused before opening the store


def test_a_missing_roster_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    assert (
        main(
            [
                "run",
                PLAYBOOK,
                "--store",
                url,
                "--events",
                EVENTS,
                "--roster",
                str(tmp_path / "nope.yaml"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "--roster:" in err and "nope.yaml: cannot read the roster" in err
