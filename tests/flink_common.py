"""Shared helpers for the Flink tests: the example logs, a merged log with bad lines, and
``carepath run --clock simulated`` on a temporary SQLite store as the oracle."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from carepath.cli.app import main as cli_main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
NAMES = ["vn-retail-support", "omnichannel-journey"]


def playbook(name: str) -> str:
    return str(EXAMPLES / f"{name}.yaml")


def events(name: str) -> str:
    return str(EXAMPLES / "events" / f"{name}.jsonl")


def lines_of(path: str) -> list[str]:
    return [s for s in Path(path).read_text(encoding="utf-8").splitlines() if s.strip()]


def merged_log() -> list[str]:
    """Both example logs in one, in time order (stable)."""
    from carepath.flink.core import micros, parse_line

    all_lines = [ln for n in NAMES for ln in lines_of(events(n))]
    return sorted(all_lines, key=lambda ln: micros(parse_line(ln)[0].at))  # type: ignore[union-attr]


BAD = {
    "not-json": "{oops this is not json",
    "no-at": json.dumps({"id": "bad-no-at", "type": "agent.replied", "case": "T-1001", "data": {}}),
    "no-type": json.dumps(
        {"id": "bad-no-type", "at": "2027-02-01T10:00:00+07:00", "case": "T-1001"}
    ),
    "naive-at": json.dumps(
        {"id": "bad-naive", "type": "agent.replied", "at": "2027-02-01T10:00:00", "case": "T-1001"}
    ),
    "unknown-case": json.dumps(
        {
            "id": "bad-unknown",
            "type": "agent.replied",
            "at": "2027-02-03T10:00:00+07:00",
            "case": "T-9999",
            "data": {"agent": "ag.linh"},
        }
    ),
}


def with_bad_lines(lines: list[str]) -> list[str]:
    """``lines`` with the :data:`BAD` lines spread through, plus one duplicated event."""
    out = list(lines)
    step = max(1, len(out) // (len(BAD) + 2))
    for k, bad in enumerate(BAD.values()):
        out.insert((k + 1) * step, bad)
    out.insert(len(out) // 2, lines[3])  # a re-sent event: a duplicate by id
    return out


def shuffled_within(lines: list[str], bound_s: float, seed: int = 7) -> list[str]:
    """An arrival order where no event comes more than ``bound_s`` after a later one: sort by
    ``at + U(0, bound)`` (events at the same instant keep their order)."""
    from carepath.flink.core import micros, parse_line

    rng = random.Random(seed)
    jitter: dict[int, float] = {}
    keyed = []
    for i, ln in enumerate(lines):
        ev = parse_line(ln)[0]
        if ev is None:
            keyed.append((float("-inf"), i, ln))
            continue
        us = micros(ev.at)
        j = jitter.setdefault(us, rng.uniform(0, bound_s))
        keyed.append((us / 1e6 + j, i, ln))
    return [ln for _, _, ln in sorted(keyed)]


@dataclass
class Outcome:
    actions: list[str]  # raw lines
    states: list[str]  # CaseState.to_json(), sorted
    rejected: list[tuple[str, str]]  # (event id or raw text, reason), sorted

    def action_objects(self) -> list[str]:
        return sorted(json.dumps(json.loads(a), sort_keys=True) for a in self.actions)


def event_ref(ev: object) -> str:
    if isinstance(ev, dict):
        return str(ev.get("id", json.dumps(ev, sort_keys=True)))
    return str(ev)


def runtime_run(
    tmp: Path, playbooks: list[str], lines: list[str], until: str | None = None
) -> Outcome:
    """``carepath run --clock simulated`` on a fresh SQLite store."""
    from carepath.runtime import open_store

    tmp.mkdir(parents=True, exist_ok=True)
    ev = tmp / "events.jsonl"
    ev.write_text("\n".join(lines) + "\n", encoding="utf-8")
    db = tmp / "cases.db"
    acts = tmp / "actions.jsonl"
    argv = [
        "run",
        *playbooks,
        "--store",
        f"sqlite:///{db}",
        "--events",
        str(ev),
        "--clock",
        "simulated",
        "--actions",
        str(acts),
        "--quiet",
    ]
    if until:
        argv += ["--until", until]
    code = cli_main(argv)
    assert code in (0, 1), code
    store = open_store(f"sqlite:///{db}")
    try:
        states = sorted(s.to_json() for s in store.cases())
        rejected = sorted(
            (
                event_ref(r["event"] if isinstance(r, dict) else r.event),
                r["reason"] if isinstance(r, dict) else r.reason,
            )
            for r in store.rejected()
        )
    finally:
        store.close()
    return Outcome(
        acts.read_text(encoding="utf-8").splitlines() if acts.exists() else [], states, rejected
    )


def flink_outcome(actions: list[str], states: list[str], rejected: list[str]) -> Outcome:
    rej = sorted((event_ref(json.loads(r)["event"]), json.loads(r)["reason"]) for r in rejected)
    return Outcome(list(actions), sorted(states), rej)


def hostile_log(path: Path) -> Path:
    """:func:`merged_log` written as bytes with one line that is not UTF-8 and one line over the
    event size limit spread through it (issue 15 #1/#2: each costs only itself)."""
    from carepath.events import MAX_EVENT_BYTES

    data = [line.encode("utf-8") for line in merged_log()]
    data.insert(len(data) // 3, b'{"id": "bad-\xff-byte", "type": "agent.replied"}')
    data.insert(2 * len(data) // 3, b'{"id": "' + b"x" * (MAX_EVENT_BYTES + 10) + b'"}')
    path.write_bytes(b"\n".join(data) + b"\n")
    return path


def run_rejected(tmp: Path, playbooks: list[str], events_file: Path) -> list[tuple[str, str, str]]:
    """``(event, reason, message)`` of every rejection ``carepath run --clock simulated`` records
    for ``events_file``, sorted (``event`` as canonical JSON)."""
    from carepath.runtime import open_store

    tmp.mkdir(parents=True, exist_ok=True)
    db = tmp / "cases.db"
    argv = ["run", *playbooks, "--store", f"sqlite:///{db}", "--events", str(events_file)]
    assert cli_main([*argv, "--clock", "simulated", "--quiet"]) in (0, 1)
    store = open_store(f"sqlite:///{db}")
    try:
        return sorted(
            (json.dumps(r.event, sort_keys=True), r.reason, r.message) for r in store.rejected()
        )
    finally:
        store.close()


def rejected_lines(lines: list[str]) -> list[tuple[str, str, str]]:
    """The same for the rejected output of the Flink job (or of the reference run)."""
    out = []
    for line in lines:
        d = json.loads(line)
        out.append((json.dumps(d["event"], sort_keys=True), d["reason"], d["message"]))
    return sorted(out)
