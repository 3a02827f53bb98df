"""Events, the engine's input: :class:`Event` and its decoders.

There is one way to build an :class:`Event` from untrusted input: :func:`event_from_line` for a
JSONL line and :meth:`Event.from_dict` for an already decoded object (after
:func:`decode_event`); both check what ``Event(...)`` checks and raise the same ``ValueError``,
naming the field:

* a line of at most :data:`MAX_EVENT_BYTES`, nesting at most :data:`MAX_EVENT_DEPTH` levels;
* finite numbers only (JSON ``NaN``, ``Infinity`` and ``1e400`` are refused, as is a non-finite
  float given to ``Event``);
* strings (id, type, case, data values and keys) without a NUL or a lone surrogate: no store can
  keep them (PostgreSQL refuses NUL, UTF-8 refuses surrogates);
* data made of JSON values, dates, datetimes, durations and decimals;
* an aware ``at`` among the supported instants, ``1900-01-01T00:00:00Z`` up to (not including)
  ``9000-01-01T00:00:00Z`` (:mod:`carepath._instants`).

:class:`Line` is one line of an event file as the reader (:mod:`carepath.drivers.eventfile`)
hands it on; ``Runtime.submit`` takes it and names its line in a rejection.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any, NamedTuple

from carepath._instants import MAX_INSTANT, MIN_INSTANT, check_range, json_value, ts
from carepath._records import slot_setter

__all__ = [
    "MAX_EVENT_BYTES",
    "MAX_EVENT_DEPTH",
    "Event",
    "Line",
    "decode_event",
    "event_from_bytes",
    "event_from_line",
    "event_from_plain",
]

#: Untrusted events are bounded: a JSON line's size and its data's nesting.
MAX_EVENT_BYTES = 256 * 1024
MAX_EVENT_DEPTH = 32
_EMPTY: Mapping[str, Any] = MappingProxyType({})
#: What ``Event(...)`` holds for a ``type`` or ``at`` left out: it raises ``ValueError`` (SPEC §7),
#: as for an empty type or a naive ``at``, not a ``TypeError`` about a missing argument.
_MISSING: Any = object()
_MIN_S = MIN_INSTANT.timestamp()
_MAX_S = MAX_INSTANT.timestamp()


class Line(NamedTuple):
    """One line of an event file as read (:mod:`carepath.drivers.eventfile`): its 1-based
    ``number`` and its stripped ``text``; or, for a line that cannot be read as text (too long,
    not UTF-8), the ``problem`` and a bounded, printable preview as ``text``."""

    number: int
    text: str
    problem: str | None = None


class _NotFinite(ValueError):
    """A JSON number that is not finite (``NaN``, ``Infinity``, ``1e400``)."""


def _no_constant(name: str) -> Any:
    raise _NotFinite(f"{name} is not a finite number; events hold finite numbers only")


def _finite_float(text: str) -> float:
    x = float(text)
    if not math.isfinite(x):
        raise _NotFinite(f"{text} is beyond the range of a float; events hold finite numbers only")
    return x


#: The JSON decoder of events: ``NaN``, ``Infinity`` and numbers that overflow a float are errors.
_decoder = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_float)

#: JSON escapes that decode to a character an event may not hold: NUL, or a surrogate (a lone one
#: is rejected; a pair decodes to one valid character and is checked again after decoding).
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")


def _text_problem(s: str) -> str | None:
    """Why the string ``s`` cannot be stored (a NUL, a lone surrogate), or ``None``."""
    if "\x00" in s:
        return "holds a NUL character (U+0000)"
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError as exc:
            return f"holds a lone surrogate (U+{ord(s[exc.start]):04X}), which is not valid Unicode"
    return None


def _check_text(s: str, where: str) -> None:
    problem = _text_problem(s)
    if problem is not None:
        raise ValueError(f"{where} {problem}")


#: What an event's data may hold besides strings, floats, mappings and lists (what JSON and the
#: field types carry; the JSON writer of states knows each).
_SCALARS = (int, type(None), date, time, timedelta, Decimal)


def _check_data(data: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming the first value of ``data`` an event may not hold: a string or
    key with a NUL or a lone surrogate, a number that is not finite, an object JSON cannot carry,
    or nesting deeper than ``MAX_EVENT_DEPTH - 1`` levels."""
    limit = MAX_EVENT_DEPTH - 1
    stack: list[tuple[Any, str, int]] = [(data, "data", 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value, f"field `{path}`")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"field `{path}` is {value!r}; events hold finite numbers only")
        elif isinstance(value, Mapping):
            if depth > limit:
                raise ValueError(f"field `data` nests deeper than {limit} levels")
            for k, v in value.items():
                if isinstance(k, str) and _text_problem(k) is not None:
                    _check_text(k, f"the key {k!a} in field `{path}`")
                stack.append((v, f"{path}.{k}", depth + 1))
        elif isinstance(value, list | tuple):
            if depth > limit:
                raise ValueError(f"field `data` nests deeper than {limit} levels")
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value))
        elif not isinstance(value, _SCALARS):
            raise ValueError(
                f"field `{path}` holds a {type(value).__name__}, which an event cannot carry "
                "(JSON values, dates, datetimes, durations and decimals only)"
            )


