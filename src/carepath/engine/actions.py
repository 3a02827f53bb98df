"""Actions (SPEC §4.5): held as a pending item when delayed, otherwise emitted by their verb.

:func:`perform` runs a list of action definitions in a step: an action with ``in:`` (or whose
``window`` is closed now) becomes a pending item, the others are emitted at once by
:func:`emit`, which gives each verb its own small function (:data:`VERBS`) to fill the action's
parameters and change the case (``assign`` and ``escalate`` move the tier, ``set`` writes data,
``send`` counts against the channel's frequency cap). What an action may read and change of its
step is :class:`ActionHost`; the run implements it.

An action's ``when`` is checked when it would be emitted. A ``send`` or ``survey`` to a channel
the customer does not consent to (``consent.<channel>``, SPEC §10) is not emitted: it raises
``send.suppressed`` and goes on to its ``fallback`` channels (:func:`fall_back`, also what a
permanent ``action.failed`` does), ``send.exhausted`` when none is left. A capped ``send`` is
dropped with ``capped``, or, with ``mode: defer``, held until its channel's window has room.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from carepath.compile.ir import CONSENT_PREFIX
from carepath.state import Action, ClockRecord

if TYPE_CHECKING:
    from carepath.calendar.business import Calendar
    from carepath.compile.ir import ActionDef, Playbook, SetValue
    from carepath.durations import Duration

__all__ = ["VERBS", "ActionHost", "consents", "emit", "fall_back", "perform"]


class ActionHost(Protocol):
    """What an action may read and change of the step it runs in."""

    playbook: Playbook
    case: str
    data: Mapping[str, Any]
    sends: Mapping[str, tuple[float, ...]]
    tier: str | None
    seq: int
    now: float
    tracing: bool
    actions: list[Action]

    epoch: int

    def now_dt(self) -> datetime: ...
    def iso(self, t: float) -> str: ...
    def holds(self, condition: Any, view: Mapping[str, Any] | None) -> bool: ...
    def note(self, what: str, source: str, detail: str = "") -> None: ...
    def note_changed(self, *names: str) -> None: ...
    def signal(
        self,
        type_: str,
        *,
        sla: str | None = None,
        cycle: int | None = None,
        record: ClockRecord | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None: ...
    def calendar(self, name: str | None) -> Calendar: ...
    def delay_due(self, t: float, delay: Duration, calendar: str | None) -> float: ...
    def add_pending(self, due: float, kind: str, ref: str, owner: tuple[Any, ...]) -> None: ...
    def apply_sets(
        self, sets: tuple[SetValue, ...], view: Mapping[str, Any] | None, source: str
    ) -> dict[str, Any]: ...
    def recompute_segments(self, view: Mapping[str, Any] | None) -> None: ...
    def writable_sends(self) -> dict[str, tuple[float, ...]]: ...


def perform(
    run: ActionHost,
    actions: tuple[ActionDef, ...],
    view: Mapping[str, Any] | None,
    owner: tuple[Any, ...],
) -> None:
    """Emit ``actions`` now, or hold the delayed ones (and those outside their ``window``) as
    pending items that ``owner`` cancels (``keep: true`` ones are owned by nobody)."""
    for action in actions:
        if action.delay is not None:
            due = run.delay_due(run.now, action.delay, action.calendar)
            if action.window is not None:
                due = run.calendar(action.window).next_open_s(due)
            run.add_pending(due, "action", action.source, () if action.keep else owner)
            if run.tracing:
                run.note("delay", action.source, f"{action.verb} due {run.iso(due)}")
        elif action.window is not None and not run.calendar(action.window).is_open_s(run.now):
            due = run.calendar(action.window).next_open_s(run.now)
            run.add_pending(due, "action", action.source, () if action.keep else owner)
            if run.tracing:
                run.note(
                    "window",
                    action.source,
                    f"{action.verb} waits for {action.window} until {run.iso(due)}",
                )
        else:
            emit(run, action, view)


def emit(
    run: ActionHost,
    action: ActionDef,
    view: Mapping[str, Any] | None,
    channel: str | None = None,
) -> None:
    """Emit ``action`` now, unless its ``when`` does not hold: its verb fills the parameters (and
    may drop it: a capped ``send``, one without consent). ``channel`` overrides a ``send``'s or
    ``survey``'s channel (a fallback)."""
    if action.when is not None and not run.holds(action.when, view):
        if run.tracing:
            run.note(
                "skip", action.source, f"{action.verb}: when {action.when.source} did not hold"
            )
        return
    verb = action.verb
    params: dict[str, Any] = dict(action.params)
    if channel is not None:
        params["channel"] = channel
    fill = VERBS.get(verb)
    if fill is not None and not fill(run, action, params, view):
        return
    run.seq += 1
    run.actions.append(
        Action(
            f"{run.case}:{run.seq}",
            run.playbook.id,
            run.case,
            verb,
            MappingProxyType(params),
            run.now_dt(),
            action.source,
        )
    )
    if run.tracing:
        run.note(
            "action",
            action.source,
            f"{verb} {action.arg if verb != 'set' else params.get('values')}",
        )


