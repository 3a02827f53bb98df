"""The engine's data: :class:`Event` in; :class:`CaseState`, :class:`Action`, :class:`Signal`
and :class:`Deadline` out. All immutable; states round-trip through JSON (``to_json`` /
``from_json``) with a format version.

Instants are aware ``datetime`` objects in the public API and ISO 8601 with offsets in JSON;
internally the engine keeps POSIX seconds (floats rounded to microseconds) so that business-time
arithmetic stays cheap and results are byte-for-byte reproducible.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from carepath._records import fast_init

try:  # a declared dependency: encodes states 4-5x faster than the standard library
    import orjson as _orjson
except ImportError:  # pragma: no cover - without it, the standard library writes the same JSON
    _orjson = None  # type: ignore[assignment]

__all__ = [
    "MAX_EVENT_BYTES", "MAX_EVENT_DEPTH", "STATE_FORMAT", "Action", "CaseState", "Clock", "ClockRecord", "Deadline", "Event", "Pending", "Signal",
    "decode_event", "event_from_line", "from_iso", "to_iso",
]

STATE_FORMAT = 1
#: Untrusted events are bounded: a JSON line's size and its data's nesting.
MAX_EVENT_BYTES = 256 * 1024
MAX_EVENT_DEPTH = 32
_EMPTY: Mapping[str, Any] = MappingProxyType({})


def dumps(obj: Any) -> str:
    """Compact JSON with sorted keys, as carepath writes states and actions: by orjson when it can
    encode ``obj`` exactly, else by the standard library (an integer beyond 64 bits, a lone
    surrogate). Both write the same text, except that orjson spells floats below 1e-4 in plain
    decimals (``0.00001`` for ``1e-05``); either reads back to the same value."""
    if _orjson is not None:
        try:
            return _orjson.dumps(obj, option=_orjson.OPT_SORT_KEYS).decode()
        except TypeError:
            pass
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _r(x: float) -> float:
    """Round POSIX seconds to microseconds (stable, reproducible instants)."""
    return round(x * 1_000_000) / 1_000_000


def ts(t: datetime) -> float:
    """An aware datetime → POSIX seconds (µs precision)."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"naive datetime {t.isoformat()} is not allowed: give a timezone (e.g. +07:00)")
    return _r(t.timestamp())


_TZ_CACHE: dict[str, tzinfo] = {}


def zone(name: str) -> tzinfo:
    """A cached ZoneInfo."""
    z = _TZ_CACHE.get(name)
    if z is None:
        z = UTC if name == "UTC" else ZoneInfo(name)
        _TZ_CACHE[name] = z
    return z


def dt(x: float, tz: tzinfo = UTC) -> datetime:
    """POSIX seconds → aware datetime in ``tz``."""
    return datetime.fromtimestamp(x, tz)


def to_iso(x: float | None, tz: tzinfo = UTC) -> str | None:
    """POSIX seconds → ISO 8601 with offset (``None`` stays ``None``)."""
    if x is None:
        return None
    d = datetime.fromtimestamp(x, tz)
    return d.isoformat(timespec="microseconds" if d.microsecond else "seconds")


def from_iso(s: str) -> float:
    """ISO 8601 with offset (or ``Z``) → POSIX seconds; a naive instant is a ``ValueError``."""
    d = datetime.fromisoformat(s.replace("Z", "+00:00") if s.endswith("Z") else s)
    return ts(d)


