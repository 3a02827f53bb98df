"""The outbox rows a SQL transaction buffers until it writes them (SQLite and PostgreSQL alike):
``(playbook, id, case, type, action JSON, available_at)`` by ``(playbook, id)``, the first kept
(the stores insert them with "ignore on conflict", so a redelivered step adds nothing)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from carepath._native.raw import outbox_rows
from carepath.state import Action

__all__ = ["OutboxRows"]


class OutboxRows:
    """A mixin of a SQL store's ``Tx``: :meth:`add_outbox` and :meth:`add_step_outbox` into the
    transaction's ``outbox`` dictionary (the store's ``flush`` writes it)."""

    __slots__ = ()
    outbox: dict[tuple[str, str], tuple[Any, ...]]

    def add_outbox(self, actions: Sequence[Action]) -> None:
        box = self.outbox
        for a in actions:
            k = (a.playbook, a.id)
            if k not in box:
                box[k] = (a.playbook, a.id, a.case, a.type, a.to_json(), a.at.timestamp())

    def add_step_outbox(self, step: Any) -> None:
        box = self.outbox
        for row in outbox_rows(step):
            k = (row[0], row[1])
            if k not in box:
                box[k] = row
