"""A replay gives the same facts and report on both engine backends (SPEC §4.1).

The replay takes a native step's state, actions and signals from the core directly (no ``Step``
object: ``handle_raw``, ``start_raw`` for a new key's opening, and ``advance_out`` at the end,
whose state is wrapped only for a signal's values), so the reference engine's replay of the same
log is the check that nothing is lost or counted twice on that path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends import runs_natively
from carepath import load
from carepath.drivers.replay import replay_log
from carepath.metrics import Collector
from carepath.report import build_report, render
from strategies import disturbed_logs, retail_lines

ROOT = Path(__file__).resolve().parents[2]
RETAIL = ROOT / "examples" / "vn-retail-support.yaml"
LINES = retail_lines(5)

pytestmark = pytest.mark.skipif(
    runs_natively(RETAIL.read_text(encoding="utf-8")) is not True,
    reason="the native core is not installed, or does not run this playbook",
)


def _replayed(path: Path, engine: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    monkeypatch.setenv("CAREPATH_ENGINE", engine)
    pb = load(RETAIL)
    (rp,) = replay_log([pb], path, Collector)
    facts = (
        list(rp.records),
        rp.breaches,
        rp.opened,
        [(e, msg) for e, msg in rp.rejected],
        rp.n_events,
        rp.duplicates,
        rp.cases,
        dict(rp.actions),
    )
    return facts, render(build_report(pb, rp), "json")


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_replay_gives_the_same_report_on_both_engines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: st.DataObject
) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(data.draw(disturbed_logs(LINES))) + "\n", encoding="utf-8")
    native = _replayed(path, "native", monkeypatch)
    reference = _replayed(path, "python", monkeypatch)
    assert native[0] == reference[0]
    assert native[1] == reference[1]


def test_the_whole_log_gives_the_same_report_on_both_engines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every case of the log still open at its end is advanced by the core's raw step."""
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    native, reference = (_replayed(path, e, monkeypatch) for e in ("native", "python"))
    assert native == reference
    records = native[0][0]
    assert len(records) > 1000 and native[0][1]  # cycles ended, some breached
