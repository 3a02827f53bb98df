"""Progress of the long commands on standard error (issue 17): ``report`` over an event log,
``run`` over a file, ``simulate`` and ``cases migrate``.

Each of them takes ``--progress auto|always|never`` (default ``auto``):

* **on a terminal** (``auto``; ``always`` anywhere): one line redrawn in place, drawn by tqdm —
  the fraction done and a bar when the total is known (an event file's size in bytes, the cases
  to migrate), the count (lines, events, cases), the rate, the time elapsed and the time left.
  Log records written meanwhile appear above it; it is erased at the end (the command's own
  summary follows);
* **elsewhere** (``auto`` when standard error is a file or a pipe, or with ``--log-format
  json``): a plain line every ``CAREPATH_PROGRESS_INTERVAL`` seconds (default 10), as a log
  record of ``carepath.progress`` at level ``info`` — with ``--log-format json`` a JSON record
  whose ``progress`` object carries the numbers — and a closing line when any was written (a
  short command writes none). ``--log-level warning`` (or ``error``), given explicitly, hides
  them;
* ``never``: nothing.

Nothing is ever written to standard output. The drivers know nothing of this module: they take a
hook, ``progress(position, count)`` (:data:`carepath.drivers.eventfile.ProgressHook`), and a
command turns it into :meth:`Progress.update`. The clock is injected (``clock=``, seconds).

>>> import io, logging
>>> from carepath.cli import logs
>>> err = io.StringIO()
>>> handler = logs.install("warning", "text", stream=err)
>>> now = [0.0]
>>> p = Progress("report", "lines", total=4_000_000, in_bytes=True, clock=lambda: now[0])
>>> now[0] = 10.0
>>> p.update(1_000_000, 50_000)
>>> print(err.getvalue().split(": ", 1)[1].strip())
report: 50,000 lines, 25 % of 4.0 MB, 5,000 lines/s, 0:00:10 elapsed, about 0:00:30 left
>>> logs.uninstall(handler)
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import IO, Any

__all__ = [
    "DEFAULT_INTERVAL",
    "INTERVAL_ENV",
    "MODES",
    "Progress",
    "add_argument",
    "for_args",
    "interval_from_env",
    "isatty",
    "style_for",
]

MODES = ("auto", "always", "never")
INTERVAL_ENV = "CAREPATH_PROGRESS_INTERVAL"
"""Seconds between the plain progress lines (0: a line at every update)."""
DEFAULT_INTERVAL = 10.0
#: how often a terminal line is redrawn at most (seconds)
BAR_EVERY = 0.1

log = logging.getLogger("carepath.progress")


def add_argument(parser: argparse.ArgumentParser) -> None:
    """``--progress auto|always|never`` on a long command's parser."""
    parser.add_argument(
        "--progress",
        choices=MODES,
        default="auto",
        help="progress on standard error: auto (a bar on a terminal, a line every 10 s "
        "otherwise), always (the bar even when it is not a terminal), never",
    )


def interval_from_env(environ: Any = os.environ) -> float:
    """The seconds between plain lines (:data:`INTERVAL_ENV`, default :data:`DEFAULT_INTERVAL`);
    raises ``ValueError`` with a one-line message for a value that is not a number ≥ 0."""
    text = environ.get(INTERVAL_ENV)
    if text is None or not text.strip():
        return DEFAULT_INTERVAL
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{INTERVAL_ENV}={text!r}: expected seconds, a number 0 or more")
    return value


