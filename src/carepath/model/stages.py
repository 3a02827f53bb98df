"""``start``, ``stages`` (with handlers, timers and schedules), the root ``on`` and ``exit``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from carepath.model.actions import ActionSpec
from carepath.model.common import Condition, Flag, Model, Shorthand, check_duration, one_or_many

__all__ = [
    "ExitSpec",
    "HandlerSpec",
    "ScheduleSpec",
    "StageSpec",
    "StartSpec",
    "TimerSpec",
    "handlers_of",
]

Actions = Annotated[list[ActionSpec], BeforeValidator(one_or_many), Shorthand(single=True)]


class HandlerSpec(Model):
    """What an event (or signal) does in a stage: ``{to?, when?, set?, do?}``."""

    to: str | None = Field(None, description="stage to move to; none = stay")
    when: Condition | None = Field(
        None, description="condition; the first handler whose `when` holds wins"
    )
    set: dict[str, Any] | None = None
    do: Actions = Field(default_factory=list)


def handlers_of(value: Any) -> Any:
    """``stage`` → ``[{to: stage}]``; ``{…}`` → ``[{…}]``; lists item by item."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [{"to": v} if isinstance(v, str) else v for v in items]


Handlers = Annotated[
    list[HandlerSpec],
    BeforeValidator(handlers_of),
    Shorthand({"type": "string", "description": "stage to move to"}, single=True),
]


class TimerSpec(Model):
    """A delayed transition or action owned by a stage (SPEC §4.4)."""

    in_: str = Field(
        alias="in",
        description="delay: wall-clock, or open time of `calendar`; `bd` = business days",
    )
    to: str | None = None
    do: Actions = Field(default_factory=list)
    when: Condition | None = None
    calendar: str | None = None
    window: str | None = None

    @field_validator("in_")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        return check_duration(v)  # syntax here, located at `in`; business time below

    @model_validator(mode="after")
    def _business(self) -> TimerSpec:
        check_duration(self.in_, business=self.calendar is not None, key="in")
        return self


class ScheduleSpec(Model):
    """A recurring touchpoint while in the stage (cron in the playbook timezone)."""

    cron: str
    window: str | None = None
    do: Actions = Field(default_factory=list)
    when: Condition | None = None


class StageSpec(Model):
    """A journey stage or ticket status."""

    title: str | None = None
    description: str | None = None
    initial: Flag = False
    final: Flag = False
    enter: Actions = Field(default_factory=list)
    exit: Actions = Field(default_factory=list)
    on: dict[str, Handlers] = Field(default_factory=dict)
    after: list[TimerSpec] = Field(default_factory=list)
    every: list[ScheduleSpec] = Field(default_factory=list)

    @field_validator("after", "every", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return one_or_many(v)


EventTypes = Annotated[list[str], BeforeValidator(one_or_many), Shorthand({"type": "string"})]


class StartSpec(Model):
    """How cases begin and how events find them (SPEC §4.6)."""

    on: EventTypes = Field(description="event type(s) that open a case")
    when: Condition | None = None
    key: str = Field("event.case", description="the case key of an event")
    set: dict[str, Any] = Field(default_factory=dict)
    reentry: Literal["never", "after_exit", "always"] = "after_exit"
    min_interval: str | None = Field(None, description="least time between two cases of one key")

    @field_validator("min_interval")
    @classmethod
    def _dur(cls, v: Any) -> Any:
        return None if v is None else check_duration(v)


class ExitSpec(Model):
    """Events that end a case wherever it is (a journey's unsubscribe)."""

    on: EventTypes
    when: Condition | None = None
