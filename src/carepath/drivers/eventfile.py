"""The one reader of event files: JSON lines (or a YAML list), from a path, standard input or a
stream, for ``simulate``, ``report`` and ``run``.

JSONL is read **line by line, in bytes, with the size bound applied while reading**: a line longer
than :data:`~carepath.events.MAX_EVENT_BYTES` is never held whole. It is skipped up to its end
and comes back as a :class:`~carepath.events.Line` with a ``problem`` and a bounded preview as its
text; a line with no end in the first :data:`MAX_SKIP_BYTES` (``/dev/zero``) ends the reading with
such a line. A line that is not UTF-8 comes back the same way (its bytes escaped), so one bad line
never costs the others. Blank lines and comment lines (``#`` or ``//``) are skipped; line numbers
count every physical line; a UTF-8 byte order mark at the start is dropped.

On top of the lines, :func:`read_events` and :func:`iter_events` decode events
(:func:`~carepath.events.event_from_line`) and report every bad line as a :class:`BadEvent`
instead of stopping.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from carepath.events import MAX_EVENT_BYTES, Event, Line, event_from_bytes, event_from_line

__all__ = [
    "MAX_SKIP_BYTES",
    "PREVIEW_BYTES",
    "PROGRESS_LINES",
    "BadEvent",
    "EventLine",
    "LineReader",
    "ProgressHook",
    "iter_events",
    "iter_plain_events",
    "numbered_events",
    "open_source",
    "parse_yaml_events",
    "read_events",
    "read_lines",
]

#: How much of an over-long line is kept (for messages and the runtime's ``rejected`` record).
PREVIEW_BYTES = 1024
#: How far an over-long line is skipped looking for its end before the reading stops.
MAX_SKIP_BYTES = 1 << 30
#: The largest YAML event file read (YAML is read whole: use JSON lines beyond this).
MAX_YAML_BYTES = 1 << 20
_SKIP_CHUNK = 1 << 16
#: How often (in lines) a reader tells its :data:`ProgressHook` how far it is.
PROGRESS_LINES = 4096

ProgressHook = Callable[[int, int], None]
"""``progress(bytes_read, lines_read)``: how far a reader is in its input (bytes consumed, physical
lines started), told every :data:`PROGRESS_LINES` lines it yields and once at the end; a command
shows it (``carepath.cli.progress``), a worker process shares it with its parent."""
_new_line = tuple.__new__
_BOM = b"\xef\xbb\xbf"

Source = str | os.PathLike[str] | IO[bytes] | IO[str]


@dataclass(frozen=True, slots=True)
class EventLine:
    """An event read from a file, with the line it came from (1-based)."""

    event: Event
    line: int


@dataclass(frozen=True, slots=True)
class BadEvent:
    """A line (or YAML list item) that is not a valid event: where, why, and its text (bounded)."""

    line: int
    message: str
    raw: str = ""


def _escaped(data: bytes) -> str:
    """``data`` as printable text: invalid UTF-8 bytes and NULs escaped (``\\xff``, ``\\x00``)."""
    return data.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")


class LineReader:
    """The lines of a binary stream, bounded (see the module docstring).

    :meth:`read` returns the next :class:`~carepath.events.Line` or ``None`` at the end of the
    input; with ``follow=True`` an unfinished last line is kept for a later call instead (a file
    that is still being written). ``bytes_read`` counts the bytes consumed so far.
    """

    def __init__(
        self,
        stream: IO[bytes],
        *,
        limit: int = MAX_EVENT_BYTES,
        max_skip: int | None = None,
        skip: Callable[[bytes], bool] | None = None,
    ) -> None:
        self._stream = stream
        self._skip = skip  # lines (whole, in bytes) a reader does not want: counted, not decoded
        self.limit = limit
        self.max_skip = MAX_SKIP_BYTES if max_skip is None else max_skip
        self.bytes_read = 0
        self.number = 0  # the last physical line started
        self._buf = bytearray()  # the line being read (never more than limit + 2 bytes)
        self._skipped = -1  # bytes of an over-long line consumed; -1: not skipping
        self._head = b""  # the start of the over-long line being skipped
        self._done = False

    def __iter__(self) -> Iterator[Line]:
        while (line := self.read()) is not None:
            yield line

    def read(self, *, follow: bool = False) -> Line | None:
        """The next non-blank, non-comment line, or ``None`` (see the class docstring)."""
        return cast("Line | None", self._next(follow, None))

    def items(self) -> Iterator[tuple[int, Event] | Line]:
        """Every line as :meth:`read` gives it, except that a line ``event_from_bytes`` decodes
        comes as ``(number, event)``: one decode per line, from its bytes (the usual case)."""
        fast = event_from_bytes
        while (item := self._next(False, fast)) is not None:
            yield item

    def _next(
        self, follow: bool, fast: Callable[[bytes], Event | None] | None
    ) -> tuple[int, Event] | Line | None:
        readline = self._stream.readline
        size = self.limit + 2
        while not self._done:
            if self._skipped < 0 and not self._buf:
                chunk = readline(size)
                if chunk.endswith(b"\n"):  # the usual case: a whole line at once
                    self.bytes_read += len(chunk)
                    self.number += 1
                    if self.number == 1 and chunk.startswith(_BOM):
                        chunk = chunk[len(_BOM) :]
                    if self._skip is not None and self._skip(chunk):
                        continue
                    item = self.whole(chunk, fast)
                    if item is not None:
                        return item
                    continue
            elif self._skipped >= 0:
                chunk = readline(_SKIP_CHUNK)
            else:
                chunk = readline(size - len(self._buf))
            if not chunk:  # the end of the input, for now
                if follow or (self._skipped < 0 and not self._buf):
                    return None
                line = self._finish(ended=False)
            else:
                self.bytes_read += len(chunk)
                line = self._take(chunk)
            if line is not None:
                return line
        return None

    def whole(
        self, chunk: bytes, fast: Callable[[bytes], Event | None] | None = event_from_bytes
    ) -> tuple[int, Event] | Line | None:
        """What :meth:`items` gives (``fast``: the decoder it tries first; None: what :meth:`read`
        gives) for ``chunk``, a whole line of at most ``limit`` bytes with its newline, numbered
        :attr:`number` (a reader that was handed lines read elsewhere sets it)."""
        if fast is not None:
            event = fast(chunk)
            if event is not None:
                return self.number, event
        return self._complete(chunk[:-1])

    def _take(self, chunk: bytes) -> Line | None:
        """A piece of a line that did not come whole (long, or the end of the input so far)."""
        ended = chunk.endswith(b"\n")
        if self._skipped >= 0:
            self._skipped += len(chunk)
            if ended:
                return self._finish(ended=True)
            if self._skipped > self.max_skip:
                self._done = True
                return self._long(
                    f"longer than {self.limit:,} bytes, with no end in its first "
                    f"{self.max_skip:,}: the rest of the input is not read"
                )
            return None
        if not self._buf:
            self.number += 1
            if self.number == 1 and chunk.startswith(_BOM):
                chunk = chunk[len(_BOM) :]
        self._buf += chunk
        if ended:
            return self._finish(ended=True)
        if len(self._buf) >= self.limit + 2:  # no end of line in sight: skip the rest of it
            self._head = bytes(self._buf[:PREVIEW_BYTES])
            self._skipped = len(self._buf)
            self._buf.clear()
        return None

    def _finish(self, *, ended: bool) -> Line | None:
        """The line read so far is complete (``ended``: by a newline, else by the end of input)."""
        if self._skipped >= 0:
            return self._long(f"longer than {self.limit:,} bytes")
        data = bytes(self._buf)
        self._buf.clear()
        return self._complete(data[:-1] if ended else data)

    def _complete(self, data: bytes) -> Line | None:
        """The line ``data`` (without its newline) as a :class:`Line`, or ``None`` to skip it."""
        if data.endswith(b"\r"):
            data = data[:-1]
        if len(data) > self.limit:
            self._head = data[:PREVIEW_BYTES]
            self._skipped = len(data)
            return self._long(f"longer than {self.limit:,} bytes")
        try:
            text = data.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            return Line(
                self.number,
                _escaped(data).strip(),
                f"not UTF-8: byte 0x{data[exc.start]:02x} at column {exc.start + 1} is not valid",
            )
        if not text or text[0] == "#" or text.startswith("//"):
            return None
        return _new_line(Line, (self.number, text, None))  # Line(...) without its Python __new__

    def _long(self, problem: str) -> Line:
        preview = _escaped(self._head)
        self._head = b""
        self._skipped = -1
        return Line(self.number, preview + "…", problem)


class _TextAsBytes:
    """A text stream read as UTF-8 bytes (a stream opened in text mode without ``.buffer``)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def readline(self, size: int = -1) -> bytes:
        # ``size`` characters are at most 4 × ``size`` bytes: the bound still holds
        return self._stream.readline(size).encode("utf-8", "surrogateescape")

    def read(self, size: int = -1) -> bytes:
        return self._stream.read(size).encode("utf-8", "surrogateescape")


