"""The HTML report in a real headless browser (Debian's chromium): the page loads offline, its
script runs, and every chart is drawn. The screenshot is kept under ``artifacts/``.

CI installs the browser with ``apt-get install -y chromium``; without it these tests skip.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from datetime import date
from pathlib import Path

import pytest

from carepath import load
from carepath.drivers.generate import generate
from carepath.drivers.replay import replay
from carepath.events import Event
from carepath.report import build_report, render

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
CHARTS = (
    "sla-weekly",
    "breaches-channel",
    "breaches-tier",
    "goals",
    "csat-trend",
    "nps-trend",
    "load-daily",
    "load-hourly",
)


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pb = load(ROOT / "examples" / "vn-retail-support.yaml")
    events = [
        Event.from_dict(e)
        for e in generate("retail", start=date(2027, 1, 18), days=21, base=30, peak=150, seed=3)
    ]
    r = build_report(pb, replay(pb, events))
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(render(r, "html"), encoding="utf-8")
    return path


def test_every_chart_is_in_the_markup(page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    for name in CHARTS:
        m = re.search(rf'<svg class="chart" data-chart="{name}".*?</svg>', html, re.S)
        assert m, name
        assert 'class="mark"' in m.group(0), f"chart {name} has nothing drawn"
    assert not re.search(r"""(src|href|url)\s*[=(]\s*["']?(https?:)?//""", html), (
        "the page must not fetch anything"
    )


def _chromium(args: list[str], timeout: int = 120) -> subprocess.CompletedProcess[str]:
    exe = _browser()
    assert exe is not None
    with tempfile.TemporaryDirectory() as profile:
        cmd = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            *args,
        ]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.browser
@pytest.mark.skipif(
    _browser() is None, reason="headless chromium is not installed (apt-get install -y chromium)"
)
def test_charts_drawn_in_headless_chromium(page: Path) -> None:
    r = _chromium(["--virtual-time-budget=5000", "--dump-dom", page.as_uri()])
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    m = re.search(r'data-charts-drawn="(\d+)"', dom)
    assert m, "the report's script did not run"
    assert int(m.group(1)) == len(CHARTS)
    assert f"{len(CHARTS)} charts drawn" in dom
    for name in CHARTS:
        assert f'data-chart="{name}"' in dom


@pytest.mark.browser
@pytest.mark.skipif(
    _browser() is None, reason="headless chromium is not installed (apt-get install -y chromium)"
)
def test_screenshot_artifact(page: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    r = _chromium(
        ["--window-size=1400,2400", "--hide-scrollbars", f"--screenshot={shot}", page.as_uri()]
    )
    assert r.returncode == 0, r.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


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
@pytest.mark.skipif(
    _browser() is None, reason="headless chromium is not installed (apt-get install -y chromium)"
)
def test_charts_drawn_with_script_markup_in_a_title_and_a_channel(hostile_page: Path) -> None:
    r = _chromium(["--virtual-time-budget=5000", "--dump-dom", hostile_page.as_uri()])
    assert r.returncode == 0, r.stderr[-2000:]
    m = re.search(r'data-charts-drawn="(\d+)"', r.stdout)
    assert m, "the report's script did not run"
    assert int(m.group(1)) == len(CHARTS)
