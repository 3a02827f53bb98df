"""Versioned migrations of the PostgreSQL store. ``{s}`` is the quoted schema name.

Append a new version; never edit one that shipped. Each runs in the transaction that records it
in ``schema_version``, under an advisory lock, so several workers may start (and migrate) at once.
"""

from __future__ import annotations

from carepath.runtime._alloc_rows import PG_MIGRATION
from carepath.runtime.erasure import PG_MIGRATION as PII_MIGRATION

SCHEMA_VERSION = 3

MIGRATIONS: dict[int, str] = {
    1: """
CREATE TABLE IF NOT EXISTS {s}.cases (
    playbook    text NOT NULL,
    case_key    text NOT NULL,
    version     text NOT NULL,
    hash        text NOT NULL,
    stage       text NOT NULL,
    ended       boolean NOT NULL DEFAULT false,
    next_wakeup double precision,
    state       text NOT NULL,
    updated_at  double precision NOT NULL,
    PRIMARY KEY (playbook, case_key)
);
CREATE INDEX IF NOT EXISTS cases_wakeup ON {s}.cases (next_wakeup) WHERE next_wakeup IS NOT NULL;
CREATE TABLE IF NOT EXISTS {s}.processed (
    event_id text PRIMARY KEY,
    at       double precision NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.outbox (
    seq           bigserial PRIMARY KEY,
    playbook      text NOT NULL,
    id            text NOT NULL,
    case_key      text NOT NULL,
    type          text NOT NULL,
    action        text NOT NULL,
    status        text NOT NULL DEFAULT 'pending',
    attempts      integer NOT NULL DEFAULT 0,
    available_at  double precision NOT NULL,
    claimed_until double precision,
    claimed_by    text,
    last_error    text,
    UNIQUE (playbook, id)
);
CREATE INDEX IF NOT EXISTS outbox_ready ON {s}.outbox (seq) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS outbox_case ON {s}.outbox (playbook, case_key);
CREATE TABLE IF NOT EXISTS {s}.rejected (
    seq         bigserial PRIMARY KEY,
    fingerprint text NOT NULL UNIQUE,
    event_id    text,
    case_key    text,
    cases       text NOT NULL,
    event       text NOT NULL,
    reason      text NOT NULL,
    message     text NOT NULL,
    at          double precision NOT NULL
);
""",
    2: PG_MIGRATION,
    3: PII_MIGRATION,
}
