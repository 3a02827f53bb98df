"""The core writes a state's JSON text itself (``CoreState.to_json``, issue 17): byte for byte
what ``dumps(state_dict(...))`` — the Python path, kept as the reference here — writes with
orjson, or ``None`` where only the Python path writes it exactly (``NativeState.to_json`` then
takes that path).

Generated playbooks × event streams drive the native engine, and every step's state is written
both ways; a stream's state also goes through its JSON text and back (the core then holds Python
``ClockRecord`` and ``Pending`` objects and a read-only data mapping). Generated case data —
unicode with control and astral characters, floats of every magnitude, integers up to and beyond
64 bits, nested lists and dicts, and values the core refuses (a lone surrogate, a ``Decimal``, a
non-``str`` key, a ``datetime``) — rides along a native step of the support-desk example.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from carepath import CaseState, Engine, Event, load
from carepath._instants import dumps
from carepath.errors import CarepathError
from strategies import ADVANCE, native_playbook, playbooks, streams, timed, with_advances, yaml_text

try:
    import carepath_core  # noqa: F401
except ImportError:  # pragma: no cover - depends on the machine
    if os.environ.get("CAREPATH_REQUIRE_NATIVE") == "1":
        raise
    pytest.skip("carepath-core is not installed", allow_module_level=True)

from carepath._native.backend import NativeState
from carepath._native.state_json import iso_text, state_dict

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime.fromisoformat("2027-03-01T09:00:00+07:00")  # a Monday
SETTINGS = settings(
    max_examples=int(os.environ.get("CAREPATH_EXAMPLES", "80")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def core_text(state: Any) -> str | None:
    """The core's text of a native state (``None``: the Python path writes it)."""
    assert state.__class__ is NativeState
    return state._core.to_json(state._ctx.consts, iso_text)  # type: ignore[no-any-return]


def reference(state: Any) -> tuple[str, Any]:
    """Today's Python path: ``("ok", text)`` or ``("error", exception type)``."""
    try:
        return "ok", dumps(state_dict(state, state._core, state._ctx.names))
    except Exception as exc:  # the same error must come out of to_json
        return "error", type(exc)


def check(state: Any, writable: bool = True) -> str | None:
    """The core's text equals the reference's, and ``to_json`` gives it; ``writable``: the core
    must write it (not hand it to the Python path)."""
    ref = reference(state)
    text = core_text(state)
    if writable:
        assert text is not None
    if text is not None:
        assert ref == ("ok", text)
    if ref[0] == "ok":
        assert state.to_json() == ref[1]
    else:
        with pytest.raises(ref[1]):
            state.to_json()
    return text


# -- generated playbooks and streams ------------------------------------------------------------


@SETTINGS
@given(data=st.data())
def test_every_step_of_generated_streams_is_written_as_the_python_path_writes_it(
    data: Any,
) -> None:
    d = data.draw(playbooks())
    pb = native_playbook(yaml_text(d))
    assume(pb is not None)
    stream = data.draw(streams(d).flatmap(with_advances))
    roundtrip = data.draw(st.integers(0, len(stream)))
    engine = Engine(pb, backend="native")
    state: Any = None
    for i, ev in enumerate(timed(stream)):
        if i == roundtrip and state is not None:
            # through the text and back: the next steps hold Python records and pending items
            state = CaseState.from_json(state.to_json())
        try:
            if ev.type == ADVANCE:
                if state is None:
                    continue
                step = engine.advance(state, ev.at)
            elif state is None or state.ended:
                if not engine.opens(ev):
                    continue
                step = engine.start(ev, state)
            else:
                step = engine.handle(state, ev)
        except CarepathError:
            continue
        state = step.state
        if state.__class__ is NativeState:
            check(state)
    if state is not None and state.__class__ is NativeState:
        later = engine.advance(state, state.now + timedelta(days=30)).state
        if later.__class__ is NativeState:
            check(later)


