"""Helpers shared by the sub-commands (not a command itself: no ``cli_`` prefix)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from carepath.compile.ir import Playbook
    from carepath.runtime import Store
    from carepath.runtime.allocation import Roster

__all__ = ["load_playbook", "load_playbooks", "open_read_store", "parse_until", "read_roster"]


def load_playbook(path: str, *, color_mode: str = "auto") -> Playbook | int:
    """Load a playbook for a command: the playbook, or an exit code after printing why on
    standard error (2: cannot be read; 1: invalid, with ``validate``'s diagnostics)."""
    from carepath.cli.validate import use_color
    from carepath.diagnostics import format_diagnostics
    from carepath.loading.loader import check_file

    if not Path(path).is_file():
        what = "is a folder, not a playbook file" if Path(path).is_dir() else "no such file"
        print(f"carepath: {path}: {what}", file=sys.stderr)
        return 2
    res = check_file(path)
    if any(d.code == "CP100" for d in res.diagnostics):
        print(
            format_diagnostics(res.diagnostics, "text", sources=res.sources).rstrip(),
            file=sys.stderr,
        )
        return 2
    if res.playbook is None:
        out = format_diagnostics(
            res.diagnostics, "text", sources=res.sources, color=use_color(color_mode, sys.stderr)
        )
        sys.stderr.write(out)
        print(
            f"carepath: {path} is not a valid playbook (run `carepath validate {path}`)",
            file=sys.stderr,
        )
        return 1
    return res.playbook


def load_playbooks(paths: list[str]) -> list[Playbook] | int:
    """Load several playbooks (distinct ids: a store or a job runs one version of each), or an exit code."""
    playbooks: list[Playbook] = []
    for path in paths:
        pb = load_playbook(path)
        if isinstance(pb, int):
            return pb
        playbooks.append(pb)
    ids = [pb.id for pb in playbooks]
    if len(set(ids)) != len(ids):
        print(
            "carepath: the same playbook id is given twice; a store or a job runs one version of each",
            file=sys.stderr,
        )
        return 2
    return playbooks


def read_roster(path: str | None, playbooks: list[Playbook]) -> Roster | int | None:
    """``--roster FILE``: the roster, checked against the playbooks (tiers, calendars); ``None``
    without one; a bad file prints one line naming the place and returns 2."""
    if path is None:
        return None
    from carepath.runtime.allocation import RosterError, check_roster, load_roster

    try:
        roster = load_roster(path)
        check_roster(
            roster,
            {t for pb in playbooks for t in pb.tiers},
            [set(pb.calendars) for pb in playbooks],
        )
    except RosterError as exc:
        print(f"carepath: --roster: {exc}", file=sys.stderr)
        return 2
    return roster


def parse_until(text: str | None, playbooks: list[Playbook]) -> datetime | None:
    """``--until``: an ISO instant (local time in the first playbook's timezone when it has no
    offset). A bad value prints why and exits with 2 (bad arguments)."""
    if text is None:
        return None
    from carepath._instants import zone
    from carepath.drivers.simulate import parse_instant

    try:
        return parse_instant(text, zone(playbooks[0].timezone))
    except ValueError as exc:
        print(f"carepath: --until: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def open_read_store(url: str, *, check: bool = True) -> Store:
    """Open a store for a command that only reads (``cases``, ``report --store``, ``db status``):
    SQLite with ``mode=ro`` (nothing is created, migrated or written; a missing file is an
    error), PostgreSQL without migrating. ``check=False`` leaves the schema version to the caller.
    Raises ``StoreError`` (or ``ValueError`` for a bad URL option)."""
    from carepath.runtime import open_store

    if url.startswith("sqlite:"):
        return open_store(url, readonly=True, check=check)
    return open_store(url, migrate=False, create=False, check=check)
