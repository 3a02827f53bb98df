"""The engine on Apache Flink (PyFlink, local mini-cluster) against ``carepath run --clock simulated``.

Each Flink job costs seconds of start-up, so the suite runs five jobs in all:

* ``carepath flink`` on each example at parallelism 2 (one with ``--until``);
* both playbooks on the merged log at parallelism 1, with bad lines and a re-sent event;
* the merged log shuffled within the out-of-orderness bound, at parallelism 2;
* a job that fails once mid-way and restarts from its last checkpoint.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest

from carepath.cli.app import main as cli_main
from carepath.flink import available
from flink_common import (
    NAMES,
    Outcome,
    events,
    flink_outcome,
    hostile_log,
    lines_of,
    merged_log,
    playbook,
    rejected_lines,
    run_rejected,
    runtime_run,
    shuffled_within,
    with_bad_lines,
)

WHY = available()
pytestmark = [
    pytest.mark.flink,
    pytest.mark.skipif(WHY is not None, reason=f"Flink tests need PyFlink and Java: {WHY}"),
]

UNTIL = "2027-03-20T00:00:00+07:00"


def _assert_same(got: Outcome, want: Outcome) -> None:
    assert sorted(got.actions) == sorted(want.actions)  # ids and content, byte for byte
    assert len(set(got.actions)) == len(got.actions)
    assert got.states == want.states
    assert got.rejected == want.rejected


@pytest.mark.parametrize(("name", "until"), [(NAMES[0], None), (NAMES[1], UNTIL)], ids=NAMES)
def test_cli_equals_carepath_run_at_parallelism_2(
    tmp_path: Path, name: str, until: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = [
        "flink",
        playbook(name),
        "--events",
        events(name),
        "--out",
        str(out),
        "--parallelism",
        "2",
    ]
    if until:
        argv += ["--until", until]
    assert cli_main(argv) == 0
    # the summary: the start-up, then the rate over the events, then the shutdown
    n = len(lines_of(events(name)))
    summary = capsys.readouterr().err.strip().splitlines()[-1]
    m = re.fullmatch(
        rf"carepath flink: \d+ actions, \d+ cases, 0 rejected events; parallelism 2 "
        rf"\(a Python process per subtask\); "
        rf"start-up ([\d.]+) s, then {n:,} events in ([\d.]+) s \(([\d,]+) events/s\), "
        rf"shutdown ([\d.]+) s → {re.escape(str(out))}",
        summary,
    )
    assert m is not None, summary
    work = float(m[2])
    if work >= 0.5:  # rounding aside, the rate is the events over the work's seconds
        assert abs(int(m[3].replace(",", "")) - n / work) <= n / work * 0.2 + 1
    got = Outcome(
        (out / "actions.jsonl").read_text(encoding="utf-8").splitlines(),
        sorted((out / "states.jsonl").read_text(encoding="utf-8").splitlines()),
        [],
    )
    want = runtime_run(tmp_path / "rt", [playbook(name)], lines_of(events(name)), until=until)
    _assert_same(got, want)
    assert len(got.states) == len(
        {tuple(json.loads(s)["case"]) for s in got.states}
    )  # one line per case
    assert (out / "rejected.jsonl").read_text(encoding="utf-8") == ""


def test_both_playbooks_with_bad_events_at_parallelism_1(tmp_path: Path) -> None:
    from carepath.flink.job import run_lines

    lines = with_bad_lines(merged_log())
    res = run_lines(
        [playbook(n) for n in NAMES], lines, until=datetime.fromisoformat(UNTIL), parallelism=1
    )
    got = flink_outcome(res.actions, res.states, res.rejected)
    want = runtime_run(tmp_path, [playbook(n) for n in NAMES], lines, until=UNTIL)
    _assert_same(got, want)
    # the run's instants in order: called, first line in, last case handled, outputs collected
    assert res.began is not None and res.started is not None
    assert res.worked is not None and res.ended is not None
    assert res.began <= res.started <= res.worked <= res.ended
    assert res.events == len(lines)  # every line was fed (the bad ones are rejected in the job)
    assert res.workers == "process"  # a Python process per subtask, even at parallelism 1
    assert res.rate == res.events / (res.worked - res.started)
    assert res.startup_s is not None and res.shutdown_s is not None
    assert res.startup_s + res.steady_s + res.shutdown_s == pytest.approx(res.ended - res.began)
    # every bad line is in the rejected output with its reason, and the job went on past them
    assert {r for _, r in got.rejected} == {"invalid", "unknown_case"}
    assert len(got.rejected) == 5
    assert {json.loads(s)["playbook"]["id"] for s in got.states} == set(NAMES)


def test_arrival_order_within_the_bound_does_not_matter(tmp_path: Path) -> None:
    from carepath.flink.job import JobOptions, run_lines

    bound_s = 6 * 3600
    lines = merged_log()
    shuffled = shuffled_within(lines, bound_s)
    assert shuffled != lines
    res = run_lines(
        [playbook(n) for n in NAMES],
        shuffled,
        parallelism=2,
        options=JobOptions(out_of_orderness_ms=bound_s * 1000),
    )
    want = runtime_run(tmp_path, [playbook(n) for n in NAMES], lines)
    _assert_same(flink_outcome(res.actions, res.states, res.rejected), want)


def test_a_failure_restarts_from_the_last_checkpoint(tmp_path: Path) -> None:
    from carepath.flink.job import run_lines
    from carepath.flink.testing import FailOnce, attempts

    name = NAMES[0]
    lines = lines_of(events(name))
    marks = tmp_path / "marks"
    marks.mkdir()
    chk = tmp_path / "checkpoints"

    def prepare(ds):  # type: ignore[no-untyped-def]
        from pyflink.common import Types

        # one subtask, chained to the source: it sees every line, in file order
        return ds.map(
            FailOnce(str(marks), str(chk), after=3), output_type=Types.STRING()
        ).set_parallelism(1)

    # bundles of one element: a checkpoint barrier never waits behind a queue of slow lines
    res = run_lines(
        [playbook(name)],
        lines,
        parallelism=2,
        checkpoint_ms=200,
        prepare=prepare,
        restarts=2,
        restart_delay_ms=200,
        checkpoint_dir=chk.as_uri(),
        extra={"python.fn-execution.bundle.size": "1", "slot.request.timeout": "60 s"},
    )
    firsts = attempts(str(marks))
    assert (marks / "failed").exists(), "the failure was not injected"
    failed_at = lines.index((marks / "failed").read_text(encoding="utf-8"))
    assert len(firsts) == 2, "the job did not restart (or restarted more than once)"
    assert firsts[0] == lines[0]
    # the restarted job resumed from the checkpoint, not from the first line
    assert firsts[1] in lines[1 : failed_at + 1]
    want = runtime_run(tmp_path / "rt", [playbook(name)], lines)
    got = flink_outcome(res.actions, res.states, res.rejected)
    assert got.states == want.states
    assert set(got.actions) == set(want.actions)  # every action id, same content; repeats allowed
    assert got.rejected == want.rejected == []


def test_cli_rejects_a_non_utf8_or_over_long_line_alone_as_run_does(tmp_path: Path) -> None:
    log = hostile_log(tmp_path / "events.jsonl")
    pbs = [playbook(n) for n in NAMES]
    out = tmp_path / "out"
    assert cli_main(["flink", *pbs, "--events", str(log), "--out", str(out), "-q"]) == 0
    got = (out / "rejected.jsonl").read_text(encoding="utf-8").splitlines()
    # the two bad lines are rejected, located, as `carepath run` records them
    assert rejected_lines(got) == run_rejected(tmp_path / "rt", pbs, log)
    refused = [m for e, _, m in rejected_lines(got) if '"raw"' in e]
    assert len(refused) == 2 and all(m.startswith("line ") for m in refused)
    # and the rest ran: the same cases as the clean log
    states = sorted((out / "states.jsonl").read_text(encoding="utf-8").splitlines())
    assert states == runtime_run(tmp_path / "clean", pbs, merged_log()).states


def test_python_workers_keep_a_choice_made_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from carepath.flink import job

    monkeypatch.setattr(job, "_USER_WORKERS", None)
    monkeypatch.delenv(job.WORKERS_VAR, raising=False)
    assert job.python_workers("process") == "process"
    assert job.python_workers("loopback") == "loopback"
    assert job.os.environ[job.WORKERS_VAR] == "loopback"
    monkeypatch.setattr(job, "_USER_WORKERS", "process")  # the user's own, at start
    assert job.python_workers("loopback") == "process"


def test_an_erase_control_line_erases_keyed_state_as_the_reference_does() -> None:
    """SPEC §10: an ``erase`` control line nulls the case's ``pii`` values in keyed state, in the
    event-time order of its events; the case goes on (T-1007 is erased just after it opens, then
    replied to, solved, reopened), its clocks untouched; a malformed control line is rejected."""
    from carepath import load
    from carepath.flink.job import run_lines
    from carepath.flink.reference import run_reference

    pbs = [playbook(n) for n in NAMES]
    lines = merged_log()
    i = next(k for k, ln in enumerate(lines) if json.loads(ln)["id"] == "vr-0004")  # T-1007 opens
    after = json.loads(lines[i + 1])["at"]
    last = max(json.loads(ln)["at"] for ln in lines[-3:])

    def erase(case: str, at: str, **more: str) -> str:
        return json.dumps({"control": "erase", "case": case, "at": at, **more})

    controlled = [
        *lines[: i + 1],
        erase("T-1007", after, playbook=NAMES[0]),
        *lines[i + 1 :],
        erase("T-1001", last),
        erase("T-1001", last, field="customer.name"),  # not on Flink: rejected, named
    ]
    res = run_lines(pbs, controlled, parallelism=2)
    got = flink_outcome(res.actions, res.states, res.rejected)
    ref = run_reference([load(p) for p in pbs], controlled)
    want = flink_outcome(ref.actions, ref.state_lines(), ref.rejected)
    _assert_same(got, want)
    plain = run_reference([load(p) for p in pbs], lines)
    assert got.states != sorted(plain.state_lines())
    assert len(got.rejected) == 1 and "unknown member(s) field" in res.rejected[0]
    by_key = {
        (json.loads(s)["playbook"]["id"], json.loads(s)["case"]): json.loads(s) for s in got.states
    }
    pii = load(pbs[0]).pii_fields
    for case in ("T-1001", "T-1007"):
        state = by_key[(NAMES[0], case)]
        assert all(state["data"].get(f) is None for f in pii), state["data"]
        before = plain.states[(NAMES[0], case)].to_dict()
        assert before["data"].get("customer.name")  # there was a name to erase
        assert {k: v for k, v in state.items() if k != "data"} == {
            k: v for k, v in before.items() if k != "data"
        }
