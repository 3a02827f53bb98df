"""What the JSON Schemas tell an editor beyond the models: duration and threshold patterns that
accept every duration the loader accepts, IANA time-zone names, examples and descriptions; and
the scenario-file schema, checked in and valid for every scenario file of the repository."""

from __future__ import annotations

import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from carepath.durations import DurationError, parse_duration
from carepath.model.schema import (
    DURATION_PATTERN,
    THRESHOLD_PATTERN,
    TIMEZONE_PATTERN,
    playbook_schema,
)
from carepath.testing.schema import scenario_schema, scenario_schema_text

ROOT = Path(__file__).resolve().parents[2]


@given(st.text(alphabet="0123456789hmsdwbyoPTMHSDWY. ", max_size=14))
def test_the_duration_pattern_accepts_whatever_the_loader_accepts(text: str) -> None:
    try:
        parse_duration(text)
    except DurationError:
        return
    assert re.match(DURATION_PATTERN, text), text
    assert re.match(THRESHOLD_PATTERN, "+" + text.strip()), text


@pytest.mark.parametrize("bad", ["2 h", "h", "2x", "", "1.5h", "two hours"])
def test_the_duration_pattern_rejects_what_is_no_duration(bad: str) -> None:
    assert not re.match(DURATION_PATTERN, bad)


def test_every_zone_of_the_database_matches_the_timezone_pattern() -> None:
    from zoneinfo import available_timezones

    zones = available_timezones()
    assert "Asia/Ho_Chi_Minh" in zones
    for z in zones:
        assert re.match(TIMEZONE_PATTERN, z), z
    for bad in ("Asia Ho Chi Minh", "+07:00", "/UTC"):
        assert not re.match(TIMEZONE_PATTERN, bad)


def test_the_schema_carries_patterns_examples_and_descriptions() -> None:
    s = playbook_schema()
    jsonschema.Draft202012Validator.check_schema(s)
    assert s["properties"]["timezone"]["pattern"] == TIMEZONE_PATTERN
    assert "Asia/Ho_Chi_Minh" in s["properties"]["timezone"]["examples"]
    within = s["$defs"]["TargetSpec"]["properties"]["within"]
    assert within["pattern"] == DURATION_PATTERN and "3bd" in within["examples"]
    assert within["description"]
    check = jsonschema.Draft202012Validator(within)
    assert check.is_valid("1h30m") and not check.is_valid("2 hours")
    zone = jsonschema.Draft202012Validator(s["properties"]["timezone"])
    assert zone.is_valid("Asia/Ho_Chi_Minh") and not zone.is_valid("GMT +7")


def test_scenario_schema_is_checked_in_and_fits_every_scenario_file() -> None:
    assert (ROOT / "schemas" / "scenario.schema.json").read_text(
        encoding="utf-8"
    ) == scenario_schema_text()
    v = jsonschema.Draft202012Validator(scenario_schema())
    jsonschema.Draft202012Validator.check_schema(scenario_schema())
    files = [*ROOT.glob("examples/*.test.yaml"), *ROOT.glob("tests/**/*.test.yaml")]
    assert len(files) >= 2
    for f in files:
        doc = yaml.safe_load(f.read_text(encoding="utf-8"))
        assert list(v.iter_errors(doc)) == [], f
    bad = {"scenarios": [{"name": "x", "steps": [{"expect": {"stge": "new"}}]}]}
    assert list(v.iter_errors(bad))
    assert "$schema=../schemas/scenario.schema.json" in (
        ROOT / "examples" / "vn-retail-support.test.yaml"
    ).read_text(encoding="utf-8")
