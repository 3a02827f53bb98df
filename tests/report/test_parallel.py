"""Reports built side by side (a what-if's reports; a single report's part) equal the reports
built one after the other, in one piece."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from carepath import Event, load
from carepath.drivers.generate import generate
from carepath.drivers.replay import Replay, replay
from carepath.metrics import Collector
from carepath.report import build as build_mod
from carepath.report import build_report, build_reports, render
from carepath.report import parallel as parallel_mod

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def what_if() -> tuple[list[Any], list[Replay]]:
    pbs = [
        load(ROOT / "examples" / "vn-retail-support.yaml"),
        load(ROOT / "examples" / "omnichannel-journey.yaml"),
    ]
    events = [
        Event.from_dict(d)
        for d in generate("retail", days=4, base=30, peak=90, seed=5, start=date(2027, 1, 25))
    ]
    return pbs, [replay(pb, events, sink=Collector(pb), keep_events=False) for pb in pbs]


def texts(reports: list[dict[str, Any]]) -> list[str]:
    return [render(r, "json") for r in reports]


def test_side_by_side_equals_one_after_the_other(
    what_if: tuple[list[Any], list[Replay]], monkeypatch: pytest.MonkeyPatch
) -> None:
    pbs, rps = what_if
    monkeypatch.setattr(parallel_mod, "PARALLEL_MIN_EVENTS", 0)  # fork for this small log too
    one_by_one = [build_report(pb, rp) for pb, rp in zip(pbs, rps, strict=True)]
    assert texts(build_reports(pbs, rps)) == texts(one_by_one)
    assert texts(build_reports(pbs[:1], rps[:1])) == texts(one_by_one[:1])


def test_a_report_whose_child_fails_is_built_here(
    what_if: tuple[list[Any], list[Replay]], monkeypatch: pytest.MonkeyPatch
) -> None:
    pbs, rps = what_if
    me = os.getpid()
    real = parallel_mod.build_report

    def only_here(pb: Any, rp: Replay) -> dict[str, Any]:
        if os.getpid() != me:  # a forked child: it fails, and says so
            raise RuntimeError("the child cannot build")
        return real(pb, rp)

    monkeypatch.setattr(parallel_mod, "PARALLEL_MIN_EVENTS", 0)
    monkeypatch.setattr(parallel_mod, "build_report", only_here)
    expected = [real(pb, rp) for pb, rp in zip(pbs, rps, strict=True)]
    assert texts(build_reports(pbs, rps)) == texts(expected)


def test_an_error_of_a_report_is_raised_here(
    what_if: tuple[list[Any], list[Replay]], monkeypatch: pytest.MonkeyPatch
) -> None:
    pbs, rps = what_if

    def broken(pb: Any, rp: Replay) -> dict[str, Any]:
        if pb is pbs[1]:
            raise ValueError("no report of the second playbook")
        return build_report(pb, rp)

    monkeypatch.setattr(parallel_mod, "PARALLEL_MIN_EVENTS", 0)
    monkeypatch.setattr(parallel_mod, "build_report", broken)
    with pytest.raises(ValueError, match="second playbook"):
        build_reports(pbs, rps)


def test_a_single_report_s_details_are_computed_beside_it(
    what_if: tuple[list[Any], list[Replay]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One large report: its load, staffing and details come from a forked process, and the
    report is the one built in one piece."""
    pbs, rps = what_if
    me = os.getpid()
    real = build_mod._side

    def noted(pb: Any, rp: Replay, m: Any = None) -> dict[str, Any]:
        part = real(pb, rp, m)
        part["details"]["pid"] = os.getpid()  # where the part was computed
        return part

    one_piece = build_report(pbs[0], rps[0])
    monkeypatch.setattr(parallel_mod, "PARALLEL_MIN_EVENTS", 0)
    monkeypatch.setattr(build_mod, "_side", noted)
    (split,) = build_reports(pbs[:1], rps[:1])
    assert split["details"].pop("pid") != me  # computed in another process
    assert texts([split]) == texts([one_piece])


def test_a_part_whose_child_fails_is_computed_here(
    what_if: tuple[list[Any], list[Replay]], monkeypatch: pytest.MonkeyPatch
) -> None:
    pbs, rps = what_if
    me = os.getpid()
    real = build_mod._side

    def only_here(pb: Any, rp: Replay, m: Any = None) -> dict[str, Any]:
        if os.getpid() != me:
            os._exit(3)  # the child dies without a word
        return real(pb, rp, m)

    one_piece = build_report(pbs[0], rps[0])
    monkeypatch.setattr(parallel_mod, "PARALLEL_MIN_EVENTS", 0)
    monkeypatch.setattr(build_mod, "_side", only_here)
    assert texts(build_reports(pbs[:1], rps[:1])) == texts([one_piece])


def test_an_error_of_a_part_is_raised_here(
    what_if: tuple[list[Any], list[Replay]], monkeypatch: pytest.MonkeyPatch
) -> None:
    pbs, rps = what_if

    def broken(pb: Any, rp: Replay, m: Any = None) -> dict[str, Any]:
        raise ValueError("no staffing for this replay")

    monkeypatch.setattr(parallel_mod, "PARALLEL_MIN_EVENTS", 0)
    monkeypatch.setattr(build_mod, "_side", broken)
    with pytest.raises(ValueError, match="no staffing"):
        build_reports(pbs[:1], rps[:1])


def test_a_child_no_longer_wanted_is_stopped() -> None:
    """The rest of a report failing here: the child computing its part is stopped, not waited
    for (it would wait on a pipe nobody reads)."""
    r, w = os.pipe()  # nobody writes: the child's work waits for ever
    try:
        started = parallel_mod.Forked(lambda: os.read(r, 1))
        pid = started._proc.pid
        os.kill(pid, 0)  # running
        started.cancel()
        with pytest.raises(ProcessLookupError):  # killed and reaped
            os.kill(pid, 0)
    finally:
        os.close(r)
        os.close(w)
