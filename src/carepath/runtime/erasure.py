"""Erasure of personal data in a SQL store (SPEC §10 "Personal data").

Which values are personal comes from the playbooks: fields and declared event fields with
``pii: true``. A :class:`~carepath.runtime.Runtime` records them in the store when it starts
(:func:`register_pii`, one row per playbook version), so ``carepath erase`` needs only the store.

:func:`erase` selects cases (by key, or those whose field equals a value) and, **one transaction
per case**, replaces every ``pii`` value of the case with ``null`` in its state, in the ``params``
of its outbox actions (a text equal to an erased text, or containing one) and in its rejected
events (their ``pii`` payload fields, and texts as in params; in the message, an erased text
becomes ``[erased]``; a line that was not JSON loses its raw text). Clocks, stage, wake-ups and every other value are left as
they are, so the case goes on running. A crash in the middle leaves each case either erased or
untouched; running the erasure again finishes it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from carepath.runtime._alloc_rows import AllocationRows
from carepath.state import CaseState, erase_fields

if TYPE_CHECKING:
    from carepath.compile.ir import Playbook

T = TypeVar("T")


class _Store(Protocol):
    """What erasure needs of a :class:`~carepath.runtime.Store` (this module comes before it)."""

    def atomic(self, fn: Callable[[Any], T]) -> T: ...

    def get(self, playbook_id: str, case_key: str) -> CaseState | None: ...

    def cases(self, playbook_id: str | None = None) -> list[CaseState]: ...


__all__ = ["PG_MIGRATION", "SQLITE_MIGRATION", "Erasure", "erase", "register_pii"]

log = logging.getLogger("carepath.erase")

SQLITE_MIGRATION = """
CREATE TABLE IF NOT EXISTS pii_paths (
    playbook TEXT NOT NULL,
    hash     TEXT NOT NULL,
    fields   TEXT NOT NULL,
    events   TEXT NOT NULL,
    PRIMARY KEY (playbook, hash)
) WITHOUT ROWID
"""

PG_MIGRATION = """
CREATE TABLE IF NOT EXISTS {s}.pii_paths (
    playbook text NOT NULL,
    hash     text NOT NULL,
    fields   text NOT NULL,
    events   text NOT NULL,
    PRIMARY KEY (playbook, hash)
);
"""

_ERASED_TEXT = "[erased]"


@dataclass(frozen=True)
class Erasure:
    """What an erasure changed: ``cases`` selected, ``values`` replaced by null in their states,
    outbox ``actions`` and ``rejected`` events rewritten. Counts only: never a value."""

    cases: int = 0
    values: int = 0
    actions: int = 0
    rejected: int = 0

    def to_dict(self) -> dict[str, int]:
        """``{"cases", "values", "actions", "rejected"}`` (what ``carepath erase`` prints)."""
        return dataclasses.asdict(self)

    def __add__(self, other: Erasure) -> Erasure:
        return Erasure(
            self.cases + other.cases,
            self.values + other.values,
            self.actions + other.actions,
            self.rejected + other.rejected,
        )


Pii = tuple[frozenset[str], dict[str, frozenset[str]]]
"""Case fields with ``pii: true``; event type → its payload fields with ``pii: true``."""


def _rows(tx: Any) -> AllocationRows:
    if not isinstance(tx, AllocationRows):  # pragma: no cover - every SQL store's Tx is one
        raise TypeError(f"{type(tx).__name__} cannot erase")
    return tx


def register_pii(store: _Store, playbooks: Iterable[Playbook]) -> None:
    """Record the ``pii`` paths of ``playbooks`` in ``store`` (idempotent; those without any
    ``pii`` are left out: no row means nothing to erase)."""
    rows = [
        (
            pb.id,
            pb.content_hash,
            json.dumps(sorted(pb.pii_fields)),
            json.dumps({k: sorted(v) for k, v in sorted(pb.pii_event_fields.items())}),
        )
        for pb in playbooks
        if pb.pii_fields or pb.pii_event_fields
    ]
    if not rows:
        return

    def run(tx: Any) -> None:
        r = _rows(tx)
        p = r._P
        for row in rows:
            r._arun(
                f"INSERT INTO {r._atable('pii_paths')} (playbook, hash, fields, events) "
                f"VALUES ({p}, {p}, {p}, {p}) ON CONFLICT (playbook, hash) DO UPDATE SET "
                "fields = excluded.fields, events = excluded.events",
                row,
            )

    store.atomic(run)


def erase(
    store: _Store,
    case: str | None = None,
    *,
    field: str | None = None,
    value: Any = None,
    playbook: str | None = None,
    playbooks: Sequence[Playbook] = (),
    _inside: Callable[[str, str], None] | None = None,
) -> Erasure:
    """Erase the personal data of the case ``case``, or of every case whose field ``field``
    equals ``value`` (a text ``value`` also matches a number or boolean written the same way),
    in playbook ``playbook`` or in all. ``playbooks`` adds ``pii`` paths to those registered."""
    if (case is None) == (field is None):
        raise ValueError("erase takes either a case key or a field and a value")
    if playbooks:
        register_pii(store, playbooks)
    keys = _select(store, case, field, value, playbook)
    total = Erasure()
    for pb, key in keys:

        def one(tx: Any, pb: str = pb, key: str = key) -> Erasure:
            return _erase_case(tx, pb, key, field, value, _inside)

        total = total + store.atomic(one)
    log.info(
        "erased personal data: %d case(s), %d value(s), %d action(s), %d rejected event(s)",
        total.cases,
        total.values,
        total.actions,
        total.rejected,
    )
    return total


def _select(
    store: _Store, case: str | None, field: str | None, value: Any, playbook: str | None
) -> list[tuple[str, str]]:
    if case is not None:
        return [
            (s.playbook, s.case)
            for s in ([store.get(playbook, case)] if playbook else _by_key(store, case))
            if s is not None
        ]
    assert field is not None
    return [
        (s.playbook, s.case) for s in store.cases(playbook) if _matches(s.data.get(field), value)
    ]


def _by_key(store: _Store, case: str) -> list[CaseState | None]:
    return [s for s in store.cases() if s.case == case]


def _matches(have: Any, want: Any) -> bool:
    if have is None:
        return False
    if have == want and type(have) is not bool and type(want) is not bool:
        return True
    if isinstance(have, bool) or isinstance(want, bool):
        return have is want or (isinstance(want, str) and json.dumps(have) == want)
    return isinstance(want, str) and not isinstance(have, str) and json.dumps(have) == want


def _pii(r: AllocationRows, playbook: str, content_hash: str) -> Pii:
    """The ``pii`` paths of the case's playbook version (else the union over its versions)."""
    p = r._P
    rows = r._arun(
        f"SELECT hash, fields, events FROM {r._atable('pii_paths')} WHERE playbook = {p}",
        (playbook,),
    )
    exact = [x for x in rows if x[0] == content_hash]
    fields: set[str] = set()
    events: dict[str, set[str]] = {}
    for _, f, e in exact or rows:
        fields.update(json.loads(f))
        for k, v in json.loads(e).items():
            events.setdefault(k, set()).update(v)
    return frozenset(fields), {k: frozenset(v) for k, v in events.items()}


