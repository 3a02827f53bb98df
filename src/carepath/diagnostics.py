"""Diagnostics: what validation found, where, and how to print it.

A :class:`Diagnostic` is ``{severity, code, message, file, line, col, path, hint}``; lines and
columns count from 1. Codes are stable and documented in ``docs/diagnostics.md`` (the table
:data:`CODES` is the single source of truth and a test keeps the page in step with it).
Formatters render a list of diagnostics as text (with the source line and a caret), JSON,
GitHub workflow commands, SARIF 2.1.0, JUnit XML or GitLab Code Quality JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["CODES", "FORMATS", "Diagnostic", "format_diagnostics", "path_str"]

Severity = Literal["error", "warning"]

#: Every diagnostic code: (default severity, short title). Stable: automation relies on codes.
CODES: dict[str, tuple[Severity, str]] = {
    # 1xx: reading the file
    "CP100": ("error", "file cannot be read"),
    "CP101": ("error", "YAML syntax error"),
    "CP102": ("error", "duplicate key"),
    "CP103": ("error", "YAML tag not allowed"),
    "CP104": ("error", "file too large"),
    "CP105": ("error", "alias expansion limit exceeded"),
    "CP106": ("error", "nesting too deep"),
    "CP107": ("error", "include cannot be resolved"),
    "CP108": ("error", "too many stages or transitions"),
    "CP109": ("error", "document is not a mapping"),
    # 2xx: schema
    "CP201": ("error", "unknown key"),
    "CP202": ("error", "missing key"),
    "CP203": ("error", "invalid value"),
    "CP204": ("error", "invalid duration"),
    "CP205": ("error", "calendar-day unit in business time"),
    "CP206": ("error", "unsupported format version"),
    # 3xx: references
    "CP301": ("error", "unknown stage"),
    "CP302": ("error", "unknown tier"),
    "CP303": ("error", "unknown calendar"),
    "CP304": ("error", "unknown channel"),
    "CP305": ("error", "unknown segment"),
    "CP306": ("error", "unknown template field"),
    "CP307": ("error", "unknown metric"),
    "CP308": ("error", "unknown SLA"),
    # 4xx: expressions
    "CP401": ("error", "expression syntax error"),
    "CP402": ("error", "unknown name in expression"),
    "CP403": ("error", "expression type error"),
    "CP404": ("error", "construct not allowed in expressions"),
    "CP405": ("error", "unknown function"),
    # 5xx: semantic errors
    "CP501": ("error", "no initial stage"),
    "CP502": ("error", "more than one initial stage"),
    "CP503": ("error", "non-final stage with no way out"),
    "CP504": ("error", "SLA without an unconditional last target"),
    "CP505": ("error", "thresholds out of order"),
    "CP506": ("error", "invalid calendar hours"),
    "CP507": ("error", "calendar without open time"),
    "CP508": ("error", "cycle of signal handlers"),
    "CP509": ("error", "goal with unknown metric"),
    "CP510": ("error", "goal target outside the metric's range or unit"),
    "CP511": ("error", "goal without window"),
    "CP512": ("error", "invalid calendar definition"),
    "CP513": ("error", "invalid goal window"),
    "CP514": ("error", "duplicate goal id"),
    # 6xx: warnings
    "CP601": ("warning", "unreachable stage"),
    "CP602": ("warning", "a case can wait forever in this stage (forgotten customer)"),
    "CP603": ("warning", "clock can never start"),
    "CP604": ("warning", "clock can never stop"),
    "CP605": ("warning", "segment shadowed by an earlier catch-all"),
    "CP606": ("warning", "threshold beyond reason"),
    "CP607": ("warning", "calendar: channel where the channel can be unset"),
    "CP608": ("warning", "goal target implausible given its baseline"),
    "CP609": ("warning", "timer that can never fire"),
    "CP620": ("warning", "send to a channel nobody consents to by default"),
    "CP621": ("warning", "frequency cap that can never let a message through"),
}

FORMATS = ("text", "json", "github", "sarif", "junit", "gitlab")
#: The project's home (a placeholder until it has a public one; the same as the schema's ``$id``
#: and the package's project URLs): SARIF's ``informationUri`` and each rule's ``helpUri`` under it.
PROJECT_URL = "https://example.invalid/carepath"
#: Where each code is documented: ``{DOCS_URL}#cp201``.
DOCS_URL = f"{PROJECT_URL}/docs/diagnostics.md"


#: Longest key shown whole in a path; a longer one is clipped (a 500 KB key above 48,000 findings
#: would otherwise be repeated in every one of them).
MAX_PATH_PART = 80
#: Widest source excerpt under a text diagnostic; a longer line is shown around the column.
MAX_EXCERPT = 160


def path_str(path: Sequence[str | int]) -> str:
    """Render a node path as ``slas.first_response.targets[1].within``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = str(part)
            if len(text) > MAX_PATH_PART:
                text = text[: MAX_PATH_PART - 1] + "…"
            out += ("." if out else "") + text
    return out


