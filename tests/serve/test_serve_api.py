"""``carepath serve``'s endpoints (SPEC §9), each status code and limit, against one real server
process on loopback driven by a real HTTP client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from serving import TICKETS, WAIT, Served, ago, event, start, until

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("serve")
    (tmp / "tickets.yaml").write_text(TICKETS, encoding="utf-8")
    s = start(tmp, "tickets.yaml", "--store", f"sqlite:///{tmp / 'cases.db'}")
    yield s
    assert s.stop() == 0


@pytest.fixture
def http(server: Served) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def test_one_event_or_an_array_each_answered_in_order(http: httpx.Client) -> None:
    t = ago(minutes=5)
    r = http.post("/events", json=event("a1", "ticket.opened", "A-1", t))
    assert r.status_code == 200
    [res] = r.json()
    assert res["id"] == "a1" and res["status"] == "applied" and "reason" not in res
    assert [(c["playbook"], c["case"], c["stage"]) for c in res["cases"]] == [
        ("tickets", "A-1", "open")
    ]
    assert res["cases"][0]["clocks"]["reply"]["status"] == "running"
    batch = [
        event("a1", "ticket.opened", "A-1", t),  # known id: duplicate
        event("a2", "note.added", "A-1", t),
        event("a3", "note.added", "A-404", t),  # no such case
        event("a4", "coffee.made", "A-1", t),  # no playbook mentions it
        {"id": "a5", "type": "note.added"},  # no `at`
        7,
        "text",
    ]
    r = http.post("/events", json=batch)
    assert r.status_code == 200
    got = [(x["id"], x["status"], x.get("reason")) for x in r.json()]
    assert got == [
        ("a1", "duplicate", None),
        ("a2", "applied", None),
        ("a3", "rejected", "unknown_case"),
        ("a4", "ignored", None),
        ("a5", "rejected", "invalid"),
        (None, "rejected", "invalid"),
        (None, "rejected", "invalid"),
    ]
    assert "missing field `at`" in r.json()[4]["message"]
    # a JSON string in the body is a JSON value that is not an object, as 7 is (not a raw line)
    assert [x["message"] for x in r.json()[5:]] == [
        "an event is a JSON object, got int",
        "an event is a JSON object, got str",
    ]
    assert http.post("/events", json=[]).json() == []


def test_a_body_that_is_not_json_is_400(http: httpx.Client) -> None:
    for body in (b"nope", b"", b"  ", b'{"id": 1', b"\xff\xfe", b"[NaN]", b'{"a": 1}{"b": 2}'):
        r = http.post("/events", content=body)
        assert r.status_code == 400, body
        assert list(r.json()) == ["detail"] and "\n" not in r.json()["detail"]


def test_a_body_over_16_mib_is_413_before_or_while_it_is_read(http: httpx.Client) -> None:
    big = b"[" + b" " * (16 * MiB) + b"]"
    r = http.post("/events", content=big)  # Content-Length says it all
    assert r.status_code == 413 and "16 MiB" in r.json()["detail"]

    def chunks() -> Iterator[bytes]:  # chunked: no length known ahead
        yield b"["
        for _ in range(17):
            yield b" " * MiB
        yield b"]"

    r = http.post("/events", content=chunks())
    assert r.status_code == 413
    just = b"[" + b" " * (16 * MiB - 2) + b"]"  # exactly 16 MiB is allowed
    r = http.post("/events", content=just)
    assert r.status_code == 200 and r.json() == []


def test_more_than_1000_events_is_413(http: httpx.Client) -> None:
    t = ago(minutes=5)
    many = [event(f"m{i}", "coffee.made", "M", t) for i in range(1001)]
    r = http.post("/events", json=many)
    assert r.status_code == 413 and "1,000" in r.json()["detail"]
    r = http.post("/events", json=many[:1000])
    assert r.status_code == 200 and {x["status"] for x in r.json()} == {"ignored"}


def test_one_case_with_its_outbox_or_404(http: httpx.Client) -> None:
    http.post("/events", json=event("c1", "ticket.opened", "C/1 é", ago(minutes=1)))
    r = http.get("/cases/tickets/C%2F1%20%C3%A9")
    assert r.status_code == 200
    doc = r.json()
    assert doc["state"]["case"] == "C/1 é" and doc["state"]["stage"] == "open"
    assert [(i["id"], i["type"], i["status"]) for i in doc["outbox"]] == [
        ("C/1 é:1", "send", "pending")
    ]
    assert doc["outbox"][0]["action"]["params"]["template"] == "hello"
    for path in ("/cases/tickets/nobody", "/cases/nothing/C%2F1%20%C3%A9"):
        r = http.get(path)
        assert r.status_code == 404 and "no case" in r.json()["detail"]


def test_cases_are_listed_by_key_in_pages_with_filters(http: httpx.Client) -> None:
    t = ago(minutes=1)
    keys = [f"L-{i:02d}" for i in range(7)]
    http.post("/events", json=[event(f"l{k}", "ticket.opened", k, t) for k in keys])
    http.post("/events", json=event("lclose", "ticket.closed", "L-03", t))
    mine = {"playbook": "tickets", "after": "L-", "stage": "open"}
    seen: list[str] = []
    after = "L-"
    while True:
        page = http.get("/cases", params={**mine, "after": after, "limit": 3}).json()
        assert len(page) <= 3
        if not page or not page[0]["case"].startswith("L-"):
            break
        seen += [c["case"] for c in page if c["case"].startswith("L-")]
        after = page[-1]["case"]
    assert seen == [k for k in keys if k != "L-03"]
    done = http.get("/cases", params={"stage": "done", "after": "L-"}).json()
    assert [c["case"] for c in done] == ["L-03"]
    summary = done[0]
    assert set(summary) == {"playbook", "case", "stage", "tier", "next_wakeup", "clocks"}
    assert http.get("/cases", params={"playbook": "other"}).json() == []
    for bad in ({"limit": 0}, {"limit": 1001}, {"limit": "x"}, {"breached": "maybe"}):
        r = http.get("/cases", params=bad)
        assert r.status_code == 422 and isinstance(r.json()["detail"], str), bad


def test_an_empty_cases_query_parameter_is_no_filter(http: httpx.Client) -> None:
    # SPEC §9 writes `GET /cases?playbook=&stage=&breached=&limit=&after=`: a parameter given
    # empty (as httpx sends one whose value is None) filters nothing and keeps its default
    t = ago(minutes=1)
    http.post("/events", json=[event(f"q{k}", "ticket.opened", k, t) for k in ("Q-1", "Q-2")])
    every = http.get("/cases", params={"after": "Q-", "limit": 1000}).json()
    assert [c["case"] for c in every][:2] == ["Q-1", "Q-2"]
    r = http.get("/cases?playbook=&stage=&breached=&limit=&after=")
    assert r.status_code == 200
    assert r.json() == http.get("/cases").json()
    blank = {"playbook": None, "stage": None, "breached": None, "limit": 1000, "after": "Q-"}
    r = http.get("/cases", params=blank)
    assert r.status_code == 200 and r.json() == every


def test_serve_fires_wake_ups_itself_on_the_real_clock(http: httpx.Client) -> None:
    # opened two hours ago: its 30-minute reply clock breached, and its 1-hour notify is due
    http.post("/events", json=event("w1", "ticket.opened", "W-1", ago(hours=2)))

    def breached() -> list[str]:
        page = http.get("/cases", params={"breached": "true", "after": "W-", "limit": 1}).json()
        return [c["case"] for c in page if c["case"] == "W-1"]

    until(breached, "the breach of W-1 to fire")
    items = http.get("/cases/tickets/W-1").json()["outbox"]
    assert sorted(i["type"] for i in items) == ["notify", "send"]
    page = http.get("/cases", params={"breached": "false", "after": "W-0", "limit": 5}).json()
    assert "W-1" not in [c["case"] for c in page]


def test_claim_ack_nack(http: httpx.Client) -> None:
    http.post("/events", json=event("o1", "ticket.opened", "O-1", ago(minutes=1)))
    claimed = http.post("/outbox/claim", json={"limit": 1000, "types": ["send"]}).json()
    mine = [i for i in claimed if i["case"] == "O-1"]
    assert [(i["id"], i["type"], i["attempts"]) for i in mine] == [("O-1:1", "send", 1)]
    assert set(mine[0]["action"]) == {"id", "playbook", "case", "type", "params", "at", "source"}
    for i in claimed:  # give back what other tests left pending
        if i["case"] != "O-1":
            assert http.post(f"/outbox/{i['id']}/nack", json={"retry_in_s": 0}).json() == {
                "ok": True
            }
    assert http.post("/outbox/O-1:1/ack").json() == {"ok": True}
    assert http.post("/outbox/O-1:1/ack").json() == {"ok": False}  # not under a claim any more
    assert http.post("/outbox/nothing:9/ack").json() == {"ok": False}
    state = http.get("/cases/tickets/O-1").json()
    assert [i["status"] for i in state["outbox"] if i["id"] == "O-1:1"] == ["delivered"]

    http.post("/events", json=event("o2", "note.added", "O-1", ago(seconds=30)))
    [item] = [
        i for i in http.post("/outbox/claim", json={"limit": 1000}).json() if i["case"] == "O-1"
    ]
    r = http.post(f"/outbox/{item['id']}/nack", json={"retry_in_s": 0, "reason": "busy"})
    assert r.json() == {"ok": True}
    again = [
        i for i in http.post("/outbox/claim", json={"limit": 1000}).json() if i["case"] == "O-1"
    ]
    assert [(i["id"], i["attempts"]) for i in again] == [(item["id"], 2)]
    r = http.post(f"/outbox/{item['id']}/nack", json={"permanent": True, "reason": "no such user"})
    assert r.json() == {"ok": True}
    [dead] = [i for i in http.get("/cases/tickets/O-1").json()["outbox"] if i["id"] == item["id"]]
    assert dead["status"] == "dead" and dead["last_error"] == "no such user"
    assert http.post(f"/outbox/{item['id']}/nack").json() == {"ok": False}


def test_claim_and_nack_bodies_are_checked(http: httpx.Client) -> None:
    assert http.post("/outbox/claim").status_code == 200  # every field has a default
    for body in ({"limit": 0}, {"lease_s": 61}, {"lease_s": 0}, {"types": "send"}, {"x": 1}):
        r = http.post("/outbox/claim", json=body)
        assert r.status_code == 422 and isinstance(r.json()["detail"], str), body
    r = http.post("/outbox/claim", content=b"{", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    r = http.post("/outbox/a:1/nack", json={"retry_in_s": -1})
    assert r.status_code == 422


def test_claim_and_nack_bodies_without_a_content_type_are_read_as_json(
    http: httpx.Client,
) -> None:
    # SPEC §9: the bodies are JSON objects; as POST /events, claim and nack read a body sent
    # without a Content-Type header (`requests.post(url, data=json.dumps(...))`) as JSON
    r = http.post("/outbox/claim", content=b'{"limit": 1, "types": ["no.such.type"]}')
    assert r.status_code == 200 and r.json() == []
    r = http.post("/outbox/claim", content=b'{"limit": 0}')
    assert r.status_code == 422 and "limit" in r.json()["detail"]
    r = http.post("/outbox/nobody:1/nack", content=b'{"retry_in_s": 5, "reason": "busy"}')
    assert r.status_code == 200 and r.json() == {"ok": False}


def test_healthz_and_metrics(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    http.post("/events", json=event("x1", "ticket.opened", "X-1", ago(minutes=1)))
    http.post("/events", json=event("x1", "ticket.opened", "X-1", ago(minutes=1)))
    r = http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    lines = dict(
        line.rsplit(" ", 1) for line in r.text.splitlines() if line and not line.startswith("#")
    )
    for name in (
        'carepath_events_total{status="applied"}',
        'carepath_events_total{status="duplicate"}',
        'carepath_events_total{status="rejected"}',
        'carepath_steps_total{cause="event"}',
        'carepath_steps_total{cause="wakeup"}',
        'carepath_outbox_items{status="pending"}',
        'carepath_outbox_items{status="dead"}',
        "carepath_outbox_oldest_pending_age_seconds",
        "carepath_wakeup_lag_seconds",
        "carepath_deliveries_total",
        'carepath_delivery_failures_total{final="true"}',
    ):
        assert name in lines, name
    assert float(lines['carepath_events_total{status="applied"}']) >= 1
    assert float(lines['carepath_events_total{status="duplicate"}']) >= 1
    assert float(lines['carepath_outbox_items{status="pending"}']) >= 1
    assert float(lines["carepath_outbox_oldest_pending_age_seconds"]) > 0


def test_the_openapi_document_names_every_endpoint(http: httpx.Client) -> None:
    doc = http.get("/openapi.json").json()
    assert set(doc["paths"]) == {
        "/events",
        "/cases/{playbook}/{case}",
        "/cases",
        "/outbox/claim",
        "/outbox/{item_id}/ack",
        "/outbox/{item_id}/nack",
        "/healthz",
        "/metrics",
    }
    schemas = doc["components"]["schemas"]
    assert {"EventIn", "EventResult", "CaseSummary", "CaseDetail", "OutboxItemOut"} <= set(schemas)
    assert "securitySchemes" not in doc["components"]  # no token: no authentication
    json.dumps(doc)


def test_unknown_paths_and_methods(http: httpx.Client) -> None:
    assert http.get("/nothing").status_code == 404
    assert http.get("/events").status_code == 405
    assert http.delete("/cases").status_code == 405


@pytest.mark.postgres
def test_the_same_service_on_postgresql(tmp_path: Path) -> None:
    from conftest import postgres_schema_url

    url = postgres_schema_url()
    (tmp_path / "tickets.yaml").write_text(TICKETS, encoding="utf-8")
    s = start(tmp_path, "tickets.yaml", "--store", url)
    try:
        with s.client() as http:
            t = ago(minutes=1)
            r = http.post("/events", json=[event("p1", "ticket.opened", "P-1", t)] * 2)
            assert [x["status"] for x in r.json()] == ["applied", "duplicate"]
            assert http.get("/cases/tickets/P-1").json()["state"]["stage"] == "open"
            assert [c["case"] for c in http.get("/cases").json()] == ["P-1"]
            [item] = http.post("/outbox/claim", json={"types": ["send"]}).json()
            assert http.post(f"/outbox/{item['id']}/ack").json() == {"ok": True}
            assert http.get("/healthz").status_code == 200
    finally:
        assert s.stop() == 0


def test_posts_at_once_share_commits_and_each_event_is_applied_once(server: Served) -> None:
    import threading

    t = ago(minutes=1)
    singles = [event(f"gc{i}", "ticket.opened", f"GC-{i:02d}", t) for i in range(30)]
    same = event("gc-same", "ticket.opened", "GC-same", t)
    posts = [[e] for e in singles] + [[same]] * 10 + [[*singles[:5], same]]
    start = threading.Barrier(len(posts))
    answers: dict[int, list[dict[str, object]]] = {}

    def post(i: int) -> None:
        with server.client() as http:
            start.wait(WAIT)
            answers[i] = http.post("/events", json=posts[i]).json()

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(posts))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(WAIT)
    assert len(answers) == len(posts)
    for i, body in enumerate(posts):  # each post answered for its own events, in order
        assert [r["id"] for r in answers[i]] == [e["id"] for e in body]
    applied: dict[object, int] = {}
    for rs in answers.values():
        for r in rs:
            assert r["status"] in ("applied", "duplicate")
            applied[r["id"]] = applied.get(r["id"], 0) + (r["status"] == "applied")
    assert applied == {e["id"]: 1 for e in [*singles, same]}  # exactly once, whatever the grouping
