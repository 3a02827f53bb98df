"""``goals`` (SMART targets), ``metrics`` (event names, custom metrics) and ``staffing``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Discriminator, Field, Tag

from carepath.model.common import Condition, Model, Number, Positive, Shorthand, no_bool

__all__ = ["CustomMetric", "GoalSpec", "MetricsSpec", "StaffingSpec", "WindowSpec"]


class WindowSpec(Model):
    """A fixed window of inclusive local dates."""

    from_: dt.date = Field(alias="from")
    to: dt.date


def _window(v: Any) -> Any:
    return {"rolling": v} if isinstance(v, str) else v


class RollingWindow(Model):
    """``rolling 30d``: the last 30 days, ending at the last event."""

    rolling: str


def _window_kind(v: Any) -> str:
    """Pick the window's form by its keys, so a fixed window missing ``to`` is reported as that
    alone (a plain union also reports it against the rolling form: "unknown key 'from'")."""
    rolling = isinstance(v, RollingWindow) or (isinstance(v, dict) and "rolling" in v)
    return "rolling" if rolling else "fixed"


Window = Annotated[
    Annotated[WindowSpec, Tag("fixed")] | Annotated[RollingWindow, Tag("rolling")],
    Discriminator(_window_kind),
    BeforeValidator(_window),
    Shorthand({"type": "string", "pattern": r"^rolling \d+[dw]$"}),
]


class GoalSpec(Model):
    """A SMART goal: a metric, a target, a window, an owner."""

    id: str
    title: str | None = None
    metric: str
    target: Annotated[str | int | float, BeforeValidator(no_bool)] = Field(
        description='">= 90%", "<= 2h", "> 80%"'
    )
    stat: Literal["mean", "median", "p90", "p95"] | None = None
    sla: str | None = None
    segment: str | None = None
    channel: str | None = None
    tier: str | None = None
    window: Window | None = None
    owner: str | None = None
    baseline: Annotated[str | int | float | None, BeforeValidator(no_bool)] = None
    min_samples: Positive | None = None
    description: str | None = None


class CustomMetric(Model):
    """A custom metric: ``count`` of events, ``ratio`` of two counts, or ``mean`` of a value."""

    type: Literal["count", "ratio", "mean"]
    event: str = Field(description="event type counted (numerator of a ratio)")
    when: Condition | None = None
    over: str | None = Field(None, description="ratio: the denominator's event type")
    over_when: Condition | None = None
    value: str | None = Field(
        None, description="mean: an expression over the event (=event.amount)"
    )
    title: str | None = None


class MetricsSpec(Model):
    """Renames of the conventional events, and custom metrics."""

    events: dict[str, str] = Field(
        default_factory=dict, description="conventional type → your type"
    )
    custom: dict[str, CustomMetric] = Field(default_factory=dict)


class StaffingSpec(Model):
    """Erlang C staffing parameters for the report."""

    target: Number = Field(0.8, gt=0, le=1)
    max_occupancy: Number = Field(1.0, gt=0, le=1)
    shrinkage: Number = Field(0.0, ge=0, lt=1)
