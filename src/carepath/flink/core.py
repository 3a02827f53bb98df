"""The Flink job's per-event and per-key logic, with no PyFlink in it.

Everything the PyFlink functions decide is decided here, on plain Python values, so that it can
be tested without a JVM and so that the in-memory :mod:`reference <carepath.flink.reference>`
run executes exactly the same code:

* :func:`fan_out` turns one input line into one record per playbook that has a case key for it
  (or into a rejection: not JSON, not an event, or refused by every playbook that has no key);
* :func:`apply_event` and :func:`advance_to` are the per-case steps, both through
  :func:`carepath.engine.router.route` / :meth:`Engine.advance`, so Flink and the embedded runtime
  cannot disagree;
* :func:`erase_records` and :func:`erase_case` carry an ``erase`` control line (SPEC §10) to the
  keyed state of one case key in every playbook (or in the one it names);
* :class:`Verdict` folds the per-playbook outcomes of one event into the overall decision
  (``rejected`` only when no playbook applied it and some rejected it).

Instants: Flink timestamps are integer milliseconds; the engine keeps microseconds. An event's
Flink timestamp is its ``at`` rounded *down* to the millisecond, a wake-up's timer its due time
rounded *up*, so a timer never fires before what it stands for; the engine itself orders events
and wake-ups exactly, so the rounding never changes a result.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from carepath.events import Event, Line, decode_event
from carepath.state import Action, CaseState, erase_fields

if TYPE_CHECKING:
    from carepath.engine.engine import Engine

__all__ = [
    "FLUSH_TS",
    "MAX_WATERMARK",
    "Record",
    "Verdict",
    "advance_to",
    "apply_event",
    "cap_us",
    "control_at",
    "erase_case",
    "erase_records",
    "fan_out",
    "is_control",
    "micros",
    "rejection",
    "timer_ms",
]

#: Flink's watermark at the end of a bounded input (``Long.MAX_VALUE``).
MAX_WATERMARK = 2**63 - 1
#: The end-of-input timer that writes each case's final state (no wake-up is ever this late).
FLUSH_TS = MAX_WATERMARK - 1


def micros(t: datetime) -> int:
    """An aware datetime as integer POSIX microseconds (the engine's precision)."""
    return round(t.timestamp() * 1_000_000)


def event_ms(us: int) -> int:
    """The Flink timestamp of an event at ``us`` microseconds: rounded down to the millisecond."""
    return us // 1000


def timer_ms(seconds: float) -> int:
    """The Flink timer of a wake-up due at POSIX ``seconds``: rounded up to the millisecond."""
    us = round(seconds * 1_000_000)
    return -((-us) // 1000)


def instant(seconds: float) -> datetime:
    """POSIX seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Record:
    """One event on its way to one playbook's case.

    ``key`` is ``"<playbook index>:<case key>"``, ``ts`` the Flink timestamp (ms), ``us`` the
    exact instant, ``n`` how many playbooks received the event by key (the :class:`Verdict`
    waits for that many outcomes) and ``pre`` the rejection (JSON) already decided by a playbook
    that found no case key in it, or ``""``.
    """

    key: str
    ts: int
    pb: int
    n: int
    line: str
    pre: str = ""

    def to_tuple(self) -> tuple[str, int, int, int, str, str]:
        """The Flink row (``Types.TUPLE([STRING, LONG, INT, INT, STRING, STRING])``)."""
        return (self.key, self.ts, self.pb, self.n, self.line, self.pre)

    @classmethod
    def of(cls, t: Sequence[Any]) -> Record:
        """Inverse of :meth:`to_tuple`."""
        return cls(str(t[0]), int(t[1]), int(t[2]), int(t[3]), str(t[4]), str(t[5] or ""))


def rejection(event: Any, reason: str, message: str, playbook: str | None = None) -> str:
    """A rejected-output line: ``{event, reason, message, playbook}`` (``event`` is the event
    object as received, or ``{"raw": text}`` for a line that is not a JSON object, as the
    embedded runtime records it)."""
    return json.dumps(
        {"event": event, "reason": reason, "message": message, "playbook": playbook},
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )


def line_rejection(line: Line) -> str:
    """The rejected-output line of a line the bounded reader refused (not UTF-8, over-long:
    :class:`~carepath.events.Line` with a ``problem``), as ``carepath run`` records it."""
    return rejection({"raw": line.text}, "invalid", f"line {line.number}: {line.problem}")


def parse_line(line: str) -> tuple[Event | None, Any, str]:
    """``(event, decoded, error)``: the event, or ``None`` with the decoded JSON (or raw text)
    and the error message."""
    try:
        obj = decode_event(line)
    except ValueError as exc:
        return None, {"raw": line}, str(exc)
    try:
        return Event.from_dict(obj), obj, ""
    except ValueError as exc:
        return None, obj, str(exc)


def skip_line(line: str) -> bool:
    """Blank lines and ``#`` / ``//`` comments carry no event (as ``carepath simulate`` reads JSONL)."""
    s = line.strip()
    return not s or s.startswith(("#", "//"))


#: Rejection ranks, as the embedded runtime decides an event sent to several playbooks: a hard
#: rejection (``invalid``, ``out_of_order``, ``playbook_mismatch``) rejects the event whatever the
#: others did; otherwise one playbook applying it is enough; otherwise ``unknown_case``; otherwise
#: "no case key" (``invalid``).
HARD, UNKNOWN, NO_KEY = 0, 2, 3


def rank_of(reason: str | None) -> int:
    """The rank of a rejection reason from :func:`~carepath.engine.router.route`."""
    return UNKNOWN if reason == "unknown_case" else HARD


def fan_out(engines: Sequence[Engine], line: str) -> tuple[list[Record], str | None]:
    """Route one input line to the playbooks: ``(records, rejection)``.

    A record goes to every playbook that mentions the event's type and finds a case key in it.
    ``rejection`` is set when the line is not an event, or when no playbook takes it by key and
    one of them rejected it (its key expression failed, or it has no key); when some playbook
    takes it, that ranked rejection rides along in ``Record.pre`` for the :class:`Verdict`.
    """
    if skip_line(line):
        return [], None
    event, obj, err = parse_line(line)
    if event is None and is_control(obj):
        return erase_records(engines, obj)
    if event is None:
        return [], rejection(obj, "invalid", err)
    keyed: list[tuple[int, str]] = []
    pre: tuple[int, str] | None = None
    for i, engine in enumerate(engines):
        if not engine.mentions(event.type):
            continue
        try:
            key = engine.case_key(event)
        except Exception as exc:  # a key expression that cannot evaluate on this payload
            if pre is None or pre[0] > HARD:
                pre = (
                    HARD,
                    rejection(
                        obj,
                        "invalid",
                        f"{engine.playbook.id}: cannot compute the case key of "
                        f"event {event.id}: {exc}",
                        engine.playbook.id,
                    ),
                )
            continue
        if key:
            keyed.append((i, key))
        elif pre is None:
            pre = (
                NO_KEY,
                rejection(
                    obj,
                    "invalid",
                    f"event {event.id} ({event.type}) has no case key",
                    engine.playbook.id,
                ),
            )
    if not keyed:
        return [], (None if pre is None else pre[1])
    canon = json.dumps(event.to_dict(), ensure_ascii=False, separators=(",", ":"))
    ts = event_ms(micros(event.at))
    pre_text = "" if pre is None else json.dumps(list(pre), ensure_ascii=False)
    return [Record(f"{i}:{key}", ts, i, len(keyed), canon, pre_text) for i, key in keyed], None


def cap_us(until_us: int | None, last_us: int | None) -> int | None:
    """The last instant (µs) a wake-up may fire at, as ``carepath run --clock simulated`` ends.

    Without ``--until``: the last event's instant. With it: ``until`` — but wake-ups due strictly
    before any event fire before it (the timeline), so never less than just before the last event.
    """
    if until_us is None:
        return last_us
    if last_us is None or until_us >= last_us:
        return until_us
    return last_us - 1


# ---------------------------------------------------------------------------------------------
@dataclass(slots=True)
class Applied:
    """What one event did to one case."""

    state: CaseState | None
    actions: list[Action]
    status: str
    reason: str | None = None
    message: str = ""


def apply_event(engine: Engine, state: CaseState | None, event: Event) -> Applied:
    """Route ``event`` to the case whose state is ``state`` (the router's decision, applied)."""
    from carepath.engine.router import route

    try:
        r = route(engine, state, event)
    except Exception as exc:  # an odd payload must not stop the job: the event is invalid
        return Applied(
            state,
            [],
            "rejected",
            "invalid",
            f"cannot apply event {event.id}: {type(exc).__name__}: {exc}",
        )
    if r.status == "applied" and r.step is not None:
        return Applied(r.step.state, list(r.step.actions), "applied")
    return Applied(state, [], r.status, r.reason, r.message)


def advance_to(
    engine: Engine, state: CaseState | None, seconds: float
) -> tuple[CaseState | None, list[Action]]:
    """Fire what is due at or before ``seconds`` (nothing when the case has moved past it)."""
    if (
        state is None
        or state.next_wakeup_s is None
        or state.next_wakeup_s > seconds
        or seconds <= state.now_s
    ):
        return state, []
    step = engine.advance(state, instant(seconds))
    return step.state, list(step.actions)


def action_line(a: Action) -> str:
    """An action as one JSON line: ``Action.to_dict()``, byte for byte as ``carepath run --actions``
    writes it (the runtime's outbox keeps actions as JSON with sorted keys, and hands that back)."""
    d = a.to_dict()
    d["params"] = json.loads(json.dumps(d["params"], sort_keys=True, ensure_ascii=False))
    return json.dumps(d, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------
@dataclass(slots=True)
class Verdict:
    """The overall decision for one event sent to ``n`` playbooks by key (plus ``pre``, the ranked
    rejection of the playbooks that found no key), as the embedded runtime decides it.

    Each keyed playbook reports its status and, when rejected, its rejection line; once all ``n``
    are in, :meth:`result` is the rejection to emit or ``None``: a hard rejection always; else
    ``None`` if some playbook applied it; else the best-ranked rejection (lowest playbook index
    among equals).
    """

    n: int
    pre: str = ""
    seen: int = 0
    applied: bool = False
    best: tuple[int, int, str] | None = None  # (rank, playbook index, rejection line)

    def __post_init__(self) -> None:
        if self.pre and self.best is None:
            rank, line = json.loads(self.pre)
            self.best = (int(rank), -1, str(line))

    def add(self, pb: int, status: str, reason: str | None = None, rejected: str = "") -> bool:
        """Record one outcome; True when all ``n`` are in."""
        self.seen += 1
        if status == "applied":
            self.applied = True
        elif status == "rejected" and rejected:
            cand = (rank_of(reason), pb, rejected)
            if self.best is None or cand[:2] < self.best[:2]:
                self.best = cand
        return self.seen >= self.n

    def result(self) -> str | None:
        """The rejection line to emit, if the event is rejected overall."""
        if self.best is None:
            return None
        if self.applied and self.best[0] != HARD:
            return None
        return self.best[2]

    def to_json(self) -> str:
        """Keyed-state form."""
        return json.dumps(
            [self.n, self.pre, self.seen, self.applied, list(self.best) if self.best else None],
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> Verdict:
        """Inverse of :meth:`to_json`."""
        n, pre, seen, applied, best = json.loads(text)
        return cls(
            int(n),
            str(pre),
            int(seen),
            bool(applied),
            (int(best[0]), int(best[1]), str(best[2])) if best else None,
        )


def outcome_line(event_id: str, rec: Record, status: str, reason: str | None, rejected: str) -> str:
    """One playbook's outcome for the :class:`Verdict` stage (keyed by event id)."""
    return json.dumps(
        [event_id, rec.n, rec.pre, rec.pb, status, reason, rejected], ensure_ascii=False
    )


def event_obj(line: str) -> Mapping[str, Any]:
    """The canonical event object of a record's line."""
    obj: Mapping[str, Any] = json.loads(line)
    return obj


# ---------------------------------------------------------------------------------------------
#: The one control line the job knows: ``{"control": "erase", "case": KEY, "at": INSTANT,
#: "playbook"?: ID}``.
ERASE = "erase"


def is_control(obj: Any) -> bool:
    """Whether a decoded line is a control line (a JSON object with a ``control`` member)."""
    return isinstance(obj, Mapping) and "control" in obj


def control_at(obj: Mapping[str, Any]) -> datetime:
    """The ``at`` instant of a control line (``ValueError`` unless an ISO 8601 text with an
    offset)."""
    at = obj.get("at")
    if not isinstance(at, str):
        raise ValueError("at is not a text")
    when = datetime.fromisoformat(at.replace("Z", "+00:00") if at.endswith("Z") else at)
    if when.tzinfo is None:
        raise ValueError("at has no offset")
    return when


def _control_error(obj: Mapping[str, Any], engines: Sequence[Engine]) -> str | None:
    """What is wrong with a control line, or ``None``."""
    ids = [e.playbook.id for e in engines]
    if obj.get("control") != ERASE:
        return f"control line: control {obj.get('control')!r} is unknown; expected {ERASE!r}"
    extra = sorted(set(obj) - {"control", "case", "at", "playbook"})
    if extra:
        return f"control line: unknown member(s) {', '.join(extra)}; expected control, case, at, playbook"
    case = obj.get("case")
    if not isinstance(case, str) or not case:
        return "control line: case must be a non-empty string (the case key to erase)"
    try:
        control_at(obj)
    except ValueError:
        return "control line: at must be an ISO 8601 instant with an offset, e.g. 2027-03-01T09:00:00+07:00"
    pb = obj.get("playbook")
    if pb is not None and pb not in ids:
        return f"control line: playbook {pb!r} is not one of the job's ({', '.join(ids)})"
    return None


def erase_records(
    engines: Sequence[Engine], obj: Mapping[str, Any]
) -> tuple[list[Record], str | None]:
    """An ``erase`` control line → one record per playbook (or for the one it names) keyed by its
    case key, at its ``at`` (so it is applied in the event-time order of the case's events), or
    the ``invalid`` rejection of a malformed control line."""
    err = _control_error(obj, engines)
    if err is not None:
        return [], rejection(obj, "invalid", err)
    case = str(obj["case"])
    ts = event_ms(micros(control_at(obj)))
    canon = json.dumps(dict(obj), ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    pb = obj.get("playbook")
    return [
        Record(f"{i}:{case}", ts, i, 1, canon, "")
        for i, e in enumerate(engines)
        if pb is None or e.playbook.id == pb
    ], None


def erase_case(engine: Engine, state: CaseState | None) -> tuple[CaseState | None, int]:
    """The case ``state`` with its playbook's ``pii`` fields set to null, and how many values
    were erased (the case goes on: its clocks, stage and wake-ups are left as they are)."""
    if state is None:
        return None, 0
    new, erased = erase_fields(state, engine.playbook.pii_fields)
    return new, len(erased)
