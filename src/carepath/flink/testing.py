"""Fault injection for the Flink job's tests (imports PyFlink).

:class:`FailOnce` passes event lines through, slowly, until a checkpoint of the job has completed
(a ``chk-N/_metadata`` file under the checkpoint directory) and at least ``after`` lines went by;
then it raises, once. It records in ``marker_dir`` which line each attempt started with, so a test
can tell that the restarted job resumed from the checkpoint (its first line is not the file's
first line) rather than from the beginning. Once it has failed it passes lines at full speed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from pyflink.datastream import MapFunction, RuntimeContext  # type: ignore[import-untyped, import-not-found, unused-ignore]

__all__ = ["FailOnce", "attempts"]


class FailOnce(MapFunction):  # type: ignore[misc, unused-ignore]
    """Identity on lines; raises ``RuntimeError`` once, at the first line (from line ``after`` on)
    seen after a checkpoint under ``checkpoint_dir`` completed; ``sleep_s`` per line until then."""

    def __init__(
        self, marker_dir: str, checkpoint_dir: str, after: int = 3, sleep_s: float = 1.0
    ) -> None:
        self.marker_dir = marker_dir
        self.checkpoint_dir = checkpoint_dir
        self.after = after
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
            (d / f"attempt-{self.attempt}-{time.time_ns()}.json").write_text(
                json.dumps(str(value)), encoding="utf-8"
            )
        failed = d / "failed"
        if failed.exists():
            return value
        if self.count >= self.after and any(Path(self.checkpoint_dir).glob("*/chk-*/_metadata")):
            failed.write_text(str(value), encoding="utf-8")
            raise RuntimeError(f"injected failure at line {self.count} of attempt {self.attempt}")
        time.sleep(self.sleep_s)
        return value


def attempts(marker_dir: str) -> list[str]:
    """The first line seen by each attempt, in order."""
    files = sorted(Path(marker_dir).glob("attempt-*.json"), key=lambda p: int(p.stem.split("-")[2]))
    return [json.loads(p.read_text(encoding="utf-8")) for p in files]
