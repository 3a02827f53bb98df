"""The PostgreSQL store beyond the shared suites: URLs, schemas and migrations, host connections
and pools, NOTIFY, the ``db`` command and ``carepath run --follow`` as a worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from carepath.runtime import StoreError, open_store
from conftest import postgres_schema_url, postgres_url
from test_store import T0, _action

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}


def test_url_options_are_split_off() -> None:
    from carepath.runtime.postgres import parse_postgres_url

    assert parse_postgres_url("postgres://u@h:5/db?schema=a&migrate=false&sslmode=disable") == (
        "postgresql://u@h:5/db?sslmode=disable",
        {"schema": "a", "migrate": "false"},
    )
    with pytest.raises(StoreError):
        open_store(f"{postgres_url()}?schema=Bad-Name")


def test_schemas_are_separate_deployments_and_migration_is_idempotent() -> None:
    a, b = postgres_schema_url(), postgres_schema_url()
    sa, sb = open_store(a), open_store(b)
    try:
        sa.atomic(lambda tx: tx.add_outbox([_action("T-1", 1)]))
        assert len(sa.outbox()) == 1 and sb.outbox() == []
        assert sa.migrate() == 3 and sa.schema_version() == 3  # type: ignore[attr-defined]
        again = open_store(a.replace("postgresql://", "postgres://"))
        assert len(again.outbox()) == 1
        again.close()
    finally:
        for s in (sa, sb):
            s.drop()  # type: ignore[attr-defined]
            s.close()


def test_many_workers_migrate_at_once() -> None:
    url = postgres_schema_url()
    errors: list[BaseException] = []

    def start() -> None:
        try:
            open_store(url).close()
        except BaseException as exc:  # pragma: no cover - the assertion shows it
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    s = open_store(url, migrate=False)
    assert s.schema_version() == 3
    s.drop()  # type: ignore[attr-defined]
    s.close()


def test_missing_and_newer_schemas_are_refused() -> None:
    url = postgres_schema_url()
    with pytest.raises(StoreError, match="no store"):
        open_store(url, create=False)
    with pytest.raises(StoreError, match="no store"):
        open_store(url.replace("?", "?migrate=false&"))
    s = open_store(url)
    s.atomic(lambda tx: None)
    schema = url.split("schema=")[1]
    import psycopg

    with psycopg.connect(postgres_url(), autocommit=True) as c:
        c.execute(f'INSERT INTO "{schema}".schema_version (version) VALUES (99)')
    with pytest.raises(StoreError, match="newer"):
        open_store(url)
    s.drop()  # type: ignore[attr-defined]
    s.close()


def test_a_hosts_own_connection_or_pool() -> None:
    import psycopg
    from psycopg_pool import ConnectionPool

    from carepath.runtime.postgres import PostgresStore

    schema = postgres_schema_url().split("schema=")[1]
    with psycopg.connect(
        postgres_url()
    ) as conn:  # not autocommit: the store still commits its own work
        s = PostgresStore(connection=conn, schema=schema)
        s.atomic(lambda tx: tx.add_outbox([_action("T-1", 1)]))
        assert [i.id for i in s.claim_outbox(T0, 5, T0 + 30, "w")] == ["T-1:1"]
        s.close()
    with ConnectionPool(postgres_url(), min_size=1, max_size=2, open=True) as pool:
        s2 = PostgresStore(pool=pool, schema=schema)
        assert s2.outbox()[0].claimed_by == "w"
        s2.drop()
        s2.close()


def test_wait_for_work_wakes_on_notify() -> None:
    url = postgres_schema_url()
    worker, writer = open_store(url), open_store(url)
    try:
        assert worker.wait_for_work(0.05) is False  # nothing: a plain timeout (LISTEN is now on)
        threading.Timer(
            0.2, lambda: writer.atomic(lambda tx: tx.add_outbox([_action("T-1", 1)]))
        ).start()
        t = time.monotonic()
        assert worker.wait_for_work(10) is True
        assert time.monotonic() - t < 5
    finally:
        worker.drop()  # type: ignore[attr-defined]
        worker.close()
        writer.close()


def test_db_command_and_cases() -> None:
    url = postgres_schema_url()
    cli = [sys.executable, "-m", "carepath"]
    st = subprocess.run(
        [*cli, "db", "status", "--store", url], env=ENV, capture_output=True, text=True
    )
    assert st.returncode == 1 and "version 0 (missing)" in st.stdout
    mg = subprocess.run(
        [*cli, "db", "migrate", "--store", url], env=ENV, capture_output=True, text=True
    )
    assert mg.returncode == 0 and "version 3 (current)" in mg.stdout, mg.stderr
    js = subprocess.run(
        [*cli, "db", "status", "--store", url, "-f", "json"],
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert json.loads(js.stdout)["schema_version"] == 3 and json.loads(js.stdout)["pending"] == 0
    run = subprocess.run(
        [
            *cli,
            "run",
            str(ROOT / "examples" / "vn-retail-support.yaml"),
            "--store",
            url,
            "--events",
            str(ROOT / "examples" / "events" / "vn-retail-support.jsonl"),
            "-q",
        ],
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    ls = subprocess.run(
        [*cli, "cases", "--store", url, "list", "-f", "json"],
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert ls.returncode == 0 and len(json.loads(ls.stdout)) == 17
    s = open_store(url)
    s.drop()  # type: ignore[attr-defined]
    s.close()


def test_run_follow_is_a_worker_that_stops_cleanly(tmp_path: Path) -> None:
    url = postgres_schema_url()
    src = ROOT / "examples" / "events" / "vn-retail-support.jsonl"
    s = open_store(url)  # events applied by someone else; the worker only wakes cases and delivers
    from datetime import UTC, datetime, timedelta

    import carepath
    from carepath.runtime import Runtime
    from carepath.runtime.clock import ManualClock

    evs = [json.loads(x) for x in src.read_text(encoding="utf-8").splitlines() if x.strip()]
    shift = datetime.now(UTC) - timedelta(hours=2) - datetime.fromisoformat(evs[-1]["at"])
    lines = [
        json.dumps({**e, "at": (datetime.fromisoformat(e["at"]) + shift).isoformat()}) for e in evs
    ]
    Runtime(
        [carepath.load(ROOT / "examples" / "vn-retail-support.yaml")], s, clock=ManualClock()
    ).submit_many(lines, timeline=True)  # the timeline ends two hours ago
    started = time.time()

    def ready() -> list[str]:
        return [i.id for i in s.outbox(status="pending") if i.available_at <= started]

    assert ready()
    actions = tmp_path / "actions.jsonl"
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "carepath",
            "run",
            str(ROOT / "examples" / "vn-retail-support.yaml"),
            "--store",
            url,
            "--follow",
            "--poll",
            "0.2",
            "--actions",
            str(actions),
        ],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and ready():
            time.sleep(0.2)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    assert "INFO carepath.run: batch:" in err
    assert ready() == []
    assert len(actions.read_text(encoding="utf-8").splitlines()) == len(
        s.outbox(status="delivered")
    )
    s.drop()  # type: ignore[attr-defined]
    s.close()
