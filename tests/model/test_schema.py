"""The JSON Schema: drift check against ``schemas/playbook.schema.json``, and the examples
validate against it (with the ``jsonschema`` package, when installed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from carepath.cli.app import main
from carepath.loading.yaml import load_yaml
from carepath.model.schema import SCHEMA_DIALECT, playbook_schema, schema_text

ROOT = Path(__file__).resolve().parents[2]
CHECKED_IN = ROOT / "schemas" / "playbook.schema.json"
EXAMPLES = sorted(
    p for p in (ROOT / "examples").glob("*.yaml") if not p.name.endswith(".test.yaml")
)


def test_checked_in_schema_matches_the_models() -> None:
    assert CHECKED_IN.read_text(encoding="utf-8") == schema_text(), (
        "schemas/playbook.schema.json drifted: run `carepath schema -o schemas/playbook.schema.json`"
    )


def test_schema_head() -> None:
    s = playbook_schema()
    assert list(s)[:3] == ["$schema", "$id", "title"]
    assert s["$schema"] == SCHEMA_DIALECT
    assert "stages" in s["properties"] and "carepath" in s["required"]


def test_cli_schema_and_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == playbook_schema()
    assert main(["schema", "--check", str(CHECKED_IN)]) == 0
    stale = tmp_path / "old.json"
    stale.write_text("{}\n")
    assert main(["schema", "--check", str(stale)]) == 1
    assert main(["schema", "--check", str(tmp_path / "missing.json")]) == 2
    out = tmp_path / "new.json"
    assert main(["schema", "-o", str(out)]) == 0
    assert out.read_text() == schema_text()


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_validate_against_the_schema(path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(CHECKED_IN.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    data, _ = load_yaml(path.read_text(encoding="utf-8"))
    errors = [
        f"{list(e.absolute_path)}: {e.message[:200]}"
        for e in jsonschema.Draft202012Validator(schema).iter_errors(data)
    ]
    assert errors == []


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_start_with_the_modeline(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# yaml-language-server: $schema=") and first.endswith(
        "playbook.schema.json"
    )


def test_schema_rejects_what_the_loader_rejects() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(CHECKED_IN.read_text())
    v = jsonschema.Draft202012Validator(schema)
    bad = {
        "carepath": 1,
        "id": "x",
        "version": "1",
        "start": {"on": "a"},
        "stages": {"s": {"initial": True, "intial": True}},
    }
    assert list(v.iter_errors(bad))
