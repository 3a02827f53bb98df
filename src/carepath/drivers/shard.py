"""The report's replay over worker processes, one share of the cases each (issue 17).

Cases are independent, so :func:`replay_sharded` forks ``workers`` processes that each read the
whole log, decode only the lines of their share (``crc32(case) % workers``; the line's ``case``
is found in its text, and the decoded event confirms it) and replay them; the parent merges
what they collected. An event without a case reaches no case: it is a share's by
``crc32(id) % workers`` (so a resent one meets its first copy), unless the sinks keep such
events of its type together (:func:`caseless_together`), which go to the first share. The
result is the one replay of every case in one process, fact for fact and in the same order
(:class:`~carepath.drivers.replay.Keys` says where each fact came from), with three things that
only one process can decide handled as follows:

* **the end**: a replay stops at the last event of the log, so each worker replays its share,
  reports its last instant, and advances its open cases to the latest of them;
* **duplicates**: an id met before is a duplicate; each worker knows its own share's ids, and
  when two shares meet the same id the log is replayed in one process instead;
* **guesses**: a line whose ``case`` the text does not show plainly (escapes, a second ``"case"``
  key) is decoded for its share; an event that turns out to belong to another share makes the
  log replay in one process instead (never a wrong result, at worst the time of one process).

Only a JSONL file qualifies, under playbooks whose case key is ``event.case``; anything else, and
any failure in a worker, replays in one process (:func:`~carepath.drivers.replay.replay_log`),
which then raises what it raises. The merged :class:`~carepath.drivers.replay.Replay` keeps no
``states`` (``cases`` counts them) and its ``facts`` is a merged
:class:`~carepath.metrics.Collector`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import re
import zlib
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carepath._native import core_function
from carepath.drivers.eventfile import (
    _BOM,
    PROGRESS_LINES,
    BadEvent,
    LineReader,
    ProgressHook,
    open_source,
)
from carepath.drivers.replay import (
    FactSink,
    Keys,
    Replay,
    _replayer,
    _Unsorted,
    batch_gc,
    event_key,
    replay_log,
)
from carepath.drivers.whatif import changed_targets, consistent, rest_part
from carepath.engine.batch_gc import paused_gc
from carepath.events import (
    MAX_EVENT_BYTES,
    MAX_EVENT_DEPTH,
    Event,
    Line,
    event_from_line,
    event_from_plain,
)

if TYPE_CHECKING:
    from carepath.compile.ir import Playbook

__all__ = [
    "ShardFailed",
    "caseless_together",
    "default_workers",
    "replay_log_sharded",
    "replay_sharded",
    "shard_of",
    "shardable",
]

#: Below this size a log is replayed in one process (forking costs more than it saves).
MIN_SHARDED_BYTES = 4 << 20
#: How often (seconds) the parent reads how far its workers are, for a progress hook.
PROGRESS_POLL_S = 0.2


def default_workers(path: str | os.PathLike[str]) -> int:
    """The usable CPUs for a JSONL file of at least :data:`MIN_SHARDED_BYTES`, else 1."""
    try:
        size = Path(path).stat().st_size
    except OSError:
        return 1
    if size < MIN_SHARDED_BYTES:
        return 1
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def replay_log_sharded(
    playbooks: list[Playbook],
    source: Any,
    sink: Callable[[Playbook], FactSink] | None = None,
    *,
    workers: int | None = None,
    stats: dict[str, Any] | None = None,
    progress: ProgressHook | None = None,
    incremental: bool = True,
) -> list[Replay]:
    """:func:`~carepath.drivers.replay.replay_log` over ``workers`` processes (default:
    :func:`default_workers`) when the log and the playbooks allow it (:func:`shardable`), else
    in this one; the same replays either way, but a sharded one keeps no ``states``. ``stats``
    (a dict, when given) receives ``workers`` (the processes used) and ``worker_rss_kib`` (the
    peak RSS of each). ``progress`` is told how far the reading is: over workers, the bytes and
    lines that every one of them has consumed (:func:`replay_sharded`).

    The what-if of two playbooks that differ only in SLA targets
    (:func:`~carepath.drivers.whatif.changed_targets`) replays under the second only the cases
    the change can reach, in worker processes or in this one (``incremental=False``: every case,
    for a comparison); the replays are the same."""
    n = (
        (default_workers(source) if shardable(playbooks, source) else 1)
        if workers is None
        else workers
    )
    if stats is not None:
        stats.update(workers=1, worker_rss_kib=[])
    watch = changed_targets(*playbooks) if incremental and len(playbooks) == 2 else None
    if shardable(playbooks, source) and (n > 1 or watch is not None):
        try:
            if n > 1:
                # the parent unpickles and merges millions of small objects, all kept: with
                # the default thresholds, full collections over them took three quarters of
                # that time, and any collection finds nothing to free
                with paused_gc():
                    replays, bad, rss = replay_sharded(
                        playbooks, source, sink, n, progress, watch=watch
                    )
            else:  # the what-if's shortcut, in this process
                with batch_gc():
                    replays, bad, rss = _replay_here(playbooks, source, sink, watch, progress)
        except ShardFailed:
            pass
        else:
            for rp in replays:
                rp.bad = list(bad)
            if stats is not None:
                stats.update(workers=n, worker_rss_kib=rss)
            return replays
    return replay_log(playbooks, source, sink, progress=progress)


def shardable(playbooks: list[Playbook], source: object) -> bool:
    """Whether :func:`replay_sharded` can take this log: a JSONL file (not standard input, not
    YAML), playbooks keyed by ``event.case``, and ``fork`` available."""
    if not isinstance(source, str | os.PathLike) or os.fspath(source) == "-":
        return False
    if Path(source).suffix in (".yaml", ".yml"):
        return False
    if "fork" not in multiprocessing.get_all_start_methods():
        return False
    return all(pb.start.key_text.strip().lstrip("=").strip() == "event.case" for pb in playbooks)


def shard_of(case: str | None, workers: int) -> int:
    """The share a case key belongs to (no key: the first)."""
    if case is None:
        return 0
    return zlib.crc32(case.encode("utf-8", "surrogatepass")) % workers


def share_of(event: Event, workers: int, together: frozenset[str] | None) -> int:
    """The share of ``event``: its case's; without a case, ``crc32(id) % workers``, or the first
    when ``together`` (see :func:`caseless_together`) is None or holds its type."""
    if event.case is not None:
        return shard_of(event.case, workers)
    if together is None or event.type in together:
        return 0
    return zlib.crc32(event.id.encode("utf-8", "surrogatepass")) % workers


def caseless_together(
    playbooks: list[Playbook], sink: Callable[[Playbook], FactSink] | None
) -> frozenset[str] | None:
    """The event types whose events without a case the sinks of ``playbooks`` must all see in
    one replay: the union of each sink's ``caseless_together`` (the metrics' collector keeps a
    reply, a solve and a reopening without a case under one key). None when a sink does not
    say: then every event without a case goes to the first share. The others are spread by id:
    a log's orders, say, are often a tenth of it and reach no case."""
    if sink is None:
        return frozenset()
    out: set[str] = set()
    for pb in playbooks:
        types = getattr(sink(pb), "caseless_together", None)
        if not isinstance(types, frozenset):
            return None
        out |= types
    return frozenset(out)


