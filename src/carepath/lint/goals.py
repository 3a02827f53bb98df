"""Checks of the ``goals`` section (SPEC §5, §6): CP509–CP511, CP513, CP514, CP608 and the goal
references CP302, CP304, CP305, CP308.

They read the validated model only, not the compiled playbook, so the compiler runs them even when
another section failed to compile: a bad ``assign`` does not hide a goal's unknown SLA (issue 15
#16).
"""

from __future__ import annotations

import difflib
import math
from datetime import date
from typing import TYPE_CHECKING, Any

from carepath.errors import MetricError
from carepath.metrics.goals import resolve_window
from carepath.metrics.targets import KIND, TIME_METRIC_CLOCK, TargetError, parse_target, parse_value

if TYPE_CHECKING:
    from carepath.loading.source import Reporter
    from carepath.model import PlaybookSpec

__all__ = ["BUILTIN_METRICS", "MAX_GAP_CLOSED", "MAX_WINDOW_DAYS", "check_goals", "metric_kind"]

Path = tuple[str | int, ...]

#: Built-in metrics (SPEC §6) → their kind: ``share`` (0..1), ``nps`` (points), ``ces`` (1..7), ``time``.
BUILTIN_METRICS = KIND
#: CP608: a target that asks to close more than this share of the gap between the baseline and
#: the best possible value in one window is implausible.
MAX_GAP_CLOSED = 0.75
#: CP513: the longest goal window, in days (a hundred years; longer ones cannot be dated).
MAX_WINDOW_DAYS = 36_525

#: The best possible value of a bounded metric in each direction (``up`` = higher is better).
_BEST = {"share": (1.0, 0.0), "nps": (100.0, -100.0), "ces": (7.0, 1.0), "time": (math.inf, 0.0)}

_EXAMPLES = {
    "share": '">= 90%"',
    "nps": '">= 40"',
    "ces": '"<= 2"',
    "time": '"<= 2h"',
    "custom": '">= 100"',
}

_WINDOW_HINT = "write `window: rolling 30d` (days) or `rolling 4w` (weeks), or {from: 2027-01-01, to: 2027-06-30}"


def metric_kind(spec: PlaybookSpec, metric: str) -> str | None:
    """``share``, ``nps``, ``ces``, ``time``, ``custom``, or ``None`` for an unknown metric."""
    if metric in BUILTIN_METRICS:
        return BUILTIN_METRICS[metric]
    if metric in spec.metrics.custom:
        return "custom"
    return None


def check_goals(spec: PlaybookSpec, rep: Reporter) -> None:
    """Every goal: CP514 duplicate id, CP509 unknown metric, CP510 target outside range or unit,
    CP511 no window, CP513 a window that cannot be evaluated, CP608 implausible target, and the
    references CP308 (sla), CP305 (segment), CP304 (channel), CP302 (tier)."""
    first_of: dict[str, int] = {}
    for i, goal in enumerate(spec.goals):
        path: Path = ("goals", i)
        if goal.id in first_of:
            rep.add(
                "CP514",
                f"goal id {goal.id!r} is used twice (first by goals[{first_of[goal.id]}])",
                (*path, "id"),
                hint="give every goal its own id: the report keys its results by id",
            )
        else:
            first_of[goal.id] = i
        kind = metric_kind(spec, goal.metric)
        if kind is None:
            options = sorted(BUILTIN_METRICS) + sorted(spec.metrics.custom)
            rep.add(
                "CP509",
                f"goal {goal.id!r}: unknown metric {goal.metric!r}",
                (*path, "metric"),
                hint=_did_you_mean(goal.metric, options)
                or "built-in metrics: " + ", ".join(sorted(BUILTIN_METRICS)),
            )
        else:
            _check_target(goal, kind, path, rep)
        if goal.window is not None:
            _check_window(goal, path, rep)
        elif (
            rep.original((*path, "window")) not in rep.source_of(path).positions.values
        ):  # else rejected by the schema
            rep.add(
                "CP511",
                f"goal {goal.id!r} has no `window`",
                path,
                hint="add `window: rolling 30d` or `window: {from: 2027-01-01, to: 2027-06-30}`",
            )
        _check_references(spec, goal, path, rep)


