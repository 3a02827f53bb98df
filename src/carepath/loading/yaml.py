"""Safe YAML loading with source positions, YAML 1.2 scalars and hard limits (SPEC §2.1).

The loader composes Python values directly from the parser's event stream, with an explicit
stack (no recursion, so hostile nesting cannot exhaust the C stack). It keeps the position of
every key and value, rejects duplicate keys and every explicit tag, resolves plain scalars by
the YAML 1.2 core schema (``on``/``no``/``yes`` stay strings, ``13:00`` is a string), and counts
what alias expansion produces -- nodes, and characters of the scalars reached through aliases --
so a "billion laughs" fails fast however few aliases it uses, and so does one big anchored scalar
referenced a thousand times. An integer literal too long for Python to read (over 4,300 digits)
is a located error, not a crash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from carepath.errors import YamlError

__all__ = ["MAX_INT_DIGITS", "Limits", "Positions", "YamlError", "YamlProblem", "load_yaml"]

Path = tuple[str | int, ...]

try:  # libyaml's parser when available; the pure-Python one otherwise
    from yaml.cyaml import CParser as _Parser  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - depends on how PyYAML was built

    class _Parser(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)


_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?\.(inf|Inf|INF)")
_NAN = re.compile(r"\.(nan|NaN|NAN)")


@dataclass(frozen=True, slots=True)
class Limits:
    """Hard limits for untrusted playbooks."""

    max_bytes: int = 1 << 20
    max_nodes: int = 100_000  # nodes produced, alias expansion included
    max_depth: int = 64
    max_alias_chars: int = 1 << 20  # characters of the scalars reached through aliases, in total
    max_includes: int = 64  # files one playbook may include (each up to max_bytes)
    max_key_chars: int = (
        1024  # YAML's own bound on implicit keys, applied to explicit (`? `) ones too
    )


#: The longest integer literal read (CPython's default int/str conversion limit; a hexadecimal or
#: octal literal may not exceed it in decimal digits either, so ``str()`` of every int works).
MAX_INT_DIGITS = 4300
_MAX_INT_BITS = int((MAX_INT_DIGITS - 1) * 3.3219)  # 10 ** (digits - 1) < 2 ** bits


class _TooLarge(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class YamlProblem:
    """One problem found while reading: a diagnostic code, message and 1-based position."""

    code: str
    message: str
    line: int
    col: int
    hint: str | None = None


def _flow_hint(msg: str) -> str | None:
    """A hint for the commonest flow-collection mistake: an unquoted value with ``[`` ``]``
    ``{`` ``}`` or ``,`` inside ``{ }`` or ``[ ]`` (a condition such as ``x in ["a", "b"]``)."""
    if "while parsing a flow" not in msg or "did not find expected" not in msg:
        return None
    return (
        "inside { } or [ ], a value that contains [ ] { } or , must be quoted: "
        """{when: 'priority in ["high", "urgent"]'}, or use block style"""
    )


@dataclass
class Positions:
    """Source positions of a loaded document, by node path (1-based line and column)."""

    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)
    styles: dict[Path, str] = field(
        default_factory=dict
    )  # scalar style: "" plain, "'", '"', "|", ">"
    ends: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def value(self, path: Path) -> tuple[int, int]:
        """Position of the value at ``path``, or of its nearest known ancestor."""
        p = tuple(path)
        while p:
            if p in self.values:
                return self.values[p]
            p = p[:-1]
        return self.values.get((), (1, 1))

    def key(self, path: Path) -> tuple[int, int]:
        """Position of the key naming ``path`` (falls back to the value, then ancestors)."""
        p = tuple(path)
        if p in self.keys:
            return self.keys[p]
        return self.value(p)


def _resolve_plain(value: str) -> Any:
    """YAML 1.2 core schema for plain scalars."""
    if value in ("", "~", "null", "Null", "NULL"):
        return None
    if value in ("true", "True", "TRUE"):
        return True
    if value in ("false", "False", "FALSE"):
        return False
    c = value[0]
    if c.isdigit() or c in "+-.":
        if _INT.fullmatch(value):
            if value.startswith(("0o", "0x")):
                n = int(value[2:], 8 if value[1] == "o" else 16)  # no digit limit for these bases
                if n.bit_length() > _MAX_INT_BITS:
                    raise _TooLarge(value)
                return n
            if len(value.lstrip("+-")) > MAX_INT_DIGITS:
                raise _TooLarge(value)
            try:
                return int(value)
            except ValueError:  # a lower sys.set_int_max_str_digits() in this process
                raise _TooLarge(value) from None
        if _FLOAT.fullmatch(value):
            return float(value)
        if _INF.fullmatch(value):
            return float("-inf") if value[0] == "-" else float("inf")
        if _NAN.fullmatch(value):
            return float("nan")
    return value


class _Frame:
    __slots__ = ("anchor", "chars", "container", "key", "key_pos", "path", "size", "start")

    def __init__(
        self, container: Any, path: Path, anchor: str | None, start: tuple[int, int]
    ) -> None:
        self.container = container
        self.path = path
        self.anchor = anchor
        self.key: Any = _NOKEY
        self.key_pos: tuple[int, int] = (0, 0)
        self.size = 1
        self.chars = 0  # characters of the scalars inside, keys and aliased content included
        self.start = start


_NOKEY = object()


def _pos(mark: Any) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1)


def load_yaml(text: str, limits: Limits = Limits()) -> tuple[Any, Positions]:  # noqa: C901 - one event loop over the YAML parser, one branch per event kind and limit
    """Load one YAML document from ``text``; returns ``(value, positions)``.

    Raises :class:`YamlError` listing every problem it could find (a syntax error stops reading).
    """
    # every character is at least one byte: a text longer than the limit is not encoded to say so
    if len(text) > limits.max_bytes:
        raise YamlError(
            [
                YamlProblem(
                    "CP104",
                    f"file is at least {len(text):,} bytes; the limit is {limits.max_bytes:,}",
                    1,
                    1,
                )
            ]
        )
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.max_bytes:
        raise YamlError(
            [
                YamlProblem(
                    "CP104", f"file is {size:,} bytes; the limit is {limits.max_bytes:,}", 1, 1
                )
            ]
        )
    try:  # a lone surrogate (loads() of a str that no file could hold) is not YAML text
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        line = text.count("\n", 0, exc.start) + 1
        col = exc.start - (text.rfind("\n", 0, exc.start) + 1) + 1
        raise YamlError(
            [
                YamlProblem(
                    "CP101",
                    f"lone surrogate U+{ord(text[exc.start]):04X} is not a character YAML can hold",
                    line,
                    col,
                )
            ]
        ) from None
    problems: list[YamlProblem] = []
    pos = Positions()
    anchors: dict[str, tuple[Any, int, int]] = {}  # anchor → (value, nodes, characters)
    stack: list[_Frame] = []
    nodes = 0
    alias_chars = 0  # characters of scalars reached through aliases
    root: Any = None
    docs = 0
    parser = _Parser(text)
    try:
        while True:
            ev = parser.get_event()
            if ev is None or isinstance(ev, yaml.StreamEndEvent):
                break
            if isinstance(ev, yaml.DocumentStartEvent):
                docs += 1
                if docs > 1:
                    line, col = _pos(ev.start_mark)
                    problems.append(
                        YamlProblem(
                            "CP101",
                            "more than one YAML document in the file",
                            line,
                            col,
                            "a playbook is one document; remove the extra '---'",
                        )
                    )
                    break
                continue
            if isinstance(ev, yaml.StreamStartEvent | yaml.DocumentEndEvent):
                continue
            start = _pos(ev.start_mark)
            if isinstance(ev, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                frame = stack.pop()
                pos.ends[frame.path] = _pos(ev.end_mark)
                if frame.anchor is not None:
                    anchors[frame.anchor] = (frame.container, frame.size, frame.chars)
                value, vsize = frame.container, frame.size
                if not stack:
                    root = value
                    continue
                stack[-1].chars += frame.chars
                _attach(
                    stack[-1], value, vsize, frame.path, start, pos, problems, is_key_event=False
                )
                continue
            # a node begins: scalar, alias, mapping or sequence
            parent = stack[-1] if stack else None
            if parent is not None and isinstance(parent.container, dict) and parent.key is _NOKEY:
                # this node is a mapping key
                if not isinstance(ev, yaml.ScalarEvent):
                    problems.append(
                        YamlProblem("CP101", "mapping keys must be plain strings", *start)
                    )
                    raise _Stop
                _check_tag(ev, start, problems)
                if len(ev.value) > limits.max_key_chars:  # it is repeated in every path below it
                    problems.append(
                        YamlProblem(
                            "CP101",
                            f"a key of {len(ev.value):,} characters; keys have at "
                            f"most {limits.max_key_chars:,}",
                            *start,
                        )
                    )
                    raise _Stop
                key = ev.value if ev.style else _resolve_scalar(ev.value, start, problems)
                key = (
                    "null"
                    if key is None
                    else (str(key).lower() if isinstance(key, bool) else str(key))
                )
                if key in parent.container:
                    first = pos.keys.get((*parent.path, key))
                    where = f" (first defined at line {first[0]})" if first else ""
                    problems.append(
                        YamlProblem(
                            "CP102",
                            f"duplicate key {key!r}{where}",
                            *start,
                            "remove one of the two entries or merge them",
                        )
                    )
                parent.key = key
                parent.key_pos = start
                parent.chars += len(ev.value)
                nodes += 1
                continue
            child_path: Path
            if parent is None:
                child_path = ()
            elif isinstance(parent.container, dict):
                child_path = (*parent.path, parent.key)
            else:
                child_path = (*parent.path, len(parent.container))
            nodes += 1
            if nodes > limits.max_nodes:
                problems.append(
                    YamlProblem(
                        "CP105",
                        f"document produces more than {limits.max_nodes:,} nodes "
                        "(alias expansion included)",
                        *start,
                        "remove aliases that expand repeatedly, or split the playbook",
                    )
                )
                raise _Stop
            if isinstance(ev, yaml.AliasEvent):
                if ev.anchor not in anchors:
                    problems.append(
                        YamlProblem(
                            "CP101",
                            f"alias *{ev.anchor} refers to an undefined or unfinished anchor",
                            *start,
                        )
                    )
                    raise _Stop
                value, vsize, vchars = anchors[ev.anchor]
                nodes += vsize
                if nodes > limits.max_nodes:
                    problems.append(
                        YamlProblem(
                            "CP105",
                            f"alias *{ev.anchor} expands the document past "
                            f"{limits.max_nodes:,} nodes",
                            *start,
                            "a 'billion laughs' pattern; use fewer nested aliases",
                        )
                    )
                    raise _Stop
                alias_chars += vchars
                if alias_chars > limits.max_alias_chars:
                    problems.append(
                        YamlProblem(
                            "CP105",
                            f"alias *{ev.anchor} expands the document past {limits.max_alias_chars:,} "
                            "characters reached through aliases",
                            *start,
                            "an alias repeats all the text of its anchor; repeat less, or write the text once",
                        )
                    )
                    raise _Stop
                if parent is not None:
                    parent.chars += vchars
                pos.values[child_path] = start
                if parent is None:
                    root = value
                else:
                    _attach(
                        parent, value, vsize, child_path, start, pos, problems, is_key_event=False
                    )
                continue
            _check_tag(ev, start, problems)
            if isinstance(ev, yaml.ScalarEvent):
                value = ev.value if ev.style else _resolve_scalar(ev.value, start, problems)
                pos.values[child_path] = start
                pos.styles[child_path] = ev.style or ""
                pos.ends[child_path] = _pos(ev.end_mark)
                anchor = getattr(ev, "anchor", None)
                if anchor is not None:
                    anchors[anchor] = (value, 1, len(ev.value))
                if parent is None:
                    root = value
                else:
                    parent.chars += len(ev.value)
                    _attach(parent, value, 1, child_path, start, pos, problems, is_key_event=False)
                continue
            if len(stack) >= limits.max_depth:
                problems.append(
                    YamlProblem("CP106", f"nesting deeper than {limits.max_depth} levels", *start)
                )
                raise _Stop
            container: Any = {} if isinstance(ev, yaml.MappingStartEvent) else []
            pos.values[child_path] = start
            stack.append(_Frame(container, child_path, getattr(ev, "anchor", None), start))
    except _Stop:
        pass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = _pos(mark) if mark is not None else (1, 1)
        msg = " ".join(x for x in (exc.context, exc.problem) if x) or "cannot parse YAML"
        if "nesting depth" in msg:  # libyaml's own limit answers before ours on very deep input
            problems.append(
                YamlProblem("CP106", f"nesting deeper than {limits.max_depth} levels", line, col)
            )
        else:
            problems.append(YamlProblem("CP101", msg, line, col, _flow_hint(msg)))
    except yaml.YAMLError as exc:  # reader errors (bad characters) carry a character index
        offset = int(getattr(exc, "position", 0) or 0)
        line = text.count("\n", 0, offset) + 1
        col = offset - (text.rfind("\n", 0, offset) + 1) + 1
        problems.append(
            YamlProblem(
                "CP101", str(exc).splitlines()[0] if str(exc) else "cannot read YAML", line, col
            )
        )
    finally:
        dispose = getattr(parser, "dispose", None)
        if dispose is not None:
            dispose()
    if problems:
        raise YamlError(problems)
    return root, pos


class _Stop(Exception):
    pass


def _resolve_scalar(value: str, start: tuple[int, int], problems: list[YamlProblem]) -> Any:
    """:func:`_resolve_plain`, with a located error for an integer too long to read."""
    try:
        return _resolve_plain(value)
    except _TooLarge:
        shown = value if len(value) <= 24 else value[:20] + "..."
        problems.append(
            YamlProblem(
                "CP101",
                f"integer {shown} has {len(value):,} characters; at most {MAX_INT_DIGITS:,} digits "
                "are read",
                *start,
                "quote it if it is text; no playbook value needs a number that long",
            )
        )
        raise _Stop from None


def _attach(
    parent: _Frame,
    value: Any,
    vsize: int,
    path: Path,
    start: tuple[int, int],
    pos: Positions,
    problems: list[YamlProblem],
    *,
    is_key_event: bool,
) -> None:
    parent.size += vsize
    if isinstance(parent.container, dict):
        key = parent.key
        pos.keys[path] = parent.key_pos
        parent.container[key] = value
        parent.key = _NOKEY
    else:
        parent.container.append(value)


def _check_tag(ev: Any, start: tuple[int, int], problems: list[YamlProblem]) -> None:
    tag = getattr(ev, "tag", None)
    if tag is None or tag == "!":
        return
    problems.append(
        YamlProblem(
            "CP103",
            f"YAML tag {tag!r} is not allowed",
            *start,
            "playbooks are plain data: remove the tag",
        )
    )
    raise _Stop
