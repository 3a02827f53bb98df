"""The PyFlink functions of the job (this module imports PyFlink; ``carepath`` never imports it).

* :class:`FanOut` — a ``ProcessFunction``: one input line → one :class:`~carepath.flink.core.Record`
  per playbook with a case key; lines that are not events go to the ``rejected`` side output.
* :class:`CaseFunction` — the ``KeyedProcessFunction`` running the engine per ``(playbook, case)``
  key: ``ValueState`` holds the ``CaseState`` JSON, a ``ListState`` buffers events until the
  watermark passes them, a ``MapState`` remembers applied event ids (re-sent events are dropped),
  and one timer per case stands at its next wake-up.
* :class:`VerdictFunction` — keyed by event id, folds the outcomes of an event sent to several
  playbooks into the overall rejection.

Both :class:`FanOut` and :class:`CaseFunction` say when they work, on the ``timing`` side output
(text ``first SECONDS`` and ``work SECONDS``, wall clock, POSIX seconds): a routing subtask the
instant it takes its first line (the job's start-up is over), a case subtask the instant it
handles an element or a timer, at most every :data:`MARK_EVERY_S` — so ``carepath flink`` can
tell the start-up, the work, and the shutdown after it apart.

Event time (the default): an event is only *buffered* when it arrives, with an event-time timer at
its timestamp. When the watermark passes that timestamp every earlier event has arrived (within the
out-of-orderness bound), so the timer applies the buffered events with ``ts <= timer`` in ``at``
order (ties in arrival order), then advances the case to the timer's instant (capped at ``until``)
and moves the case's wake-up timer to its new next wake-up. A wake-up timer does the same. PyFlink
may run a timer after later elements have arrived (issue 10): that is harmless here because elements
only wait in the buffer, and an ``advance`` to an instant the case has passed fires nothing.

Processing time (``time="processing"``): events are applied as they arrive and wake-ups fire on the
wall clock; arrival order then matters (an event older than its case's ``now`` is rejected
``out_of_order``).
"""

from __future__ import annotations

import json
import logging
import time as _time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyflink.common import Types  # type: ignore[import-untyped, import-not-found, unused-ignore]
from pyflink.common.watermark_strategy import TimestampAssigner  # type: ignore[import-untyped, import-not-found, unused-ignore]
from pyflink.datastream import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
    KeyedProcessFunction,
    OutputTag,
    ProcessFunction,
    RuntimeContext,
)
from pyflink.datastream.state import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
    ListStateDescriptor,
    MapStateDescriptor,
    ValueStateDescriptor,
)

from carepath.events import Event
from carepath.flink.core import (
    FLUSH_TS,
    MAX_WATERMARK,
    Record,
    Verdict,
    action_line,
    advance_to,
    apply_event,
    control_at,
    erase_case,
    event_obj,
    fan_out,
    is_control,
    outcome_line,
    rejection,
    timer_ms,
)
from carepath.state import CaseState

if TYPE_CHECKING:
    from carepath.engine.engine import Engine

log = logging.getLogger("carepath.flink")

__all__ = [
    "OUTCOMES",
    "RECORD_TYPE",
    "REJECTED",
    "STATES",
    "TIMING",
    "CaseFunction",
    "FanOut",
    "PlaybookSource",
    "RecordTimestamps",
    "VerdictFunction",
]

RECORD_TYPE = Types.TUPLE(
    [Types.STRING(), Types.LONG(), Types.INT(), Types.INT(), Types.STRING(), Types.STRING()]
)
REJECTED = OutputTag("rejected", Types.STRING())
STATES = OutputTag("states", Types.STRING())
OUTCOMES = OutputTag("outcomes", Types.STRING())
TIMING = OutputTag("timing", Types.STRING())
"""``first SECONDS`` (a routing subtask's first line) and ``work SECONDS`` (a case subtask at work)."""
#: How often (seconds, at most) a case subtask says that it is at work.
MARK_EVERY_S = 0.05


@dataclass(frozen=True, slots=True)
class PlaybookSource:
    """A playbook as shipped to the workers: its path (for messages and ``include:``) and its text."""

    path: str
    text: str

    def load(self) -> Any:
        """Compile it (on the worker)."""
        from pathlib import Path

        from carepath.loading.loader import loads

        return loads(self.text, file=self.path, base_dir=Path(self.path).resolve().parent)


def _engines(sources: Sequence[PlaybookSource]) -> list[Engine]:
    from carepath.engine.engine import Engine

    return [Engine(s.load(), trace=False) for s in sources]


class RecordTimestamps(TimestampAssigner):  # type: ignore[misc, unused-ignore]
    """Event time of a record: its ``at`` in milliseconds."""

    def extract_timestamp(self, value: Any, record_timestamp: int) -> int:
        return int(value[1])


