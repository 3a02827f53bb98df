"""The descriptor-based ``__init__`` of the engine's records keeps the dataclass contract."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pytest

from carepath._records import fast_init
from carepath.state import CaseState, Clock, Pending, Signal

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@fast_init
@dataclasses.dataclass(frozen=True, slots=True)
class _Rec:
    a: int
    b: str = "x"
    c: Mapping[str, Any] = dataclasses.field(default_factory=lambda: {"fresh": True})


def test_signature_defaults_and_factories_are_kept() -> None:
    assert list(inspect.signature(_Rec).parameters) == ["a", "b", "c"]
    r = _Rec(1)
    assert (r.a, r.b, r.c) == (1, "x", {"fresh": True})
    assert _Rec(1).c is not _Rec(1).c  # a factory runs per instance
    assert _Rec(a=2, b="y", c=_EMPTY) == _Rec(2, "y", _EMPTY)
    with pytest.raises(TypeError):
        _Rec()  # type: ignore[call-arg]


def test_records_stay_immutable_and_replaceable() -> None:
    c = Clock("first_response")
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.status = "running"  # type: ignore[misc]
    assert dataclasses.replace(c, status="running").status == "running"
    assert Clock("x") == Clock("x") and hash(Pending(1.0, "timer", "t", ())) == hash(
        Pending(1.0, "timer", "t", ())
    )
    assert "first_response" in repr(c)


def test_engine_records_use_the_fast_init() -> None:
    for cls in (CaseState, Clock, Pending, Signal):
        assert cls.__init__.__qualname__ == f"{cls.__qualname__}.__init__"
        assert "_set_0" in cls.__init__.__code__.co_names or "_set_0" in cls.__init__.__globals__


def test_only_plain_slotted_dataclasses_are_accepted() -> None:
    class Plain:
        pass

    with pytest.raises(TypeError):
        fast_init(Plain)

    @dataclasses.dataclass(frozen=True, slots=True)
    class WithPost:
        a: int

        def __post_init__(self) -> None:
            pass

    with pytest.raises(TypeError):
        fast_init(WithPost)