def _excerpt(src: str, col: int, width: int) -> tuple[str, int, int]:
    """At most :data:`MAX_EXCERPT` characters of ``src`` around ``col`` (1-based): the text, and
    the caret's column and width in it. Bounded, so many findings on one long line (a 1 MiB flow
    mapping) print in linear space."""
    if len(src) <= MAX_EXCERPT:
        return src, col, width
    start = max(0, min(col - 1 - MAX_EXCERPT // 2, len(src) - MAX_EXCERPT))
    end = start + MAX_EXCERPT
    head = "…" if start > 0 else ""
    tail = "…" if end < len(src) else ""
    caret = col - start + len(head)
    return head + src[start:end] + tail, caret, max(1, min(width, end - (col - 1)))


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding. ``line``/``col`` count from 1; ``path`` is the dotted node path."""

    severity: Severity
    code: str
    message: str
    file: str
    line: int
    col: int
    path: str = ""
    hint: str | None = None
    end_col: int | None = field(default=None, compare=False)

    def location(self) -> str:
        """``file:line:col``."""
        return f"{self.file}:{self.line}:{self.col}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of SPEC §5."""
        d: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "path": self.path,
        }
        if self.hint is not None:
            d["hint"] = self.hint
        return d


def sort_key(d: Diagnostic) -> tuple[str, int, int, str]:
    """Order diagnostics by file, position, code."""
    return (d.file, d.line, d.col, d.code)


def format_diagnostics(
    diagnostics: Sequence[Diagnostic],
    fmt: str = "text",
    *,
    sources: Mapping[str, str] | None = None,
    files: Iterable[str] = (),
    color: bool = False,
    seconds: Mapping[str, float] | None = None,
) -> str:
    """Render ``diagnostics`` in one of :data:`FORMATS`.

    ``sources`` maps a file name to its text (for the caret display of the text format);
    ``files`` lists every file checked (JUnit and SARIF report clean files too); ``seconds`` the
    time each file took (JUnit's ``time``). The text format has no summary line: the command
    prints the one summary, on standard error.
    """
    diags = sorted(diagnostics, key=sort_key)
    if fmt == "text":
        return _text(diags, sources or {}, color)
    if fmt == "json":
        return json.dumps([d.to_dict() for d in diags], indent=2, ensure_ascii=False)
    if fmt == "github":
        return "".join(_github(d) + "\n" for d in diags)
    if fmt == "sarif":
        return json.dumps(_sarif(diags), indent=2, ensure_ascii=False)
    if fmt == "junit":
        return _junit(diags, list(files), seconds or {})
    if fmt == "gitlab":
        return json.dumps([_gitlab(d) for d in diags], indent=2, ensure_ascii=False)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _text(diags: Sequence[Diagnostic], sources: Mapping[str, str], color: bool) -> str:
    red, yellow, cyan, bold, reset = (
        ("\x1b[31m", "\x1b[33m", "\x1b[36m", "\x1b[1m", "\x1b[0m") if color else ("",) * 5
    )
    lines: list[str] = []
    # Each file is split into lines once, however many findings it has (48,000 findings used
    # to split a 1 MiB file 48,000 times).
    cache: dict[str, list[str]] = {}
    for d in diags:
        sev_color = red if d.severity == "error" else yellow
        where = f" ({d.path})" if d.path else ""
        lines.append(
            f"{bold}{d.location()}{reset}: {sev_color}{d.severity} {d.code}{reset}: {d.message}{where}"
        )
        src_lines = cache.get(d.file)
        if src_lines is None and d.file in sources:
            src_lines = cache[d.file] = sources[d.file].splitlines()
        if src_lines is not None and 1 <= d.line <= len(src_lines):
            src, col, width = _excerpt(
                src_lines[d.line - 1], d.col, max(1, (d.end_col or d.col + 1) - d.col)
            )
            src = src.replace("\t", " ")  # a tab is one column (expandtabs(1)), after the excerpt
            gutter = f"{d.line:>5} | "
            lines.append(gutter + src)
            lines.append(
                " " * (len(gutter) - 2)
                + "| "
                + " " * (col - 1)
                + f"{sev_color}^{'~' * (width - 1)}{reset}"
            )
        if d.hint:
            lines.append(f"      {cyan}hint{reset}: {d.hint}")
    return "\n".join(lines) + ("\n" if lines else "")


def _gh_escape(s: str, prop: bool = False) -> str:
    s = s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        s = s.replace(":", "%3A").replace(",", "%2C")
    return s


def _github(d: Diagnostic) -> str:
    msg = d.message + (f" (hint: {d.hint})" if d.hint else "")
    if d.path:
        msg += f" [{d.path}]"
    return (
        f"::{d.severity} file={_gh_escape(d.file, True)},line={d.line},col={d.col},"
        f"title={_gh_escape(d.code, True)}::{_gh_escape(msg)}"
    )


def _sarif(diags: Sequence[Diagnostic]) -> dict[str, Any]:
    used = sorted({d.code for d in diags})
    rules = [
        {
            "id": c,
            "shortDescription": {"text": CODES.get(c, ("error", c))[1]},
            "helpUri": f"{DOCS_URL}#{c.lower()}",
        }
        for c in used
    ]
    results = []
    for d in diags:
        text = d.message + (f" Hint: {d.hint}" if d.hint else "")
        results.append(
            {
                "ruleId": d.code,
                "ruleIndex": used.index(d.code),
                "level": d.severity,
                "message": {"text": text},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": d.file},
                            "region": {"startLine": d.line, "startColumn": d.col},
                        },
                        "logicalLocations": [{"fullyQualifiedName": d.path}] if d.path else [],
                    }
                ],
            }
        )
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "carepath",
                        "version": _version(),
                        "semanticVersion": _version(),
                        "informationUri": PROJECT_URL,
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }


