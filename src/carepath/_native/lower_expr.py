"""A compiled :class:`~carepath.expr.compiler.Expr` → the bytecode of the core's expression VM.

The lowering reads the Python source the compiler generated (``Expr.code``, a ``lambda F, E, S:
…`` over the helpers of :mod:`carepath.expr.runtime`), not the user's text: every construct of
that code becomes one instruction with the same operands in the same order, so the VM evaluates
exactly what the reference evaluates, short-circuits and null rules included. The instruction
set is documented in ``core/src/expr.rs``; constants are encoded by :func:`encode`.

:func:`supported` says whether an expression lowers at all (constants the core cannot represent
— an ``int`` beyond 64 bits, a datetime with an unusual tzinfo — make it refuse). At run time the
VM may still defer a single evaluation to the reference (``EvalError::Fallback``) when a *value*
is one it does not model (a dict, a ``Decimal``, non-Latin ``lower()``, an ISO text of an unusual
form…), so the engine keeps ``Expr.fn`` beside the program.
"""

from __future__ import annotations

import ast
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from carepath.expr.compiler import Expr

__all__ = ["HELPERS", "Unsupported", "encode", "lower_expr", "supported"]

#: The runtime helpers the VM implements, with the argument counts it accepts (``S`` not counted).
HELPERS: dict[str, tuple[int, int]] = {
    "_lt": (2, 2),
    "_le": (2, 2),
    "_gt": (2, 2),
    "_ge": (2, 2),
    "_eq": (2, 2),
    "_ne": (2, 2),
    "_in": (2, 2),
    "_nin": (2, 2),
    "_lower": (1, 1),
    "_upper": (1, 1),
    "_len": (1, 1),
    "_days_since": (1, 1),
    "_hours_since": (1, 1),
    "_abs": (1, 1),
    "_neg": (1, 1),
    "_min": (1, 16),
    "_max": (1, 16),
    "_round": (1, 2),
    "_now": (0, 0),
    "_add": (2, 2),
    "_sub": (2, 2),
    "_mul": (2, 2),
    "_div": (2, 2),
    "_dec": (1, 1),
    "_dur": (1, 1),
    "_inst": (1, 1),
}
_WITH_SCOPE = frozenset({"_days_since", "_hours_since", "_now"})
_I64 = 2**63
_EPOCH = datetime(1970, 1, 1)
_US = timedelta(microseconds=1)
_PREFIX = "lambda F, E, S:"


class Unsupported(Exception):
    """The expression uses something the VM does not implement (the message says what)."""


def _datetime(v: datetime) -> tuple[Any, ...]:
    if v.fold:
        raise Unsupported(f"a datetime with fold=1: {v!r}")
    wall = (v.replace(tzinfo=None, fold=0) - _EPOCH) // _US
    off = v.utcoffset()
    tz = v.tzinfo
    if tz is None or off is None:
        return ("dt", wall, "naive", 0, "")
    if off % timedelta(seconds=1):
        raise Unsupported(f"a datetime with a sub-second UTC offset: {v.isoformat()}")
    secs = int(off.total_seconds())
    us = wall - secs * 1_000_000
    if type(tz) is timezone:
        plain = timezone(off)
        if tz != plain or tz.tzname(None) != plain.tzname(None):
            raise Unsupported(f"a datetime in a named timezone: {tz!r}")
        return ("dt", us, "fixed", secs, "")
    if type(tz) is ZoneInfo and tz.key is not None and ZoneInfo(tz.key) is tz:
        if v.replace(fold=1).utcoffset() != off:
            raise Unsupported(f"a datetime whose offset depends on fold: {v.isoformat()}")
        return ("dt", us, "zone", secs, tz.key)
    raise Unsupported(f"a datetime with tzinfo {type(tz).__name__}")


def encode(v: object) -> tuple[Any, ...]:
    """A Python constant as the VM's tagged tuple; :class:`Unsupported` when it has no equal."""
    t = type(v)
    if v is None:
        return ("null",)
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, int) and t is int:
        if not -_I64 <= v < _I64:
            raise Unsupported(f"an integer beyond 64 bits: {v}")
        return ("int", v)
    if isinstance(v, float) and t is float:
        return ("float", v)
    if isinstance(v, str) and t is str:
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            raise Unsupported("a string with lone surrogates") from None
        return ("str", v)
    if isinstance(v, datetime) and t is datetime:
        return _datetime(v)
    if isinstance(v, date) and t is date:
        return ("date", v.toordinal())
    if isinstance(v, timedelta) and t is timedelta:
        us = v // _US
        if not -_I64 <= us < _I64:
            raise Unsupported(f"a duration beyond 64 bits of microseconds: {v}")
        return ("dur", us)
    if isinstance(v, tuple | list) and t in (tuple, list):
        return ("tuple" if t is tuple else "list", [encode(x) for x in v])
    raise Unsupported(f"a constant of type {t.__name__}")


