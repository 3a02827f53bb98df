"""The playbook root model (format 1)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, field_validator

from carepath.model.calendars import CalendarSpec
from carepath.model.common import ID_RE, Condition, Flag, Model, Shorthand, no_bool, one_or_many
from carepath.model.fields import FieldEntry
from carepath.model.goals import GoalSpec, MetricsSpec, StaffingSpec
from carepath.model.retention import RetentionSpec
from carepath.model.routing import ChannelSpec, TemplateSpec, TierSpec
from carepath.model.slas import SlaSpec
from carepath.model.stages import ExitSpec, Handlers, StageSpec, StartSpec

__all__ = ["PlaybookSpec"]

EventPayload = dict[str, FieldEntry]


class PlaybookSpec(Model):
    """A care process: goals, segments, channels, calendars, tiers, stages, timers and SLAs."""

    model_config = ConfigDict(title="carepath playbook (format 1)")

    carepath: Annotated[Literal[1], BeforeValidator(no_bool)] = Field(description="format version")
    id: str = Field(description="[a-z0-9][a-z0-9_-]*")
    version: Annotated[str | int | float, BeforeValidator(no_bool)]
    title: str | None = None
    description: str | None = None
    owner: str | None = None
    timezone: str = Field("UTC", description="IANA timezone: default for calendars and cron")
    customer_timezone: str | None = Field(
        None,
        description="the string field naming the customer's IANA time zone, which calendars "
        "with `timezone: customer` read their hours in",
    )
    consent_default: Flag = Field(
        True,
        description="the value of `consent.<channel>` before the customer opts in or out",
    )
    include: Annotated[list[str], BeforeValidator(one_or_many), Shorthand({"type": "string"})] = (
        Field(default_factory=list, description="relative files merged into this playbook")
    )
    events: dict[str, EventPayload | None] = Field(default_factory=dict)
    fields: dict[str, FieldEntry] = Field(default_factory=dict)
    calendars: dict[str, CalendarSpec] = Field(default_factory=dict)
    channels: dict[str, ChannelSpec | None] = Field(default_factory=dict)
    segments: dict[str, Condition] = Field(default_factory=dict)
    tiers: dict[str, TierSpec | None] = Field(default_factory=dict)
    templates: dict[str, TemplateSpec | None] = Field(default_factory=dict)
    start: StartSpec
    stages: dict[str, StageSpec | None] = Field(min_length=1)
    on: dict[str, Handlers] = Field(default_factory=dict)
    exit: ExitSpec | None = None
    slas: dict[str, SlaSpec] = Field(default_factory=dict)
    goals: list[GoalSpec] = Field(default_factory=list)
    metrics: MetricsSpec = Field(default_factory=MetricsSpec)
    staffing: StaffingSpec = Field(default_factory=StaffingSpec)
    retention: RetentionSpec | None = Field(
        None,
        description="how long `carepath purge` keeps ended cases, rejected events and delivered "
        "actions (SPEC §10)",
    )

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        from pydantic_core import PydanticCustomError

        if not ID_RE.fullmatch(v):
            raise PydanticCustomError(
                "CP203", "playbook id '{v}' must match [a-z0-9][a-z0-9_-]*", {"v": v}
            )
        return v

    @field_validator("version", mode="after")
    @classmethod
    def _version(cls, v: Any) -> str:
        return str(v)
