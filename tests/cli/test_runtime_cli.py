"""``carepath run`` and ``carepath cases`` (SPEC §7, §8), in process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from carepath.cli.app import main

ROOT = Path(__file__).resolve().parents[2]
RETAIL = str(ROOT / "examples" / "vn-retail-support.yaml")
JOURNEY = str(ROOT / "examples" / "omnichannel-journey.yaml")
RETAIL_EVENTS = ROOT / "examples" / "events" / "vn-retail-support.jsonl"
JOURNEY_EVENTS = ROOT / "examples" / "events" / "omnichannel-journey.jsonl"


def _lines(p: Path) -> list[str]:
    return [x for x in p.read_text(encoding="utf-8").splitlines() if x.strip()]


def test_run_then_list_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    acts = tmp_path / "actions.jsonl"
    rc = main(
        [
            "run",
            RETAIL,
            "--store",
            url,
            "--events",
            str(RETAIL_EVENTS),
            "--actions",
            str(acts),
            "--until",
            "2027-03-01T00:00:00+07:00",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "76 events" in err and "0 rejected" in err
    written = [json.loads(x) for x in acts.read_text(encoding="utf-8").splitlines()]
    assert written and all(
        set(a) == {"id", "playbook", "case", "type", "params", "at", "source"} for a in written
    )
    assert len({a["id"] for a in written}) == len(written)

    assert main(["cases", "--store", url, "list", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed and all(
        set(c) == {"playbook", "case", "stage", "tier", "next_wakeup", "clocks"} for c in listed
    )
    assert all(set(v) == {"status", "due"} for c in listed for v in c["clocks"].values())
    assert {c["case"] for c in listed} >= {"T-1001", "T-1007"}

    assert main(["cases", "--store", url, "list"]) == 0
    table = capsys.readouterr().out
    assert "T-1001" in table and "STAGE" in table

    assert main(["cases", "--store", url, "--format", "json", "show", "T-1001"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["state"]["case"] == "T-1001" and shown["outbox"]
    assert {i["status"] for i in shown["outbox"]} == {"delivered"}
    assert main(["cases", "--store", url, "show", "T-1001"]) == 0
    assert "stage" in capsys.readouterr().out
    assert main(["cases", "--store", url, "show", "NOPE"]) == 2
    assert "no case" in capsys.readouterr().err

    # again: everything is a duplicate, nothing is written twice
    rc = main(
        [
            "run",
            RETAIL,
            "--store",
            url,
            "--events",
            str(RETAIL_EVENTS),
            "--actions",
            str(acts),
            "--until",
            "2027-03-01T00:00:00+07:00",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 0 and "76 duplicate" in err
    assert len(acts.read_text(encoding="utf-8").splitlines()) == len(written)


def test_without_actions_they_stay_pending(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    assert (
        main(["run", RETAIL, JOURNEY, "--store", url, "--events", str(JOURNEY_EVENTS), "-q"]) == 0
    )
    assert main(["cases", "--store", url, "show", "KH-1001", "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["outbox"] and {i["status"] for i in shown["outbox"]} == {"pending"}


def test_bad_input_exit_1_and_cases_shows_the_reasons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    lines = _lines(RETAIL_EVENTS)[:10]
    bad = [
        "{this is not json",
        json.dumps({"id": "x1", "at": "2027-02-01T10:00:00+07:00", "case": "T-1001"}),
        json.dumps({"id": "x2", "type": "agent.replied", "at": "yesterday", "case": "T-1001"}),
        json.dumps(
            {
                "id": "x3",
                "type": "agent.replied",
                "at": "2027-02-01T10:00:00+07:00",
                "case": "T-404",
            }
        ),
    ]
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines[:5] + bad + lines[5:]) + "\n", encoding="utf-8")
    rc = main(["run", RETAIL, "--store", url, "--events", str(events)])
    err = capsys.readouterr().err
    assert rc == 1
    assert "4 rejected" in err and "10 applied" in err
    assert main(["cases", "--store", url, "rejected", "--format", "json"]) == 0
    rej = json.loads(capsys.readouterr().out)
    assert [r["reason"] for r in rej] == ["invalid", "invalid", "invalid", "unknown_case"]
    assert rej[0]["event"] == {"raw": "{this is not json"}
    assert main(["cases", "--store", url, "show", "T-404", "--format", "json"]) == 2
    shown = json.loads(capsys.readouterr().out)
    assert shown["state"] is None and shown["rejected"][0]["reason"] == "unknown_case"
    assert main(["cases", "--store", url, "list"]) == 0
    assert "4 rejected" in capsys.readouterr().err


def test_retired_playbook_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    lines = _lines(RETAIL_EVENTS)
    first, rest = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text("\n".join(lines[:3]) + "\n", encoding="utf-8")
    rest.write_text("\n".join(lines[3:6]) + "\n", encoding="utf-8")
    assert main(["run", RETAIL, "--store", url, "--events", str(first), "-q"]) == 0
    v2 = tmp_path / "retail-v2.yaml"
    v2.write_text(
        Path(RETAIL)
        .read_text(encoding="utf-8")
        .replace('version: "2027.01"', 'version: "2027.02"'),
        encoding="utf-8",
    )
    more = tmp_path / "c.jsonl"
    more.write_text(
        json.dumps(
            {
                "id": "late",
                "type": "customer.replied",
                "at": "2027-02-01T12:00:00+07:00",
                "case": "T-1001",
            }
        )
        + "\n",
        encoding="utf-8",
    )
    # SPEC §9: run refuses to start beside open cases of another version, naming the way out
    rc = main(["run", str(v2), "--store", url, "--events", str(more)])
    assert rc == 2
    assert f"carepath cases migrate --store {url} --to {v2}" in capsys.readouterr().err
    assert main(["cases", "--store", url, "rejected", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["cases", "migrate", "--store", url, "--to", str(v2)]) == 0
    assert main(["run", str(v2), "--store", url, "--events", str(more), "-q"]) == 0


def test_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", RETAIL, "--store", "nosuch://x", "--events", str(RETAIL_EVENTS)]) == 2
    assert (
        main(
            [
                "run",
                RETAIL,
                "--store",
                f"sqlite:///{tmp_path / 'c.db'}",
                "--events",
                str(tmp_path / "missing.jsonl"),
            ]
        )
        == 2
    )
    assert main(["run", RETAIL, "--events", str(RETAIL_EVENTS), "--until", "soon"]) == 2
    assert main(["cases", "--store", f"sqlite:///{tmp_path / 'absent.db'}", "list"]) == 2


def test_the_summary_counts_the_files_events_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """zalo-care's deliveries feed action.delivered events back into the runtime; the summary's
    statuses are those of the file's events, and add up to its count (they said '10 events (10
    applied, … 11 ignored …)' before)."""
    import re

    playbook = str(ROOT / "examples" / "zalo-care.yaml")
    events = ROOT / "examples" / "events" / "zalo-care.jsonl"
    bad = tmp_path / "events.jsonl"
    bad.write_text(events.read_text(encoding="utf-8") + "not json\n", encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'c.db'}"
    rc = main(["run", playbook, "--store", url, "--events", str(bad), "--actions", "-"])
    err = capsys.readouterr().err
    assert rc == 1  # the bad line is rejected
    m = re.search(
        r"(\d+) events \((\d+) applied, (\d+) duplicate, (\d+) ignored, (\d+) rejected\)", err
    )
    assert m is not None, err
    total, *statuses = (int(x) for x in m.groups())
    assert total == len(_lines(bad)) and sum(statuses) == total
    assert statuses == [total - 1, 0, 0, 1]
    assert re.search(r"\d+ actions \((\d+) delivered", err)