def _binary(stream: IO[Any]) -> IO[bytes]:
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        return buffer  # type: ignore[no-any-return]
    if isinstance(stream, io.TextIOBase):
        return _TextAsBytes(stream)
    return stream


def _name(source: Source) -> str:
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    return str(getattr(source, "name", "<stream>"))


@contextmanager
def open_source(source: Source) -> Iterator[IO[bytes]]:
    """``source`` as a binary stream: a path (opened here, closed on exit), ``-`` for standard
    input, or an open stream (binary or text; left open). Raises ``OSError``."""
    if isinstance(source, str | os.PathLike):
        if os.fspath(source) == "-":
            yield _binary(sys.stdin)
            return
        with Path(source).open("rb") as fh:
            yield fh
        return
    yield _binary(source)


def read_lines(
    source: Source,
    progress: ProgressHook | None = None,
    *,
    skip: Callable[[bytes], bool] | None = None,
) -> Iterator[Line]:
    """The lines of ``source`` (see :func:`open_source` and :class:`LineReader`), telling
    ``progress`` how far the reading is (see :data:`ProgressHook`); ``skip(raw)`` true for a whole
    line (its bytes, newline included) leaves it out undecoded."""
    with open_source(source) as stream:
        reader = LineReader(stream, skip=skip)
        if progress is None:
            yield from reader
            return
        for n, line in enumerate(reader, 1):
            yield line
            if n % PROGRESS_LINES == 0:
                progress(reader.bytes_read, reader.number)
        progress(reader.bytes_read, reader.number)


