"""The PostgreSQL store (SPEC §7): many workers on one database, on psycopg 3 and ``psycopg_pool``.

Concurrency: row locks. :meth:`Tx.load` and :meth:`Tx.prefetch` are ``SELECT … FOR UPDATE``;
prefetch locks a batch's cases in one order (playbook, key; C collation), so two batches sharing
cases wait for each other rather than deadlock. A case that does not exist yet: ``load`` serializes
on a transaction-scoped advisory lock on its key; ``prefetch`` writes it with a plain ``INSERT``,
so a worker that opened it meanwhile makes the batch fail on the unique key and run again, where
the case exists and is locked. Likewise a processed id committed by another worker meanwhile is
caught at flush and the batch runs again (the event is then a duplicate). :meth:`Tx.due` and :meth:`PostgresStore.claim_outbox` take rows with ``FOR UPDATE SKIP LOCKED``, so
workers share the due cases and the outbox without waiting on each other. A serialization failure,
a deadlock or a lost connection (the server restarting, ``pg_terminate_backend``) rolls back and
runs the unit of work again on a fresh connection, for up to ``wait`` seconds.

A batch of events costs a fixed number of round trips whatever its size: :meth:`Tx.prefetch` reads
the batch's processed ids and locks its cases in one pipelined round trip; writes inside a unit of
work are buffered and sent at commit as one ``INSERT … SELECT FROM unnest(…)`` per table (binary
array parameters), pipelined with the ``NOTIFY``; then one ``COMMIT`` (one WAL fsync). Single reads
(``seen``, ``load``, ``due``) go to the server at once, after flushing the buffer when they could
depend on it.

A commit that queued outbox rows or moved a wake-up sends ``NOTIFY`` on the store's channel;
:meth:`PostgresStore.wait_for_work` blocks on ``LISTEN`` (falling back to a plain sleep without a
connection), so idle workers wake at once.

URL: ``postgresql://user@host:port/db?schema=carepath&migrate=false&pool_max=4`` (``postgres://``
too); the options ``schema``, ``migrate``, ``pool_min``, ``pool_max``, ``wait``, ``state_cache`` are
the store's, the rest go to libpq (``options=-c%20synchronous_commit%3Doff`` trades durability for
speed; the default keeps the server's setting, durable ``on``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import re
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import errors as pgerr
from psycopg_pool import ConnectionPool

from carepath.runtime._alloc_rows import AllocationRows
from carepath.runtime._cache import StateCache
from carepath.runtime._outbox_rows import OutboxRows
from carepath.runtime._pg_schema import MIGRATIONS, SCHEMA_VERSION
from carepath.runtime._sql import SqlReaders
from carepath.runtime.store import (
    Claimed,
    Prefetched,
    Rejected,
    Store,
    StoreError,
    Tx,
)
from carepath.state import CaseState

__all__ = ["SCHEMA_VERSION", "PostgresStore", "parse_postgres_url"]

T = TypeVar("T")

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")  # fullmatch: `$` would let a trailing newline pass
_STORE_OPTS = ("schema", "migrate", "pool_min", "pool_max", "wait", "create", "state_cache")
_BIG = 2**31 - 1


def parse_postgres_url(url: str) -> tuple[str, dict[str, str]]:
    """Split the store's own options off a ``postgresql://`` / ``postgres://`` URL: ``(libpq URL, options)``."""
    if not url.startswith(("postgresql:", "postgres:")):
        raise StoreError(f"not a PostgreSQL URL: {url!r}")
    parts = urlsplit(url)
    q = parse_qsl(parts.query, keep_blank_values=True)
    mine = {k: v for k, v in q if k in _STORE_OPTS}
    rest = [(k, v) for k, v in q if k not in _STORE_OPTS]
    return urlunsplit(
        ("postgresql", parts.netloc, parts.path, urlencode(rest), parts.fragment)
    ), mine


def _retryable(exc: BaseException) -> bool:
    """Contention or a lost connection: the unit of work can simply run again."""
    return isinstance(
        exc,
        pgerr.SerializationFailure
        | pgerr.DeadlockDetected
        | psycopg.OperationalError
        | pgerr.UniqueViolation
        | _Conflict,
    )


