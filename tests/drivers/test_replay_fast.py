"""The report's fast paths equal the general ones: the line decoder, streaming and what-if replays."""

from __future__ import annotations

import json
import random
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from carepath import load
from carepath.drivers.generate import generate, write_jsonl
from carepath.drivers.replay import event_from_line, read_events, replay, replay_log
from carepath.events import MAX_EVENT_BYTES, Event, decode_event, event_from_bytes
from carepath.metrics import Collector, MetricError, Metrics
from carepath.report import build_report, render


def general(text: str) -> Event | str:
    try:
        return Event.from_dict(decode_event(text))
    except (ValueError, TypeError) as exc:
        return f"{type(exc).__name__}: {exc}"


def fast(text: str) -> Event | str:
    try:
        return event_from_line(text)
    except (ValueError, TypeError) as exc:
        return f"{type(exc).__name__}: {exc}"


def identical(a: Event, b: Event) -> None:
    for slot in Event.__slots__:  # every slot, _ts included (dataclass equality skips it)
        assert getattr(a, slot) == getattr(b, slot), slot
        assert type(getattr(a, slot)) is type(getattr(b, slot)), slot
    assert a.at.utcoffset() == b.at.utcoffset()
    assert dict(a.data) == dict(b.data)
    assert json.dumps(dict(a.data), sort_keys=True) == json.dumps(dict(b.data), sort_keys=True)


def same(text: str) -> None:
    a, b = fast(text), general(text)
    # the typed decoder of a line's bytes gives the same event, or leaves the line to the text path
    raw = text.encode("utf-8", "surrogatepass")
    for line in (raw, raw + b"\n", b"  " + raw + b" \r\n"):
        c = event_from_bytes(line)
        if c is not None:
            assert isinstance(b, Event)
            identical(c, b)
    if isinstance(b, str):
        assert a == b
        return
    assert isinstance(a, Event)
    identical(a, b)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.integers(),  # beyond 64 bits too: kept exact, never a float
    st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**30, -(10**30)]),
    st.floats(allow_nan=False),
    st.text(max_size=8),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=12,
)
instants = st.one_of(
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat()),  # naive
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.sampled_from(
        [
            "2027-02-08T09:00:00+07:00",
            "2027-02-08T09:00:00Z",
            "2027-02-08",
            "yesterday",
            "",
            "2027-02-08T09:00:00.123456-03:30",
            "2027-13-01T00:00:00+00:00",
            "2027-02-08T09:00:00ZZ",
        ]
    ),
    scalars,
)
MISSING = object()


@st.composite
def event_objects(draw: Any) -> dict[str, Any]:
    fields = {
        "id": st.one_of(st.text(max_size=6), st.integers(), st.booleans(), st.none(), json_values),
        "type": st.one_of(
            st.sampled_from(["case.opened", "agent.replied", ""]), st.text(max_size=6), json_values
        ),
        "at": instants,
        "case": st.one_of(
            st.none(), st.text(max_size=6), st.integers(), st.booleans(), json_values
        ),
        "data": st.one_of(
            st.dictionaries(st.text(max_size=6), json_values, max_size=4), json_values
        ),
    }
    out: dict[str, Any] = {}
    for name, strat in fields.items():
        if draw(st.integers(0, 9)) == 0:  # sometimes missing
            continue
        if draw(st.integers(0, 2)) == 0:  # often a valid value
            out[name] = {
                "id": "e1",
                "type": "case.opened",
                "at": "2027-02-08T09:00:00+07:00",
                "case": "T-1",
                "data": {"channel": "chat"},
            }[name]
        else:
            out[name] = draw(strat)
    if draw(st.booleans()):
        out["extra"] = draw(json_values)
    return out


