"""Retention: purging what a playbook keeps no longer (SPEC §10 "Personal data").

A playbook's ``retention: {ended_cases: 400d, rejected: 30d, delivered_actions: 90d}`` is applied
by :func:`purge` (``carepath purge``, ``Store.purge``), measured back from ``now`` (an injected
time, never read here from the system clock):

- ``ended_cases``: a case that ended and was last written at or before the cutoff is deleted with
  its outbox actions and its allocation rows, **one transaction per case** (like erasure: a crash
  in the middle leaves each case either purged or untouched). A case that still has a pending
  outbox action is kept until that action is delivered or dead.
- ``rejected``: a rejected event recorded at or before the cutoff is deleted. An event routed to
  cases keeps the longest ``rejected`` of their playbooks among those given; one that reached no
  case (an unreadable line) the shortest of the given playbooks.
- ``delivered_actions``: a delivered outbox action is deleted once the cutoff has passed the
  instant it was delivered (the runtime stamps it into the row's ``available_at`` when it marks
  the item delivered; a row marked delivered by a host calling ``finish_outbox`` without
  ``delivered_at`` keeps its due time there).

Durations count wall-clock time in UTC (``mo`` and ``y`` as calendar months). The log records
counts, never values.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from carepath.runtime.erasure import _rows, _Store

if TYPE_CHECKING:
    from carepath.compile.ir import Playbook

__all__ = ["Purge", "cutoff", "purge"]

log = logging.getLogger("carepath.purge")


@dataclass(frozen=True)
class Purge:
    """What a purge deleted: ended ``cases``, outbox ``actions`` (delivered ones, and those of
    the purged cases) and ``rejected`` events. Counts only."""

    cases: int = 0
    actions: int = 0
    rejected: int = 0

    def to_dict(self) -> dict[str, int]:
        """``{"cases", "actions", "rejected"}`` (what ``carepath purge --format json`` prints)."""
        return dataclasses.asdict(self)

    def __add__(self, other: Purge) -> Purge:
        return Purge(
            self.cases + other.cases, self.actions + other.actions, self.rejected + other.rejected
        )


def cutoff(now: float, duration: str) -> float:
    """The instant ``duration`` before ``now`` (epoch seconds), counted in UTC wall-clock time."""
    from carepath.durations import add_months, parse_duration

    d = parse_duration(duration)
    at = datetime.fromtimestamp(now, UTC)
    if d.months:
        at = add_months(at, -d.months)
    return (at - timedelta(days=d.days, seconds=d.seconds)).timestamp()


def purge(
    store: _Store,
    playbooks: Sequence[Playbook],
    now: float,
    *,
    _inside: Callable[[str, str], None] | None = None,
) -> Purge:
    """Apply the ``retention`` of ``playbooks`` to ``store`` as of ``now`` (epoch seconds)."""
    total = Purge()
    for pb in playbooks:
        kept = pb.retention
        if "ended_cases" in kept:
            total = total + _ended_cases(store, pb.id, cutoff(now, kept["ended_cases"]), _inside)
        if "delivered_actions" in kept:
            until = cutoff(now, kept["delivered_actions"])

            def delivered(tx: Any, pb: str = pb.id, until: float = until) -> Purge:
                return _delivered(tx, pb, until)

            total = total + store.atomic(delivered)
    rejected = {
        pb.id: cutoff(now, pb.retention["rejected"])
        for pb in playbooks
        if "rejected" in pb.retention
    }
    if rejected:

        def old(tx: Any) -> Purge:
            return _rejected(tx, rejected)

        total = total + store.atomic(old)
    log.info(
        "purged: %d case(s), %d action(s), %d rejected event(s)",
        total.cases,
        total.actions,
        total.rejected,
    )
    return total


def _ended_cases(
    store: _Store, playbook: str, until: float, inside: Callable[[str, str], None] | None
) -> Purge:
    def select(tx: Any) -> list[str]:
        r = _rows(tx)
        p = r._P
        return [
            str(k)
            for (k,) in r._arun(
                f"SELECT case_key FROM {r._atable('cases')} WHERE playbook = {p} AND ended "
                f"{'<> 0' if p == '?' else ''} AND updated_at <= {p} ORDER BY case_key",
                (playbook, until),
            )
        ]

    total = Purge()
    for key in store.atomic(select):

        def one(tx: Any, key: str = key) -> Purge:
            return _purge_case(tx, playbook, key, until, inside)

        total = total + store.atomic(one)
    return total


def _purge_case(
    tx: Any, playbook: str, key: str, until: float, inside: Callable[[str, str], None] | None
) -> Purge:
    r = _rows(tx)
    p = r._P
    t = r._atable
    ended = "ended <> 0" if p == "?" else "ended"
    still = r._arun(
        f"SELECT 1 FROM {t('cases')} WHERE playbook = {p} AND case_key = {p} AND {ended} "
        f"AND updated_at <= {p}",
        (playbook, key, until),
    )
    pending = r._arun(
        f"SELECT 1 FROM {t('outbox')} WHERE playbook = {p} AND case_key = {p} "
        "AND status = 'pending' LIMIT 1",
        (playbook, key),
    )
    if not still or pending:
        return Purge()  # reopened since it was selected, or an action still to deliver
    n_actions = len(
        r._arun(
            f"DELETE FROM {t('outbox')} WHERE playbook = {p} AND case_key = {p} RETURNING seq",
            (playbook, key),
        )
    )
    if inside is not None:
        inside(playbook, key)
    for table in ("assignments", "alloc_queue"):
        r._arun(f"DELETE FROM {t(table)} WHERE playbook = {p} AND case_key = {p}", (playbook, key))
    r._arun(f"DELETE FROM {t('cases')} WHERE playbook = {p} AND case_key = {p}", (playbook, key))
    return Purge(cases=1, actions=n_actions)


def _delivered(tx: Any, playbook: str, until: float) -> Purge:
    r = _rows(tx)
    p = r._P
    gone = r._arun(
        f"DELETE FROM {r._atable('outbox')} WHERE playbook = {p} AND status = 'delivered' "
        f"AND available_at <= {p} RETURNING seq",
        (playbook, until),
    )
    return Purge(actions=len(gone))


def _rejected(tx: Any, until: dict[str, float]) -> Purge:
    r = _rows(tx)
    p = r._P
    latest = max(until.values())
    shortest = latest
    doomed = []
    for seq, cases, at in r._arun(
        f"SELECT seq, cases, at FROM {r._atable('rejected')} WHERE at <= {p} ORDER BY seq",
        (latest,),
    ):
        mine = [until[c[0]] for c in json.loads(cases) if c and c[0] in until]
        involved = [c for c in json.loads(cases) if c]
        if involved and not mine:
            continue  # another playbook's event: its own retention applies
        if at <= (min(mine) if mine else shortest):
            doomed.append(seq)
    for seq in doomed:
        r._arun(f"DELETE FROM {r._atable('rejected')} WHERE seq = {p}", (seq,))
    return Purge(rejected=len(doomed))
