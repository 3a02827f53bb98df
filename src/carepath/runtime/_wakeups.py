"""The wake-up index as one SQLite transaction sees it: the file's rows read ahead, overlaid by the
transaction's own buffered saves.

Under ``BEGIN IMMEDIATE`` nobody else writes the file, so the rows due soon can be read once and
answered from memory until the transaction writes: with the simulated clock of ``carepath run``
every event asks which cases are due before it, and a query per event cost more than the event.
A buffered save replaces its row (its new wake-up, or none); :meth:`WakeupWindow.clear` forgets
everything once the buffer is written to the file.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from carepath.state import CaseState

__all__ = ["WakeupWindow"]

Key = tuple[str, str]
#: ``(next_wakeup, playbook, case_key, hash, state text)`` of one row of the file.
Row = tuple[float, str, str, str, str]
#: Rows after ``after`` (``None``: from the start) in wake-up order, up to ``upto`` (``None``: the
#: first ``limit`` rows, and every row tied with the last of them).
Fetch = Callable[[float | None, float | None, int], list[Row]]

_AHEAD = 64  # the most rows read ahead per query


class WakeupWindow:
    """Due cases of one transaction: :meth:`due` merges the file's rows (read ahead through
    ``fetch``, decoded through ``decode`` only when returned) with the saves the transaction holds
    (:meth:`saved`), earliest first, ties by playbook and case key (the index's order)."""

    __slots__ = ("_ahead", "_decode", "_fetch", "_heap", "_rows", "_sifted", "_upto")

    def __init__(self, fetch: Fetch, decode: Callable[[str, str, str], CaseState]) -> None:
        self._fetch = fetch
        self._decode = decode
        self._rows: list[Row] = []  # the file's rows with next_wakeup ≤ _upto, in order
        self._upto: float | None = None  # None: nothing read yet
        self._heap: list[tuple[float, str, str]] = []  # saves with a wake-up (lazily stale)
        self._ahead = 0  # rows read ahead next time (0: none yet; doubles up to _AHEAD)
        self._sifted = -1  # how many saves _rows was last sifted against (-1: not since a read)

    def clear(self) -> None:
        """The buffer went to the file: read it again when next asked."""
        self._rows = []
        self._upto = None
        self._heap = []
        self._ahead = 0
        self._sifted = -1

    def saved(self, state: CaseState) -> None:
        """``state`` is buffered (it replaces its row until :meth:`clear`)."""
        if state.next_wakeup_s is not None:
            heapq.heappush(self._heap, (state.next_wakeup_s, state.playbook, state.case))

    def _read_to(self, now: float) -> None:
        if self._upto is not None and now <= self._upto:
            return
        self._sifted = -1
        ahead = self._ahead
        if (
            not ahead
        ):  # the first question of a transaction: exactly what it asks (it may be its last)
            self._rows.extend(self._fetch(self._upto, now, 0))
            self._upto = now
            self._ahead = 4
            return
        self._ahead = min(2 * ahead, _AHEAD)
        got = self._fetch(self._upto, None, ahead)
        if len(got) < ahead:  # nothing after these: the window reaches the end of the index
            self._rows.extend(got)
            self._upto = float("inf")
            return
        upto = got[-1][0]
        if upto < now:
            got = self._fetch(self._upto, now, 0)
            upto = now
        self._rows.extend(got)
        self._upto = upto

    def due(
        self,
        now: float,
        limit: int,
        playbooks: Iterable[Key],
        exclude: Iterable[Key],
        saves: Mapping[Key, tuple[CaseState, float]],
    ) -> list[CaseState]:
        """Up to ``limit`` cases of ``playbooks`` (``(id, hash)``) due at ``now``, but ``exclude``."""
        self._read_to(now)
        rows = self._rows
        heap = self._heap
        if (not rows or rows[0][0] > now) and (not heap or heap[0][0] > now):
            # nothing due: what most events of a timeline find (the rows are in wake-up order,
            # so sifting out those a save replaced cannot make one due)
            return []
        # rows a save replaced are gone for this window (a save stays until clear()); the saves
        # only grow until then, so the rows are sifted again only after new saves or new rows
        if self._sifted != len(saves):
            self._rows = rows = [r for r in rows if (r[1], r[2]) not in saves]
            self._sifted = len(saves)
        pbs = set(playbooks)
        ex = set(exclude)
        picked: list[tuple[float, str, str, Any]] = []
        for t, pb, key, h, text in rows:
            if t > now or len(picked) >= limit:
                break
            if (pb, h) in pbs and (pb, key) not in ex:
                picked.append((t, pb, key, text))
        mine: dict[Key, tuple[float, str, str, Any]] = {}
        while heap and heap[0][0] <= now:
            t, pb, key = heapq.heappop(heap)
            got = saves.get((pb, key))
            if got is None or got[0].next_wakeup_s != t:
                continue  # saved again since
            st = got[0]
            mine[(pb, key)] = (t, pb, key, st)
        for entry in mine.values():
            heapq.heappush(heap, entry[:3])  # still due until saved again
            st = entry[3]
            if (st.playbook, st.content_hash) in pbs and (st.playbook, st.case) not in ex:
                picked.append(entry)
        if mine:
            picked.sort(key=lambda r: (r[0], r[1], r[2]))
        decode = self._decode
        return [
            x if isinstance(x, CaseState) else decode(pb, key, x)
            for _, pb, key, x in picked[:limit]
        ]


def rows_after(
    run: Callable[[str, Sequence[Any]], Iterable[Row]],
) -> Fetch:
    """A :data:`Fetch` over SQLite's ``cases`` table through ``run(sql, params)``."""
    cols = "SELECT next_wakeup, playbook, case_key, hash, state FROM cases WHERE next_wakeup IS NOT NULL"
    order = " ORDER BY next_wakeup, playbook, case_key"

    def fetch(after: float | None, upto: float | None, limit: int) -> list[Row]:
        where, params = "", []
        if after is not None:
            where += " AND next_wakeup > ?"
            params.append(after)
        if upto is not None:
            return list(run(cols + where + " AND next_wakeup <= ?" + order, [*params, upto]))
        got = list(run(cols + where + order + " LIMIT ?", [*params, limit]))
        if (
            len(got) == limit
        ):  # the rows tied with the last one, so the window ends between instants
            last = got[-1][0]
            got = [r for r in got if r[0] < last]
            got.extend(run(cols + " AND next_wakeup = ?" + order, [last]))
        return got

    return fetch
