"""The ``carepath`` command.

Design
------
``cli/app.py`` holds only the frame: the top-level parser, sub-command discovery and the error
boundary. Each sub-command lives in its own module ``carepath/cli/<name>.py``, which defines::

    HELP = "one line for `carepath --help`"        # optional
    ORDER = 10                                      # optional: position in the help listing

    def register(subparsers: argparse._SubParsersAction) -> None:
        p = subparsers.add_parser("name", help=HELP, description=...)
        p.add_argument(...)
        p.set_defaults(func=run)

    def run(args: argparse.Namespace) -> int:       # the exit code
        from carepath.engine.engine import Engine                  # heavy imports go *inside* the function
        ...

Modules are found with :func:`pkgutil.iter_modules` over the package folder, so adding a
command is adding one file; nothing here needs editing. A command module must import nothing
heavy at module level: ``carepath --help`` imports every command module and must stay fast
(it never imports pydantic).

Logging (SPEC §9): every command takes ``--log-level`` and ``--log-format`` (``cli/logs.py``
adds them to every parser, and :func:`main` installs the handler before the command runs; with
``--log-format json`` standard error itself is wrapped, so every line on it is JSON).

Exit codes (SPEC §8): each command returns its own (``validate``: 0 ok, 1 findings that fail,
2 bad arguments or unreadable paths). Across all commands: 2 for usage errors (argparse) and for
an engine backend that cannot run here (``CAREPATH_ENGINE``: :class:`~carepath.errors.BackendError`), 3 for
an internal error — an unexpected exception is caught here and printed as one line on standard
error, never as a traceback (set ``CAREPATH_DEBUG=1`` to see the traceback), and 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import pkgutil
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from carepath.cli import logs
from carepath.errors import BackendError

__all__ = ["EXIT_INTERNAL", "build_parser", "main"]

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


#: Modules of the package that are not commands.
_NOT_COMMANDS = frozenset({"app", "common", "logs", "progress"})


def _command_modules() -> list[str]:
    """Names of the command modules of the package (every module but the frame's own)."""
    here = str(Path(__file__).parent)
    return sorted(m.name for m in pkgutil.iter_modules([here]) if m.name not in _NOT_COMMANDS)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every discovered sub-command registered."""
    from carepath import __version__

    parser = argparse.ArgumentParser(
        prog="carepath",
        description="Validate, simulate and run customer-care playbooks.",
        epilog="Run `carepath COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"carepath {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    mods = []
    for name in _command_modules():
        mod = importlib.import_module(f".{name}", __package__)
        if hasattr(mod, "register"):
            mods.append((getattr(mod, "ORDER", 100), name, mod))
    for _, _, mod in sorted(mods, key=lambda m: (m[0], m[1])):
        mod.register(sub)
    for p in sub.choices.values():  # module docstrings reused as descriptions: plain words
        p.description = plain_help(p.description)
        for action in p._actions:
            action.help = plain_help(action.help)
    logs.add_arguments(parser)
    return parser


_SPEC_REF = re.compile(r"\s*\((?:see )?SPEC §[^)]*\)|\s*SPEC §[\d.,§ ]*\d")
_LEAD = re.compile(r"\A``carepath [^`]*``:\s*")
_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr):`~?([^`]*)`")


def plain_help(text: str | None) -> str | None:
    """Help text for people: no spec references, no reStructuredText markup.

    >>> plain_help("``carepath run PLAYBOOK``: the runtime on a store (SPEC §7). See :func:`~x.y` and ``--check``.")
    'The runtime on a store. See y and --check.'
    """
    if not text:
        return text
    out = _LEAD.sub("", text)
    out = _SPEC_REF.sub("", out)
    out = _ROLE.sub(lambda m: m.group(1).rsplit(".", 1)[-1], out)
    out = out.replace("``", "")
    if out and out[0].islower() and text.startswith("``carepath"):
        out = out[0].upper() + out[1:]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``carepath`` command; returns the exit code (``sys.exit`` by the script)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not logs.wants_json(argv):
        return _main(argv)
    real = sys.stderr
    wrapped = logs.JsonLines(real)
    sys.stderr = wrapped
    try:
        return _main(argv, stderr=real)
    finally:
        wrapped.close_line()
        sys.stderr = real


def _main(argv: list[str], stderr: Any = None) -> int:
    handler = None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        fmt = getattr(args, "log_format", "text")
        handler = logs.install(
            getattr(args, "log_level", "warning"), fmt, stream=stderr if fmt == "json" else None
        )
        args.log_level_given = hasattr(args, "log_level")
        func = getattr(args, "func", None)
        if func is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        return int(func(args))
    except SystemExit as exc:  # argparse: --help (0) and usage errors (2)
        code = exc.code
        return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_USAGE)
    except KeyboardInterrupt:
        print("carepath: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `carepath validate … | head`
        with contextlib.suppress(OSError):
            sys.stdout = Path(os.devnull).open("w")  # noqa: SIM115 - silences the flush at exit
        return EXIT_OK
    except BackendError as exc:  # CAREPATH_ENGINE (or backend=) that cannot run here: a setting
        print(f"carepath: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # the error boundary: no traceback reaches a user
        if os.environ.get("CAREPATH_DEBUG"):
            import traceback

            traceback.print_exc()
        print(internal_error(exc), file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        if handler is not None:
            logs.uninstall(handler)


def internal_error(exc: BaseException) -> str:
    """The one-line message for an unexpected exception."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return (
        f"carepath: internal error: {type(exc).__name__}{': ' + text if text else ''} "
        "(this is a bug in carepath; set CAREPATH_DEBUG=1 to see the traceback)"
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
