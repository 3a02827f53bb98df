"""Typed case fields read back from a store compare as their types (issue 15 #7).

The case is opened by one runtime, written to a SQLite file, and checked by a second runtime on
a reopened store: the state really goes through the store's JSON. Both backends (the runtime's
engine follows ``CAREPATH_ENGINE``)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

import carepath
from carepath.runtime import Runtime, open_store
from carepath.runtime.clock import ManualClock
from typed_fields import T0, TYPED_CASE, backends, checked, placed, results


@pytest.mark.parametrize("backend", backends())
def test_typed_case_fields_from_the_store_compare_as_their_types(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAREPATH_ENGINE", backend)
    url = f"sqlite:///{tmp_path / 'cases.db'}"
    playbook = carepath.loads(TYPED_CASE)
    store = open_store(url)
    opened = Runtime([playbook], store, clock=ManualClock(T0)).submit(
        placed("2026-12-31", "2026-03-02T09:00:00+07:00", "12.50")
    )
    assert opened.status == "applied"
    store.close()
    # the stored JSON keeps the text: nothing about the state's form changed
    with sqlite3.connect(tmp_path / "cases.db") as db:
        (text,) = db.execute("SELECT state FROM cases").fetchone()
    stored = json.loads(text)["data"]
    assert (stored["renewal"], stored["seen"], stored["fee"]) == (
        "2026-12-31",
        "2026-03-02T09:00:00+07:00",
        "12.50",
    )

    store = open_store(url)
    try:
        runtime = Runtime([playbook], store, clock=ManualClock(T0))
        assert runtime.engines["typed-case"].backend == backend
        r = runtime.submit(checked("2027-01-01", "2026-03-02T03:00:00+00:00", "10"))
        assert r.status == "applied"
        state = store.get("typed-case", "C-1")
        assert state is not None and state.stage == "checked"
        assert results(state.data) == {
            "renewal_before": True,
            "renewal_same": False,
            "seen_before": True,
            "amount_above": True,
            "fee_above": True,
        }
    finally:
        store.close()
