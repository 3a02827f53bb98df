"""The core's business-time calendar and expression VM against the Python reference.

Differential properties: the Rust calendar (``carepath_core._Calendar`` over
``lower_calendar(cal)``) gives the reference :class:`~carepath.calendar.Calendar`'s results —
``add_s``/``subtract_s``/``elapsed_s``/``is_open_s``/``next_open_s``/``add_days_s`` and the
datetime API's microsecond arithmetic — on the example playbooks' calendars and on generated ones
(DST zones, holidays, overrides, calendars with no open time for years); and the VM
(``carepath_core._expr_eval`` over ``lower_expr(expr)``) gives ``Expr.fn``'s value, same type and
all, over generated expressions and scopes, or defers to it (``("fallback", why)``). Skipped when
the core is not built.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import carepath
from carepath._instants import round_micros
from carepath.calendar import Calendar
from carepath.errors import ExpressionError
from carepath.expr.compiler import Expr, FieldType, TypeEnv, compile_expr

cc = pytest.importorskip("carepath_core")
if not hasattr(cc, "_Calendar") or not hasattr(cc, "_expr_eval"):  # pragma: no cover
    pytest.skip(
        "carepath_core was built without the calendar/VM test exposure", allow_module_level=True
    )

from carepath._native.lower_calendar import lower_calendar  # noqa: E402
from carepath._native.lower_expr import Unsupported, lower_expr, supported  # noqa: E402

EXAMPLES = sorted(Path(__file__).resolve().parents[2].joinpath("examples").glob("*.yaml"))
EXAMPLES = [p for p in EXAMPLES if not p.name.endswith(".test.yaml")]


def _native(cal: Calendar) -> Any:
    return cc._Calendar(lower_calendar(cal))


def _outcome(f: Any, *args: Any) -> Any:
    try:
        return ("ok", f(*args))
    except Exception as e:  # the same exception type and message, or the same value
        return ("raise", type(e).__name__, str(e))


def _walk_exprs(obj: Any, seen: set[int], out: list[Expr]) -> None:
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, Expr):
        out.append(obj)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            _walk_exprs(getattr(obj, f.name, None), seen, out)
    elif isinstance(obj, Mapping):
        for v in obj.values():
            _walk_exprs(v, seen, out)
    elif isinstance(obj, list | tuple | set | frozenset):
        for v in obj:
            _walk_exprs(v, seen, out)


_PLAYBOOKS = {p.stem: carepath.load(p) for p in EXAMPLES}
EXAMPLE_CALENDARS = [
    (f"{n}:{c}", cal) for n, pb in _PLAYBOOKS.items() for c, cal in pb.calendars.items()
]
EXAMPLE_EXPRS: list[Expr] = []
for _pb in _PLAYBOOKS.values():
    _walk_exprs(_pb, set(), EXAMPLE_EXPRS)


# -- calendars ---------------------------------------------------------------------------------------

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Ho_Chi_Minh",
    "Australia/Lord_Howe",
    "America/Sao_Paulo",
    "Pacific/Chatham",
    "Europe/London",
]
DAY_SETS = ["mon-fri", "sat", "sun", "mon,wed,fri", "tue-thu", "sat,sun", "mon-sun", "fri-mon"]
HOURS = [
    ["09:00-17:00"],
    ["08:00-12:00", "13:00-17:30"],
    ["00:00-24:00"],
    ["22:00-02:00"],
    ["01:30-03:30"],
    ["10:00-10:00"],
    ["06:15:30-07:45"],
    ["12:00-13:00", "18:00-23:59"],
]


@st.composite
def calendar_specs(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {"timezone": draw(st.sampled_from(ZONES))}
    keys = draw(st.lists(st.sampled_from(DAY_SETS), min_size=1, max_size=3, unique=True))
    spec["hours"] = {k: draw(st.sampled_from(HOURS)) for k in keys}
    days = st.dates(date(2025, 1, 1), date(2028, 12, 31))
    hol: list[Any] = [d.isoformat() for d in draw(st.lists(days, max_size=6))]
    if draw(st.booleans()):
        a = draw(days)
        hol.append(
            {
                "from": a.isoformat(),
                "to": (a + timedelta(days=draw(st.integers(0, 800)))).isoformat(),
            }
        )
    if draw(st.integers(0, 5)) == 0:
        hol.append({"country": draw(st.sampled_from(["VN", "US", "DE"]))})
    if hol:
        spec["holidays"] = hol
    over = draw(
        st.dictionaries(days, st.sampled_from([[], ["10:00-14:00"], ["23:00-01:00"]]), max_size=4)
    )
    if over:
        spec["overrides"] = {d.isoformat(): v for d, v in over.items()}
    assume(not Calendar.validate_dict(spec))
    return spec


T_LO = datetime(2024, 6, 1, tzinfo=UTC).timestamp()
T_HI = datetime(2029, 6, 1, tzinfo=UTC).timestamp()
instants_us = st.integers(int(T_LO * 1e6), int(T_HI * 1e6))
#: Seconds on a coarse binary grid (as the engine's durations and remainders are): the reference's
#: float arithmetic is exact on them, so results must be identical to the bit.
seconds = st.builds(
    lambda s, k: s + k / 1024, st.integers(-40 * 86400, 40 * 86400), st.integers(0, 1023)
)


def _check_s(ref: Calendar, nat: Any, t_us: int, secs: float, n: int) -> None:
    t = t_us / 1e6
    for name, args in [
        ("is_open_s", (t,)),
        ("next_open_s", (t,)),
        ("add_s", (t, secs)),
        ("subtract_s", (t, secs)),
        ("elapsed_s", (t, t + secs)),
        ("add_days_s", (t, n)),
        ("add_s", (t, 0.0)),
    ]:
        want = _outcome(getattr(ref, name), *args)
        got = _outcome(getattr(nat, name), *args)
        assert got == want, (name, args)


def _check_us(ref: Calendar, nat: Any, t_us: int, d_us: int) -> None:
    if d_us > 0:
        assert _outcome(nat._add_us, t_us, d_us) == _outcome(ref._add_us, t_us, d_us)
        assert _outcome(nat._sub_us, t_us, d_us) == _outcome(ref._sub_us, t_us, d_us)
    a = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=t_us)
    b = a + timedelta(microseconds=d_us)
    want = _outcome(lambda: ref.elapsed(a, b) // timedelta(microseconds=1))
    assert _outcome(nat._elapsed_us, t_us, t_us + d_us) == want


@pytest.mark.parametrize("name,cal", EXAMPLE_CALENDARS, ids=[n for n, _ in EXAMPLE_CALENDARS])
@settings(max_examples=150)
@given(t_us=instants_us, secs=seconds, n=st.integers(-12, 12), d_us=st.integers(-(10**12), 10**12))
def test_example_calendars_match_the_reference(
    name: str, cal: Calendar, t_us: int, secs: float, n: int, d_us: int
) -> None:
    nat = _native(cal)
    _check_s(cal, nat, t_us, secs, n)
    _check_us(cal, nat, t_us, d_us)


@settings(
    max_examples=250, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow]
)
@given(
    spec=calendar_specs(),
    t_us=instants_us,
    secs=seconds,
    n=st.integers(-12, 12),
    d_us=st.integers(-(10**12), 10**12),
)
def test_generated_calendars_match_the_reference(
    spec: dict[str, Any], t_us: int, secs: float, n: int, d_us: int
) -> None:
    ref = Calendar.from_dict(spec)
    nat = _native(Calendar.from_dict(spec))
    _check_s(ref, nat, t_us, secs, n)
    _check_us(ref, nat, t_us, d_us)


@settings(max_examples=100)
@given(t_us=instants_us, secs=st.floats(-5e6, 5e6).filter(lambda s: s == 0 or abs(s) >= 1e-6))
def test_arbitrary_float_durations_agree_to_the_microsecond(t_us: int, secs: float) -> None:
    """Off the binary grid the reference's float sums round by its table's baseline: within a µs.

    (Below a microsecond the reference itself depends on that baseline: ``cend + 1e-9`` is
    ``cend`` once the table holds enough open time, and an add from a close lands on the close
    or on the next opening depending on which years the calendar materialised first.)
    """
    ref = _PLAYBOOKS[EXAMPLES[0].stem].calendars
    for cal in ref.values():
        nat = _native(cal)
        want, got = _outcome(cal.add_s, t_us / 1e6, secs), _outcome(nat.add_s, t_us / 1e6, secs)
        assert want[0] == got[0]
        if want[0] == "ok":
            assert abs(want[1] - got[1]) < 1e-6


def test_no_open_time_is_bounded_and_names_the_instant() -> None:
    spec = {
        "timezone": "Europe/Berlin",
        "hours": {"sun": ["10:00-10:30"]},
        "holidays": [{"from": "2026-01-01", "to": "2028-12-31"}],
    }
    ref, nat = Calendar.from_dict(spec), _native(Calendar.from_dict(spec))
    t = datetime(2026, 3, 1, tzinfo=UTC).timestamp()
    for name, args in [
        ("next_open_s", (t,)),
        ("add_s", (t, 60.0)),
        ("add_days_s", (t, 1)),
        ("subtract_s", (t + 3 * 366 * 86400, 60.0)),
        ("is_open_s", (t,)),
    ]:
        want = _outcome(getattr(ref, name), *args)
        assert _outcome(getattr(nat, name), *args) == want
    fresh = _native(Calendar.from_dict(spec))  # (the queries above grew the tables past 2028)
    assert _outcome(fresh.next_open_s, t)[1] == "NoOpenTime"
    far = datetime(9998, 6, 1, tzinfo=UTC).timestamp()
    assert _outcome(nat.is_open_s, far) == _outcome(ref.is_open_s, far)


def test_always_calendar() -> None:
    for tz in ("UTC", "Europe/Berlin"):
        ref = Calendar.from_dict("always", timezone=tz)
        nat = _native(ref)
        for t in (0.0, 1_774_746_000.5, 1_792_890_000.25):
            for n in (-3, 0, 1, 40):
                assert nat.add_days_s(t, n) == ref.add_days_s(t, n)
            assert nat.add_s(t, 12.5) == ref.add_s(t, 12.5)
            assert nat.elapsed_s(t, t + 3) == ref.elapsed_s(t, t + 3)
            assert nat.is_open_s(t) and nat.next_open_s(t) == t


# -- expressions -------------------------------------------------------------------------------------

ENV = TypeEnv(
    {
        "i": FieldType("int"),
        "f": FieldType("float"),
        "d": FieldType("decimal"),
        "s": FieldType("string"),
        "e": FieldType("enum", ("a", "b", "c")),
        "b": FieldType("bool"),
        "dt": FieldType("datetime"),
        "day": FieldType("date"),
        "dur": FieldType("duration"),
        "tags": FieldType.parse("list[string]"),
        "nums": FieldType.parse("list[int]"),
        "x": FieldType("any"),
        "y": FieldType("any"),
        "customer.tier": FieldType("string"),
    },
    None,
    {
        "segment": FieldType("string"),
        "stage": FieldType("string"),
        "now": FieldType("datetime"),
        "segments": FieldType.parse("list[string]"),
        "sla.first.breached": FieldType("bool"),
    },
)
NAMES = [
    "i",
    "f",
    "d",
    "s",
    "e",
    "b",
    "dt",
    "day",
    "dur",
    "tags",
    "nums",
    "x",
    "y",
    "customer.tier",
    "event.a",
    "event.b.c",
    "event.at",
    "segment",
    "stage",
    "now()",
    "segments",
    "sla.first.breached",
]
LITERALS = [
    "0",
    "1",
    "-3",
    "2.5",
    "-0.0",
    "1e300",
    "9223372036854775807",
    "10000000000000000000",
    '"a"',
    '"b"',
    '"Ab"',
    '""',
    "true",
    "false",
    "null",
    'date("2026-01-02")',
    'datetime("2026-01-02T03:04:05+07:00")',
    'datetime("2026-01-02T03:04:05Z")',
    'duration("90m")',
    "[1, 2]",
    '["a", "b"]',
    '[null, "a"]',
    "[1, 2.0, 3]",
    "[]",
    "[i, 2]",
    "[x, y]",
]
OPS = ["==", "!=", "<", "<=", ">", ">=", "in", "not in"]
FUNCS1 = ["lower", "upper", "len", "abs", "round", "days_since", "hours_since", "min", "max", "has"]


BOOL_T = FieldType("bool")


def _exprs() -> st.SearchStrategy[str]:
    leaf = st.sampled_from(NAMES) | st.sampled_from(LITERALS)

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.builds(lambda a, o, b: f"{a} {o} {b}", inner, st.sampled_from(OPS), inner),
            st.builds(lambda f, a: f"{f}({a})", st.sampled_from(FUNCS1), inner),
            st.builds(
                lambda f, a, b: f"{f}({a}, {b})", st.sampled_from(["min", "max"]), inner, inner
            ),
            st.builds(lambda a, n: f"round({a}, {n})", inner, st.integers(0, 4)),
            st.builds(
                lambda a, o, b: f"({a}) {o} ({b})", inner, st.sampled_from(["and", "or"]), inner
            ),
            st.builds(lambda a: f"not ({a})", inner),
            st.builds(lambda a: f"-{a}", inner),
            st.builds(lambda a, b, c: f"{a} < {b} <= {c}", inner, inner, inner),
        )

    return st.recursive(leaf, extend, max_leaves=6)


#: Operands of one family each, so that most drawn comparisons type-check.
FAMILIES = {
    "num": [
        "i",
        "f",
        "d",
        "x",
        "y",
        "event.a",
        "len(s)",
        "len(tags)",
        "abs(i)",
        "round(f)",
        "round(f, 2)",
        "min(i, f)",
        "max(nums)",
        "-i",
        "0",
        "1",
        "-3",
        "2.5",
        "9223372036854775807",
        "days_since(dt)",
        "hours_since(day)",
        "days_since(event.at)",
        "hours_since(x)",
        "min(x, 3)",
        "abs(x)",
        "round(x, 1)",
    ],
    "str": [
        "s",
        "e",
        "customer.tier",
        "segment",
        "stage",
        "lower(s)",
        "upper(e)",
        "x",
        '"a"',
        '"Ab"',
        '""',
        "lower(x)",
        "event.b.c",
        "min(s, x)",
    ],
    "time": [
        "dt",
        "now()",
        "event.at",
        'datetime("2026-01-02T03:04:05+07:00")',
        "x",
        "max(event.at, x)",
    ],
    "date": ["day", 'date("2026-01-02")', "x", "event.a"],
    "dur": ["dur", 'duration("90m")', "abs(dur)", "x", "-x", "abs(y)"],
}
LISTS = [
    "tags",
    "segments",
    "nums",
    "x",
    "y",
    '["a", "b"]',
    "[s, e]",
    "[1, 2.0, null]",
    "[i, 3]",
    "event.a",
]


@st.composite
def _typed_comparison(draw: st.DrawFn) -> str:
    fam = draw(st.sampled_from(sorted(FAMILIES)))
    a = draw(st.sampled_from(FAMILIES[fam]))
    if draw(st.integers(0, 4)) == 0:
        return f"{a} {draw(st.sampled_from(['in', 'not in']))} {draw(st.sampled_from(LISTS))}"
    return f"{a} {draw(st.sampled_from(OPS[:6]))} {draw(st.sampled_from(FAMILIES[fam]))}"


def _typed() -> st.SearchStrategy[str]:
    return st.recursive(
        _typed_comparison(),
        lambda inner: (
            st.builds(
                lambda a, o, b: f"({a}) {o} ({b})", inner, st.sampled_from(["and", "or"]), inner
            )
            | st.builds(lambda a: f"not ({a})", inner)
        ),
        max_leaves=4,
    )


TEXTS = st.sampled_from(
    ["a", "B", "", "ß", "İstanbul", "Hà Nội", "ΣΑΣ", "ǅ", "ﬀ", "ÿ", "x" * 3, "0"]
)
ISO = st.sampled_from(
    [
        "2026-04-30T08:00:00+07:00",
        "2026-04-30T08:00:00.123456+00:00",
        "2026-04-30",
        "2026-04-30T08:00",
        "2026-04-30 08:00:00Z",
        "20260430",
        "2026-04-30T08:00:00+0700",
        "garbage",
        "",
        "2026-02-30T00:00:00+00:00",
        "2026-04-30T08:00:00.5-03:30",
        "２０２６-04-30",
    ]
)
BERLIN = ZoneInfo("Europe/Berlin")
AWARE = st.datetimes(
    datetime(2020, 1, 1),
    datetime(2030, 1, 1),
    timezones=st.sampled_from(
        [UTC, BERLIN, timezone(timedelta(hours=7)), ZoneInfo("Asia/Ho_Chi_Minh")]
    ),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10),
    st.integers(-(2**64), 2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXTS,
    ISO,
    st.dates(date(2020, 1, 1), date(2030, 1, 1)),
    AWARE,
    st.datetimes(datetime(2020, 1, 1), datetime(2030, 1, 1)),
    st.timedeltas(timedelta(days=-400), timedelta(days=400)),
    st.just(Decimal("1.5")),
    st.just({"k": 1}),
)
ANY = st.one_of(
    SCALARS, st.lists(SCALARS, max_size=3), st.lists(st.integers(-3, 3), max_size=3).map(tuple)
)


def _values(kind: str) -> st.SearchStrategy[Any]:
    return {
        "int": st.none() | st.integers(-(2**63), 2**63 - 1) | st.integers(-5, 5),
        "float": st.none() | st.floats() | st.integers(-5, 5).map(float),
        "decimal": st.none() | st.integers(-5, 5) | st.floats(-5, 5) | st.just("1.50"),
        "string": st.none() | TEXTS,
        "enum": st.none() | st.sampled_from(["a", "b", "c"]),
        "bool": st.none() | st.booleans(),
        "datetime": st.none() | ISO | AWARE.map(datetime.isoformat),
        "date": st.none() | st.dates(date(2020, 1, 1), date(2030, 1, 1)).map(date.isoformat),
        "duration": st.none() | st.floats(-1e6, 1e6),
        "list": st.none() | st.lists(TEXTS, max_size=3),
        "any": ANY,
    }[kind]


@st.composite
def scopes(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    fields = {}
    for name, t in ENV.fields.items():
        if draw(st.integers(0, 9)):
            v = draw(_values(t.kind))
            if name == "nums" and v is not None:
                v = draw(st.lists(st.integers(-3, 3), max_size=3))
            fields[name] = v
    event: dict[str, Any] = {"a": draw(ANY), "at": draw(AWARE), "type": "e", "id": "1", "case": "c"}
    if draw(st.booleans()):
        event["b"] = {"c": draw(ANY)}
    elif draw(st.booleans()):
        event["b.c"] = draw(ANY)
    now = draw(AWARE)
    specials = {
        "segment": draw(st.none() | st.sampled_from(["vip", "a"])),
        "stage": "new",
        "now": now,
        "segments": ["vip"],
        "sla.first.breached": draw(st.booleans()),
    }
    return fields, event, specials


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        )
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, datetime):
        return (
            a == b and a.tzinfo == b.tzinfo and a.utcoffset() == b.utcoffset() and a.fold == b.fold
        )
    return bool(a == b)


def _fallback(v: Any) -> bool:
    return isinstance(v, tuple) and len(v) == 2 and v[0] == "fallback"


def _check(expr: Expr, scope: tuple[dict[str, Any], dict[str, Any], dict[str, Any]]) -> bool:
    """Assert the VM agrees with the reference; True when it evaluated natively."""
    prog = lower_expr(expr)
    want = expr.fn(*scope)
    got = cc._expr_eval(prog, *scope)
    if _fallback(got):
        return False
    assert _same(got, want), (expr.source, expr.code, prog, scope, got, want)
    return True


VM_EXAMPLES = int(os.environ.get("CAREPATH_VM_EXAMPLES", "600"))


@settings(
    max_examples=VM_EXAMPLES,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
@given(text=_exprs() | _typed(), data=st.data(), cond=st.booleans())
def test_vm_matches_the_reference(text: str, data: st.DataObject, cond: bool) -> None:
    try:
        expr = compile_expr(text, ENV, want=BOOL_T if cond else None)
    except ExpressionError:
        return  # not a program: nothing to compare (drawing no scope keeps this cheap)
    if not supported(expr):
        with pytest.raises(Unsupported):
            lower_expr(expr)
        return
    _check(expr, data.draw(scopes()))


@pytest.mark.parametrize(
    "text,scope",
    [
        (
            "days_since(dt) > 1",
            ({"dt": "2026-01-01T00:00:00+07:00"}, {}, {"now": datetime(2026, 3, 1, tzinfo=BERLIN)}),
        ),
        ("x == [1, 2]", ({"x": [1, 2]}, {}, {})),  # a list never equals a list literal (a tuple)
        ("x in [1, null]", ({}, {}, {})),
        ("x in [1, 2]", ({"x": True}, {}, {})),
        ("round(x, 2) == 0.12", ({"x": 0.125}, {}, {})),
        ("min(x, y) == 1", ({"x": 1, "y": 1.0}, {}, {})),
        ("x < 9007199254740993", ({"x": 9007199254740992.0}, {}, {})),
        ('lower(s) == "i̇stanbul"', ({"s": "İstanbul"}, {}, {})),
        (
            "hours_since(event.at) >= 2",
            (
                {},
                {"at": datetime(2026, 3, 29, 0, 30, tzinfo=UTC)},
                {"now": datetime(2026, 3, 29, 4, 0, tzinfo=BERLIN)},
            ),
        ),
    ],
)
def test_vm_edge_cases(text: str, scope: Any) -> None:
    assert _check(compile_expr(text, ENV), scope)


def test_every_example_expression_is_supported_and_agrees() -> None:
    assert EXAMPLE_EXPRS
    refused = [e.source for e in EXAMPLE_EXPRS if not supported(e)]
    assert not refused
    now = datetime(2026, 5, 4, 10, 0, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
    data = {
        "orders": 3,
        "lifetime_value": 25_000_000,
        "segment": "vip",
        "priority": "low",
        "channel": "chat",
        "customer.tier": "vip",
        "customer.age": 70,
        "customer.lives_alone": True,
        "customer.type": "business",
        "last_order.at": "2025-12-01T09:00:00+07:00",
    }
    ev = {
        "survey": "csat",
        "score": 1,
        "amount": 2_500_000,
        "channel": "chatbot",
        "needs_customer": True,
        "order_count": 2,
        "at": now,
        "type": "x",
        "case": "c",
        "id": "1",
    }
    sp = {"now": now, "segment": "vip", "stage": "new", "sla.delivery.breached": True}
    native = sum(_check(e, (data, ev, sp)) for e in EXAMPLE_EXPRS)
    assert native == len(EXAMPLE_EXPRS)  # no example expression needs the reference on plain data


@given(x=ANY)
def test_values_round_trip(x: Any) -> None:
    back = cc._value_roundtrip(x)
    if back is Ellipsis:  # a value the core does not model: the engine keeps the Python object
        assert isinstance(x, dict | list) or type(x) in (int, datetime)
        return
    assert _same(back, x) or (isinstance(x, Decimal) and back == x), (x, back)


def test_constants_the_vm_cannot_hold_are_refused() -> None:
    assert not supported(compile_expr("x == 100000000000000000000", ENV))
    assert supported(compile_expr("x == 9223372036854775807", ENV))
    assert supported(compile_expr("=[i, 2]", ENV, want=None))
    assert supported(compile_expr(True, ENV))


def _transitions_2026(tz: str) -> list[float]:
    from carepath._native.lower_calendar import transitions

    lo = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    return [u for u, _, _ in transitions(ZoneInfo(tz), lo, lo + 366 * 86400)[1]]


@pytest.mark.parametrize(
    "tz", ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Pacific/Chatham"]
)
@pytest.mark.parametrize(
    "hours", [None, ["00:00-24:00"], ["01:30-03:30"], ["02:00-02:45", "09:00-17:00"]]
)
def test_around_dst_transitions(tz: str, hours: list[str] | None) -> None:
    """Every operation on instants around the zone's changes (gaps, repeated hours, 30-min DST)."""
    spec: Any = "always" if hours is None else {"timezone": tz, "hours": {"mon-sun": hours}}
    ref = Calendar.from_dict(spec, timezone=tz)
    nat = _native(Calendar.from_dict(spec, timezone=tz))
    trans = _transitions_2026(tz)
    assert len(trans) == 2
    for u in trans:
        for step in range(-12, 13):
            t = u + step * 900 + (0.25 if step % 3 == 0 else 0.0)
            for n in (-2, -1, 0, 1, 2, 7):
                assert _outcome(nat.add_days_s, t, n) == _outcome(ref.add_days_s, t, n), (t, n)
            _check_s(ref, nat, int(t * 1e6), 5400.0, 1)
            _check_us(ref, nat, int(t * 1e6), 5_400_000_000)