# -- one function per verb: fill ``params``, change the case; False drops the action ---------------
Verb = Callable[[ActionHost, "ActionDef", dict[str, Any], "Mapping[str, Any] | None"], bool]


def notify(
    run: ActionHost, action: ActionDef, params: dict[str, Any], view: Mapping[str, Any] | None
) -> bool:
    """``notify: <tier|role|assignee|customer>``; to the assignee, ``agent`` names the agent
    (``None`` before one is assigned)."""
    params["to"] = action.arg
    if action.arg == "assignee":
        params["agent"] = run.data.get("assignee")
    return True


def consents(run: ActionHost, channel: Any) -> bool:
    """Whether the customer consents to messages on ``channel`` (none: yes)."""
    if channel is None:
        return True
    value = run.data.get(CONSENT_PREFIX + str(channel))
    return run.playbook.consent_default if value is None else value is True


def _suppress(run: ActionHost, action: ActionDef, channel: Any) -> None:
    if run.tracing:
        run.note(
            "suppressed", action.source, f"{action.verb} {action.arg}: no consent on {channel}"
        )
    run.signal(
        "send.suppressed",
        data={
            "reason": "no_consent",
            "channel": channel,
            "template": action.arg,
            "source": action.source,
        },
    )


def fall_back(
    run: ActionHost, action: ActionDef, view: Mapping[str, Any] | None, failed: Any
) -> None:
    """Send ``action`` again on the next of its ``fallback`` channels after ``failed`` that the
    customer consents to (those without consent raise ``send.suppressed``); ``send.exhausted``
    when none is left. Nothing without a ``fallback``."""
    chain = action.fallback
    if not chain:
        return
    start = chain.index(failed) + 1 if failed in chain else 0
    for channel in chain[start:]:
        if channel != failed and consents(run, channel):
            if run.tracing:
                run.note("fallback", action.source, f"{action.verb} {action.arg} on {channel}")
            emit(run, action, view, channel)
            return
        if channel != failed:
            _suppress(run, action, channel)
    run.signal(
        "send.exhausted",
        data={"channel": failed, "template": action.arg, "source": action.source},
    )