def _erase_case(
    tx: Any,
    playbook: str,
    key: str,
    field: str | None,
    value: Any,
    inside: Callable[[str, str], None] | None,
) -> Erasure:
    r = _rows(tx)
    p = r._P
    rows = r._arun(
        f"SELECT state FROM {r._atable('cases')} WHERE playbook = {p} AND case_key = {p}",
        (playbook, key),
    )
    if not rows:
        return Erasure()
    state = CaseState.from_json(rows[0][0])
    if field is not None and not _matches(state.data.get(field), value):
        return Erasure()  # changed since it was selected
    fields, events = _pii(r, playbook, state.content_hash)
    new, erased = erase_fields(state, fields)
    n_values = len(erased)
    if n_values:
        r._arun(
            f"UPDATE {r._atable('cases')} SET state = {p} WHERE playbook = {p} AND case_key = {p}",
            (new.to_json(), playbook, key),
        )
    if inside is not None:
        inside(playbook, key)
    n_rejected = 0
    for seq, text, message, cases in r._arun(
        f"SELECT seq, event, message, cases FROM {r._atable('rejected')} "
        f"WHERE case_key = {p} OR cases LIKE {p} ORDER BY seq",
        (key, f"%{json.dumps(key)}%"),
    ):
        involved = {tuple(c) for c in json.loads(cases)}
        if involved and (playbook, key) not in involved:
            continue
        event = json.loads(text)
        new_event, found = _scrub_event(event, events, erased)
        erased.extend(found)
        new_message = _scrub_text(message, erased)
        if new_event != event or new_message != message:
            n_rejected += 1
            r._arun(
                f"UPDATE {r._atable('rejected')} SET event = {p}, message = {p} WHERE seq = {p}",
                (json.dumps(new_event, ensure_ascii=False), new_message, seq),
            )
    n_actions = 0
    for seq, text in r._arun(
        f"SELECT seq, action FROM {r._atable('outbox')} WHERE playbook = {p} AND case_key = {p} "
        "ORDER BY seq",
        (playbook, key),
    ):
        action = json.loads(text)
        params = action.get("params") or {}
        scrubbed = _scrub(params, erased)
        if scrubbed != params:
            n_actions += 1
            action["params"] = scrubbed
            r._arun(
                f"UPDATE {r._atable('outbox')} SET action = {p} WHERE seq = {p}",
                (json.dumps(action, ensure_ascii=False), seq),
            )
    return Erasure(1, n_values, n_actions, n_rejected)


def _scrub_event(
    event: dict[str, Any], events: dict[str, frozenset[str]], erased: list[Any]
) -> tuple[dict[str, Any], list[Any]]:
    """The rejected ``event`` without personal data, and the values it held for ``pii`` fields."""
    if "raw" in event:
        return {**event, "raw": None}, []
    data = event.get("data")
    if not isinstance(data, dict):
        return event, []
    marked = events.get(str(event.get("type")), frozenset())
    found = [v for k, v in data.items() if k in marked and v is not None]
    out = {k: (None if k in marked else v) for k, v in data.items()}
    return {**event, "data": _scrub(out, [*erased, *found])}, found


def _scrub(node: Any, erased: Sequence[Any]) -> Any:
    """``node`` with every text equal to, or containing, an erased text set to null (numbers and
    booleans are left: a ``0`` or ``false`` in a parameter says nothing about the customer)."""
    if isinstance(node, dict):
        return {k: _scrub(v, erased) for k, v in node.items()}
    if isinstance(node, list):
        return [_scrub(v, erased) for v in node]
    if isinstance(node, str) and any(isinstance(v, str) and v and v in node for v in erased):
        return None
    return node


def _scrub_text(text: str, erased: Sequence[Any]) -> str:
    for v in erased:
        s = v if isinstance(v, str) else None
        if s:
            text = text.replace(s, _ERASED_TEXT)
    return text