@given(event_objects(), st.sampled_from(["compact", "spaced", "ascii"]))
@example(
    {
        "id": "e1",
        "type": "case.opened",
        "at": "2027-02-08T09:00:00+07:00",
        "case": "T-1",
        "data": {},
    },
    "compact",
)
@example({"id": "e1", "type": "x", "at": "2027-02-08T09:00:00Z", "data": None}, "compact")
@example({"id": 7, "type": "x", "at": "2027-02-08T09:00:00Z", "case": 3, "data": []}, "compact")
@example({"id": "e1", "type": "x", "at": "2027-02-08T09:00:00", "case": "T"}, "compact")
@example(
    {"id": "e1", "type": "x", "at": "2027-02-08T09:00:00Z", "data": {"n": 2**70, "m": -(2**64)}},
    "compact",
)
def test_fast_decoder_equals_general(obj: dict[str, Any], style: str) -> None:
    if style == "compact":
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    elif style == "spaced":
        text = json.dumps(obj, indent=None, ensure_ascii=False)
    else:
        text = json.dumps(obj)
    same(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "[]",
        "null",
        "42",
        '"x"',
        "not json",
        '{"id": "a"} trailing',
        '{"id": "a"}{"id": "b"}',
        "\ufeff" + '{"id":"e","type":"x","at":"2027-02-08T09:00:00Z"}',
        '{"id":"e","type":"x","at":"2027-02-08T09:00:00Z","data":'
        + "[" * 31
        + "]" * 31
        + "}",  # data depth 31
        '{"id":"e","type":"x","at":"2027-02-08T09:00:00Z","data":'
        + "[" * 32
        + "]" * 32
        + "}",  # 32: too deep
        '{"id":"e","type":"x","at":"2027-02-08T09:00:00Z","x":'
        + "[" * 31
        + "]" * 31
        + "}",  # outer depth 32
        '{"id":"e","type":"x","at":"2027-02-08T09:00:00Z","x":' + "[" * 32 + "]" * 32 + "}",  # 33
        '{"id":"e","type":"x","at":"2027-02-08T09:00:00Z","data":{"s":"'
        + "[" * 40
        + '"}}',  # brackets in a string
        '{"id":"e","type":"x","at":"2027-02-08T09:00:00Z","data":'
        + "[" * 5000
        + "]" * 5000
        + "}",  # recursion
        '{"id":"e","type":"x","at":"2027-02-08T09:00:00Z","data":{"v":NaN}}',
        '{"id":"e","type":"x","at":"2027-02-08T09:00:00Z","data":{"v":1e400}}',
        '{"id":"e","type":"x","at":"2027-02-08T09:00:00Z","data":{"v":-Infinity}}',
        '{"id":"e","type":"x","at":"2027-02-08T09:00:00Z","data":{"v":123456789012345678901234567890}}',
        '{"id":"e","type":"x","at":"2027-02-08T09:00:00Z","data":{"v":"\\u0000"}}',
        '{"id":"e","type":"x","at":"2027-02-08T09:00:00Z","data":{"v":"\\ud800"}}',
        '{"id":"e","type":"x","at":"2027-02-08T09:00:00Z","data":{"v":"\\ud83d\\ude00"}}',
        '{"id":"e","type":"x","at":"2027-02-08T09:00:00Z","data":{"v":"\x00"}}',
        '{"id":"e","type":"x","at":"2027-02-08T09:00:00Z","data":{"v":"\ud800"}}',
        '{"id":"e","type":"x","at":"2027-02-08T09:00:00Z","case":"T","case":null}',
        '\u00a0{"id":"e","type":"x","at":"2027-02-08T09:00:00Z"}\u00a0',
        '{"id":"e","type":"x","at":"2027-02-08T09:00:00Z","type":"y"}',  # duplicate key: the last wins
        '{"id":"e","type":"x","at":"2027-02-08T09:00:00Z","data":{"n":"'
        + "x" * MAX_EVENT_BYTES
        + '"}}',
    ],
)
def test_fast_decoder_edge_cases(text: str) -> None:
    same(text)


# -- streaming and what-if replays ----------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[2]
RETAIL = ROOT / "examples" / "vn-retail-support.yaml"
RETAIL_EVENTS = ROOT / "examples" / "events" / "vn-retail-support.jsonl"
JOURNEY = ROOT / "examples" / "omnichannel-journey.yaml"
JOURNEY_EVENTS = ROOT / "examples" / "events" / "omnichannel-journey.jsonl"
GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def as_json(doc: dict[str, Any]) -> str:
    return render(doc, "json")


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("logs")
    gen = d / "generated.jsonl"
    write_jsonl(
        generate("retail", days=12, base=40, peak=200, seed=5, start=date(2027, 1, 20)), gen
    )
    lines = gen.read_text(encoding="utf-8").splitlines(keepends=True)
    random.Random(1).shuffle(lines)
    shuffled = d / "shuffled.jsonl"
    shuffled.write_text("".join(lines), encoding="utf-8")
    return {
        "retail": RETAIL_EVENTS,
        "journey": JOURNEY_EVENTS,
        "generated": gen,
        "shuffled": shuffled,
    }


