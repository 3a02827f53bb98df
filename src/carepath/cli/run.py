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
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from carepath.cli import progress

if TYPE_CHECKING:
    from carepath.drivers.eventfile import LineReader
    from carepath.events import Line
    from carepath.runtime import Runtime, Store

HELP = "run playbooks on a store: ingest events, fire wake-ups, deliver actions"
ORDER = 60
DEFAULT_STORE = "sqlite:///cases.db"
FILE_BATCH = 10000
"""Events per transaction reading a file (``--batch``'s default): each commit waits for its fsync,
and a case that several events of a batch touch is written once (``bench/bench_runtime.py``: 124 µs
of CPU per event in batches of 1,000, 103 in batches of 10,000, which hold the write lock for
about a second)."""
FOLLOW_BATCH = 100
"""Events per transaction with ``--follow`` (``--batch``'s default): a live event waits less."""


def register(sub: Any) -> None:
    """Add the ``run`` sub-command."""
    p = sub.add_parser(
        "run",
        help=HELP,
        description=__doc__.split("\n\n")[0] if __doc__ else HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes: 0 ok, 1 some event was rejected, 2 bad arguments, unreadable file or store",
    )
    p.add_argument("playbooks", nargs="+", metavar="PLAYBOOK", help="playbook files")
    p.add_argument(
        "--store",
        default=DEFAULT_STORE,
        metavar="URL",
        help=f"the case store (default: {DEFAULT_STORE}; sqlite:////abs/path.db for an absolute path)",
    )
    p.add_argument(
        "--events",
        metavar="FILE",
        help="JSON lines of events; - for standard input (with --follow it may be left out: a worker "
        "that only fires wake-ups and delivers actions)",
    )
    p.add_argument(
        "--clock",
        choices=("simulated", "real"),
        default=None,
        help="simulated: time follows the events (default); real: the system clock (default with --follow)",
    )
    p.add_argument(
        "--until",
        metavar="T",
        help="simulated: after the last event, go on to T; real: stop at T (ISO 8601; without an "
        "offset, local time in the first playbook's timezone)",
    )
    p.add_argument(
        "--actions",
        metavar="FILE",
        help="append delivered actions as JSON lines (- for standard output)",
    )
    p.add_argument(
        "--follow",
        action="store_true",
        help="keep reading the events file (or standard input) as it grows; stop with Ctrl-C or SIGTERM",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=None,
        metavar="N",
        help="events per transaction (default: 10000 reading a file, 100 with --follow; "
        "1 commits every event)",
    )
    p.add_argument(
        "--poll",
        type=float,
        default=1.0,
        metavar="S",
        help="with --follow, seconds between checks for wake-ups and new lines (default: 1)",
    )
    progress.add_argument(p)
    p.add_argument(
        "--roster",
        metavar="FILE",
        help="agents (YAML or JSON) the allocator assigns cases to (SPEC §10)",
    )
    p.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="no summary on standard error, and no progress unless --progress always",
    )
    p.set_defaults(func=run)


class _Stop:
    def __init__(self) -> None:
        self.flag = False

    def __call__(self, signum: int, frame: Any) -> None:
        self.flag = True


def _lines(
    reader: LineReader | None,
    fh: IO[bytes] | None,
    follow: bool,
    poll: float,
    stop: _Stop,
    idle: Any = time.sleep,
) -> Iterator[Line | None]:
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


def _counts(rt: Runtime) -> str:
    """What the run did so far, for its progress line."""
    c = rt.counters
    rejected = f" · {c['rejected']} rejected" if c["rejected"] else ""
    return f"{c['opened']} cases · {c['actions']} actions · {c['breaches']} breaches{rejected}"


def _log_batch(log: logging.Logger, rt: Runtime, events: int) -> None:
    c = rt.counters
    log.info(
        "batch: %d events; totals: %d applied, %d rejected, %d wake-ups, %d actions, %d delivered, %d failed",
        events,
        c["applied"],
        c["rejected"],
        c["woken"],
        c["actions"],
        c["delivered"],
        c["failed"],
    )


@dataclass
class _Files:
    """What ``run`` opened: the events (``None`` with ``--follow`` alone), its size when known,
    the store, and the ``--actions`` sink."""

    events: IO[bytes] | None
    total: int | None
    store: Store
    out: IO[str] | None

    def close(self) -> None:
        if self.events is not None and self.events is not sys.stdin.buffer:
            self.events.close()
        if self.out is not None and self.out is not sys.stdout:
            with contextlib.suppress(OSError):  # a failed write is reported by the summary
                self.out.close()


