"""The public surface of ``import carepath``: pinned, so a change to it is a deliberate one."""

from __future__ import annotations

import subprocess
import sys

import pytest

import carepath
from carepath import errors

PUBLIC = {
    # the playbook
    "load", "loads", "Playbook", "Diagnostic", "Calendar",
    # the engine
    "Engine", "Step", "Event", "CaseState", "Clock", "Action", "Signal", "Deadline",
    # the error tree
    "CarepathError", "DefinitionError", "PlaybookError", "YamlError", "CalendarError", "NoOpenTime",
    "ExpressionError", "DurationError", "TargetError", "MetricError", "ScenarioError", "CaseError",
    "EventOutOfOrder", "InvalidEvent", "PlaybookMismatch", "SignalLoop", "EventLogError", "StoreError", "BackendError",
}  # fmt: skip


def test_exported_names_are_pinned() -> None:
    assert set(carepath.__all__) == PUBLIC
    assert carepath.__all__ == sorted(carepath.__all__)
    assert set(carepath._WHERE) == PUBLIC


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_every_exported_name_resolves(name: str) -> None:
    value = getattr(carepath, name)
    assert getattr(value, "__name__", name) == name


def test_every_error_has_the_one_root() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.CarepathError), name
        assert name in PUBLIC, f"{name} is in carepath.errors but not exported by carepath"


def test_modules_raise_the_errors_module_classes() -> None:
    from carepath.drivers.replay import EventLogError
    from carepath.durations import DurationError
    from carepath.loading.yaml import YamlError
    from carepath.metrics import MetricError, TargetError
    from carepath.runtime import StoreError
    from carepath.testing.scenario import ScenarioError

    assert (DurationError, YamlError, TargetError, MetricError, EventLogError, StoreError, ScenarioError) == (
        errors.DurationError, errors.YamlError, errors.TargetError, errors.MetricError,
        errors.EventLogError, errors.StoreError, errors.ScenarioError,
    )  # fmt: skip


def test_a_store_failure_is_caught_as_a_carepath_error() -> None:
    from carepath.runtime import open_store

    with pytest.raises(carepath.CarepathError):
        open_store("nosuch://x")


def test_import_carepath_stays_light() -> None:
    code = "import sys, carepath; print(sorted(m for m in ('pydantic', 'yaml', 'holidays', 'tqdm') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        carepath.nope  # noqa: B018