def _did_you_mean(word: str, options: list[str]) -> str | None:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def _check_window(goal: Any, path: Path, rep: Reporter) -> None:
    """CP513: a rolling window the report cannot read (``rolling 30x``, ``rolling 3h``), an empty
    one (``rolling 0d``), one too long to date, or fixed dates in reverse order."""
    window = goal.window
    start = getattr(window, "from_", None)
    if start is not None:
        if window.to < start:
            rep.add(
                "CP513",
                f"goal {goal.id!r}: window ends ({window.to}) before it begins ({start})",
                (*path, "window", "to"),
                hint="`from` is the first day and `to` the last, both included",
            )
        return
    text = window.rolling
    try:  # the report's own reader, at the latest date a window can end
        dates = resolve_window(window, date.max)
    except MetricError:
        rep.add(
            "CP513",
            f"goal {goal.id!r}: cannot read window {text!r}",
            (*path, "window"),
            hint=_WINDOW_HINT,
        )
        return
    except OverflowError:  # it would begin before year 1
        dates = (date.min, date.max)
    if dates is None:
        rep.add(
            "CP513",
            f"goal {goal.id!r}: window {text!r} holds no day",
            (*path, "window"),
            hint=_WINDOW_HINT,
        )
    elif (dates[1] - dates[0]).days + 1 > MAX_WINDOW_DAYS:
        rep.add(
            "CP513",
            f"goal {goal.id!r}: window {text!r} is longer than {MAX_WINDOW_DAYS} days",
            (*path, "window"),
            hint=_WINDOW_HINT,
        )


def _check_target(goal: Any, kind: str, path: Path, rep: Reporter) -> None:
    try:
        target = parse_target(goal.target, kind)
    except TargetError as exc:
        rep.add(
            "CP510",
            f"goal {goal.id!r}: {exc}",
            (*path, "target"),
            hint=f"for {goal.metric}, write a target such as {_EXAMPLES[kind]}",
        )
        return
    if goal.baseline is None or kind == "custom":
        return
    try:
        base = parse_value(goal.baseline, kind)
    except TargetError as exc:
        rep.add(
            "CP510",
            f"goal {goal.id!r}: baseline {goal.baseline!r}: {exc}",
            (*path, "baseline"),
            hint=f"write the baseline in the metric's unit, such as {_EXAMPLES[kind].split(' ')[-1]}",
        )
        return
    up = target.higher_is_better
    best = _BEST[kind][0 if up else 1]
    gap = best - base if up else base - best
    need = target.value - base if up else base - target.value
    if need <= 0 or gap <= 0 or math.isinf(gap):
        return
    share = need / gap
    if share > MAX_GAP_CLOSED:
        rep.add(
            "CP608",
            f"goal {goal.id!r}: from a baseline of {goal.baseline}, the target {goal.target} closes "
            f"{share:.0%} of the gap to the best possible value in one window (more than "
            f"{MAX_GAP_CLOSED:.0%} is implausible)",
            (*path, "target"),
            hint="set an intermediate target for this window, or check the baseline",
        )


def _check_references(spec: PlaybookSpec, goal: Any, path: Path, rep: Reporter) -> None:
    clocks = list(spec.slas)
    if goal.sla is not None and goal.sla not in spec.slas:
        rep.add(
            "CP308",
            f"goal {goal.id!r}: unknown SLA {goal.sla!r}",
            (*path, "sla"),
            hint=_did_you_mean(goal.sla, clocks),
        )
    elif (
        goal.sla is None
        and goal.metric in TIME_METRIC_CLOCK
        and TIME_METRIC_CLOCK[goal.metric] not in spec.slas
    ):
        clock = TIME_METRIC_CLOCK[goal.metric]
        rep.add(
            "CP308",
            f"goal {goal.id!r}: {goal.metric} reads the SLA {clock!r}, which this playbook "
            "does not define",
            (*path, "metric"),
            hint="name the clock it measures with `sla:`"
            + (f" (one of {', '.join(clocks)})" if clocks else ""),
        )
    refs = (
        ("segment", "CP305", list(spec.segments)),
        ("channel", "CP304", list(spec.channels)),
        ("tier", "CP302", list(spec.tiers)),
    )
    for key, code, options in refs:
        value = getattr(goal, key)
        if value is not None and value not in options:
            rep.add(
                code,
                f"goal {goal.id!r}: unknown {key} {value!r}",
                (*path, key),
                hint=_did_you_mean(value, options),
            )
