"""Actions (SPEC §4.5): ``notify``, ``send``, ``survey``, ``assign``, ``escalate``, ``set``,
``task``, ``emit`` — exactly one verb per action, plus delay and delivery options."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from carepath.model.common import (
    Condition,
    Flag,
    Model,
    OneOrMany,
    Shorthand,
    check_duration,
    one_or_many,
)

__all__ = ["STRATEGIES", "VERBS", "ActionSpec", "AssignSpec"]

VERBS = ("notify", "send", "survey", "assign", "escalate", "set", "task", "emit")
_VERB_HINT = {
    "notify": "for example {notify: L2}",
    "send": "for example {send: reminder} (a template name)",
    "survey": "csat, nps or ces",
    "assign": "a tier, for example {assign: L1} or {assign: {tier: L1, strategy: round_robin}}",
    "escalate": "next or a tier",
    "set": "a mapping, for example {set: {priority: high}}",
    "task": "a task name, for example {task: call-back, for: L1}",
    "emit": "a custom action name",
}


STRATEGIES = ("round_robin", "least_loaded", "skills")
"""How the runtime's allocator picks an agent in a tier (SPEC §10)."""


class AssignSpec(Model):
    """``assign: {tier, strategy?, skills?}`` (SPEC §10); ``assign: L1`` is ``{tier: L1}``: the
    tier only, no agent is allocated."""

    tier: str = Field(description="tier that takes the case")
    strategy: Literal["round_robin", "least_loaded", "skills"] | None = Field(
        None,
        description="how the runtime picks an agent of the tier from the roster (none: the tier "
        "only)",
    )
    skills: Annotated[list[str], BeforeValidator(one_or_many), OneOrMany] | None = Field(
        None, description="with `strategy: skills`: an agent needs every one of them"
    )

    @model_validator(mode="after")
    def _skills(self) -> AssignSpec:
        if self.skills is not None and self.strategy != "skills":
            raise PydanticCustomError(
                "CP203",
                "`skills` needs `strategy: skills`, not {got}",
                {
                    "got": self.strategy or "no strategy",
                    "hint": "add `strategy: skills`, or remove `skills`",
                },
            )
        if self.strategy == "skills" and not self.skills:
            raise PydanticCustomError(
                "CP203",
                "`strategy: skills` needs a non-empty list of `skills`",
                {"hint": "for example {tier: L1, strategy: skills, skills: [vi, warranty]}"},
            )
        if self.skills and any(not isinstance(s, str) or not s for s in self.skills):
            raise PydanticCustomError(
                "CP203", "a skill is a non-empty name", {"hint": "skills: [vi, warranty]"}
            )
        return self


def _assign(v: Any) -> Any:
    return {"tier": v} if isinstance(v, str) else v


class ActionSpec(Model):
    """One action. Exactly one verb key; ``in``/``calendar``/``window``/``keep`` delay it."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [{"required": [v]} for v in VERBS]})

    notify: str | None = Field(None, description="tier, role, `assignee` or `customer`")
    send: str | None = Field(None, description="template sent to the customer")
    survey: Literal["csat", "nps", "ces"] | None = None
    assign: (
        Annotated[AssignSpec, BeforeValidator(_assign), Shorthand({"type": "string"})] | None
    ) = Field(None, description="tier that takes the case, or {tier, strategy, skills}")
    escalate: str | None = Field(None, description="`next` or a tier")
    set: dict[str, Any] | None = Field(None, description="field → literal, or `=expression`")
    task: str | None = Field(None, description="a task name for a role or tier")
    emit: str | None = Field(None, description="a custom action name")

    channel: str | None = Field(None, description="channel of a `send` (default: the case's)")
    for_: str | None = Field(None, alias="for", description="tier or role a `task` is for")
    due: str | None = Field(None, description="a `task`'s due duration")
    params: dict[str, Any] | None = Field(None, description="free parameters passed to the host")
    message: str | None = Field(None, description="text for `notify`")
    in_: str | None = Field(None, alias="in", description="delay before the action is emitted")
    calendar: str | None = Field(None, description="count the delay in this calendar's open time")
    window: str | None = Field(
        None, description="delivery window (quiet hours): calendar name or `channel`"
    )
    keep: Flag = Field(False, description="keep a delayed action when the case leaves the stage")
    when: Condition | None = Field(
        None, description="condition checked when the action would be emitted (else it is not)"
    )
    fallback: Annotated[list[str], BeforeValidator(one_or_many), OneOrMany] | None = Field(
        None,
        description="channels a `send`/`survey` falls back to, in order, when it fails for good "
        "or the customer does not consent to its channel",
    )

    @property
    def verb(self) -> str:
        """The action's verb."""
        for v in VERBS:
            if getattr(self, v) is not None:
                return v
        raise AssertionError("validated action without a verb")  # pragma: no cover

    @model_validator(mode="before")
    @classmethod
    def _one_verb(cls, data: Any) -> Any:
        if isinstance(data, dict):
            verbs = [v for v in VERBS if v in data]
            if not verbs:
                raise PydanticCustomError(
                    "CP202",
                    "an action needs one verb: {verbs}",
                    {"verbs": ", ".join(VERBS), "hint": "for example {send: reminder}"},
                )
            if len(verbs) > 1:
                raise PydanticCustomError(
                    "CP203",
                    "an action has exactly one verb; this one has {verbs}",
                    {"verbs": ", ".join(verbs), "hint": "split it into several actions in a list"},
                )
        return data

    @field_validator(*VERBS, mode="before")
    @classmethod
    def _verb_value(cls, v: Any, info: ValidationInfo) -> Any:
        # `{send: }` names a verb without its value: without this it passed as "one verb" and the
        # compiler found none (issue 15 #12). Field validators run only on keys that are present.
        if v is None:
            raise PydanticCustomError(
                "CP203",
                "`{verb}` needs a value",
                {"verb": info.field_name, "hint": _VERB_HINT.get(str(info.field_name), "")},
            )
        return v

    @field_validator("in_", "due")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        return None if v is None else check_duration(v)
