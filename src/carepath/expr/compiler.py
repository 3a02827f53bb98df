"""The condition language of playbooks (SPEC §2.3): parse, type-check, compile.

A condition is parsed with :func:`ast.parse`, checked against an **allow-list** of node types
(nothing outside it is ever evaluated), type-checked against a :class:`TypeEnv`, and translated
into Python source that this module writes itself: a ``lambda F, E, S: …`` whose body only reads
the three mappings and calls the helpers of :mod:`carepath.expr.runtime`. That source is
compiled once and run with empty ``__builtins__``; user text is never evaluated.

>>> env = TypeEnv({"priority": FieldType("enum", ("low", "high", "urgent"))})
>>> cond = compile_expr('priority in ["high", "urgent"]', env)
>>> cond({"priority": "high"}, {}, {})
True

See ``docs/conditions.md`` for the language, the null rules and the error codes.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from carepath.durations import DurationError, parse_duration
from carepath.errors import ExpressionError
from carepath.expr import arithmetic as _arithmetic
from carepath.expr import runtime as _expr_runtime
from carepath.expr.arithmetic import result_type
from carepath.expr.program import FUNCTIONS, MAX_DEPTH, MAX_NODES, MAX_SOURCE, Expr
from carepath.expr.types import (
    ANY,
    BOOL,
    DATE,
    DATETIME,
    DURATION,
    FLOAT,
    INT,
    NULL,
    NUMERIC_KINDS,
    STRING,
    FieldType,
    TypeEnv,
    assignable,
    comparable,
    family,
    unify,
)

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_SOURCE",
    "Expr",
    "compile_expr",
]

_NOCONST: Any = object()
_CONST_NAMES = {"true": True, "false": False, "null": None}
_CMP_OPS: dict[type[ast.cmpop], str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
}
_ORDER_HELPER = {"<": "_lt", "<=": "_le", ">": "_gt", ">=": "_ge"}
_ARITH_OPS: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
}
_ARITH_HELPER = {"+": "_add", "-": "_sub", "*": "_mul", "/": "_div"}
_READ = {"decimal": "_dec", "duration": "_dur", "datetime": "_inst"}  # as case data keeps them
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}


@dataclass
class _Typed:
    """A checked sub-expression: generated ``code``, its ``type``, whether it is a strict bool."""

    code: str
    type: FieldType
    node: ast.expr
    strict: bool = False
    const: Any = _NOCONST
    path: str | None = None


def _describe(c: _Typed) -> str:
    if c.path is not None:
        return f"{c.path} ({c.type.kind})"
    if c.const is not _NOCONST and not isinstance(c.const, tuple):
        return f"{_show(c.const)} ({c.type.kind})"
    return f"a {c.type.kind} value"


def _show(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, timedelta):
        return f'duration("{v.total_seconds():g}s")'
    return repr(v)


class _Compiler:
    def __init__(self, text: str, lead: int, env: TypeEnv) -> None:
        self.text = text
        self.raw = text.encode("utf-8")
        self.lead = lead
        self.env = env
        self.scope = env.names
        self.globals: dict[str, Any] = {}
        self.names: set[str] = set()
        self.tmp = 0
        self.uses_now = False

    # -- positions and errors -------------------------------------------------------------

    def off(self, node: ast.AST) -> int:
        col = getattr(node, "col_offset", 0)
        return self.lead + len(self.raw[:col].decode("utf-8", "replace"))

    def err(
        self, node: ast.AST, message: str, code: str = "CP403", hint: str | None = None
    ) -> ExpressionError:
        return ExpressionError(message, self.off(node), hint, code)

    # -- helpers for generated code -------------------------------------------------------

    def bind(self, value: object) -> str:
        """A literal in generated code: repr for plain ints/strs/bools/None, else a bound global."""
        if (
            value is None
            or isinstance(value, bool | str)
            or (type(value) is int and abs(value) < 10**18)
        ):
            return repr(value)
        name = f"_k{len(self.globals)}"
        self.globals[name] = value
        return name

    def temp(self) -> str:
        self.tmp += 1
        return f"_t{self.tmp}"

    @staticmethod
    def truth(c: _Typed) -> str:
        return c.code if c.strict else f"({c.code} is True)"

    # -- the walk -------------------------------------------------------------------------

    def visit(self, node: ast.expr) -> _Typed:
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name | ast.Attribute):
            return self.name(node)
        if isinstance(node, ast.BoolOp):
            return self.boolop(node)
        if isinstance(node, ast.UnaryOp):
            return self.unary(node)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.List | ast.Tuple):
            return self.list_lit(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITH_OPS:
            return self.binop(node)
        raise self.not_allowed(node)

    def binop(self, node: ast.BinOp) -> _Typed:
        """``a + b``, ``a - b``, ``a * b``, ``a / b`` (SPEC §10), typed by
        :func:`~carepath.expr.arithmetic.result_type`; decimals are read as decimals."""
        op = _ARITH_OPS[type(node.op)]
        a, b = self.visit(node.left), self.visit(node.right)
        t = result_type(op, a.type, b.type)
        if isinstance(t, tuple):
            raise self.err(node, f"{t[0]}: {_describe(a)} {op} {_describe(b)}", "CP403", t[1])
        codes = [
            f"{_READ[c.type.kind]}({c.code})" if c.type.kind in _READ else c.code for c in (a, b)
        ]
        return _Typed(f"{_ARITH_HELPER[op]}({codes[0]}, {codes[1]})", t, node)

    def not_allowed(self, node: ast.AST) -> ExpressionError:
        hint = None
        if isinstance(node, ast.BinOp):
            what = {ast.Pow: "the power operator **", ast.FloorDiv: "the operator //"}.get(
                type(node.op), f"the operator {type(node.op).__name__}"
            )
            hint = "arithmetic is + - * / on numbers, durations and instants"
        elif isinstance(node, ast.Subscript):
            what, hint = "subscripts (x[...])", "name the field with a dotted path: customer.tier"
        elif isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
            what = "comprehensions"
        elif isinstance(node, ast.Lambda):
            what = "lambda"
        elif isinstance(node, ast.JoinedStr | ast.FormattedValue):
            what = "f-strings"
        elif isinstance(node, ast.NamedExpr):
            what = "assignment (:=)"
        elif isinstance(node, ast.IfExp):
            what = "conditional expressions (a if c else b)"
        elif isinstance(node, ast.Dict | ast.Set):
            what = "dicts and sets"
            hint = 'write a list: ["a", "b"]'
        elif isinstance(node, ast.Starred):
            what = "starred arguments"
        else:
            what = type(node).__name__
        return self.err(node, f"{what} not allowed in a condition", "CP404", hint)

    def constant(self, node: ast.Constant) -> _Typed:
        v = node.value
        if v is None:
            return _Typed("None", NULL, node, const=None)
        if isinstance(v, bool):
            return _Typed(repr(v), BOOL, node, strict=True, const=v)
        if isinstance(v, int):
            return _Typed(self.bind(v), INT, node, const=v)
        if isinstance(v, float):
            return _Typed(self.bind(v), FLOAT, node, const=v)
        if isinstance(v, str):
            return _Typed(self.bind(v), STRING, node, const=v)
        raise self.err(node, f"{type(v).__name__} literals are not allowed", "CP404")

    def path_of(self, node: ast.expr) -> str | None:
        parts: list[str] = []
        cur: ast.expr = node
        while isinstance(cur, ast.Attribute):
            parts.append(cur.attr)
            cur = cur.value
        if not isinstance(cur, ast.Name):
            return None
        parts.append(cur.id)
        return ".".join(reversed(parts))

    def resolve(self, node: ast.expr) -> tuple[str, str, FieldType]:
        """(path, generated read, type) of a dotted name, or an error."""
        path = self.path_of(node)
        if path is None:
            raise self.err(
                node,
                "attribute access is only allowed on names in scope",
                "CP404",
                "use a dotted field path such as customer.tier",
            )
        if any(p.startswith("_") for p in path.split(".")):
            raise self.err(node, f"names starting with '_' are not allowed: {path}", "CP404")
        hit = self.scope.get(path)
        if (
            hit is None
            and path.startswith("event.")
            and self.env.event is None
            and path != "event."
        ):
            hit = ("E", ANY)
        if hit is None:
            close = difflib.get_close_matches(path, list(self.scope), n=1, cutoff=0.6)
            if not close:
                close = [
                    n for n in self.scope if n.startswith(path + ".") or n.endswith("." + path)
                ][:1]
            hint = f"did you mean {close[0]!r}?" if close else None
            raise self.err(node, f"unknown name {path!r}", "CP402", hint)
        where, t = hit
        self.names.add(path)
        if where == "F":
            read = f"F.get({path!r})"
        elif where == "S":
            read = f"S.get({path!r})"
        else:
            key = path[len("event.") :]
            parts = tuple(key.split("."))
            read = f"E.get({key!r})" if len(parts) == 1 else f"_ev(E, {key!r}, {parts!r})"
        return path, read, t

    def name(self, node: ast.Name | ast.Attribute) -> _Typed:
        if isinstance(node, ast.Name) and node.id in _CONST_NAMES:
            v = _CONST_NAMES[node.id]
            return _Typed(
                repr(v), BOOL if v is not None else NULL, node, strict=v is not None, const=v
            )
        path, read, t = self.resolve(node)
        return _Typed(read, t, node, path=path)

    def boolop(self, node: ast.BoolOp) -> _Typed:
        parts = []
        for v in node.values:
            c = self.visit(v)
            if c.type.kind not in ("bool", "any", "null"):
                op = "and" if isinstance(node.op, ast.And) else "or"
                raise self.err(
                    v,
                    f"'{op}' needs true/false operands, got {_describe(c)}",
                    "CP403",
                    "compare the value, for example x != null or x > 0",
                )
            parts.append(self.truth(c))
        joiner = " and " if isinstance(node.op, ast.And) else " or "
        return _Typed(f"({joiner.join(parts)})", BOOL, node, strict=True)

    def unary(self, node: ast.UnaryOp) -> _Typed:
        c = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            if c.type.kind not in ("bool", "any", "null"):
                raise self.err(
                    node.operand, f"'not' needs a true/false operand, got {_describe(c)}", "CP403"
                )
            return _Typed(f"(not {self.truth(c)})", BOOL, node, strict=True)
        if isinstance(node.op, ast.USub | ast.UAdd):
            if c.type.kind not in (*NUMERIC_KINDS, "duration", "any"):
                raise self.err(
                    node, f"unary minus needs a number or duration, got {_describe(c)}", "CP403"
                )
            if isinstance(node.op, ast.UAdd):
                return c
            if c.const is not _NOCONST:
                return _Typed(self.bind(-c.const), c.type, node, const=-c.const)
            return _Typed(f"_neg({c.code})", c.type, node)
        raise self.err(node, "the ~ operator is not allowed", "CP404")

    def list_lit(self, node: ast.List | ast.Tuple) -> _Typed:
        items = [self.visit(e) for e in node.elts]
        item = NULL
        for c in items:
            if c.type.kind == "list":
                raise self.err(c.node, "lists of lists are not supported", "CP403")
            u = unify(item, c.type)
            if u is None:
                raise self.err(c.node, f"list items mix {item.kind} and {c.type.kind}", "CP403")
            item = u
        t = FieldType("list", item=ANY if item.kind == "null" else item)
        if all(c.const is not _NOCONST for c in items):
            value = tuple(c.const for c in items)
            return _Typed(self.bind(value), t, node, const=value)
        return _Typed("(" + "".join(c.code + ", " for c in items) + ")", t, node)

    # -- comparisons ----------------------------------------------------------------------

    def check_enum_value(self, enum_side: _Typed, lit: _Typed) -> None:
        """A string literal compared with an enum must be one of its values."""
        values = enum_side.type.values
        if isinstance(lit.const, str) and lit.const not in values:
            close = difflib.get_close_matches(lit.const, values, n=1)
            hint = (
                (f"did you mean {close[0]!r}? " if close else "") + "values: " + ", ".join(values)
            )
            who = enum_side.path or "the enum"
            raise self.err(lit.node, f"{_show(lit.const)} is not a value of {who}", "CP403", hint)

    def check_eq(self, a: _Typed, b: _Typed, op: str) -> None:
        if not comparable(a.type, b.type):
            raise self.err(
                b.node, f"cannot compare {_describe(a)} with {_describe(b)} using {op}", "CP403"
            )
        for x, y in ((a, b), (b, a)):
            if x.type.kind == "enum":
                self.check_enum_value(x, y)

    def check_order(self, a: _Typed, b: _Typed, op: str) -> None:
        for x, y in ((a, b), (b, a)):
            if x.type.kind == "null" or x.const is None:
                raise self.err(
                    x.node,
                    f"'{op}' with null is always false",
                    "CP403",
                    "test presence with x == null or x != null",
                )
            if x.type.kind == "enum":
                hint = None
                if isinstance(y.const, str) and y.const in x.type.values:
                    vals = x.type.values
                    i = vals.index(y.const)
                    o = op if x is a else _FLIP[op]
                    sel = {"<": vals[:i], "<=": vals[: i + 1], ">": vals[i + 1 :], ">=": vals[i:]}[
                        o
                    ]
                    hint = f"use {x.path or 'the value'} in [{', '.join(_show(v) for v in sel)}]"
                raise self.err(x.node, f"enum values have no order: {_describe(x)}", "CP403", hint)
            if x.type.kind in ("bool", "list"):
                raise self.err(x.node, f"'{op}' does not apply to {_describe(x)}", "CP403")
        if a.type.kind == "any" or b.type.kind == "any":
            return
        if family(a.type) != family(b.type):
            raise self.err(
                b.node, f"cannot compare {_describe(a)} with {_describe(b)} using {op}", "CP403"
            )

    def compare_one(self, a: _Typed, op: str, b: _Typed) -> str:  # noqa: C901 - one branch per pair of operand types (SPEC §3.2 comparison table)
        if op in ("==", "!="):
            self.check_eq(a, b, op)
            if a.const is None and b.const is None:
                return repr(op == "==")
            for x, y in ((a, b), (b, a)):
                if y.const is None:
                    return f"({x.code} is {'' if op == '==' else 'not '}None)"
            if op == "==":
                if a.const is not _NOCONST or b.const is not _NOCONST:
                    return f"({a.code} == {b.code})"
                return f"_eq({a.code}, {b.code})"
            if b.const is not _NOCONST or a.const is not _NOCONST:
                x, k = (a, b) if b.const is not _NOCONST else (b, a)
                t = self.temp()
                return f"(({t} := {x.code}) is not None and {t} != {k.code})"
            return f"_ne({a.code}, {b.code})"
        if op in _ORDER_HELPER:
            self.check_order(a, b, op)
            return f"{_ORDER_HELPER[op]}({a.code}, {b.code})"
        # in / not in
        if b.type.kind not in ("list", "any"):
            hint = None
            if b.type.kind in ("string", "enum"):
                hint = f'compare with ==, or write a list: {a.path or "x"} in ["a", "b"]'
            raise self.err(
                b.node, f"'{op}' needs a list on its right, got {_describe(b)}", "CP403", hint
            )
        if a.const is None:
            raise self.err(
                a.node, f"'null {op} …' is not meaningful", "CP403", "test presence with x == null"
            )
        item = b.type.item or ANY
        if not comparable(a.type, item):
            raise self.err(
                b.node, f"cannot look for {_describe(a)} in a list of {item.kind}", "CP403"
            )
        if a.type.kind == "enum" and isinstance(b.node, ast.List | ast.Tuple):
            for e in b.node.elts:
                if isinstance(e, ast.Constant) and isinstance(e.value, str):
                    self.check_enum_value(a, _Typed("", STRING, e, const=e.value))
        if item.kind == "enum" and isinstance(a.const, str):
            self.check_enum_value(_Typed("", item, b.node, path=b.path), a)
        if isinstance(b.const, tuple):
            if op == "in":
                return f"({a.code} in {b.code})"
            if None in b.const:
                return f"({a.code} not in {b.code})"
            t = self.temp()
            return f"(({t} := {a.code}) is not None and {t} not in {b.code})"
        return f"{'_in' if op == 'in' else '_nin'}({a.code}, {b.code})"

    def compare(self, node: ast.Compare) -> _Typed:
        operands = [self.visit(node.left), *(self.visit(c) for c in node.comparators)]
        parts = []
        for i, opnode in enumerate(node.ops):
            op = _CMP_OPS.get(type(opnode))
            if op is None:
                raise self.err(
                    node.comparators[i],
                    "'is' / 'is not' are not allowed",
                    "CP404",
                    "use == null or != null",
                )
            parts.append(self.compare_one(operands[i], op, operands[i + 1]))
        code = parts[0] if len(parts) == 1 else "(" + " and ".join(parts) + ")"
        return _Typed(code, BOOL, node, strict=True)

    # -- functions ------------------------------------------------------------------------

    def call(self, node: ast.Call) -> _Typed:
        if not isinstance(node.func, ast.Name):
            raise self.err(
                node,
                "method calls are not allowed",
                "CP404",
                "use the functions: " + ", ".join(FUNCTIONS),
            )
        fname = node.func.id
        if fname.startswith("_"):
            raise self.err(node, f"names starting with '_' are not allowed: {fname}", "CP404")
        if fname not in FUNCTIONS:
            close = difflib.get_close_matches(fname, list(FUNCTIONS), n=1)
            hint = f"did you mean {close[0]!r}?" if close else "functions: " + ", ".join(FUNCTIONS)
            raise self.err(node, f"unknown function {fname!r}", "CP405", hint)
        if node.keywords:
            raise self.err(node.keywords[0].value, "keyword arguments are not allowed", "CP404")
        for a in node.args:
            if isinstance(a, ast.Starred):
                raise self.not_allowed(a)
        args = node.args
        method: Callable[[ast.Call, list[ast.expr]], _Typed] = getattr(self, f"fn_{fname}")
        return method(node, args)

    def arity(self, node: ast.Call, args: list[ast.expr], lo: int, hi: int) -> None:
        name = node.func.id if isinstance(node.func, ast.Name) else "?"
        if not lo <= len(args) <= hi:
            want = str(lo) if lo == hi else f"{lo} to {hi}"
            raise self.err(
                node,
                f"{name}() takes {want} argument(s), got {len(args)}",
                "CP403",
                FUNCTIONS.get(name),
            )

    def typed_arg(self, node: ast.Call, arg: ast.expr, kinds: tuple[str, ...]) -> _Typed:
        c = self.visit(arg)
        if c.type.kind not in (*kinds, "any"):
            name = node.func.id if isinstance(node.func, ast.Name) else "?"
            raise self.err(
                arg,
                f"{name}() needs {' or '.join(kinds)}, got {_describe(c)}",
                "CP403",
                FUNCTIONS.get(name),
            )
        return c

    def literal_str(self, node: ast.Call, args: list[ast.expr]) -> tuple[ast.expr, str]:
        self.arity(node, args, 1, 1)
        a = args[0]
        if not (isinstance(a, ast.Constant) and isinstance(a.value, str)):
            raise self.err(
                a,
                f"{node.func.id if isinstance(node.func, ast.Name) else '?'}() needs a "
                "string literal",
                "CP403",
            )
        return a, a.value

    def fn_has(self, node: ast.Call, args: list[ast.expr]) -> _Typed:
        self.arity(node, args, 1, 1)
        if not isinstance(args[0], ast.Name | ast.Attribute) or self.path_of(args[0]) is None:
            raise self.err(args[0], "has() takes a field path such as has(customer.tier)", "CP403")
        _path, read, _t = self.resolve(args[0])
        return _Typed(f"({read} is not None)", BOOL, node, strict=True)

    def fn_lower(self, node: ast.Call, args: list[ast.expr]) -> _Typed:
        self.arity(node, args, 1, 1)
        c = self.typed_arg(node, args[0], ("string", "enum"))
        return _Typed(f"_lower({c.code})", STRING, node)

    def fn_upper(self, node: ast.Call, args: list[ast.expr]) -> _Typed:
        self.arity(node, args, 1, 1)
        c = self.typed_arg(node, args[0], ("string", "enum"))
        return _Typed(f"_upper({c.code})", STRING, node)

    def fn_len(self, node: ast.Call, args: list[ast.expr]) -> _Typed:
        self.arity(node, args, 1, 1)
        c = self.typed_arg(node, args[0], ("string", "enum", "list"))
        return _Typed(f"_len({c.code})", INT, node)

    def fn_days_since(self, node: ast.Call, args: list[ast.expr]) -> _Typed:
        self.arity(node, args, 1, 1)
        c = self.typed_arg(node, args[0], ("date", "datetime", "string"))
        self.uses_now = True
        return _Typed(f"_days_since({c.code}, S)", INT, node)

    def fn_hours_since(self, node: ast.Call, args: list[ast.expr]) -> _Typed:
        self.arity(node, args, 1, 1)
        c = self.typed_arg(node, args[0], ("date", "datetime", "string"))
        self.uses_now = True
        return _Typed(f"_hours_since({c.code}, S)", INT, node)

    def fn_now(self, node: ast.Call, args: list[ast.expr]) -> _Typed:
        self.arity(node, args, 0, 0)
        self.uses_now = True
        return _Typed("_now(S)", DATETIME, node)

    def fn_duration(self, node: ast.Call, args: list[ast.expr]) -> _Typed:
        a, text = self.literal_str(node, args)
        try:
            d = parse_duration(text)
        except DurationError as e:
            raise self.err(a, str(e), "CP403", e.hint) from None
        if not d.is_exact:
            raise self.err(
                a,
                f"duration({text!r}) is not an exact length",
                "CP403",
                "use s, m or h here (24h rather than 1d)",
            )
        value = timedelta(seconds=d.seconds)
        return _Typed(self.bind(value), DURATION, node, const=value)

    def fn_date(self, node: ast.Call, args: list[ast.expr]) -> _Typed:
        a, text = self.literal_str(node, args)
        try:
            value = date.fromisoformat(text)
        except ValueError:
            raise self.err(a, f"cannot read date {text!r}", "CP403", "write YYYY-MM-DD") from None
        return _Typed(self.bind(value), DATE, node, const=value)

    def fn_datetime(self, node: ast.Call, args: list[ast.expr]) -> _Typed:
        a, text = self.literal_str(node, args)
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise self.err(
                a,
                f"cannot read datetime {text!r}",
                "CP403",
                "write ISO 8601 with an offset: 2026-04-30T08:00:00+07:00",
            ) from None
        if value.tzinfo is None:
            raise self.err(
                a,
                f"datetime {text!r} has no UTC offset",
                "CP403",
                "add an offset such as +07:00 or Z",
            )
        return _Typed(self.bind(value), DATETIME, node, const=value)

    def fn_abs(self, node: ast.Call, args: list[ast.expr]) -> _Typed:
        self.arity(node, args, 1, 1)
        c = self.typed_arg(node, args[0], (*sorted(NUMERIC_KINDS), "duration"))
        return _Typed(f"_abs({c.code})", c.type, node)

    def minmax(self, node: ast.Call, args: list[ast.expr], helper: str) -> _Typed:
        self.arity(node, args, 1, 16)
        cs = [self.visit(a) for a in args]
        if len(cs) == 1:
            if cs[0].type.kind not in ("list", "any"):
                raise self.err(args[0], f"{helper[1:]}() of one argument needs a list", "CP403")
            t = cs[0].type.item or ANY if cs[0].type.kind == "list" else ANY
        else:
            t = NULL
            for c in cs:
                if c.type.kind in ("bool", "enum", "list", "null"):
                    raise self.err(
                        c.node, f"{helper[1:]}() does not apply to {_describe(c)}", "CP403"
                    )
                u = unify(t, c.type)
                if u is None or (u.kind == "string" and t.kind not in ("null", "string")):
                    raise self.err(
                        c.node, f"{helper[1:]}() mixes {t.kind} and {c.type.kind}", "CP403"
                    )
                t = u
        return _Typed(f"{helper}({', '.join(c.code for c in cs)})", t, node)

    def fn_min(self, node: ast.Call, args: list[ast.expr]) -> _Typed:
        return self.minmax(node, args, "_min")

    def fn_max(self, node: ast.Call, args: list[ast.expr]) -> _Typed:
        return self.minmax(node, args, "_max")

    def fn_round(self, node: ast.Call, args: list[ast.expr]) -> _Typed:
        self.arity(node, args, 1, 2)
        c = self.typed_arg(node, args[0], tuple(sorted(NUMERIC_KINDS)))
        if len(args) == 1:
            return _Typed(f"_round({c.code})", INT, node)
        n = args[1]
        if not (isinstance(n, ast.Constant) and type(n.value) is int and 0 <= n.value <= 15):
            raise self.err(
                n, "round()'s second argument must be an integer literal from 0 to 15", "CP403"
            )
        return _Typed(f"_round({c.code}, {n.value})", c.type, node)


def _count_and_depth(tree: ast.expr) -> Iterator[tuple[ast.expr, int, int]]:
    """Yield (node, running node count, depth) over expression nodes, iteratively."""
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    count = 0
    while stack:
        node, depth = stack.pop()
        if isinstance(node, ast.expr):
            count += 1
            yield node, count, depth
        for child in ast.iter_child_nodes(node):
            stack.append((child, depth + 1 if isinstance(node, ast.expr) else depth))


def _literal_expr(value: bool | int | float | None, want: FieldType | None) -> Expr:
    if value is None:
        text, t = "null", NULL
    elif isinstance(value, bool):
        text, t = ("true" if value else "false"), BOOL
    elif isinstance(value, int):
        text, t = str(value), INT
    else:
        text, t = repr(value), FLOAT
    _check_want(t, want, 0, text)

    def fn(fields: Mapping[str, Any], event: Mapping[str, Any], scope: Mapping[str, Any]) -> Any:
        return value

    return Expr(text, BOOL if want == BOOL else t, frozenset(), fn, repr(value))


def _check_want(t: FieldType, want: FieldType | None, offset: int, shown: str) -> None:
    if want is None:
        return
    if want == BOOL:
        if t.kind not in ("bool", "any"):
            raise ExpressionError(
                f"a condition must be true or false, but {shown!r} is {t}",
                offset,
                'compare it, for example x == "value", x > 0 or x != null',
                "CP403",
            )
        return
    if not assignable(t, want):
        raise ExpressionError(f"expected {want}, but {shown!r} is {t}", offset, None, "CP403")


def compile_expr(  # noqa: C901 - one branch per expression node kind
    source: str | bool | int | float | None, env: TypeEnv, *, want: FieldType | None = BOOL
) -> Expr:
    """Parse, type-check and compile ``source`` against ``env``.

    ``want=BOOL`` (conditions) requires a true/false result; ``want=None`` (``=expressions`` under
    ``set:``) accepts any type, reported in ``Expr.type``; another type requires a value assignable
    to it. A leading ``=`` is skipped. YAML scalars (``True``, ``3``, ``None``) are literals.
    Raises :class:`~carepath.errors.ExpressionError` (codes CP401–CP405) with the 0-based offset
    of the problem inside ``source``.
    """
    if source is None or isinstance(source, bool | int | float):
        return _literal_expr(source, want)
    if not isinstance(source, str):
        raise ExpressionError(
            f"expected an expression string, got {type(source).__name__}", 0, None, "CP401"
        )
    if len(source) > MAX_SOURCE:
        raise ExpressionError(
            f"expression is longer than {MAX_SOURCE} characters",
            MAX_SOURCE,
            "split it, or move the logic into segments",
            "CP404",
        )
    for i, ch in enumerate(source):
        if ch < " " and ch not in "\t\n\r\f":
            raise ExpressionError(f"control character {ch!r} not allowed", i, None, "CP401")
    # One line, same offsets: Python would reject a newline outside brackets, YAML folds them anyway.
    text = source.replace("\r", " ").replace("\n", " ")
    lead = len(text) - len(text.lstrip())
    if text[lead : lead + 1] == "=" and text[lead : lead + 2] != "==":
        lead += 1
        lead += len(text[lead:]) - len(text[lead:].lstrip())
    body = text[lead:].rstrip()
    if not body:
        raise ExpressionError(
            "empty expression", lead, 'write a condition such as priority == "urgent"', "CP401"
        )
    try:
        tree = ast.parse(body, mode="eval").body
    except SyntaxError as e:
        msg = e.msg if e.msg else "invalid syntax"
        if not e.offset:  # Python gives 0 when the input ended too early
            off, msg = lead + len(body), "unexpected end of expression"
        else:
            off = lead + max(0, min(e.offset - 1, len(body)))
        hint = None
        if "=" in body and "==" not in body and msg.startswith("invalid syntax"):
            hint = "compare with ==, not ="
        raise ExpressionError(f"syntax error: {msg}", off, hint, "CP401") from None
    except (ValueError, RecursionError, MemoryError):
        raise ExpressionError("expression cannot be parsed", lead, None, "CP401") from None
    comp = _Compiler(body, lead, env)
    for node, count, depth in _count_and_depth(tree):
        if count > MAX_NODES:
            raise comp.err(
                node,
                f"expression has more than {MAX_NODES} parts",
                "CP404",
                "split it, or move the logic into segments",
            )
        if depth > MAX_DEPTH:
            raise comp.err(node, f"expression is nested more than {MAX_DEPTH} levels deep", "CP404")
    result = comp.visit(tree)
    _check_want(result.type, want, comp.off(tree), body)
    code = result.code
    rtype = result.type
    if want == BOOL:
        code = comp.truth(result)
        rtype = BOOL
    elif result.const is not _NOCONST and isinstance(result.const, tuple):
        code = f"list({code})"
    elif result.type.kind == "list" and result.const is _NOCONST:
        code = f"list({code})" if code.startswith("(") else code
    src = f"lambda F, E, S: {code}"
    env_globals: dict[str, Any] = {
        "__builtins__": {},
        "list": list,
        **_expr_runtime.HELPERS,
        **_arithmetic.HELPERS,
        **comp.globals,
    }
    fn = eval(compile(src, "<carepath-expr>", "eval"), env_globals)  # our own generated code
    return Expr(source, rtype, frozenset(comp.names), fn, src, comp.uses_now)
