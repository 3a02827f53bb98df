"""An older git revision of carepath, imported in this process beside the current one, so that a
bench can time both on the same data in the same run (``--against REV``).

The revision's ``src/carepath`` is extracted with ``git archive`` and imported as ``carepath_<rev>``
(its absolute imports of ``carepath`` rewritten to that name). Both share the installed native core
(``carepath_core``): a revision whose Python side no longer matches it fails at import or at its
first native step, and the bench says so instead of a figure.
"""

from __future__ import annotations

import importlib
import io
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

_ABSOLUTE = re.compile(
    r"\bcarepath\.(?=[A-Za-z_{])|\b(?<=from )carepath(?= import)|\b(?<=import )carepath\b"
)


def import_revision(rev: str) -> ModuleType:
    """Git revision ``rev``'s package, imported as ``carepath_<rev>``."""
    name = "carepath_" + re.sub(r"\W", "_", rev)
    if name in sys.modules:
        return sys.modules[name]
    tmp = Path(tempfile.mkdtemp(prefix="carepath-bench-"))
    data = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "src/carepath", "examples"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(tmp, filter="data")
    (tmp / "src" / "carepath").rename(tmp / name)
    for path in (tmp / name).rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        path.write_text(
            _ABSOLUTE.sub(lambda m: m.group(0).replace("carepath", name), text), encoding="utf-8"
        )
    sys.path.insert(0, str(tmp))
    return importlib.import_module(name)


def example(pkg: ModuleType, name: str) -> Path:
    """``examples/<name>`` as revision ``pkg`` has it (its playbooks may lack later keys): beside
    the extracted package, or this checkout's."""
    beside = Path(str(pkg.__file__)).resolve().parent.parent / "examples"
    return (beside if pkg.__name__ != "carepath" and beside.is_dir() else ROOT / "examples") / name


def attr(pkg: ModuleType, *paths: str) -> Any:
    """The first of ``paths`` (``"runtime.clock.ManualClock"``…) that ``pkg`` has: modules moved
    between revisions."""
    for path in paths:
        mod, _, name = path.rpartition(".")
        try:
            where = importlib.import_module(f"{pkg.__name__}.{mod}") if mod else pkg
            return getattr(where, name)
        except (ImportError, AttributeError):
            continue
    raise AttributeError(f"{pkg.__name__} has none of {', '.join(paths)}")


def cli_main(pkg: ModuleType) -> Callable[[Sequence[str]], int]:
    """The ``carepath`` command of ``pkg`` as a function of its arguments."""
    main: Callable[[Sequence[str]], int] = attr(pkg, "cli.app.main", "cli.main")
    return main


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """``(wall s, CPU s of this process, result)`` of ``fn()``."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w, time.process_time() - c, out


def packages(against: Sequence[str]) -> list[tuple[str, ModuleType]]:
    """``[("now", carepath), (rev, carepath_<rev>)…]``."""
    import carepath

    return [("now", carepath), *((rev, import_revision(rev)) for rev in against)]
