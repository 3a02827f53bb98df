"""The engine's output, pinned: every step of the example logs and of a generated log.

Each golden file (``tests/golden/engine-*.txt``) holds a SHA-256 over every step's output (the
routing decision, the new state's JSON, the actions, signals, deadlines and trace) and, readable
below it, the final state of every case. Any change of behaviour or of the JSON format shows up
here; a performance change must leave these files alone. When a change of behaviour is intended,
regenerate them with ``CAREPATH_UPDATE_GOLDEN=1 pytest tests/engine/test_engine_golden.py`` and review
the diff.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from carepath import Engine, Event, load
from carepath.drivers.generate import generate
from carepath.engine.router import route

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def _events(name: str, kind: str) -> list[Event]:
    lines = (
        (ROOT / "examples" / "events" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    )
    evs = [Event.from_dict(json.loads(x)) for x in lines if x.strip()]
    evs += [Event.from_dict(d) for d in generate(kind, days=4, base=60.0, seed=11, max_events=500)]
    return sorted(evs, key=lambda e: e.at)


def _run(name: str, kind: str) -> str:
    engine = Engine(load(ROOT / "examples" / f"{name}.yaml"))
    digest = hashlib.sha256()
    states = {}
    for e in _events(name, kind):
        key = engine.case_key(e)
        r = route(engine, states.get(key), e)
        out: list[object] = [e.id, r.status, r.reason]
        if r.step is not None:
            st = r.step
            states[st.state.case] = st.state
            out += [
                st.state.to_json(),
                [a.to_dict() for a in st.actions],
                [s.to_dict() for s in st.signals],
                [d.to_dict() for d in st.deadlines],
                st.trace,
            ]
        digest.update(json.dumps(out, sort_keys=True, default=str).encode())
    finals = "\n".join(states[k].to_json() for k in sorted(states))
    return f"sha256 {digest.hexdigest()}\n{finals}\n"


@pytest.mark.parametrize(
    ("name", "kind"), [("vn-retail-support", "retail"), ("omnichannel-journey", "journey")]
)
def test_engine_output_is_pinned(name: str, kind: str) -> None:
    path = GOLDEN / f"engine-{name}.txt"
    got = _run(name, kind)
    if os.environ.get("CAREPATH_UPDATE_GOLDEN"):
        path.write_text(got, encoding="utf-8")
    want = path.read_text(encoding="utf-8")
    # compare the readable part first, so a difference in a final state prints as a diff
    assert got.split("\n", 1)[1] == want.split("\n", 1)[1]
    assert got.split("\n", 1)[0] == want.split("\n", 1)[0], (
        "an intermediate step changed (the final states did not)"
    )
