"""The answer of ``POST /events`` without a model per case: :meth:`Service._submit` writes each
result as an ``EventResult`` document (case summaries read from the native core's numbers while a
state's fields are not built), and :func:`results_json` writes them with orjson. Both must give
the very bytes the pydantic models give (``/openapi.json`` describes the models)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

import carepath
from carepath.cli.cases import summary
from carepath.runtime import Runtime, open_store
from carepath.runtime.clock import ManualClock
from carepath.serve.models import EventResult, results_json
from carepath.serve.service import Service

ROOT = Path(__file__).resolve().parents[2]
RETAIL = ROOT / "examples" / "vn-retail-support.yaml"
LOG = [
    json.loads(x)
    for x in (ROOT / "examples/events/vn-retail-support.jsonl").read_text("utf-8").splitlines()
    if x.strip()
]
T0 = datetime.fromisoformat(LOG[0]["at"])
MODELS = TypeAdapter(list[EventResult])


def _service() -> Service:
    rt = Runtime([carepath.load(RETAIL)], open_store("sqlite://:memory:"), clock=ManualClock(T0))
    return Service(rt)


def _by_models(docs: list[dict[str, Any]]) -> bytes:
    return MODELS.dump_json(MODELS.validate_python(docs))


def test_the_retail_log_answers_as_the_models_do() -> None:
    svc = _service()
    try:
        evs = [*LOG, LOG[0], {"id": "x", "type": "nope"}, {"broken": True}, "text", 7]
        evs.append({"id": "ghost", "type": "agent.replied", "at": LOG[0]["at"], "case": "NO"})
        docs, _ = svc._submit(evs)
        assert {d["status"] for d in docs} >= {"applied", "duplicate", "rejected"}
        assert any("message" in d for d in docs) and any(d["cases"] for d in docs)
        assert results_json(docs) == _by_models(docs)
    finally:
        svc.writer.close()


def test_native_summaries_equal_the_built_fields() -> None:
    rt = Runtime([carepath.load(RETAIL)], open_store("sqlite://:memory:"), clock=ManualClock(T0))
    fast = 0
    for r in rt.submit_many(LOG, batch=7):
        for s in r.cases:
            parts = getattr(s, "summary_parts", None)
            before = summary(s)
            if parts is not None and parts() is not None:
                fast += 1
            _ = s.clocks  # the fields built: the summary from them
            assert getattr(s, "summary_parts", lambda: None)() is None
            assert before == summary(s)
    if any(e.backend == "native" for e in rt.engines.values()):
        assert fast > 0  # the native path was taken


TEXT = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12) | st.text(max_size=6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ids=st.lists(st.tuples(TEXT, TEXT), min_size=1, max_size=5))
def test_property_any_ids_and_keys_answer_as_the_models_do(ids: list[tuple[str, str]]) -> None:
    svc = _service()
    try:
        evs = [
            {
                "id": i,
                "type": "case.opened",
                "at": (T0 + timedelta(seconds=n)).isoformat(),
                "case": k,
                "data": {"channel": "email", "priority": "normal"},
            }
            for n, (i, k) in enumerate(ids)
        ]
        docs, _ = svc._submit(evs)
        try:
            expected = _by_models(docs)
        except Exception:  # what the models cannot write is not ours to write either
            with pytest.raises(Exception):  # noqa: B017
                results_json(docs)
            return
        assert results_json(docs) == expected
    finally:
        svc.writer.close()


def test_a_post_answers_through_the_service_loop() -> None:
    svc = _service()

    async def go() -> list[dict[str, Any]]:
        return await svc.submit(LOG[:3])

    try:
        docs = asyncio.run(go())
        assert [d["status"] for d in docs] == ["applied"] * 3
        assert json.loads(results_json(docs))[0]["cases"][0]["playbook"] == "vn-retail-support"
    finally:
        svc.writer.close()
