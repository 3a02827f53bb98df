"""A new playbook version for open cases (SPEC §9): move them, and refuse to run beside them.

:func:`migrate_cases` moves every open case of a playbook id that runs another version (or the
same version with another content hash) onto the given playbook with
:meth:`~carepath.engine.engine.Engine.migrate`, in batches of one transaction each. It is
idempotent: a moved case has the new content hash and is not touched again, so a migration that
stopped half-way is finished by running it again.

:func:`check_versions` is what ``carepath run`` and ``carepath serve`` ask before starting: the
message naming ``carepath cases migrate`` when the store holds open cases of another version of
one of their playbooks (their events would otherwise be rejected one by one as
``playbook_mismatch``), or ``None``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from carepath.errors import CaseError

if TYPE_CHECKING:
    from carepath.compile.ir import Playbook
    from carepath.engine.engine import Engine
    from carepath.runtime.store import Store, Tx
    from carepath.state import CaseState

__all__ = ["MigrationReport", "check_versions", "migrate_cases", "stranded"]


@dataclass
class MigrationReport:
    """What :func:`migrate_cases` did (or, with ``dry_run``, would do).

    ``moved`` cases now run the new version; of those, ``earlier`` fall due (their next wake-up)
    earlier than before, ``later`` later (no wake-up counts as the latest), the rest unchanged.
    ``failed`` lists ``(case key, why)`` for the cases left as they were (a stage the new version
    lacks: give ``--map OLD=NEW``).
    """

    playbook: str
    version: str
    dry_run: bool = False
    moved: int = 0
    earlier: int = 0
    later: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def unchanged(self) -> int:
        """Moved cases whose next wake-up did not move."""
        return self.moved - self.earlier - self.later

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``cases migrate --format json``."""
        return {
            "playbook": self.playbook,
            "version": self.version,
            "dry_run": self.dry_run,
            "moved": self.moved,
            "earlier": self.earlier,
            "later": self.later,
            "unchanged": self.unchanged,
            "failed": [{"case": k, "message": m} for k, m in self.failed],
        }


def _due(state: CaseState) -> float:
    t = state.next_wakeup_s
    return float("inf") if t is None else float(t)


def migrate_cases(
    store: Store,
    playbook: Playbook,
    mapping: Mapping[str, str] | None = None,
    *,
    dry_run: bool = False,
    batch: int = 200,
    progress: Callable[[int, int], None] | None = None,
) -> MigrationReport:
    """Move every open case of ``playbook.id`` that runs another version onto ``playbook``
    (``mapping`` renames stages, old → new), ``batch`` cases a transaction; ``dry_run`` writes
    nothing. Returns the counts (see :class:`MigrationReport`). ``progress(done, total)`` is
    told the cases looked at so far after each batch (and ``(0, total)`` first)."""
    from carepath.engine.engine import Engine

    engine: Engine = Engine(playbook, trace=False)
    mapping = dict(mapping or {})
    report = MigrationReport(playbook.id, playbook.version, dry_run=dry_run)
    keys = store.stale_keys(playbook.id, playbook.content_hash)
    step = max(1, batch)
    if progress is not None:
        progress(0, len(keys))
    for i in range(0, len(keys), step):
        chunk = [(playbook.id, k) for k in keys[i : i + step]]
        part = store.atomic(
            functools.partial(_move, engine=engine, chunk=chunk, mapping=mapping, dry_run=dry_run)
        )
        report.moved += part.moved
        report.earlier += part.earlier
        report.later += part.later
        report.failed.extend(part.failed)
        if progress is not None:
            progress(min(i + step, len(keys)), len(keys))
    return report


def _move(
    tx: Tx,
    engine: Engine,
    chunk: list[tuple[str, str]],
    mapping: Mapping[str, str],
    dry_run: bool,
) -> MigrationReport:
    """One batch, in ``tx`` (run again from scratch on contention)."""
    pb = engine.playbook
    part = MigrationReport(pb.id, pb.version, dry_run=dry_run)
    now = time.time()
    for key, old in tx.prefetch((), chunk).states.items():
        if old is None or old.ended or old.content_hash == pb.content_hash:
            continue  # moved meanwhile (by a migration running beside this one), or ended
        try:
            new = engine.migrate(old, mapping)
        except (CaseError, ValueError) as exc:
            part.failed.append((key[1], str(exc)))
            continue
        part.moved += 1
        part.earlier += _due(new) < _due(old)
        part.later += _due(new) > _due(old)
        if not dry_run:
            tx.save(new, now)
    return part


def stranded(store: Store, playbooks: Iterable[Playbook]) -> list[tuple[str, str, str, int]]:
    """``(playbook id, version, content hash, open cases)`` of every other version of the given
    playbooks that still has open cases in ``store``."""
    current = {pb.id: pb.content_hash for pb in playbooks}
    return [row for row in store.open_versions() if row[0] in current and row[2] != current[row[0]]]


def check_versions(
    store: Store,
    playbooks: Iterable[Playbook],
    paths: Mapping[str, str] | None = None,
    url: str | None = None,
) -> str | None:
    """``None`` when no open case of ``store`` runs another version of one of ``playbooks``;
    otherwise the one-line message a command prints before refusing to start (exit 2), naming
    ``carepath cases migrate`` (``paths`` maps playbook ids to the files given and ``url`` is the
    store's URL as the user gave it, for the hint)."""
    pbs = {pb.id: pb for pb in playbooks}
    found = stranded(store, pbs.values())
    if not found:
        return None
    pid, version, _, n = found[0]
    pb = pbs[pid]
    same = version == pb.version
    what = (
        f"version {version} with other content than the playbook given"
        if same
        else f"version {version} (the playbook given is version {pb.version})"
    )
    more = sum(r[3] for r in found[1:])
    also = f", and {more} more of other versions or playbooks" if more else ""
    target = (paths or {}).get(pid, "PLAYBOOK")
    return (
        f"the store holds {n} open case(s) of {pid} {what}{also}; their events would be "
        f"rejected: move them first with `carepath cases migrate --store {url or 'URL'} --to "
        f"{target}` (--map OLD=NEW for renamed stages, --dry-run to see)"
    )