def _columns(rows: Sequence[tuple[Any, ...]], n: int) -> list[list[Any]]:
    """Rows → ``n`` column lists (the arrays an ``unnest`` insert takes)."""
    return [[r[i] for r in rows] for i in range(n)] if rows else [[] for _ in range(n)]


def _case_row(state: CaseState, text: str, at: float) -> tuple[Any, ...]:
    return (
        state.playbook,
        state.case,
        state.version,
        state.content_hash,
        state.stage,
        bool(state.ended),
        _float(state.next_wakeup_s),
        text,
        float(at),
    )


def _float(v: float | None) -> float | None:
    return None if v is None else float(v)


def _truthy(v: str) -> bool:
    return v.lower() not in ("0", "false", "no", "off")


class _Conflict(Exception):
    """Another transaction processed one of this batch's event ids first: run the batch again."""


class _PgTx(AllocationRows, OutboxRows, Tx):
    """One transaction on one connection; writes are buffered until :meth:`flush`."""

    _P = "%s"

    def _arun(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        self.cur.execute(sql, params)
        return self.cur.fetchall() if self.cur.description is not None else []

    def _atable(self, name: str) -> str:
        return f'"{self.s.schema}".{name}'

    def lock_allocation(self) -> None:
        self.cur.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            (f"carepath-alloc:{self.s.schema}",),
        )

    def __init__(self, store: PostgresStore, conn: psycopg.Connection[Any]) -> None:
        self.s = store
        self.conn = conn
        self.cur = conn.cursor()
        self.processed: dict[str, float] = {}
        self.saves: dict[
            tuple[str, str], tuple[CaseState, float]
        ] = {}  # serialized at flush: the last wins
        self.outbox: dict[tuple[str, str], tuple[Any, ...]] = {}
        self.rejected: dict[str, tuple[Any, ...]] = {}
        self.notify = False
        # keys prefetch found without a case: their first save is a plain INSERT, so a worker that
        # opened the same case meanwhile makes this one fail (unique key) and run again
        self.absent: set[tuple[str, str]] = set()
        # ids prefetch found unprocessed: if one turns out processed at flush (another worker
        # committed it meanwhile), the batch runs again and sees it as a duplicate
        self.unseen: set[str] = set()

    def flush(self, final: bool = False) -> None:
        """Send the buffered writes: one statement per table over ``unnest`` arrays, pipelined
        (one round trip), whatever the number of rows; ``final`` (at commit) adds the ``NOTIFY``."""
        t = self.s.t
        if not (
            self.processed or self.saves or self.outbox or self.rejected or (final and self.notify)
        ):
            return
        with self.conn.pipeline():
            pc = None
            if self.processed:
                pc = self.conn.cursor()
                pc.execute(
                    f"INSERT INTO {t['processed']} (event_id, at) SELECT * FROM unnest(%b::text[], "
                    "%b::float8[]) ON CONFLICT DO NOTHING RETURNING event_id",
                    (list(self.processed), [float(x) for x in self.processed.values()]),
                )
            if self.saves:
                enc = self.s.states.encode
                new = [
                    _case_row(st, enc(st), at)
                    for k, (st, at) in self.saves.items()
                    if k in self.absent
                ]
                old = [
                    _case_row(st, enc(st), at)
                    for k, (st, at) in self.saves.items()
                    if k not in self.absent
                ]
                cols = (
                    "INSERT INTO {} (playbook, case_key, version, hash, stage, ended, next_wakeup, state, "
                    "updated_at) SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], "
                    "%b::text[], %b::boolean[], %b::float8[], %b::text[], %b::float8[])"
                ).format(t["cases"])
                if new:
                    self.cur.execute(cols, _columns(new, 9))
                if old:
                    self.cur.execute(
                        cols
                        + " ON CONFLICT (playbook, case_key) DO UPDATE SET version = EXCLUDED.version, "
                        "hash = EXCLUDED.hash, stage = EXCLUDED.stage, ended = EXCLUDED.ended, "
                        "next_wakeup = EXCLUDED.next_wakeup, state = EXCLUDED.state, updated_at = EXCLUDED.updated_at",
                        _columns(old, 9),
                    )
                if any(st.next_wakeup_s is not None for st, _ in self.saves.values()):
                    self.notify = True
            if self.outbox:
                self.cur.execute(
                    f"INSERT INTO {t['outbox']} (playbook, id, case_key, type, action, available_at) SELECT * FROM "
                    "unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::float8[]) "
                    "ON CONFLICT (playbook, id) DO NOTHING",
                    _columns(list(self.outbox.values()), 6),
                )
                self.notify = True
            if self.rejected:
                self.cur.execute(
                    f"INSERT INTO {t['rejected']} (fingerprint, event_id, case_key, cases, event, reason, message, at) "
                    "SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[], "
                    "%b::text[], %b::float8[]) ON CONFLICT (fingerprint) DO NOTHING",
                    _columns(list(self.rejected.values()), 8),
                )
            if final and self.notify:
                self.cur.execute("SELECT pg_notify(%s, '')", (self.s.channel,))
        if pc is not None:
            inserted = {r[0] for r in pc.fetchall()}
            lost = (self.unseen & self.processed.keys()) - inserted
            if lost:
                raise _Conflict(
                    f"event ids processed by another worker meanwhile: {sorted(lost)[:5]}"
                )
        self.absent.difference_update(self.saves)
        self.processed.clear()
        self.saves.clear()
        self.outbox.clear()
        self.rejected.clear()

    def prefetch(self, event_ids: Collection[str], keys: Collection[tuple[str, str]]) -> Prefetched:
        """Both reads of a batch in one pipelined round trip: ``event_id = ANY(…)`` on the processed
        ids, and the cases ``FOR UPDATE``, locked in (playbook, key) order."""
        self.flush()
        t = self.s.t
        ids = list(event_ids)
        ks = sorted(set(keys))
        seen: frozenset[str] = frozenset()
        states: dict[tuple[str, str], CaseState | None] = dict.fromkeys(ks)
        with self.conn.pipeline():
            ic = kc = None
            if ids:
                ic = self.conn.cursor()
                ic.execute(
                    f"SELECT event_id FROM {t['processed']} WHERE event_id = ANY(%b::text[])",
                    (ids,),
                )
            if ks:
                kc = self.conn.cursor()
                kc.execute(
                    f"SELECT c.playbook, c.case_key, c.state FROM {t['cases']} c JOIN unnest(%b::text[], "
                    "%b::text[]) AS k(playbook, case_key) USING (playbook, case_key) "
                    'ORDER BY c.playbook COLLATE "C", c.case_key COLLATE "C" FOR UPDATE OF c',
                    ([p for p, _ in ks], [c for _, c in ks]),
                )
        if ic is not None:
            seen = frozenset(r[0] for r in ic.fetchall())
            self.unseen.update(i for i in ids if i not in seen)
        if kc is not None:
            decode = self.s.states.decode
            for pb, key, text in kc.fetchall():
                states[(pb, key)] = decode(pb, key, text)
        self.absent.update(k for k, v in states.items() if v is None)
        return Prefetched(seen, states)

    def seen(self, event_id: str) -> bool:
        if event_id in self.processed:
            return True
        self.cur.execute(f"SELECT 1 FROM {self.s.t['processed']} WHERE event_id = %s", (event_id,))
        if self.cur.fetchone() is not None:
            return True
        self.unseen.add(event_id)
        return False

    def mark_processed(self, event_id: str, at: float) -> None:
        self.processed.setdefault(event_id, at)

    def load(self, playbook: str, case: str) -> CaseState | None:
        k = (playbook, case)
        if k in self.saves:
            return self.saves[k][0]
        sql = f"SELECT state FROM {self.s.t['cases']} WHERE playbook = %s AND case_key = %s FOR UPDATE"
        self.cur.execute(sql, k)
        row = self.cur.fetchone()
        if row is None:
            # not there (or not committed yet): serialize on the key, then look again with a new snapshot
            self.cur.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                (f"{self.s.schema}\x1f{playbook}\x1f{case}",),
            )
            self.cur.execute(sql, k)
            row = self.cur.fetchone()
        return None if row is None else self.s.states.decode(playbook, case, row[0])

    def save(self, state: CaseState, at: float) -> None:
        self.saves[(state.playbook, state.case)] = (state, at)

    def due(
        self,
        now: float,
        limit: int,
        playbooks: Sequence[tuple[str, str]],
        exclude: Iterable[tuple[str, str]] = (),
    ) -> list[CaseState]:
        if not playbooks or limit <= 0:
            return []
        self.flush()
        ex = [f"{p}\x1f{c}" for p, c in exclude]
        sql = (
            f"SELECT playbook, case_key, state FROM {self.s.t['cases']} WHERE next_wakeup IS NOT NULL "
            "AND next_wakeup <= %s "
            "AND (playbook, hash) IN (SELECT * FROM unnest(%b::text[], %b::text[])) "
        )
        params: list[Any] = [now, [p for p, _ in playbooks], [h for _, h in playbooks]]
        if ex:
            sql += "AND NOT (playbook || E'\\x1f' || case_key = ANY(%b::text[])) "
            params.append(ex)
        sql += "ORDER BY next_wakeup LIMIT %s FOR UPDATE SKIP LOCKED"
        params.append(limit)
        self.cur.execute(sql, params)
        decode = self.s.states.decode
        return [decode(pb, key, text) for pb, key, text in self.cur.fetchall()]

    def add_rejected(self, rejected: Rejected) -> None:
        ev = json.dumps(rejected.event, sort_keys=True, ensure_ascii=False, default=str)
        fp = hashlib.sha256(f"{rejected.reason}\n{ev}".encode()).hexdigest()
        eid = rejected.event.get("id")
        ck = rejected.event.get("case")
        self.rejected.setdefault(
            fp,
            (
                fp,
                None if eid is None else str(eid),
                None if ck is None else str(ck),
                json.dumps([list(c) for c in rejected.cases]),
                ev,
                rejected.reason,
                rejected.message,
                float(rejected.at),
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
        if types is not None and not types:
            return Claimed([], [])
        self.flush()
        o = self.s.t["outbox"]
        cols = ", ".join(f"o.{x.strip()}" for x in SqlReaders._COLS.split(","))
        type_filter = "AND type = ANY(%(types)s)" if types is not None else ""
        sql = (
            f"WITH c AS (SELECT seq FROM {o} WHERE status = 'pending' AND available_at <= %(now)s "
            f"AND (claimed_until IS NULL OR claimed_until <= %(now)s) {type_filter} "
            "ORDER BY seq LIMIT %(limit)s FOR UPDATE SKIP LOCKED), "
            f"dead AS (UPDATE {o} o SET status = 'dead', claimed_until = NULL, claimed_by = NULL, "
            "last_error = coalesce(o.last_error, 'lease lapsed') FROM c WHERE o.seq = c.seq "
            f"AND o.attempts >= %(max)s RETURNING false, o.seq, {cols}), "
            f"live AS (UPDATE {o} o SET attempts = o.attempts + 1, claimed_until = %(lease)s, "
            "claimed_by = %(worker)s FROM c WHERE o.seq = c.seq AND o.attempts < %(max)s "
            f"RETURNING true, o.seq, {cols}) "
            "SELECT * FROM live UNION ALL SELECT * FROM dead"
        )
        params = {
            "now": now,
            "limit": limit,
            "types": list(types or []),
            "lease": lease_until,
            "worker": worker,
            "max": _BIG if max_attempts is None else max_attempts,
        }
        self.cur.execute(sql, params)
        rows = sorted(self.cur.fetchall(), key=lambda r: r[1])
        return Claimed(
            [SqlReaders._item(r[2:]) for r in rows if r[0]],
            [SqlReaders._item(r[2:]) for r in rows if not r[0]],
        )

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
            where = "status = 'pending' AND claimed_by = %s AND claimed_until > %s"
            cond: list[Any] = [worker, live_at]
        elif delivered:
            where, cond = "status <> 'delivered'", []
        else:
            where, cond = "status = 'pending' AND claimed_by = %s", [worker]
        vals: list[Any]
        if delivered and delivered_at is not None:  # retention counts from the delivery
            sets, vals = "status = 'delivered', available_at = %s", [delivered_at]
        elif delivered:
            sets, vals = "status = 'delivered'", []
        elif retry_at is not None:
            sets, vals = "available_at = %s, last_error = %s", [retry_at, error]
        else:
            sets, vals = "status = 'dead', last_error = %s", [error]
        self.flush()
        self.cur.execute(
            f"UPDATE {self.s.t['outbox']} SET {sets}, claimed_until = NULL, claimed_by = NULL "
            f"WHERE playbook = %s AND id = %s AND {where}",
            [*vals, playbook, item_id, *cond],
        )
        return self.cur.rowcount > 0


class PostgresStore(SqlReaders, Store):
    """A :class:`Store` in one PostgreSQL schema, shared by any number of worker processes.

    Give it a libpq ``conninfo`` (a pool of ``pool_min``…``pool_max`` connections is opened), or a
    host's own ``pool`` (``psycopg_pool.ConnectionPool``) or ``connection`` (used under a lock; it
    cannot be reopened if the server drops it). ``schema`` names the deployment (several share a
    database); ``migrate`` brings the schema up to date on open; ``wait`` bounds how long a unit
    of work is retried on contention or a lost connection; ``check=False`` (with ``migrate=False``)
    opens a store whatever its schema version, to report it. ``state_cache`` bounds how many
    decoded case states are kept to skip decoding a row that still holds what this process last
    wrote or read (:class:`~carepath.runtime._cache.StateCache`; 0 turns it off).
    """

    def __init__(
        self,
        conninfo: str | None = None,
        *,
        schema: str = "carepath",
        pool: ConnectionPool[Any] | None = None,
        connection: psycopg.Connection[Any] | None = None,
        pool_min: int = 1,
        pool_max: int = 4,
        migrate: bool = True,
        create: bool = True,
        wait: float = 300.0,
        url: str | None = None,
        check: bool = True,
        state_cache: int = 4096,
    ) -> None:
        if sum(x is not None for x in (conninfo, pool, connection)) != 1:
            raise StoreError("PostgresStore needs exactly one of conninfo, pool, connection")
        if not (isinstance(schema, str) and _NAME.fullmatch(schema)):
            raise StoreError(
                f"bad schema name {schema!r}: lower-case letters, digits and _ (at most 63)"
            )
        self.schema = schema
        self.url = url or (
            f"{conninfo}?schema={schema}"
            if conninfo
            else f"postgresql:(host connection)?schema={schema}"
        )
        self.wait_limit = wait
        self.conninfo = conninfo
        self.states = StateCache(state_cache)
        self.channel = f"carepath_{schema}"[:63]
        q = f'"{schema}"'
        self.t = {
            n: f"{q}.{n}" for n in ("cases", "processed", "outbox", "rejected", "schema_version")
        }
        self._local = threading.local()
        self._conn_lock = threading.RLock()
        self._own_pool = False
        self._connection = connection
        self._pool = pool
        self._listener: psycopg.Connection[Any] | None = None
        self._listen_lock = threading.Lock()
        if conninfo is not None:
            try:
                self._pool = ConnectionPool(
                    conninfo,
                    min_size=max(1, pool_min),
                    max_size=max(pool_min, pool_max, 1),
                    kwargs={"autocommit": True},
                    open=False,
                    name=f"carepath-{schema}",
                )
                self._pool.open(wait=True, timeout=min(wait, 10.0))
            except Exception as exc:
                if self._pool is not None:
                    with contextlib.suppress(Exception):
                        self._pool.close(timeout=0)
                raise StoreError(f"cannot connect to {self._safe_url()}: {exc}") from exc
            self._own_pool = True
        try:
            if migrate and create:
                self.migrate()
            elif check:
                v = self.schema_version()
                if v == 0:
                    raise StoreError(
                        f"no store at {self._safe_url()} (schema {schema!r} has no carepath tables)"
                    )
                if v != SCHEMA_VERSION:
                    raise StoreError(
                        f"store {self._safe_url()} has schema version {v}, this carepath needs "
                        f"{SCHEMA_VERSION}; run `carepath db migrate`"
                    )
        except BaseException:
            self.close()
            raise

    def _safe_url(self) -> str:
        return re.sub(r"://([^:@/]*):[^@/]*@", r"://\1:***@", self.url)

    # -- connections ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _connect(self) -> Iterator[psycopg.Connection[Any]]:
        if self._pool is not None:
            with self._pool.connection(timeout=10.0) as conn:
                yield conn
        else:
            assert self._connection is not None
            with self._conn_lock:
                yield self._connection

    def _run(self, fn: Callable[[psycopg.Connection[Any]], T]) -> T:
        """``fn(conn)`` inside a transaction, run again on contention or a lost connection."""
        deadline = time.monotonic() + self.wait_limit
        pause = 0.005
        while True:
            try:
                with self._connect() as conn, conn.transaction():
                    return fn(conn)
            except BaseException as exc:
                if not _retryable(exc) or time.monotonic() > deadline:
                    if isinstance(exc, psycopg.OperationalError):
                        raise StoreError(f"{self._safe_url()}: {exc}") from exc
                    raise
            time.sleep(pause * (0.5 + random.random()))
            pause = min(pause * 2, 1.0)

    # -- schema ---------------------------------------------------------------------------------
    def migrate(self) -> int:
        """Bring the schema to :data:`SCHEMA_VERSION` (idempotent; an advisory lock serializes
        workers starting at once). Returns the version."""

        def step(conn: psycopg.Connection[Any]) -> int:
            c = conn.cursor()
            c.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                (f"carepath-migrate:{self.schema}",),
            )
            c.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {self.t['schema_version']} (version integer PRIMARY KEY, "
                "applied_at timestamptz NOT NULL DEFAULT now())"
            )
            c.execute(f"SELECT coalesce(max(version), 0) FROM {self.t['schema_version']}")
            row = c.fetchone()
            v = int(row[0]) if row else 0
            if v > SCHEMA_VERSION:
                raise StoreError(
                    f"store {self._safe_url()} has schema version {v}, newer than this carepath "
                    f"({SCHEMA_VERSION}); upgrade carepath"
                )
            for n in range(v + 1, SCHEMA_VERSION + 1):
                c.execute(MIGRATIONS[n].replace("{s}", f'"{self.schema}"'))
                c.execute(f"INSERT INTO {self.t['schema_version']} (version) VALUES (%s)", (n,))
            return max(v, SCHEMA_VERSION)

        return self._run(step)

    def schema_version(self) -> int:
        def step(conn: psycopg.Connection[Any]) -> int:
            c = conn.cursor()
            c.execute("SELECT to_regclass(%s)", (self.t["schema_version"],))
            row = c.fetchone()
            if row is None or row[0] is None:
                return 0
            c.execute(f"SELECT coalesce(max(version), 0) FROM {self.t['schema_version']}")
            row = c.fetchone()
            return int(row[0]) if row else 0

        return self._run(step)

    def drop(self) -> None:
        """Drop the whole schema (every case, the outbox…) — for tests and tear-downs."""
        self._run(lambda conn: conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))

    # -- transactions ---------------------------------------------------------------------------
    def atomic(self, fn: Callable[[Tx], T]) -> T:
        open_tx: _PgTx | None = getattr(self._local, "tx", None)
        if open_tx is not None:  # nested: part of the open unit of work
            return fn(open_tx)

        def unit(conn: psycopg.Connection[Any]) -> T:
            tx = _PgTx(self, conn)
            self._local.tx = tx
            try:
                result = fn(tx)
                tx.flush(final=True)
                return result
            finally:
                self._local.tx = None

        return self._run(unit)

    def _write(self, sql: str, params: Sequence[Any]) -> int:
        def run(conn: psycopg.Connection[Any]) -> int:
            cur = conn.execute(sql, params)
            return cur.rowcount

        return self._run(run)

    # -- outbox claims --------------------------------------------------------------------------
    _PH = "%s"
    _COLLATE = ' COLLATE "C"'

    def _tbl(self, name: str) -> str:
        return self.t[name]

    def release_claims(self) -> int:
        return self._write(
            f"UPDATE {self.t['outbox']} SET claimed_until = NULL, claimed_by = NULL "
            "WHERE status = 'pending' AND claimed_until IS NOT NULL",
            (),
        )

    # -- waiting --------------------------------------------------------------------------------
    def wait_for_work(self, timeout: float) -> bool:
        """Block until a commit queues outbox rows or moves a wake-up (``NOTIFY``), or ``timeout``
        seconds pass; ``True`` if notified. Without a listening connection it just sleeps."""
        if self.conninfo is None:
            time.sleep(timeout)
            return False
        with self._listen_lock:
            try:
                if self._listener is None or self._listener.closed or self._listener.broken:
                    self._listener = psycopg.connect(
                        self.conninfo, autocommit=True, connect_timeout=5
                    )
                    self._listener.execute(f'LISTEN "{self.channel}"')
                got = False
                for _ in self._listener.notifies(timeout=timeout, stop_after=1):
                    got = True
                return got
            except psycopg.Error:
                if self._listener is not None:
                    with contextlib.suppress(Exception):
                        self._listener.close()
                self._listener = None
                time.sleep(timeout)
                return False

    # -- reading --------------------------------------------------------------------------------
    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._run(lambda conn: conn.execute(sql, params).fetchall())

    def cases(self, playbook_id: str | None = None) -> list[CaseState]:
        c = self.t["cases"]
        if playbook_id is None:
            rows = self._read(
                f'SELECT state FROM {c} ORDER BY playbook COLLATE "C", case_key COLLATE "C"'
            )
        else:
            rows = self._read(
                f'SELECT state FROM {c} WHERE playbook = %s ORDER BY case_key COLLATE "C"',
                (playbook_id,),
            )
        return [CaseState.from_json(r[0]) for r in rows]

    def next_wakeup(self, playbooks: Sequence[tuple[str, str]] | None = None) -> float | None:
        if playbooks is None:
            v = self._read(f"SELECT min(next_wakeup) FROM {self.t['cases']}")[0][0]
        else:
            if not playbooks:
                return None
            v = self._read(
                f"SELECT min(next_wakeup) FROM {self.t['cases']} WHERE (playbook, hash) IN "
                "(SELECT * FROM unnest(%s::text[], %s::text[]))",
                ([p for p, _ in playbooks], [h for _, h in playbooks]),
            )[0][0]
        return None if v is None else float(v)

    def status(self) -> dict[str, Any]:
        """Schema version and row counts (``carepath db status``)."""
        counts = self._read(
            f"SELECT (SELECT count(*) FROM {self.t['cases']}), "
            f"(SELECT count(*) FROM {self.t['cases']} WHERE NOT ended), "
            f"(SELECT count(*) FROM {self.t['processed']}), "
            f"(SELECT count(*) FILTER (WHERE status = 'pending') FROM {self.t['outbox']}), "
            f"(SELECT count(*) FILTER (WHERE status = 'pending' AND claimed_by IS NOT NULL) FROM {self.t['outbox']}), "
            f"(SELECT count(*) FILTER (WHERE status = 'dead') FROM {self.t['outbox']}), "
            f"(SELECT count(*) FROM {self.t['rejected']})"
        )[0]
        return {
            "cases": counts[0],
            "open": counts[1],
            "processed": counts[2],
            "pending": counts[3],
            "claimed": counts[4],
            "dead": counts[5],
            "rejected": counts[6],
        }

    def close(self) -> None:
        with self._listen_lock:
            if self._listener is not None:
                with contextlib.suppress(Exception):
                    self._listener.close()
                self._listener = None
        if self._own_pool and self._pool is not None:
            with contextlib.suppress(Exception):
                self._pool.close(timeout=5.0)
            self._pool = None

    @classmethod
    def from_url(cls, url: str, **kw: Any) -> PostgresStore:
        """Open ``postgresql://…`` / ``postgres://…``; URL options ``schema``, ``migrate``,
        ``pool_min``, ``pool_max``, ``wait`` (seconds), ``state_cache``; the rest go to libpq."""
        conninfo, q = parse_postgres_url(url)
        opts: dict[str, Any] = dict(kw)
        if "schema" in q:
            opts.setdefault("schema", q["schema"])
        if "migrate" in q:
            opts.setdefault("migrate", _truthy(q["migrate"]))
        if "create" in q:
            opts.setdefault("create", _truthy(q["create"]))
        for k in ("pool_min", "pool_max", "state_cache"):
            if k in q:
                opts.setdefault(k, int(q[k]))
        if "wait" in q:
            opts.setdefault("wait", float(q["wait"]))
        return cls(conninfo, url=url, **opts)
