"""The personal data of a playbook (SPEC §10): the paths declared ``pii: true``."""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carepath.model import PlaybookSpec

__all__ = ["personal_data"]


def personal_data(spec: PlaybookSpec) -> dict[str, Any]:
    """``pii_fields`` (case fields), ``pii_event_fields`` (event type → payload fields) and
    ``retention`` (kind → duration) of ``spec``, as the keyword arguments of :class:`~carepath.compile.ir.Playbook`."""
    events = {
        ev: frozenset(n for n, f in payload.items() if f.pii)
        for ev, payload in spec.events.items()
        if payload and any(f.pii for f in payload.values())
    }
    kept = spec.retention.model_dump(exclude_none=True) if spec.retention else {}
    return {
        "retention": MappingProxyType(kept),
        "pii_fields": frozenset(n for n, f in spec.fields.items() if f.pii),
        "pii_event_fields": MappingProxyType(events),
    }
