"""The people-facing report: nice axis ticks, the words in English and Vietnamese, the headline
strip (coverage, rolling windows), rates per channel/segment/tier, staffing per channel, the
backlog from a store, CSV export, template overrides with autoescaping; through the real CLI."""

from __future__ import annotations

import csv
import itertools
import json
import math
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carepath import load
from carepath.drivers.replay import read_events, replay
from carepath.report import build_report, render, write_csv
from carepath.report.charts import nice_ticks
from carepath.report.i18n import METRICS, Words
from carepath.report.view import build_view

ROOT = Path(__file__).resolve().parents[2]
RETAIL = ROOT / "examples" / "vn-retail-support.yaml"
RETAIL_EVENTS = ROOT / "examples" / "events" / "vn-retail-support.jsonl"


@pytest.fixture(scope="module")
def retail() -> dict[str, Any]:
    pb = load(RETAIL)
    return build_report(pb, replay(pb, read_events(RETAIL_EVENTS)))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "carepath", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


@given(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.floats(0, 1e6, allow_nan=False),
    st.integers(2, 8),
    st.booleans(),
)
def test_nice_ticks_cover_the_range_in_round_steps(
    lo: float, span: float, n: int, integer: bool
) -> None:
    hi = lo + span
    ticks = nice_ticks(lo, hi, n, integer=integer)
    step = ticks[1] - ticks[0]
    assert ticks[0] <= lo + 1e-8 * step and ticks[-1] >= hi - 1e-8 * step  # up to rounding
    assert 2 <= len(ticks) <= n + 2
    steps = [b - a for a, b in itertools.pairwise(ticks)]  # equal, up to float rounding
    assert max(steps) - min(steps) <= 1e-6 * max(1.0, step)
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert any(abs(mantissa - m) < 1e-6 for m in (1, 2, 2.5, 5, 10))
    if integer:
        assert step >= 1 and step == int(step)


def test_nice_ticks_of_the_issue() -> None:
    assert nice_ticks(0, 1590) == [0, 500, 1000, 1500, 2000]  # not 530 / 1,060 / 1,590


def test_every_builtin_metric_has_a_name_and_a_definition_in_both_languages() -> None:
    from carepath.metrics import BUILTIN

    for m in BUILTIN:
        for lang in ("en", "vi"):
            name, definition = METRICS[m][lang]
            assert name and definition.endswith(".") and m not in name


def test_words_format_numbers_and_dates_locally() -> None:
    en, vi = Words("en"), Words("vi")
    assert (en.num(12345.6, 1), vi.num(12345.6, 1)) == ("12,345.6", "12.345,6")
    assert vi.duration(3900) == "1 giờ 5 phút" and en.duration(3900) == "1h 05m"
    assert en.instant("2027-02-01T09:12:00+07:00") == "Mon 1 Feb 2027, 09:12"
    assert vi.day("2027-02-07") == "CN, 07/02/2027"
    with pytest.raises(ValueError, match="unknown language 'fr'"):
        Words("fr")


def test_headline_says_coverage_and_rolling_windows_have_no_days_left(
    retail: dict[str, Any],
) -> None:
    v = build_view(retail)
    cards = {c.title: c for c in v.cards}
    fixed = cards["VIP CSAT at or above 90 % in the first half of 2027"]
    assert "134 days left" in fixed.coverage and "data covers 16 of 181 days" in fixed.coverage
    rolling = cards["First-contact resolution at or above 80 %"]
    assert rolling.window.startswith("rolling, last 90 days")
    assert "days left" not in rolling.coverage + rolling.window
    assert "data covers 16 of 90 days (from Mon 1 Feb 2027)" in rolling.coverage
    assert (
        fixed.value == "100.0%" and fixed.cls == "na" and "too few samples (3/50)" in fixed.status
    )


def test_rates_per_group_add_up_to_the_slas(retail: dict[str, Any]) -> None:
    rates = retail["details"]["rates"]
    for by in ("channel", "segment", "tier"):
        for clock, s in retail["slas"].items():
            rows = [r for r in rates[by] if r["clock"] == clock]
            assert sum(r["met"] for r in rows) == s["met"]
            assert sum(r["breached"] for r in rows) == s["breached"]
            for r in rows:
                assert r["breach_rate"] == pytest.approx(r["breached"] / r["finished"])
                assert r["attainment"] + r["breach_rate"] == pytest.approx(1.0)


def test_staffing_per_channel_uses_each_channels_own_target(retail: dict[str, Any]) -> None:
    rows = {r["channel"]: r for r in retail["details"]["staffing_by_channel"]}
    # the playbook's first-response targets: chat and zalo 15 min, phone 30 min, facebook 1 h
    assert rows["chat"]["answer_within"] == 900
    assert rows["phone"]["answer_within"] == 1800
    assert rows["chat"]["agents"] is not None and rows["chat"]["aht"] > 0
    assert sum(r["contacts"] for r in rows.values()) == sum(
        d["contacts"] for d in retail["load"]["per_day"]
    )


def test_the_json_contract_is_unchanged(tmp_path: Path) -> None:
    r = _cli("report", str(RETAIL), str(RETAIL_EVENTS), "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    for key in (
        "playbook",
        "period",
        "events",
        "cases",
        "metrics",
        "slas",
        "goals",
        "load",
        "staffing",
    ):
        assert key in doc
    assert doc["goals"][0]["id"] == "csat-vip" and "attained" in doc["goals"][0]


