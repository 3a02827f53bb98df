"""Finished clock cycles of a replay, kept in columns: :class:`ClockFacts`.

A report over a million events ends about 400,000 clock cycles. Kept as objects (a
``ClockRecord`` with two aware datetimes and four durations each) they cost their construction,
their memory, and 18 µs each to send from a worker process; kept as columns of numbers they
cost none of that, and the metrics aggregate them column by column. A :class:`ClockFact` with
its ``ClockRecord`` is built only when one is read (``facts[i]``, iteration).

The numbers are those the engine's ``ClockRecord`` is built from (:func:`clock_record`): POSIX
seconds for the instants, seconds for the durations, so ``facts[i].record`` equals the record the
step's ``sla.<clock>.met|missed|cancelled`` signal holds.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta, tzinfo
from operator import itemgetter, ne
from typing import Any, NamedTuple, overload

from carepath.state import ClockRecord, clock_record

__all__ = ["ClockFact", "ClockFacts", "Ctx"]


class Ctx(NamedTuple):
    """A case's values at one instant, for grouping."""

    segment: str | None
    channel: str | None
    tier: str | None
    stage: str | None


@dataclass(frozen=True, slots=True)
class ClockFact:
    """One finished clock cycle: its record, when it stopped (POSIX s), and the case's values then."""

    clock: str
    record: ClockRecord
    stopped_s: float
    case: str
    ctx: Ctx


_NAN = float("nan")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, array) and isinstance(b, array):
        return a.typecode == b.typecode and a.tobytes() == b.tobytes()
    return bool(a == b)


_COLUMNS = (
    "clock",
    "cycle",
    "started",
    "stopped",
    "elapsed",
    "paused",
    "target",
    "met",
    "failed",
    "stopped_s",
    "case",
    "ctx",
)