def test_the_example_log_is_written_by_the_core() -> None:
    """Every state of the support-desk log, before and after its fields are built."""
    from carepath.events import event_from_line

    pb = load(ROOT / "examples" / "vn-retail-support.yaml")
    engine = Engine(pb, backend="native")
    states: dict[str, Any] = {}
    lines = (ROOT / "examples" / "events" / "vn-retail-support.jsonl").read_text().splitlines()
    n = 0
    for line in filter(str.strip, lines):
        ev = event_from_line(line)
        key = engine.case_key(ev) or ""
        prev = states.get(key)
        try:
            step = engine.start(ev) if prev is None else engine.handle(prev, ev)
        except CarepathError:
            continue
        states[key] = step.state
        text = check(step.state)
        n += 1
        assert step.state.clocks  # the fields built: the same text
        assert step.state.to_json() == text == CaseState.to_json(step.state)
    assert n > 10


# -- generated case data ------------------------------------------------------------------------

_keys = st.text(max_size=6)
_floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, -0.0, 1e-5, 1.2345e-5, 9.99e-6, 1e-4, 1e16, 1e15, 1.5e-7, 5e-324, 1.7976931348623157e308]
)
_ints = st.integers(-(2**63), 2**64 - 1) | st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, -(2**63)])
_texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=12) | st.sampled_from(
    ["", '\x00\x1f\x7f"\\/\b\f\n\r\t', "😀𝄞", "Nguyễn Thị Mai", "\u2028\u2029\ufeff"]
)
_plain = st.none() | st.booleans() | _ints | _floats | _texts
_values = st.recursive(
    _plain,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(_keys, inner, max_size=4)
    ),
    max_leaves=20,
)
# what the core hands to the Python path (each alone in an otherwise writable data mapping)
_refused = st.sampled_from(
    [
        2**64,
        -(2**63) - 1,
        10**30,
        "a\ud800b",
        Decimal("1.5"),
        datetime(2027, 1, 1, tzinfo=UTC),
        date(2027, 1, 1),
        timedelta(seconds=90),
        {1: "x"},
        {"k": {("t",): 1}},
        frozenset({1}),
        type("Text", (str,), {})("a str subclass"),
    ]
)


@functools.cache
def _desk() -> Any:
    return Engine(load(ROOT / "examples" / "vn-retail-support.yaml"), backend="native")


def _desk_state(data: dict[str, Any]) -> Any:
    """A native state of the support desk whose core holds ``data`` (merged into the case's own
    fields, as a read-only mapping): the case opened, restored from its JSON with the data
    replaced, then stepped natively (a reply: it reads none of the extra fields)."""
    engine = _desk()
    opened = engine.start(
        Event("o-1", "case.opened", T0, "T-1", {"channel": "chat", "customer_name": "An"})
    ).state
    plain = CaseState.from_json(opened.to_json())
    plain = dataclasses.replace(plain, data=MappingProxyType({**plain.data, **data}))
    state = engine.handle(
        plain, Event("r-1", "agent.replied", T0 + timedelta(minutes=5), "T-1", {})
    ).state
    assert state.__class__ is NativeState
    return state


_DESK = _desk_state({})


def _writable(v: Any, depth: int = 1) -> bool:
    """What the core writes itself (the module documentation of ``core/src/state_json.rs``)."""
    if depth > 128:
        return False
    c = v.__class__
    if v is None or c in (bool, float):
        return True
    if c is int:
        return -(2**63) <= v < 2**64
    if c is str:
        return not any(0xD800 <= ord(ch) <= 0xDFFF for ch in v)
    if c in (list, tuple):
        return all(_writable(x, depth + 1) for x in v)
    if c in (dict, MappingProxyType):
        return all(
            k.__class__ is str and _writable(k) and _writable(x, depth + 1) for k, x in v.items()
        )
    return False


@SETTINGS
@given(data=st.dictionaries(_keys.map(lambda k: "x." + k), _values, max_size=5))
@example(data={"x.m": [MappingProxyType({"a": (1, 2.5)})]})
@example(data={"x.f": [1e-5, 1e16, -0.0, 1.5e-7, 1e-6, 123456789.125, float("nan"), float("inf")]})
@example(
    data={
        "x.n": [2**63 - 1, 2**63, 2**64 - 1, -(2**63)],
        "x.d": {"b": {"é": 1, "😀": 2, "\uffff": 3}},
    }
)
def test_generated_case_data_is_written_as_the_python_path_writes_it(data: dict[str, Any]) -> None:
    state = _desk_state(data)
    check(state, writable=_writable(data))


