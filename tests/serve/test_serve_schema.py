"""Generated requests against a real ``carepath serve`` from its own ``/openapi.json``
(schemathesis, on Hypothesis): no request makes a 5xx, valid or not, and every answer to a valid
request has the shape the document gives it. A bounded number of examples per operation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from serving import TICKETS, Served, ago, event, start

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402 - after the skip
from schemathesis.checks import not_a_server_error, response_schema_conformance  # noqa: E402

TOKEN = "schema-token"
EXAMPLES = 100  # per operation and mode: the whole test stays well under a minute
#: Valid requests must be answered as documented; invalid ones need only not break the server.
CHECKS = {
    "positive": [not_a_server_error, response_schema_conformance],
    "negative": [not_a_server_error],
}
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("schema")
    (tmp / "tickets.yaml").write_text(TICKETS, encoding="utf-8")
    (tmp / "token").write_text(TOKEN, encoding="utf-8")
    s = start(
        tmp, "tickets.yaml", "--store", f"sqlite:///{tmp / 'cases.db'}", "--token-file", "token"
    )
    with s.client(TOKEN) as http:  # a few cases and outbox items for the generated requests to meet
        t = ago(minutes=5)
        http.post("/events", json=[event(f"s{i}", "ticket.opened", f"T-{i}", t) for i in range(3)])
    yield s
    assert s.stop() == 0
    assert "Traceback" not in s.stderr()


@pytest.fixture(scope="module")
def api(served: Served) -> Any:
    with served.client(TOKEN) as http:
        doc = http.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(doc)
    schema.config.update(base_url=served.url)
    return schema


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_no_generated_request_makes_a_server_error(api: Any, mode: str) -> None:
    """Valid requests (``positive``) and requests that break the document (``negative``)."""
    from hypothesis import given
    from hypothesis.errors import Unsatisfiable

    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) == 8
    nothing_to_break: set[str] = set()
    for operation in operations:

        @given(case=operation.as_strategy(schemathesis.GenerationMode(mode)))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            case.call_and_validate(headers=HEADERS, checks=CHECKS[mode])

        try:
            check()
        except Unsatisfiable:  # no parameter nor body: no invalid request to make
            assert mode == "negative"
            nothing_to_break.add(operation.path)
    assert nothing_to_break <= {"/healthz", "/metrics"}