@pytest.mark.parametrize("name", ["retail", "journey", "generated", "shuffled"])
@pytest.mark.parametrize("playbook", [RETAIL, JOURNEY])
def test_streamed_report_equals_the_kept_replay(
    logs: dict[str, Path], name: str, playbook: Path
) -> None:
    pb = load(playbook)
    kept = build_report(
        pb, replay(pb, read_events(logs[name]))
    )  # per-event lists, collected afterwards
    streamed = replay_log([pb], logs[name], Collector)[0]
    assert not streamed.kept and streamed.events == [] and streamed.n_events == kept["events"]
    assert as_json(build_report(pb, streamed)) == as_json(kept)
    with logs[name].open(
        encoding="utf-8"
    ) as fh:  # a stream (standard input) is read whole, then sorted
        assert as_json(build_report(pb, replay_log([pb], fh, Collector)[0])) == as_json(kept)


@pytest.mark.parametrize("name", ["generated", "shuffled"])
def test_what_if_decodes_once_and_equals_two_replays(logs: dict[str, Path], name: str) -> None:
    a, b = load(RETAIL), load(JOURNEY)
    both = replay_log([a, b], logs[name], Collector)
    for pb, rp in zip((a, b), both, strict=True):
        alone = build_report(
            pb, replay(pb, read_events(logs[name]), sink=Collector(pb), keep_events=False)
        )
        assert as_json(build_report(pb, rp)) == as_json(alone)
        assert rp.rejected == replay(pb, read_events(logs[name])).rejected


def test_an_unsorted_file_is_read_again_with_fresh_collectors(logs: dict[str, Path]) -> None:
    made: list[Collector] = []

    def sink(pb: Any) -> Collector:
        made.append(Collector(pb))
        return made[-1]

    pb = load(RETAIL)
    rp = replay_log([pb], logs["shuffled"], sink)[0]
    assert (
        len(made) == 2 and rp.facts is made[1]
    )  # the streaming attempt stopped; the second one counts


def test_metrics_need_events_or_a_collector() -> None:
    pb = load(RETAIL)
    with pytest.raises(MetricError, match="kept no events"):
        Metrics(replay(pb, read_events(RETAIL_EVENTS), keep_events=False))


