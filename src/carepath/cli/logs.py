"""Logging for every command (SPEC §9): ``--log-level`` and ``--log-format``, one setup.

Every command takes ``--log-level debug|info|warning|error`` (in any case; default ``warning``,
``info`` for ``run --follow``) and ``--log-format text|json``, before or after its name. Records
of the ``carepath.*`` loggers (and of the libraries they use) go to standard error:

* ``text``: ``2027-03-01 09:00:00,000 WARNING carepath.runtime: rejected event e7: …``;
* ``json``: one JSON object a line, ``{"ts", "level", "logger", "msg"}`` and whichever of
  ``playbook, case, event_id, action_id`` the record carries (``exc`` holds a traceback). Every
  other line a command writes to standard error (a summary, a one-line error) is wrapped the same
  way, as a record of the logger ``carepath.cli``: level ``error`` for the lines that start with
  ``carepath:`` (the commands' errors; not ``validate``'s summary) or ``carepath COMMAND: error:``
  (a usage error), ``info`` for the rest.

>>> import io, json, logging
>>> err = io.StringIO()
>>> handler = install("info", "json", stream=err)
>>> logging.getLogger("carepath.runtime").warning("rejected event %s", "e7", extra={"event_id": "e7"})
>>> record = json.loads(err.getvalue())
>>> record["level"], record["logger"], record["msg"], record["event_id"]
('warning', 'carepath.runtime', 'rejected event e7', 'e7')
>>> uninstall(handler)
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from collections.abc import Sequence
from typing import IO, Any

from carepath._terminal import json_term_safe, term_safe

__all__ = [
    "CONTEXT",
    "FORMATS",
    "LEVELS",
    "TEXT_FORMAT",
    "JsonFormatter",
    "JsonLines",
    "TextFormatter",
    "add_arguments",
    "install",
    "set_level",
    "uninstall",
    "wants_json",
]

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
CONTEXT = ("playbook", "case", "event_id", "action_id")
"""The record attributes a JSON line carries when a log call gives them (``extra=``)."""

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""The text format of the log lines on standard error."""

#: the commands' error lines (``carepath: …``, but for validate's summary) and argparse's
#: (``carepath run: error: …``)
_ERROR_LINE = re.compile(r"carepath:(?! \d+ playbook\(s\) checked: )|carepath(?: [\w-]+)+: error: ")

#: libraries whose chatter below ERROR is noise for an operator (psycopg logs every rolled-back
#: connection of contending workers; the store runs those units again) unless debugging
_NOISY = ("psycopg", "psycopg.pool")


def _choice(options: Sequence[str], what: str) -> Any:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in options:
            raise argparse.ArgumentTypeError(
                f"{what} {text!r}: expected one of {', '.join(options)} (in any case)"
            )
        return value

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--log-level`` and ``--log-format`` to ``parser`` and to every sub-command below it
    (their defaults are left unset, so an option given before a sub-command is kept)."""
    parser.add_argument(
        "--log-level",
        type=_choice(LEVELS, "--log-level"),
        default=argparse.SUPPRESS,
        metavar="LEVEL",
        help="debug, info, warning or error (default: warning; info for run --follow)",
    )
    parser.add_argument(
        "--log-format",
        type=_choice(FORMATS, "--log-format"),
        default=argparse.SUPPRESS,
        metavar="FORMAT",
        help="text (default) or json: every line on standard error one JSON object",
    )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                add_arguments(sub)


def wants_json(argv: Sequence[str]) -> bool:
    """Whether ``argv`` asks for ``--log-format json`` (read before parsing, so that even a usage
    error comes out as JSON)."""
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == "--log-format" and i + 1 < len(argv):
            return argv[i + 1].strip().lower() == "json"
        if arg.startswith("--log-format="):
            return arg.split("=", 1)[1].strip().lower() == "json"
    return False


def _iso(t: float) -> str:
    ms = int((t % 1) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{ms:03d}Z"


class JsonFormatter(logging.Formatter):
    """A record as one JSON object: ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``msg``, the
    :data:`CONTEXT` attributes it has, and ``exc`` (the traceback) when it carries one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in CONTEXT:
            value = getattr(record, key, None)
            if value is not None:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        return json_term_safe(json.dumps(out, ensure_ascii=False, default=str))


class TextFormatter(logging.Formatter):
    """:data:`TEXT_FORMAT`, with the terminal controls and line breaks of a message (an event's
    content quoted in a rejection) written as escapes: one record, one harmless line (a traceback,
    at DEBUG, keeps its lines)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        return term_safe(super().formatMessage(record))


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler on whatever ``sys.stderr`` is when a record is emitted (tests swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr  # under the handler's lock (``handle``)
        super().emit(record)


class JsonLines:
    """Standard error for a command run with ``--log-format json``: each line written to it
    becomes a JSON record of the logger ``carepath.cli`` (see the module's docstring)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.pending = ""

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self._emit(line)
        return len(text)

    def _emit(self, line: str) -> None:
        line = line.rstrip("\r")
        if not line.strip():
            return
        level = "error" if _ERROR_LINE.match(line) else "info"
        record = {"ts": _iso(time.time()), "level": level, "logger": "carepath.cli", "msg": line}
        self.stream.write(json_term_safe(json.dumps(record, ensure_ascii=False)) + "\n")
        self.stream.flush()

    def flush(self) -> None:
        self.stream.flush()

    def close_line(self) -> None:
        """Emit an unfinished last line."""
        if self.pending:
            line, self.pending = self.pending, ""
            self._emit(line)

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self.stream, "encoding", "utf-8") or "utf-8"


def install(level: str, fmt: str, *, stream: IO[str] | None = None) -> logging.Handler:
    """Send log records to standard error (or ``stream``) at ``level`` in ``fmt``; replaces the
    handler a previous call installed. Returns the handler (for :func:`uninstall`)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_carepath", False)]:
        uninstall(old)
    handler: logging.Handler = logging.StreamHandler(stream) if stream is not None else _Stderr()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler._carepath = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    set_level(level)
    return handler


def set_level(level: str) -> None:
    """The level of the ``carepath`` logs (and of the noisy libraries: never below ERROR unless
    ``debug``)."""
    logging.getLogger().setLevel(getattr(logging, level.upper()))
    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.DEBUG if level == "debug" else logging.ERROR)


def uninstall(handler: logging.Handler) -> None:
    """Remove a handler :func:`install` added."""
    logging.getLogger().removeHandler(handler)
    handler.close()
