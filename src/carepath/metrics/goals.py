"""SMART goals (SPEC §6): value against target over a window, samples, trend, time left.

A window is inclusive local dates: fixed (``{from, to}``) or ``rolling Nd``/``Nw`` — the N days
ending on the local date of the last event. The trend is the value over the window of the same
length just before it. A goal with fewer than ``min_samples`` values (default 30) is neither
attained nor missed: ``attained: null, reason: too_few_samples``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from carepath.metrics.facts import Measure, MetricError, Metrics
from carepath.metrics.targets import Target, TargetError, parse_target

__all__ = ["DEFAULT_MIN_SAMPLES", "GoalResult", "evaluate_goal", "evaluate_goals", "resolve_window"]

DEFAULT_MIN_SAMPLES = 30
_ROLLING = re.compile(r"\s*rolling\s+(\d+)\s*([dw])\s*$")


@dataclass(frozen=True)
class GoalResult:
    """One goal's evaluation; :meth:`to_dict` is the JSON shape of ``report["goals"][i]``."""

    id: str
    metric: str
    title: str | None
    target: str
    value: float | None
    attained: bool | None
    samples: int
    window: tuple[date, date] | None
    trend: float | None
    reason: str | None
    stat: str | None = None
    owner: str | None = None
    baseline: Any = None
    min_samples: int = DEFAULT_MIN_SAMPLES
    days_left: int | None = None
    target_value: float | None = None
    segment: str | None = None
    channel: str | None = None
    tier: str | None = None
    sla: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "metric": self.metric,
            "value": self.value,
            "target": self.target,
            "attained": self.attained,
            "samples": self.samples,
            "window": None
            if self.window is None
            else {"from": self.window[0].isoformat(), "to": self.window[1].isoformat()},
            "trend": self.trend,
            "reason": self.reason,
            "title": self.title,
            "stat": self.stat,
            "sla": self.sla,
            "segment": self.segment,
            "channel": self.channel,
            "tier": self.tier,
            "owner": self.owner,
            "baseline": self.baseline,
            "target_value": self.target_value,
            "min_samples": self.min_samples,
            "days_left": self.days_left,
        }


def resolve_window(window: Any, last_day: date | None) -> tuple[date, date] | None:
    """A goal's window as inclusive local dates (``None`` for a rolling window without events)."""
    if window is None:
        return None
    frm = getattr(window, "from_", None)
    if frm is not None:
        return frm, window.to
    text = getattr(window, "rolling", window)
    m = _ROLLING.fullmatch(str(text))
    if not m:
        raise MetricError(f"cannot read window {text!r}; write `rolling 30d` or {{from: …, to: …}}")
    n = int(m.group(1)) * (7 if m.group(2) == "w" else 1)
    if last_day is None or n <= 0:
        return None
    return last_day - timedelta(days=n - 1), last_day


def evaluate_goal(metrics: Metrics, goal: Any, last_day: date | None) -> GoalResult:
    """Evaluate one :class:`~carepath.model.goals.GoalSpec` against ``metrics``."""
    kind = metrics.kind(goal.metric)
    try:
        target: Target | None = parse_target(
            goal.target, kind if kind in ("share", "nps", "ces", "time") else "custom"
        )
    except TargetError:
        target = None
    min_samples = goal.min_samples or DEFAULT_MIN_SAMPLES
    where = {"segment": goal.segment, "channel": goal.channel, "tier": goal.tier}
    win = resolve_window(goal.window, last_day)
    if win is None and goal.window is not None:
        m = Measure(None, 0)
    else:
        first, last = win if win is not None else (None, None)
        m = metrics.measure(goal.metric, first, last, where, stat=goal.stat, sla=goal.sla)
    trend = None
    if win is not None:
        length = (win[1] - win[0]).days + 1
        prev = metrics.measure(
            goal.metric,
            win[0] - timedelta(days=length),
            win[0] - timedelta(days=1),
            where,
            stat=goal.stat,
            sla=goal.sla,
        )
        if prev.samples >= min_samples:
            trend = prev.value
    attained: bool | None
    reason: str | None = None
    if m.samples < min_samples or m.value is None:
        attained, reason = None, "too_few_samples"
    elif target is None:
        attained, reason = None, "invalid_target"
    else:
        attained = target.met_by(m.value)
    days_left = None
    if win is not None and last_day is not None:
        days_left = max(0, (win[1] - last_day).days)
    stat = goal.stat or ("median" if kind == "time" and goal.metric != "aht" else None)
    return GoalResult(
        id=goal.id,
        metric=goal.metric,
        title=goal.title,
        target=str(goal.target),
        value=m.value,
        attained=attained,
        samples=m.samples,
        window=win,
        trend=trend,
        reason=reason,
        stat=stat,
        owner=goal.owner,
        baseline=goal.baseline,
        min_samples=min_samples,
        days_left=days_left,
        target_value=None if target is None else target.value,
        segment=goal.segment,
        channel=goal.channel,
        tier=goal.tier,
        sla=goal.sla,
    )


def evaluate_goals(metrics: Metrics, last_day: date | None) -> list[GoalResult]:
    """Every goal of the playbook, in declaration order."""
    return [evaluate_goal(metrics, g, last_day) for g in metrics.playbook.spec.goals]
