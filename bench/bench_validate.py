"""Benchmark: validating playbooks (``carepath.loading.check``), in CPU time.

Run with ``python bench/bench_validate.py [--repeat 5]``. Times the two examples and a generated
playbook of at least 1,000 lines (the one ``tests/cli/test_cli_validate.py`` validates), best of
``--repeat`` runs each, in process CPU time. Validation speed is measured here, never asserted in
the test suite.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from carepath.loading import check  # noqa: E402


def best_cpu(text: str, name: str, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        res = check(text, file=name)
        best = min(best, time.process_time() - t0)
        assert res.ok, [d.to_dict() for d in res.diagnostics if d.severity == "error"]
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    from test_cli_validate import big_playbook

    cases = {
        p.name: p.read_text(encoding="utf-8")
        for p in sorted((ROOT / "examples").glob("*.yaml"))
        if not p.name.endswith(".test.yaml")
    }
    cases["generated (1,000+ lines)"] = big_playbook(1000)
    check(cases["generated (1,000+ lines)"])  # warm the imports outside the timing
    for name, text in cases.items():
        lines = text.count("\n")
        secs = best_cpu(text, name, args.repeat)
        print(
            f"{name:34} {lines:6,d} lines  {secs * 1000:8.1f} ms CPU  {lines / secs:10,.0f} lines/s"
        )


if __name__ == "__main__":
    main()
