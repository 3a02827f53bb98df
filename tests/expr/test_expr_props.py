"""Hypothesis properties of the condition language.

1. Generated well-typed expressions (ints, strings, bools, comparisons, and/or/not, in-lists,
   len/abs/min/max/lower/upper) evaluate exactly as Python's own ``eval`` of the same text.
2. Compiled expressions never raise at run time, whatever the values (None, wrong types).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carepath.expr.compiler import compile_expr
from carepath.expr.types import BOOL, INT, STRING, TypeEnv

INT_VARS = ("i1", "i2", "i3")
STR_VARS = ("s1", "s2")
BOOL_VARS = ("b1", "b2")
ENV = TypeEnv(
    {
        **dict.fromkeys(INT_VARS, INT),
        **dict.fromkeys(STR_VARS, STRING),
        **dict.fromkeys(BOOL_VARS, BOOL),
    }
)

# Each strategy yields (carepath source, Python source) pairs.
Pair = tuple[str, str]

small_ints = st.integers(-5, 5)
short_text = st.sampled_from(["", "a", "b", "ab", "B", "Ä", "x y"])


def _lit_int() -> st.SearchStrategy[Pair]:
    return small_ints.map(lambda n: (str(n), f"({n})"))


def _lit_str() -> st.SearchStrategy[Pair]:
    return short_text.map(lambda s: (repr(s), repr(s)))


def int_expr(depth: int) -> st.SearchStrategy[Pair]:
    base = st.one_of(_lit_int(), st.sampled_from(INT_VARS).map(lambda v: (v, v)))
    if depth <= 0:
        return base
    sub = int_expr(depth - 1)
    return st.one_of(
        base,
        str_expr(depth - 1).map(lambda p: (f"len({p[0]})", f"len({p[1]})")),
        sub.map(lambda p: (f"abs({p[0]})", f"abs({p[1]})")),
        sub.map(lambda p: (f"-{p[0]}", f"-({p[1]})")),
        st.tuples(st.sampled_from(["min", "max"]), sub, sub).map(
            lambda t: (f"{t[0]}({t[1][0]}, {t[2][0]})", f"{t[0]}({t[1][1]}, {t[2][1]})")
        ),
    )


def str_expr(depth: int) -> st.SearchStrategy[Pair]:
    base = st.one_of(_lit_str(), st.sampled_from(STR_VARS).map(lambda v: (v, v)))
    if depth <= 0:
        return base
    return st.one_of(
        base,
        st.tuples(st.sampled_from(["lower", "upper"]), str_expr(depth - 1)).map(
            lambda t: (f"{t[0]}({t[1][0]})", f"({t[1][1]}).{t[0]}()")
        ),
    )


CMP = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])


def compare(depth: int) -> st.SearchStrategy[Pair]:
    def chain(parts: list[Pair], ops: list[str]) -> Pair:
        ours = parts[0][0] + "".join(f" {o} {p[0]}" for o, p in zip(ops, parts[1:], strict=False))
        py = parts[0][1] + "".join(f" {o} {p[1]}" for o, p in zip(ops, parts[1:], strict=False))
        return f"({ours})", f"({py})"

    ints = (
        st.integers(1, 3)
        .flatmap(
            lambda n: st.tuples(
                st.lists(int_expr(depth), min_size=n + 1, max_size=n + 1),
                st.lists(CMP, min_size=n, max_size=n),
            )
        )
        .map(lambda t: chain(t[0], t[1]))
    )
    strs = st.tuples(str_expr(depth), CMP, str_expr(depth)).map(
        lambda t: chain([t[0], t[2]], [t[1]])
    )
    bools = st.tuples(
        st.sampled_from(BOOL_VARS),
        st.sampled_from(["==", "!="]),
        st.sampled_from([("true", "True"), ("false", "False"), ("b1", "b1")]),
    ).map(lambda t: (f"({t[0]} {t[1]} {t[2][0]})", f"({t[0]} {t[1]} {t[2][1]})"))
    in_ints = st.tuples(
        int_expr(depth), st.sampled_from(["in", "not in"]), st.lists(small_ints, max_size=4)
    ).map(lambda t: (f"({t[0][0]} {t[1]} {t[2]})", f"({t[0][1]} {t[1]} {t[2]})"))
    in_strs = st.tuples(
        str_expr(depth), st.sampled_from(["in", "not in"]), st.lists(short_text, max_size=4)
    ).map(lambda t: (f"({t[0][0]} {t[1]} {t[2]})", f"({t[0][1]} {t[1]} {t[2]})"))
    return st.one_of(ints, strs, bools, in_ints, in_strs)


def bool_expr(depth: int) -> st.SearchStrategy[Pair]:
    base = st.one_of(
        st.sampled_from([("true", "True"), ("false", "False"), ("True", "True")]),
        st.sampled_from(BOOL_VARS).map(lambda v: (v, v)),
        compare(1),
    )
    if depth <= 0:
        return base
    sub = bool_expr(depth - 1)
    return st.one_of(
        base,
        sub.map(lambda p: (f"not {p[0]}", f"not {p[1]}")),
        st.tuples(st.sampled_from(["and", "or"]), st.lists(sub, min_size=2, max_size=3)).map(
            lambda t: (
                f"({f' {t[0]} '.join(p[0] for p in t[1])})",
                f"({f' {t[0]} '.join(p[1] for p in t[1])})",
            )
        ),
    )


values = st.fixed_dictionaries(
    {
        **dict.fromkeys(INT_VARS, small_ints),
        **dict.fromkeys(STR_VARS, short_text),
        **{v: st.booleans() for v in BOOL_VARS},
    }
)
PY_BUILTINS = {"len": len, "abs": abs, "min": min, "max": max, "True": True, "False": False}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bool_expr(3), values)
def test_agrees_with_python_eval(pair: Pair, env_values: dict[str, Any]) -> None:
    ours, py = pair
    expected = eval(
        py, {"__builtins__": PY_BUILTINS}, dict(env_values)
    )  # test oracle on generated text
    got = compile_expr(ours, ENV)(env_values, {}, {})
    assert got is bool(expected), (ours, py, env_values)
    assert isinstance(expected, bool)


anything = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=3),
    st.booleans(),
    st.floats(allow_nan=True),
    st.lists(st.integers(), max_size=2),
    st.just(date(2020, 1, 1)),
    st.just(timedelta(hours=1)),
    st.dictionaries(st.text(max_size=1), st.integers(), max_size=1),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    bool_expr(3), st.fixed_dictionaries(dict.fromkeys((*INT_VARS, *STR_VARS, *BOOL_VARS), anything))
)
def test_never_raises_on_any_values(pair: Pair, env_values: dict[str, Any]) -> None:
    sparse = {k: v for k, v in env_values.items() if v is not None}  # None and missing alike
    e = compile_expr(pair[0], ENV)
    assert e(env_values, {}, {}) in (True, False)
    assert e(sparse, {}, {}) in (True, False)
    assert e.type == BOOL
