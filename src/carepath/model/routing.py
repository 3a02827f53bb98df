"""``channels``, ``segments``, ``tiers`` and ``templates``: where and to whom care happens."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from carepath.model.common import Flag, Model, Positive

__all__ = ["ChannelSpec", "FrequencyCap", "TemplateSpec", "TierSpec"]


class FrequencyCap(Model):
    """At most ``max`` sends on this channel per ``per`` (``1d``, ``7d``), counted per case."""

    per: str = Field(description="window length: 1d, 7d, 24h…")
    max: Positive


class ChannelSpec(Model):
    """A touchpoint: phone, email, chat, facebook, zalo, chatbot…"""

    calendar: str = Field("always", description="calendar name, or `always`")
    automated: Flag = False
    title: str | None = None
    frequency_cap: FrequencyCap | None = None


class TierSpec(Model):
    """One rung of the escalation ladder."""

    title: str | None = None
    queue: str | None = None
    role: str | None = None


class TemplateSpec(Model):
    """A message template; ``{field}`` placeholders must name declared fields or ``event.*``."""

    title: str | None = None
    channel: str | None = None
    subject: str | None = None
    text: str | None = None
    kind: Literal["message", "survey", "offer", "reminder", "other"] | None = None
