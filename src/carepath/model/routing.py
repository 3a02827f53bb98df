"""``channels``, ``segments``, ``tiers`` and ``templates``: where and to whom care happens."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from carepath.model.common import Flag, Model, NonNegative

__all__ = ["ChannelSpec", "FrequencyCap", "TemplateSpec", "TierSpec"]


class FrequencyCap(Model):
    """At most ``max`` sends on this channel per ``per`` (``1d``, ``7d``), counted per case.

    A capped send is dropped (``mode: drop``, with a ``capped`` signal) or held until the window
    has room (``mode: defer``); templates under ``exempt`` (transactional messages) neither count
    nor are capped.
    """

    per: str = Field(description="window length: 1d, 7d, 24h…")
    max: NonNegative = Field(description="sends allowed per window (0: none but the exempt)")
    mode: Literal["drop", "defer"] = Field(
        "drop", description="`drop` a capped send, or `defer` it until the window has room"
    )
    exempt: list[str] = Field(
        default_factory=list, description="templates that neither count nor are capped"
    )


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