def test_cli_text_in_vietnamese_and_csv_of_every_table(tmp_path: Path) -> None:
    out = tmp_path / "csv"
    r = _cli("report", str(RETAIL), str(RETAIL_EVENTS), "--lang", "vi", "--csv", str(out))
    assert r.returncode == 0, r.stderr
    assert "Tổng quan" in r.stdout and "Thời gian phản hồi đầu tiên" in r.stdout
    assert "CSV" in r.stderr and r.stderr.count("\n") == 1
    names = sorted(p.name for p in out.iterdir())
    for table in ("goals", "metrics", "slas", "rates_channel", "rates_segment", "rates_tier"):
        assert f"{table}.csv" in names
    assert "staffing_channels.csv" in names and "load_daily.csv" in names
    with (out / "rates_channel.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert set(rows[0]) == {
        "channel",
        "clock",
        "finished",
        "met",
        "breached",
        "attainment",
        "breach_rate",
    }
    email = next(x for x in rows if x["channel"] == "email" and x["clock"] == "first_response")
    assert float(email["breach_rate"]) == pytest.approx(1 / 6)  # raw fractions, not "16.7%"
    with (out / "goals.csv").open(encoding="utf-8-sig", newline="") as fh:
        assert next(csv.DictReader(fh))["goal"] == "csat-vip"


def test_cli_csv_into_an_unwritable_place(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = _cli("report", str(RETAIL), str(RETAIL_EVENTS), "--csv", str(blocker / "sub"))
    assert r.returncode == 2 and r.stderr.startswith("carepath report: --csv ")
    assert "Traceback" not in r.stderr


def test_template_override_rebrands_and_still_escapes(
    tmp_path: Path, retail: dict[str, Any]
) -> None:
    brand = tmp_path / "brand"
    brand.mkdir()
    (brand / "report.html.j2").write_text(
        '{% extends "base.html.j2" %}\n'
        '{% from "macros.html.j2" import report_body with context %}\n'
        '{% block brand %}<div class="logo">ACME Care</div>{% endblock %}\n'
        "{% block content %}<p>{{ view.subtitle }}</p>{{ report_body(view) }}{% endblock %}\n",
        encoding="utf-8",
    )
    hostile = json.loads(json.dumps(retail))
    hostile["playbook"]["title"] = "<img src=x onerror=alert(1)>"
    hostile["playbook"]["version"] = "<b>v</b>"
    page = render(hostile, "html", "en", brand)
    assert '<div class="logo">ACME Care</div>' in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<b>v</b>" not in page.split('id="report-data"')[0]
    assert 'data-chart="sla-weekly"' in page  # the shipped macros still draw the rest


def test_cli_template_errors_are_one_line(tmp_path: Path) -> None:
    r = _cli(
        "report",
        str(RETAIL),
        str(RETAIL_EVENTS),
        "--format",
        "html",
        "--template",
        str(tmp_path / "nope"),
    )
    assert r.returncode == 2 and r.stderr.strip().endswith("not a folder")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "report.html.j2").write_text(
        "{% extends 'base.html.j2' %}{% block content %}{{ nope.x }}{% endblock %}"
    )
    r = _cli("report", str(RETAIL), str(RETAIL_EVENTS), "--format", "html", "--template", str(bad))
    assert r.returncode == 2 and "template" in r.stderr and "nope" in r.stderr
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1


def test_backlog_ageing_and_breached_open_cases_from_a_store(tmp_path: Path) -> None:
    from carepath import runtime

    pb = load(RETAIL)
    url = f"sqlite:///{tmp_path / 'cases.db'}"
    store = runtime.open_store(url)
    rt = runtime.Runtime([pb], store, clock=None)
    events = sorted(read_events(RETAIL_EVENTS), key=lambda e: e.at)
    for e in events:
        rt.run_due(now=e.at - timedelta(microseconds=1))
        rt.submit(e)
    rt.run_due(now=events[-1].at + timedelta(days=3))  # three days later: open cases are late
    store.close()
    out = tmp_path / "csv"
    r = _cli("report", str(RETAIL), "--store", url, "--format", "json")
    assert r.returncode == 0, r.stderr
    b = json.loads(r.stdout)["details"]["backlog"]
    assert b["open"] > 0 and sum(a["cases"] for a in b["ageing"]) == b["open"]
    assert sum(b["by_stage"].values()) == b["open"]
    late = b["breached_open"]
    assert late and b["breached_open_total"] == len(late)
    assert [x["overdue"] for x in late] == sorted((x["overdue"] for x in late), reverse=True)
    r = _cli(
        "report",
        str(RETAIL),
        "--store",
        url,
        "--format",
        "html",
        "-o",
        str(tmp_path / "r.html"),
        "--csv",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Open tickets past a deadline" in page and late[0]["case"] in page
    with (out / "breached_open.csv").open(encoding="utf-8-sig", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == len(late)


def test_what_if_html_and_csv(tmp_path: Path) -> None:
    text = RETAIL.read_text(encoding="utf-8").replace('version: "2027.01"', 'version: "2027.02"')
    other = tmp_path / "other.yaml"
    other.write_text(text.replace("within: 15m}", "within: 5m}"), encoding="utf-8")
    r = _cli(
        "report",
        str(RETAIL),
        str(RETAIL_EVENTS),
        "--compare",
        str(other),
        "--format",
        "html",
        "-o",
        str(tmp_path / "w.html"),
        "--csv",
        str(tmp_path / "csv"),
        "--lang",
        "vi",
    )
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "w.html").read_text(encoding="utf-8")
    assert "Giả định" in page and "Khác biệt" in page and page.count('data-chart="goals"') == 2
    assert (tmp_path / "csv" / "what_if.csv").exists() and (
        tmp_path / "csv" / "compare_slas.csv"
    ).exists()


def test_write_csv_returns_the_files(tmp_path: Path, retail: dict[str, Any]) -> None:
    files = write_csv(retail, tmp_path / "x")
    assert {f.stem for f in files} == {t.id for t in build_view(retail).tables()}
