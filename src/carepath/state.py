"""The engine's data: :class:`CaseState` with its :class:`Clock` records and :class:`Pending`
items, and what a step returns besides: :class:`Action`, :class:`Signal`, :class:`Deadline`. All
immutable; states round-trip through JSON (``to_json`` / ``from_json``) with a format version.
The engine's input, :class:`~carepath.events.Event`, lives in :mod:`carepath.events`.

Instants are aware ``datetime`` objects in the public API and ISO 8601 with offsets in JSON;
internally the engine keeps POSIX seconds (floats rounded to microseconds) so that business-time
arithmetic stays cheap and results are byte-for-byte reproducible.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from types import MappingProxyType
from typing import Any

from carepath._instants import (
    dt,
    dumps,
    from_iso,
    json_data,
    json_value,
    round_micros,
    to_iso,
    zone,
)
from carepath._records import fast_init

__all__ = [
    "STATE_FORMAT",
    "Action",
    "CaseState",
    "Clock",
    "ClockRecord",
    "Deadline",
    "Pending",
    "Signal",
    "clock_record",
    "erase_fields",
]

STATE_FORMAT = 1
_EMPTY: Mapping[str, Any] = MappingProxyType({})


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
        return {
            "id": self.id,
            "playbook": self.playbook,
            "case": self.case,
            "type": self.type,
            "params": json_data(self.params),
            "at": self.at.isoformat(),
            "source": self.source,
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as compact JSON with sorted keys (what the stores' outboxes hold)."""
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Action:
        """Inverse of :meth:`to_dict`."""
        return cls(
            d["id"],
            d["playbook"],
            d["case"],
            d["type"],
            MappingProxyType(dict(d.get("params") or {})),
            datetime.fromisoformat(d["at"]),
            d["source"],
        )


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
        return {
            "cycle": self.cycle,
            "started": self.started.isoformat(),
            "stopped": self.stopped.isoformat(),
            "elapsed": self.elapsed.total_seconds(),
            "paused": self.paused.total_seconds(),
            "target": None if self.target is None else self.target.total_seconds(),
            "met": self.met,
            "failed_by": None if self.failed_by is None else self.failed_by.total_seconds(),
        }


