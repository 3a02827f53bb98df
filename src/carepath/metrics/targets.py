"""Goal targets (``">= 90%"``, ``"<= 2h"``, ``"> 40"``) read in their metric's unit: shares as
fractions, NPS in points, CES as a score, times in seconds; custom metrics as numbers (a ``%``
divides by 100)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..durations import DurationError, parse_duration

__all__ = ["BUILTIN", "KIND", "Target", "TargetError", "parse_target", "parse_value"]

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

_TARGET = re.compile(r"\s*(>=|<=|>|<|==)\s*(.+?)\s*$")
_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")


class TargetError(ValueError):
    """A target or value that cannot be read for its metric."""


@dataclass(frozen=True)
class Target:
    """``op`` and ``value`` (metric unit); ``text`` as written."""

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
        if self.op == "<":
            return x < self.value - eps
        return abs(x - self.value) <= eps

    @property
    def higher_is_better(self) -> bool:
        """``>=`` and ``>`` targets."""
        return self.op in (">=", ">")


def parse_value(raw: Any, kind: str) -> float:
    """A value in the metric's unit (``90%`` → 0.9 for a share, ``2h`` → 7200.0 for a time)."""
    if isinstance(raw, bool):
        raise TargetError("expected a number")
    if isinstance(raw, int | float):
        v = float(raw)
        if kind == "share" and v > 1:
            v /= 100
        return v
    text = str(raw).strip()
    if kind == "time":
        try:
            d = parse_duration(text)
        except DurationError as exc:
            raise TargetError(str(exc)) from None
        return d.timedelta.total_seconds()
    pct = text.endswith("%")
    num = text[:-1].strip() if pct else text
    if not _NUMBER.fullmatch(num):
        raise TargetError(f"cannot read {text!r} as a number")
    v = float(num)
    if pct and kind in ("share", "custom"):
        v /= 100
    return v


def parse_target(raw: Any, kind: str) -> Target:
    """``">= 90%"`` → ``Target(">=", 0.9)``; a bare value means ``>=``."""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return Target(">=", parse_value(raw, kind), str(raw))
    text = str(raw)
    m = _TARGET.fullmatch(text)
    if not m:
        return Target(">=", parse_value(text, kind), text)
    return Target(m.group(1), parse_value(m.group(2), kind), text)
