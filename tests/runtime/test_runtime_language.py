"""SPEC §10 through the runtime, on every store: a bounced Zalo message comes back as
``action.failed`` and goes out again by SMS (fallback); an opt-out suppresses; an arithmetic
overflow is a rejected event that leaves the case as it was."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import carepath
from carepath.runtime import Runtime, Store
from carepath.runtime.clock import ManualClock
from test_store import STORE_FACTORIES

T0 = datetime(2027, 2, 1, 3, 0, tzinfo=UTC)  # 10:00 in Hanoi

CARE = """
carepath: 1
id: care
version: "1"
timezone: Asia/Ho_Chi_Minh
fields:
  channel: {type: enum, values: [zalo, sms], default: zalo}
  orders: {type: int, default: 0}
channels: {zalo: {}, sms: {}}
start: {on: purchase.made}
stages:
  bought:
    initial: true
    enter: [{send: thank_you, fallback: [sms]}]
    on:
      order: {set: {orders: =orders * 1000 + 1}}
    after: [{in: 30d, to: done}]
  done: {final: true}
"""


@pytest.fixture(params=sorted(STORE_FACTORIES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = STORE_FACTORIES[request.param](tmp_path)
    yield s
    s.close()


def _runtime(store: Store) -> Runtime:
    return Runtime([carepath.loads(CARE)], store, clock=ManualClock(T0))


def _event(n: int, type_: str, minutes: int = 0, **data: object) -> dict[str, object]:
    at = (T0 + timedelta(minutes=minutes)).isoformat()
    return {"id": f"e{n}", "type": type_, "at": at, "case": "KH-1", "data": data}


def test_a_bounced_zalo_message_goes_out_again_by_sms(store: Store) -> None:
    rt = _runtime(store)
    assert rt.submit(_event(1, "purchase.made")).status == "applied"
    [item] = rt.claim()
    assert item.action.params["channel"] == "zalo"
    assert rt.nack(item.id, permanent=True, reason="zalo: user not found")
    [again] = rt.claim()
    assert (
        again.action.params
        == {
            "template": "thank_you",
            "channel": "sms",
        }
        and again.action.source == "stages.bought.enter[0]"
    )
    assert rt.nack(again.id, permanent=True, reason="sms: invalid number")
    assert rt.claim() == []  # nothing left: the case raised send.exhausted
    assert [i.status for i in store.outbox()] == ["dead", "dead"]


def test_an_opted_out_channel_is_suppressed_and_the_fallback_takes_over(store: Store) -> None:
    rt = _runtime(store)
    rt.submit(_event(1, "purchase.made"))
    [item] = rt.claim()
    assert rt.ack(item.id)
    r = rt.submit(_event(2, "customer.opted_out", 1, channel="all"))
    assert r.status == "applied"
    st = store.get("care", "KH-1")
    assert st is not None and st.data["consent.zalo"] is False and st.data["consent.sms"] is False


def test_an_overflow_is_rejected_and_the_case_is_unchanged(store: Store) -> None:
    rt = _runtime(store)
    rt.submit(_event(1, "purchase.made"))
    for n in range(2, 8):  # 0 → 1 → 1001 → … → 1001001001001 → past 10^15
        r = rt.submit(_event(n, "order", n))
        if r.status != "applied":
            break
    before = store.get("care", "KH-1")
    assert r.status == "rejected" and r.reason == "invalid"
    assert "arithmetic overflow" in (r.message or "")
    assert before is not None and before.data["orders"] == 1001001001001
