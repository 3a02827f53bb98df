"""The care report: JSON shape of SPEC §6, text, what-if, the CLI, load and staffing rows."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from carepath import load
from carepath.cli.app import main
from carepath.drivers.generate import generate, write_jsonl
from carepath.drivers.replay import read_events, replay
from carepath.report import REPORT_KEYS, answer_within, build_report, render

ROOT = Path(__file__).resolve().parents[2]
RETAIL = ROOT / "examples" / "vn-retail-support.yaml"
RETAIL_EVENTS = ROOT / "examples" / "events" / "vn-retail-support.jsonl"
JOURNEY = ROOT / "examples" / "omnichannel-journey.yaml"
JOURNEY_EVENTS = ROOT / "examples" / "events" / "omnichannel-journey.jsonl"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d$")


@pytest.fixture(scope="module")
def retail() -> dict[str, Any]:
    pb = load(RETAIL)
    return build_report(pb, replay(pb, read_events(RETAIL_EVENTS)))


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gen") / "retail.jsonl"
    write_jsonl(
        generate(
            "retail",
            days=10,
            base=40,
            peak=200,
            seed=11,
            start=__import__("datetime").date(2027, 1, 20),
        ),
        path,
    )
    return path


def test_json_shape(retail: dict[str, Any]) -> None:
    for key in REPORT_KEYS:
        assert key in retail
    assert (
        retail["playbook"]["id"] == "vn-retail-support"
        and retail["playbook"]["version"] == "2027.01"
    )
    assert ISO.match(retail["period"]["from"]) and ISO.match(retail["period"]["to"])
    assert retail["period"]["from"].endswith("+07:00")
    assert retail["events"] == 76 and retail["cases"] == 17
    m = retail["metrics"]
    assert set(m["csat"]) == {"value", "samples"} and 0 <= m["csat"]["value"] <= 1
    assert set(m["first_response_time"]) == {"mean", "median", "p90", "p95", "samples"}
    assert "nps" not in m  # no NPS answers in this log: only metrics with a value are listed
    fr = retail["slas"]["first_response"]
    assert fr["attainment"] == pytest.approx(fr["met"] / (fr["met"] + fr["breached"]))
    for g in retail["goals"]:
        assert {
            "id",
            "metric",
            "value",
            "target",
            "attained",
            "samples",
            "window",
            "trend",
            "reason",
        } <= set(g)
        assert re.match(r"^\d{4}-\d\d-\d\d$", g["window"]["from"])
        if g["samples"] < (g["min_samples"] or 30):
            assert g["attained"] is None and g["reason"] == "too_few_samples"
    assert retail["load"]["peak"] == max(retail["load"]["per_day"], key=lambda d: d["contacts"])
    assert sum(d["contacts"] for d in retail["load"]["per_day"]) == 17
    for row in retail["staffing"]:
        assert ISO.match(row["hour"]) and row["hour"][14:19] == "00:00"
        assert row["contacts"] >= 1 and isinstance(row["agents"], int)
    json.dumps(retail)  # serialisable


def test_frt_metric_equals_clock_records(retail: dict[str, Any]) -> None:
    fr = retail["slas"]["first_response"]
    assert retail["metrics"]["first_response_time"]["samples"] == fr["met"] + fr["breached"]


def test_answer_within_is_last_unconditional_first_response_target() -> None:
    assert answer_within(load(RETAIL)) == 7200.0
    assert answer_within(load(JOURNEY)) is None


def test_staffing_rows_use_playbook_parameters(generated: Path) -> None:
    from datetime import timedelta

    from carepath.staffing import agents_needed

    pb = load(RETAIL)
    r = build_report(pb, replay(pb, read_events(generated)))
    p = r["staffing_params"]
    assert (p["target"], p["max_occupancy"], p["shrinkage"], p["answer_within"]) == (
        0.8,
        0.85,
        0.3,
        7200.0,
    )
    assert p["aht"] == pytest.approx(r["metrics"]["aht"]["mean"])
    busiest = max(r["staffing"], key=lambda s: s["contacts"])
    assert busiest["agents"] == agents_needed(
        busiest["contacts"],
        timedelta(hours=1),
        timedelta(seconds=p["aht"]),
        timedelta(seconds=7200),
        0.8,
        0.85,
        0.3,
    )
    assert len(r["staffing"]) == len(r["load"]["per_hour"])
    assert sum(s["contacts"] for s in r["staffing"]) == sum(
        d["contacts"] for d in r["load"]["per_day"]
    )


def test_journey_report_has_order_metrics() -> None:
    pb = load(JOURNEY)
    r = build_report(pb, replay(pb, read_events(JOURNEY_EVENTS)))
    assert {"repeat_purchase_rate", "return_rate", "nps", "csat"} <= set(r["metrics"])
    assert r["load"] == {"per_day": [], "peak": None, "per_hour": []} and r["staffing"] == []
    assert r["custom"]["average_order_value"]["value"] > 0


def test_text_report(retail: dict[str, Any]) -> None:
    text = render(retail, "text")
    assert "First response" in text and "At a glance" in text and "too few samples" in text


def _run(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        "report", str(RETAIL), str(RETAIL_EVENTS), "--format", "json", capsys=capsys
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["events"] == 76


def test_cli_output_file_and_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.html"
    code, stdout, _ = _run(
        "report", str(RETAIL), str(RETAIL_EVENTS), "--format", "html", "-o", str(out), capsys=capsys
    )
    assert code == 0 and stdout == ""
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and "<svg" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "no network fetches"


def test_cli_compare_what_if(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # "had the first-response target been 15 minutes, how many breaches?"
    text = RETAIL.read_text(encoding="utf-8").replace(
        'version: "2027.01"', 'version: "2027.01-strict"'
    )
    text = text.replace(
        "      - {within: 2h}\n    thresholds:", "      - {within: 15m}\n    thresholds:", 1
    )
    other = tmp_path / "strict.yaml"
    other.write_text(text, encoding="utf-8")
    code, out, _ = _run(
        "report",
        str(RETAIL),
        str(RETAIL_EVENTS),
        "--format",
        "json",
        "--compare",
        str(other),
        capsys=capsys,
    )
    assert code == 0
    doc = json.loads(out)
    assert set(doc) == {"base", "compare"}
    assert doc["compare"]["playbook"]["version"] == "2027.01-strict"
    assert doc["base"]["events"] == doc["compare"]["events"]
    b, c = doc["base"]["slas"]["first_response"], doc["compare"]["slas"]["first_response"]
    assert c["breached"] > b["breached"]
    code, out, _ = _run(
        "report", str(RETAIL), str(RETAIL_EVENTS), "--compare", str(other), capsys=capsys
    )
    assert code == 0 and "What-if" in out and "First response: missed" in out


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run("report", str(RETAIL), capsys=capsys)
    assert code == 2 and "EVENTS" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"id": "x", "type": "case.opened", "at": "2027-01-01T09:00:00"}\n', encoding="utf-8"
    )
    code, _, err = _run("report", str(RETAIL), str(bad), capsys=capsys)
    assert code == 1 and "bad.jsonl:1" in err


def test_cli_generate_is_deterministic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for p in (a, b):
        code, _, _ = _run(
            "generate",
            "retail",
            "--days",
            "3",
            "--base",
            "30",
            "--seed",
            "5",
            "-o",
            str(p),
            capsys=capsys,
        )
        assert code == 0
    assert a.read_bytes() == b.read_bytes() and a.stat().st_size > 0


def test_generated_log_has_the_tet_peak() -> None:
    from collections import Counter
    from datetime import date

    from carepath.drivers.generate import day_volume

    assert day_volume(date(2027, 2, 2)) == pytest.approx(5000)  # the Tết peak
    assert day_volume(date(2027, 1, 11)) == 1000  # a usual Monday
    opened = Counter(
        e["at"][:10]
        for e in generate("retail", start=date(2027, 1, 11), days=23, seed=1, base=50, peak=250)
        if e["type"] == "case.opened"
    )
    peak_day, peak = opened.most_common(1)[0]
    assert peak_day == "2027-02-02" and 200 <= peak <= 300
    assert 30 <= opened["2027-01-11"] <= 70


def test_module_entry_point() -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "carepath",
            "report",
            str(RETAIL),
            str(RETAIL_EVENTS),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["cases"] == 17


def test_report_from_a_runtime_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runtime = pytest.importorskip("carepath.runtime")
    pb = load(RETAIL)
    url = f"sqlite:///{tmp_path / 'cases.db'}"
    store = runtime.open_store(url)
    rt = runtime.Runtime([pb], store, clock=None)
    events = read_events(RETAIL_EVENTS)
    for e in sorted(events, key=lambda e: e.at):
        rt.run_due(now=e.at - __import__("datetime").timedelta(microseconds=1))
        rt.submit(e)
    close = getattr(store, "close", None)
    if callable(close):
        close()
    code, out, err = _run("report", str(RETAIL), "--store", url, "--format", "json", capsys=capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["source"] == "store" and doc["cases"] == 17
    # the store keeps each clock's history: the same finished first-response cycles as the replay
    pb_replay = build_report(pb, replay(pb, events))
    assert doc["slas"]["first_response"]["met"] == pb_replay["slas"]["first_response"]["met"]
    assert (
        doc["slas"]["first_response"]["breached"] == pb_replay["slas"]["first_response"]["breached"]
    )