def send(
    run: ActionHost, action: ActionDef, params: dict[str, Any], view: Mapping[str, Any] | None
) -> bool:
    """``send: <template>`` on ``channel:`` or the case's channel, with the customer's consent,
    within its frequency cap."""
    channel = params.get("channel") or run.data.get("channel")
    params["template"] = action.arg
    params["channel"] = channel
    if not consents(run, channel):
        _suppress(run, action, channel)
        fall_back(run, action, view, channel)
        return False
    cap = run.playbook.channels.get(str(channel)) if channel is not None else None
    if cap is None or cap.cap_per is None or cap.cap_max is None or action.arg in cap.cap_exempt:
        return True
    recent = tuple(t for t in run.sends.get(cap.name, ()) if t > run.now - cap.cap_per)
    sends = run.writable_sends()
    if len(recent) >= cap.cap_max:
        data = {"channel": cap.name, "template": action.arg, "source": action.source}
        if cap.cap_mode == "defer" and cap.cap_max > 0:
            # room again when the oldest send that counts leaves the window
            due = recent[-cap.cap_max] + cap.cap_per
            ref = action.source
            if channel != (action.params.get("channel") or run.data.get("channel")):
                ref = f"{action.source}#{channel}"  # a fallback's channel goes with it
            run.add_pending(due, "action", ref, () if action.keep else ("stage", run.epoch))
            data["until"] = run.iso(due)
        if run.tracing:
            run.note(
                "capped", action.source, f"{cap.cap_max} sends per {cap.cap_per:g}s on {cap.name}"
            )
        run.signal("capped", data=data)
        sends[cap.name] = recent
        return False
    sends[cap.name] = (*recent, run.now)[-cap.cap_max :]
    return True


def survey(
    run: ActionHost, action: ActionDef, params: dict[str, Any], view: Mapping[str, Any] | None
) -> bool:
    """``survey: csat|nps|ces``, on the case's channel unless the action names one, with the
    customer's consent."""
    params["survey"] = action.arg
    params.setdefault("channel", run.data.get("channel"))
    if not consents(run, params["channel"]):
        _suppress(run, action, params["channel"])
        fall_back(run, action, view, params["channel"])
        return False
    return True


def assign(
    run: ActionHost, action: ActionDef, params: dict[str, Any], view: Mapping[str, Any] | None
) -> bool:
    """``assign: <tier>`` sets the case's tier."""
    params["tier"] = action.arg
    params["from"] = run.tier
    run.tier = action.arg
    run.note_changed("tier")
    return True


def escalate(
    run: ActionHost, action: ActionDef, params: dict[str, Any], view: Mapping[str, Any] | None
) -> bool:
    """``escalate: next|<tier>``: ``next`` from no tier is the first tier; from the last tier it
    stays there and raises ``tier.exhausted``."""
    tiers = run.playbook.tiers
    old = run.tier
    if action.arg != "next":
        new = action.arg
    elif old is None or old not in tiers:
        new = tiers[0] if tiers else None
    elif tiers.index(old) + 1 < len(tiers):
        new = tiers[tiers.index(old) + 1]
    else:
        new = old
        run.signal("tier.exhausted", data={"tier": old})
    params["tier"] = new
    params["from"] = old
    run.tier = new
    run.note_changed("tier")
    return True


def set_fields(
    run: ActionHost, action: ActionDef, params: dict[str, Any], view: Mapping[str, Any] | None
) -> bool:
    """``set: {field: value}``: the values written are the action's ``values``."""
    params["values"] = run.apply_sets(action.sets, view, action.source)
    run.recompute_segments(view)
    return True


def task(
    run: ActionHost, action: ActionDef, params: dict[str, Any], view: Mapping[str, Any] | None
) -> bool:
    """``task: <name>``, its optional ``due`` made an instant (wall-clock from now)."""
    params["task"] = action.arg
    if "due" in params:
        params["due"] = run.iso(run.delay_due(run.now, _duration(params["due"]), None))
    return True


def emit_custom(
    run: ActionHost, action: ActionDef, params: dict[str, Any], view: Mapping[str, Any] | None
) -> bool:
    """``emit: <name>``: a custom action with the playbook's ``params``."""
    params["name"] = action.arg
    return True


VERBS: dict[str, Verb] = {
    "notify": notify,
    "send": send,
    "survey": survey,
    "assign": assign,
    "escalate": escalate,
    "set": set_fields,
    "task": task,
    "emit": emit_custom,
}
"""Each verb's function."""


@functools.lru_cache(maxsize=256)
def _duration(text: str) -> Duration:
    """A task's ``due`` parsed once per distinct text (the playbook's texts are few)."""
    from carepath.durations import parse_duration

    return parse_duration(text)