class _Lower:
    def __init__(self, env: dict[str, Any]) -> None:
        self.env = env
        self.out: list[tuple[Any, ...]] = []

    def emit(self, *ins: Any) -> int:
        self.out.append(ins)
        return len(self.out) - 1

    def visit(self, n: ast.expr) -> None:
        if isinstance(n, ast.Constant):
            self.emit("const", encode(n.value))
        elif (
            isinstance(n, ast.UnaryOp)
            and isinstance(n.op, ast.USub)
            and isinstance(n.operand, ast.Constant)
            and isinstance(n.operand.value, int | float)
            and type(n.operand.value) in (int, float)
        ):
            self.emit("const", encode(-n.operand.value))
        elif isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.Not):
            self.visit(n.operand)
            self.emit("not")
        elif isinstance(n, ast.Name):
            self.name(n.id)
        elif isinstance(n, ast.NamedExpr):
            self.visit(n.value)
            self.emit("store", self.slot(n.target.id))
        elif isinstance(n, ast.BoolOp):
            op = "and" if isinstance(n.op, ast.And) else "or"
            jumps = []
            for i, v in enumerate(n.values):
                if i:
                    jumps.append(self.emit(op, -1))
                self.visit(v)
            for j in jumps:
                self.out[j] = (op, len(self.out))
        elif isinstance(n, ast.Compare):
            self.compare(n)
        elif isinstance(n, ast.Call):
            self.call(n)
        elif isinstance(n, ast.Tuple):
            for e in n.elts:
                self.visit(e)
            self.emit("tuple", len(n.elts))
        else:
            raise Unsupported(f"generated code the VM does not know: {ast.unparse(n)}")

    def slot(self, name: str) -> int:
        if not (name.startswith("_t") and name[2:].isdigit()):
            raise Unsupported(f"an unexpected name {name!r}")
        return int(name[2:])

    def name(self, name: str) -> None:
        if name.startswith("_t") and name[2:].isdigit():
            self.emit("load", int(name[2:]))
        elif name.startswith("_k") and name in self.env:
            self.emit("const", encode(self.env[name]))
        else:
            raise Unsupported(f"an unexpected name {name!r}")

    def compare(self, n: ast.Compare) -> None:
        if len(n.ops) != 1:
            raise Unsupported(f"a chained comparison in generated code: {ast.unparse(n)}")
        op, right = n.ops[0], n.comparators[0]
        if isinstance(op, ast.Is | ast.IsNot):
            if (
                not isinstance(right, ast.Constant)
                or (right.value is not None and right.value is not True)
                or (right.value is True and isinstance(op, ast.IsNot))
            ):
                raise Unsupported(f"an identity test the VM does not know: {ast.unparse(n)}")
            self.visit(n.left)
            self.emit(
                "is_true"
                if right.value is True
                else ("is_none" if isinstance(op, ast.Is) else "not_none")
            )
            return
        names = {ast.Eq: "eq", ast.NotEq: "ne", ast.In: "in", ast.NotIn: "not_in"}
        ins = names.get(type(op))
        if ins is None:
            raise Unsupported(f"an operator the VM does not know: {ast.unparse(n)}")
        self.visit(n.left)
        self.visit(right)
        self.emit(ins)

    def call(self, n: ast.Call) -> None:
        f, args = n.func, n.args
        if n.keywords:
            raise Unsupported(f"keyword arguments in generated code: {ast.unparse(n)}")
        if (
            isinstance(f, ast.Attribute)
            and isinstance(f.value, ast.Name)
            and f.attr == "get"
            and f.value.id in ("F", "E", "S")
            and len(args) == 1
            and isinstance(args[0], ast.Constant)
            and type(args[0].value) is str
        ):
            self.emit({"F": "field", "E": "event", "S": "special"}[f.value.id], args[0].value)
            return
        if not isinstance(f, ast.Name):
            raise Unsupported(f"a call the VM does not know: {ast.unparse(n)}")
        if f.id == "_ev":
            flat, parts = (args[1], args[2]) if len(args) == 3 else (None, None)
            if not (
                isinstance(args[0], ast.Name)
                and args[0].id == "E"
                and isinstance(flat, ast.Constant)
                and isinstance(parts, ast.Tuple)
                and all(isinstance(p, ast.Constant) and type(p.value) is str for p in parts.elts)
            ):
                raise Unsupported(f"an event path the VM does not know: {ast.unparse(n)}")
            self.emit(
                "evpath", flat.value, [p.value for p in parts.elts if isinstance(p, ast.Constant)]
            )
            return
        if f.id == "list" and len(args) == 1:
            self.visit(args[0])
            self.emit("list")
            return
        if f.id not in HELPERS:
            raise Unsupported(f"a helper the VM does not implement: {f.id}")
        if f.id in _WITH_SCOPE:
            if not (args and isinstance(args[-1], ast.Name) and args[-1].id == "S"):
                raise Unsupported(f"{f.id} without the scope: {ast.unparse(n)}")
            args = args[:-1]
        lo, hi = HELPERS[f.id]
        if not lo <= len(args) <= hi:
            raise Unsupported(f"{f.id} with {len(args)} arguments")
        if (
            f.id == "_round"
            and len(args) == 2
            and not (
                isinstance(args[1], ast.Constant)
                and type(args[1].value) is int
                and 0 <= args[1].value <= 15
            )
        ):
            raise Unsupported(f"round() with digits {ast.unparse(args[1])}")
        for a in args:
            self.visit(a)
        self.emit("call", f.id, len(args))


def lower_expr(expr: Expr) -> list[tuple[Any, ...]]:
    """The VM program of ``expr``; :class:`Unsupported` names what it cannot lower."""
    code = expr.code
    if not code.startswith(_PREFIX):  # a YAML scalar: the function returns the value itself
        return [("const", encode(expr.fn({}, {}, {})))]
    try:
        tree = ast.parse(code, mode="eval").body
    except SyntaxError:  # pragma: no cover - the compiler's own output
        raise Unsupported(f"generated code that does not parse: {code!r}") from None
    if not isinstance(tree, ast.Lambda):
        raise Unsupported(f"generated code that is not a lambda: {code!r}")
    low = _Lower(expr.fn.__globals__)
    low.visit(tree.body)
    return low.out


def supported(expr: Expr | None) -> bool:
    """Whether the VM evaluates ``expr`` with the reference's semantics (``None``: no condition)."""
    if expr is None:
        return True
    try:
        lower_expr(expr)
    except (Unsupported, RecursionError):
        return False
    return True
