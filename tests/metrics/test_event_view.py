"""The event as a custom metric's expressions read it (``Collector._event_view``): the view built
for only the keys the rules read holds, for each of them, what the whole view holds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from carepath import loads
from carepath.events import Event
from carepath.metrics import Collector
from carepath.metrics.facts import _event_keys

PLAYBOOK = loads(
    """
carepath: 1
id: views
version: "1"
timezone: UTC
events:
  case.opened:
    channel: {type: enum, values: [chat, email, chatbot]}
    tier: {type: enum, values: [standard, vip], default: standard}
    amount: {type: int, default: 7}
fields:
  channel: {type: enum, values: [chat, email, chatbot]}
stages:
  open: {initial: true, final: true}
start: {on: case.opened, set: {channel: =event.channel}}
metrics:
  custom:
    bot_share:
      type: ratio
      event: case.opened
      when: event.channel == "chatbot" and event.amount > 3
      over: case.opened
      over_when: event.tier == "vip" or event.id == "x"
"""
)

KEYS = ["channel", "tier", "amount", "type", "at", "case", "id", "note", "missing"]
values = st.one_of(st.none(), st.integers(-5, 5), st.sampled_from(["chat", "chatbot", "vip", ""]))


@given(
    st.dictionaries(st.sampled_from(KEYS), values, max_size=6),
    st.frozensets(st.sampled_from(KEYS)),
    st.sampled_from(["case.opened", "order.placed"]),
)
def test_a_narrow_view_holds_what_the_whole_one_holds(
    data: dict[str, Any], keys: frozenset[str], et: str
) -> None:
    col = Collector(PLAYBOOK)
    e = Event(id="e1", type=et, at=datetime(2027, 1, 4, tzinfo=UTC), case="T-1", data=data)
    whole = col._event_view(e)
    assert col._event_view(e, keys) == {k: whole[k] for k in keys if k in whole}


def test_the_rules_read_only_the_keys_they_name() -> None:
    col = Collector(PLAYBOOK)
    plan = col._plan_of("case.opened")
    assert plan.event_keys == frozenset({"channel", "amount", "tier", "id"})
    assert _event_keys([None]) == frozenset()
