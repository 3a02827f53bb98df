"""The embedded runtime (SPEC §7): persist cases, wake them when due, deliver their actions.

>>> from carepath.runtime import Runtime, open_store
>>> store = open_store("sqlite:///cases.db")            # doctest: +SKIP
>>> rt = Runtime([playbook], store)                     # doctest: +SKIP

See ``docs/runtime.md`` for the store interface, transactions, delivery semantics and the CLI.
"""

from __future__ import annotations

from typing import Any

from carepath.runtime._runtime import ActionHandler, Runtime, SubmitResult
from carepath.runtime.migrate import MigrationReport, check_versions, migrate_cases
from carepath.runtime.store import (
    Claimed,
    OutboxItem,
    Prefetched,
    Rejected,
    Store,
    StoreError,
    Tx,
)

__all__ = [
    "ActionHandler",
    "Claimed",
    "MigrationReport",
    "OutboxItem",
    "Prefetched",
    "Rejected",
    "Runtime",
    "SQLiteStore",
    "Store",
    "StoreError",
    "SubmitResult",
    "Tx",
    "check_versions",
    "migrate_cases",
    "open_store",
]


def open_store(url: str, **options: Any) -> Store:
    """Open a store by URL: ``sqlite:///relative.db``, ``sqlite:////absolute/path.db``,
    ``sqlite://:memory:``; ``postgresql://…`` once a PostgreSQL store is installed
    (``carepath.runtime.postgres``). ``options`` go to the store's constructor."""
    if url.startswith("sqlite:"):
        from carepath.runtime.sqlite import SQLiteStore

        return SQLiteStore.from_url(url, **options)
    if url.startswith(("postgresql:", "postgres:")):
        import importlib

        try:
            postgres: Any = importlib.import_module(f"{__name__}.postgres")
        except ImportError as exc:
            raise StoreError(f"no PostgreSQL store available ({exc})") from exc
        store: Store = postgres.PostgresStore.from_url(url, **options)
        return store
    raise StoreError(f"unknown store URL {url!r}: use sqlite:///cases.db (or postgresql://…)")


def __getattr__(name: str) -> Any:
    if name == "SQLiteStore":
        from carepath.runtime.sqlite import SQLiteStore

        return SQLiteStore
    raise AttributeError(name)