def _depth_ok(v: Any, limit: int) -> bool:
    stack = [(v, 1)]
    while stack:
        x, d = stack.pop()
        if isinstance(x, dict | list):
            if d > limit:
                return False
            stack.extend((y, d + 1) for y in (x.values() if isinstance(x, dict) else x))
    return True


def decode_event(text: str | bytes) -> dict[str, Any]:
    """Decode one untrusted JSON event (a JSONL line): bounded in size and nesting, UTF-8 (for
    bytes), and with finite numbers only.

    Raises ``ValueError`` saying what is wrong (``not JSON: …``, not UTF-8, too large, too deep,
    not an object, a number that is not finite).
    """
    if len(text) > MAX_EVENT_BYTES:
        raise ValueError(f"event is {len(text):,} bytes; the limit is {MAX_EVENT_BYTES:,}")
    if isinstance(text, bytes | bytearray):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"not UTF-8: byte 0x{text[exc.start]:02x} at offset {exc.start} is not valid"
            ) from None
    try:
        obj = _decoder.decode(text)
    except RecursionError:
        raise ValueError(f"event nests deeper than {MAX_EVENT_DEPTH} levels") from None
    except _NotFinite as exc:
        raise ValueError(str(exc)) from None
    except ValueError as exc:  # JSONDecodeError
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"an event is a JSON object, got {type(obj).__name__}")
    if not _depth_ok(obj, MAX_EVENT_DEPTH):
        raise ValueError(f"event nests deeper than {MAX_EVENT_DEPTH} levels")
    return obj


