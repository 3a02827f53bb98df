"""Reports built side by side, in forked processes.

A what-if (``carepath report --compare``) builds one report per playbook, each from its own
replay and nothing else, so they need not wait for one another: :func:`build_reports` forks a
process for every report after the first, builds the first in this one, and takes the others as
they are sent back. A single report of a large replay is split in two the same way: a forked
process computes its ``details`` (rates, staffing per channel, goal windows: see
:mod:`carepath.report.details`) while this one computes the rest. The result is the list
:func:`~carepath.report.build_report` gives one by one, by construction (the same functions on the
same replay); a part whose child fails for any reason is computed again here, which then raises
what computing it raises.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from carepath.report.build import build_report

if TYPE_CHECKING:
    from carepath.compile.ir import Playbook
    from carepath.drivers.replay import Replay

__all__ = ["PARALLEL_MIN_EVENTS", "Forked", "build_reports"]

#: Below this many replayed events in all, the reports are built one after the other, each in
#: one piece (a fork and sending a report back cost more than a small build).
PARALLEL_MIN_EVENTS = 50_000

_T = TypeVar("_T")


def build_reports(playbooks: list[Playbook], replays: list[Replay]) -> list[dict[str, Any]]:
    """``[build_report(pb, rp) for pb, rp in zip(playbooks, replays)]``, the reports after the
    first built in forked processes while this one builds the first, or the details of a single
    report in a forked process (where ``fork`` exists and the replays are large enough to gain:
    :data:`PARALLEL_MIN_EVENTS`)."""
    pairs = list(zip(playbooks, replays, strict=True))
    if (
        not pairs
        or "fork" not in multiprocessing.get_all_start_methods()
        or sum(rp.n_events for _, rp in pairs) < PARALLEL_MIN_EVENTS
    ):
        return [build_report(pb, rp) for pb, rp in pairs]
    if len(pairs) == 1:  # one report: its details beside the rest
        return [build_report(*pairs[0], apart=Forked)]
    # every report after the first in a child (none split: the processes fill the cores)
    later = [Forked(partial(build_report, pb, rp)) for pb, rp in pairs[1:]]
    try:
        first = build_report(*pairs[0])
        return [first, *(f.result() for f in later)]
    finally:
        for f in later:
            f.cancel()


class Forked(Generic[_T]):
    """``work()`` started in a forked process: :meth:`result` gives what the child sent back
    (pickled), or ``work()`` run here when the child failed for any reason (it then raises what
    ``work`` raises); :meth:`cancel` stops a child whose result is no longer wanted."""

    def __init__(self, work: Callable[[], _T]) -> None:
        self._work = work
        self._heard = False
        ctx = multiprocessing.get_context("fork")
        self._conn, child = ctx.Pipe(duplex=False)
        self._proc: Any = ctx.Process(target=_in_child, args=(work, child), daemon=True)
        try:
            self._proc.start()
        except OSError:  # no process to spare: the work is done here, when asked for
            self._proc = None
        child.close()

    def result(self) -> _T:
        """The work's result (waits for the child)."""
        msg = None
        if self._proc is not None:
            try:
                msg = self._conn.recv()
            except (EOFError, OSError):  # the child ended without a word
                msg = None
            self._heard = True
        self.cancel()
        if isinstance(msg, tuple) and len(msg) == 2 and msg[0] == "done":
            return msg[1]  # type: ignore[no-any-return]
        return self._work()

    def cancel(self) -> None:
        """The child stopped (unless it has answered: then it is ending) and waited for."""
        self._conn.close()
        proc, self._proc = self._proc, None
        if proc is not None:
            if not self._heard:
                proc.kill()
            proc.join()


def _in_child(work: Callable[[], Any], conn: Any) -> None:
    """A child's body: the result sent back, or word that it failed (the parent does the work)."""
    try:
        conn.send(("done", work()))
    except BaseException as exc:  # the parent does the work itself, and raises what it raises
        with contextlib.suppress(Exception):
            conn.send(("failed", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()
        os._exit(0)  # no atexit handlers, no flushing of the parent's inherited buffers
