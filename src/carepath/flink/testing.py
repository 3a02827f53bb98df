"""Fault injection for the Flink job's tests (imports PyFlink).

:class:`FailOnce` passes event lines through and raises once, at the ``at``-th line of its first
attempt; it records in ``marker_dir`` which line each attempt started with, so a test can tell that
the restarted job resumed from a checkpoint (its first line is not the file's first line) rather
than from the beginning.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from pyflink.datastream import MapFunction, RuntimeContext  # type: ignore[import-untyped, import-not-found, unused-ignore]

__all__ = ["FailOnce", "attempts"]


class FailOnce(MapFunction):  # type: ignore[misc, unused-ignore]
    """Identity on lines; raises ``RuntimeError`` once, at line ``at`` (1-based) of the first attempt.
    ``sleep_s`` per line keeps the job running long enough for checkpoints to complete."""

    def __init__(self, marker_dir: str, at: int, sleep_s: float = 0.0) -> None:
        self.marker_dir = marker_dir
        self.at = at
        self.sleep_s = sleep_s
        self.count = 0
        self.attempt = 0

    def open(self, runtime_context: RuntimeContext) -> None:
        self.count = 0
        self.attempt = runtime_context.get_attempt_number()

    def map(self, value: Any) -> Any:
        self.count += 1
        d = Path(self.marker_dir)
        if self.count == 1:
            (d / f"attempt-{self.attempt}-{time.time_ns()}.json").write_text(json.dumps(str(value)), encoding="utf-8")
        if self.sleep_s:
            time.sleep(self.sleep_s)
        failed = d / "failed"
        if self.count == self.at and not failed.exists():
            failed.write_text(str(value), encoding="utf-8")
            raise RuntimeError(f"injected failure at line {self.at}")
        return value


def attempts(marker_dir: str) -> list[str]:
    """The first line seen by each attempt, in order."""
    files = sorted(Path(marker_dir).glob("attempt-*.json"), key=lambda p: int(p.stem.split("-")[2]))
    return [json.loads(p.read_text(encoding="utf-8")) for p in files]