@SETTINGS
@given(value=_refused, others=st.dictionaries(_keys.map(lambda k: "y." + k), _values, max_size=3))
def test_what_the_core_cannot_write_exactly_goes_the_python_way(value: Any, others: Any) -> None:
    state = _desk_state({**others, "x.refused": [value]})
    assert core_text(state) is None
    check(state, writable=False)


_MAGNITUDES = [
    *(
        m * 10.0**e
        for e in range(-325, 309)
        for m in (1.0, 1.5, 9.999999999999999, 1.2345678901234567)
    ),
    *(-(2.0**e) for e in range(-1074, 1024, 7)),
    0.1 + 0.2,
    -0.0,
    5e-324,
    math.pi * 1e-5,
]


def test_floats_of_every_magnitude_are_spelled_as_orjson_spells_them() -> None:
    import orjson

    xs = [x for x in _MAGNITUDES if math.isfinite(x)]
    text = core_text(_desk_state({"x": xs}))
    assert text is not None
    assert '"x":' + orjson.dumps(xs).decode() in text


def test_random_floats_and_ties_are_spelled_as_orjson_spells_them() -> None:
    """Random bit patterns, and floats halfway between two shortest spellings (``repr`` and
    orjson take the even digit: ``562949953421312.2`` for ``2**49 + 0.25``)."""
    import random
    import struct

    import orjson

    rnd = random.Random(17)
    xs = [struct.unpack("d", struct.pack("Q", rnd.getrandbits(64)))[0] for _ in range(5000)]
    xs += [
        float(rnd.getrandbits(rnd.randint(40, 56))) + rnd.choice([0.25, 0.125, 0.5])
        for _ in range(3000)
    ]
    xs = [x for x in xs if math.isfinite(x)] + [2.0**49 + 0.25]
    text = core_text(_desk_state({"x": xs}))
    assert text is not None
    assert '"x":' + orjson.dumps(xs).decode() in text
    assert "562949953421312.2]" in text


@SETTINGS
@given(xs=st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=50))
def test_generated_floats_are_spelled_as_orjson_spells_them(xs: list[float]) -> None:
    import orjson

    text = core_text(_desk_state({"x": xs}))
    assert text is not None
    assert '"x":' + orjson.dumps(xs).decode() in text


def test_deep_nesting_goes_the_python_way() -> None:
    deep: Any = 1
    for _ in range(200):
        deep = [deep]
    state = _desk_state({"x": deep})
    assert core_text(state) is None
    check(state, writable=False)
    shallow: Any = 1
    for _ in range(100):
        shallow = {"k": shallow}
    check(_desk_state({"x": shallow}))


def test_a_core_without_the_writer_takes_the_python_path() -> None:
    state = _desk_state({"x": 1})

    class OldCore:
        def __init__(self, core: Any) -> None:
            self.core = core

        def rest(self) -> Any:
            return self.core.rest()

    text = state.to_json()
    object.__setattr__(state, "_core", OldCore(state._core))
    assert state.to_json() == text
    assert _DESK.to_json() == core_text(_DESK)


@SETTINGS
@given(
    x=st.floats(-9e9, 9e9, allow_nan=False)
    | st.integers(-(10**15), 10**15).map(lambda us: us / 1e6 + 5e-7)
    | st.integers(-(10**9), 10**9).map(lambda s: s + 0.0000015)
)
@example(x=0.0000005)
@example(x=-0.0000025)
@example(x=3600.1234565)
def test_seconds_are_read_as_a_timedelta_holds_them(x: float) -> None:
    """A history row's durations: ``timedelta(seconds=x)`` rounds the fraction's microseconds
    half to even (``_secs`` in ``state_json``); the core reproduces it."""
    from carepath_core import _timedelta_seconds

    assert _timedelta_seconds(x) == timedelta(seconds=x).total_seconds()
    assert _timedelta_seconds(float("nan")) is None
    assert _timedelta_seconds(1e10) is None
