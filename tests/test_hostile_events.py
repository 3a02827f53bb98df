"""Hostile and unusual events (issue 15, #1–#6): one bad event is rejected with a reason and the
rest goes on — never exit 3, a traceback, a hang, unbounded memory or lost work — and a rejected
event moves no time. Each test is named after what it protects."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import carepath
from carepath._instants import MAX_INSTANT, MIN_INSTANT
from carepath.cli.app import main
from carepath.drivers import eventfile
from carepath.drivers.eventfile import LineReader, read_events
from carepath.drivers.replay import replay_log
from carepath.drivers.simulate import Simulator
from carepath.events import MAX_EVENT_BYTES, Event, Line, decode_event, event_from_line
from carepath.runtime import Runtime, Store, open_store
from carepath.runtime.clock import ManualClock
from test_store import STORE_FACTORIES

ROOT = Path(__file__).resolve().parent.parent
RETAIL = str(ROOT / "examples" / "vn-retail-support.yaml")
T0 = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)

MINI = """
carepath: 1
id: mini
version: "1"
timezone: UTC
events:
  ticket.opened: {amount: {type: float, default: 0}}
tiers:
  L1: {title: Agent}
start:
  on: ticket.opened
  key: event.case
stages:
  new:
    initial: true
    on:
      ticket.answered: done
    after:
      - {in: 10m, do: [{notify: L1}]}
  done: {final: true}
