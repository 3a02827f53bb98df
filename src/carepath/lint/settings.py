"""Project settings for ``carepath validate``, as ruff and yamllint have them: a ``[tool.carepath]``
table in ``pyproject.toml``, or the same keys at the top of ``.carepath.toml``, found in the
current folder or the nearest one above it (``.carepath.toml`` first).

```toml
[tool.carepath]
ignore = ["CP606"]                       # never reported
severity = {CP602 = "error"}             # a warning that fails the build here

[tool.carepath.per-file-ignores]
"playbooks/legacy/*.yaml" = ["CP601", "CP609"]

[tool.carepath.per-file-severity]
"playbooks/prod/*.yaml" = {CP601 = "error"}
```

Only warnings (the ``CP6xx`` codes) can be ignored or have their severity changed: an error means
the playbook cannot be loaded or run as written, which no setting changes. Patterns are
``fnmatch`` globs matched against the file's path relative to the settings' folder (``*``
crosses ``/``); a later, more specific table does not reset an earlier one — a file gets every
ignore and severity whose pattern matches, per-file ones over the global ones.

>>> s = Settings.from_table({"ignore": ["CP606"], "per-file-severity": {"prod/*": {"CP601": "error"}}}, "x.toml")
>>> s.severity_for("CP601", "prod/a.yaml"), s.severity_for("CP601", "dev/a.yaml"), s.severity_for("CP606", "a.yaml")
('error', 'warning', None)
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carepath.diagnostics import CODES, Diagnostic

__all__ = ["Settings", "SettingsError", "find_settings", "load_settings"]

KEYS = ("ignore", "severity", "per-file-ignores", "per-file-severity")


class SettingsError(ValueError):
    """A settings file that cannot be used: the message names the file and the key."""


@dataclass
class Settings:
    """What a project's settings change in the findings of ``validate``."""

    source: str = ""
    root: Path = field(default_factory=Path)
    ignore: frozenset[str] = frozenset()
    severity: dict[str, str] = field(default_factory=dict)
    per_file_ignores: list[tuple[str, frozenset[str]]] = field(default_factory=list)
    per_file_severity: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    @classmethod
    def from_table(cls, table: Any, source: str, root: Path | None = None) -> Settings:
        """Read and check the table (the ``[tool.carepath]`` keys)."""
        if not isinstance(table, dict):
            raise SettingsError(f"{source}: [tool.carepath] must be a table")
        unknown = sorted(set(table) - set(KEYS))
        if unknown:
            raise SettingsError(
                f"{source}: unknown key {unknown[0]!r} in [tool.carepath]; expected one of "
                + ", ".join(KEYS)
            )
        s = cls(source=source, root=root or Path())
        s.ignore = _codes(table.get("ignore", []), f"{source}: ignore")
        s.severity = _severities(table.get("severity", {}), f"{source}: severity")
        pfi = table.get("per-file-ignores", {})
        if not isinstance(pfi, dict):
            raise SettingsError(f"{source}: per-file-ignores must be a table of glob = [codes]")
        s.per_file_ignores = [
            (str(g), _codes(v, f"{source}: per-file-ignores.{g!r}")) for g, v in pfi.items()
        ]
        pfs = table.get("per-file-severity", {})
        if not isinstance(pfs, dict):
            raise SettingsError(
                f"{source}: per-file-severity must be a table of glob = {{CODE = severity}}"
            )
        s.per_file_severity = [
            (str(g), _severities(v, f"{source}: per-file-severity.{g!r}")) for g, v in pfs.items()
        ]
        return s

    def _rel(self, file: str) -> str:
        try:
            return Path(file).resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return Path(file).as_posix()

    def severity_for(self, code: str, file: str) -> str | None:
        """The severity of ``code`` in ``file`` (None: ignored)."""
        rel = self._rel(file)
        if code in self.ignore or any(
            code in codes and fnmatch.fnmatch(rel, g) for g, codes in self.per_file_ignores
        ):
            return None
        sev = self.severity.get(code, CODES.get(code, ("error", ""))[0])
        for g, table in self.per_file_severity:
            if code in table and fnmatch.fnmatch(rel, g):
                sev = table[code]
        return sev

    def apply(self, diagnostics: list[Diagnostic]) -> list[Diagnostic]:
        """The findings with ignores dropped and severities changed."""
        from dataclasses import replace

        out = []
        for d in diagnostics:
            if d.severity == "error":  # an error is never changed (see the module docstring)
                out.append(d)
                continue
            sev = self.severity_for(d.code, d.file)
            if sev is None:
                continue
            out.append(d if sev == d.severity else replace(d, severity=sev))  # type: ignore[arg-type]
        return out


def _codes(value: Any, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise SettingsError(f'{where}: expected a list of codes such as ["CP606"]')
    for c in value:
        _warning_code(c, where)
    return frozenset(value)


def _severities(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise SettingsError(f'{where}: expected a table such as {{CP602 = "error"}}')
    for c, sev in value.items():
        _warning_code(c, where)
        if sev not in ("error", "warning"):
            raise SettingsError(f'{where}.{c}: expected "error" or "warning", not {sev!r}')
    return dict(value)


def _warning_code(code: str, where: str) -> None:
    if code not in CODES:
        raise SettingsError(f"{where}: unknown code {code!r} (docs/diagnostics.md lists them)")
    if CODES[code][0] != "warning":
        raise SettingsError(
            f"{where}: {code} is an error (the playbook cannot run as written); only warnings "
            "(CP6xx) can be ignored or have their severity changed"
        )


def find_settings(start: str | os.PathLike[str] = ".") -> Path | None:
    """The settings file for ``start``: ``.carepath.toml``, or a ``pyproject.toml`` with a
    ``[tool.carepath]`` table, in ``start`` or the nearest folder above it."""
    import tomllib

    here = Path(start).resolve()
    for folder in (here, *here.parents):
        dot = folder / ".carepath.toml"
        if dot.is_file():
            return dot
        py = folder / "pyproject.toml"
        if py.is_file():
            try:
                data = tomllib.loads(py.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                continue
            if isinstance(data.get("tool"), dict) and "carepath" in data["tool"]:
                return py
    return None


def load_settings(path: str | os.PathLike[str]) -> Settings:
    """Read a settings file (``.carepath.toml``: top-level keys, or a ``[tool.carepath]`` table;
    ``pyproject.toml``: its ``[tool.carepath]`` table)."""
    import tomllib

    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"{p}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{p}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{p}: not valid TOML: {exc}") from None
    tool = data.get("tool")
    if isinstance(tool, dict) and "carepath" in tool:
        table = tool["carepath"]
    elif p.name == "pyproject.toml":
        table = {}
    else:
        table = data
    return Settings.from_table(table, str(p), p.parent.resolve())