def _wall_days_reference(t: float, n: int, tz: str) -> float:
    """The reference's wall-clock days (``WorkingCase.delay_due`` for ``Nd``/``Nw``)."""
    zone = ZoneInfo(tz)
    local = datetime.fromtimestamp(t, zone).replace(tzinfo=None)
    return round_micros((local + timedelta(days=n)).replace(tzinfo=zone).timestamp())


@pytest.mark.parametrize(
    "tz", ["Asia/Ho_Chi_Minh", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]
)
def test_wall_days_around_dst_transitions_match_the_reference(tz: str) -> None:
    """``1d`` delays in the playbook's zone, computed by the core's ``always`` calendar: the same
    instant as the reference's datetime arithmetic around gaps and repeated hours (fold=0)."""
    nat = _native(Calendar.from_dict("always", timezone=tz))
    trans = _transitions_2026(tz) or [datetime(2026, 3, 29, 1, tzinfo=UTC).timestamp()]
    for u in trans:
        for step in range(-100, 101):  # from a day before to a day after, landing in the change
            t = u + step * 900 + (0.25 if step % 3 == 0 else 0.0)
            for n in (-7, -2, -1, 1, 2, 7, 30):
                assert nat._wall_days_s(t, n) == _wall_days_reference(t, n, tz), (t, n)
                back = t - n * 86400  # a start n days before, landing on the change
                assert nat._wall_days_s(back, n) == _wall_days_reference(back, n, tz), (back, n)