_CASE_BYTES = re.compile(rb'"case"[ \t]*:[ \t]*"([^"\\]*)"')


def _case_in_bytes(raw: bytes) -> tuple[bool, bytes | None]:
    """``(True, case)`` when the line's bytes show its ``case`` plainly — one ``"case"`` that is a
    key with a string value without escapes — else ``(False, None)``: the line is decoded to
    know (one without a case goes by its id and type, :func:`share_of`)."""
    n = raw.count(b'"case"')
    if n == 1:
        m = _CASE_BYTES.search(raw)
        if m is not None:
            return True, m.group(1)
    return False, None


#: The share of a share's cases beyond which a what-if of targets replays it whole under the
#: second playbook rather than its reached cases under both (two replays of 40 % of the cases,
#: and reading their lines again, cost about one replay of them all).
REACHED_AT_MOST = 0.4
#: How much of the log a worker hands the core at once to sort into shares.
BLOCK_BYTES = 1 << 20


def free_pages() -> Callable[[], object]:
    """A function that asks the C allocator to return its free pages to the system (glibc's
    ``malloc_trim``; elsewhere it does nothing).

    A replay allocates and frees small blocks by the million (the core's steps, decoded lines)
    between the cases it keeps, and the allocator keeps the free pages among them: after a
    1,000,000-event replay, a third of the process's resident memory. A shard worker calls it
    once its cases' states are dropped, before it pickles its results."""
    import ctypes

    try:
        malloc_trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return lambda: None
    malloc_trim.argtypes = [ctypes.c_size_t]
    malloc_trim.restype = ctypes.c_int
    return lambda: malloc_trim(0)