"""


def mini() -> carepath.Playbook:
    return carepath.loads(MINI)


def line(i: str, type_: str, minutes: float, case: str | None = "T-1", **data: Any) -> str:
    at = (T0 + timedelta(minutes=minutes)).isoformat()
    return json.dumps({"id": i, "type": type_, "at": at, "case": case, "data": data})


@pytest.fixture(params=sorted(STORE_FACTORIES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = STORE_FACTORIES[request.param](tmp_path)
    yield s
    s.close()


# -- #1 a lone surrogate, a NUL, a byte that is not UTF-8 ---------------------------------------
UNSTORABLE = [
    '{"id": "s", "type": "ticket.opened", "at": "2027-02-01T09:01:00Z", "case": "C-\\ud800"}',
    '{"id": "n", "type": "ticket.opened", "at": "2027-02-01T09:01:00Z", "case": "C\\u0000"}',
    '{"id": "d", "type": "ticket.opened", "at": "2027-02-01T09:01:00Z", "case": "C-2",'
    ' "data": {"note": "a\\u0000b"}}',
    '{"id": "k", "type": "ticket.opened", "at": "2027-02-01T09:01:00Z", "case": "C-3",'
    ' "data": {"\\udfff": 1}}',
]


@pytest.mark.parametrize("text", UNSTORABLE)
def test_an_unstorable_string_rejects_one_event_and_keeps_the_batch(
    store: Store, text: str
) -> None:
    rt = Runtime([mini()], store, clock=ManualClock(T0))
    results = rt.submit_many(
        [line("a", "ticket.opened", 0), text, line("b", "ticket.answered", 5)], batch=10
    )
    assert [r.status for r in results] == ["applied", "rejected", "applied"]
    assert results[1].reason == "invalid"
    assert "NUL" in results[1].message or "surrogate" in results[1].message
    st = store.get("mini", "T-1")
    assert st is not None and st.stage == "done"
    (rejected,) = store.rejected()  # recorded, with the bad characters escaped
    assert rejected["reason"] == "invalid"
    json.dumps(rejected["event"], ensure_ascii=False).encode("utf-8")


def test_submit_returns_rejected_for_an_unstorable_mapping(store: Store) -> None:
    rt = Runtime([mini()], store, clock=ManualClock(T0))
    bad: dict[str, Any] = {
        "id": "s",
        "type": "ticket.opened",
        "at": T0.isoformat(),
        "case": "C-\ud800",
    }
    assert rt.submit(bad).status == "rejected"
    assert rt.submit({**bad, "case": "C\x00"}).status == "rejected"
    assert rt.submit(json.dumps(bad, ensure_ascii=False)).status == "rejected"
    assert len(store.rejected()) == 2  # the same event received twice is recorded once


def test_event_refuses_a_lone_surrogate_or_a_nul() -> None:
    with pytest.raises(ValueError, match="surrogate"):
        Event("e", "t", T0, case="C-\ud800")
    with pytest.raises(ValueError, match=r"field `data\.x\[0\]` holds a NUL"):
        Event("e", "t", T0, data={"x": ["a\x00"]})
    assert event_from_line(line("e", "t", 0, case="C-\U0001f600")).case == "C-\U0001f600"


def test_run_keeps_every_good_line_around_a_byte_that_is_not_utf8(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "e.jsonl"
    events.write_bytes(
        (line("a", "ticket.opened", 0) + "\n").encode()
        + b'{"id": "x\xff", "type": "ticket.opened"}\n'
        + (line("b", "ticket.answered", 5) + "\n").encode()
    )
    pb = tmp_path / "mini.yaml"
    pb.write_text(MINI, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'c.db'}"
    assert main(["run", str(pb), "--store", url, "--events", str(events)]) == 1
    err = capsys.readouterr().err
    assert "line 2: not UTF-8" in err and "2 applied" in err
    # a rerun does not crash on the same line: the good ones are duplicates, the bad one rejected
    assert main(["run", str(pb), "--store", url, "--events", str(events)]) == 1
    assert "2 duplicate" in capsys.readouterr().err
    assert main(["cases", "--store", url, "rejected"]) == 0


# -- #2 reading with the bound applied while reading --------------------------------------------
class _Recording(io.BytesIO):
    """A stream that remembers the largest read asked of it."""

    largest = 0

    def readline(self, size: int | None = -1) -> bytes:
        assert size is not None and size > 0, "an unbounded readline"
        self.largest = max(self.largest, size)
        return super().readline(size)


def test_an_over_long_line_is_never_held_whole() -> None:
    long = b'{"id": "big", "data": "' + b"x" * (3 * MAX_EVENT_BYTES) + b'"}'
    stream = _Recording(b'{"a": 1}\n' + long + b"\n" + b'{"b": 2}\n')
    lines = list(LineReader(stream))
    assert stream.largest <= MAX_EVENT_BYTES + 2
    assert [(n.number, n.problem is None) for n in lines] == [(1, True), (2, False), (3, True)]
    assert lines[1].problem == f"longer than {MAX_EVENT_BYTES:,} bytes"
    assert len(lines[1].text) <= eventfile.PREVIEW_BYTES + 1  # a preview, not the line


def test_a_line_without_end_stops_the_reading_with_a_located_error() -> None:
    class Endless(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            b[:] = b"\0" * len(b)
            return len(b)

    (only,) = list(LineReader(io.BufferedReader(Endless()), max_skip=4 << 20))
    assert only.number == 1 and only.problem is not None and "no end" in only.problem


def test_dev_zero_ends_every_command_without_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    monkeypatch.setattr(eventfile, "MAX_SKIP_BYTES", 8 << 20)
    assert main(["simulate", RETAIL, "/dev/zero"]) == 1
    assert main(["report", RETAIL, "/dev/zero", "--format", "json"]) == 1
    url = f"sqlite:///{tmp_path / 'z.db'}"
    assert main(["run", RETAIL, "--store", url, "--events", "/dev/zero"]) == 1
    assert "/dev/zero:1" in capsys.readouterr().err
    store = open_store(url)
    try:
        (rejected,) = store.rejected()
        assert len(rejected["event"]["raw"]) <= eventfile.PREVIEW_BYTES * 4 + 1
    finally:
        store.close()


def test_run_stores_an_over_long_line_truncated_and_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "e.jsonl"
    big = json.dumps({"id": "big", "type": "ticket.opened", "data": {"x": "y" * 2_000_000}})
    events.write_text(
        "\n".join([line("a", "ticket.opened", 0), big, line("b", "ticket.answered", 5)]) + "\n",
        encoding="utf-8",
    )
    pb = tmp_path / "mini.yaml"
    pb.write_text(MINI, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'c.db'}"
    assert main(["run", str(pb), "--store", url, "--events", str(events)]) == 1
    assert "2 applied" in capsys.readouterr().err
    store = open_store(url)
    try:
        (rejected,) = store.rejected()
        assert rejected["message"].startswith("line 2: longer than")
        assert len(rejected["event"]["raw"]) <= eventfile.PREVIEW_BYTES + 1
    finally:
        store.close()


def test_read_events_reports_bad_lines_with_their_numbers() -> None:
    good, bad = read_events(
        io.BytesIO(b"\xef\xbb\xbf" + line("a", "t", 0).encode() + b"\n\n# c\n{nope\n\xff\n")
    )
    assert [g.line for g in good] == [1]
    assert [(b.line, b.message.split(":")[0]) for b in bad] == [(4, "not JSON"), (5, "not UTF-8")]


# -- #3 a rejected event moves no time -----------------------------------------------------------
def test_a_rejected_event_does_not_move_the_simulated_clock_of_run(store: Store) -> None:
    clock = ManualClock(T0)
    rt = Runtime([mini()], store, clock=clock)
    far = line("far", "ticket.answered", 300 * 24 * 60, case="NOBODY")  # ten months ahead
    results = rt.submit_many(
        [line("a", "ticket.opened", 0), far, line("b", "ticket.answered", 5)], timeline=True
    )
    assert [r.status for r in results] == ["applied", "rejected", "applied"]
    assert results[1].reason == "unknown_case"
    st = store.get("mini", "T-1")
    assert st is not None and st.stage == "done"
    assert [i["type"] for i in store.outbox()] == []  # the 10-minute notify never came due
    assert clock() == T0 + timedelta(minutes=5)


def test_a_rejected_event_does_not_move_the_simulator_clock() -> None:
    sim = Simulator(mini())
    sim.feed(event_from_line(line("a", "ticket.opened", 0)))
    steps = sim.feed(event_from_line(line("far", "ticket.answered", 500_000, case="NOBODY")))
    assert [s.kind for s in steps] == ["ignored"]
    assert sim.cases["T-1"].stage == "new"
    steps = sim.feed(event_from_line(line("b", "ticket.answered", 5)))
    assert [s.kind for s in steps] == ["event"] and sim.cases["T-1"].stage == "done"


def test_a_rejected_event_does_not_move_the_end_of_a_replay(tmp_path: Path) -> None:
    log = tmp_path / "e.jsonl"
    log.write_text(
        "\n".join(
            [line("a", "ticket.opened", 0), line("far", "ticket.answered", 500_000, case="NOBODY")]
        )
        + "\n",
        encoding="utf-8",
    )
    (rp,) = replay_log([mini()], log)
    assert len(rp.rejected) == 1
    assert rp.last_s == (T0).timestamp()
    assert rp.actions["notify"] == 0  # the case was not advanced to the rejected event's instant


# -- #4 the supported instants --------------------------------------------------------------------
@pytest.mark.parametrize("at", ["9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+00:00"])
def test_an_instant_outside_the_supported_range_is_rejected_everywhere(
    at: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = json.dumps({"id": "x", "type": "ticket.opened", "at": at, "case": "T-9"})
    with pytest.raises(ValueError, match="outside the supported instants"):
        event_from_line(text)
    with pytest.raises(ValueError, match="outside the supported instants"):
        Event("x", "t", datetime.fromisoformat(at))
    events = tmp_path / "e.jsonl"
    events.write_text(line("a", "ticket.opened", 0) + "\n" + text + "\n", encoding="utf-8")
    pb = tmp_path / "mini.yaml"
    pb.write_text(MINI, encoding="utf-8")
    assert main(["simulate", str(pb), str(events)]) == 1
    assert main(["report", str(pb), str(events), "--format", "json"]) == 1
    url = f"sqlite:///{tmp_path / 'c.db'}"
    assert main(["run", str(pb), "--store", url, "--events", str(events)]) == 1
    assert (
        main(["run", str(pb), "--store", url, "--events", str(events), "--until", "2027-03-01"])
        == 1
    )
    assert main(["cases", "--store", url, "rejected"]) == 0
    assert main(["cases", "--store", url, "list"]) == 0
    assert "outside the supported instants" in capsys.readouterr().err


def test_the_edges_of_the_supported_range() -> None:
    assert Event("x", "t", MIN_INSTANT)._ts == MIN_INSTANT.timestamp()
    with pytest.raises(ValueError):
        Event("x", "t", MAX_INSTANT)
    Event("x", "t", MAX_INSTANT - timedelta(seconds=1))


# -- #5 report follows the rules of run -----------------------------------------------------------
def test_report_counts_a_duplicate_id_once_and_skips_malformed_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def survey(i: str, minutes: int, score: int) -> str:
        return json.dumps(
            {
                "id": i,
                "type": "survey.answered",
                "at": (T0 + timedelta(minutes=minutes)).isoformat(),
                "case": "T-1",
                "data": {"survey": "csat", "score": score},
            }
        )

    opened = json.dumps(
        {
            "id": "o",
            "type": "case.opened",
            "at": T0.isoformat(),
            "case": "T-1",
            "data": {"channel": "chat"},
        }
    )
    log = tmp_path / "e.jsonl"
    log.write_text(
        "\n".join([opened, survey("s1", 5, 5), "{not json", survey("s2", 6, 1), survey("s2", 7, 1)])
        + "\n",
        encoding="utf-8",
    )
    assert main(["report", RETAIL, str(log), "--format", "json"]) == 1
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["metrics"]["csat"] == {"value": 0.5, "samples": 2}
    assert doc["events"] == 3  # the malformed line and the duplicate are not events
    assert "1 line(s) skipped" in captured.err and f"{log}:3" in captured.err


# -- #6 non-finite numbers ------------------------------------------------------------------------
@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", "-1e999"])
def test_a_number_that_is_not_finite_is_rejected(number: str, store: Store) -> None:
    text = (
        '{"id": "x", "type": "ticket.opened", "at": "2027-02-01T09:00:00Z", "case": "T-1", '
        f'"data": {{"amount": {number}}}}}'
    )
    with pytest.raises(ValueError, match="finite"):
        event_from_line(text)
    with pytest.raises(ValueError, match="finite"):
        decode_event(text)
    r = Runtime([mini()], store, clock=ManualClock(T0)).submit(text)
    assert r.status == "rejected" and "finite" in r.message


def test_event_refuses_a_float_that_is_not_finite() -> None:
    with pytest.raises(ValueError, match=r"field `data\.amount` is nan"):
        Event("x", "t", T0, data={"amount": float("nan")})
    with pytest.raises(ValueError, match="finite"):
        Event("x", "t", T0, data={"deep": {"list": [1.0, float("inf")]}})


def test_a_line_object_carries_its_number_into_the_rejection(store: Store) -> None:
    rt = Runtime([mini()], store, clock=ManualClock(T0))
    r = rt.submit(Line(7, "{nope"))
    assert r.status == "rejected" and r.message.startswith("line 7: not JSON")
    r = rt.submit(Line(8, "xyz…", "longer than 262,144 bytes"))
    assert r.message == "line 8: longer than 262,144 bytes"
    assert store.rejected()[-1]["event"] == {"raw": "xyz…"}


# -- #7 typed event fields ------------------------------------------------------------------------
TYPED = """
carepath: 1
id: typed
version: "1"
timezone: UTC
events:
  order.placed:
    d: date
    when: datetime
    amount: decimal
