"""Samples in time order, with the case's values they group by (what the metrics aggregate)."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import islice
from operator import gt
from typing import Any

from carepath.drivers.cycles import Ctx

__all__ = ["GROUPS", "Series", "Where"]

#: The grouping keys: the case's values at the time of the sample.
GROUPS = ("segment", "channel", "tier", "stage")
_GROUP_INDEX = {g: i for i, g in enumerate(GROUPS)}

Where = Mapping[str, str | None]


@dataclass
class Series:
    """Samples in time order: local day ordinal, case values, value."""

    days: list[int] = field(default_factory=list)
    ctxs: list[Ctx | None] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    #: per grouping key: the values of the whole series by group (see :meth:`select`), with the
    #: list of values they were made of and its length then (a series that changed is grouped
    #: again)
    _parts: dict[int, tuple[list[Any], int, dict[Any, list[Any]]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def add(self, day: int, ctx: Ctx | None, value: Any) -> None:
        self.days.append(day)
        self.ctxs.append(ctx)
        self.values.append(value)

    def sort(self) -> None:
        days = self.days
        if any(map(gt, days, islice(days, 1, None))):  # out of day order somewhere
            order = sorted(range(len(self.days)), key=self.days.__getitem__)
            self.days = [self.days[i] for i in order]
            self.ctxs = [self.ctxs[i] for i in order]
            self.values = [self.values[i] for i in order]

    def select(self, lo: int | None, hi: int | None, where: Where | None) -> list[Any]:
        """Values on days ``lo..hi`` (inclusive ordinals; None = open) whose case matches ``where``."""
        a = 0 if lo is None else bisect_left(self.days, lo)
        b = len(self.days) if hi is None else bisect_right(self.days, hi)
        if not where:
            return self.values[a:b]
        tests = [(_GROUP_INDEX[k], v) for k, v in where.items() if v is not None]
        if not tests:
            return self.values[a:b]
        if len(tests) == 1 and a == 0 and b == len(self.days):  # e.g. one metric per channel
            j, v = tests[0]
            return list(self._whole_by(j).get(v, ()))
        ctxs = self.ctxs[a:b]
        # each distinct case-values object is tested once (the replay shares them)
        distinct = {id(c): c for c in ctxs}
        ok = {k for k, c in distinct.items() if c is not None and all(c[j] == v for j, v in tests)}
        if len(ok) == len(distinct):
            return self.values[a:b]
        return [v for c, v in zip(ctxs, self.values[a:b], strict=True) if id(c) in ok]

    def _whole_by(self, j: int) -> dict[Any, list[Any]]:
        """All values by the case value of grouping key ``j`` (samples without case values
        under None), made once for the many queries of one key (a report asks per channel)."""
        made = self._parts.get(j)
        values = self.values
        if made is not None and made[0] is values and made[1] == len(values):
            return made[2]
        keyof = {id(c): None if c is None else c[j] for c in self.ctxs}  # few distinct objects
        out: dict[Any, list[Any]] = {}
        for k, v in zip(map(keyof.__getitem__, map(id, self.ctxs)), values, strict=True):
            got = out.get(k)
            if got is None:
                out[k] = [v]
            else:
                got.append(v)
        self._parts[j] = (values, len(values), out)
        return out

    def groups(self, lo: int | None, hi: int | None, by: str) -> dict[str | None, list[Any]]:
        """Values on days ``lo..hi`` grouped by one of :data:`GROUPS`."""
        j = _GROUP_INDEX[by]
        a = 0 if lo is None else bisect_left(self.days, lo)
        b = len(self.days) if hi is None else bisect_right(self.days, hi)
        out: dict[str | None, list[Any]] = {}
        for i in range(a, b):
            c = self.ctxs[i]
            out.setdefault(None if c is None else c[j], []).append(self.values[i])
        return out

    def without(self, part: Series) -> Series | None:
        """These samples without those of ``part`` (each taken out once, wherever it sits
        within its day: no metric depends on the order within a day); None when ``part`` holds
        a sample these do not, or one that is no dictionary key."""
        if not part.days:
            return self
        try:
            gone = Counter(zip(part.days, part.ctxs, part.values, strict=True))
            out = Series()
            for d, c, v in zip(self.days, self.ctxs, self.values, strict=True):
                k = (d, c, v)
                if gone.get(k):
                    gone[k] -= 1
                else:
                    out.add(d, c, v)
        except TypeError:  # a value that cannot be a key
            return None
        return None if +gone else out
