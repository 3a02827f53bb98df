"""The invalid-playbook corpus: every ``tests/invalid/*.yaml`` starts with ``# expect: CODE LINE:COL``
lines, and validation must report exactly those diagnostics (code, line and column), no more."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from carepath.diagnostics import CODES
from carepath.errors import PlaybookError
from carepath.loading.loader import check_file, load

HERE = Path(__file__).resolve().parents[1]
CORPUS = sorted((HERE / "invalid").glob("*.yaml"))
EXAMPLES = sorted(
    p for p in (HERE.parent / "examples").glob("*.yaml") if not p.name.endswith(".test.yaml")
)
_EXPECT = re.compile(r"^# expect: (CP\d{3}) (\d+):(\d+)\s*$", re.M)


def expected(path: Path) -> Counter[tuple[str, int, int]]:
    return Counter((c, int(line), int(col)) for c, line, col in _EXPECT.findall(path.read_text()))


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_invalid_playbook_reports_exactly_its_diagnostics(path: Path) -> None:
    want = expected(path)
    assert want, f"{path.name} has no `# expect:` lines"
    res = check_file(path)
    got = Counter((d.code, d.line, d.col) for d in res.diagnostics)
    assert got == want
    for d in res.diagnostics:
        assert d.file == str(path)
        assert d.code in CODES
        assert d.severity == CODES[d.code][0]


def test_corpus_covers_most_codes() -> None:
    covered = {c for p in CORPUS for (c, _, _) in expected(p)}
    # CP100 (unreadable), CP104 (size) and CP108 (stage count) are generated in other tests;
    # CP307 is reserved for metric references outside goals.
    missing = set(CODES) - covered - {"CP100", "CP104", "CP108", "CP307", "CP512"}
    assert not missing, sorted(missing)


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_load_raises_only_on_errors(path: Path) -> None:
    res = check_file(path)
    if any(d.severity == "error" for d in res.diagnostics):
        with pytest.raises(PlaybookError) as info:
            load(path)
        assert len(info.value.diagnostics) == len(res.diagnostics)
    else:
        pb = load(path)
        assert {d.code for d in pb.warnings} == {d.code for d in res.diagnostics}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_are_clean(path: Path) -> None:
    res = check_file(path)
    assert res.diagnostics == []
    assert res.playbook is not None


def test_too_many_stages(tmp_path: Path) -> None:
    stages = "".join(f"  s{i}: {{on: {{go: s{i + 1}}}}}\n" for i in range(600))
    p = tmp_path / "big.yaml"
    p.write_text(
        "carepath: 1\nid: big\nversion: '1'\nstart: {on: go}\nstages:\n"
        "  s0x: {initial: true, on: {go: s0}}\n" + stages + "  s600: {final: true}\n"
    )
    res = check_file(p)
    assert [d.code for d in res.diagnostics] == ["CP108"]


def test_unreadable_file(tmp_path: Path) -> None:
    res = check_file(tmp_path / "missing.yaml")
    assert [d.code for d in res.diagnostics] == ["CP100"]


def test_every_code_is_documented() -> None:
    text = (HERE.parent / "docs" / "diagnostics.md").read_text()
    headings = set(re.findall(r"^## (CP\d{3})\b", text, re.M))
    assert set(CODES) <= headings, sorted(set(CODES) - headings)
    for code in CODES:
        section = text.split(f"## {code}", 1)[1].split("\n## ", 1)[0]
        assert section.count("```yaml") >= 2, f"{code} needs a failing and a fixed example"