class FanOut(ProcessFunction):  # type: ignore[misc, unused-ignore]
    """Input lines → records per playbook; not-an-event lines → ``rejected``; the instant of the
    first line → ``timing``."""

    def __init__(self, sources: Sequence[PlaybookSource], throttle_s: float = 0.0) -> None:
        self.sources = list(sources)
        self.throttle_s = throttle_s
        self.engines: list[Engine] = []
        self.first = True

    def open(self, runtime_context: RuntimeContext) -> None:
        self.engines = _engines(self.sources)
        self.first = True

    def process_element(self, value: Any, ctx: Any) -> Iterator[Any]:
        if self.first:
            self.first = False
            yield TIMING, f"first {_time.time()!r}"
        if self.throttle_s:
            _time.sleep(self.throttle_s)
        records, rej = fan_out(self.engines, str(value))
        if rej is not None:
            yield REJECTED, rej
        for r in records:
            yield r.to_tuple()


class CaseFunction(KeyedProcessFunction):  # type: ignore[misc, unused-ignore]
    """The engine per case key (see the module docstring).

    ``cap_s``: no wake-up fires after this instant (POSIX seconds; ``None``: no cap).
    ``states``: ``"final"`` writes each case's state to the ``states`` side output at the end of
    the input; ``"changes"`` after every change (a changelog for unbounded inputs); ``None`` never.
    ``time``: ``"event"`` or ``"processing"``.
    """

    def __init__(
        self,
        sources: Sequence[PlaybookSource],
        *,
        cap_s: float | None = None,
        states: str | None = "final",
        time: str = "event",
        dedupe: bool = True,
    ) -> None:
        self.sources = list(sources)
        self.cap_s = cap_s
        self.states_mode = states
        self.time = time
        self.dedupe = dedupe
        self.engines: list[Engine] = []
        self.marked = 0.0

    def open(self, runtime_context: RuntimeContext) -> None:
        self.engines = _engines(self.sources)
        self.marked = 0.0
        self.state = runtime_context.get_state(ValueStateDescriptor("case", Types.STRING()))
        self.buffer = runtime_context.get_list_state(ListStateDescriptor("buffer", Types.STRING()))
        self.seen = runtime_context.get_map_state(
            MapStateDescriptor("seen", Types.STRING(), Types.BOOLEAN())
        )
        self.timer = runtime_context.get_state(ValueStateDescriptor("wakeup", Types.LONG()))
        self.flush = runtime_context.get_state(ValueStateDescriptor("flush", Types.BOOLEAN()))

    def _mark(self) -> Iterator[Any]:
        """``work SECONDS`` on ``timing`` when the last one is :data:`MARK_EVERY_S` old."""
        now = _time.time()
        if now - self.marked >= MARK_EVERY_S:
            self.marked = now
            yield TIMING, f"work {now!r}"

    # -- elements --------------------------------------------------------------------------------
    def process_element(self, value: Any, ctx: Any) -> Iterator[Any]:
        yield from self._element(value, ctx)
        yield from self._mark()

    def _element(self, value: Any, ctx: Any) -> Iterator[Any]:
        ts = ctx.timer_service()
        if self.states_mode == "final" and not self.flush.value():
            self.flush.update(True)
            if self.time == "event":
                ts.register_event_time_timer(FLUSH_TS)
        if self.time == "processing":
            rec = Record.of(value)
            cur = self._load()
            cur, changed, out = self._apply(rec, cur)
            yield from out
            yield from self._settle(cur, changed, ctx, None)
            return
        self.buffer.add(json.dumps(list(value), ensure_ascii=False))
        ts.register_event_time_timer(int(value[1]))

    # -- timers ----------------------------------------------------------------------------------
    def on_timer(self, timestamp: int, ctx: Any) -> Iterator[Any]:
        yield from self._timer(timestamp, ctx)
        yield from self._mark()

    def _timer(self, timestamp: int, ctx: Any) -> Iterator[Any]:
        if self.time == "processing":
            yield from self._wake(timestamp, ctx, self._limit(timestamp / 1000))
            return
        end = ctx.timer_service().current_watermark() >= MAX_WATERMARK
        cur = self._load()
        changed = False
        # Buffered events the watermark has passed, in `at` order (ties: arrival order).
        items = [Record.of(json.loads(x)) for x in (self.buffer.get() or ())]
        if items:
            due = [r for r in items if r.ts <= timestamp]
            if due:
                rest = [r for r in items if r.ts > timestamp]
                due.sort(key=lambda r: _at_us(r))
                for rec in due:
                    cur, ch, out = self._apply(rec, cur)
                    changed = changed or ch
                    yield from out
                if rest:
                    self.buffer.update(
                        [json.dumps(list(r.to_tuple()), ensure_ascii=False) for r in rest]
                    )
                else:
                    self.buffer.clear()
        if timestamp >= FLUSH_TS:
            limit = self.cap_s
        elif end and self.cap_s is None:
            limit = None  # the input has ended and nothing bounds time: stop the clock
        else:
            limit = self._limit(timestamp / 1000)
        if limit is not None and cur is not None:
            cur, acts = advance_to(self._engine(ctx), cur, limit)
            if acts:
                changed = True
                yield from (action_line(a) for a in acts)
        yield from self._settle(cur, changed, ctx, timestamp)
        if timestamp >= FLUSH_TS and cur is not None and self.states_mode == "final":
            yield STATES, cur.to_json()

    def _wake(self, timestamp: int, ctx: Any, limit: float | None) -> Iterator[Any]:
        cur = self._load()
        acts: list[Any] = []
        if limit is not None and cur is not None:
            cur, acts = advance_to(self._engine(ctx), cur, limit)
            yield from (action_line(a) for a in acts)
        yield from self._settle(cur, bool(acts), ctx, timestamp)

    # -- helpers ---------------------------------------------------------------------------------
    def _engine(self, ctx: Any) -> Engine:
        key = str(ctx.get_current_key())
        return self.engines[int(key.split(":", 1)[0])]

    def _limit(self, seconds: float) -> float:
        return seconds if self.cap_s is None else min(seconds, self.cap_s)

    def _load(self) -> CaseState | None:
        text = self.state.value()
        return None if text is None else CaseState.from_json(text)

    def _apply(
        self, rec: Record, cur: CaseState | None
    ) -> tuple[CaseState | None, bool, list[Any]]:
        """Route one buffered event; the new state, whether it changed, and the outputs."""
        out: list[Any] = []
        obj = event_obj(rec.line)
        if is_control(obj):  # an `erase` control line (SPEC §10): this case's keyed state
            new, n = erase_case(self.engines[rec.pb], cur)
            if n:
                log.info(
                    "erased personal data: %d value(s) of a case of %s",
                    n,
                    self.engines[rec.pb].playbook.id,
                )
            return new, new is not cur, out
        eid = str(obj.get("id"))
        if self.dedupe and self.seen.contains(eid):
            return cur, False, out
        engine = self.engines[rec.pb]
        event = Event.from_dict(obj)
        res = apply_event(engine, cur, event)
        rej = ""
        if res.status == "rejected":
            rej = rejection(obj, res.reason or "invalid", res.message, engine.playbook.id)
        elif self.dedupe:
            self.seen.put(eid, True)
        out.extend(action_line(a) for a in res.actions)
        if rec.n > 1:
            out.append((OUTCOMES, outcome_line(eid, rec, res.status, res.reason, rej)))
        else:
            v = Verdict(1, rec.pre)
            v.add(rec.pb, res.status, res.reason, rej)
            verdict = v.result()
            if verdict is not None:
                out.append((REJECTED, verdict))
        return res.state, res.state is not cur, out

    def _settle(
        self, cur: CaseState | None, changed: bool, ctx: Any, now_ms: int | None
    ) -> Iterator[Any]:
        """Store the state and move the wake-up timer; a changelog line when asked."""
        if cur is None:
            return
        if changed:
            self.state.update(cur.to_json())
            if self.states_mode == "changes":
                yield STATES, cur.to_json()
        next_wakeup_s = cur.next_wakeup_s
        want: int | None = None
        if next_wakeup_s is not None and (self.cap_s is None or next_wakeup_s <= self.cap_s):
            want = timer_ms(next_wakeup_s)
            if now_ms is not None and want <= now_ms:
                want = None  # already passed: the next event or timer takes it
        old = self.timer.value()
        if want == old:
            return
        svc = ctx.timer_service()
        if old is not None and (now_ms is None or old > now_ms):
            if self.time == "event":
                svc.delete_event_time_timer(old)
            else:
                svc.delete_processing_time_timer(old)
        if want is None:
            self.timer.clear()
            return
        if self.time == "event":
            svc.register_event_time_timer(want)
        else:
            svc.register_processing_time_timer(want)
        self.timer.update(want)


def _at_us(r: Record) -> int:
    from carepath.flink.core import micros

    obj = event_obj(r.line)
    if is_control(obj):
        return micros(control_at(obj))
    return micros(Event.from_dict(obj).at)


class VerdictFunction(KeyedProcessFunction):  # type: ignore[misc, unused-ignore]
    """Keyed by event id: the overall decision for an event sent to several playbooks."""

    def open(self, runtime_context: RuntimeContext) -> None:
        self.verdict = runtime_context.get_state(ValueStateDescriptor("verdict", Types.STRING()))

    def process_element(self, value: Any, ctx: Any) -> Iterator[Any]:
        _eid, n, pre, pb, status, reason, rej = json.loads(value)
        text = self.verdict.value()
        v = Verdict.from_json(text) if text else Verdict(int(n), str(pre))
        if v.add(int(pb), str(status), reason, str(rej)):
            self.verdict.clear()
            r = v.result()
            if r is not None:
                yield r
        else:
            self.verdict.update(v.to_json())
