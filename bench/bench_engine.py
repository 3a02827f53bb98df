"""Engine throughput, memory and state size on the support-desk example (issue 4, Performance).

    .venv/bin/python bench/bench_engine.py [--cases 3000] [--profile]

Prints, measured in this one process:
* events/s of ``Engine.start``/``handle`` over a realistic multi-case stream (all three SLA clocks
  running, thresholds, retargets, pauses, timers), next to a bare ``transitions`` dispatch of the
  same event sequence on one shared ``Machine`` with one model per case (``add_model``), and the
  ratio (the issue aims at ≥ 2×);
* memory per in-flight case (tracemalloc over N live states) and the JSON size of a typical state;
* CPU per state of its JSON text: ``to_json`` (written by the core, issue 17) next to the Python
  path it replaces (``dumps(state_dict(...))``), and with ``--against REV`` the revision's;
* with ``--profile``, the top functions by own time (cProfile).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import random
import sys
import time
import tracemalloc
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from _revision import import_revision  # noqa: E402

from carepath import CaseState, Engine, Event, load  # noqa: E402

CHANNELS = ["phone", "email", "chat", "facebook", "zalo", "chatbot"]
PRIORITIES = ["low", "normal", "normal", "normal", "high", "urgent"]
TIERS = ["standard"] * 8 + ["gold", "vip"]


def stream(n_cases: int, seed: int = 7) -> list[Event]:
    """A realistic interleaved stream: open, replies, waits on the customer, solves, surveys."""
    rnd = random.Random(seed)
    t0 = datetime.fromisoformat("2027-03-01T08:00:00+07:00")
    evs: list[tuple[datetime, int, Event]] = []
    k = 0

    def add(t: datetime, type_: str, case: str, **data: Any) -> None:
        nonlocal k
        k += 1
        evs.append((t, k, Event(id=f"b{k}", type=type_, at=t, case=case, data=data)))

    for i in range(n_cases):
        case = f"T-{i}"
        t = t0 + timedelta(seconds=rnd.randint(0, 5 * 86400))
        add(
            t,
            "case.opened",
            case,
            channel=rnd.choice(CHANNELS),
            priority=rnd.choice(PRIORITIES),
            customer_tier=rnd.choice(TIERS),
            customer_age=rnd.choice([0, 0, 0, 35, 70]),
        )
        t += timedelta(minutes=rnd.randint(1, 180))
        add(t, "agent.replied", case, needs_customer=rnd.random() < 0.4)
        for _ in range(rnd.randint(0, 3)):
            t += timedelta(minutes=rnd.randint(5, 600))
            add(t, "customer.replied", case)
            if rnd.random() < 0.2:
                t += timedelta(minutes=rnd.randint(1, 30))
                add(t, "case.priority_changed", case, priority=rnd.choice(PRIORITIES))
            t += timedelta(minutes=rnd.randint(1, 240))
            add(t, "agent.replied", case, needs_customer=rnd.random() < 0.3)
        t += timedelta(minutes=rnd.randint(5, 600))
        add(t, "case.solved", case)
        t += timedelta(hours=rnd.randint(1, 30))
        add(t, "survey.answered", case, survey="csat", score=rnd.randint(1, 5))
        if rnd.random() < 0.1:
            t += timedelta(hours=rnd.randint(1, 48))
            add(t, "case.reopened", case)
    evs.sort(key=lambda x: (x[0], x[1]))
    return [e for _, _, e in evs]


def run_engine(subject: Engine, events: list[Event]) -> dict[str, CaseState]:
    states: dict[str, CaseState] = {}
    get = states.get
    for e in events:
        s = get(e.case)  # type: ignore[arg-type]
        step = subject.start(e, s) if s is None or s.ended else subject.handle(s, e)
        states[e.case] = step.state  # type: ignore[index]
    return states


def bare_transitions(pb: Any, events: list[Event]) -> tuple[float, float]:
    """(dispatch seconds, model-creation seconds) on one shared Machine, one model per case."""
    from transitions import Machine

    trans = []
    for name, st in pb.stages.items():
        if st.final:
            continue
        for trig, hs in list(st.on.items()) + list(pb.on.items()):
            for h in hs[:1]:
                trans.append({"trigger": trig, "source": name, "dest": h.to})
    m = Machine(
        model=None,
        states=list(pb.stages),
        transitions=trans,
        initial=pb.initial,
        auto_transitions=False,
        ignore_invalid_triggers=True,
    )

    class Case:
        pass

    cases = {e.case for e in events}
    t = time.perf_counter()
    models = {}
    for c in cases:
        obj = Case()
        m.add_model(obj)
        models[c] = obj
    created = time.perf_counter() - t
    pairs = [(models[e.case], e.type) for e in events]
    gc.collect()
    t = time.perf_counter()
    for model, ty in pairs:
        model.trigger(ty)
    return time.perf_counter() - t, created


def memory_per_case(subject: Engine, n: int = 2000) -> float:
    t0 = datetime.fromisoformat("2027-03-01T09:00:00+07:00")
    opened = [
        Event(id=f"m{i}", type="case.opened", at=t0, case=f"M-{i}", data={"channel": "email"})
        for i in range(n)
    ]
    replied = [
        Event(
            id=f"r{i}", type="agent.replied", at=t0 + timedelta(minutes=20), case=f"M-{i}", data={}
        )
        for i in range(n)
    ]
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.take_snapshot()
    keep = [
        subject.handle(subject.start(o).state, r).state
        for o, r in zip(opened, replied, strict=True)
    ]
    gc.collect()
    snap = tracemalloc.take_snapshot()
    tracemalloc.stop()
    size = sum(st.size_diff for st in snap.compare_to(base, "filename"))
    assert len(keep) == n
    return size / n


def against(rev: str, events: list[Event], repeat: int, rate: float) -> None:
    """Time the engine of git revision ``rev`` on the same events, in this process, with its own
    native core (``bench/_revision.py``)."""
    old = import_revision(rev)
    subject = old.Engine(old.load(ROOT / "examples" / "vn-retail-support.yaml"), trace=False)
    evs = [old.Event(id=e.id, type=e.type, at=e.at, case=e.case, data=dict(e.data)) for e in events]
    run_engine(subject, evs[:2000])
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        run_engine(subject, evs)
        best = min(best, time.perf_counter() - t)
    then = len(events) / best
    print(
        f"engine at {rev:<12}: {then:12,.0f} events/s  ({best * 1e6 / len(events):.1f} µs/event); "
        f"now / then = {rate / then:.2f}×"
    )


def step_states(subject: Any, events: list[Event]) -> list[Any]:
    """The state of every step of ``events``, as a store gets them to save (not written yet)."""
    states: dict[str, Any] = {}
    out = []
    for e in events:
        s = states.get(e.case)  # type: ignore[arg-type]
        step = subject.start(e, s) if s is None or s.ended else subject.handle(s, e)
        states[e.case] = step.state  # type: ignore[index]
        out.append(step.state)
    return out


def _cpu_per_state(write: Any, states: list[Any], repeat: int, forget: Any) -> float:
    """Best CPU µs per state of ``write(states)``; ``forget()`` empties the ISO text cache first
    (a store writes each state once: its ``now`` is a new instant)."""
    best = float("inf")
    for _ in range(repeat):
        forget()
        gc.collect()
        t = time.process_time()
        write(states)
        best = min(best, time.process_time() - t)
    return best * 1e6 / len(states)


def state_text(subject: Any, events: list[Event], repeat: int, rev: str | None) -> None:
    """CPU per state of its JSON text (issue 17): ``to_json`` (the core writes it), the Python
    path it replaces (``dumps(state_dict(...))``), and with ``--against`` the revision's
    ``to_json`` on its own states."""
    from carepath._instants import dumps
    from carepath._native import state_json

    states = step_states(subject, events)
    forget = state_json._ISO.clear

    def core(ss: list[Any]) -> None:
        for s in ss:
            s.to_json()

    def python(ss: list[Any]) -> None:
        for s in ss:
            dumps(state_json.state_dict(s, s._core, s._ctx.names))

    now = _cpu_per_state(core, states, repeat, forget)
    ref = _cpu_per_state(python, states, repeat, forget)
    print(
        f"state text          : {now:8.2f} µs CPU/state to_json (core), {ref:.2f} µs the Python "
        f"path (dumps(state_dict)), {ref / now:.2f}×; {len(states):,} states"
    )
    if rev:
        old = import_revision(rev)
        osub = old.Engine(old.load(ROOT / "examples" / "vn-retail-support.yaml"), trace=False)
        evs = [
            old.Event(id=e.id, type=e.type, at=e.at, case=e.case, data=dict(e.data)) for e in events
        ]
        ostates = step_states(osub, evs)
        oforget = getattr(getattr(old._native, "state_json", None), "_ISO", {}).clear
        then = _cpu_per_state(core, ostates, repeat, oforget)
        print(f"  to_json at {rev:<8}: {then:8.2f} µs CPU/state; then / now = {then / now:.2f}×")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=3000)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--against", metavar="REV", help="also time the engine of git revision REV, in this process"
    )
    args = ap.parse_args()

    pb = load(ROOT / "examples" / "vn-retail-support.yaml")
    subject = Engine(pb, trace=False)  # the hot-loop mode runtimes and replays use
    traced = Engine(pb)  # the default: every step also records its explanation
    events = stream(args.cases)
    print(f"stream: {len(events)} events over {args.cases} cases")
    run_engine(subject, events[:2000])  # warm caches

    best = tbest_traced = float("inf")
    states: dict[str, CaseState] = {}
    for _ in range(args.repeat):
        gc.collect()
        t = time.perf_counter()
        states = run_engine(subject, events)
        best = min(best, time.perf_counter() - t)
        gc.collect()
        t = time.perf_counter()
        run_engine(traced, events)
        tbest_traced = min(tbest_traced, time.perf_counter() - t)
    rate = len(events) / best

    tbest, created = float("inf"), 0.0
    for _ in range(args.repeat):
        d, created = bare_transitions(pb, events)
        tbest = min(tbest, d)
    trate = len(events) / tbest
    print(
        f"carepath engine     : {rate:12,.0f} events/s  ({best * 1e6 / len(events):.1f} µs/event; trace=False)"
    )
    print(
        f"  with traces       : {len(events) / tbest_traced:12,.0f} events/s  "
        f"({tbest_traced * 1e6 / len(events):.1f} µs/event; the default trace=True)"
    )
    print(
        f"transitions (bare)  : {trate:12,.0f} events/s  ({tbest * 1e6 / len(events):.2f} µs/event; "
        f"add_model {created * 1e6 / args.cases:.0f} µs/case)"
    )
    print(f"ratio engine/transitions: {rate / trate:.3f}  (aim ≥ 2)")

    per_case = memory_per_case(subject)
    typical = next(s for s in states.values() if s.stage == "solved")
    js = typical.to_json()
    open_case = subject.handle(
        subject.start(events[0]).state,
        Event(
            id="x",
            type="agent.replied",
            at=events[0].at + timedelta(minutes=5),
            case=events[0].case,
        ),
    ).state
    print(f"memory per in-flight case: {per_case:,.0f} B  (aim ≤ 2 KB)")
    print(
        f"JSON state: {len(js.encode()):,} B solved case, {len(open_case.to_json().encode()):,} B open case  "
        f"(aim ≤ 1 KB)"
    )
    sizes = sorted(len(s.to_json().encode()) for s in states.values())
    print(
        f"JSON state of every case at the end of the stream: median {sizes[len(sizes) // 2]:,} B, "
        f"p90 {sizes[int(len(sizes) * 0.9)]:,} B, max {sizes[-1]:,} B"
    )

    if args.against:
        against(args.against, events, args.repeat, rate)
    state_text(subject, events, args.repeat, args.against)

    if args.profile:
        pr = cProfile.Profile()
        pr.enable()
        run_engine(subject, events)
        pr.disable()
        pstats.Stats(pr).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
