"""What the engine does itself with the reserved events of consent and delivery (SPEC §10).

``customer.opted_out {channel}`` / ``customer.opted_in {channel}`` (``channel: all`` for every
channel) set the built-in fields ``consent.<channel>`` (:func:`consent_updates`); a permanent
``action.failed {action, reason, permanent}`` of a ``send``/``survey`` with a ``fallback`` sends
it again on the next channel (:func:`on_failed`); ``agent.assigned {agent}``, the runtime
allocator's answer to an ``assign`` with a strategy, sets the built-in field ``assignee``
(:func:`assignee_updates`). Both happen before the stage's handlers see
the event, which a playbook may also handle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from carepath.compile.ir import (
    AGENT_ASSIGNED,
    ASSIGNEE,
    CONSENT_PREFIX,
    FEEDBACK_FAILED,
    OPT_EVENTS,
)
from carepath.engine.actions import fall_back
from carepath.errors import InvalidEvent

if TYPE_CHECKING:
    from carepath.compile.ir import Playbook
    from carepath.engine.run import Run

__all__ = ["RESERVED", "apply_reserved", "assignee_updates", "consent_updates", "on_failed"]

RESERVED = frozenset({*OPT_EVENTS, FEEDBACK_FAILED, AGENT_ASSIGNED})
"""The event types the engine reacts to before any handler."""


def consent_updates(playbook: Playbook, type_: str, view: Mapping[str, Any]) -> dict[str, bool]:
    """The ``consent.<channel>`` values an opt-out or opt-in event writes; raises
    :class:`InvalidEvent` for a channel the playbook does not know."""
    channel = view.get("channel")
    channels = playbook.consent_channels
    if channel == "all":
        chosen: tuple[str, ...] = channels
    elif isinstance(channel, str) and channel in channels:
        chosen = (channel,)
    else:
        raise InvalidEvent(
            f"event {view.get('id')} ({type_}): `channel` = {channel!r} is not a channel of "
            f"{playbook.id}; expected one of {', '.join(channels)}, or all"
        )
    value = type_ == "customer.opted_in"
    return {CONSENT_PREFIX + c: value for c in chosen}


def assignee_updates(view: Mapping[str, Any]) -> dict[str, str]:
    """What ``agent.assigned {agent}`` writes: the built-in field ``assignee``; raises
    :class:`InvalidEvent` when ``agent`` is not a non-empty string."""
    agent = view.get("agent")
    if not isinstance(agent, str) or not agent:
        raise InvalidEvent(
            f"event {view.get('id')} ({AGENT_ASSIGNED}): `agent` = {agent!r} is not an agent id; "
            "expected a non-empty string"
        )
    return {ASSIGNEE: agent}


def on_failed(run: Run, view: Mapping[str, Any]) -> None:
    """``action.failed``: a ``send``/``survey`` with a ``fallback`` goes on to its next channel
    (every ``action.failed`` is final: the runtime submits it when an item is dead)."""
    action = view.get("action")
    if not isinstance(action, Mapping) or action.get("type") not in ("send", "survey"):
        return
    definition = run.plan.actions.get(str(action.get("source")))
    if definition is None or not definition.fallback:
        return
    params = action.get("params")
    failed = params.get("channel") if isinstance(params, Mapping) else None
    if run.tracing:
        run.note("failed", definition.source, f"{action.get('id')} on {failed} failed for good")
    fall_back(run, definition, view, failed)


def apply_reserved(run: Run, type_: str, view: Mapping[str, Any]) -> None:
    """React to a reserved event (nothing for any other type)."""
    if type_ in OPT_EVENTS:
        if run.playbook.consent_channels:
            run.write_data(consent_updates(run.playbook, type_, view))
    elif type_ == FEEDBACK_FAILED:
        on_failed(run, view)
    elif type_ == AGENT_ASSIGNED:
        run.write_data(assignee_updates(view))
