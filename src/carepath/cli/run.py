"""``carepath run PLAYBOOK… --events FILE|-``: the runtime on a store (SPEC §7).

Events (JSON lines) are applied to the store's cases, each batch in one transaction; wake-ups
fire when due; actions go to the outbox and, with ``--actions``, are written there as JSON lines
(flushed before an item is marked delivered) — without it they stay pending for the host.

With ``--clock simulated`` (the default without ``--follow``) time follows the events: wake-ups
due strictly before an event fire first, those due exactly at its ``at`` after it; after the last
event time goes on to ``--until`` if given. With ``--clock real`` (the default with ``--follow``)
wake-ups and deliveries run on the system clock. Running the same command again after a crash goes
on where it stopped: events already applied are skipped by id.

Exit codes: 0 ok, 1 if any event was rejected (bad JSON, missing fields, unknown case, out of
order, retired playbook version: see ``carepath cases rejected``), 2 bad arguments, an unreadable
file or store.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import select
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carepath.drivers.eventfile import LineReader
    from carepath.events import Line
    from carepath.runtime import Runtime

HELP = "run playbooks on a store: ingest events, fire wake-ups, deliver actions"
ORDER = 60
DEFAULT_STORE = "sqlite:///cases.db"


def register(sub: Any) -> None:
    """Add the ``run`` sub-command."""
    p = sub.add_parser("run", help=HELP, description=__doc__.split("\n\n")[0] if __doc__ else HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="exit codes: 0 ok, 1 some event was rejected, 2 bad arguments, unreadable file or store")
    p.add_argument("playbooks", nargs="+", metavar="PLAYBOOK", help="playbook files")
    p.add_argument("--store", default=DEFAULT_STORE, metavar="URL",
                   help=f"the case store (default: {DEFAULT_STORE}; sqlite:////abs/path.db for an absolute path)")
    p.add_argument("--events", metavar="FILE",
                   help="JSON lines of events; - for standard input (with --follow it may be left out: a worker "
                        "that only fires wake-ups and delivers actions)")
    p.add_argument("--clock", choices=("simulated", "real"), default=None,
                   help="simulated: time follows the events (default); real: the system clock (default with --follow)")
    p.add_argument("--until", metavar="T",
                   help="simulated: after the last event, go on to T; real: stop at T (ISO 8601; without an "
                        "offset, local time in the first playbook's timezone)")
    p.add_argument("--actions", metavar="FILE",
                   help="append delivered actions as JSON lines (- for standard output)")
    p.add_argument("--follow", action="store_true",
                   help="keep reading the events file (or standard input) as it grows; stop with Ctrl-C or SIGTERM")
    p.add_argument("--batch", type=int, default=100, metavar="N",
                   help="events per transaction (default: 100; 1 commits every event)")
    p.add_argument("--poll", type=float, default=1.0, metavar="S",
                   help="with --follow, seconds between checks for wake-ups and new lines (default: 1)")
    p.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                   help="a progress bar on standard error (auto: when it is a terminal)")
    p.add_argument("--quiet", "-q", action="store_true", help="no summary on standard error")
    p.set_defaults(func=run)


class _Stop:
    def __init__(self) -> None:
        self.flag = False

    def __call__(self, signum: int, frame: Any) -> None:
        self.flag = True


def _lines(reader: LineReader | None, fh: IO[bytes] | None, follow: bool, poll: float, stop: _Stop,
           idle: Any = time.sleep) -> Iterator[Line | None]:
    """The lines of ``fh`` read by ``reader`` (bounded: :mod:`carepath.drivers.eventfile`); with
    ``follow``, ``None`` whenever ``poll`` seconds pass without one (``idle(poll)`` waits: the
    store's :meth:`wait_for_work`, woken early by other workers). ``fh=None``: no input, only idle
    ticks until stopped."""
    if reader is None or fh is None:
        while not stop.flag:
            idle(poll)
            yield None
        return
    fd: int | None
    try:
        fd = fh.fileno()
        is_file = _is_regular(fd)
    except (OSError, ValueError):
        fd, is_file = None, True
    while not stop.flag:
        if follow and not is_file and fd is not None:
            ready, _, _ = select.select([fd], [], [], poll)
            if not ready:
                yield None
                continue
        # a file that is still being written keeps its unfinished last line for later
        line = reader.read(follow=follow and is_file)
        if line is not None:
            yield line
            continue
        if not follow:
            return
        if not is_file:  # the writer closed the pipe
            return
        yield None
        idle(poll)


def _is_regular(fd: int) -> bool:
    import stat

    try:
        return stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        return False


class _Progress:
    """A one-line progress bar on standard error (a terminal only)."""

    def __init__(self, enabled: bool, total_bytes: int | None) -> None:
        self.enabled = enabled
        self.total = total_bytes
        self.last = 0.0
        self.shown = False

    def update(self, rt: Runtime, read_bytes: int, events: int, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self.last < 0.1:
            return
        self.last = now
        c = rt.counters
        counts = (f"{events} events · {c['opened']} cases · {c['actions']} actions · {c['breaches']} breaches"
                  f"{' · ' + str(c['rejected']) + ' rejected' if c['rejected'] else ''}")
        if self.total:
            frac = min(1.0, read_bytes / self.total)
            width = 24
            fill = int(frac * width)
            bar = f"[{'#' * fill}{'.' * (width - fill)}] {frac * 100:5.1f}% "
        else:
            bar = ""
        sys.stderr.write(f"\r\x1b[2K{bar}{counts}")
        sys.stderr.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""The one format of ``run``'s log lines on standard error (with ``--follow`` all its messages)."""


def _setup_logging(follow: bool, quiet: bool) -> None:
    """Log records go to standard error in :data:`LOG_FORMAT` unless the host configured logging
    (INFO with ``--follow``, else WARNING; ``--quiet``: WARNING). psycopg logs a warning for each
    aborted pipeline and rolled-back connection when PostgreSQL workers contend; the store runs
    those units again, so below ERROR they are noise and are not shown."""
    for name in ("psycopg", "psycopg.pool"):
        logging.getLogger(name).setLevel(logging.ERROR)
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    root.setLevel(logging.INFO if follow and not quiet else logging.WARNING)


def _log_batch(log: logging.Logger, rt: Runtime, events: int) -> None:
    c = rt.counters
    log.info("batch: %d events; totals: %d applied, %d rejected, %d wake-ups, %d actions, %d delivered, %d failed",
             events, c["applied"], c["rejected"], c["woken"], c["actions"], c["delivered"], c["failed"])


def run(args: argparse.Namespace) -> int:
    """Run; return the exit code."""
    from carepath._terminal import json_term_safe, term_safe
    from carepath.cli.common import load_playbooks, parse_until
    from carepath.drivers.eventfile import LineReader
    from carepath.runtime import Runtime, StoreError, open_store
    from carepath.runtime.clock import ManualClock, system_clock
    from carepath.state import Action

    if args.events is None and not args.follow:
        print("carepath: --events is required (without --follow)", file=sys.stderr)
        return 2
    if args.batch < 1:
        print("carepath: --batch must be at least 1", file=sys.stderr)
        return 2
    _setup_logging(args.follow, args.quiet)
    playbooks = load_playbooks(args.playbooks)
    if isinstance(playbooks, int):
        return playbooks
    mode = args.clock or ("real" if args.follow else "simulated")
    until = parse_until(args.until, playbooks)
    total: int | None = None
    events_fh: IO[bytes] | None = None
    try:
        if args.events is None:
            pass
        elif args.events == "-":
            events_fh = sys.stdin.buffer
        else:
            events_fh = Path(args.events).open("rb")  # noqa: SIM115 - closed below
            total = os.fstat(events_fh.fileno()).st_size or None
    except OSError as exc:
        print(f"carepath: {args.events}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        store = open_store(args.store)
    except (StoreError, OSError, ValueError) as exc:
        print(f"carepath: --store: {exc}", file=sys.stderr)
        return 2
    out: IO[str] | None = None
    try:
        if args.actions == "-":
            out = sys.stdout
        elif args.actions:
            out = Path(args.actions).open("a", encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as exc:
        print(f"carepath: --actions: {exc.strerror or exc}", file=sys.stderr)
        return 2

    sim = mode == "simulated"
    clock = ManualClock() if sim else system_clock
    rt = Runtime(playbooks, store, clock=clock)
    write_error: list[OSError] = []
    if out is not None:
        sink = out

        @rt.action("*")
        def write(action: Action, state: Any) -> None:
            # after a failed write (a full disk) nothing more is written: the item stays pending
            # in the outbox, delivered by the next run, and the run ends with exit 2
            if write_error:
                raise write_error[0]
            try:
                sink.write(json_term_safe(json.dumps(action.to_dict(), ensure_ascii=False, sort_keys=False)) + "\n")
                sink.flush()
            except OSError as exc:
                write_error.append(exc)
                raise

    stop = _Stop()
    # a worker stops cleanly on SIGTERM or SIGINT: the open batch commits, then it exits 0
    old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)} if args.follow else {}
    log = logging.getLogger("carepath.run")

    def say(msg: str, level: int = logging.INFO) -> None:
        """A message on standard error: with --follow a log record (one channel, one format, as
        the batch lines and the runtime's own warnings), else a ``carepath run:`` line."""
        if args.follow:
            log.log(level, "%s", msg)
        else:
            print(f"carepath run: {msg}", file=sys.stderr)
    progress = _Progress(args.progress == "always" or (args.progress == "auto" and sys.stderr.isatty()), total)
    started = time.monotonic()
    events = 0
    read_bytes = 0
    rejected_shown = 0

    def flush(chunk: list[Line]) -> None:
        nonlocal rejected_shown
        results = rt.submit_many(chunk, batch=len(chunk), timeline=sim)
        for r in results:
            if r.status == "rejected" and rejected_shown < 20 and not args.quiet:
                progress.done()
                say(term_safe(f"rejected event {r.event_id or '(no id)'}: {r.reason}: {r.message}"),
                    logging.WARNING)
                rejected_shown += 1
        if not sim:
            rt.run_due()
        rt.deliver()
        if args.follow:
            _log_batch(log, rt, len(chunk))

    try:
        if sim:
            store.release_claims()  # a replay of the timeline takes over the claims of the run it replaces
        chunk: list[Line] = []
        reader = None if events_fh is None else LineReader(events_fh)
        for line in _lines(reader, events_fh, args.follow, args.poll, stop, store.wait_for_work):
            if line is None:  # idle while following
                if chunk:
                    flush(chunk)
                    chunk = []
                if not sim:
                    before = rt.counters["woken"] + rt.counters["delivered"] + rt.counters["failed"]
                    rt.run_due()
                    rt.deliver()
                    if rt.counters["woken"] + rt.counters["delivered"] + rt.counters["failed"] != before:
                        _log_batch(log, rt, 0)
                    if until is not None and clock() >= until:
                        break
                progress.update(rt, read_bytes, events)
                continue
            read_bytes = reader.bytes_read if reader is not None else 0
            chunk.append(line)  # blank and comment lines are skipped by the reader
            events += 1
            if len(chunk) >= args.batch:
                flush(chunk)
                chunk = []
                progress.update(rt, read_bytes, events)
        if chunk:
            flush(chunk)
        if sim:
            end = until if until is not None else (clock() if events else None)
            if end is not None:
                if isinstance(clock, ManualClock):
                    clock.advance_to(end)
                rt.run_due(end)
                rt.deliver(end)
        else:
            rt.run_due()
            rt.deliver()
    except KeyboardInterrupt:
        progress.done()
        say("interrupted; run the same command again to go on", logging.WARNING)
        return 130
    finally:
        for signum, handler in old.items():
            signal.signal(signum, handler)
        progress.done()
        if events_fh is not None and events_fh is not sys.stdin.buffer:
            events_fh.close()
        if out is not None and out is not sys.stdout:
            with contextlib.suppress(OSError):  # a failed write is reported below
                out.close()
    c = rt.counters
    pending = len(store.outbox(status="pending"))
    store.close()
    if not args.quiet:
        took = time.monotonic() - started
        rate = f", {events / took:,.0f} events/s" if took > 0 and events else ""
        say(f"{events} events ({c['applied']} applied, {c['duplicate']} duplicate, "
            f"{c['ignored']} ignored, {c['rejected']} rejected); {c['opened']} cases opened; "
            f"{c['woken']} wake-ups; {c['actions']} actions ({c['delivered']} delivered, {pending} pending in "
            f"the outbox{', ' + str(c['dead']) + ' dead' if c['dead'] else ''}); {c['breaches']} breaches; "
            f"{took:.2f} s{rate}")
    if write_error:
        werr = write_error[0]
        say(f"--actions: cannot write {args.actions}: {werr.strerror or werr}; the actions not "
            "written stay pending in the outbox", logging.ERROR)
        return 2
    return 1 if c["rejected"] else 0
