"""The playbook's ``retention`` key (SPEC §10 "Personal data"): how long a store keeps what."""

from __future__ import annotations

from typing import Any

from pydantic import field_validator
from pydantic_core import PydanticCustomError

from carepath.model.common import Model, check_duration

__all__ = ["RetentionSpec"]


class RetentionSpec(Model):
    """How long ``carepath purge`` (and the worker loop, daily) keeps ended cases, rejected
    events and delivered outbox actions, measured from when the case ended, the event was
    rejected or the action was delivered. A missing key keeps that kind for ever."""

    ended_cases: str | None = None
    rejected: str | None = None
    delivered_actions: str | None = None

    @field_validator("ended_cases", "rejected", "delivered_actions", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> str:
        from carepath.durations import parse_duration

        text = check_duration(v)
        if parse_duration(text).business_days:
            raise PydanticCustomError(
                "CP205",
                "{msg}",
                {
                    "msg": f"retention is wall-clock time, not business days: {text!r}",
                    "hint": "use days, months or years (400d, 13mo, 1y)",
                },
            )
        return text
