"""The shapes of ``carepath serve``'s requests and answers (SPEC §9), as pydantic models.

The endpoints build their answers from these models, and ``/openapi.json`` is generated from
them: the document and the service cannot drift apart.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from carepath.runtime import OutboxItem
from carepath.state import Action, CaseState

__all__ = [
    "MAX_EVENTS",
    "ActionOut",
    "CaseDetail",
    "CaseSummary",
    "ClaimRequest",
    "ClockSummary",
    "EventIn",
    "EventResult",
    "Health",
    "NackRequest",
    "Ok",
    "OutboxItemOut",
    "Problem",
    "results_json",
]

#: At most this many events in one ``POST /events``.
MAX_EVENTS = 1000

_SHUT = ConfigDict(extra="forbid")

#: An instant as the CLI writes it: ISO 8601 with the offset of the playbook's timezone.
Instant = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


def _absent_if_none(value: Any) -> bool:
    return value is None


class EventIn(BaseModel):
    """An event as the CRM sends it (SPEC §4.1): ``{id, type, at, case?, data?}``. The service
    checks it the way ``Runtime.submit`` does; an event that fails is answered ``rejected`` with
    its reason and kept in the store's rejected events, never dropped."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(description="unique per event: a known id is a duplicate, whatever it holds")
    type: str = Field(min_length=1, description="the event type, e.g. `case.opened`")
    at: Instant = Field(description="when it happened: ISO 8601 with an offset")
    case: str | None = Field(
        default=None, description="the case key (when the playbook's key is `event.case`)"
    )
    data: dict[str, Any] = Field(default_factory=dict, description="the payload")


class ClockSummary(BaseModel):
    """One SLA clock in a case summary."""

    model_config = _SHUT

    status: str = Field(description="pending | running | paused | met | stopped | cancelled")
    due: Instant | None = Field(
        description="when the running cycle breaches (the breach instant once breached)"
    )


class CaseSummary(BaseModel):
    """A case as ``carepath cases list --format json`` prints it."""

    model_config = _SHUT

    playbook: str
    case: str
    stage: str
    tier: str | None
    next_wakeup: Instant | None
    clocks: dict[str, ClockSummary]

    @classmethod
    def of(cls, state: CaseState) -> CaseSummary:
        """The summary of ``state``: the object of ``cases list --format json``."""
        from carepath.cli.cases import summary

        return cls.model_validate(summary(state))


class EventResult(BaseModel):
    """What became of one posted event (the statuses of ``Runtime.submit``)."""

    model_config = _SHUT

    id: str | None = Field(description="the event's id (`null` when it has none)")
    status: Literal["applied", "duplicate", "rejected", "ignored"]
    reason: Literal["out_of_order", "invalid", "unknown_case", "playbook_mismatch"] | None = Field(
        default=None, exclude_if=_absent_if_none, description="why it was rejected (rejected only)"
    )
    message: str | None = Field(
        default=None,
        exclude_if=_absent_if_none,
        description="the rejection in words (rejected only)",
    )
    cases: list[CaseSummary] = Field(description="the cases it was applied to, as they are now")


def results_json(docs: list[dict[str, Any]]) -> bytes:
    """The answer of ``POST /events``: the JSON of ``docs`` (:class:`EventResult` documents), the
    very bytes the models write (``tests/serve/test_serve_results.py`` holds the two equal),
    written by orjson without building a model per case and clock; through the models when orjson
    refuses a value (a lone surrogate in a key)."""
    try:
        import orjson

        return orjson.dumps(docs)
    except (ImportError, TypeError):  # orjson.JSONEncodeError is a TypeError
        return _results().dump_json(_results().validate_python(docs))


@functools.cache
def _results() -> TypeAdapter[list[EventResult]]:
    return TypeAdapter(list[EventResult])


class ActionOut(BaseModel):
    """An action for the host (SPEC §4.1): ``{id, playbook, case, type, params, at, source}``."""

    model_config = _SHUT

    id: str
    playbook: str
    case: str
    type: str
    params: dict[str, Any]
    at: Instant
    source: str

    @classmethod
    def of(cls, action: Action) -> ActionOut:
        """The model of ``action``."""
        return cls.model_validate(action.to_dict())


class OutboxItemOut(BaseModel):
    """An outbox item (SPEC §7): the action and where its delivery stands."""

    model_config = _SHUT

    id: str = Field(description="the action's id; `Idempotency-Key` of a webhook delivery")
    playbook: str
    case: str
    type: str
    status: Literal["pending", "delivered", "dead"]
    attempts: int = Field(description="hand-overs so far (claims included)")
    action: ActionOut
    last_error: str | None = Field(default=None, exclude_if=_absent_if_none)

    @classmethod
    def of(cls, item: OutboxItem) -> OutboxItemOut:
        """The model of ``item``."""
        return cls(
            id=item.id,
            playbook=item.playbook,
            case=item.case,
            type=item.type,
            status=item.status,
            attempts=item.attempts,
            action=ActionOut.of(item.action),
            last_error=item.last_error or None,
        )


class CaseDetail(BaseModel):
    """``GET /cases/{playbook}/{case}``: the whole state and the case's outbox items."""

    model_config = _SHUT

    state: dict[str, Any] = Field(description="the CaseState JSON (`CaseState.to_json()`)")
    outbox: list[OutboxItemOut]


class ClaimRequest(BaseModel):
    """``POST /outbox/claim``: how many items, for how long, of which action types."""

    model_config = _SHUT

    limit: int = Field(default=100, ge=1, le=1000, description="at most this many items")
    lease_s: float = Field(
        default=60.0,
        ge=0.001,
        le=60,
        description="seconds to ack or nack before the claim lapses (1 ms to 60 s)",
    )
    types: list[str] | None = Field(
        default=None, description="only these action types (all when absent)"
    )


class NackRequest(BaseModel):
    """``POST /outbox/{id}/nack``: not delivered; when to try again, or never."""

    model_config = _SHUT

    retry_in_s: float = Field(
        default=300.0, ge=0, le=366 * 86400, description="claimable again this many seconds later"
    )
    permanent: bool = Field(default=False, description="give up: the item ends `dead`")
    reason: str = Field(default="", max_length=2000, description="kept as the item's last error")


class Ok(BaseModel):
    """The answer of ``ack`` and ``nack``: ``ok`` is ``false`` (and nothing changed) unless the
    item was under a live claim made through this service."""

    model_config = _SHUT

    ok: bool


class Health(BaseModel):
    """``GET /healthz``."""

    model_config = _SHUT

    status: Literal["ok"]


class Problem(BaseModel):
    """Every error answer: what was wrong, in one line."""

    model_config = _SHUT

    detail: str
