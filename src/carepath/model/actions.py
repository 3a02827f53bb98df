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

from carepath.model.common import Condition, Flag, Model, OneOrMany, check_duration, one_or_many

__all__ = ["VERBS", "ActionSpec"]

VERBS = ("notify", "send", "survey", "assign", "escalate", "set", "task", "emit")
_VERB_HINT = {
    "notify": "for example {notify: L2}",
    "send": "for example {send: reminder} (a template name)",
    "survey": "csat, nps or ces",
    "assign": "a tier, for example {assign: L1}",
    "escalate": "next or a tier",
    "set": "a mapping, for example {set: {priority: high}}",
    "task": "a task name, for example {task: call-back, for: L1}",
    "emit": "a custom action name",
}


class ActionSpec(Model):
    """One action. Exactly one verb key; ``in``/``calendar``/``window``/``keep`` delay it."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [{"required": [v]} for v in VERBS]})

    notify: str | None = Field(None, description="tier, role, `assignee` or `customer`")
    send: str | None = Field(None, description="template sent to the customer")
    survey: Literal["csat", "nps", "ces"] | None = None
    assign: str | None = Field(None, description="tier that takes the case")
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
