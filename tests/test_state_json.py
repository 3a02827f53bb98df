"""``carepath._instants.dumps``: the JSON writer of states and outboxes (orjson, with the standard
library as the fallback) writes what ``json.dumps(sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` writes, and reads back to the same value."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from carepath._instants import dumps, loads

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**100), max_value=2**100)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_values = st.recursive(
    _scalars,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=20,
)


def _stdlib(v: Any) -> str:
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _small_float(v: Any) -> bool:
    if isinstance(v, float):
        return v != 0 and abs(v) < 1e-4
    if isinstance(v, dict):
        return any(_small_float(x) for x in v.values())
    if isinstance(v, list):
        return any(_small_float(x) for x in v)
    return False


@settings(max_examples=300, deadline=None)
@given(_values)
def test_reads_back_equal_and_matches_the_standard_library(v: Any) -> None:
    text = dumps(v)
    assert json.loads(text) == v or (isinstance(v, float) and math.isclose(json.loads(text), v))
    if not _small_float(v):
        assert text == _stdlib(v)


def test_what_orjson_cannot_write_goes_to_the_standard_library() -> None:
    big = {"n": 10**30, "b": [1, 2]}
    assert dumps(big) == _stdlib(big) == '{"b":[1,2],"n":1000000000000000000000000000000}'
    lone = {"s": "\ud800"}
    assert dumps(lone) == _stdlib(lone)


@settings(max_examples=300, deadline=None)
@given(_values)
def test_loads_reads_what_the_standard_library_reads(v: Any) -> None:
    # the outbox's action texts are read by orjson when it reads them as json.loads does: not an
    # integer beyond 64 bits (orjson makes it a float), nor a NaN (orjson refuses it)
    for text in (dumps(v), _stdlib(v)):
        got, want = loads(text), json.loads(text)
        assert got == want and json.dumps(got) == json.dumps(want)


def test_loads_leaves_long_integers_and_nan_to_the_standard_library() -> None:
    for text in ("[-9223372036854775809]", "18446744073709551616", '{"a":NaN}', "1e400"):
        assert repr(loads(text)) == repr(json.loads(text))
