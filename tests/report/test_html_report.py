"""The HTML report in a real headless browser: Debian's chromium driven over the DevTools
protocol (``tests/browser.py``). The page loads offline with no console error, no exception and no
request leaving the machine, and every chart is drawn; the screenshot of the example report is
kept as ``.ci/artifacts/report.png`` (``CAREPATH_ARTIFACTS`` moves the folder) for review.

``scripts/services`` installs the browser (``apt-get install chromium``); without it the browser
tests skip, unless ``CAREPATH_REQUIRE_BROWSER=1`` (as in ``.ci/run``), which makes them fail.
"""

from __future__ import annotations

import json
import os
import re
from datetime import date
from pathlib import Path

import pytest

from browser import Browser, browser_path
from carepath import load
from carepath.drivers.generate import generate
from carepath.drivers.replay import replay
from carepath.events import Event
from carepath.report import build_report, render

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("CAREPATH_ARTIFACTS") or ROOT / ".ci" / "artifacts")
CHARTS = (
    "sla-weekly",
    "rates-channel",
    "rates-segment",
    "rates-tier",
    "goals",
    "csat-trend",
    "nps-trend",
    "load-daily",
    "load-hourly",
)

needs_browser = pytest.mark.skipif(
    browser_path() is None and os.environ.get("CAREPATH_REQUIRE_BROWSER") != "1",
    reason="headless chromium is not installed (scripts/services, or apt-get install chromium)",
)


def _report() -> dict:  # type: ignore[type-arg]
    pb = load(ROOT / "examples" / "vn-retail-support.yaml")
    # starts on a Wednesday: the first week is partial, and is drawn so
    events = [
        Event.from_dict(e)
        for e in generate("retail", start=date(2027, 1, 20), days=21, base=30, peak=150, seed=3)
    ]
    return build_report(pb, replay(pb, events))


@pytest.fixture(scope="module")
def report() -> dict:  # type: ignore[type-arg]
    return _report()


@pytest.fixture(scope="module")
def page(report: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[type-arg]
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(render(report, "html"), encoding="utf-8")
    return path


def test_every_chart_is_in_the_markup(page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    for name in CHARTS:
        m = re.search(rf'<svg class="chart" data-chart="{name}".*?</svg>', html, re.S)
        assert m, name
        assert 'class="mark' in m.group(0), f"chart {name} has nothing drawn"
    assert not re.search(r"""(src|href|url)\s*[=(]\s*["']?(https?:)?//""", html), (
        "the page must not fetch anything"
    )
    assert "charts drawn" not in html  # no debug text for managers


def test_partial_week_is_marked_not_plotted_as_full(page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    sla = re.search(r'data-chart="sla-weekly".*?</svg>', html, re.S)
    assert sla and 'class="mark partial"' in sla.group(0)
    assert "Hollow points are partial weeks" in html


def _drawn(b: Browser) -> list[list[object]]:
    return b.evaluate(  # type: ignore[no-any-return]
        "[...document.querySelectorAll('svg.chart')].map(s => {const r = s.getBoundingClientRect();"
        " return [s.dataset.chart, s.querySelectorAll('.mark').length, r.width, r.height]})"
    )


@pytest.mark.browser
@needs_browser
def test_report_in_headless_chromium(page: Path) -> None:
    with Browser() as b:
        b.open(page.as_uri())
        assert b.errors() == []
        assert [u for u in b.requests() if not u.startswith(("file:", "data:", "about:"))] == []
        assert b.evaluate("document.body.dataset.chartsDrawn") == str(len(CHARTS))
        charts = _drawn(b)
        assert [c[0] for c in charts] == list(CHARTS)
        for name, marks, width, height in charts:
            assert marks and width > 300 and height > 50, (name, marks, width, height)
        # the report's JSON reads back whole from the page
        data = b.evaluate("JSON.parse(document.getElementById('report-data').textContent).cases")
        assert data > 0
        shot = b.screenshot(ARTIFACTS / "report.png")
        assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 50_000
        pdf = b.pdf()  # print styles: the page prints
        assert pdf[:5] == b"%PDF-"


@pytest.mark.browser
@needs_browser
def test_vietnamese_report_in_headless_chromium(report: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    path = tmp_path / "bao-cao.html"
    path.write_text(render(report, "html", "vi"), encoding="utf-8")
    with Browser() as b:
        b.open(path.as_uri())
        assert b.errors() == []
        assert b.evaluate("document.documentElement.lang") == "vi"
        assert b.evaluate("document.body.dataset.chartsDrawn") == str(len(CHARTS))
        assert "Tổng quan" in b.evaluate("document.body.innerText")
        b.screenshot(ARTIFACTS / "report-vi.png")


HOSTILE = "<!--<script>"


@pytest.fixture(scope="module")
def hostile_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of a playbook whose title and a channel's name and title hold ``<!--<script>``,
    ``</script>``, ``&`` and U+2028/U+2029 (issue 15 #23)."""
    text = (ROOT / "examples" / "vn-retail-support.yaml").read_text(encoding="utf-8")
    text = text.replace("chat, facebook, zalo", f'chat, "{HOSTILE}", zalo')
    text = text.replace(
        "  facebook: {title: Facebook Messenger (fanpage), calendar: office}",
        f'  "{HOSTILE}": {{title: "FB {HOSTILE} </script> \\u2028 & >", calendar: office}}',
    )
    text = text.replace('channel == "facebook"', f'channel == "{HOSTILE}"')
    text = text.replace(
        "title: Retail support desk (VN)", f'title: "Retail {HOSTILE} </script> desk \\u2029"'
    )
    tmp = tmp_path_factory.mktemp("hostile")
    (tmp / "pb.yaml").write_text(text, encoding="utf-8")
    pb = load(tmp / "pb.yaml")
    raw = list(generate("retail", start=date(2027, 1, 18), days=21, base=30, peak=150, seed=3))
    for e in raw:
        if e.get("data", {}).get("channel") == "facebook":
            e["data"]["channel"] = HOSTILE
    r = build_report(pb, replay(pb, [Event.from_dict(e) for e in raw]))
    assert HOSTILE in r["playbook"]["title"]
    assert HOSTILE in json.dumps(r, ensure_ascii=False)
    path = tmp / "report.html"
    path.write_text(render(r, "html"), encoding="utf-8")
    return path


def test_inline_data_escapes_every_markup_character(hostile_page: Path) -> None:
    html = hostile_page.read_text(encoding="utf-8")
    data = html.split('<script type="application/json" id="report-data">', 1)[1].split(
        "</script>", 1
    )[0]
    assert not set(data) & set("<>&\u2028\u2029")
    assert '"title":"Retail \\u003c!--\\u003cscript\\u003e' in data


@pytest.mark.browser
@needs_browser
def test_charts_drawn_with_script_markup_in_a_title_and_a_channel(hostile_page: Path) -> None:
    with Browser() as b:
        b.open(hostile_page.as_uri())
        assert b.errors() == []
        assert b.evaluate("document.body.dataset.chartsDrawn") == str(len(CHARTS))
        assert b.evaluate("document.querySelectorAll('script').length") == 2
        assert HOSTILE in b.evaluate("document.title")


def test_partial_days_are_outlined(page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    daily = re.search(r'data-chart="load-daily".*?</svg>', html, re.S)
    assert daily and daily.group(0).count('class="mark partial"') in (1, 2)
    assert "Outlined bars are partial days" in html