@settings(max_examples=300, deadline=None, database=None)
@given(
    tz=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Pacific/Chatham"]),
    t_us=st.integers(-2_000_000_000_000_000, 4_000_000_000_000_000),
    n=st.integers(-400, 400).filter(bool),
)
def test_wall_days_match_the_reference(tz: str, t_us: int, n: int) -> None:
    nat = _native(Calendar.from_dict("always", timezone=tz))
    t = t_us / 1e6
    assert _outcome(nat._wall_days_s, t, n)[1] == _wall_days_reference(t, n, tz), (t, n)


def test_add_days_keeps_the_fold_of_its_start_like_the_reference() -> None:
    """The reference combines the start's ``time()``, fold included: from the second 02:30 of a
    fall-back night, the 02:30 that a spring-forward night skips resolves *backwards* (01:30 CET),
    not forward as SPEC §3 rule 8 says. The core mirrors the reference; the rule is the reference's
    to settle."""
    ref = Calendar.from_dict("always", timezone="Europe/Berlin")
    nat = _native(ref)
    second = datetime(2026, 10, 25, 1, 30, tzinfo=UTC).timestamp()  # 02:30 CET, fold=1
    for start in (second, second - 3600):
        assert nat.add_days_s(start, -210) == ref.add_days_s(start, -210)
    assert ref.add_days_s(second, -210) == datetime(2026, 3, 29, 0, 30, tzinfo=UTC).timestamp()


