"""Both engine backends stepped side by side: :class:`Both` runs the reference and ``auto`` (the
native core where it is installed and supports the playbook) on the same input and asserts
every step agrees byte for byte (SPEC §4.1), errors included."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from carepath import Engine, Event, loads
from carepath.errors import CarepathError, CaseError


def _dump(step: Any) -> tuple[Any, ...]:
    return (
        step.state.to_json(),
        [a.to_dict() for a in step.actions],
        [s.to_dict() for s in step.signals],
        [d.to_dict() for d in step.deadlines],
    )


def runs_natively(text: str) -> bool | None:
    """Whether the native core runs this playbook: ``None`` when the core is not installed.

    Asked of ``backend="native"`` so the answer does not depend on ``CAREPATH_ENGINE`` (CI reruns
    the engine tests with ``CAREPATH_ENGINE=python``, where ``auto`` is the reference)."""
    try:
        import carepath_core  # noqa: F401
    except ImportError:
        return None
    try:
        return Engine(loads(text), backend="native").backend == "native"
    except CarepathError:
        return False


class Both:
    """The reference and the ``auto`` engine, stepped together; every step must agree."""

    def __init__(self, text: str) -> None:
        pb = loads(text)
        self.text = text
        self.engines = [Engine(pb, backend="python"), Engine(pb)]
        self.backend = self.engines[1].backend
        """What ``auto`` runs for this playbook: ``native`` or ``python``."""
        self.states: list[Any] = []

    def start(self, event: Event) -> Any:
        steps = [e.start(event) for e in self.engines]
        return self._agree(steps)

    def handle(self, event: Event) -> Any:
        results: list[Any] = []
        for engine, state in zip(self.engines, self.states, strict=True):
            try:
                results.append(engine.handle(state, event))
            except CaseError as exc:
                results.append(exc)
        if isinstance(results[0], Exception):
            assert type(results[0]) is type(results[1])
            assert str(results[0]) == str(results[1])
            raise results[0]
        return self._agree(results)

    def advance(self, now: datetime) -> Any:
        return self._agree(
            [e.advance(s, now) for e, s in zip(self.engines, self.states, strict=True)]
        )

    def _agree(self, steps: list[Any]) -> Any:
        assert _dump(steps[0]) == _dump(steps[1])
        self.states = [s.state for s in steps]
        return steps[0]
