"""Evaluations per second of a compiled 3-clause condition (SPEC §2.3; issue 2 item 5).

Run: ``.venv/bin/python bench/bench_expr.py``. Prints evaluations/s through ``Expr.__call__``,
through ``Expr.fn`` (one call layer less) and, as a reference, Python's own ``eval`` of the
equivalent precompiled code object (names bound as locals), with the ratio between them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from carepath.expr.compiler import compile_expr
from carepath.expr.types import FieldType, TypeEnv

SOURCE = 'priority == "urgent" and customer.tier in ["gold","vip"] or event.score < 3'
PY_EQUIV = 'priority == "urgent" and customer_tier in ["gold","vip"] or event_score < 3'
N = 1_000_000


def rate(fn: Callable[[], Any], n: int = N) -> float:
    """Best of three runs of ``n`` calls, in calls per second."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - t0)
    return n / best


def main() -> None:
    env = TypeEnv(
        {
            "priority": FieldType("enum", ("low", "normal", "high", "urgent")),
            "customer.tier": FieldType("enum", ("standard", "gold", "vip")),
        }
    )
    expr = compile_expr(SOURCE, env)
    fields = {"priority": "high", "customer.tier": "standard"}  # worst case: every clause runs
    event = {"type": "case.opened", "score": 5}
    scope: dict[str, Any] = {}
    assert expr(fields, event, scope) is False

    code = compile(PY_EQUIV, "<py>", "eval")
    py_locals = {"priority": "high", "customer_tier": "standard", "event_score": 5}
    py_globals: dict[str, Any] = {"__builtins__": {}}

    r_call = rate(lambda: expr(fields, event, scope))
    fn = expr.fn
    r_fn = rate(lambda: fn(fields, event, scope))
    r_eval = rate(lambda: eval(code, py_globals, py_locals))
    print(f"condition: {SOURCE}")
    print(f"carepath Expr(...)    {r_call:>12,.0f} evaluations/s")
    print(f"carepath Expr.fn(...) {r_fn:>12,.0f} evaluations/s")
    print(f"python eval(code)     {r_eval:>12,.0f} evaluations/s   (reference)")
    print(f"ratio Expr/eval       {r_call / r_eval:>12.2f}x")


if __name__ == "__main__":
    main()
