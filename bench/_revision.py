"""An older git revision of carepath, imported in this process beside the current one, so that a
bench can time both on the same data in the same run (``--against REV``).

The revision's ``src/carepath`` is extracted with ``git archive`` and imported as ``carepath_<rev>``
(its absolute imports of ``carepath`` rewritten to that name). Its native core is its own: when the
revision's ``core/`` differs from this checkout's, it is built with cargo (release, cached under
``core/target/against/<tree>``; a minute the first time) and loaded beside the installed one as
``carepath_core_<rev>``, the revision's imports of ``carepath_core`` rewritten to that name. A
change to the core is then timed against the core it replaces, not against itself. When the
revision's ``core/`` is the same, both share the installed ``carepath_core``.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import os
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
    """Git revision ``rev``'s package, imported as ``carepath_<rev>``, with its own native core."""
    name = "carepath_" + re.sub(r"\W", "_", rev)
    if name in sys.modules:
        return sys.modules[name]
    core = _revision_core(rev, name)
    tmp = archive(rev, "src/carepath", "examples")
    (tmp / "src" / "carepath").rename(tmp / name)
    for path in (tmp / name).rglob("*.py"):
        text = _ABSOLUTE.sub(
            lambda m: m.group(0).replace("carepath", name), path.read_text(encoding="utf-8")
        )
        if core is not None:
            text = _CORE.sub(core, text)
        path.write_text(text, encoding="utf-8")
    sys.path.insert(0, str(tmp))
    return importlib.import_module(name)


_CORE = re.compile(r"\bcarepath_core\b")


def archive(rev: str, *paths: str, into: Path | None = None) -> Path:
    """``paths`` of git revision ``rev`` extracted (``git archive``) under ``into``, by default
    a new temporary folder; that folder."""
    where = Path(tempfile.mkdtemp(prefix="carepath-bench-")) if into is None else into
    data = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, *paths], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(where, filter="data")
    return where


def _tree(rev: str) -> str:
    """The git tree id of ``core/`` at ``rev`` (empty when it has none)."""
    out = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", f"{rev}:core"], capture_output=True, text=True
    )
    return out.stdout.strip() if out.returncode == 0 else ""


def _revision_core(rev: str, name: str) -> str | None:
    """The module name of ``rev``'s own native core, built and loaded; ``None`` when ``rev`` has
    no ``core/`` or the same one as this checkout (the installed core serves both)."""
    lib = core_library(rev)
    if lib is None:
        return None
    module = f"carepath_core_{name.removeprefix('carepath_')}"
    load_core(module, lib)
    CORES[name] = (module, str(lib))
    return module


def core_library(rev: str) -> Path | None:
    """The native core library of revision ``rev``, built with cargo when not built yet (cached
    under ``core/target/against/<tree>``); ``None`` when ``rev`` has no ``core/`` or the same one
    as this checkout (the installed core serves both)."""
    tree = _tree(rev)
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "core/src", "core/Cargo.toml"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    head = _tree("HEAD")
    if not tree or (tree == head and not dirty):
        return None
    target = ROOT / "core" / "target" / "against" / tree[:12]
    lib = target / "release" / "libcarepath_core.so"
    if not lib.exists():
        src = archive(rev, "core")
        print(f"building the native core of {rev} (cargo, release) …", file=sys.stderr)
        subprocess.run(
            [
                "cargo",
                "build",
                "--release",
                "--quiet",
                "--features",
                "extension-module",
                "--manifest-path",
                str(src / "core" / "Cargo.toml"),
            ],
            check=True,
            env={**os.environ, "CARGO_TARGET_DIR": str(target)},
        )
    return lib


#: ``carepath_<rev>`` → (its core's module name, the library's path): what a worker process of a
#: bench (``bench_postgres.py``) loads before it imports the revision (:func:`load_core`).
CORES: dict[str, tuple[str, str]] = {}


def load_core(module: str, lib: str | Path) -> None:
    """Load the native core library ``lib`` as ``module`` (a revision's own core, beside the
    installed one)."""
    if module in sys.modules:
        return
    # the library's init function is ``PyInit_carepath_core``: load it under that name, keep it
    # under another (a second file is a second module: the installed core is left as it is)
    # (loading it files it as ``carepath_core`` too: the installed one is put back)
    try:
        installed: ModuleType | None = importlib.import_module("carepath_core")
    except ImportError:
        installed = None
    spec = importlib.util.spec_from_file_location("carepath_core", lib)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {lib}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules[module] = mod
    if installed is not None:
        sys.modules["carepath_core"] = installed
    else:
        sys.modules.pop("carepath_core", None)


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