_INSTR = st.one_of(
    st.tuples(
        st.just("const"),
        st.sampled_from(
            [
                ("int", 1),
                ("str", "a"),
                ("null",),
                ("tuple", [("int", 2)]),
                ("bogus",),
                ("dt", 0, "zone", 0, "UTC"),
            ]
        ),
    ),
    st.tuples(st.sampled_from(["field", "event", "special"]), st.sampled_from(["x", "now", "a"])),
    st.tuples(
        st.sampled_from(
            ["is_none", "not_none", "is_true", "not", "eq", "ne", "in", "not_in", "list", "x"]
        )
    ),
    st.tuples(st.sampled_from(["store", "load", "and", "or", "tuple"]), st.integers(-1, 2**40)),
    st.tuples(
        st.just("call"),
        st.sampled_from(["_lt", "_min", "_round", "_now", "_nope"]),
        st.integers(-1, 20),
    ),
)


@settings(max_examples=300)
@given(code=st.lists(_INSTR, max_size=8), x=ANY)
def test_any_bytecode_is_refused_or_run_never_a_panic(code: list[Any], x: Any) -> None:
    # Refused by Program::from_py (ValueError…) or run; a panic (a BaseException) would escape.
    with contextlib.suppress(ValueError, TypeError, OverflowError):
        cc._expr_eval(code, {"x": x}, {"a": x}, {"now": datetime(2026, 1, 1, tzinfo=UTC)})