@dataclass(frozen=True, slots=True, init=False)
class Event:
    """Something that happened: ``{id, type, at, case, data}``; ``at`` must be timezone-aware."""

    id: str
    type: str
    at: datetime
    case: str | None
    data: Mapping[str, Any]
    _ts: float = field(repr=False, compare=False)

    def __init__(
        self,
        id: str,
        type: str = _MISSING,
        at: datetime = _MISSING,
        case: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(type, str) or not type:
            raise ValueError("an event needs a non-empty `type`")
        if at is _MISSING:
            raise ValueError("an event needs an `at`: an aware datetime")
        if not isinstance(at, datetime):
            raise ValueError(f"event `at` must be an aware datetime, got {at!r}")
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(
                f"event `at` {at.isoformat()} has no timezone; give an offset such as +07:00"
            )
        if data is not None and not isinstance(data, Mapping):
            raise ValueError("event `data` must be a mapping")
        seconds = check_range(ts(at), f"event `at` {at.isoformat()}")
        id = str(id)
        case = None if case is None else str(case)
        _check_text(id, "field `id`")
        _check_text(type, "field `type`")
        if case is not None:
            _check_text(case, "field `case`")
        if data:
            _check_data(data)
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "at", at)
        object.__setattr__(self, "case", case)
        object.__setattr__(self, "data", MappingProxyType(dict(data)) if data else _EMPTY)
        object.__setattr__(self, "_ts", seconds)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape (SPEC §1)."""
        return {
            "id": self.id,
            "type": self.type,
            "at": self.at.isoformat(),
            "case": self.case,
            "data": json_value(self.data),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Event:
        """Build from the JSON shape; raises ``ValueError`` naming the bad field."""
        if not isinstance(d, Mapping):
            raise ValueError(f"an event is a JSON object, got {type(d).__name__}")
        for k in ("type", "at"):
            if k not in d:
                raise ValueError(f"missing field `{k}`")
        at = d["at"]
        if isinstance(at, str):
            try:
                at = datetime.fromisoformat(at.replace("Z", "+00:00") if at.endswith("Z") else at)
            except ValueError:
                raise ValueError(f"field `at`: {d['at']!r} is not an ISO 8601 instant") from None
        elif not isinstance(at, datetime):
            raise ValueError(f"field `at`: expected an ISO 8601 string, got {type(at).__name__}")
        if not isinstance(d["type"], str):
            raise ValueError("field `type` must be a string")
        eid = d.get("id")
        if eid is None:
            raise ValueError("missing field `id`")
        if not isinstance(eid, str | int) or isinstance(eid, bool):
            raise ValueError("field `id` must be a string")
        case = d.get("case")
        if case is not None and not isinstance(case, str | int):
            raise ValueError("field `case` must be a string")
        data = d.get("data") or {}
        if not isinstance(data, Mapping):
            raise ValueError("field `data` must be an object")
        return cls(
            id=str(eid), type=d["type"], at=at, case=None if case is None else str(case), data=data
        )


#: What json.loads runs, without its per-call Python wrapper (``raw_decode`` if this CPython detail is absent).
_scan: Callable[[str, int], tuple[Any, int]] = getattr(_decoder, "scan_once", _decoder.raw_decode)
_fromiso = datetime.fromisoformat
_new = object.__new__
#: The fast path fills an Event's slots directly; it is used only while they are the ones it knows.
_EVENT_SLOTS_KNOWN = getattr(Event, "__slots__", None) == (
    "id",
    "type",
    "at",
    "case",
    "data",
    "_ts",
)
if _EVENT_SLOTS_KNOWN:
    _S_ID, _S_TYPE, _S_AT, _S_CASE, _S_DATA, _S_TS = (
        slot_setter(Event, n) for n in ("id", "type", "at", "case", "data", "_ts")
    )


def event_from_line(text: str) -> Event:
    """One JSONL line (stripped) → :class:`Event`: the same result, or the same ``ValueError``, as
    ``Event.from_dict(decode_event(text))``, in about a third of the time.

    The common shape (a JSON object of at most 32 brackets, string ``id``/``type``/``at``, string
    or missing ``case``, object or missing ``data``, an aware ISO 8601 ``at`` in the supported
    range, no escape of a NUL or a surrogate, valid Unicode) is decoded once and checked once;
    anything else goes through the general path, which raises the canonical error.
    """
    if (
        len(text) <= MAX_EVENT_BYTES
        and _EVENT_SLOTS_KNOWN
        and ("\\u" not in text or _SUSPECT_ESCAPE.search(text) is None)
        # a raw NUL is not valid JSON; a raw lone surrogate (a str from a host) fails to encode
        and (text.isascii() or _text_problem(text) is None)
    ):
        try:
            d, end = _scan(text, 0)
        except (StopIteration, ValueError, RecursionError):  # _NotFinite included
            d = end = None
        # ≤ 32 opening brackets bound the nesting of the object (≤ 32) and of its data (≤ 31)
        if (
            end == len(text)
            and type(d) is dict
            and text.count("{") + text.count("[") <= MAX_EVENT_DEPTH
        ):
            et = d.get("type")
            at = d.get("at")
            eid = d.get("id")
            case = d.get("case")
            data = d.get("data")
            if (
                type(et) is str
                and type(at) is str
                and type(eid) is str
                and (case is None or type(case) is str)
                and (data is None or type(data) is dict)
            ):
                ev = _checked(eid, et, at, case, data)
                if ev is not None:
                    return ev
    return Event.from_dict(decode_event(text))


def _checked(
    eid: str,
    et: str,
    at: str,
    case: str | None,
    data: dict[str, Any] | None,
    seconds: float | None = None,
) -> Event | None:
    """The :class:`Event` of decoded fields of the right types when ``type`` is not empty and
    ``at`` is an aware ISO 8601 instant in the supported range; else ``None`` (the general path
    then raises the canonical error). ``data`` is a fresh dict from a decoder: not copied.
    ``seconds``: ``at``'s instant as computed here, when the caller read it already (the core's
    line sorter, :func:`event_from_plain`)."""
    if not et:
        return None
    try:
        when = _fromiso(at.replace("Z", "+00:00") if at.endswith("Z") else at)
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    if seconds is None:
        if when.utcoffset() is None:
            return None
        seconds = round(when.timestamp() * 1_000_000) / 1_000_000
    if _MIN_S <= seconds < _MAX_S:
        ev = _new(Event)
        _S_ID(ev, eid)
        _S_TYPE(ev, et)
        _S_AT(ev, when)
        _S_CASE(ev, case)
        _S_DATA(ev, MappingProxyType(data) if data else _EMPTY)
        _S_TS(ev, seconds)
        return ev
    return None


_SUSPECT_ESCAPE_BYTES = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")
_wire_decode: Callable[[bytes], Any] | None = None


def _wire() -> Callable[[bytes], Any] | None:
    """msgspec's decoder of the event shape (``id``, ``type``, ``at`` strings, ``case`` a string
    or null, ``data`` an object or null; other keys ignored), made on first use; ``None`` without
    msgspec. msgspec keeps integers of any size exact (as ``json`` does), refuses ``NaN``,
    ``Infinity``, numbers beyond a float, invalid UTF-8 and raw control characters in strings,
    and keeps the last of repeated keys: anything it refuses takes the general path."""
    global _wire_decode
    if _wire_decode is None:
        try:
            import msgspec
        except ImportError:  # pragma: no cover - msgspec is a dependency; the text path stays
            return None

        class _Shape(msgspec.Struct):
            id: str
            type: str
            at: str
            case: str | None = None
            data: dict[str, Any] | None = None

        decoder = msgspec.json.Decoder(_Shape)
        errors = (msgspec.DecodeError, msgspec.ValidationError)

        def decode(raw: bytes) -> Any:
            try:
                return decoder.decode(raw)
            except errors:
                return None

        _wire_decode = decode
    return _wire_decode


def event_from_bytes(raw: bytes) -> Event | None:
    """One JSONL line as read (bytes, its newline included or not) → the :class:`Event` that
    ``event_from_line`` gives for its decoded, stripped text, by one typed decode (msgspec);
    ``None`` when the line is not of the common shape (see :func:`event_from_line`; also any line
    with an escaped NUL or surrogate, or that is not UTF-8): the caller then takes the text path,
    which gives the same event or the canonical error. Blank and comment lines give ``None``."""
    decode = _wire_decode or _wire()
    if (
        decode is None
        or not _EVENT_SLOTS_KNOWN  # the slots _checked fills (see event_from_line)
        or len(raw) > MAX_EVENT_BYTES
        or raw.count(b"{") + raw.count(b"[") > MAX_EVENT_DEPTH
        # ``find``, not ``in``: ``bytes.__contains__`` tries its operand as an int first, and
        # raises and clears a TypeError for every line
        or (raw.find(b"\\u") >= 0 and _SUSPECT_ESCAPE_BYTES.search(raw) is not None)
    ):
        return None
    w = decode(raw)
    if w is None:
        return None
    return _checked(w.id, w.type, w.at, w.case, w.data)


def event_from_plain(raw: bytes, seconds: float) -> Event | None:
    """:func:`event_from_bytes` of a line the core's line sorter found plain: within
    :data:`MAX_EVENT_BYTES` and :data:`MAX_EVENT_DEPTH`, without a ``\\u`` escape, its ``at`` a
    strict ISO 8601 instant whose POSIX seconds (``_ts``) are ``seconds``
    (``carepath_core._share_lines``): the byte checks and the instant's arithmetic are not done
    again. ``None`` as :func:`event_from_bytes` gives it."""
    decode = _wire_decode or _wire()
    if decode is None or not _EVENT_SLOTS_KNOWN:
        return None
    w = decode(raw)
    if w is None:
        return None
    return _checked(w.id, w.type, w.at, w.case, w.data, seconds)
