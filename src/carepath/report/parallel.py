"""The reports of a what-if, built side by side.

A what-if (``carepath report --compare``) builds one report per playbook, each from its own
replay and nothing else, so they need not wait for one another: :func:`build_reports` forks a
process for every report after the first, builds the first in this one, and takes the others as
they are sent back. The result is the list :func:`~carepath.report.build_report` gives one by
one, by construction (the same function on the same replay); a child that fails for any reason
has its report built again here, which then raises what building it raises.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from typing import TYPE_CHECKING, Any

from carepath.report.build import build_report

if TYPE_CHECKING:
    from carepath.compile.ir import Playbook
    from carepath.drivers.replay import Replay

__all__ = ["PARALLEL_MIN_EVENTS", "build_reports"]

#: Below this many replayed events in all, the reports are built one after the other (a fork and
#: sending a report back cost more than a small build).
PARALLEL_MIN_EVENTS = 50_000


def build_reports(playbooks: list[Playbook], replays: list[Replay]) -> list[dict[str, Any]]:
    """``[build_report(pb, rp) for pb, rp in zip(playbooks, replays)]``, the reports after the
    first built in forked processes while this one builds the first (where ``fork`` exists and
    the replays are large enough to gain: :data:`PARALLEL_MIN_EVENTS`)."""
    pairs = list(zip(playbooks, replays, strict=True))
    if (
        len(pairs) < 2
        or "fork" not in multiprocessing.get_all_start_methods()
        or sum(rp.n_events for _, rp in pairs) < PARALLEL_MIN_EVENTS
    ):
        return [build_report(pb, rp) for pb, rp in pairs]
    ctx = multiprocessing.get_context("fork")
    started = []
    try:
        for pb, rp in pairs[1:]:
            parent, child = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_build_in_child, args=(pb, rp, child))
            proc.start()
            child.close()
            started.append((parent, proc))
        out = [build_report(*pairs[0])]
        for (pb, rp), (conn, _) in zip(pairs[1:], started, strict=True):
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                msg = None
            ok = isinstance(msg, tuple) and len(msg) == 2 and msg[0] == "report"
            out.append(msg[1] if ok else build_report(pb, rp))
        return out
    finally:
        for conn, proc in started:
            conn.close()
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()


def _build_in_child(pb: Playbook, rp: Replay, conn: Any) -> None:
    """A child's body: the report sent back, or word that it failed (the parent builds it)."""
    try:
        conn.send(("report", build_report(pb, rp)))
    except BaseException as exc:  # the parent builds this report itself, and raises what it raises
        with contextlib.suppress(Exception):
            conn.send(("failed", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()
        os._exit(0)  # no atexit handlers, no flushing of the parent's inherited buffers
