"""The business-time docs and docstrings run as doctests, so they cannot rot."""

from __future__ import annotations

import doctest
from pathlib import Path

import carepath.calendar.business
import carepath.calendar.schedule

DOCS = Path(__file__).resolve().parent.parent / "docs" / "business-time.md"


def test_docs_page() -> None:
    result = doctest.testfile(str(DOCS), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 10


def test_module_docstrings() -> None:
    for module in (carepath.calendar.business, carepath.calendar.schedule):
        assert doctest.testmod(module).failed == 0
