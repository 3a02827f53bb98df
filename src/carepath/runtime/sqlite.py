"""The embedded store: stdlib :mod:`sqlite3`, WAL journal, busy timeout, versioned schema.

Concurrency: every unit of work starts with ``BEGIN IMMEDIATE``, which takes the database's
write lock up front (waiting up to the busy timeout); a ``database is locked`` error at any
point rolls back and runs the unit again after a short, jittered pause, for as long as it takes
(``wait`` seconds, an hour by default). Readers never block writers in WAL mode. So several
processes may open, migrate and write one file at once: they take turns, never corrupt it.

Durability: ``synchronous=FULL`` by default (a committed event survives power loss); ``?synchronous=normal``
in the URL keeps every commit safe against a process crash (SIGKILL) and is faster, but the
last commits may be lost on power loss.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs

from carepath.runtime._alloc_rows import SQLITE_MIGRATION, AllocationRows
from carepath.runtime._cache import StateCache
from carepath.runtime._outbox_rows import OutboxRows
from carepath.runtime._sql import SqlReaders
from carepath.runtime._wakeups import WakeupWindow, rows_after
from carepath.runtime.erasure import SQLITE_MIGRATION as PII_MIGRATION
from carepath.runtime.store import (
    Claimed,
    OutboxItem,
    Prefetched,
    Rejected,
    Store,
    StoreError,
    Tx,
)
from carepath.state import CaseState

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

T = TypeVar("T")

SCHEMA_VERSION = 3

_SCHEMA_1 = """
CREATE TABLE IF NOT EXISTS cases (
    playbook    TEXT NOT NULL,
    case_key    TEXT NOT NULL,
    version     TEXT NOT NULL,
    hash        TEXT NOT NULL,
    stage       TEXT NOT NULL,
    ended       INTEGER NOT NULL DEFAULT 0,
    next_wakeup REAL,
    state       TEXT NOT NULL,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (playbook, case_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS cases_wakeup ON cases (next_wakeup) WHERE next_wakeup IS NOT NULL;
CREATE TABLE IF NOT EXISTS processed (
    event_id TEXT PRIMARY KEY,
    at       REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    playbook      TEXT NOT NULL,
    id            TEXT NOT NULL,
    case_key      TEXT NOT NULL,
    type          TEXT NOT NULL,
    action        TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'pending',
    attempts      INTEGER NOT NULL DEFAULT 0,
    available_at  REAL NOT NULL,
    claimed_until REAL,
    claimed_by    TEXT,
    last_error    TEXT,
    UNIQUE (playbook, id)
);
CREATE INDEX IF NOT EXISTS outbox_ready ON outbox (available_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS outbox_case ON outbox (playbook, case_key);
CREATE TABLE IF NOT EXISTS rejected (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint TEXT NOT NULL UNIQUE,
    event_id    TEXT,
    case_key    TEXT,
    cases       TEXT NOT NULL,
    event       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    message     TEXT NOT NULL,
    at          REAL NOT NULL
);
"""

_MIGRATIONS: dict[int, str] = {1: _SCHEMA_1, 2: SQLITE_MIGRATION, 3: PII_MIGRATION}

_CHUNK = 500  # bound variables per IN query (SQLite's limit is 32,766 since 3.32, 999 before)


def _is_busy(exc: BaseException) -> bool:
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    msg = str(exc).lower()
    return "locked" in msg or "busy" in msg


def parse_sqlite_url(url: str) -> tuple[str, dict[str, str]]:
    """``sqlite:///rel.db`` → ``rel.db``; ``sqlite:////abs.db`` → ``/abs.db``; ``sqlite://:memory:``
    (or ``sqlite:///:memory:``) → ``:memory:``. A query string carries options."""
    if not url.startswith("sqlite:"):
        raise StoreError(f"not a SQLite URL: {url!r}")
    rest = url[len("sqlite:") :]
    query: dict[str, str] = {}
    if "?" in rest:
        rest, qs = rest.split("?", 1)
        query = {k: v[-1] for k, v in parse_qs(qs).items()}
    if rest in ("//:memory:", "///:memory:", ":memory:"):
        return ":memory:", query
    if rest.startswith("///"):
        path = rest[3:]
    elif rest.startswith("//"):
        raise StoreError(
            f"bad SQLite URL {url!r}: use sqlite:///relative.db or sqlite:////absolute/path.db"
        )
    else:
        path = rest
    if not path:
        raise StoreError(f"bad SQLite URL {url!r}: no file name")
    return path, query


class _SQLiteTx(AllocationRows, OutboxRows, Tx):
    """One transaction under the database's write lock. Case, processed-id and outbox writes are
    buffered and sent at commit (or before a read that could depend on them) as one prepared
    ``executemany`` per table; a case saved twice is encoded once, as it ends the batch. Reads
    answer from the buffer first, so the transaction sees its own writes."""

    __slots__ = ("c", "outbox", "processed", "saves", "states", "window")

    def __init__(self, conn: sqlite3.Connection, states: StateCache | None = None) -> None:
        self.c = conn
        self.states = states if states is not None else StateCache(0)
        self.saves: dict[tuple[str, str], tuple[CaseState, float]] = {}  # the last wins
        self.processed: dict[str, float] = {}  # the first wins (INSERT OR IGNORE)
        self.outbox: dict[tuple[str, str], tuple[Any, ...]] = {}  # the first wins
        self.window: WakeupWindow | None = None  # the wake-up index read ahead, once asked

    def flush(self) -> None:
        """Send the buffered writes (one ``executemany`` per table)."""
        c = self.c
        if self.processed:
            c.executemany(
                "INSERT OR IGNORE INTO processed (event_id, at) VALUES (?, ?)",
                list(self.processed.items()),
            )
            self.processed.clear()
        if self.saves:
            enc = self.states.encode
            c.executemany(
                "INSERT OR REPLACE INTO cases (playbook, case_key, version, hash, stage, ended, "
                "next_wakeup, state, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        st.playbook,
                        st.case,
                        st.version,
                        st.content_hash,
                        st.stage,
                        int(st.ended),
                        st.next_wakeup_s,
                        enc(st),
                        at,
                    )
                    for st, at in self.saves.values()
                ],
            )
            self.saves.clear()
            if self.window is not None:
                self.window.clear()
        if self.outbox:
            c.executemany(
                "INSERT OR IGNORE INTO outbox (playbook, id, case_key, type, action, available_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                list(self.outbox.values()),
            )
            self.outbox.clear()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """Run one statement after the buffered writes (it may change any row: the wake-up
        window is read again)."""
        self.flush()
        if self.window is not None:
            self.window.clear()
        return self.c.execute(sql, params)

    def _arun(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self.execute(sql, params).fetchall()

    def seen(self, event_id: str) -> bool:
        if event_id in self.processed:
            return True
        return (
            self.c.execute("SELECT 1 FROM processed WHERE event_id = ?", (event_id,)).fetchone()
            is not None
        )

    def mark_processed(self, event_id: str, at: float) -> None:
        self.processed.setdefault(event_id, at)

    def prefetch(self, event_ids: Collection[str], keys: Collection[tuple[str, str]]) -> Prefetched:
        """A batch's processed ids and cases in a few ``IN`` queries (the write lock of
        ``BEGIN IMMEDIATE`` already holds every row); what this transaction wrote answers first."""
        ids = [i for i in dict.fromkeys(event_ids) if i not in self.processed]
        seen: set[str] = {i for i in event_ids if i in self.processed}
        for i in range(0, len(ids), _CHUNK):
            part = ids[i : i + _CHUNK]
            seen.update(
                r[0]
                for r in self.c.execute(
                    f"SELECT event_id FROM processed WHERE event_id IN ({','.join('?' * len(part))})",
                    part,
                )
            )
        ks = sorted(set(keys))
        states: dict[tuple[str, str], CaseState | None] = dict.fromkeys(ks)
        saves = self.saves
        todo = [k for k in ks if k not in saves]
        for k in ks:
            if k in saves:
                states[k] = saves[k][0]
        decode = self.states.decode
        by_playbook: dict[str, list[str]] = {}
        for pb, key in todo:
            by_playbook.setdefault(pb, []).append(key)
        # one playbook at a time: `(playbook, case_key) IN (VALUES …)` would scan the whole table
        for pb, keys_of in by_playbook.items():
            for i in range(0, len(keys_of), _CHUNK):
                part = keys_of[i : i + _CHUNK]
                for key, text in self.c.execute(
                    "SELECT case_key, state FROM cases WHERE playbook = ? AND case_key IN "
                    f"({','.join('?' * len(part))})",
                    [pb, *part],
                ):
                    states[(pb, key)] = decode(pb, key, text)
        return Prefetched(frozenset(seen), states)

    def load(self, playbook: str, case: str) -> CaseState | None:
        got = self.saves.get((playbook, case))
        if got is not None:
            return got[0]
        row = self.c.execute(
            "SELECT state FROM cases WHERE playbook = ? AND case_key = ?", (playbook, case)
        ).fetchone()
        return None if row is None else self.states.decode(playbook, case, row[0])

    def save(self, state: CaseState, at: float) -> None:
        self.saves[(state.playbook, state.case)] = (state, at)
        if self.window is not None:
            self.window.saved(state)

    def due(
        self,
        now: float,
        limit: int,
        playbooks: Sequence[tuple[str, str]],
        exclude: Iterable[tuple[str, str]] = (),
    ) -> list[CaseState]:
        """The due cases of the file, where this transaction's own saves replace their rows,
        earliest first (ties by playbook and key, the order of the wake-up index), answered from
        a window of the index read ahead (see :mod:`carepath.runtime._wakeups`)."""
        if not playbooks or limit <= 0:
            return []
        if self.window is None:
            self.window = WakeupWindow(rows_after(self.c.execute), self.states.decode)
            for st, _ in self.saves.values():
                self.window.saved(st)
        return self.window.due(now, limit, playbooks, exclude, self.saves)

    def add_rejected(self, rejected: Rejected) -> None:
        ev = json.dumps(rejected.event, sort_keys=True, ensure_ascii=False, default=str)
        fp = hashlib.sha256(f"{rejected.reason}\n{ev}".encode()).hexdigest()
        eid = rejected.event.get("id")
        ck = rejected.event.get("case")
        self.c.execute(
            "INSERT OR IGNORE INTO rejected (fingerprint, event_id, case_key, cases, event, reason, message, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                fp,
                None if eid is None else str(eid),
                None if ck is None else str(ck),
                json.dumps([list(c) for c in rejected.cases]),
                ev,
                rejected.reason,
                rejected.message,
                rejected.at,
            ),
        )

    def claim_outbox(
        self,
        now: float,
        limit: int,
        lease_until: float,
        worker: str,
        types: Sequence[str] | None = None,
        max_attempts: int | None = None,
    ) -> Claimed:
        self.flush()
        c = self.c
        # through the index of pending items: the planner would rather walk the whole table in
        # seq order, every delivered row included (a claim would cost as much as the outbox is long)
        sql = (
            f"SELECT seq, {SqlReaders._COLS} FROM outbox INDEXED BY outbox_ready WHERE "
            "status = 'pending' AND available_at <= ? AND (claimed_until IS NULL OR claimed_until <= ?)"
        )
        params: list[Any] = [now, now]
        if types is not None:
            if not types:
                return Claimed([], [])
            sql += f" AND type IN ({','.join('?' * len(types))})"
            params.extend(types)
        sql += " ORDER BY seq LIMIT ?"
        params.append(limit)
        # the rows are read once: the items are what the updates below make of them
        live: list[int] = []
        dead: list[int] = []
        items: list[OutboxItem] = []
        gone: list[OutboxItem] = []
        item = SqlReaders._item
        for seq, *r in c.execute(sql, params).fetchall():
            attempts = r[5]
            if max_attempts is not None and attempts >= max_attempts:
                dead.append(seq)
                r[4], r[8], r[9] = "dead", None, None
                r[10] = "lease lapsed" if r[10] is None else r[10]
                gone.append(item(r))
            else:
                live.append(seq)
                r[5], r[8], r[9] = attempts + 1, float(lease_until), worker
                items.append(item(r))
        if dead:
            c.execute(
                "UPDATE outbox SET status = 'dead', claimed_until = NULL, claimed_by = NULL, "
                "last_error = coalesce(last_error, 'lease lapsed') "
                f"WHERE seq IN ({','.join('?' * len(dead))})",
                dead,
            )
        if live:  # one prepared statement (an IN list of each length would be parsed anew)
            c.executemany(
                "UPDATE outbox SET attempts = attempts + 1, claimed_until = ?, claimed_by = ? "
                "WHERE seq = ?",
                [(lease_until, worker, seq) for seq in live],
            )
        return Claimed(items, gone)

    def finish_outbox(
        self,
        playbook: str,
        item_id: str,
        worker: str,
        *,
        delivered: bool,
        retry_at: float | None = None,
        error: str | None = None,
        live_at: float | None = None,
        delivered_at: float | None = None,
    ) -> bool:
        if live_at is not None:
            where = "status = 'pending' AND claimed_by = ? AND claimed_until > ?"
            cond: list[Any] = [worker, live_at]
        elif delivered:
            where, cond = "status <> 'delivered'", []
        else:
            where, cond = "status = 'pending' AND claimed_by = ?", [worker]
        vals: list[Any]
        if delivered and delivered_at is not None:  # retention counts from the delivery
            sets, vals = "status = 'delivered', available_at = ?", [delivered_at]
        elif delivered:
            sets, vals = "status = 'delivered'", []
        elif retry_at is not None:
            sets, vals = "available_at = ?, last_error = ?", [retry_at, error]
        else:
            sets, vals = "status = 'dead', last_error = ?", [error]
        cur = self.execute(
            f"UPDATE outbox SET {sets}, claimed_until = NULL, claimed_by = NULL "
            f"WHERE playbook = ? AND id = ? AND {where}",
            [*vals, playbook, item_id, *cond],
        )
        return cur.rowcount > 0

    def finish_delivered(
        self, items: Sequence[tuple[str, str]], worker: str, delivered_at: float | None
    ) -> list[bool]:
        """Every item of ``items`` delivered with one prepared ``executemany``: which items
        exist and are not delivered yet (those :meth:`finish_outbox` changes) is read first, a
        few ``IN`` queries per playbook, so each answer is known without a statement per item."""
        if len(items) < 2:
            return super().finish_delivered(items, worker, delivered_at)
        self.flush()
        if self.window is not None:
            self.window.clear()
        c = self.c
        by_playbook: dict[str, list[str]] = {}
        for pb, item_id in items:
            by_playbook.setdefault(pb, []).append(item_id)
        open_: set[tuple[str, str]] = set()  # the items an UPDATE would change
        for pb, ids in by_playbook.items():
            for i in range(0, len(ids), _CHUNK):
                part = list(dict.fromkeys(ids[i : i + _CHUNK]))
                open_.update(
                    (pb, r[0])
                    for r in c.execute(
                        "SELECT id FROM outbox WHERE playbook = ? AND status <> 'delivered' AND id "
                        f"IN ({','.join('?' * len(part))})",
                        [pb, *part],
                    )
                )
        oks = []
        todo = []
        for k in items:
            ok = k in open_
            if ok:  # the same item twice: the second finds it delivered
                open_.discard(k)
                todo.append(k)
            oks.append(ok)
        vals: tuple[float, ...]
        if delivered_at is None:
            sets, vals = "status = 'delivered'", ()
        else:  # retention counts from the delivery
            sets, vals = "status = 'delivered', available_at = ?", (delivered_at,)
        c.executemany(
            f"UPDATE outbox SET {sets}, claimed_until = NULL, claimed_by = NULL "
            "WHERE playbook = ? AND id = ? AND status <> 'delivered'",
            [(*vals, pb, item_id) for pb, item_id in todo],
        )
        return oks


MAX_BUSY_TIMEOUT = 86_400.0
"""The longest ``busy_timeout`` (seconds) a store accepts: a day; 1e400 is no wait SQLite knows."""


class SQLiteStore(SqlReaders, Store):
    """A :class:`Store` in one SQLite file (or ``:memory:``)."""

    def __init__(
        self,
        path: str | os.PathLike[str] = ":memory:",
        *,
        busy_timeout: float = 30.0,
        synchronous: str = "FULL",
        wait: float = 3600.0,
        migrate: bool = True,
        create: bool = True,
        url: str | None = None,
        readonly: bool = False,
        check: bool = True,
        state_cache: int = 16384,
    ) -> None:
        """``readonly``: open an existing file with SQLite's ``mode=ro`` (no journal-mode change,
        no migration, nothing written: the read-only commands); ``check=False`` then skips the
        schema-version check (``carepath db status`` reports it instead). ``state_cache`` bounds
        how many decoded case states are kept to skip decoding a row that still holds what this
        process last wrote or read (:class:`~carepath.runtime._cache.StateCache`; 0 turns it off)."""
        if not (isinstance(busy_timeout, int | float) and 0 <= busy_timeout <= MAX_BUSY_TIMEOUT):
            raise StoreError(
                f"busy_timeout={busy_timeout!r}: a number of seconds from 0 to {MAX_BUSY_TIMEOUT}"
            )
        self.path = str(path)
        self.url = url or (
            "sqlite://:memory:" if self.path == ":memory:" else f"sqlite:///{self.path}"
        )
        self.wait = wait
        self.states = StateCache(state_cache)
        self._lock = threading.RLock()
        self._tx: _SQLiteTx | None = None
        if self.path != ":memory:":
            parent = Path(self.path).parent
            if not parent.is_dir():
                raise StoreError(f"cannot open store {self.url}: folder {parent} does not exist")
            if (not create or readonly) and not Path(self.path).is_file():
                what = "is not a file" if Path(self.path).exists() else "does not exist"
                raise StoreError(f"no store at {self.url} ({Path(self.path).resolve()} {what})")
        else:
            readonly = False
        sync = synchronous.upper()
        if sync not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise StoreError(f"synchronous={synchronous!r}: use full or normal")
        try:
            target = f"{Path(self.path).resolve().as_uri()}?mode=ro" if readonly else self.path
            self._conn = sqlite3.connect(
                target,
                timeout=busy_timeout,
                isolation_level=None,
                check_same_thread=False,
                uri=readonly,
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {self.url}: {exc}") from exc
        try:
            self._open(
                readonly=readonly,
                migrate=migrate,
                check=check,
                sync=sync,
                busy_timeout=busy_timeout,
            )
        except sqlite3.DatabaseError as exc:  # a text file: "file is not a database"
            self.close()
            raise StoreError(f"cannot open store {self.url}: {exc}") from exc
        except BaseException:
            self.close()
            raise

    def _open(
        self, *, readonly: bool, migrate: bool, check: bool, sync: str, busy_timeout: float
    ) -> None:
        if not readonly:
            self._retry(lambda: self._conn.execute("PRAGMA journal_mode=WAL").fetchone())
        self._conn.execute(f"PRAGMA synchronous={sync}")
        self._conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        if migrate and not readonly:
            self.migrate()
            return
        v = self.schema_version()  # reads the header: a file that is no database fails here
        if not check:
            return
        if v == 0:
            raise StoreError(f"no store at {self.url}: the file has no carepath tables")
        if v != SCHEMA_VERSION:
            raise StoreError(
                f"store {self.url} has schema version {v}, this carepath needs {SCHEMA_VERSION}"
                + ("" if readonly else "; open it with migrate=True")
            )

    # -- plumbing -------------------------------------------------------------------------------
    def _retry(self, fn: Callable[[], T]) -> T:
        deadline = time.monotonic() + self.wait
        pause = 0.005
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(pause * (0.5 + random.random()))
            pause = min(pause * 2, 0.25)

    def migrate(self) -> int:
        """Bring the schema to :data:`SCHEMA_VERSION` (idempotent, safe from several processes)."""

        def step() -> int:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                v = int(c.execute("PRAGMA user_version").fetchone()[0])
                if v > SCHEMA_VERSION:
                    raise StoreError(
                        f"store {self.url} has schema version {v}, newer than this carepath "
                        f"({SCHEMA_VERSION}); upgrade carepath"
                    )
                for n in range(v + 1, SCHEMA_VERSION + 1):
                    # statement by statement: executescript() would commit the open transaction
                    for stmt in _MIGRATIONS[n].split(";"):
                        if stmt.strip():
                            c.execute(stmt)
                    c.execute(f"PRAGMA user_version = {n}")
                c.execute("COMMIT")
                return max(v, SCHEMA_VERSION)
            except BaseException:
                if c.in_transaction:
                    c.execute("ROLLBACK")
                raise

        with self._lock:
            return self._retry(step)

    def schema_version(self) -> int:
        with self._lock:
            return int(self._retry(lambda: self._conn.execute("PRAGMA user_version").fetchone()[0]))

    def atomic(self, fn: Callable[[Tx], T]) -> T:
        with self._lock:
            if self._tx is not None:  # nested: part of the open unit of work
                return fn(self._tx)
            deadline = time.monotonic() + self.wait
            pause = 0.005
            c = self._conn
            while True:
                tx = _SQLiteTx(c, self.states)
                try:
                    c.execute("BEGIN IMMEDIATE")
                    self._tx = tx
                    result = fn(tx)
                    tx.flush()
                    c.execute("COMMIT")
                    return result
                except BaseException as exc:
                    if c.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            c.execute("ROLLBACK")
                    if not _is_busy(exc) or time.monotonic() > deadline:
                        raise
                finally:
                    self._tx = None
                time.sleep(pause * (0.5 + random.random()))
                pause = min(pause * 2, 0.25)

    def _write(self, sql: str, params: Sequence[Any]) -> int:
        def run(tx: Tx) -> int:
            assert isinstance(tx, _SQLiteTx)
            return tx.execute(sql, params).rowcount

        return self.atomic(run)

    def release_claims(self) -> int:
        return self._write(
            "UPDATE outbox SET claimed_until = NULL, claimed_by = NULL "
            "WHERE status = 'pending' AND claimed_until IS NOT NULL",
            (),
        )

    # -- reading --------------------------------------------------------------------------------
    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self._retry(lambda: self._conn.execute(sql, params).fetchall())

    def cases(self, playbook_id: str | None = None) -> list[CaseState]:
        if playbook_id is None:
            rows = self._read("SELECT state FROM cases ORDER BY playbook, case_key")
        else:
            rows = self._read(
                "SELECT state FROM cases WHERE playbook = ? ORDER BY case_key", (playbook_id,)
            )
        return [CaseState.from_json(r[0]) for r in rows]

    def next_wakeup(self, playbooks: Sequence[tuple[str, str]] | None = None) -> float | None:
        if playbooks is None:
            v = self._read("SELECT min(next_wakeup) FROM cases")[0][0]
            return None if v is None else float(v)
        best: float | None = None
        for pb, h in playbooks:
            v = self._read(
                "SELECT min(next_wakeup) FROM cases WHERE playbook = ? AND hash = ?", (pb, h)
            )[0][0]
            if v is not None and (best is None or v < best):
                best = float(v)
        return best

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check`` (``"ok"`` for a sound file)."""
        return str(self._read("PRAGMA integrity_check")[0][0])

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._conn.close()

    @classmethod
    def from_url(cls, url: str, **kw: Any) -> SQLiteStore:
        """Open ``sqlite:///rel.db`` / ``sqlite:////abs.db`` / ``sqlite://:memory:``; URL options:
        ``synchronous=full|normal``, ``busy_timeout`` (seconds), ``migrate=0``, ``state_cache``
        (decoded states kept; 0: none)."""
        path, q = parse_sqlite_url(url)
        opts: dict[str, Any] = dict(kw)
        if "synchronous" in q:
            opts.setdefault("synchronous", q["synchronous"])
        if "busy_timeout" in q:
            try:
                opts.setdefault("busy_timeout", float(q["busy_timeout"]))
            except ValueError:
                raise StoreError(
                    f"busy_timeout={q['busy_timeout']!r}: a number of seconds"
                ) from None
        if "create" in q:
            opts.setdefault("create", q["create"] not in ("0", "false", "no"))
        if "migrate" in q:
            opts.setdefault("migrate", q["migrate"] not in ("0", "false", "no"))
        if "state_cache" in q:
            try:
                opts.setdefault("state_cache", int(q["state_cache"]))
            except ValueError:
                raise StoreError(
                    f"state_cache={q['state_cache']!r}: a number of case states"
                ) from None
        return cls(path, url=url, **opts)
