"""The pure, deterministic engine (SPEC §4): :class:`Engine` and its :class:`Step`."""

from carepath.engine.engine import Engine, Step

__all__ = ["Engine", "Step"]
