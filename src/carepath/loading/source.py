"""Where things are: source files with positions, and the reporter that turns findings at node
paths into :class:`~carepath.diagnostics.Diagnostic` objects."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

from carepath.diagnostics import CODES, Diagnostic, Severity, path_str
from carepath.loading.yaml import Positions

__all__ = ["Reporter", "Source"]

Path = tuple[str | int, ...]


@dataclass
class Source:
    """One loaded file: its name, text and node positions."""

    file: str
    text: str
    positions: Positions
    _line_starts: list[int] = field(default_factory=list, repr=False)

    def index(self, line: int, col: int) -> int:
        """The index in ``text`` of a 1-based (line, col)."""
        if not self._line_starts:
            self._line_starts.append(0)
            self._line_starts.extend(i + 1 for i, ch in enumerate(self.text) if ch == "\n")
        return self._line_starts[min(line, len(self._line_starts)) - 1] + col - 1

    def place(self, path: Path, value: str, offset: int) -> tuple[int, int] | None:
        """(line, col) of ``value[offset]`` inside the scalar at ``path`` as written — plain, block
        (``|``, ``>``) or quoted, over several lines or with escapes (``''``, ``\\"``) — or
        ``None`` when the source does not show the value's characters in order. Folding changes
        only whitespace, so the other characters are matched in order."""
        pos = self.positions
        (line, col), end = pos.values[path], pos.ends.get(path)
        style = pos.styles.get(path, "")
        if end is None or style not in ("", "|", ">", "'", '"'):
            return None
        raw, at = self.text, self.index(line, col)
        stop = self.index(*end)
        if style in ("|", ">"):  # a block scalar: its text begins on the line after the indicator
            at = raw.find("\n", at) + 1 or len(raw)
        elif style:  # inside the quotes
            at, stop = at + 1, stop - 1
        for i, ch in enumerate(value[: offset + 1]):
            step = _written(raw, at, stop, ch, style)
            if ch.isspace() and step == 0:
                continue  # folded: the source's line break and indentation are skipped below
            if not ch.isspace():
                while at < stop and (
                    raw[at].isspace() or (style == '"' and raw[at : at + 2] == "\\\n")
                ):  # folding, and a double-quoted line break escaped with a backslash
                    at += 2 if raw[at] == "\\" else 1
                step = _written(raw, at, stop, ch, style)
                if step == 0:
                    return None
            if i < offset:
                at += step
        line_start = raw.rfind("\n", 0, at) + 1
        return bisect.bisect_right(self._line_starts, at), at - line_start + 1


#: Double-quoted YAML escapes that stand for one character (``\x``, ``\u``, ``\U`` take hex).
_ESCAPES = {
    "0": "\0", "a": "\a", "b": "\b", "t": "\t", "\t": "\t", "n": "\n", "v": "\v", "f": "\f",
    "r": "\r", "e": "\x1b", " ": " ", '"': '"', "/": "/", "\\": "\\", "N": "\x85",
    "_": "\xa0", "L": "\u2028", "P": "\u2029",
}  # fmt: skip
_HEX = {"x": 2, "u": 4, "U": 8}


def _written(raw: str, at: int, stop: int, ch: str, style: str) -> int:
    """How many source characters at ``raw[at]`` write the value character ``ch`` in a scalar
    of ``style`` (0: they do not); a line break is never matched here (folding)."""
    if at >= stop or (ch == "\n" and raw[at] == "\n"):
        return 0
    if style == "'" and ch == "'":
        return 2 if raw[at : at + 2] == "''" else 0
    if style == '"' and raw[at] == "\\":
        kind = raw[at + 1 : at + 2]
        if kind in _HEX:
            digits = raw[at + 2 : at + 2 + _HEX[kind]]
            try:
                return 2 + len(digits) if chr(int(digits, 16)) == ch else 0
            except ValueError:
                return 0
        return 2 if _ESCAPES.get(kind) == ch else 0
    return 1 if raw[at] == ch else 0


@dataclass
class Reporter:
    """Collects diagnostics for one playbook; knows which file each top-level entry came from."""

    main: Source
    origins: dict[tuple[str, str], Source] = field(
        default_factory=dict
    )  # (section, name) → included file
    diagnostics: list[Diagnostic] = field(default_factory=list)
    tainted: set[tuple[str, str]] = field(
        default_factory=set
    )  # (section, name) removed after a schema error
    pruned: bool = (
        False  # the schema rejected parts of the playbook; the rest was checked without them
    )
    # list items the schema rejected and the checker removed: original list path → original
    # indices removed (sorted), so a finding on the pruned playbook's goals[0] is located at the
    # goals[2] the designer wrote
    removed: dict[Path, list[int]] = field(default_factory=dict)

    def original(self, path: Sequence[str | int]) -> Path:
        """``path`` in the pruned playbook → the same node's path in the file."""
        if not self.removed:
            return tuple(path)
        out: list[str | int] = []
        for step in path:
            gone = self.removed.get(tuple(out)) if isinstance(step, int) else None
            if gone and isinstance(step, int):
                for r in gone:  # the step-th survivor: skip every removed index at or before it
                    if r <= step:
                        step += 1
                    else:
                        break
            out.append(step)
        return tuple(out)

    def remove(self, path: Sequence[str | int]) -> None:
        """Record that the list item at ``path`` (a pruned-playbook path) is being removed."""
        orig = self.original(path)
        index = orig[-1]
        assert isinstance(index, int)
        bisect.insort(self.removed.setdefault(orig[:-1], []), index)

    def source_of(self, path: Path) -> Source:
        """The file that holds ``path`` (an included file for entries merged from it)."""
        if len(path) >= 2 and isinstance(path[0], str) and isinstance(path[1], str):
            src = self.origins.get((path[0], path[1]))
            if src is not None:
                return src
        return self.main

    def locate(
        self, path: Path, *, key: bool = False, offset: int | None = None, value: str | None = None
    ) -> tuple[str, int, int]:
        """``(file, line, col)`` of the node at ``path``; ``offset`` is a position inside the
        scalar ``value`` there (needed to place it in a multi-line or block scalar)."""
        path = self.original(path)
        src = self.source_of(path)
        pos = src.positions
        line, col = pos.key(path) if key else pos.value(path)
        if offset is not None and not key and tuple(path) in pos.values:
            style = pos.styles.get(tuple(path), "")
            end = pos.ends.get(tuple(path))
            simple = style == "" and (end is None or end[0] == line)
            placed = None if simple or value is None else src.place(tuple(path), value, offset)
            if placed is not None:
                line, col = placed
            elif simple or style in ("'", '"'):
                col += offset + (1 if style else 0)
        return src.file, line, col

    def add(
        self,
        code: str,
        message: str,
        path: Sequence[str | int],
        *,
        hint: str | None = None,
        key: bool = False,
        offset: int | None = None,
        value: str | None = None,
        severity: Severity | None = None,
        width: int | None = None,
    ) -> None:
        """Record a finding at ``path`` (its key when ``key``; ``offset`` inside the scalar
        ``value``)."""
        p = self.original(path)
        if (
            self.tainted
            and code in ("CP402", "CP403")
            and any(s == "fields" and f"'{n}'" in message for s, n in self.tainted)
        ):
            return  # an expression naming a field the schema rejected: already reported there
        file, line, col = self.locate(
            tuple(path), key=key, offset=offset, value=value
        )  # it maps `path` too
        sev = severity or CODES.get(code, ("error", ""))[0]
        self.diagnostics.append(
            Diagnostic(
                sev,
                code,
                message,
                file,
                line,
                col,
                path_str(p),
                hint or None,
                end_col=col + width if width else None,
            )
        )

    @property
    def has_errors(self) -> bool:
        """Whether any error (not warning) was recorded."""
        return any(d.severity == "error" for d in self.diagnostics)