ARITH = ["+", "-", "*", "/"]


@st.composite
def _arith_exprs(draw: st.DrawFn) -> str:
    """Arithmetic over numbers and durations (SPEC §10), nested, as a value or compared."""
    fam = draw(st.sampled_from(["num", "dur", "mixed"]))
    pool = {
        "num": FAMILIES["num"],
        "dur": FAMILIES["dur"],
        "mixed": FAMILIES["num"] + FAMILIES["dur"],
    }[fam]
    text = draw(st.sampled_from(pool))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(ARITH))
        other = draw(st.sampled_from(pool))
        text = f"({text}) {op} {other}" if draw(st.booleans()) else f"{other} {op} ({text})"
    if draw(st.booleans()):
        text = f"{text} {draw(st.sampled_from(OPS[:6]))} {draw(st.sampled_from(pool))}"
    return text


@settings(
    max_examples=VM_EXAMPLES,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
@given(text=_arith_exprs(), data=st.data())
def test_vm_arithmetic_matches_the_reference(text: str, data: st.DataObject) -> None:
    """The VM computes what it models exactly and defers the rest (decimals, instants, rounding
    durations, every overflow) to the reference, which alone raises ``InvalidEvent``."""
    try:
        expr = compile_expr(text, ENV, want=None)
    except ExpressionError:
        return
    assert supported(expr), text
    scope = data.draw(scopes())
    got = cc._expr_eval(lower_expr(expr), *scope)
    try:
        want = expr.fn(*scope)
    except carepath.InvalidEvent:
        assert _fallback(got), (text, scope, got)  # only the reference raises
        return
    if not _fallback(got):
        assert _same(got, want), (text, expr.code, scope, got, want)


def test_vm_computes_plain_arithmetic_natively() -> None:
    scope = ({"i": 7, "f": 0.5, "dur": 90.0}, {}, {})
    for text, value in [
        ("i + 1", 8),
        ("i * i - 1", 48),
        ("i / 2", 3.5),
        ("i / 0", None),
        ("f * 4 + i", 9.0),
        ('duration("1h") * 2 - duration("30m")', timedelta(minutes=90)),
    ]:
        expr = compile_expr(text, ENV, want=None)
        got = cc._expr_eval(lower_expr(expr), *scope)
        assert not _fallback(got) and got == value == expr.fn(*scope), text
