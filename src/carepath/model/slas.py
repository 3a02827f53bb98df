"""``slas``: clocks with targets, thresholds and start/stop/pause/reset/cancel conditions."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from carepath.model.actions import ActionSpec
from carepath.model.common import Condition, Flag, Model, Shorthand, check_duration, one_or_many

__all__ = ["ClockTrigger", "PauseSpec", "SlaSpec", "TargetSpec", "ThresholdSpec"]

Names = Annotated[list[str], BeforeValidator(one_or_many), Shorthand({"type": "string"})]
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)%")


class ClockTrigger(Model):
    """``{on: event | [..]}``, ``{enter: stage | [..]}`` or ``{when: condition}`` — any part fires it."""

    on: Names = Field(default_factory=list)
    enter: Names = Field(default_factory=list)
    when: Condition | None = None

    @model_validator(mode="after")
    def _some(self) -> ClockTrigger:
        if not self.on and not self.enter and self.when is None:
            raise PydanticCustomError("CP202", "a clock trigger needs `on`, `enter` or `when`", {})
        return self


class PauseSpec(Model):
    """While the case is ``in`` these stages, or ``when`` holds, elapsed time does not grow."""

    in_: Names = Field(default_factory=list, alias="in")
    when: Condition | None = None


class TargetSpec(Model):
    """A target: first match wins; the last must be unconditional."""

    when: Condition | None = None
    within: str = Field(description="business time: h/m/s of open time, or bd")
    calendar: str | None = None

    @field_validator("within")
    @classmethod
    def _within(cls, v: Any) -> str:
        return check_duration(v, business=True)


class ThresholdSpec(Model):
    """``at: 75%`` of the target, or ``at: -15m`` / ``+1h`` from it (business time)."""

    at: str = Field(description="`75%`, `100%`, `-15m`, `+1h`")
    do: Annotated[list[ActionSpec], BeforeValidator(one_or_many), Shorthand(single=True)] = Field(
        default_factory=list
    )

    @field_validator("at", mode="before")
    @classmethod
    def _at(cls, v: Any) -> str:
        if isinstance(v, int | float) and not isinstance(v, bool):
            raise PydanticCustomError(
                "CP203", "threshold {v} needs a unit", {"v": v, "hint": f"write {v}% or +{v}m"}
            )
        if not isinstance(v, str):
            raise PydanticCustomError(
                "CP203", "threshold must be a percentage or a signed offset", {}
            )
        s = v.strip()
        if _PERCENT.fullmatch(s):
            if float(s[:-1]) <= 0:
                raise PydanticCustomError("CP203", "threshold percentage must be above 0", {})
            return s
        if s[:1] in "+-":
            check_duration(s[1:], business=True)
            return s
        raise PydanticCustomError(
            "CP203",
            "cannot read threshold '{v}'",
            {"v": v, "hint": "write a share of the target (75%) or a signed offset (-15m, +1h)"},
        )


class SlaSpec(Model):
    """One SLA clock (SPEC §4.3)."""

    title: str | None = None
    start: ClockTrigger
    stop: ClockTrigger | None = None
    pause: PauseSpec | None = None
    reset: ClockTrigger | None = None
    cancel: ClockTrigger | None = None
    repeat: Flag = False
    calendar: str = Field(
        "channel", description="`channel` (the case channel's calendar) or a calendar name"
    )
    targets: list[TargetSpec] = Field(min_length=1)
    thresholds: list[ThresholdSpec] = Field(default_factory=list)
