"""The bridge to the native core (``carepath_core``, distribution ``carepath-core``).

:mod:`.lower` turns a compiled playbook into the plain data the core reads; :mod:`.backend`
attaches the core to an :class:`~carepath.engine.Engine` (``backend="auto"|"native"``).
"""

from __future__ import annotations

from typing import Any

from carepath._native.backend import BACKENDS, attach
from carepath._native.lower import Unsupported, lower

__all__ = ["BACKENDS", "Unsupported", "attach", "core_function", "lower"]


def available() -> bool:
    """Whether the core is installed."""
    try:
        import carepath_core  # noqa: F401
    except ImportError:
        return False
    return True


def core_function(name: str) -> Any:
    """The core's function ``name`` (``carepath_core.<name>``), or None when the core is not
    installed or is older than that function: the caller then does the work in Python."""
    try:
        import carepath_core
    except ImportError:
        return None
    return getattr(carepath_core, name, None)
