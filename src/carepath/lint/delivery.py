"""Checks of delivery (SPEC §10): CP620 a ``send``/``survey`` to a channel nobody consents to by
default, CP621 a frequency cap that can never let a message through. (A ``fallback`` to an
undeclared channel is an unknown reference, CP304, reported by the compiler.)"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from carepath.compile.ir import CONSENT_PREFIX
from carepath.diagnostics import path_str

if TYPE_CHECKING:
    from carepath.compile.ir import ActionDef, Playbook
    from carepath.loading.source import Reporter

__all__ = ["check_delivery"]

Path = tuple[str | int, ...]


def _default_consent(pb: Playbook) -> dict[str, bool]:
    """``consent.<channel>`` when a case begins: ``consent_default``, or the literal `start.set`
    gives it."""
    out = dict.fromkeys(pb.consent_channels, pb.consent_default)
    for s in pb.start.sets:
        if s.field.startswith(CONSENT_PREFIX) and s.expr is None and isinstance(s.literal, bool):
            out[s.field[len(CONSENT_PREFIX) :]] = s.literal
    return out


def check_delivery(pb: Playbook, actions: Iterable[tuple[ActionDef, Path]], rep: Reporter) -> None:
    """CP620 and CP621 over every action of ``pb`` (with its node path)."""
    consent = _default_consent(pb)
    reported: set[str] = set()
    capped: dict[str, Path] = {}
    for a, path in actions:
        if a.verb not in ("send", "survey"):
            continue
        channel = a.params.get("channel")
        channels = [channel] if isinstance(channel, str) else list(consent)
        reach = [*channels, *a.fallback]
        silent = [ch for ch in reach if not consent.get(ch, pb.consent_default)]
        if channels and len(silent) == len(reach):
            where = f"channel {channel!r}" if isinstance(channel, str) else "the case's channel"
            if where not in reported:
                reported.add(where)
                rep.add(
                    "CP620",
                    f"this {a.verb} goes to {where}, and no customer consents to "
                    f"{'it' if isinstance(channel, str) else 'any channel'}"
                    + (" or its fallbacks" if a.fallback else "")
                    + " by default: it is suppressed (send.suppressed) until the customer opts in",
                    (*path, a.verb),
                    hint="customers opt in with a `customer.opted_in {channel}` event; or set "
                    "`consent_default: true`, or add a `fallback` channel they consent to",
                )
        if a.verb == "send":
            for ch in channels:
                cap = pb.channels.get(ch)
                if (
                    cap is not None
                    and cap.cap_max == 0
                    and a.arg not in cap.cap_exempt
                    and ch not in capped
                ):
                    capped[ch] = path
    for ch, path in capped.items():
        cap = pb.channels[ch]
        rep.add(
            "CP621",
            f"the frequency cap of channel {ch!r} allows 0 sends per window, so a send such as "
            f"{path_str(path)} can never go out"
            + (" (`mode: defer` holds it forever)" if cap.cap_mode == "defer" else ""),
            ("channels", ch, "frequency_cap", "max"),
            hint="raise `max`, or list the templates that must go out under `exempt`",
        )
