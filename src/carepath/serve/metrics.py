"""``GET /metrics``: the service's figures in the Prometheus text format (``prometheus_client``).

=========================================== ===========================================================
metric                                      what
=========================================== ===========================================================
``carepath_events_total{status}``           events by what became of them: applied, duplicate,
                                            rejected, ignored (the runtime's own ``action.delivered``/
                                            ``action.failed`` events included)
``carepath_steps_total{cause}``             engine steps: ``event`` (a posted event applied to a
                                            case), ``wakeup`` (a case advanced by its wake-up)
``carepath_outbox_items{status}``           outbox items now: pending, delivered, dead
``carepath_outbox_oldest_pending_age_seconds`` how long the oldest due pending item has waited
``carepath_wakeup_lag_seconds``             how far the earliest wake-up is overdue (0: none is)
``carepath_deliveries_total``               hand-overs acknowledged as delivered
``carepath_delivery_failures_total{final}`` failed hand-overs: ``final="false"`` retried later,
                                            ``final="true"`` the item ended dead
=========================================== ===========================================================

Counters count since the service started.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from carepath.serve.service import Snapshot

__all__ = ["CONTENT_TYPE", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_EVENT_STATUSES = ("applied", "duplicate", "rejected", "ignored")
_OUTBOX_STATUSES = ("pending", "delivered", "dead")


class _Collector:
    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        c = self.snap.counters
        events = CounterMetricFamily(
            "carepath_events", "Events by what became of them", labels=["status"]
        )
        for status in _EVENT_STATUSES:
            events.add_metric([status], c.get(status, 0))
        yield events
        steps = CounterMetricFamily("carepath_steps", "Engine steps by cause", labels=["cause"])
        steps.add_metric(["event"], c.get("event_steps", 0))
        steps.add_metric(["wakeup"], c.get("woken", 0))
        yield steps
        items = GaugeMetricFamily(
            "carepath_outbox_items", "Outbox items by status", labels=["status"]
        )
        for status in sorted({*_OUTBOX_STATUSES, *self.snap.outbox}):
            items.add_metric([status], self.snap.outbox.get(status, 0))
        yield items
        yield GaugeMetricFamily(
            "carepath_outbox_oldest_pending_age_seconds",
            "Seconds the oldest due pending outbox item has waited",
            value=self.snap.oldest_pending_age,
        )
        yield GaugeMetricFamily(
            "carepath_wakeup_lag_seconds",
            "Seconds the earliest wake-up is overdue (0 when none is)",
            value=self.snap.wakeup_lag,
        )
        yield CounterMetricFamily(
            "carepath_deliveries",
            "Hand-overs acknowledged as delivered",
            value=c.get("delivered", 0),
        )
        failures = CounterMetricFamily(
            "carepath_delivery_failures",
            "Failed hand-overs (final: the item ended dead)",
            labels=["final"],
        )
        failures.add_metric(["false"], c.get("failed", 0))
        failures.add_metric(["true"], c.get("dead", 0))
        yield failures


def render(snap: Snapshot) -> bytes:
    """The Prometheus text of ``snap``."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(snap))
    return generate_latest(registry)