def _open(args: argparse.Namespace) -> _Files | int:
    """Open the events file, the store and the actions file, in that order; an exit code (2) and
    a one-line message for the first that cannot be opened."""
    from carepath.runtime import StoreError, open_store

    total: int | None = None
    events: IO[bytes] | None = None
    try:
        if args.events == "-":
            events = sys.stdin.buffer
        elif args.events is not None:
            events = Path(args.events).open("rb")  # noqa: SIM115 - closed by _Files.close
            total = os.fstat(events.fileno()).st_size or None
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
            out = Path(args.actions).open("a", encoding="utf-8")  # noqa: SIM115 - closed by _Files.close
    except OSError as exc:
        print(f"carepath: --actions: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return _Files(events, total, store, out)


class _Job:
    """One ``carepath run``: the runtime on the opened files, driven line by line."""

    def __init__(self, args: argparse.Namespace, playbooks: Any, files: _Files) -> None:
        from carepath.cli.common import parse_until
        from carepath.runtime import Runtime
        from carepath.runtime.clock import ManualClock, system_clock

        self.args = args
        self.files = files
        self.sim = (args.clock or ("real" if args.follow else "simulated")) == "simulated"
        self.until = parse_until(args.until, playbooks)
        self.clock: Any = ManualClock() if self.sim else system_clock
        self.rt = Runtime(
            playbooks,
            files.store,
            clock=self.clock,
            roster=getattr(args, "roster_agents", None),
            batch=max(args.batch, 200),
        )
        self.write_error: list[OSError] = []
        if files.out is not None:
            self._write_actions(files.out)
        self.log = logging.getLogger("carepath.run")
        # with --follow the batches are logged: a bar on a terminal, no plain lines
        self.progress = progress.for_args(
            args, "run", "events", total=files.total, in_bytes=True, lines=not args.follow
        )
        self.events = 0
        #: what became of the file's own events, by status (the runtime's counters also count the
        #: events it submits itself, such as the action.delivered of each delivery)
        self.statuses: Counter[str] = Counter()

    def _write_actions(self, sink: IO[str]) -> None:
        from carepath._terminal import json_term_safe
        from carepath.state import Action

        write_error = self.write_error

        @self.rt.action("*", batch=True)
        def write(actions: list[Action]) -> None:
            # the lines of one claim are written and flushed before any of its items is marked
            # delivered (SPEC §7). After a failed write (a full disk) nothing more is written:
            # the items stay pending in the outbox, delivered by the next run, and the run ends
            # with exit 2
            if write_error:
                raise write_error[0]
            try:
                sink.write(
                    "".join(
                        json_term_safe(json.dumps(a.to_dict(), ensure_ascii=False)) + "\n"
                        for a in actions
                    )
                )
                sink.flush()
            except OSError as exc:
                write_error.append(exc)
                raise

    def say(self, msg: str, level: int = logging.INFO) -> None:
        """A message on standard error: with --follow a log record (one channel, one format, as
        the batch lines and the runtime's own warnings), else a ``carepath run:`` line (with
        ``--log-format json`` a warning or an error is a log record too, for its level)."""
        json_logs = getattr(self.args, "log_format", "text") == "json"
        if self.args.follow or (json_logs and level >= logging.WARNING):
            self.log.log(level, "%s", msg)
        else:
            print(f"carepath run: {msg}", file=sys.stderr)

    def flush(self, chunk: list[Line]) -> None:
        """Apply one batch of lines, then fire what is due and deliver."""
        for r in self.rt.submit_many(chunk, batch=len(chunk), timeline=self.sim):
            self.statuses[r.status] += 1
        if not self.sim:
            self.rt.run_due()
        self.rt.deliver()
        self.retain()
        if self.args.follow:
            _log_batch(self.log, self.rt, len(chunk))

    def idle(self) -> bool:
        """No new line for a while: fire and deliver on the real clock; whether to stop (--until)."""
        if self.sim:
            return False
        c = self.rt.counters
        before = c["woken"] + c["delivered"] + c["failed"]
        self.rt.run_due()
        self.rt.deliver()
        self.retain()
        if c["woken"] + c["delivered"] + c["failed"] != before:
            _log_batch(self.log, self.rt, 0)
        return self.until is not None and self.clock() >= self.until

    def retain(self) -> None:
        """``--follow`` on the real clock is a worker loop: it applies the playbooks' retention
        when it starts and daily after that, as ``Runtime.run_forever`` does (SPEC §10)."""
        if self.args.follow and not self.sim:
            self.rt.purge_due()

    def drive(self, stop: _Stop) -> None:
        """Read, batch and apply every line; then let time run to its end."""
        from carepath.drivers.eventfile import LineReader

        args, fh = self.args, self.files.events
        if self.sim:
            # a replay of the timeline takes over the claims of the run it replaces
            self.files.store.release_claims()
        chunk: list[Line] = []
        reader = None if fh is None else LineReader(fh)
        read_bytes = 0
        lines = _lines(reader, fh, args.follow, args.poll, stop, self.files.store.wait_for_work)
        for line in lines:
            if line is None:  # idle while following
                if chunk:
                    self.flush(chunk)
                    chunk = []
                if self.idle():
                    break
                self.progress.update(read_bytes, self.events, extra=_counts(self.rt))
                continue
            read_bytes = reader.bytes_read if reader is not None else 0
            chunk.append(line)  # blank and comment lines are skipped by the reader
            self.events += 1
            if len(chunk) >= args.batch:
                self.flush(chunk)
                chunk = []
                self.progress.update(read_bytes, self.events, extra=_counts(self.rt))
        if chunk:
            self.flush(chunk)
        self.progress.update(read_bytes, self.events, extra=_counts(self.rt))
        self.finish_time()

    def finish_time(self) -> None:
        """Simulated: time goes on to ``--until`` (or stays at the last event); real: one last
        round of wake-ups and deliveries."""
        from carepath.runtime.clock import ManualClock

        rt = self.rt
        if not self.sim:
            rt.run_due()
            rt.deliver()
            return
        end = self.until if self.until is not None else (self.clock() if self.events else None)
        if end is None:
            return
        if isinstance(self.clock, ManualClock):
            self.clock.advance_to(end)
        rt.run_due(end)
        rt.deliver(end)

    def summary(self, took: float) -> int:
        """The closing line and the exit code."""
        c = self.rt.counters
        store = self.files.store
        pending = len(store.outbox(status="pending"))
        store.close()
        if not self.args.quiet:
            events = self.events
            rate = f", {events / took:,.0f} events/s" if took > 0 and events else ""
            dead = f", {c['dead']} dead" if c["dead"] else ""
            assigned = f"; {c['assigned']} assigned to agents" if c["assigned"] else ""
            n = self.statuses
            self.say(
                f"{events} events ({n['applied']} applied, {n['duplicate']} duplicate, "
                f"{n['ignored']} ignored, {n['rejected']} rejected){assigned}; "
                f"{c['opened']} cases opened; "
                f"{c['woken']} wake-ups; {c['actions']} actions ({c['delivered']} delivered, "
                f"{pending} pending in the outbox{dead}); {c['breaches']} breaches; "
                f"{took:.2f} s{rate}"
            )
        if self.write_error:
            werr = self.write_error[0]
            self.say(
                f"--actions: cannot write {self.args.actions}: {werr.strerror or werr}; the "
                "actions not written stay pending in the outbox",
                logging.ERROR,
            )
            return 2
        return 1 if self.statuses["rejected"] else 0


def _stranded(args: argparse.Namespace, playbooks: Any, files: _Files) -> int:
    """Refuse (2) to start on a store with open cases of another version of a playbook given."""
    from carepath._terminal import term_safe
    from carepath.runtime.migrate import check_versions

    paths = {pb.id: path for pb, path in zip(playbooks, args.playbooks, strict=True)}
    why = check_versions(files.store, playbooks, paths, url=args.store)
    if why is None:
        return 0
    print(term_safe(f"carepath: {why}"), file=sys.stderr)
    files.close()
    files.store.close()
    return 2


def _batch_gc(follow: bool) -> contextlib.AbstractContextManager[None]:
    """A file read to its end is one batch job: the collector's thresholds stay raised from its
    first line to its last (:func:`carepath.engine.batch_gc.batch_gc`). ``submit_many`` raises
    them per call, but lowering them again after each batch let the counts run over at the next
    allocation: full collections over the store's cache of states between the batches (py-spy:
    6.6 % of the run). A worker that follows its input runs for days: it keeps the defaults
    between its batches."""
    if follow:
        return contextlib.nullcontext()
    from carepath.engine.batch_gc import batch_gc

    return batch_gc()


def run(args: argparse.Namespace) -> int:
    """Run; return the exit code."""
    from carepath.cli import logs
    from carepath.cli.common import load_playbooks, read_roster

    if args.events is None and not args.follow:
        print("carepath: --events is required (without --follow)", file=sys.stderr)
        return 2
    if args.batch is None:
        # a file: fewer, larger commits (each waits for its fsync); following: events wait less
        args.batch = FOLLOW_BATCH if args.follow else FILE_BATCH
    if args.batch < 1:
        print("carepath: --batch must be at least 1", file=sys.stderr)
        return 2
    if args.follow and not args.quiet and not getattr(args, "log_level_given", False):
        logs.set_level("info")  # a worker reports its batches
    playbooks = load_playbooks(args.playbooks)
    if isinstance(playbooks, int):
        return playbooks
    roster = read_roster(args.roster, playbooks)
    if isinstance(roster, int):
        return roster
    args.roster_agents = roster
    files = _open(args)
    if isinstance(files, int):
        return files
    refusal = _stranded(args, playbooks, files)
    if refusal:
        return refusal
    job = _Job(args, playbooks, files)
    stop = _Stop()
    # a worker stops cleanly on SIGTERM or SIGINT: the open batch commits, then it exits 0
    signals = (signal.SIGTERM, signal.SIGINT) if args.follow else ()
    old = {s: signal.signal(s, stop) for s in signals}
    started = time.monotonic()
    try:
        with _batch_gc(args.follow):
            job.drive(stop)
    except KeyboardInterrupt:
        job.progress.close()
        job.say("interrupted; run the same command again to go on", logging.WARNING)
        return 130
    finally:
        for signum, handler in old.items():
            signal.signal(signum, handler)
        job.progress.close()
        files.close()
    return job.summary(time.monotonic() - started)
