"""Built-in metrics and SMART goal targets, in one place for the linter and the metrics.

A target is an operator and a value in its metric's unit: ``">= 90%"`` (a share, 0.9),
``"<= 2h"`` (a time, 7200 business seconds), ``">= 40"`` (NPS points), ``"<= 2"`` (a CES
score). :func:`parse_target` and :func:`parse_value` raise :class:`TargetError` with a message a
designer can act on; validation (CP510) and the report read targets the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from carepath.durations import DurationError, parse_duration
from carepath.errors import TargetError

__all__ = [
    "BUILTIN",
    "KIND",
    "TIME_METRIC_CLOCK",
    "Target",
    "TargetError",
    "parse_target",
    "parse_value",
]

#: Built-in metrics (SPEC §6) → kind: ``share`` (0..1), ``nps`` (points), ``ces`` (1..7), ``time`` (s).
KIND: dict[str, str] = {
    "csat": "share",
    "nps": "nps",
    "ces": "ces",
    "first_response_time": "time",
    "resolution_time": "time",
    "sla_attainment": "share",
    "fcr": "share",
    "aht": "time",
    "reopen_rate": "share",
    "repeat_purchase_rate": "share",
    "complaint_rate": "share",
    "return_rate": "share",
}
BUILTIN = tuple(KIND)
#: The clock a time metric reads when the goal names no ``sla:``.
TIME_METRIC_CLOCK = {"first_response_time": "first_response", "resolution_time": "resolution"}

_OPERATORS = (">=", "<=", ">", "<")  # two-character operators first
_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")


@dataclass(frozen=True)
class Target:
    """``op`` and ``value`` (in the metric's unit); ``text`` as written."""

    op: str
    value: float
    text: str

    def met_by(self, x: float) -> bool:
        """Whether ``x`` meets the target (a tiny tolerance absorbs float noise at the boundary)."""
        eps = 1e-9 * max(1.0, abs(self.value))
        if self.op == ">=":
            return x >= self.value - eps
        if self.op == "<=":
            return x <= self.value + eps
        if self.op == ">":
            return x > self.value + eps
        return x < self.value - eps

    @property
    def higher_is_better(self) -> bool:
        """``>=`` and ``>`` targets."""
        return self.op in (">=", ">")


def parse_value(raw: Any, kind: str) -> float:  # noqa: C901 - one branch per metric unit and its spelling errors
    """A value in the metric's unit: ``90%`` → 0.9 for a share, ``2h`` → 7200.0 for a time.

    ``kind`` is ``share``, ``nps``, ``ces``, ``time`` or ``custom`` (a number; ``%`` divides by 100).
    """
    text = str(raw).strip()
    if isinstance(raw, bool):
        raise TargetError("expected a number")
    if kind == "time":
        if isinstance(raw, int | float) or _NUMBER.fullmatch(text):
            raise TargetError("a time needs a unit, such as 2h, 30m or 90s")
        try:
            d = parse_duration(text)
        except DurationError as exc:
            raise TargetError(str(exc)) from None
        if not d.is_exact:
            raise TargetError(
                "a time metric is measured in business seconds: use h, m or s, not d, w or bd"
            )
        return d.seconds
    pct = text.endswith("%")
    num = text[:-1].strip() if pct else text
    if not _NUMBER.fullmatch(num):
        raise TargetError(
            f"cannot read {_clip(text)!r} as a number"
            + (" (a time is not a valid value here)" if kind != "custom" else "")
        )
    v = float(num)
    if kind == "share":
        if pct:
            v /= 100
        if not 0 <= v <= 1:
            raise TargetError("a share is between 0% and 100% (or 0 and 1)")
    elif kind == "nps":
        if pct:
            raise TargetError("NPS is in points from -100 to 100, not a percentage")
        if not -100 <= v <= 100:
            raise TargetError("NPS is between -100 and 100 points")
    elif kind == "ces":
        if pct:
            raise TargetError("CES is a mean score from 1 to 7, not a percentage")
        if not 1 <= v <= 7:
            raise TargetError("CES is a mean score between 1 and 7")
    elif pct:
        v /= 100
    return v


def parse_target(raw: Any, kind: str) -> Target:
    """``">= 90%"`` → ``Target(">=", 0.9, ">= 90%")``; raises :class:`TargetError`."""
    if not isinstance(raw, str):
        raise TargetError('a target compares: write it as a string like ">= 90%" or "<= 2h"')
    # No regular expression: strip, take the operator, strip the rest (linear in the input, where
    # ``\s*(op)\s*(.+?)\s*$`` was quadratic on a long run of spaces).
    s = raw.strip()
    op = next((o for o in _OPERATORS if s.startswith(o)), None)
    value = s[len(op) :].strip() if op else ""
    if op is None or not value:
        raise TargetError(
            f"cannot read target {_clip(raw)!r}: write an operator (>=, <=, >, <) and a value"
        )
    return Target(op, parse_value(value, kind), raw)


def _clip(s: str) -> str:
    return s if len(s) <= 40 else s[:36] + "..."