def _is_yaml(source: Source) -> bool:
    return isinstance(source, str | os.PathLike) and os.fspath(source).endswith((".yaml", ".yml"))


def iter_events(source: Source, bad: list[BadEvent]) -> Iterator[EventLine]:
    """The events of ``source`` as they are read; every bad line is appended to ``bad`` (in file
    order) and skipped. YAML files (``.yaml``/``.yml``) are lists of events, read whole."""
    if _is_yaml(source):
        good, problems = _read_yaml(source)
        bad.extend(problems)
        yield from good
        return
    for number, event in numbered_events(source, bad):
        yield EventLine(event, number)


def iter_plain_events(
    source: Source, bad: list[BadEvent], progress: ProgressHook | None = None
) -> Iterator[Event]:
    """:func:`iter_events` without the line numbers of the good events (what a replay needs);
    ``progress`` is told how far the reading of a JSONL source is (:func:`read_lines`)."""
    if _is_yaml(source):
        yield from (el.event for el in iter_events(source, bad))
        return
    for _number, event in numbered_events(source, bad, progress=progress):
        yield event


def numbered_events(
    source: Source,
    bad: list[BadEvent],
    skip: Callable[[bytes], bool] | None = None,
    progress: ProgressHook | None = None,
) -> Iterator[tuple[int, Event]]:
    """``(line number, event)`` of a JSONL ``source``, each line decoded once (from its bytes:
    :func:`~carepath.events.event_from_bytes`, else its text: ``event_from_line``); every bad
    line into ``bad``; ``skip`` and ``progress`` as in :func:`read_lines`."""
    decode = event_from_line
    with open_source(source) as stream:
        reader = LineReader(stream, skip=skip)
        for n, item in enumerate(reader.items(), 1):
            if progress is not None and n % PROGRESS_LINES == 0:
                progress(reader.bytes_read, reader.number)
            if not isinstance(item, Line):
                yield item
                continue
            number, text, problem = item
            if problem is not None:
                bad.append(BadEvent(number, problem, text))
                continue
            try:
                yield number, decode(text)
            except (ValueError, TypeError) as exc:
                bad.append(BadEvent(number, str(exc), text))
        if progress is not None:
            progress(reader.bytes_read, reader.number)


def read_events(source: Source) -> tuple[list[EventLine], list[BadEvent]]:
    """Every event of ``source`` (JSONL, or YAML by extension) and every bad line, both in file
    order. Raises ``OSError`` when the file cannot be read; bad events are returned, not raised."""
    bad: list[BadEvent] = []
    good = list(iter_events(source, bad))
    return good, bad


def _read_yaml(source: Source) -> tuple[list[EventLine], list[BadEvent]]:
    with open_source(source) as stream:
        data = stream.read(MAX_YAML_BYTES + 1)
    if len(data) > MAX_YAML_BYTES:
        return [], [
            BadEvent(1, f"a YAML event file is limited to {MAX_YAML_BYTES:,} bytes; use JSON lines")
        ]
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return [], [BadEvent(line, f"not UTF-8: byte 0x{data[exc.start]:02x} is not valid")]
    return parse_yaml_events(text)


def parse_yaml_events(text: str) -> tuple[list[EventLine], list[BadEvent]]:
    """The events of a YAML list (or a mapping with ``events:``), each with its line."""
    from carepath.loading.yaml import YamlError, load_yaml

    try:
        data, pos = load_yaml(text)
    except YamlError as exc:
        return [], [BadEvent(p.line, p.message) for p in exc.problems]
    base: tuple[str | int, ...] = ()
    if isinstance(data, dict) and "events" in data:
        data, base = data["events"], ("events",)
    if data is None:
        return [], []
    if not isinstance(data, list):
        return [], [
            BadEvent(1, "a YAML event file is a list of events (or a mapping with `events:`)")
        ]
    good: list[EventLine] = []
    bad: list[BadEvent] = []
    for i, obj in enumerate(data):
        line = pos.value((*base, i))[0]
        try:
            good.append(EventLine(Event.from_dict(obj), line))
        except (ValueError, TypeError) as exc:
            bad.append(BadEvent(line, str(exc)))
    return good, bad
