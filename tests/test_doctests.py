"""Every docstring example of the package and every ``>>>`` example in ``docs/`` runs, so none can rot.

A module's examples run with the repository as the working directory (they may read
``examples/``); examples that need a store or a server say ``# doctest: +SKIP``.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import carepath

ROOT = Path(__file__).resolve().parent.parent
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
#: Modules that need an optional extra to import at all.
EXTRAS = {
    "carepath.flink.function": "pyflink",
    "carepath.flink.job": "pyflink",
    "carepath.flink.testing": "pyflink",
}
MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(carepath.__path__, "carepath.")
    if not m.name.endswith("__main__")
)
PAGES = sorted(  # a page with an example line (not one that only mentions `>>>` in its text)
    p.name
    for p in (ROOT / "docs").glob("*.md")
    if re.search(r"^\s*>>> ", p.read_text(encoding="utf-8"), re.M)
)


@pytest.fixture(autouse=True)
def _in_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("name", MODULES)
def test_module_examples(name: str) -> None:
    if name in EXTRAS:
        pytest.importorskip(EXTRAS[name])
    result = doctest.testmod(importlib.import_module(name), optionflags=OPTIONS)
    assert result.failed == 0


@pytest.mark.parametrize("page", PAGES)
def test_docs_page_examples(page: str) -> None:
    result = doctest.testfile(str(ROOT / "docs" / page), module_relative=False, optionflags=OPTIONS)
    assert result.failed == 0 and result.attempted > 0


def test_the_pages_with_examples_are_found() -> None:
    assert {"semantics.md", "business-time.md"} <= set(PAGES)