def _json_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, timedelta):
        return v.total_seconds()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, Mapping):
        return {str(k): _json_value(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_value(x) for x in v]
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


_PLAIN = frozenset({str, int, bool, type(None)})


def _json_data(m: Mapping[str, Any]) -> Any:
    """:func:`_json_value` of case data, answered without recursion when every value is a plain
    string, integer, boolean or null (the usual case)."""
    for v in m.values():
        if v.__class__ not in _PLAIN:
            return _json_value(m)
    return dict(m)


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
    """Decode one untrusted JSON event (a JSONL line): bounded in size and nesting.

    Raises ``ValueError`` saying what is wrong (``not JSON: …``, too large, too deep, not an object).
    """
    if len(text) > MAX_EVENT_BYTES:
        raise ValueError(f"event is {len(text):,} bytes; the limit is {MAX_EVENT_BYTES:,}")
    try:
        obj = json.loads(text)
    except RecursionError:
        raise ValueError(f"event nests deeper than {MAX_EVENT_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"an event is a JSON object, got {type(obj).__name__}")
    if not _depth_ok(obj, MAX_EVENT_DEPTH):
        raise ValueError(f"event nests deeper than {MAX_EVENT_DEPTH} levels")
    return obj


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, init=False)
class Event:
    """Something that happened: ``{id, type, at, case, data}``; ``at`` must be timezone-aware."""

    id: str
    type: str
    at: datetime
    case: str | None
    data: Mapping[str, Any]
    _ts: float = field(repr=False, compare=False)

    def __init__(self, id: str, type: str, at: datetime, case: str | None = None,
                 data: Mapping[str, Any] | None = None) -> None:
        if not isinstance(type, str) or not type:
            raise ValueError("an event needs a non-empty `type`")
        if not isinstance(at, datetime):
            raise ValueError(f"event `at` must be an aware datetime, got {at!r}")
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"event `at` {at.isoformat()} has no timezone; give an offset such as +07:00")
        if data is not None and not isinstance(data, Mapping):
            raise ValueError("event `data` must be a mapping")
        object.__setattr__(self, "id", str(id))
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "at", at)
        object.__setattr__(self, "case", None if case is None else str(case))
        object.__setattr__(self, "data", MappingProxyType(dict(data)) if data else _EMPTY)
        object.__setattr__(self, "_ts", ts(at))

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape (SPEC §1)."""
        return {"id": self.id, "type": self.type, "at": self.at.isoformat(), "case": self.case,
                "data": _json_value(self.data)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Event:
        """Build from the JSON shape; raises ``ValueError`` naming the bad field."""
        if not isinstance(d, Mapping):
            raise ValueError("an event is a JSON object")
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
        if not _depth_ok(dict(data), MAX_EVENT_DEPTH - 1):
            raise ValueError(f"field `data` nests deeper than {MAX_EVENT_DEPTH - 1} levels")
        return cls(id=str(eid), type=d["type"], at=at, case=None if case is None else str(case), data=data)


_decoder = json.JSONDecoder()
#: What json.loads runs, without its per-call Python wrapper (``raw_decode`` if this CPython detail is absent).
_scan: Callable[[str, int], tuple[Any, int]] = getattr(_decoder, "scan_once", _decoder.raw_decode)
_fromiso = datetime.fromisoformat
_new = object.__new__
_set = object.__setattr__
#: The fast path fills an Event's slots directly; it is used only while they are the ones it knows.
_EVENT_SLOTS_KNOWN = getattr(Event, "__slots__", None) == ("id", "type", "at", "case", "data", "_ts")


def event_from_line(text: str) -> Event:
    """One JSONL line (stripped) → :class:`Event`: the same result, or the same ``ValueError``, as
    ``Event.from_dict(decode_event(text))``, in about a third of the time.

    The common shape (a JSON object of at most 32 brackets, string ``id``/``type``/``at``, string
    or missing ``case``, object or missing ``data``, an aware ISO 8601 ``at``) is decoded once and
    checked once; anything else goes through the general path, which raises the canonical error.
    """
    if len(text) <= MAX_EVENT_BYTES and _EVENT_SLOTS_KNOWN:
        try:
            d, end = _scan(text, 0)
        except (StopIteration, ValueError, RecursionError):
            d = end = None
        # ≤ 32 opening brackets bound the nesting of the object (≤ 32) and of its data (≤ 31)
        if end == len(text) and type(d) is dict and text.count("{") + text.count("[") <= MAX_EVENT_DEPTH:
            et = d.get("type")
            at = d.get("at")
            eid = d.get("id")
            case = d.get("case")
            data = d.get("data")
            if type(et) is str and et and type(at) is str and type(eid) is str \
                    and (case is None or type(case) is str) and (data is None or type(data) is dict):
                try:
                    when = _fromiso(at.replace("Z", "+00:00") if at.endswith("Z") else at)
                except ValueError:
                    when = None
                if when is not None and when.tzinfo is not None and when.utcoffset() is not None:
                    ev = _new(Event)
                    _set(ev, "id", eid)
                    _set(ev, "type", et)
                    _set(ev, "at", when)
                    _set(ev, "case", case)
                    _set(ev, "data", MappingProxyType(data) if data else _EMPTY)  # a fresh dict: no copy
                    _set(ev, "_ts", round(when.timestamp() * 1_000_000) / 1_000_000)
                    return ev
    return Event.from_dict(decode_event(text))


@fast_init
@dataclass(frozen=True, slots=True)
class Action:
    """An instruction for the host: ``{id, playbook, case, type, params, at, source}``."""

    id: str
    playbook: str
    case: str
    type: str
    params: Mapping[str, Any]
    at: datetime
    source: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape (SPEC §4.1)."""
        return {"id": self.id, "playbook": self.playbook, "case": self.case, "type": self.type,
                "params": _json_data(self.params), "at": self.at.isoformat(), "source": self.source}

    def to_json(self) -> str:
        """:meth:`to_dict` as compact JSON with sorted keys (what the stores' outboxes hold)."""
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Action:
        """Inverse of :meth:`to_dict`."""
        return cls(d["id"], d["playbook"], d["case"], d["type"], MappingProxyType(dict(d.get("params") or {})),
                   datetime.fromisoformat(d["at"]), d["source"])


