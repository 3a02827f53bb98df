"""The runnable examples in docs/semantics.md stay true."""

from __future__ import annotations

import doctest
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_semantics_examples(monkeypatch: object) -> None:
    import os

    os.chdir(ROOT)
    res = doctest.testfile(str(ROOT / "docs" / "semantics.md"), module_relative=False,
                           optionflags=doctest.ELLIPSIS)
    assert res.failed == 0 and res.attempted > 10
