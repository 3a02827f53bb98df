"""What running scenario files produces: :class:`Failure`, :class:`ScenarioResult`, :class:`FileResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from carepath.diagnostics import Diagnostic

__all__ = ["Failure", "FileResult", "ScenarioResult"]


@dataclass
class Failure:
    """A failed step: where (file, line, col), what, and a readable diff."""

    file: str
    line: int
    col: int
    scenario: str
    step: int
    message: str
    details: list[str] = field(default_factory=list)

    def render(self) -> str:
        """``file:line:col: message`` and the indented diff lines."""
        where = (
            f"{self.file}:{self.line}:{self.col}: "
            if self.line
            else (f"{self.file}: " if self.file else "")
        )
        head = (
            f"{where}scenario {self.scenario!r}"
            + (f", step {self.step}" if self.step else "")
            + f": {self.message}"
        )
        return "\n".join([head, *("    " + d for d in self.details)])


@dataclass
class ScenarioResult:
    """The outcome of one scenario."""

    name: str
    file: str
    line: int
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0
    skipped: bool = False

    @property
    def passed(self) -> bool:
        """No failure (a skipped scenario passes)."""
        return not self.failures


@dataclass
class FileResult:
    """The outcome of one scenario file; ``diagnostics`` holds an invalid playbook's findings."""

    file: str
    playbook: str | None
    results: list[ScenarioResult] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    error: Failure | None = None

    @property
    def passed(self) -> bool:
        """Every scenario passed and the file and its playbook are valid."""
        return (
            self.error is None
            and not self.diagnostics_errors
            and all(r.passed for r in self.results)
        )

    @property
    def diagnostics_errors(self) -> bool:
        """Whether the playbook had errors."""
        return any(d.severity == "error" for d in self.diagnostics)