@fast_init
@dataclass(frozen=True, slots=True)
class ClockRecord:
    """One finished clock cycle."""

    cycle: int
    started: datetime
    stopped: datetime
    elapsed: timedelta
    paused: timedelta
    target: timedelta | None
    met: bool | None
    failed_by: timedelta | None

    def to_dict(self) -> dict[str, Any]:
        """JSON shape: instants ISO 8601, durations in seconds."""
        return {"cycle": self.cycle, "started": self.started.isoformat(), "stopped": self.stopped.isoformat(),
                "elapsed": self.elapsed.total_seconds(), "paused": self.paused.total_seconds(),
                "target": None if self.target is None else self.target.total_seconds(), "met": self.met,
                "failed_by": None if self.failed_by is None else self.failed_by.total_seconds()}


@fast_init
@dataclass(frozen=True, slots=True)
class Signal:
    """An engine-raised event: ``{type, at, sla?, cycle?, record?}``."""

    type: str
    at: datetime
    sla: str | None = None
    cycle: int | None = None
    record: ClockRecord | None = None
    data: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape; absent optional keys are omitted."""
        d: dict[str, Any] = {"type": self.type, "at": self.at.isoformat()}
        if self.sla is not None:
            d["sla"] = self.sla
        if self.cycle is not None:
            d["cycle"] = self.cycle
        if self.record is not None:
            d["record"] = self.record.to_dict()
        if self.data:
            d["data"] = _json_value(self.data)
        return d


@fast_init
@dataclass(frozen=True, slots=True)
class Deadline:
    """A wake-up: ``{kind: clock|threshold|timer|action|schedule, name, due}``."""

    kind: str
    name: str
    due: datetime

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape."""
        return {"kind": self.kind, "name": self.name, "due": self.due.isoformat()}


@fast_init
@dataclass(frozen=True, slots=True)
class Pending:
    """A timer, delayed action or schedule held in the state until ``due`` (POSIX seconds).

    ``kind`` is ``action``, ``timer`` or ``schedule``; ``ref`` the playbook path of its definition;
    ``owner`` what cancels it: ``("stage", epoch)``, ``("clock", name, cycle)`` or ``()`` (kept).
    """

    due: float
    kind: str
    ref: str
    owner: tuple[Any, ...]
    seq: int = 0  # creation order, a tie-break that keeps firing deterministic
    origin: float = 0.0  # the instant it was armed (for `set` actions and traces)

    def to_list(self) -> list[Any]:
        """Compact JSON form."""
        return [_n(self.due), self.kind, self.ref, list(self.owner), self.seq, _n(self.origin)]

    @classmethod
    def from_list(cls, x: list[Any]) -> Pending:
        """Inverse of :meth:`to_list`."""
        return cls(float(x[0]), str(x[1]), str(x[2]), tuple(x[3]), int(x[4]), float(x[5]))


