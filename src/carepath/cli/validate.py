"""``carepath validate PATH…``: validate playbooks.

Paths are files or folders; ``-`` reads one playbook from standard input. A file named on the
command line is always validated (with ``--only-playbooks``, a YAML file without a top-level
``carepath:`` key and a ``*.test.yaml`` are skipped, as the pre-commit hook does). A folder is
searched recursively for ``*.yaml`` / ``*.yml``, skipping hidden folders (``.git``…), scenario
files (``*.test.yaml``) and YAML files that are not playbooks (no top-level ``carepath:`` key),
so ``carepath validate .`` works in a repository that holds other YAML too. Project settings
(ignored warnings, per-file severities) come from ``[tool.carepath]`` in ``pyproject.toml`` or
from ``.carepath.toml`` (:mod:`carepath.lint.settings`).

Exit codes: 0 no error (warnings allowed), 1 any error — unsafe or broken YAML included — or,
with ``--strict``, any warning; 2 bad arguments or a path that cannot be read; 3 an internal
error (a bug: the other files are still checked and reported).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carepath.diagnostics import Diagnostic

HELP = "validate playbooks (files or folders)"
ORDER = 10
FORMATS = ("text", "json", "github", "sarif", "junit", "gitlab")
DESCRIPTION = (
    "Validate playbooks: files or folders (searched for playbooks, skipping scenario tests and "
    "YAML that is not a playbook); '-' reads one from standard input. Warnings can be ignored or "
    "made errors per file in [tool.carepath] of pyproject.toml or in .carepath.toml."
)
_PLAYBOOK = re.compile(rb"^['\"]?carepath['\"]?[ \t]*:", re.M)
_SUFFIXES = (".yaml", ".yml")
_SCENARIO = (".test.yaml", ".test.yml")


def register(sub: Any) -> None:
    """Add the ``validate`` sub-command."""
    p = sub.add_parser(
        "validate",
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes: 0 ok, 1 errors (or warnings with --strict), 2 bad arguments or "
        "unreadable path, 3 internal error",
    )
    p.add_argument(
        "paths", nargs="+", metavar="PATH", help="playbook files or folders; - for standard input"
    )
    p.add_argument(
        "--format",
        "-f",
        choices=FORMATS,
        default="text",
        help="output format (default: text); gitlab: Code Quality JSON",
    )
    p.add_argument(
        "--only-playbooks",
        action="store_true",
        help="skip named files that are not playbooks (no top-level carepath: key) or are "
        "scenario tests (for pre-commit)",
    )
    p.add_argument(
        "--stdin-filename",
        metavar="NAME",
        default="<stdin>",
        help="the file name to report for '-' (default <stdin>)",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="settings file (default: .carepath.toml or pyproject.toml with [tool.carepath], "
        "here or above)",
    )
    p.add_argument("--no-config", action="store_true", help="use no settings file")
    p.add_argument("--strict", action="store_true", help="warnings fail too")
    p.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the text format (auto: on a terminal, unless NO_COLOR is set)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no summary line on standard error")
    p.set_defaults(func=run)


def find_playbooks(path: str, errors: list[OSError] | None = None) -> Iterator[str]:
    """Playbook files under a folder (see the module docstring), in a stable order; a folder that
    cannot be read is appended to ``errors`` (without it, skipped)."""
    for root, dirs, files in os.walk(path, onerror=None if errors is None else errors.append):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.endswith(_SUFFIXES) or name.endswith(_SCENARIO):
                continue
            full = str(Path(root) / name)
            if is_playbook(full):
                yield full


def is_playbook(path: str) -> bool:
    """Whether a YAML file has a top-level ``carepath:`` key (read from its first 64 KiB)."""
    from carepath.loading.files import read_head

    try:  # regular files only: a FIFO named x.yaml must not block the walk
        head = read_head(path, 1 << 16)
    except OSError:
        return True  # let validation report that it cannot be read
    return bool(_PLAYBOOK.search(head))


def use_color(mode: str, stream: Any) -> bool:
    """Colour for ``--color auto``: a terminal, ``NO_COLOR`` unset, ``TERM`` not ``dumb``."""
    if mode != "auto":
        return mode == "always"
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _settings(args: argparse.Namespace) -> Any:
    """The project settings, or None; raises SettingsError."""
    from carepath.lint.settings import find_settings, load_settings

    if args.no_config:
        return None
    path = args.config or find_settings(".")
    return None if path is None else load_settings(path)


def _files(args: argparse.Namespace) -> tuple[list[str], bool]:
    """The files to check (``-`` kept as is), and whether a path could not be read."""
    files: list[str] = []
    usage_problem = False
    for path in args.paths:
        if path == "-":
            files.append(path)
        elif Path(path).is_dir():
            unreadable: list[OSError] = []
            found = list(find_playbooks(path, unreadable))
            for exc in unreadable:  # exit 2: a path that cannot be read
                print(
                    f"carepath: {exc.filename or path}: cannot read the folder: {exc.strerror or exc}",
                    file=sys.stderr,
                )
                usage_problem = True
            if not found and not unreadable and not args.quiet:
                print(f"carepath: no playbooks in {path}", file=sys.stderr)
            files.extend(found)
        elif Path(path).is_file():
            if args.only_playbooks and (path.endswith(_SCENARIO) or not is_playbook(path)):
                continue
            files.append(path)
        else:
            what = (
                "not a regular file or folder" if Path(path).exists() else "no such file or folder"
            )
            print(f"carepath: {path}: {what}", file=sys.stderr)
            usage_problem = True
    return files, usage_problem


def run(args: argparse.Namespace) -> int:
    """Validate every path; print the findings in the chosen format; return the exit code."""
    import time

    from carepath.cli.app import internal_error
    from carepath.diagnostics import format_diagnostics
    from carepath.lint.settings import SettingsError
    from carepath.loading.loader import check, check_file

    try:
        settings = _settings(args)
    except SettingsError as exc:
        print(f"carepath: {exc}", file=sys.stderr)
        return 2
    files, usage_problem = _files(args)
    diagnostics: list[Diagnostic] = []
    sources: dict[str, str] = {}
    seconds: dict[str, float] = {}
    internal = False
    seen: set[str] = set()
    checked: list[str] = []
    for f in files:
        if f in seen:
            continue
        seen.add(f)
        name = args.stdin_filename if f == "-" else f
        checked.append(name)
        t0 = time.perf_counter()  # JUnit's time: measured, never asserted
        try:
            if f == "-":
                res = check(sys.stdin.read(), file=name)
            else:
                res = check_file(f)
        except Exception as exc:  # a bug: report it, check the other files
            print(f"{name}: {internal_error(exc)}", file=sys.stderr)
            internal = True
            continue
        seconds[name] = time.perf_counter() - t0
        if any(d.code == "CP100" for d in res.diagnostics):
            usage_problem = True
        diagnostics.extend(res.diagnostics)
        sources.update(res.sources)
    if settings is not None:
        diagnostics = settings.apply(diagnostics)
    out = format_diagnostics(
        diagnostics,
        args.format,
        sources=sources,
        files=checked,
        color=args.format == "text" and use_color(args.color, sys.stdout),
        seconds=seconds,
    )
    if args.format in ("json", "gitlab"):
        sys.stdout.write(out + "\n")
    elif out:
        sys.stdout.write(out)
    sys.stdout.flush()
    n_err = sum(1 for d in diagnostics if d.severity == "error")
    n_warn = len(diagnostics) - n_err
    if not args.quiet:
        print(
            f"carepath: {len(checked)} playbook(s) checked: {n_err} error(s), {n_warn} warning(s)",
            file=sys.stderr,
        )
    if internal:
        return 3
    if usage_problem:
        return 2
    if n_err or (args.strict and n_warn):
        return 1
    return 0
