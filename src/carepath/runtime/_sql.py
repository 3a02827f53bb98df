"""The readers the SQL stores share (SQLite and PostgreSQL differ only in the placeholder and
the qualified table names)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from carepath._instants import loads
from carepath.runtime._cache import StateCache
from carepath.runtime.store import OutboxItem, OutboxStats, Rejected
from carepath.state import Action, CaseState

__all__ = ["SqlReaders"]


class SqlReaders:
    """Mixin: ``get``, ``outbox``, ``rejected`` and ``processed_count`` over the common schema.

    A store sets ``_PH`` (its parameter placeholder), and provides ``_tbl(name)``, ``_read`` and
    ``states`` (its :class:`~carepath.runtime._cache.StateCache`).
    """

    states: StateCache

    _PH = "?"
    _COLLATE = ""  # the byte order of keys (PostgreSQL: ' COLLATE "C"', as ``cases`` sorts)
    _COLS = "playbook, id, case_key, type, status, attempts, action, available_at, claimed_until, claimed_by, last_error"

    def _tbl(self, name: str) -> str:
        return name

    def _read(
        self, sql: str, params: Sequence[Any] = ()
    ) -> list[Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def _item(r: Sequence[Any]) -> OutboxItem:
        return OutboxItem(
            id=r[1],
            playbook=r[0],
            case=r[2],
            type=r[3],
            status=r[4],
            attempts=r[5],
            action=Action.from_dict(loads(r[6])),
            available_at=r[7],
            claimed_until=r[8],
            claimed_by=r[9],
            last_error=r[10],
        )

    def get(self, playbook_id: str, case_key: str) -> CaseState | None:
        """The state of one case, or ``None``."""
        ph = self._PH
        rows = self._read(
            f"SELECT state FROM {self._tbl('cases')} WHERE playbook = {ph} AND case_key = {ph}",
            (playbook_id, case_key),
        )
        return self.states.decode(playbook_id, case_key, rows[0][0]) if rows else None

    def outbox(
        self, status: str | None = None, playbook: str | None = None, case: str | None = None
    ) -> list[OutboxItem]:
        """Outbox items, oldest first, optionally filtered."""
        where, params = [], []
        for col, v in (("status", status), ("playbook", playbook), ("case_key", case)):
            if v is not None:
                where.append(f"{col} = {self._PH}")
                params.append(v)
        sql = f"SELECT {self._COLS} FROM {self._tbl('outbox')}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [self._item(r) for r in self._read(sql + " ORDER BY seq", params)]

    def rejected(self, case: str | None = None) -> list[Rejected]:
        """Rejected events, oldest first (those of one case when ``case`` is given)."""
        out = []
        for ev, reason, msg, at, cases, ck in self._read(
            f"SELECT event, reason, message, at, cases, case_key FROM {self._tbl('rejected')} ORDER BY seq"
        ):
            keys = tuple((p, c) for p, c in json.loads(cases))
            if case is not None and ck != case and all(c != case for _, c in keys):
                continue
            out.append(Rejected(json.loads(ev), reason, msg, at, keys))
        return out

    def case_page(
        self,
        *,
        after: str | None = None,
        limit: int = 100,
        playbook: str | None = None,
        stage: str | None = None,
    ) -> list[CaseState]:
        """One page of cases by case key, then playbook (see ``Store.case_page``), in one query."""
        ph, co = self._PH, self._COLLATE
        where, params = [], []
        for cond, v in (
            (f"playbook = {ph}", playbook),
            (f"stage = {ph}", stage),
            (f"case_key{co} > {ph}", after),
        ):
            if v is not None:
                where.append(cond)
                params.append(v)
        sql = f"SELECT state FROM {self._tbl('cases')}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY case_key{co}, playbook{co} LIMIT {ph}"
        rows = self._read(sql, [*params, max(0, int(limit))])
        return [CaseState.from_json(r[0]) for r in rows]

    def outbox_stats(self, now: float) -> OutboxStats:
        """Items by status and the oldest due pending item, in one query."""
        ph, t = self._PH, self._tbl("outbox")
        rows = self._read(
            f"SELECT status, count(*), min(CASE WHEN status = 'pending' AND available_at <= {ph} "
            f"THEN available_at END) FROM {t} GROUP BY status",
            (now,),
        )
        oldest = [float(r[2]) for r in rows if r[2] is not None]
        return OutboxStats({str(r[0]): int(r[1]) for r in rows}, min(oldest, default=None))

    def open_versions(self) -> list[tuple[str, str, str, int]]:
        """Open cases counted by ``(playbook id, version, content hash)``."""
        rows = self._read(
            f"SELECT playbook, version, hash, count(*) FROM {self._tbl('cases')} WHERE NOT ended "
            "GROUP BY playbook, version, hash"
        )
        return sorted((str(p), str(v), str(h), int(n)) for p, v, h, n in rows)

    def stale_keys(self, playbook_id: str, content_hash: str) -> list[str]:
        """Keys of the open cases of ``playbook_id`` with another content hash."""
        ph = self._PH
        rows = self._read(
            f"SELECT case_key FROM {self._tbl('cases')} WHERE playbook = {ph} AND hash <> {ph} "
            "AND NOT ended",
            (playbook_id, content_hash),
        )
        return sorted(str(r[0]) for r in rows)

    def processed_count(self) -> int:
        """How many event ids were applied."""
        return int(self._read(f"SELECT count(*) FROM {self._tbl('processed')}")[0][0])
