"""What one unit of work counted, and the rejections it has to log once it commits."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

__all__ = ["Tally"]

log = logging.getLogger("carepath.runtime")


class Tally(Counter[str]):
    """Counts (``applied``, ``rejected``, ``actions``…) of one unit of work, and the events it
    rejected. A unit that runs again on contention starts from :meth:`clear`; :meth:`log` logs the
    rejections after the commit, so each is logged once (SPEC §9: at WARNING, with the reason)."""

    def __init__(self) -> None:
        super().__init__()
        self.rejections: list[tuple[str | None, str, str, tuple[tuple[str, str], ...]]] = []

    def clear(self) -> None:
        """Forget everything (the unit runs again)."""
        super().clear()
        self.rejections.clear()

    def reject(
        self, event_id: str | None, reason: str, message: str, cases: Sequence[tuple[str, str]] = ()
    ) -> None:
        """Count a rejected event and keep it for :meth:`log`."""
        self["rejected"] += 1
        self.rejections.append((event_id, reason, message, tuple(cases)))

    def log(self) -> None:
        """Log every rejection kept, at WARNING."""
        if not self.rejections or not log.isEnabledFor(logging.WARNING):
            return
        for event_id, reason, message, cases in self.rejections:
            extra: dict[str, Any] = {"event_id": event_id}
            if cases:
                extra["playbook"], extra["case"] = cases[0]
            log.warning(
                "rejected event %s: %s: %s", event_id or "(no id)", reason, message, extra=extra
            )
