"""The names conditions read besides fields and the event (SPEC §2.3): ``stage``, ``segment``,
``segments``, ``tier``, ``channel``, ``assignee``, ``now``, ``consent.<channel>`` (SPEC §10) and
``sla.<name>.status|breached|elapsed|remaining|due``.

:class:`CaseScope` is a base of the step's run: the run answers these names itself, computed when
read, so it holds no separate scope object that points back at it (such a cycle would leave
every step's working copy to the cyclic garbage collector).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from carepath._instants import dt
from carepath.engine.clocks import ClockHost, WorkingClock
from carepath.state import Clock

__all__ = ["CaseScope", "NullScope", "ScopeHost"]


class ScopeHost(ClockHost, Protocol):
    """What the specials are read from: the run."""

    segment: str | None
    segments: tuple[str, ...]
    clocks: dict[str, WorkingClock]
    frozen: Mapping[str, Clock]

    def now_dt(self) -> datetime: ...


class CaseScope(Mapping[str, Any]):
    """The specials of a condition, read from the run this class is a base of (a mixin)."""

    __slots__ = ()

    def get(self: ScopeHost, name: str, default: Any = None) -> Any:  # noqa: C901 - one flat branch per name root (SPEC §3.3); the hot path of every condition
        """The value of the special ``name`` now, or ``default``."""
        if name == "stage":
            return self.stage
        if name == "segment":
            return self.segment
        if name == "segments":
            return list(self.segments)
        if name == "tier":
            return self.tier
        if name == "now":
            return self.now_dt()
        if name == "channel" or name == "assignee":
            return self.data.get(name)
        if not name.startswith("sla."):
            if name.startswith("consent."):  # built-in: the playbook's default until set
                value = self.data.get(name)
                return self.playbook.consent_default if value is None else value
            return default
        parts = name.split(".")
        clock: WorkingClock | Clock | None = None
        if len(parts) == 3:
            clock = self.clocks.get(parts[1]) or self.frozen.get(parts[1])
        if clock is None:
            return default
        attr = parts[2]
        if attr == "status":
            return clock.status
        if attr == "breached":
            return clock.breached
        if isinstance(clock, WorkingClock):
            clock.catch_up(self)
            if attr == "due":
                due = clock.due(self)
                return None if due is None else dt(due, self.tz)
        elif attr == "due":
            return None if clock.due_s is None else dt(clock.due_s, self.tz)
        if attr == "elapsed":
            return timedelta(seconds=clock.elapsed_s)
        if attr == "remaining":
            return (
                None
                if clock.target_s is None
                else timedelta(seconds=clock.target_s - clock.elapsed_s)
            )
        return default

    def __getitem__(self: ScopeHost, name: str) -> Any:
        return CaseScope.get(self, name)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


class _NullScope(Mapping[str, Any]):
    """No specials: the scope of ``start.when`` and ``start.key``, read before a case exists."""

    __slots__ = ()

    def get(self, name: str, default: Any = None) -> Any:
        return default

    def __getitem__(self, name: str) -> Any:
        return None

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


NullScope: Mapping[str, Any] = _NullScope()
