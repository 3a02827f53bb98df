"""Pydantic models of playbook format 1, one module per section."""

from .actions import VERBS, ActionSpec
from .calendars import CalendarSpec, HolidaySpec
from .fields import FieldSpec
from .goals import CustomMetric, GoalSpec, MetricsSpec, StaffingSpec, WindowSpec
from .playbook import PlaybookSpec
from .routing import ChannelSpec, FrequencyCap, TemplateSpec, TierSpec
from .slas import ClockTrigger, PauseSpec, SlaSpec, TargetSpec, ThresholdSpec
from .stages import ExitSpec, HandlerSpec, ScheduleSpec, StageSpec, StartSpec, TimerSpec

__all__ = [
    "VERBS", "ActionSpec", "CalendarSpec", "ChannelSpec", "ClockTrigger", "CustomMetric", "ExitSpec",
    "FieldSpec", "FrequencyCap", "GoalSpec", "HandlerSpec", "HolidaySpec", "MetricsSpec", "PauseSpec",
    "PlaybookSpec", "ScheduleSpec", "SlaSpec", "StaffingSpec", "StageSpec", "StartSpec", "TargetSpec",
    "TemplateSpec", "ThresholdSpec", "TierSpec", "TimerSpec", "WindowSpec",
]
