"""Reusable Hypothesis strategies for the engine: valid playbooks and event streams.

``playbooks()`` draws a playbook as a plain dict (the YAML mapping form); ``yaml_text(d)`` renders
it, and ``compiled(d)`` loads it through the real pipeline (``carepath.loads``). Playbooks are
built from a small vocabulary so that streams hit handlers, guards, timers and clocks often:

* stages ``s0`` (initial) … ``sN`` and optionally a final stage ``end``;
* event types ``opened`` (the start event), ``e0`` … ``e3``, ``bump`` (raises priority),
  ``calm`` (lowers it) and ``done``; streams also carry ``noise`` (never mentioned);
* calendars ``office`` (Mon–Fri 09:00–12:00, 13:00–17:00) and ``evening`` (daily 18:00–22:00),
  plus the built-in ``always``;
* 1–2 SLA clocks with start/stop/pause/reset/cancel, conditional targets and ordered thresholds.

``streams(pb_dict)`` draws ``[(gap_seconds, type, data), …]`` that begin with ``opened``;
``timed(stream, t0)`` turns them into :class:`~carepath.Event` objects.

``guards=False`` / ``timers=False`` / ``signals=False`` restrict the shape (the ``transitions``
oracle needs playbooks whose stage path depends only on the event types).
"""

from __future__ import annotations

import functools
import json
import random
from datetime import datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from carepath import Event

EVENT_TYPES = ("e0", "e1", "e2", "e3", "bump", "calm", "done")
ALL_TYPES = ("opened", *EVENT_TYPES)
T0 = datetime.fromisoformat("2027-03-01T08:30:00+07:00")  # a Monday

CALENDARS = {
    "office": {"hours": {"mon-fri": ["09:00-12:00", "13:00-17:00"]}},
    "evening": {"hours": {"mon-sun": ["18:00-22:00"]}},
}

durations_short = st.sampled_from(["15m", "30m", "45m", "1h", "90m", "2h", "3h", "5h"])
durations_timer = st.sampled_from(["10m", "30m", "1h", "2h", "6h", "1d", "2d", "1bd"])


#: zalo's frequency cap: dropped or deferred when full, the receipt exempt or not (SPEC §10)
_caps = st.builds(
    lambda per, mx, mode, exempt: {"per": per, "max": mx, "mode": mode, "exempt": exempt},
    st.sampled_from(["1h", "1d", "7d"]),
    st.integers(1, 2),
    st.sampled_from(["drop", "defer"]),
    st.sampled_from([[], ["receipt"]]),
)


