"""The bridge to the native core (``carepath_core``, distribution ``carepath-core``).

:mod:`.lower` turns a compiled playbook into the plain data the core reads; :mod:`.backend`
attaches the core to an :class:`~carepath.engine.Engine` (``backend="auto"|"native"``).
"""

from __future__ import annotations

from carepath._native.backend import BACKENDS, attach
from carepath._native.lower import Unsupported, lower

__all__ = ["BACKENDS", "Unsupported", "attach", "lower"]


def available() -> bool:
    """Whether the core is installed."""
    try:
        import carepath_core  # noqa: F401
    except ImportError:
        return False
    return True