@pytest.mark.parametrize(
    ("golden", "args"),
    [
        ("report-vn-retail-support.json", [str(RETAIL), str(RETAIL_EVENTS)]),
        ("report-omnichannel-journey.json", [str(JOURNEY), str(JOURNEY_EVENTS)]),
        ("report-compare.json", [str(RETAIL), str(RETAIL_EVENTS), "--compare", str(JOURNEY)]),
    ],
)
def test_report_json_is_unchanged_on_the_examples(
    golden: str, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The JSON the report printed before its fast paths (files in tests/golden/, made by the
    previous implementation; regenerate them only for an intended change of the report)."""
    from carepath.cli.app import main

    assert main(["report", *args, "--format", "json"]) == 0
    assert capsys.readouterr().out == (GOLDEN / golden).read_text(encoding="utf-8")


def _with_case_field_metrics(tmp_path: Path) -> Path:
    """The retail playbook with two custom metrics that read case fields (dotted ones too) of
    the case a survey reaches, which has often ended by then."""
    text = RETAIL.read_text(encoding="utf-8")
    extra = (
        "  custom:\n"
        "    vip_low_csat:\n"
        "      title: Low CSAT answers of VIP customers\n"
        "      type: count\n"
        "      event: survey.answered\n"
        '      when: customer.tier == "vip" and event.score <= 2\n'
        "    surveyed_age:\n"
        "      title: Mean age of surveyed customers\n"
        "      type: mean\n"
        "      event: survey.answered\n"
        "      value: =customer.age\n"
        '      when: priority != "urgent"\n'
    )
    assert "  custom:\n" in text
    path = tmp_path / "retail-case-fields.yaml"
    path.write_text(text.replace("  custom:\n", extra, 1), encoding="utf-8")
    return path


def _late_surveys(path: Path) -> Path:
    """Tickets solved, closed five days later (``reentry: never``: ended for good), and answered
    surveys that reach the ended cases afterwards."""
    rows = []
    for i in range(60):
        case, day = f"T-{i:04d}", 1 + i % 20
        opened = {
            "channel": ["chat", "email", "zalo"][i % 3],
            "topic": "order",
            "customer_tier": ["vip", "gold", "standard"][i % 3],
            "customer_age": 20 + i,
            "priority": ["normal", "urgent"][i % 2],
        }
        rows += [
            (f"2027-03-{day:02d}T09:00:00+07:00", "case.opened", case, opened),
            (f"2027-03-{day:02d}T10:00:00+07:00", "case.solved", case, {}),
            # the first survey's step closes the ticket (its timer was due); the later ones
            # reach the ended case
            *(
                (
                    f"2027-{month:02d}-{day:02d}T10:00:00+07:00",
                    "survey.answered",
                    case,
                    {"survey": "csat", "score": 1 + (i + month) % 5},
                )
                for month in (4, 5, 6)
            ),
        ]
    rows.sort(key=lambda r: r[0])
    path.write_text(
        "".join(
            json.dumps({"id": f"e{n}", "type": t, "at": at, "case": c, "data": d}) + "\n"
            for n, (at, t, c, d) in enumerate(rows)
        ),
        encoding="utf-8",
    )
    return path


def test_an_ended_case_keeps_only_what_the_metrics_read(tmp_path: Path) -> None:
    from carepath.drivers.replay import EndedCase

    pb = load(_with_case_field_metrics(tmp_path))
    col = Collector(pb)
    assert {"channel", "customer", "customer.tier", "customer.age", "priority"} <= col.case_fields
    assert "topic" not in col.case_fields and "event.score" not in col.case_fields
    log = _late_surveys(tmp_path / "late.jsonl")
    streamed = replay_log([pb], log, Collector)[0]
    kept = replay(pb, read_events(log))
    # the surveys reached ended cases, which the streaming replay keeps narrowed
    assert sum(isinstance(s, EndedCase) for s in streamed.states.values()) == 60
    # the metrics read the narrowed values exactly as they read the whole state
    assert as_json(build_report(pb, streamed)) == as_json(build_report(pb, kept))
    doc = build_report(pb, streamed)
    custom = json.dumps(doc["metrics"]["custom"] if "custom" in doc.get("metrics", {}) else doc)
    assert "vip_low_csat" in custom and "surveyed_age" in custom
    ended = [s for s in streamed.states.values() if isinstance(s, EndedCase)]
    for s in ended:
        assert set(s.data) <= col.case_fields
        assert dict(s.data) == {
            k: v for k, v in kept.states[s.case].data.items() if k in col.case_fields
        }
        assert (s.stage, s.tier, s.segment) == (
            kept.states[s.case].stage,
            kept.states[s.case].tier,
            kept.states[s.case].segment,
        )
    # equal values are one object for every ended case (memory)
    by_value: dict[Any, Any] = {}
    for s in ended:
        assert by_value.setdefault(tuple(sorted(s.data.items())), s.data) is s.data


def test_an_ended_case_keeps_all_its_data_for_a_sink_that_does_not_say(
    logs: dict[str, Path],
) -> None:
    class Counting:
        types: frozenset[str] = frozenset({"survey.answered"})

        def __init__(self, pb: Any) -> None:
            self.seen = 0

        def __call__(self, event: Event, case: str | None, state: Any) -> None:
            self.seen += 1

    from carepath.drivers.replay import EndedCase

    pb = load(RETAIL)
    streamed = replay_log([pb], logs["generated"], Counting)[0]
    kept = replay(pb, read_events(logs["generated"]))
    ended = [s for s in streamed.states.values() if isinstance(s, EndedCase)]
    assert ended and all(dict(s.data) == dict(kept.states[s.case].data) for s in ended)
