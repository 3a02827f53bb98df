"""The care report (SPEC §6): build it from a replay, render it as JSON, text or HTML.

>>> from carepath import load
>>> from carepath.drivers.replay import read_events, replay
>>> from carepath.report import build_report, render
>>> pb = load("examples/vn-retail-support.yaml")                               # doctest: +SKIP
>>> r = build_report(pb, replay(pb, read_events("examples/events/vn-retail-support.jsonl")))  # doctest: +SKIP
>>> print(render(r, "text"))                                                   # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from carepath.report.build import REPORT_KEYS, answer_within, build_report, compare_reports
from carepath.report.export import write_csv
from carepath.report.html import TemplateError, render_compare_html, render_html
from carepath.report.i18n import LANGS
from carepath.report.parallel import build_reports
from carepath.report.text import render_compare_text, render_text

__all__ = [
    "FORMATS",
    "LANGS",
    "REPORT_KEYS",
    "TemplateError",
    "answer_within",
    "build_report",
    "build_reports",
    "compare_reports",
    "render",
    "render_compare_html",
    "render_compare_text",
    "render_html",
    "render_json",
    "render_text",
    "write_csv",
]

FORMATS = ("text", "json", "html")


def render_json(r: dict[str, Any]) -> str:
    """One JSON document (UTF-8 text, non-ASCII kept)."""
    return json.dumps(r, ensure_ascii=False, indent=2) + "\n"


def render(
    r: dict[str, Any], fmt: str, lang: str = "en", template_dir: str | Path | None = None
) -> str:
    """Render a report, or a what-if object ``{"base", "compare"}``, in ``text``, ``json`` or
    ``html``; text and HTML in ``lang`` (``en`` or ``vi``), HTML from the templates in
    ``template_dir`` first (see :mod:`carepath.report.html`)."""
    what_if = "base" in r and "compare" in r and "playbook" not in r
    if fmt == "json":
        return render_json(r)
    if fmt == "text":
        return render_compare_text(r, lang) if what_if else render_text(r, lang)
    if fmt == "html":
        if what_if:
            return render_compare_html(r, lang, template_dir)
        return render_html(r, lang, template_dir)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
