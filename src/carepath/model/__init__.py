"""Pydantic models of playbook format 1, one module per section."""

from carepath.model.actions import VERBS, ActionSpec
from carepath.model.calendars import CalendarSpec, HolidaySpec
from carepath.model.fields import FieldSpec
from carepath.model.goals import CustomMetric, GoalSpec, MetricsSpec, StaffingSpec, WindowSpec
from carepath.model.playbook import PlaybookSpec
from carepath.model.routing import ChannelSpec, FrequencyCap, TemplateSpec, TierSpec
from carepath.model.slas import ClockTrigger, PauseSpec, SlaSpec, TargetSpec, ThresholdSpec
from carepath.model.stages import (
    ExitSpec,
    HandlerSpec,
    ScheduleSpec,
    StageSpec,
    StartSpec,
    TimerSpec,
)

__all__ = [
    "VERBS",
    "ActionSpec",
    "CalendarSpec",
    "ChannelSpec",
    "ClockTrigger",
    "CustomMetric",
    "ExitSpec",
    "FieldSpec",
    "FrequencyCap",
    "GoalSpec",
    "HandlerSpec",
    "HolidaySpec",
    "MetricsSpec",
    "PauseSpec",
    "PlaybookSpec",
    "ScheduleSpec",
    "SlaSpec",
    "StaffingSpec",
    "StageSpec",
    "StartSpec",
    "TargetSpec",
    "TemplateSpec",
    "ThresholdSpec",
    "TierSpec",
    "TimerSpec",
    "WindowSpec",
]
