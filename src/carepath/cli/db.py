"""``carepath db migrate|status --store URL``: the schema of a store.

``migrate`` brings the store's schema to the version this carepath needs (idempotent; safe while
workers run and from several processes at once: migrations take an advisory lock); ``status``
prints the schema version and row counts without changing anything. Works for ``postgresql://``
(``?schema=NAME`` picks the deployment) and ``sqlite:///`` stores.

Exit codes: 0 ok (``status``: the schema is current), 1 ``status``: the schema is missing or
older than this carepath needs, 2 bad arguments or an unreachable store.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

HELP = "store schema: migrate, status"
ORDER = 62


def register(sub: Any) -> None:
    """Add the ``db`` sub-command."""
    p = sub.add_parser(
        "db",
        help=HELP,
        description=__doc__.split("\n\n")[0] if __doc__ else HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes: 0 ok, 1 schema missing or out of date (status), 2 bad arguments or store",
    )
    sp = p.add_subparsers(dest="db_command", metavar="COMMAND", required=True)
    for name, hlp in (
        ("migrate", "create or upgrade the schema"),
        ("status", "show the schema version and counts"),
    ):
        c = sp.add_parser(name, help=hlp)
        c.add_argument(
            "--store",
            required=True,
            metavar="URL",
            help="postgresql://user@host/db?schema=NAME or sqlite:///cases.db",
        )
        c.add_argument(
            "--format", "-f", choices=("table", "json"), default="table", help="output format"
        )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run; return the exit code."""
    from carepath.cli.common import open_read_store
    from carepath.runtime import StoreError, open_store

    pg = args.store.startswith(("postgresql:", "postgres:"))
    try:
        if args.db_command == "migrate":
            store = open_store(args.store, migrate=True)
        else:  # status only reads: SQLite mode=ro, no migration
            store = open_read_store(args.store, check=False)
    except (StoreError, OSError, ValueError) as exc:
        print(f"carepath: --store: {exc}", file=sys.stderr)
        return 2
    try:
        from carepath.runtime.sqlite import SCHEMA_VERSION as SQLITE_VERSION

        needed = SQLITE_VERSION
        if pg:
            from carepath.runtime.postgres import SCHEMA_VERSION as PG_VERSION

            needed = PG_VERSION
        version = store.schema_version()
        info: dict[str, Any] = {
            "store": _safe(args.store),
            "schema_version": version,
            "required": needed,
        }
        status = getattr(store, "status", None)
        if version == needed and callable(status):
            info.update(status())
    except StoreError as exc:
        print(f"carepath: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    if args.format == "json":
        print(json.dumps(info, indent=2))
    else:
        verb = "migrated" if args.db_command == "migrate" else "schema"
        state = (
            "current"
            if version == needed
            else "missing"
            if version == 0
            else "out of date: run carepath db migrate"
            if version < needed
            else "newer than this carepath"
        )
        print(f"{info['store']}: {verb} version {version} ({state})")
        rest = {k: v for k, v in info.items() if k not in ("store", "schema_version", "required")}
        if rest:
            print("  " + ", ".join(f"{k} {v}" for k, v in rest.items()))
    return 0 if version == needed else 1


def _safe(url: str) -> str:
    import re

    return re.sub(r"://([^:@/]*):[^@/]*@", r"://\1:***@", url)
