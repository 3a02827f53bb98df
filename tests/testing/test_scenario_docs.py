"""docs/tutorial.md and docs/testing.md stay true: their files validate, simulate, test and draw."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from carepath.cli.app import main
from carepath.testing.harness import CaseDriver, run_scenario

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = (ROOT / "docs" / "tutorial.md").read_text(encoding="utf-8")
TESTING = (ROOT / "docs" / "testing.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"```(\w+) file=(\S+)\n(.*?)```", re.S)


def test_tutorial_walkthrough(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = BLOCK.findall(TUTORIAL)
    assert [b[1] for b in blocks] == [
        "helpdesk.yaml",
        "helpdesk.yaml",
        "events.jsonl",
        "helpdesk.test.yaml",
    ]
    # step 1: the typo is reported, then fixed the "forgotten customer" warnings remain
    Path("helpdesk.yaml").write_text(blocks[0][2], encoding="utf-8")
    assert main(["validate", "helpdesk.yaml"]) == 1
    out, _ = capsys.readouterr()
    assert "error CP301: unknown stage 'opn'" in out and "did you mean 'open'?" in out
    Path("helpdesk.yaml").write_text(blocks[0][2].replace(": opn", ": open"), encoding="utf-8")
    assert main(["validate", "helpdesk.yaml"]) == 0
    out, _ = capsys.readouterr()
    assert "warning CP602" in out
    # steps 2–5
    for _, name, text in blocks[1:]:
        Path(name).write_text(text, encoding="utf-8")
    assert main(["validate", "--strict", "helpdesk.yaml"]) == 0
    capsys.readouterr()
    assert (
        main(
            [
                "simulate",
                "helpdesk.yaml",
                "events.jsonl",
                "--until",
                "2027-03-10",
                "--color",
                "never",
            ]
        )
        == 0
    )
    out, _ = capsys.readouterr()
    for line in (
        "2027-03-01 09:45:00  T-2       ⏰ wake-up  new",
        "                               tier      L2 (was L1)",
        "2027-03-01 10:10:00  T-1       agent.replied [e3]  new → waiting",
    ):
        assert line in out
    assert main(["test", ".", "--color", "never"]) == 0
    out, _ = capsys.readouterr()
    assert "4 scenario(s): 4 passed, 0 failed in 1 file(s)" in out
    assert main(["graph", "helpdesk.yaml"]) == 0
    out, _ = capsys.readouterr()
    mermaid_doc = TUTORIAL.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert mermaid_doc.strip() in out
    # step 6: the pytest example
    case = CaseDriver("helpdesk.yaml", start="2027-03-01 09:00", case="T-1")
    case.send("case.opened", data={"channel": "chat"})
    case.advance(minutes=15)
    assert (
        case.tier == "L2"
        and case.clock("first_response").breached
        and "escalate" in case.action_types()
    )


def test_testing_doc_examples() -> None:
    support = str(ROOT / "examples" / "vn-retail-support.yaml")
    case = CaseDriver(support, start="2027-02-28 23:00", case="T-1")
    case.send("case.opened", data={"channel": "zalo", "customer_tier": "vip"})
    assert case.tier == "L2"
    assert case.clock("first_response").due.isoformat() == "2027-02-28T23:10:00+07:00"  # type: ignore[union-attr]
    case.advance(minutes=10)
    assert case.clock("first_response").breached
    assert "sla.first_response.breached" in case.signal_types()
    run_scenario(
        support,
        [
            {"event": "case.opened", "data": {"channel": "email"}},
            {"event": "agent.replied", "at": "+30m"},
            {"expect": {"stage": "open", "clocks": {"first_response": "met"}}},
        ],
        start="2027-03-01 09:00",
    )
    assert 'run_scenario("playbooks/support.yaml"' in TESTING
