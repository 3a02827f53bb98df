"""Metrics, SMART goals, load and staffing over a replayed event log (SPEC §6).

>>> from carepath import load
>>> from carepath.drivers.replay import read_events, replay
>>> from carepath.metrics import Metrics, evaluate_goals
>>> pb = load("examples/vn-retail-support.yaml")                      # doctest: +SKIP
>>> m = Metrics(replay(pb, read_events("examples/events/vn-retail-support.jsonl")))  # doctest: +SKIP
>>> m.measure("csat").value                                            # doctest: +SKIP

See ``docs/metrics.md`` for the definitions, sample rules and the report's JSON shape.
"""

from __future__ import annotations

from carepath.metrics.facts import (
    CONVENTIONAL_EVENTS,
    GROUPS,
    Collector,
    Measure,
    MetricError,
    Metrics,
    Series,
)
from carepath.metrics.goals import (
    DEFAULT_MIN_SAMPLES,
    GoalResult,
    evaluate_goal,
    evaluate_goals,
    resolve_window,
)
from carepath.metrics.stats import mean, median, percentile, stat, summary
from carepath.metrics.targets import BUILTIN, KIND, Target, TargetError, parse_target, parse_value

__all__ = [
    "BUILTIN",
    "CONVENTIONAL_EVENTS",
    "DEFAULT_MIN_SAMPLES",
    "GROUPS",
    "KIND",
    "Collector",
    "GoalResult",
    "Measure",
    "MetricError",
    "Metrics",
    "Series",
    "Target",
    "TargetError",
    "evaluate_goal",
    "evaluate_goals",
    "mean",
    "median",
    "parse_target",
    "parse_value",
    "percentile",
    "resolve_window",
    "stat",
    "summary",
]