def _version() -> str:
    """The installed distribution's version (the package's own ``__version__`` is above this
    module in the import graph)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("carepath")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "0+unknown"


def _gitlab(d: Diagnostic) -> dict[str, Any]:
    """One GitLab Code Quality issue. The fingerprint leaves the line out, so a finding keeps its
    identity when lines above it move."""
    import hashlib

    key = "\x00".join((d.file, d.code, d.path, d.message))
    return {
        "type": "issue",
        "check_name": d.code,
        "description": f"{d.code}: {d.message}" + (f" (hint: {d.hint})" if d.hint else ""),
        "categories": ["Bug Risk"] if d.severity == "error" else ["Style"],
        "severity": "major" if d.severity == "error" else "minor",
        "fingerprint": hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest(),
        "location": {"path": d.file, "lines": {"begin": d.line}},
    }


def _junit(diags: Sequence[Diagnostic], files: list[str], seconds: Mapping[str, float]) -> str:
    from carepath.junit import Case, Suite, write_junit

    by_file: dict[str, list[Diagnostic]] = {f: [] for f in files}
    for d in diags:
        by_file.setdefault(d.file, []).append(d)
    cases = []
    for f, ds in by_file.items():
        case = Case("carepath.validate", f, file=f, seconds=seconds.get(f, 0.0))
        errs = [d for d in ds if d.severity == "error"]
        if errs:
            body = "\n".join(f"{d.location()}: {d.code}: {d.message}" for d in errs)
            case.failures.append((f"{len(errs)} error(s)", body))
        warns = [d for d in ds if d.severity == "warning"]
        case.output = "\n".join(f"{d.location()}: {d.code}: {d.message}" for d in warns)
        cases.append(case)
    total = sum(seconds.get(f, 0.0) for f in by_file)
    return write_junit("carepath validate", [Suite("carepath validate", cases, seconds=total)])
