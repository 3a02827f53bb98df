"""The README's example runs as written: its playbook validates and the Python snippet gives the
due time the comment promises."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_playbook_and_snippet_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from carepath.loading.loader import check

    (yaml_text,) = _blocks("yaml")
    res = check(yaml_text, file="tiny.yaml")
    assert res.ok, [d.to_dict() for d in res.diagnostics]
    (tmp_path / "tiny.yaml").write_text(yaml_text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    (code,) = _blocks("python")
    scope: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), scope)
    step = scope["step"]
    due = step.state.clocks["first_response"].due  # type: ignore[attr-defined]
    assert due.isoformat() == "2027-03-02T08:30:00+07:00"


def test_readme_names_the_two_set_up_commands() -> None:
    text = README.read_text(encoding="utf-8")
    (setup,) = [b for b in _blocks("sh") if "scripts/demo" in b]
    commands = [line.split("#")[0].strip() for line in setup.splitlines() if line.strip()]
    assert commands == ["scripts/demo", "scripts/test"]
    for c in commands:
        assert (README.parent / c).exists()
    assert "carepath" in text