fields:
  big: {type: bool, default: false}
  old: {type: bool, default: false}
  recent: {type: bool, default: false}
  earlier: {type: bool, default: false}
  d: date
  when: datetime
  amount: decimal
start:
  on: order.placed
  key: event.case
  set:
    big: =event.amount > 10
    old: =days_since(event.d) > 365
    recent: =event.d > date("2019-01-01")
    earlier: =event.when < event.at
    d: =event.d
    when: =event.when
    amount: =event.amount
stages:
  new: {initial: true, final: true}
"""


def _order(**data: Any) -> Event:
    return Event("o", "order.placed", T0, "T-1", data)


def test_typed_event_fields_compare_as_their_types() -> None:
    engine = carepath.Engine(carepath.loads(TYPED))
    step = engine.start(_order(d="2020-01-01", when="2026-01-01T00:00:00Z", amount="12.50"))
    data = step.state.data
    assert (data["big"], data["old"], data["recent"], data["earlier"]) == (True, True, True, True)
    # kept in their JSON form, so the state round-trips
    assert (data["d"], data["when"], data["amount"]) == (
        "2020-01-01",
        "2026-01-01T00:00:00+00:00",
        12.5,
    )
    again = type(step.state).from_json(step.state.to_json())
    assert again.to_json() == step.state.to_json()


@pytest.mark.parametrize(
    ("field", "value"), [("d", "not a date"), ("when", "2026-01-01T00:00:00"), ("amount", "12,50")]
)
def test_a_typed_value_that_cannot_be_coerced_is_rejected_naming_the_field(
    field: str, value: str, store: Store
) -> None:
    good = {"d": "2020-01-01", "when": "2026-01-01T00:00:00Z", "amount": 3}
    rt = Runtime([carepath.loads(TYPED)], store, clock=ManualClock(T0))
    r = rt.submit(_order(**{**good, field: value}))
    assert r.status == "rejected" and r.reason == "invalid"
    assert f"field `{field}`" in r.message
    assert rt.submit(_order(**good)).status == "applied"


def test_an_event_whose_result_cannot_be_written_is_rejected_alone(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from carepath._native.backend import NativeState
    from carepath.state import CaseState

    # a native engine's state writes its own text (NativeState.to_json): patched the same way
    for cls in (CaseState, NativeState):
        real = cls.to_json

        def to_json(self: CaseState, real: Any = real) -> str:
            if self.case == "T-2":
                raise ValueError("unwritable")
            return real(self)  # type: ignore[no-any-return]

        monkeypatch.setattr(cls, "to_json", to_json)
    rt = Runtime([mini()], store, clock=ManualClock(T0))
    results = rt.submit_many(
        [
            line("a", "ticket.opened", 0),
            line("b", "ticket.opened", 1, case="T-2"),
            line("c", "ticket.answered", 2),
        ]
    )
    assert [r.status for r in results] == ["applied", "rejected", "applied"]
    assert "cannot store" in results[1].message
    st = store.get("mini", "T-1")
    assert st is not None and st.stage == "done" and store.get("mini", "T-2") is None
    assert [r["reason"] for r in store.rejected()] == ["invalid"]


def test_event_refuses_data_that_json_cannot_carry() -> None:
    with pytest.raises(ValueError, match=r"field `data\.tags` holds a set"):
        Event("x", "t", T0, data={"tags": {"a"}})
    assert Event("x", "t", T0, data={"n": Decimal("1.50")}).to_dict()["data"] == {"n": "1.50"}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"start": date(9999, 12, 30)},
        {"start": date(1, 1, 1)},
        {"base": -5},
        {"days": 10**12},
        {"peak": float("nan")},
    ],
)
def test_generate_refuses_at_once_what_would_leave_the_supported_instants(
    kwargs: dict[str, Any],
) -> None:
    from carepath.drivers.generate import generate

    with pytest.raises(ValueError):
        generate("retail", **kwargs)  # raised by the call, before any event is asked for


def test_event_raises_value_error_for_a_missing_type_or_at() -> None:
    # SPEC §7: `Event(...)` itself raises ValueError for a missing type or an `at` that is not an
    # aware datetime: left out altogether, too (not a TypeError about a missing argument)
    with pytest.raises(ValueError, match="`type`"):
        Event(id="e", at=T0, case="C-1")
    with pytest.raises(ValueError, match="`type`"):
        Event(id="e", type=None, at=T0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`at`"):
        Event(id="e", type="t", case="C-1")
    with pytest.raises(ValueError, match="`at`"):
        Event(id="e", type="t", at=None)  # type: ignore[arg-type]
    assert Event("e", "t", T0).type == "t"