class _Elsewhere(Exception):
    """A decoded event belongs to another share, or two shares met the same id."""


class _Share:
    """One worker's replay of its share of the cases."""

    def __init__(
        self,
        playbooks: list[Playbook],
        path: str | os.PathLike[str],
        sink: Callable[[Playbook], FactSink] | None,
        me: int,
        workers: int,
        told: Any = None,
        watch: dict[str, frozenset[int]] | None = None,
        progress: ProgressHook | None = None,
    ) -> None:
        self.playbooks, self.path, self.sink = playbooks, path, sink
        self.progress = progress  # in this process (one share): told directly
        self.me, self.workers = me, workers
        self.told = told  # shared with the parent: (bytes, lines) read by each worker
        # the what-if of a change of targets (two playbooks): the second replays only the cases
        # the change can reach (:mod:`carepath.drivers.whatif`)
        self.watch = watch
        self.together = caseless_together(playbooks, sink)

    def _hook(self) -> ProgressHook | None:
        told, at = self.told, 2 * self.me
        if told is None:
            return self.progress

        def hook(position: int, count: int) -> None:
            told[at], told[at + 1] = position, count

        return hook

    def lines(self, bad: list[BadEvent], only: set[str] | None = None, quiet: bool = False) -> Any:
        """``(line number, event)`` of this share, in file order; its bad lines into ``bad``.
        Each line is decoded once, and only when it may be this share's (see the module).
        ``only``: the lines of those case keys alone; ``quiet``: the progress is not told (a
        second reading)."""
        me, workers, together = self.me, self.workers, self.together
        crc = zlib.crc32
        plain = [False]  # the line being read shows its case (this share's) in its text
        wanted = None if only is None else {c.encode("utf-8", "surrogatepass") for c in only}

        def elsewhere(raw: bytes) -> bool:  # another share's line, seen without decoding it
            shown, case = _case_in_bytes(raw)
            if (
                shown
                and case is not None
                and (crc(case) % workers != me or (wanted is not None and case not in wanted))
            ):
                return True
            plain[0] = shown
            return False

        decode = event_from_line
        with open_source(self.path) as stream:
            for shown, item in self._items(stream, elsewhere, plain, wanted, quiet):
                if isinstance(item, Line):
                    number, text, problem = item
                    if problem is not None:  # the reader's (too long, not UTF-8): said once
                        if shown or me == 0:  # by its share, or by the first
                            bad.append(BadEvent(number, problem, text))
                        continue
                    try:
                        e = decode(text)
                    except (ValueError, TypeError) as exc:
                        if shown or me == 0:  # this share's line, or one nobody can place
                            bad.append(BadEvent(number, str(exc), text))
                        continue
                else:
                    number, e = item
                if share_of(e, workers, together) != me:
                    if shown:
                        raise _Elsewhere(f"line {number}: its case is not the one its text shows")
                    continue
                if only is not None and e.case not in only:
                    continue
                if number >= 1 << 32:  # beyond what a merge key holds: one process decides
                    raise _Elsewhere(f"line {number}: too many lines to merge shares")
                yield number, e

    def _items(
        self,
        stream: Any,
        elsewhere: Callable[[bytes], bool],
        plain: list[bool],
        wanted: set[bytes] | None = None,
        quiet: bool = False,
    ) -> Iterator[tuple[bool, tuple[int, Event] | Line]]:
        """``(shown, item)`` for the lines of this share and those no share can place from their
        bytes, as :meth:`LineReader.items` gives them (``shown``: the bytes showed the share).
        The core sorts whole blocks of lines (:data:`BLOCK_BYTES`) without a Python call per
        line; a line it does not take (longer than the limit, the last one without a newline, a
        log that starts with a byte-order mark) and everything after it is read by the
        :class:`LineReader`, line by line, as without the core. ``wanted`` (case keys as UTF-8
        bytes): the core also leaves out the lines whose bytes show another case, or none. A
        line without a case whose bytes show its type and id plainly is placed by them, as
        :func:`share_of` places its event (``shown``); one that does not show them is decoded
        by every worker."""
        hook = None if quiet else self._hook()
        reader = LineReader(stream, skip=elsewhere)
        # the core's sorting of whole lines into shares, ``(block, me, workers, limit[, only[,
        # together[, plain]]])``; without the core, the LineReader reads every line
        sort = core_function("_share_lines")
        bom = sort is not None and stream.read(len(_BOM)) == _BOM
        if sort is not None:
            stream.seek(0)
        if sort is not None and not bom:
            me, workers, limit = self.me, self.workers, reader.limit
            # a line without a case is placed by its type and id when its bytes show them
            together = (
                None
                if self.together is None
                else {t.encode("utf-8", "surrogatepass") for t in self.together}
            )
            whole, from_plain = reader.whole, event_from_plain
            bounds = (MAX_EVENT_BYTES, MAX_EVENT_DEPTH)  # what the core checks of a plain line
            carry = b""
            consumed = 0
            told = 0
            while True:
                data = stream.read(BLOCK_BYTES)
                block = carry + data if carry else data
                lines, count, used = sort(block, me, workers, limit, wanted, together, bounds)
                base = reader.number
                for index, shown, raw, seconds in lines:
                    reader.number = base + index + 1
                    # a plain line's byte checks and instant are the core's (event_from_plain)
                    e = None if seconds is None else from_plain(raw, seconds)
                    item = whole(raw) if e is None else (reader.number, e)
                    if item is not None:
                        yield shown, item
                reader.number = base + count
                consumed += used
                reader.bytes_read = consumed
                if hook is not None and reader.number - told >= PROGRESS_LINES:
                    told = reader.number
                    hook(consumed, reader.number)
                carry = block[used:]
                if not data or b"\n" in carry or len(carry) > limit + 1:
                    break  # the end, or a line the core leaves to the reader
            stream.seek(consumed)
        for n, item in enumerate(reader.items(), 1):
            if hook is not None and n % PROGRESS_LINES == 0:
                hook(reader.bytes_read, reader.number)
            shown, plain[0] = plain[0], False
            yield shown, item
        if hook is not None:
            hook(reader.bytes_read, reader.number)

    def run(self, send: Callable[[Any], None], receive: Callable[[], Any]) -> None:
        """Replay the share; say the last instant; hear the log's; send the results: per
        playbook, the exported parts that make its replay of the share."""
        with batch_gc():
            bad: list[BadEvent] = []
            reached: set[str] | None = None
            if self.watch is None:
                keys, sinks, finishes, _ = self._pass(self.playbooks, bad)
                last = max((k.last for k in keys if k.last is not None), default=None)
                send(("last", last))
                until = receive()
                # counted, not kept: the cases' states are not sent (memory, before pickling)
                replays = [finish(until, keep_states=False) for finish in finishes]
                out = [
                    [_export(rp, k, sink)] for rp, k, sink in zip(replays, keys, sinks, strict=True)
                ]
            else:
                out, reached = self._what_if(bad, send, receive)
            every = [p["keys"] for parts in out for p in parts]
            for k in every:  # the merge reads the facts' keys, not where each case began
                k.first = {}
            free_pages()()
            # every id met, as 64-bit hashes (a forked process hashes strings as its parent); the
            # ids are distinct, so are their hashes but once in 10^7 logs (then the parent
            # replays in one process, as for an id two shares met). Not sorted: the parent
            # looks each share's up in a set of the others'.
            met = every[0].seen if len(every) == 1 else set().union(*(k.seen for k in every))
            ids = _id_hashes(met)
            del met
            for k in every:
                k.seen = set()
        import resource

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        send(("done", out, bad, rss, ids, reached))

    def _what_if(
        self, bad: list[BadEvent], send: Callable[[Any], None], receive: Callable[[], Any]
    ) -> tuple[list[list[dict[str, Any]]], set[str] | None]:
        """:meth:`run` for the what-if of a change of targets (:mod:`carepath.drivers.whatif`):
        the first playbook replays the share and notes the cases the change can reach; both
        replay those cases alone; the second playbook's parts are the first's replay without
        them, and its own replay of them. Before the last instant is said, the share is known
        to be replayed alike by both playbooks outside those cases
        (:func:`~carepath.drivers.whatif.consistent`), or it is replayed whole under the
        second. With the parts, the keys of the cases the second playbook replayed (None:
        all)."""
        first, second = self.playbooks
        (ka,), (sa,), (fa,), (ra,) = self._pass([first], bad, watch=self.watch)
        reached = set(ra.reached or ())  # the cases reached by the events (the end adds more)
        groups = []
        # replaying the reached cases under both playbooks costs two replays of them: past
        # REACHED_AT_MOST of the cases, one whole replay under the second costs less
        whole = len(reached) > REACHED_AT_MOST * len(ra.states)
        if reached and not whole:
            group = self._pass([first, second], [], only=reached, quiet=True)
            kk = group[0]
            whole = not consistent(ka, kk[0], kk[1], reached)
            if not whole:
                groups.append(group)
        if whole:
            (kb,), (sb,), (fb,), _ = self._pass([second], [], quiet=True)
            lasts = [k.last for k in (ka, kb) if k.last is not None]
            send(("last", max(lasts, default=None)))
            until = receive()
            part_a = _export(fa(until, keep_states=False), ka, sa)
            return [[part_a], [_export(fb(until, keep_states=False), kb, sb)]], None
        send(("last", ka.last))
        until = receive()
        part_a = _export(fa(until, keep_states=False), ka, sa)
        later = (ra.reached or set()) - reached  # reached only as the end advanced them
        if later:
            group = self._pass([first, second], [], only=later, quiet=True)
            if not consistent(ka, group[0][0], group[0][1], later):  # one process decides
                raise _Elsewhere("an id met again in the cases the end reached and others")
            groups.append(group)
        rest: dict[str, Any] | None = part_a
        parts_b = []
        for keys, sinks, finishes, _ in groups:
            pa, pb = (
                _export(finish(until, keep_states=False), k, sink)
                for finish, k, sink in zip(finishes, keys, sinks, strict=True)
            )
            rest = rest_part(rest, pa, getattr(sa, "without", None))  # type: ignore[arg-type]
            if rest is None:
                raise _Elsewhere("the reached cases' facts are not the replay's")
            parts_b.append(pb)
        assert rest is not None
        return [[part_a], [rest, *parts_b]], reached | later

    def _pass(
        self,
        playbooks: list[Playbook],
        bad: list[BadEvent],
        only: set[str] | None = None,
        watch: dict[str, frozenset[int]] | None = None,
        quiet: bool = False,
    ) -> tuple[list[Keys], list[FactSink | None], list[Callable[..., Replay]], list[Replay]]:
        """Feed the share's lines (of the case keys ``only``) to a replay under each playbook
        (the first watching ``watch``): their keys, sinks, ``finish`` functions and replays
        being filled; ``quiet``: a second reading, which tells no progress. A share out of ``at`` order is read whole and sorted (stably), as one
        process does."""

        def attempt(items: Any) -> Any:
            keys = [Keys() for _ in playbooks]
            sinks = [None if self.sink is None else self.sink(pb) for pb in playbooks]
            live: list[Replay] = []
            finishes = self._replay(playbooks, keys, sinks, items, watch, live)
            return keys, sinks, finishes, live

        try:
            return attempt(iter(self.lines(bad, only, quiet)))  # type: ignore[no-any-return]
        except _Unsorted:
            bad.clear()
            items = sorted(self.lines(bad, only, quiet), key=lambda x: x[1]._ts)
            return attempt(iter(items))  # type: ignore[no-any-return]

    def _replay(
        self,
        playbooks: list[Playbook],
        keys: list[Keys],
        sinks: list[FactSink | None],
        items: Any,
        watch: dict[str, frozenset[int]] | None = None,
        live: list[Replay] | None = None,
    ) -> list[Callable[..., Replay]]:
        pairs = [
            _replayer(pb, sink, False, k, watch=watch if i == 0 else None, live=live)
            for i, (pb, sink, k) in enumerate(zip(playbooks, sinks, keys, strict=True))
        ]
        feeds = [f for f, _ in pairs]
        last = -float("inf")
        if len(feeds) == 1:  # the report: one playbook, the loop without inner loops
            feed, k = feeds[0], keys[0]
            for number, e in items:
                t = e._ts
                if t < last:
                    raise _Unsorted
                last = t
                k.now = (round(t * 1_000_000) << 32) | number  # event_key(t, number), inline
                feed(e)
            return [finish for _, finish in pairs]
        for number, e in items:
            t = e._ts
            if t < last:
                raise _Unsorted
            last = t
            now = event_key(t, number)
            for k in keys:
                k.now = now
            for feed in feeds:
                feed(e)
        return [finish for _, finish in pairs]


