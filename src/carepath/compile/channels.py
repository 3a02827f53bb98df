"""The playbook's channels, compiled: calendars, frequency caps (``per``, ``max``, ``mode``,
``exempt``), the customer's consent per channel and the reserved events that change it (SPEC
§4.6, §10).

``consent.<channel>`` is a built-in boolean name for every channel a case can be on (those under
``channels`` and the values of an enum field ``channel``): it is ``consent_default`` until a
``customer.opted_out`` / ``customer.opted_in`` event sets it. :data:`OPT_EVENTS` are then
always mentioned by the playbook (the engine applies them before any handler), and
:data:`FEEDBACK_FAILED` is where a ``send``/``survey`` has a ``fallback``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from carepath.compile.ir import CONSENT_PREFIX, FEEDBACK_FAILED, OPT_EVENTS, ChannelDef
from carepath.durations import DurationError, parse_duration

if TYPE_CHECKING:
    from carepath.loading.source import Reporter
    from carepath.model import PlaybookSpec

__all__ = [
    "CONSENT_PREFIX",
    "FEEDBACK_FAILED",
    "OPT_EVENTS",
    "compile_channels",
    "consent_channels",
]

CheckRef = Callable[..., None]


def consent_channels(spec: PlaybookSpec) -> tuple[str, ...]:
    """The channels a case can be on: declared under ``channels``, then the values of an enum
    field ``channel`` that are not, in order."""
    out = list(spec.channels)
    field = spec.fields.get("channel")
    if field is not None and field.type == "enum":
        out += [v for v in field.values or () if v not in out]
    return tuple(out)


def compile_channels(
    spec: PlaybookSpec, rep: Reporter, calendar_names: list[str], check_ref: CheckRef
) -> dict[str, ChannelDef]:
    """Every declared channel's calendar and cap; problems go to ``rep``."""
    out: dict[str, ChannelDef] = {}
    templates = list(spec.templates)
    for name, ch in spec.channels.items():
        cal = ch.calendar if ch else "always"
        check_ref(cal, calendar_names, "CP303", "calendar", ("channels", name, "calendar"))
        per = mx = None
        mode = "drop"
        exempt: frozenset[str] = frozenset()
        cap = ch.frequency_cap if ch is not None else None
        if cap is not None:
            path = ("channels", name, "frequency_cap")
            try:
                d = parse_duration(cap.per)
                if d.months or d.business_days:
                    raise DurationError(
                        f"a frequency cap counts a window of fixed length, not {d.text!r}",
                        hint="use d, w or h: 30d rather than 1mo",
                    )
                per = d.seconds + d.days * 86400.0
                mx = cap.max
            except DurationError as exc:
                rep.add(exc.code, str(exc), (*path, "per"), hint=exc.hint)
            mode = cap.mode
            exempt = frozenset(cap.exempt)
            if templates:
                for i, template in enumerate(cap.exempt):
                    check_ref(template, templates, "CP306", "template", (*path, "exempt", i))
        out[name] = ChannelDef(name, cal, bool(ch and ch.automated), per, mx, mode, exempt)
    return out