@fast_init
@dataclass(frozen=True, slots=True)
class Clock:
    """One SLA clock of a case (SPEC §4.3). Durations are business time in the clock's calendar."""

    name: str
    status: str = "pending"
    cycle: int = 0
    breached: bool = False
    started_s: float | None = None
    as_of_s: float | None = None
    elapsed_s: float = 0.0
    paused_s: float = 0.0
    pause_from_s: float | None = None
    pauses: tuple[tuple[float, float], ...] = ()
    target_index: int | None = None
    target_s: float | None = None
    calendar: str | None = None
    breach_s: float | None = None
    due_s: float | None = None
    fired: int = 0
    conds: int = 0  # bit set: which `when` triggers held at the last evaluation
    history: tuple[ClockRecord, ...] = ()
    tz: tzinfo = field(default=UTC, compare=False, repr=False)

    @property
    def due(self) -> datetime | None:
        """When the cycle breaches (``None`` while paused or not running); the breach instant once breached."""
        return None if self.due_s is None else dt(self.due_s, self.tz)

    @property
    def elapsed(self) -> timedelta:
        """Business time elapsed in the current (or last) cycle, as of the case's ``now``."""
        return timedelta(seconds=self.elapsed_s)

    @property
    def paused(self) -> timedelta:
        """Business time spent paused in the current (or last) cycle."""
        return timedelta(seconds=self.paused_s)

    @property
    def remaining(self) -> timedelta | None:
        """Target − elapsed (negative once breached); ``None`` without a target."""
        return None if self.target_s is None else timedelta(seconds=self.target_s - self.elapsed_s)

    @property
    def target(self) -> timedelta | None:
        """The target of the current cycle."""
        return None if self.target_s is None else timedelta(seconds=self.target_s)

    @property
    def failed_by(self) -> timedelta | None:
        """How far past the target the cycle went (elapsed − target), once breached."""
        if self.target_s is None or not self.breached:
            return None
        return timedelta(seconds=max(0.0, self.elapsed_s - self.target_s))

    @property
    def started(self) -> datetime | None:
        """When the current (or last) cycle started."""
        return None if self.started_s is None else dt(self.started_s, self.tz)

    @property
    def is_open(self) -> bool:
        """Running or paused."""
        return self.status in ("running", "paused")

    def to_dict(self, now_s: float | None = None) -> dict[str, Any]:
        """JSON shape (compact: defaults omitted, whole seconds written as integers, and
        ``as_of_s`` left out when it equals the case's ``now_s``)."""
        d: dict[str, Any] = {"status": self.status}
        implied = self._implied(now_s)
        for k in ("cycle", "breached", "started_s", "as_of_s", "elapsed_s", "paused_s", "pause_from_s",
                  "target_index", "target_s", "calendar", "breach_s", "due_s", "fired", "conds"):
            v = getattr(self, k)
            if k in implied:  # written only when it differs from what the decoder would infer
                if v != implied[k]:
                    d[k] = _n(v)
            elif v != _CLOCK_DEFAULTS[k]:  # (target_index 0 is not a default: keep it)
                d[k] = _n(v)
        if self.pauses:
            d["pauses"] = [[_n(a), _n(b)] for a, b in self.pauses]
        if self.history:  # compact rows: [cycle, started, stopped, elapsed, paused, target, met, failed_by]
            d["history"] = [[r.cycle, _n(_r(r.started.timestamp())), _n(_r(r.stopped.timestamp())),
                             _n(r.elapsed.total_seconds()), _n(r.paused.total_seconds()),
                             None if r.target is None else _n(r.target.total_seconds()),
                             r.met, None if r.failed_by is None else _n(r.failed_by.total_seconds())]
                            for r in self.history]
        return d

    def _implied(self, now_s: float | None) -> dict[str, Any]:
        """Values the JSON leaves out because they follow from the rest: a closed cycle's start,
        end, elapsed, paused and target are its last history row; ``as_of_s`` of an open or
        pending clock is the case's ``now``; a breached clock is due at its breach."""
        r = self.history[-1] if self.history and self.status in _CLOSED else None  # only a closed row matters
        last = None if r is None else (
            r.cycle, _r(r.started.timestamp()), _r(r.stopped.timestamp()), r.elapsed.total_seconds(),
            r.paused.total_seconds(), None if r.target is None else r.target.total_seconds())
        return _implied(self.status, self.cycle, self.breached, self.breach_s, last, now_s)

    @classmethod
    def from_dict(cls, name: str, d: Mapping[str, Any], tz: tzinfo, now_s: float | None = None) -> Clock:
        """Inverse of :meth:`to_dict` (give the same ``now_s``)."""
        hist = tuple(
            ClockRecord(r[0], dt(r[1], tz), dt(r[2], tz), timedelta(seconds=r[3]), timedelta(seconds=r[4]),
                        None if r[5] is None else timedelta(seconds=r[5]), r[6],
                        None if r[7] is None else timedelta(seconds=r[7]))
            if isinstance(r, list) else
            ClockRecord(r["cycle"], datetime.fromisoformat(r["started"]), datetime.fromisoformat(r["stopped"]),
                        timedelta(seconds=r["elapsed"]), timedelta(seconds=r["paused"]),
                        None if r["target"] is None else timedelta(seconds=r["target"]), r["met"],
                        None if r["failed_by"] is None else timedelta(seconds=r["failed_by"]))
            for r in d.get("history", ())
        )
        kw: dict[str, Any] = {k: (float(d[k]) if k in _FLOAT_KEYS and d[k] is not None else d[k])
              for k in ("cycle", "breached", "started_s", "as_of_s", "elapsed_s", "paused_s",
                        "pause_from_s", "target_index", "target_s", "calendar", "breach_s", "due_s",
                        "fired", "conds") if k in d}
        rows = d.get("history") or ()
        r = rows[-1] if rows else None
        last = None if r is None else (
            (r[0], float(r[1]), float(r[2]), float(r[3]), float(r[4]), None if r[5] is None else float(r[5]))
            if isinstance(r, list) else
            (r["cycle"], _r(hist[-1].started.timestamp()), _r(hist[-1].stopped.timestamp()), float(r["elapsed"]),
             float(r["paused"]), None if r["target"] is None else float(r["target"])))
        implied = _implied(d["status"], int(d.get("cycle", 0)), bool(d.get("breached", False)), kw.get("breach_s"),
                           last, now_s)
        for k, v in implied.items():
            kw.setdefault(k, v)
        return cls(name=name, status=d["status"], pauses=tuple((float(p[0]), float(p[1])) for p in d.get("pauses", ())),
                   history=hist, tz=tz, **kw)


