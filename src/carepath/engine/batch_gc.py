"""The cyclic garbage collector's thresholds while many engine steps run in a row.

Each step allocates short-lived containers (states, steps, actions, the core's tuples); with
CPython's default thresholds (700, 10, 10) the collector runs a young collection every 700 of them
and, every hundred, a full one over everything alive — the playbooks, the cases a replay or a
worker's state cache keeps, the results a caller holds. Measured: 60 % of a replay's time, and a
quarter of a PostgreSQL worker's CPU per event. :func:`batch_gc` raises the thresholds for the
duration of a batch job: young collections every 100,000 allocations still free the cycles, full
collections wait until the batch is over.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["BATCH_GC_THRESHOLDS", "batch_gc", "paused_gc"]

#: The collector's thresholds inside :func:`batch_gc` (each at least the host's own).
BATCH_GC_THRESHOLDS = (100_000, 1000, 1000)

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, ...] | None = None


@contextmanager
def batch_gc() -> Iterator[None]:
    """Raise the collector's thresholds for a batch job, restoring them when the last batch job
    running (in any thread: the thresholds are the process's) is over. A host that turned automatic
    collection off (threshold 0) is left alone."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            old = gc.get_threshold()
            _saved = None
            if old[0] != 0:
                _saved = old
                gc.set_threshold(
                    *(max(a, b) for a, b in zip(old, BATCH_GC_THRESHOLDS, strict=False))
                )
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                _saved = None


@contextmanager
def paused_gc() -> Iterator[None]:
    """Automatic collection off for a job whose objects either live to its end or are freed by
    their reference counts: the objects a replay keeps (cases, facts, samples) or a merge
    unpickles. A collection there finds no garbage and only walks them: measured, 0.15 s of a
    worker's replay of half a million events, whose cycles left at its end were 16 objects, the
    same with bad lines, rejected events and duplicates. The collector's state (on or off) is
    restored after; cycles made meanwhile are collected by the next collection."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