class ClockFacts(Sequence[ClockFact]):
    """Finished clock cycles in columns (one list per field), read as a sequence of
    :class:`ClockFact`. ``met``, ``elapsed_s`` and ``stopped_s`` are what the metrics aggregate."""

    __slots__ = ("tz", *_COLUMNS)

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        self.clock: list[str] = []
        self.cycle = array("q")
        self.started = array("d")
        self.stopped = array("d")
        self.elapsed = array("d")
        self.paused = array("d")
        self.target = array("d")  # NaN: no target
        self.met = array("b")  # 1 met, 0 missed (breached), -1 cancelled (ClockRecord.met None)
        self.failed = array("d")  # NaN: not failed
        self.stopped_s = array("d")
        self.case: list[str] = []
        self.ctx: list[Ctx] = []

    def append_fields(
        self, clock: str, fields: tuple[Any, ...], stopped_s: float, case: str, ctx: Ctx
    ) -> None:
        """One cycle from the numbers a record is built from: ``(cycle, started, stopped,
        elapsed, paused, target, met, failed_by)`` (see :func:`~carepath.state.clock_record`)."""
        cycle, started, stopped, elapsed, paused, target, met, failed = fields
        self.clock.append(clock)
        self.cycle.append(cycle)
        self.started.append(started)
        self.stopped.append(stopped)
        self.elapsed.append(elapsed)
        self.paused.append(paused)
        self.target.append(_NAN if target is None else target)
        self.met.append(-1 if met is None else 1 if met else 0)
        self.failed.append(_NAN if failed is None else failed)
        self.stopped_s.append(stopped_s)
        self.case.append(case)
        self.ctx.append(ctx)

    def append(self, fact: ClockFact) -> None:
        """One cycle from its :class:`ClockFact` (an exact round trip: instants and durations
        are whole microseconds)."""
        rec = fact.record
        self.append_fields(
            fact.clock,
            (
                rec.cycle,
                rec.started.timestamp(),
                rec.stopped.timestamp(),
                rec.elapsed.total_seconds(),
                rec.paused.total_seconds(),
                None if rec.target is None else rec.target.total_seconds(),
                rec.met,
                None if rec.failed_by is None else rec.failed_by.total_seconds(),
            ),
            fact.stopped_s,
            fact.case,
            fact.ctx,
        )

    def elapsed_s(self, i: int) -> float:
        """``self[i].record.elapsed.total_seconds()``, without building the record."""
        return timedelta(seconds=self.elapsed[i]).total_seconds()

    def sort_by_stop(self, keys: Sequence[Any] | None = None) -> list[int]:
        """Order the cycles by ``stopped_s`` (stable; ties by ``keys`` first when given) and
        return the permutation applied (old index of each new position)."""
        n = len(self.stopped_s)
        st = self.stopped_s
        if keys is None:
            order = sorted(range(n), key=st.__getitem__)
        else:
            # the pairs made in C, then read by a C method: no Python call per cycle
            order = sorted(range(n), key=list(zip(st, keys, strict=True)).__getitem__)
        if any(map(ne, order, range(n))):  # moved at all (compared in C)
            self._moved(self, order)
        return order

    def take(self, indexes: Sequence[int]) -> ClockFacts:
        """A new :class:`ClockFacts` of the cycles at ``indexes``, in that order."""
        return self._moved(ClockFacts(self.tz), indexes)

    def _moved(self, out: ClockFacts, indexes: Sequence[int]) -> ClockFacts:
        """``out`` with each column of this one taken at ``indexes`` (one ``itemgetter`` for
        every column: the columns are moved in C, not by a comprehension each; the numbers'
        columns by the core, as bytes, when it is installed: ``itemgetter`` makes an object of
        each number)."""
        if len(indexes) == 1:  # itemgetter of one index gives the item, not a tuple of one
            pick: Any = lambda col: (col[indexes[0]],)  # noqa: E731
        else:
            pick = itemgetter(*indexes) if indexes else lambda col: ()
        from carepath._native import core_function

        take = core_function("_take")  # a fixed-size column's items in an order, as bytes
        order = indexes if isinstance(indexes, list) else list(indexes)
        for name in _COLUMNS:
            col = getattr(self, name)
            if not isinstance(col, array):
                setattr(out, name, list(pick(col)))
                continue
            moved = array(col.typecode)
            try:
                if take is None:
                    raise LookupError
                moved.frombytes(take(col.tobytes(), col.itemsize, order))
            except (LookupError, OverflowError):  # a negative index: as a sequence reads it
                moved = array(col.typecode, pick(col))
            setattr(out, name, moved)
        return out

    def extend(self, other: ClockFacts) -> None:
        """Append every cycle of ``other`` (column by column)."""
        for name in _COLUMNS:
            getattr(self, name).extend(getattr(other, name))

    def __len__(self) -> int:
        return len(self.stopped_s)

    @overload
    def __getitem__(self, i: int) -> ClockFact: ...
    @overload
    def __getitem__(self, i: slice) -> list[ClockFact]: ...
    def __getitem__(self, i: int | slice) -> ClockFact | list[ClockFact]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        target, met, failed = self.target[i], self.met[i], self.failed[i]
        rec = clock_record(
            self.tz,
            self.cycle[i],
            self.started[i],
            self.stopped[i],
            self.elapsed[i],
            self.paused[i],
            None if target != target else target,  # NaN: None
            None if met < 0 else met == 1,
            None if failed != failed else failed,
        )
        return ClockFact(self.clock[i], rec, self.stopped_s[i], self.case[i], self.ctx[i])

    def __iter__(self) -> Iterator[ClockFact]:
        for i in range(len(self)):
            yield self[i]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ClockFacts):  # bytes: NaN (None) equals NaN
            return all(_same(getattr(self, c), getattr(other, c)) for c in _COLUMNS)
        if isinstance(other, list):
            return list(self) == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ClockFacts({len(self)} cycles)"

    def __getstate__(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in ("tz", *_COLUMNS)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)