_CLOSED = frozenset({"met", "breached", "cancelled"})


def _implied(status: str, cycle: int, breached: bool, breach_s: float | None,
             last: tuple[int, float, float, float, float, float | None] | None,
             now_s: float | None) -> dict[str, Any]:
    """The clock fields the JSON may leave out (see ``Clock._implied``); ``last`` is the last
    history row as numbers ``(cycle, started, stopped, elapsed, paused, target)``."""
    out: dict[str, Any] = {}
    if status in _CLOSED and last is not None and last[0] == cycle:
        out["started_s"], out["as_of_s"], out["elapsed_s"], out["paused_s"], out["target_s"] = last[1:]
    elif now_s is not None and status != "pending":
        out["as_of_s"] = now_s
    if breached:
        out["due_s"] = breach_s
    return out
_FLOAT_KEYS = frozenset({"started_s", "as_of_s", "elapsed_s", "paused_s", "pause_from_s", "target_s", "breach_s",
                         "due_s"})


def _n(v: Any) -> Any:
    """A whole float as an int (``1800.0`` → ``1800``) for compact JSON; anything else unchanged."""
    if v.__class__ is float and v.is_integer() and abs(v) < 2**53:
        return int(v)
    return v


_CLOCK_DEFAULTS: dict[str, Any] = {"cycle": 0, "breached": False, "started_s": None, "as_of_s": None,
                                   "elapsed_s": 0.0, "paused_s": 0.0, "pause_from_s": None, "target_index": None,
                                   "target_s": None, "calendar": None, "breach_s": None, "due_s": None, "fired": 0,
                                   "conds": 0}