def clock_record(
    tz: tzinfo,
    cycle: int,
    started: float,
    stopped: float,
    elapsed: float,
    paused: float,
    target: float | None,
    met: bool | None,
    failed: float | None,
) -> ClockRecord:
    """A :class:`ClockRecord` from numbers: instants in POSIX seconds (shown in ``tz``),
    durations in seconds (the native core's form of a record)."""
    fromts = datetime.fromtimestamp
    return ClockRecord(
        cycle,
        fromts(started, tz),
        fromts(stopped, tz),
        timedelta(seconds=elapsed),
        timedelta(seconds=paused),
        None if target is None else timedelta(seconds=target),
        met,
        None if failed is None else timedelta(seconds=failed),
    )


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
            d["data"] = json_value(self.data)
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
        for k in (
            "cycle",
            "breached",
            "started_s",
            "as_of_s",
            "elapsed_s",
            "paused_s",
            "pause_from_s",
            "target_index",
            "target_s",
            "calendar",
            "breach_s",
            "due_s",
            "fired",
            "conds",
        ):
            v = getattr(self, k)
            if k in implied:  # written only when it differs from what the decoder would infer
                if v != implied[k]:
                    d[k] = _n(v)
            elif v != _CLOCK_DEFAULTS[k]:  # (target_index 0 is not a default: keep it)
                d[k] = _n(v)
        if self.pauses:
            d["pauses"] = [[_n(a), _n(b)] for a, b in self.pauses]
        if self.history:
            # compact rows: [cycle, started, stopped, elapsed, paused, target, met, failed_by]
            d["history"] = [
                [
                    r.cycle,
                    _n(round_micros(r.started.timestamp())),
                    _n(round_micros(r.stopped.timestamp())),
                    _n(r.elapsed.total_seconds()),
                    _n(r.paused.total_seconds()),
                    None if r.target is None else _n(r.target.total_seconds()),
                    r.met,
                    None if r.failed_by is None else _n(r.failed_by.total_seconds()),
                ]
                for r in self.history
            ]
        return d

    def _implied(self, now_s: float | None) -> dict[str, Any]:
        """Values the JSON leaves out because they follow from the rest: a closed cycle's start,
        end, elapsed, paused and target are its last history row; ``as_of_s`` of an open or
        pending clock is the case's ``now``; a breached clock is due at its breach."""
        # only a closed row matters
        r = self.history[-1] if self.history and self.status in _CLOSED else None
        last = (
            None
            if r is None
            else (
                r.cycle,
                round_micros(r.started.timestamp()),
                round_micros(r.stopped.timestamp()),
                r.elapsed.total_seconds(),
                r.paused.total_seconds(),
                None if r.target is None else r.target.total_seconds(),
            )
        )
        return _implied(self.status, self.cycle, self.breached, self.breach_s, last, now_s)

    @classmethod
    def from_dict(
        cls, name: str, d: Mapping[str, Any], tz: tzinfo, now_s: float | None = None
    ) -> Clock:
        """Inverse of :meth:`to_dict` (give the same ``now_s``)."""
        hist = tuple(
            ClockRecord(
                r[0],
                dt(r[1], tz),
                dt(r[2], tz),
                timedelta(seconds=r[3]),
                timedelta(seconds=r[4]),
                None if r[5] is None else timedelta(seconds=r[5]),
                r[6],
                None if r[7] is None else timedelta(seconds=r[7]),
            )
            if isinstance(r, list)
            else ClockRecord(
                r["cycle"],
                datetime.fromisoformat(r["started"]),
                datetime.fromisoformat(r["stopped"]),
                timedelta(seconds=r["elapsed"]),
                timedelta(seconds=r["paused"]),
                None if r["target"] is None else timedelta(seconds=r["target"]),
                r["met"],
                None if r["failed_by"] is None else timedelta(seconds=r["failed_by"]),
            )
            for r in d.get("history", ())
        )
        kw: dict[str, Any] = {
            k: (float(d[k]) if k in _FLOAT_KEYS and d[k] is not None else d[k])
            for k in (
                "cycle",
                "breached",
                "started_s",
                "as_of_s",
                "elapsed_s",
                "paused_s",
                "pause_from_s",
                "target_index",
                "target_s",
                "calendar",
                "breach_s",
                "due_s",
                "fired",
                "conds",
            )
            if k in d
        }
        rows = d.get("history") or ()
        r = rows[-1] if rows else None
        last = (
            None
            if r is None
            else (
                (
                    r[0],
                    float(r[1]),
                    float(r[2]),
                    float(r[3]),
                    float(r[4]),
                    None if r[5] is None else float(r[5]),
                )
                if isinstance(r, list)
                else (
                    r["cycle"],
                    round_micros(hist[-1].started.timestamp()),
                    round_micros(hist[-1].stopped.timestamp()),
                    float(r["elapsed"]),
                    float(r["paused"]),
                    None if r["target"] is None else float(r["target"]),
                )
            )
        )
        implied = _implied(
            d["status"],
            int(d.get("cycle", 0)),
            bool(d.get("breached", False)),
            kw.get("breach_s"),
            last,
            now_s,
        )
        for k, v in implied.items():
            kw.setdefault(k, v)
        return cls(
            name=name,
            status=d["status"],
            pauses=tuple((float(p[0]), float(p[1])) for p in d.get("pauses", ())),
            history=hist,
            tz=tz,
            **kw,
        )


_CLOSED = frozenset({"met", "breached", "cancelled"})


