"""Typed stub of the native core (``carepath_core``). Private: use ``carepath.Engine``.

``Engine`` consumes the plain form of a compiled playbook (``carepath._native.lower.lower``) and
helper callables (``carepath._native.backend._helpers``); each step returns a flat tuple that
``carepath._native.backend`` turns into the public ``Step`` (state, actions, signals, deadlines).
"""

from collections.abc import Callable, Iterable, Mapping
from typing import Any

__version__: str

StepTuple = tuple[Any, ...]

class Engine:
    def __init__(self, plain: Mapping[str, Any], helpers: Mapping[str, Callable[..., Any]]) -> None: ...
    def start(self, event: Any, view: Mapping[str, Any], key: str, at: float, seq: int) -> StepTuple: ...
    def handle(self, state: Any, event: Any, view: Mapping[str, Any], at: float) -> StepTuple: ...
    def advance(self, state: Any, t: float) -> StepTuple: ...
    def advance_many(
        self, states: list[Any], t: float
    ) -> tuple[dict[str, int], list[tuple[int, StepTuple]]]:
        """``advance`` of each state that is not ``None``: the actions counted by type, and
        ``(index, output)`` of each advance that gave signals (the new states are not kept)."""

class CoreState:
    """The core's state of a case, behind a lazily built ``CaseState`` (``NativeState``)."""

    def head(self) -> tuple[str, str, str, float, bool, float | None]: ...
    def values(self) -> tuple[Any, str | None, str | None, tuple[str, ...]]: ...
    def ctx_key(self) -> tuple[str | None, Any, str | None, str]: ...
    def rest(self) -> tuple[Any, ...]: ...
    def to_json(
        self, consts: tuple[Any, Any, Any, Any, str], iso: Callable[[float, str], str | None]
    ) -> str | None:
        """The state's JSON text, byte for byte ``dumps(state_dict(...))`` with orjson
        (``core/src/state_json.rs``); ``None`` where only the Python path writes it exactly.
        ``consts``: ``(format, playbook id, version, content hash, timezone)``; ``iso(x, tz)``:
        an instant's ISO 8601 text."""

class Scope:
    """What conditions read besides fields and the event (``stage``, ``segment``, ``sla.x.status``…)."""

    def get(self, name: str, default: Any = None) -> Any: ...
    def __getitem__(self, name: str) -> Any: ...
    def __len__(self) -> int: ...

def _share_lines(
    block: bytes,
    me: int,
    workers: int,
    limit: int,
    only: set[bytes] | None = None,
    together: set[bytes] | None = None,
    plain: tuple[int, int] | None = None,
) -> tuple[list[tuple[Any, ...]], int, int]:
    """The whole lines of ``block`` worker ``me`` of ``workers`` reads (``carepath.drivers.shard``):
    ``(index, shown, line)`` for each, the lines consumed and their bytes. ``only``: the lines of
    those case keys alone; ``together``: the types whose lines without a case stay in the first
    share (given, a line without a case is placed by its type and id); ``plain``
    (``(max_bytes, max_depth)``): each tuple gets a fourth item, the POSIX seconds of a plain
    line's ``at``, or ``None``."""

def _hashes(items: Iterable[Any]) -> bytes:
    """Python's ``hash`` of each item, as the bytes of ``array("q", map(hash, items))``."""

def _disjoint(shares: list[bytes]) -> bool:
    """Whether no 8-byte integer is in two of ``shares`` (each the bytes of an ``array("q")``).
    Raises ``ValueError`` for bytes that are not whole integers."""

def _take(data: bytes, itemsize: int, indexes: list[int]) -> bytes:
    """The items of ``data`` (items of ``itemsize`` bytes: an ``array``'s) at ``indexes``, in
    that order. Raises ``ValueError`` when ``data`` is not whole items, ``IndexError`` for an
    index out of range."""

def _timedelta_seconds(x: float) -> float | None:
    """``timedelta(seconds=x).total_seconds()`` as ``CoreState.to_json`` computes it (``None``:
    beyond 2**53 microseconds or not finite, where the Python path writes the state)."""