def isatty(stream: Any) -> bool:
    """Whether ``stream`` is a terminal (a stream without ``isatty`` is not)."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):
        return False


def style_for(
    mode: str,
    *,
    stderr: Any,
    log_format: str = "text",
    log_level: str | None = None,
    bar: bool = True,
    lines: bool = True,
) -> str | None:
    """``"bar"``, ``"lines"`` or ``None`` (nothing) for ``--progress mode`` (see the module's
    docstring); ``bar=False`` when a bar would mix with what the command writes on the same
    terminal, ``lines=False`` when the command logs its own progress (``run --follow``)."""
    if mode == "never":
        return None
    json_logs = log_format == "json"
    if not json_logs and bar and (mode == "always" or isatty(stderr)):
        return "bar"
    if isatty(stderr) and not json_logs:
        return None  # a terminal that must not get a bar (simulate's table on it)
    if not lines or log_level in ("warning", "error"):
        return None
    return "lines"


def for_args(
    args: argparse.Namespace,
    command: str,
    unit: str,
    *,
    total: int | None = None,
    in_bytes: bool = False,
    bar: bool = True,
    lines: bool = True,
) -> Progress:
    """The :class:`Progress` of a command from its parsed arguments (``--progress``,
    ``--log-format``, an explicit ``--log-level``). A bad :data:`INTERVAL_ENV` prints one line
    and exits with 2. A command's ``--quiet`` silences the progress ``auto`` would show (an
    explicit ``--progress always`` still shows it)."""
    mode = getattr(args, "progress", "auto")
    if mode == "auto" and getattr(args, "quiet", False):
        mode = "never"
    style = style_for(
        mode,
        stderr=sys.stderr,
        log_format=getattr(args, "log_format", "text"),
        log_level=getattr(args, "log_level", None),
        bar=bar,
        lines=lines,
    )
    interval = DEFAULT_INTERVAL
    if style == "lines":
        try:
            interval = interval_from_env()
        except ValueError as exc:
            print(f"carepath: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
    return Progress(command, unit, total=total, in_bytes=in_bytes, style=style, interval=interval)


def _duration(seconds: float) -> str:
    s = int(max(0.0, seconds) + 0.5)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _size(n: float) -> str:
    """A size in bytes, in decimal units (as the bar's)."""
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


class Progress:
    """How far a long command is, shown on standard error in ``style`` (``"bar"``, ``"lines"``
    or ``None``: nothing).

    ``update(position, count)``: ``count`` things (``unit``: lines, events, cases) are done and
    the reading is at ``position`` of ``total`` (bytes of a file when ``in_bytes``; otherwise
    the position is the count). A position that goes back starts a new pass (a log read again
    to be sorted): the rate and the time left are measured from there. ``close()`` ends it
    (also as a context manager). ``clock`` gives seconds (monotonic); plain lines come every
    ``interval`` seconds.
    """

    def __init__(
        self,
        command: str,
        unit: str,
        *,
        total: int | None = None,
        in_bytes: bool = False,
        style: str | None = "lines",
        clock: Callable[[], float] = time.monotonic,
        interval: float = DEFAULT_INTERVAL,
        stream: IO[str] | None = None,
    ) -> None:
        self.command, self.unit, self.total, self.in_bytes = command, unit, total, in_bytes
        self.style = style
        self.clock, self.interval = clock, interval
        self.stream = stream
        self.start = self.pass_start = clock()
        self.position = self.count = self.pass_position = self.pass_count = 0
        self.extra = ""
        self.lines = 0
        self._next = self.start + interval
        self._said: tuple[int, int, str] | None = None  # what the last plain line said
        self._bar: Any = None
        self._exit = ExitStack()
        self._closed = False

    # -- the numbers ------------------------------------------------------------------------
    def update(
        self, position: int, count: int | None = None, *, total: int | None = None, extra: str = ""
    ) -> None:
        """Record how far the work is (see the class docstring) and show it when it is time."""
        if self.style is None or self._closed:
            return
        if total is not None:
            self.total = total
        if count is None:
            count = position
        now = self.clock()
        if position < self.position:  # read again from the start: a new pass
            self.pass_start, self.pass_position, self.pass_count = now, position, count
            if self._bar is not None:
                self._bar.reset(total=self._bar_total())
        self.position, self.count, self.extra = position, count, extra
        if self.style == "bar":
            self._draw(now)
        elif now >= self._next and (position, count, extra) != self._said:
            self._line(now)
            self._next = now + self.interval
            self._said = (position, count, extra)

    def rate(self, now: float) -> float | None:
        """Things done a second in the current pass (``None`` before any time has passed)."""
        took = now - self.pass_start
        return (self.count - self.pass_count) / took if took > 0 else None

    def left(self, now: float) -> float | None:
        """Seconds left at the current pass's pace (``None`` without a total or a pace yet)."""
        if not self.total:
            return None
        took = now - self.pass_start
        done = self.position - self.pass_position
        if took <= 0 or done <= 0:
            return None
        return max(0, self.total - self.position) * took / done

    def describe(self, now: float) -> str:
        """The plain line: count, share of the total, rate, elapsed and time left."""
        parts = [f"{self.count:,} {self.unit}"]
        if self.total:
            pct = 100.0 * min(1.0, self.position / self.total)
            of = _size(self.total) if self.in_bytes else f"{self.total:,} {self.unit}"
            parts.append(f"{pct:.0f} % of {of}")
        rate = self.rate(now)
        if rate is not None:
            parts.append(f"{rate:,.0f} {self.unit}/s")
        parts.append(f"{_duration(now - self.start)} elapsed")
        left = self.left(now)
        if left is not None:
            parts.append(f"about {_duration(left)} left")
        if self.extra:
            parts.append(self.extra)
        return f"{self.command}: " + ", ".join(parts)

    def numbers(self, now: float) -> dict[str, Any]:
        """The numbers of :meth:`describe`, for a JSON record's ``progress`` object."""
        rate, left = self.rate(now), self.left(now)
        out: dict[str, Any] = {
            "command": self.command,
            "unit": self.unit,
            "count": self.count,
            "rate": None if rate is None else round(rate, 1),
            "elapsed_s": round(now - self.start, 3),
        }
        if self.total:
            out.update(
                position=self.position,
                total=self.total,
                total_unit="bytes" if self.in_bytes else self.unit,
                eta_s=None if left is None else round(left, 1),
            )
        return out

    # -- plain lines ------------------------------------------------------------------------
    def _line(self, now: float, msg: str | None = None) -> None:
        """One log record of ``carepath.progress`` at INFO, whatever the logger's level (the
        mode decided that it is wanted)."""
        record = log.makeRecord(
            log.name,
            logging.INFO,
            __file__,
            0,
            "%s",
            (msg or self.describe(now),),
            None,
            extra={"progress": self.numbers(now)},
        )
        log.handle(record)
        self.lines += 1

    # -- the bar ----------------------------------------------------------------------------
    def _bar_total(self) -> int | None:
        return self.total or None

    def _open_bar(self) -> Any:
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        class Bar(tqdm):  # type: ignore[type-arg]
            monitor_interval = 0  # no monitor thread

        in_bytes = self.in_bytes and bool(self.total)
        if in_bytes:
            fmt = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}B/{total_fmt}B [{elapsed}<{remaining}{postfix}]"
        elif self.total:
            fmt = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
        else:
            fmt = "{desc}: {n_fmt} {unit} [{elapsed}, {rate_fmt}{postfix}]"
        bar = Bar(
            total=self._bar_total(),
            desc=self.command,
            unit="" if in_bytes else self.unit,
            unit_scale=in_bytes,
            unit_divisor=1000,
            file=self.stream or sys.stderr,
            leave=False,
            dynamic_ncols=True,
            mininterval=0,
            miniters=1,
            smoothing=0.1,
            bar_format=fmt,
        )
        self._exit.enter_context(logging_redirect_tqdm())  # log records above the bar
        self._exit.callback(bar.close)
        return bar

    def _draw(self, now: float, *, force: bool = False) -> None:
        if self._bar is None:
            self._bar = self._open_bar()
            self._drawn = -BAR_EVERY
        if not force and now - self._drawn < BAR_EVERY:
            return
        self._drawn = now
        bar = self._bar
        if bar.total != self._bar_total():
            bar.total = self._bar_total()
        post = []
        if self.in_bytes and self.total:
            rate = self.rate(now)
            post.append(f"{self.count:,} {self.unit}")
            if rate is not None:
                post.append(f"{rate:,.0f} {self.unit}/s")
        if self.extra:
            post.append(self.extra)
        bar.set_postfix_str(", ".join(post), refresh=False)
        value = self.position if self.in_bytes and self.total else self.count
        bar.update(value - bar.n)

    def write(self, line: str) -> None:
        """Print ``line`` on standard error, above the bar when one is shown."""
        if self._bar is not None and not self._closed:
            self._bar.write(line, file=self.stream or sys.stderr)
        else:
            print(line, file=self.stream or sys.stderr)

    # -- the end ----------------------------------------------------------------------------
    def close(self) -> None:
        """Erase the bar, or write the closing line when any plain line was written."""
        if self._closed:
            return
        now = self.clock()
        if self._bar is not None:
            self._draw(now, force=True)  # where it ended, however soon after the last drawing
        self._closed = True
        if self.style == "lines" and self.lines:
            rate = self.rate(now)
            each = f" ({rate:,.0f} {self.unit}/s)" if rate is not None else ""
            self._line(
                now,
                f"{self.command}: done: {self.count:,} {self.unit} in "
                f"{_duration(now - self.start)}{each}",
            )
        self._exit.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
