"""Shared fixtures. PostgreSQL: one throw-away database per test session, one schema per store.

The PostgreSQL tests need a server (``CAREPATH_TEST_POSTGRES``, default
``postgresql://postgres@127.0.0.1:5432/postgres``). Without one they skip — unless
``CAREPATH_REQUIRE_POSTGRES=1`` (set by ``.ci/run``), where they fail.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
from hypothesis import settings

# One Hypothesis profile for the whole suite: no per-example deadline (CI machines are shared and
# time is not what these properties test). Modules that want more examples say so themselves.
settings.register_profile("carepath", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "carepath"))

_PG: dict[str, Any] = {}


def postgres_url() -> str:
    """The URL of this session's own database (created on first use, dropped at the end)."""
    if "url" in _PG:
        return str(_PG["url"])
    if "error" in _PG:
        _unavailable(str(_PG["error"]))
    base = os.environ.get("CAREPATH_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"carepath_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        import psycopg

        with psycopg.connect(base, autocommit=True, connect_timeout=3) as c:
            c.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # no driver, no server, no rights
        _PG["error"] = f"PostgreSQL not reachable at {base}: {exc}".strip()
        _unavailable(_PG["error"])
    _PG.update(base=base, name=name, url=base.rsplit("/", 1)[0] + f"/{name}")
    return str(_PG["url"])


def postgres_schema_url(**opts: str) -> str:
    """A URL of a fresh schema in the session database."""
    q = "&".join(f"{k}={v}" for k, v in {"schema": f"s_{uuid.uuid4().hex[:10]}", **opts}.items())
    return f"{postgres_url()}?{q}"


def _unavailable(reason: str) -> None:
    if os.environ.get("CAREPATH_REQUIRE_POSTGRES") == "1":
        pytest.fail(
            f"{reason} (CAREPATH_REQUIRE_POSTGRES=1: the PostgreSQL tests must run)", pytrace=False
        )
    pytest.skip(f"{reason}; set CAREPATH_TEST_POSTGRES to a server to run the PostgreSQL tests")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if "name" not in _PG:
        return
    import psycopg

    try:
        with psycopg.connect(_PG["base"], autocommit=True, connect_timeout=3) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{_PG["name"]}" WITH (FORCE)')
    except Exception:  # pragma: no cover - best effort
        pass