def _export(rp: Replay, keys: Keys, sink: FactSink | None) -> dict[str, Any]:
    export = getattr(sink, "export", None)
    return {
        "n_events": rp.n_events,
        "duplicates": rp.duplicates,
        "first_s": rp.first_s,
        "last_s": rp.last_s,
        "cases": rp.cases,
        "records": rp.records,
        "breaches": rp.breaches,
        "opened": rp.opened,
        "actions": dict(rp.actions),
        "rejected": [(e.id, e.type, e.at, e.case, dict(e.data), msg) for e, msg in rp.rejected],
        "keys": keys,
        "facts": None if export is None else export(),
    }


def _work(share: _Share, conn: Any) -> None:
    """A worker's body: any failure is sent as such (the parent then replays in one process)."""
    try:
        with paused_gc():  # a worker's replay keeps its objects, or frees them by count
            share.run(conn.send, conn.recv)
    except BaseException as exc:  # reported to the parent, which decides
        with contextlib.suppress(Exception):  # else the parent sees the pipe close
            conn.send(("failed", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()
        os._exit(0)  # no atexit handlers, no flushing of the parent's inherited buffers


class ShardFailed(Exception):
    """The sharded replay cannot give the one-process result (the caller replays in one)."""


def replay_sharded(
    playbooks: list[Playbook],
    path: str | os.PathLike[str],
    sink: Callable[[Playbook], FactSink] | None,
    workers: int,
    progress: ProgressHook | None = None,
    *,
    watch: dict[str, frozenset[int]] | None = None,
) -> tuple[list[Replay], list[BadEvent], list[int]]:
    """The replays of ``path`` under each playbook, by ``workers`` forked processes; with the
    bad lines (file order) and each worker's peak RSS in KiB. Raises :class:`ShardFailed`.

    Each worker reads the whole log; ``progress`` (when given) is told, every
    :data:`PROGRESS_POLL_S` seconds while they read, the least bytes and lines any of them has
    consumed (what every worker is past), through memory shared with them. ``watch`` (two
    playbooks): the targets in which the second differs from the first (see
    :func:`replay_log_sharded`)."""
    ctx = multiprocessing.get_context("fork")
    told = None if progress is None else ctx.RawArray("q", 2 * workers)
    conns = []
    procs = []
    try:
        for me in range(workers):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_work,
                args=(_Share(playbooks, path, sink, me, workers, told, watch), child),
            )
            proc.start()
            child.close()
            conns.append(parent)
            procs.append(proc)
        if progress is not None:
            _watch(conns, told, progress)
        lasts = [_receive(c) for c in conns]
        ends = [x[1] for x in lasts if x[1] is not None]
        until = max(ends) if ends else None
        for c in conns:
            c.send(until)
        done = _receive_all(conns)
    finally:
        for c in conns:
            c.close()
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()
    return _combine(playbooks, sink, done)


def _replay_here(
    playbooks: list[Playbook],
    path: str | os.PathLike[str],
    sink: Callable[[Playbook], FactSink] | None,
    watch: dict[str, frozenset[int]] | None,
    progress: ProgressHook | None,
) -> tuple[list[Replay], list[BadEvent], list[int]]:
    """:func:`replay_sharded`'s result from one share of every case, replayed in this process
    (the what-if's shortcut without worker processes). Raises :class:`ShardFailed`."""
    said: list[Any] = []
    share = _Share(playbooks, path, sink, 0, 1, None, watch, progress)
    try:
        share.run(said.append, lambda: said[-1][1])  # the last instant said is the log's
    except Exception as exc:  # the caller replays in one process, which raises what it raises
        raise ShardFailed(f"{type(exc).__name__}: {exc}") from None
    return _combine(playbooks, sink, [said[-1]])


def _combine(
    playbooks: list[Playbook], sink: Callable[[Playbook], FactSink] | None, done: list[Any]
) -> tuple[list[Replay], list[BadEvent], list[int]]:
    """The replays from the shares' results (``("done", parts, bad, rss, ids, reached)`` each).
    A what-if of targets whose every share took the shortcut says, in the first replay's
    ``reached``, which cases the second playbook replayed."""
    parts = [d[1] for d in done]
    bad = sorted((b for d in done for b in d[2]), key=lambda b: b.line)
    rss = [d[3] for d in done]
    if not _disjoint([d[4] for d in done]):
        # the same id (or, once in 10^7 logs, the same hash) in two shares
        raise ShardFailed("two shares of the cases met the same event id")
    replays = [
        _merge(pb, [x for part in parts for x in part[i]], sink) for i, pb in enumerate(playbooks)
    ]
    if all(d[5] is not None for d in done):
        replays[0].reached = set().union(*(d[5] for d in done))
    return replays, bad, rss


def _id_hashes(ids: set[str]) -> array[int]:
    """``array("q", map(hash, ids))``, by the core when it is installed (no integer object per
    hash: half a million of them at a worker's end)."""
    hashes = core_function("_hashes")
    if hashes is None:
        return array("q", list(map(hash, ids)))
    out = array("q")
    out.frombytes(hashes(ids))
    return out


def _disjoint(shares: list[Any]) -> bool:
    """Whether no hash is in two of ``shares`` (arrays of the ids' hashes, each share's
    distinct), by the core when it is installed. The last share is only looked up, not kept: a
    set of all but one share's."""
    disjoint = core_function("_disjoint")
    if disjoint is not None:
        return disjoint([s.tobytes() for s in shares])  # type: ignore[no-any-return]
    met: set[int] = set()
    for i, share in enumerate(shares):
        if not met.isdisjoint(share):
            return False
        if i < len(shares) - 1:
            met.update(share)
    return True


def _watch(conns: list[Any], told: Any, progress: ProgressHook) -> None:
    """Until every worker has said something (its last instant, or that it failed), tell
    ``progress`` how far the slowest worker has read."""
    from multiprocessing.connection import wait

    pending = list(conns)
    while pending:
        ready = wait(pending, timeout=PROGRESS_POLL_S)
        pending = [c for c in pending if c not in ready]
        progress(min(told[0::2]), min(told[1::2]))


def _receive_all(conns: list[Any]) -> list[Any]:
    """Each worker's results, in the order of ``conns``, taken as they come: a worker that is
    done is read (unpickled) while the others still work."""
    from multiprocessing.connection import wait

    out: list[Any] = [None] * len(conns)
    pending = {id(c): i for i, c in enumerate(conns)}
    while pending:
        for c in wait([conns[i] for i in pending.values()]):
            out[pending.pop(id(c))] = _receive(c)
    return out


def _receive(conn: Any) -> Any:
    try:
        msg = conn.recv()
    except EOFError:
        raise ShardFailed("a worker ended without its results") from None
    if msg[0] == "failed":
        raise ShardFailed(msg[1])
    return msg


def _merge(
    pb: Playbook, parts: list[dict[str, Any]], sink: Callable[[Playbook], FactSink] | None
) -> Replay:
    """One replay from the replays of disjoint shares, in the order one process has."""
    facts = None if sink is None else sink(pb)
    rp = Replay(pb, kept=False, facts=facts)
    rp.n_events = sum(p["n_events"] for p in parts)
    rp.duplicates = sum(p["duplicates"] for p in parts)
    firsts = [p["first_s"] for p in parts if p["first_s"] is not None]
    lasts = [p["last_s"] for p in parts if p["last_s"] is not None]
    rp.first_s = min(firsts) if firsts else None
    rp.last_s = max(lasts) if lasts else None
    rp.n_cases = sum(p["cases"] for p in parts)
    keys: list[Any] = []
    for p in parts:
        rp.records.extend(p["records"])
        keys += p["keys"].records
    rp.records.sort_by_stop(keys)
    rp.breaches = _ordered(parts, "breaches", lambda b, k: (b[0], k))
    rp.opened = _ordered(parts, "opened", lambda o, k: k)
    rejected = _ordered(parts, "rejected", lambda r, k: k)
    rp.rejected = [
        (Event(id=i, type=t, at=at, case=c, data=d), msg) for i, t, at, c, d, msg in rejected
    ]
    actions: Counter[str] = Counter()
    for p in parts:
        actions.update(p["actions"])
    rp.actions = actions
    merge = getattr(facts, "merge", None)
    if merge is not None:
        merge([p["facts"] for p in parts])
    return rp


def _ordered(parts: list[dict[str, Any]], name: str, key: Callable[[Any, Any], Any]) -> list[Any]:
    tagged = [
        (key(x, k), x)
        for p in parts
        for x, k in zip(p[name], getattr(p["keys"], name), strict=True)
    ]
    tagged.sort(key=lambda t: t[0])
    return [x for _, x in tagged]
