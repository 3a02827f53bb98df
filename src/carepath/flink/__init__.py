"""carepath on Apache Flink (PyFlink): the same engine, keyed per case, with timers and checkpoints.

Install the extra (``pip install 'carepath[flink]'``; Java 17). ``import carepath.flink`` does
not import PyFlink: the pure logic lives in :mod:`carepath.flink.core` and the in-memory
comparison run in :mod:`carepath.flink.reference`; :mod:`carepath.flink.job` (``build``,
``configure``, ``run_file``) and :mod:`carepath.flink.function` import PyFlink when used.
See ``docs/scaling.md``.
"""

from __future__ import annotations

__all__ = ["available"]


def available() -> str | None:
    """``None`` when PyFlink and Java are usable, else why not (one line)."""
    import importlib.util
    import shutil

    if importlib.util.find_spec("pyflink") is None:
        return "PyFlink is not installed (pip install 'carepath[flink]')"
    import os
    from pathlib import Path

    java_home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (
        java_home and (Path(java_home) / "bin" / "java").exists()
    ):
        return "Java is not on PATH (PyFlink needs Java 11 or 17)"
    return None