def _action(allow_delay: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    verbs = st.sampled_from(
        [
            {"notify": "L1"},
            {"notify": "customer"},
            {"send": "hello"},
            {"send": "hello", "channel": "zalo"},
            {"send": "receipt", "channel": "zalo"},
            {"send": "hello", "channel": "phone", "fallback": ["zalo"]},
            {"survey": "csat"},
            {"assign": "L1"},
            {"escalate": "next"},
            {"escalate": "L2"},
            {"set": {"priority": "high"}},
            {"set": {"score": 3}},
            {"task": "call", "for": "L1", "due": "1h"},
            {"emit": "ping"},
        ]
    )

    @st.composite
    def build(draw: Any) -> dict[str, Any]:
        a = dict(draw(verbs))
        if allow_delay and draw(st.booleans()):
            a["in"] = draw(st.sampled_from(["5m", "1h", "3h", "1d", "2h"]))
            if draw(st.booleans()):
                a["keep"] = True
        if draw(st.integers(0, 4)) == 0:
            a["window"] = draw(st.sampled_from(["office", "evening"]))
        return a

    return build()


def _guard(event_only: bool = False) -> st.SearchStrategy[str]:
    if event_only:
        return st.sampled_from(["event.flag", "not event.flag", "event.flag == false"])
    return st.sampled_from(
        [
            'priority == "high"',
            'priority == "low"',
            "event.flag",
            "not event.flag",
            "score >= 2",
            'segment == "hot"',
            'channel == "zalo"',
            'tier == "L1"',
        ]
    )


@st.composite
def playbooks(  # noqa: C901 - draws a whole valid playbook, section by section
    draw: Any,
    *,
    guards: bool = True,
    timers: bool = True,
    signals: bool = True,
    clocks: bool = True,
    event_guards: bool = False,
) -> dict[str, Any]:
    """A valid playbook as a dict (the YAML mapping); ``event_guards``: guards read the event only."""
    n = draw(st.integers(2, 4))
    names = [f"s{i}" for i in range(n)]
    has_final = draw(st.booleans())
    targets = names + (["end"] if has_final else [])
    stages: dict[str, Any] = {}
    for i, name in enumerate(names):
        st_def: dict[str, Any] = {}
        if i == 0:
            st_def["initial"] = True
        on: dict[str, Any] = {}
        for ev in draw(st.lists(st.sampled_from(EVENT_TYPES), max_size=4, unique=True)):
            hs: list[dict[str, Any]] = []
            k = draw(st.integers(1, 2 if guards else 1))
            for j in range(k):
                h: dict[str, Any] = {}
                if draw(st.integers(0, 3)) > 0:
                    h["to"] = draw(st.sampled_from(targets))
                if guards and (draw(st.booleans()) or j < k - 1):
                    h["when"] = draw(
                        _guard(event_guards)
                    )  # only the last of a list may be unconditional
                if ev == "bump":
                    h["set"] = {"priority": "high"}
                elif ev == "calm":
                    h["set"] = {"priority": "low"}
                if draw(st.booleans()):
                    h["do"] = draw(st.lists(_action(), max_size=2))
                hs.append(h)
            on[ev] = hs if len(hs) > 1 else hs[0]
        if on:
            st_def["on"] = on
        if draw(st.booleans()):
            st_def["enter"] = draw(st.lists(_action(), min_size=1, max_size=2))
        if draw(st.integers(0, 3)) == 0:
            st_def["exit"] = draw(st.lists(_action(), min_size=1, max_size=2))
        if timers and draw(st.booleans()):
            after = []
            for _ in range(draw(st.integers(1, 2))):
                t: dict[str, Any] = {"in": draw(durations_timer)}
                if draw(st.booleans()):
                    t["to"] = draw(st.sampled_from(targets))
                else:
                    t["do"] = draw(st.lists(_action(allow_delay=False), min_size=1, max_size=2))
                if guards and draw(st.integers(0, 3)) == 0:
                    t["when"] = 'priority == "high"'
                if draw(st.integers(0, 3)) == 0 and not t["in"].endswith(("d", "bd")):
                    t["calendar"] = "office"
                if draw(st.integers(0, 3)) == 0:
                    t["window"] = draw(st.sampled_from(["office", "evening"]))
                after.append(t)
            st_def["after"] = after
        if timers and draw(st.integers(0, 4)) == 0:
            st_def["every"] = [
                {
                    "cron": draw(st.sampled_from(["0 9 * * *", "30 10 * * MON", "0 20 1 * *"])),
                    "window": draw(st.sampled_from(["office", "evening"])),
                    "do": [{"notify": "L1"}],
                }
            ]
        stages[name] = st_def
    # every non-final stage needs a way out (CP503): give `done` a move where nothing else leaves
    for i, name in enumerate(names):
        sd = stages[name]
        outs = {
            h.get("to") if isinstance(h, dict) else h
            for hs_ in (sd.get("on") or {}).values()
            for h in (hs_ if isinstance(hs_, list) else [hs_])
        }
        outs |= {t.get("to") for t in sd.get("after", ())}
        if not (outs - {None, name}):
            sd.setdefault("on", {})["done"] = names[(i + 1) % n] if not has_final else "end"
    if has_final:
        stages["end"] = {"final": True}
    # every non-final stage needs a way out for the linter to stay calm; add `done` at the root
    root_on: dict[str, Any] = {}
    if has_final:
        root_on["done"] = "end"
    if draw(st.booleans()):
        root_on["e3"] = {"do": [{"escalate": "next"}]}
    pb: dict[str, Any] = {
        "carepath": 1,
        "id": "gen",
        "version": "1",
        "timezone": "Asia/Ho_Chi_Minh",
        "events": {
            "opened": {
                "channel": {"type": "enum", "values": ["chat", "zalo", "phone"]},
                "priority": {"type": "enum", "values": ["low", "high"], "default": "low"},
                "tz": {"type": "string", "default": ""},
            },
            "e0": {"flag": {"type": "bool", "default": False}},
            "e1": {"flag": {"type": "bool", "default": False}},
        },
        "fields": {
            "priority": {"type": "enum", "values": ["low", "high"], "default": "low"},
            "channel": {"type": "enum", "values": ["chat", "zalo", "phone"]},
            "score": {"type": "int", "default": 0},
            "customer.tz": {"type": "string"},
        },
        "customer_timezone": "customer.tz",
        # the evening in the customer's own zone, or the desk's (SPEC §10)
        "calendars": CALENDARS
        if draw(st.booleans())
        else {**CALENDARS, "evening": {**CALENDARS["evening"], "timezone": "customer"}},
        "channels": {
            "chat": {"calendar": "office"},
            "phone": {"calendar": "office"},
            "zalo": {"calendar": "always", "frequency_cap": draw(_caps)},
        },
        "segments": {"hot": 'priority == "high"', "other": "true"},
        "tiers": {"L1": {}, "L2": {}, "L3": {}},
        "templates": {"hello": {"text": "Hello"}, "receipt": {"text": "Receipt"}},
        "start": {
            "on": "opened",
            "set": {
                "channel": "=event.channel",
                "priority": "=event.priority",
                "customer.tz": "=event.tz",
            },
        },
        "stages": stages,
    }
    if draw(st.booleans()):
        pb["exit"] = (
            {"on": ["e2"]}
            if not any("e2" in (s.get("on") or {}) for s in stages.values())
            else {"on": ["noise2"]}
        )
    if clocks:
        slas: dict[str, Any] = {}
        for k in range(draw(st.integers(1, 2))):
            c: dict[str, Any] = {
                "start": {"on": "opened"}
                if k == 0
                else draw(
                    st.sampled_from([{"on": "e0"}, {"enter": names[-1]}, {"on": ["e1", "opened"]}])
                )
            }
            c["stop"] = draw(
                st.sampled_from(
                    [
                        {"on": "done"},
                        {"on": "e1"},
                        {"enter": targets[-1]},
                        {"on": "e2", "enter": names[1]},
                    ]
                )
            )
            if draw(st.booleans()):
                c["pause"] = draw(
                    st.sampled_from([{"in": [names[1]]}, {"when": 'priority == "low"'}])
                )
            if draw(st.integers(0, 2)) == 0:
                c["reset"] = {"on": "e3"}
            if draw(st.integers(0, 3)) == 0:
                c["cancel"] = {"on": "calm"}
            if draw(st.booleans()):
                c["repeat"] = True
            c["calendar"] = draw(st.sampled_from(["always", "office", "channel"]))
            tgts = []
            if draw(st.booleans()):
                tgts.append({"when": 'priority == "high"', "within": draw(durations_short)})
            last: dict[str, Any] = {
                "within": draw(st.sampled_from(["1h", "2h", "4h", "8h", "1bd", "2bd"]))
            }
            if draw(st.integers(0, 3)) == 0 and not last["within"].endswith("bd"):
                last["calendar"] = "always"
            tgts.append(last)
            c["targets"] = tgts
            ths: list[dict[str, Any]] = []
            for p in sorted(
                draw(st.lists(st.sampled_from([25, 50, 75, 90]), max_size=2, unique=True))
            ):
                ths.append({"at": f"{p}%", "do": [{"notify": "L2"}]})
            if draw(st.booleans()):
                ths.append({"at": "100%", "do": [{"escalate": "next"}]})
            if draw(st.booleans()):
                ths.append(
                    {"at": draw(st.sampled_from(["+30m", "+1h", "150%"])), "do": [{"notify": "L3"}]}
                )
            if ths:
                c["thresholds"] = ths
            slas[f"c{k}"] = c
        pb["slas"] = slas
        if signals and draw(st.booleans()):
            sig = draw(st.sampled_from(["sla.c0.breached", "sla.c0.warning", "sla.c0.met"]))
            h: dict[str, Any] = {"do": [{"escalate": "next"}]}
            if draw(st.booleans()):
                h["to"] = draw(st.sampled_from(names))
            root_on[sig] = h
    if root_on:
        pb["on"] = root_on
    return pb


def yaml_text(pb: dict[str, Any]) -> str:
    """YAML text of a playbook dict (JSON is YAML 1.2; quoting keeps `on`, times and `=` safe)."""
    return json.dumps(pb, indent=1, ensure_ascii=False)


def compiled(pb: dict[str, Any]) -> Any:
    """Load a playbook dict through the real pipeline."""
    from carepath import loads

    return loads(yaml_text(pb))


_gaps = st.one_of(
    st.sampled_from([0, 1, 60, 600, 1800, 3600, 7200, 4 * 3600]), st.integers(0, 3 * 86400)
)


_zones = st.sampled_from(["America/New_York", "Europe/Berlin", "Asia/Tokyo", "Nowhere/Atlantis"])


@st.composite
def streams(
    draw: Any, pb: dict[str, Any] | None = None, *, max_size: int = 25, noise: bool = True
) -> list[tuple[int, str, dict[str, Any]]]:
    """An event stream beginning with ``opened``: ``[(gap_seconds, type, data), …]``."""
    first = {
        "channel": draw(st.sampled_from(["chat", "zalo", "phone"])),
        "priority": draw(st.sampled_from(["low", "high"])),
    }
    if draw(st.booleans()):  # the customer's zone: two with DST, one without, one unknown
        first["tz"] = draw(_zones)
    out: list[tuple[int, str, dict[str, Any]]] = [(0, "opened", first)]
    types = [*EVENT_TYPES, "opened"] + (["noise"] if noise else [])
    for _ in range(draw(st.integers(0, max_size))):
        ty = draw(st.sampled_from(types))
        data: dict[str, Any] = {}
        if ty in ("e0", "e1") and draw(st.booleans()):
            data["flag"] = draw(st.booleans())
        if ty == "opened":
            data = {"channel": draw(st.sampled_from(["chat", "zalo", "phone"]))}
        out.append((draw(_gaps), ty, data))
    return out


def timed(
    stream: list[tuple[int, str, dict[str, Any]]], t0: datetime = T0, case: str = "C-1"
) -> list[Event]:
    """Events with cumulative instants from a stream's gaps."""
    t = t0
    evs = []
    for i, (gap, ty, data) in enumerate(stream):
        t = t + timedelta(seconds=gap)
        evs.append(Event(id=f"e{i}", type=ty, at=t, case=case, data=data))
    return evs


# ---------------------------------------------------------------------------------------------
# Driving a case through a stream (used by the property tests, the oracle test and the bench)
ADVANCE = "@advance"


def with_advances(
    stream: list[tuple[int, str, dict[str, Any]]],
) -> st.SearchStrategy[list[tuple[int, str, dict[str, Any]]]]:
    """The stream with ``@advance`` wake-ups inserted (an ``advance`` to that instant)."""
    return st.lists(st.booleans(), min_size=len(stream), max_size=len(stream)).map(
        lambda flags: [
            x
            for i, item in enumerate(stream)
            for x in (
                [item]
                if i == 0 or not flags[i]
                else [(item[0] // 2, ADVANCE, {}), (item[0] - item[0] // 2, *item[1:])]
            )
        ]
    )


def drive(
    engine: Any, events: list[Event], *, roundtrip_at: int | None = None, on_step: Any = None
) -> tuple[Any, list[dict[str, Any]], list[str]]:
    """Run ``events`` through ``engine`` as a host would; ``type == "@advance"`` means advance.

    Returns ``(final_state, action_dicts, outcomes)``; a :class:`CaseError` leaves the state as
    it was and is recorded as ``"!<ErrorName>"`` in ``outcomes``. ``on_step(before, step, event)``
    is called after every successful step.
    """
    from carepath import CaseState
    from carepath.errors import CaseError

    state = None
    actions: list[dict[str, Any]] = []
    outcomes: list[str] = []
    for i, ev in enumerate(events):
        if roundtrip_at is not None and i == roundtrip_at and state is not None:
            state = CaseState.from_json(state.to_json())
        try:
            if ev.type == ADVANCE:
                if state is None:
                    outcomes.append("-")
                    continue
                step = engine.advance(state, ev.at)
            elif state is None or state.ended:
                if not engine.opens(ev):
                    outcomes.append("-")
                    continue
                step = engine.start(ev, state)
            else:
                step = engine.handle(state, ev)
        except CaseError as e:
            outcomes.append("!" + type(e).__name__)
            continue
        if on_step is not None:
            on_step(state, step, ev)
        state = step.state
        actions.extend(a.to_dict() for a in step.actions)
        outcomes.append(state.stage)
    return state, actions, outcomes


@functools.lru_cache(maxsize=256)
def native_playbook(text: str) -> Any:
    """The playbook of generated YAML ``text`` when it loads and the native core supports it
    (:func:`carepath._native.lower` accepts it); ``None`` otherwise (the example is skipped)."""
    from carepath import loads
    from carepath._native import Unsupported, lower
    from carepath.errors import PlaybookError

    try:
        pb = loads(text)
    except PlaybookError:
        return None
    try:
        lower(pb)
    except Unsupported:
        return None
    return pb


@st.composite
def disturbed_logs(draw: Any, lines: list[str]) -> list[str]:
    """The generated log cut short, with some of: lines moved out of order, bad lines, an id
    repeated in the same case (a duplicate) or in another case, a line whose case is escaped."""
    rnd = random.Random(draw(st.integers(0, 2**32)))
    out = list(lines[: draw(st.integers(50, len(lines)))])
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["swap", "bad", "dup", "dup_other", "escaped", "no_case"]))
        i = rnd.randrange(len(out))
        if kind == "swap":
            j = rnd.randrange(len(out))
            out[i], out[j] = out[j], out[i]
        elif kind == "bad":
            out.insert(i, rnd.choice(['{"id": 1}', "not json", '{"id":"x","type":"a"}']))
        elif kind in ("dup", "dup_other"):
            obj = json.loads(out[i])
            if kind == "dup":  # the same event again, later
                out.insert(min(len(out), i + rnd.randrange(1, 20)), json.dumps(obj))
            else:  # another line takes its id
                j = rnd.randrange(len(out))
                other = json.loads(out[j])
                other["id"] = obj["id"]
                out[j] = json.dumps(other)
        elif kind == "escaped":  # the case written with an escape: the text does not show it
            obj = json.loads(out[i])
            if obj.get("case"):
                out[i] = json.dumps(obj, ensure_ascii=False).replace("T-", "T\\u002d", 1)
        else:  # a case key inside the data only
            obj = json.loads(out[i])
            obj["data"] = {**obj.get("data", {}), "case": obj.pop("case", "X")}
            out[i] = json.dumps(obj)
    return out


def retail_lines(seed: int) -> list[str]:
    """The lines of a generated retail log of ten days around Tết 2027 (a few thousand events),
    as ``carepath generate`` writes them: the shard and what-if tests disturb them."""
    import io
    from datetime import date

    from carepath.drivers.generate import generate, write_jsonl

    buf = io.StringIO()
    write_jsonl(
        generate("retail", days=10, base=30, peak=150, seed=seed, start=date(2027, 1, 22)), buf
    )
    return buf.getvalue().splitlines()