def _implied(
    status: str,
    cycle: int,
    breached: bool,
    breach_s: float | None,
    last: tuple[int, float, float, float, float, float | None] | None,
    now_s: float | None,
) -> dict[str, Any]:
    """The clock fields the JSON may leave out (see ``Clock._implied``); ``last`` is the last
    history row as numbers ``(cycle, started, stopped, elapsed, paused, target)``."""
    out: dict[str, Any] = {}
    if status in _CLOSED and last is not None and last[0] == cycle:
        started, as_of, elapsed, paused, target = last[1:]
        out.update(
            started_s=started, as_of_s=as_of, elapsed_s=elapsed, paused_s=paused, target_s=target
        )
    elif now_s is not None and status != "pending":
        out["as_of_s"] = now_s
    if breached:
        out["due_s"] = breach_s
    return out


_FLOAT_KEYS = frozenset(
    {
        "started_s",
        "as_of_s",
        "elapsed_s",
        "paused_s",
        "pause_from_s",
        "target_s",
        "breach_s",
        "due_s",
    }
)


def _n(v: Any) -> Any:
    """A whole float as an int (``1800.0`` → ``1800``) for compact JSON; anything else unchanged."""
    if v.__class__ is float and v.is_integer() and abs(v) < 2**53:
        return int(v)
    return v


_CLOCK_DEFAULTS: dict[str, Any] = {
    "cycle": 0,
    "breached": False,
    "started_s": None,
    "as_of_s": None,
    "elapsed_s": 0.0,
    "paused_s": 0.0,
    "pause_from_s": None,
    "target_index": None,
    "target_s": None,
    "calendar": None,
    "breach_s": None,
    "due_s": None,
    "fired": 0,
    "conds": 0,
}


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
            "case": self.case,
            "stage": self.stage,
            "data": json_data(self.data),
            "tier": self.tier,
            "segments": list(self.segments),
            "clocks": {n: c.to_dict(self.now_s) for n, c in self.clocks.items()},
            "now": to_iso(self.now_s, tz),
            "opened": to_iso(self.opened_s, tz),
            "seq": self.seq,
            "epoch": self.epoch,
            "timezone": self.timezone,
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
            raise ValueError(
                f"unsupported CaseState format {d.get('format')!r}; this carepath reads {STATE_FORMAT}"
            )
        tzname = d.get("timezone", "UTC")
        tz = zone(tzname)
        pb = d["playbook"]
        next_wakeup = d.get("next_wakeup")
        segments = tuple(d.get("segments") or ())
        now_s = from_iso(d["now"])
        return cls(
            playbook=pb["id"],
            version=pb["version"],
            content_hash=pb["hash"],
            case=d["case"],
            stage=d["stage"],
            data=MappingProxyType(dict(d.get("data") or {})),
            tier=d.get("tier"),
            segment=d["segment"] if "segment" in d else (segments[0] if segments else None),
            segments=segments,
            clocks=MappingProxyType(
                {n: Clock.from_dict(n, c, tz, now_s) for n, c in (d.get("clocks") or {}).items()}
            ),
            now_s=now_s,
            opened_s=from_iso(d["opened"]),
            seq=int(d.get("seq", 0)),
            epoch=int(d.get("epoch", 0)),
            ended=bool(d.get("ended", False)),
            pending=tuple(Pending.from_list(p) for p in d.get("pending", ())),
            sends=MappingProxyType({k: tuple(v) for k, v in (d.get("sends") or {}).items()}),
            timezone=tzname,
            next_wakeup_s=None if next_wakeup is None else from_iso(next_wakeup),
        )


def erase_fields(state: CaseState, fields: frozenset[str]) -> tuple[CaseState, list[Any]]:
    """``state`` with every value of ``fields`` (a playbook's ``pii`` case fields) set to null,
    and the values it replaced (SPEC §10 "Personal data"). Clocks, stage, wake-ups and every
    other field stay as they are; ``state`` itself when nothing was set."""
    erased = [state.data[f] for f in sorted(fields) if state.data.get(f) is not None]
    if not erased:
        return state, []
    d = state.to_dict()  # through the JSON shape: a native step's state is rebuilt as a plain one
    d["data"] = {k: (None if k in fields else v) for k, v in d["data"].items()}
    return CaseState.from_json(d), erased