@fast_init
@dataclass(frozen=True, slots=True)
class CaseState:
    """A case at an instant: immutable; ``to_json()`` / ``CaseState.from_json()`` round-trip."""

    playbook: str
    version: str
    content_hash: str
    case: str
    stage: str
    data: Mapping[str, Any]
    tier: str | None
    segment: str | None
    segments: tuple[str, ...]
    clocks: Mapping[str, Clock]
    now_s: float
    opened_s: float
    seq: int = 0
    epoch: int = 0
    ended: bool = False
    pending: tuple[Pending, ...] = ()
    sends: Mapping[str, tuple[float, ...]] = field(default_factory=lambda: _EMPTY)
    timezone: str = "UTC"
    next_wakeup_s: float | None = None

    @property
    def now(self) -> datetime:
        """The instant of the latest event applied or item fired."""
        return dt(self.now_s, zone(self.timezone))

    @property
    def opened(self) -> datetime:
        """When the case was opened."""
        return dt(self.opened_s, zone(self.timezone))

    @property
    def next_wakeup(self) -> datetime | None:
        """The earliest deadline, or ``None``."""
        return None if self.next_wakeup_s is None else dt(self.next_wakeup_s, zone(self.timezone))

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape, with ``format``."""
        tz = zone(self.timezone)
        d: dict[str, Any] = {
            "format": STATE_FORMAT,
            "playbook": {"id": self.playbook, "version": self.version, "hash": self.content_hash},
            "case": self.case, "stage": self.stage, "data": _json_data(self.data), "tier": self.tier,
            "segments": list(self.segments),
            "clocks": {n: c.to_dict(self.now_s) for n, c in self.clocks.items()},
            "now": to_iso(self.now_s, tz), "opened": to_iso(self.opened_s, tz), "seq": self.seq,
            "epoch": self.epoch, "timezone": self.timezone,
            "next_wakeup": to_iso(self.next_wakeup_s, tz),
        }
        # `segment` is the first of `segments` unless said otherwise; `ended` is written when true
        if self.segment != (self.segments[0] if self.segments else None):
            d["segment"] = self.segment
        if self.ended:
            d["ended"] = True
        if self.pending:
            d["pending"] = [p.to_list() for p in self.pending]
        if self.sends:
            d["sends"] = {k: list(v) for k, v in self.sends.items()}
        return d

    def to_json(self) -> str:
        """Compact, deterministic JSON."""
        return dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str | bytes | Mapping[str, Any]) -> CaseState:
        """Parse :meth:`to_json` output (a string or an already-decoded mapping)."""
        d: Mapping[str, Any] = json.loads(text) if isinstance(text, str | bytes) else text
        if d.get("format") != STATE_FORMAT:
            raise ValueError(f"unsupported CaseState format {d.get('format')!r}; this carepath reads {STATE_FORMAT}")
        tzname = d.get("timezone", "UTC")
        tz = zone(tzname)
        pb = d["playbook"]
        nw = d.get("next_wakeup")
        segments = tuple(d.get("segments") or ())
        now_s = from_iso(d["now"])
        return cls(
            playbook=pb["id"], version=pb["version"], content_hash=pb["hash"], case=d["case"], stage=d["stage"],
            data=MappingProxyType(dict(d.get("data") or {})), tier=d.get("tier"),
            segment=d["segment"] if "segment" in d else (segments[0] if segments else None), segments=segments,
            clocks=MappingProxyType({n: Clock.from_dict(n, c, tz, now_s) for n, c in (d.get("clocks") or {}).items()}),
            now_s=now_s, opened_s=from_iso(d["opened"]), seq=int(d.get("seq", 0)),
            epoch=int(d.get("epoch", 0)), ended=bool(d.get("ended", False)),
            pending=tuple(Pending.from_list(p) for p in d.get("pending", ())),
            sends=MappingProxyType({k: tuple(v) for k, v in (d.get("sends") or {}).items()}),
            timezone=tzname, next_wakeup_s=None if nw is None else from_iso(nw),
        )
