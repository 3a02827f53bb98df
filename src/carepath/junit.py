"""The one JUnit XML writer, for ``carepath validate --format junit`` and ``carepath test``.

Callers describe suites and cases; this module owns the XML (escaping, counts, layout):

>>> print(write_junit("demo", [Suite("a.yaml", [Case("a.yaml", "checks", failures=[("1 error", "a.yaml:1:1: boom")])])]), end="")
<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="demo" tests="1" failures="1">
  <testsuite name="a.yaml" tests="1" failures="1" skipped="0">
    <testcase classname="a.yaml" name="checks">
      <failure message="1 error">a.yaml:1:1: boom</failure>
    </testcase>
  </testsuite>
</testsuites>
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape as _html_escape

__all__ = ["Case", "Suite", "write_junit"]


def _text(s: str) -> str:
    return _html_escape(s, quote=False)


def _attr(s: str) -> str:
    return '"' + _html_escape(s, quote=True) + '"'


@dataclass
class Case:
    """One ``testcase``: ``failures`` are ``(message, body)`` pairs; ``seconds`` and ``file`` optional."""

    classname: str
    name: str
    failures: list[tuple[str, str]] = field(default_factory=list)
    skipped: bool = False
    output: str = ""
    seconds: float | None = None
    file: str | None = None


@dataclass
class Suite:
    """One ``testsuite`` of cases; ``seconds`` optional."""

    name: str
    cases: list[Case]
    seconds: float | None = None


def _case(c: Case) -> list[str]:
    attrs = f"classname={_attr(c.classname)} name={_attr(c.name)}"
    if c.file is not None:
        attrs += f" file={_attr(c.file)}"
    if c.seconds is not None:
        attrs += f' time="{c.seconds:.3f}"'
    out = [f"    <testcase {attrs}>"]
    if c.skipped:
        out.append("      <skipped/>")
    out += [f"      <failure message={_attr(m)}>{_text(body)}</failure>" for m, body in c.failures]
    if c.output:
        out.append(f"      <system-out>{_text(c.output)}</system-out>")
    out.append("    </testcase>")
    return out


def write_junit(name: str, suites: Sequence[Suite]) -> str:
    """The XML document for ``suites`` under one ``testsuites`` element called ``name``."""
    total = sum(len(s.cases) for s in suites)
    failed = sum(1 for s in suites for c in s.cases if c.failures)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<testsuites name={_attr(name)} tests="{total}" failures="{failed}">',
    ]
    for s in suites:
        n_fail = sum(1 for c in s.cases if c.failures)
        n_skip = sum(1 for c in s.cases if c.skipped)
        time = f' time="{s.seconds:.3f}"' if s.seconds is not None else ""
        out.append(
            f'  <testsuite name={_attr(s.name)} tests="{len(s.cases)}" failures="{n_fail}"'
            f' skipped="{n_skip}"{time}>'
        )
        for c in s.cases:
            out += _case(c)
        out.append("  </testsuite>")
    out.append("</testsuites>")
    return "\n".join(out) + "\n"
