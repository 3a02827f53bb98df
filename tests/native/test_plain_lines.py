"""The core's reading of a plain line (``carepath_core._share_lines`` with ``plain``): the byte
checks of :func:`~carepath.events.event_from_bytes` and the instant of ``at``, so that
:func:`~carepath.events.event_from_plain` gives the event :func:`event_from_bytes` gives, and
every line it does not find plain is left to the decoder."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carepath._instants import MAX_INSTANT, MIN_INSTANT
from carepath.events import (
    MAX_EVENT_BYTES,
    MAX_EVENT_DEPTH,
    Event,
    event_from_bytes,
    event_from_plain,
)

core = pytest.importorskip("carepath_core")
BOUNDS = (MAX_EVENT_BYTES, MAX_EVENT_DEPTH)


def read(line: bytes) -> float | None:
    """The instant the core gives a line as one worker of one (None: not plain)."""
    kept, count, _ = core._share_lines(line + b"\n", 0, 1, 1 << 20, None, None, BOUNDS)
    assert count == 1 and len(kept) == 1
    return kept[0][3]  # type: ignore[no-any-return]


def same(a: Event | None, b: Event | None) -> bool:
    if a is None or b is None:
        return a is b
    fields = ("id", "type", "at", "case", "data", "_ts")
    return (
        all(getattr(a, f) == getattr(b, f) for f in fields) and a.at.utcoffset() == b.at.utcoffset()
    )


@st.composite
def instants(draw: st.DrawFn, hi: datetime = MAX_INSTANT) -> str:
    """``at`` texts of the strict form the core reads: any instant of the supported range (and a
    little beyond; ``hi``: up to then), any offset below a day in minutes or ``Z``, 0 to 6
    digits of fraction."""
    lo, hi = MIN_INSTANT - timedelta(days=2), hi + timedelta(days=2)
    when = draw(st.datetimes(lo.replace(tzinfo=None), hi.replace(tzinfo=None)))
    minutes = draw(st.integers(-(24 * 60 - 1), 24 * 60 - 1))
    digits = draw(st.integers(0, 6))
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + f"{when.microsecond:06d}"[:digits]
    if draw(st.booleans()) and minutes == 0:
        return text + "Z"
    sign = "-" if minutes < 0 or (minutes == 0 and draw(st.booleans())) else "+"
    return text + f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@settings(max_examples=400)
@given(at=instants(), case=st.sampled_from([None, "T-1", "Đặng"]), score=st.floats(0, 10))
def test_a_plain_line_gives_the_event_the_decoder_gives(
    at: str, case: str | None, score: float
) -> None:
    """The core's instant is ``round(fromisoformat(at).timestamp() * 1e6) / 1e6``, and the
    event of a plain line is the decoder's, in and out of the supported range."""
    line = json.dumps(
        {"id": "e-1", "type": "survey.answered", "at": at, "case": case, "data": {"score": score}},
        ensure_ascii=False,
    ).encode()
    seconds = read(line)
    when = datetime.fromisoformat(at.replace("Z", "+00:00"))
    micros = (when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    if abs(micros) >= 2**53:  # beyond what a double holds exactly: the decoder computes it
        assert seconds is None
        return
    assert seconds == round(when.timestamp() * 1_000_000) / 1_000_000
    assert same(event_from_plain(line, seconds), event_from_bytes(line))


@pytest.mark.parametrize(
    "line",
    [
        b'{"id":"a","type":"t","at":"2027-01-01T00:00:00+07:00","data":{"n":"\\u00e9"}}',
        b'{"id":"a","type":"t","at":"2027-01-01T00:00:00+07:00","data":{"at":"x"}}',
        b'{"id":"a","type":"t","at":"2027-01-01T00:00:00"}',
        b'{"id":"a","type":"t","at":"2027-01-01T00:00:00+0700"}',
        b'{"id":"a","type":"t","at":"2027-01-01 00:00:00+07:00"}',
        b'{"id":"a","type":"t","at":"2027-01-01T00:00:00.1234567+07:00"}',
        b'{"id":"a","type":"t","at":"2027-02-29T00:00:00+07:00"}',
        b'{"id":"a","type":"t","at":"2027-01-01T24:00:00+07:00"}',
        b'{"id":"a","type":"t","at":1798736400}',
        b'{"id":"a","type":"t","at":"2027-01-01T00:00:00+07:00","data":'
        + b"[" * 40
        + b"]" * 40
        + b"}",
        b'{"id":"a","type":"t","at":"2027-01-01T00:00:00+07:00","data":{"x":"'
        + b"y" * MAX_EVENT_BYTES
        + b'"}}',
    ],
)
def test_a_line_the_core_does_not_find_plain_is_left_to_the_decoder(line: bytes) -> None:
    """An escape, a second ``"at"``, an instant not in the strict form or not valid, too deep,
    too long: no instant from the core; the decoder reads the line as before."""
    assert read(line) is None


def test_the_decoder_still_checks_what_it_is_given() -> None:
    """Given an instant, the decoder still decodes the line: one that is not an event, or whose
    instant is outside the supported range, gives None (the general path says why). An instant
    beyond 2^53 microseconds of 1970 is not read by the core."""
    assert read(b'{"id":"a","type":"t","at":"2256-01-01T00:00:00Z"}') is None
    assert event_from_plain(b'{"id":"a","at":"2027-01-01T00:00:00Z"}', 1.0) is None  # no type
    early = b'{"id":"a","type":"t","at":"1800-01-01T00:00:00Z"}'  # before the supported range
    assert event_from_plain(early, read(early) or 0.0) is None
    ok = b'{"id":"a","type":"t","at":"2027-01-01T00:00:00+07:00","case":"c"}'
    e = event_from_plain(ok, read(ok) or 0.0)
    assert e is not None and e.at == datetime(2027, 1, 1, tzinfo=timezone(timedelta(hours=7)))
    assert e._ts == datetime(2026, 12, 31, 17, tzinfo=UTC).timestamp()


_PIECES = [
    b'{"id":"e-1",',
    b'"type":"t",',
    b'"at":"2027-01-01T00:00:00+07:00",',
    b'"at":"2027-01-01T00:00:00.5Z",',
    b'"at":"1999-12-31T23:59:59-05:30"',
    b'"case":"c",',
    b'"case":null,',
    b'"data":{"at":"x","n":1.5e300,"big":123456789012345678901234567890}',
    b'"data":[[[{}]]]',
    b"\\u0041",
    b'"',
    b"}",
    b"{",
    b",",
    b":",
    b" ",
    b"\xff",
    "Đặng".encode(),
]


@settings(max_examples=300)
@given(st.lists(st.sampled_from(_PIECES) | st.binary(max_size=8), max_size=12))
def test_any_line_the_core_reads_gives_the_decoders_event(pieces: list[bytes]) -> None:
    """Whatever the bytes (pieces of events, broken JSON, invalid UTF-8), the core's reading does
    not fail, and a line it gives an instant decodes to the event the decoder gives alone."""
    line = b"".join(pieces).replace(b"\n", b" ")
    kept, count, _ = core._share_lines(line + b"\n", 0, 1, 1 << 20, None, None, BOUNDS)
    assert count == 1
    seconds = kept[0][3] if kept else None
    if seconds is not None:
        assert same(event_from_plain(line, seconds), event_from_bytes(line))


#: Text a JSON writer writes as it is (no escape): most of the generated lines are plain.
_TEXT = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters='"\\'), max_size=6
)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT
    | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300)
@given(
    event=st.fixed_dictionaries(
        # up to 2200: the core reads instants within 2^53 µs of 1970 (to 2255)
        {"id": _TEXT, "type": _TEXT, "at": instants(hi=datetime(2200, 1, 1, tzinfo=UTC))},
        optional={
            "case": st.none() | _TEXT,
            "data": _JSON | st.dictionaries(_TEXT, _JSON, max_size=4),
            "extra": _JSON,
        },
    ),
    ascii_only=st.sampled_from([False, False, False, True]),
    spaced=st.booleans(),
)
def test_an_event_line_the_core_reads_gives_the_decoders_event(
    event: dict[str, object], ascii_only: bool, spaced: bool
) -> None:
    """Events of any content, written with or without escapes and spaces: where the core gives
    an instant, the event is the decoder's (or neither gives one)."""
    line = json.dumps(
        event, ensure_ascii=ascii_only, separators=(", ", ": ") if spaced else (",", ":")
    ).encode()
    kept, _, _ = core._share_lines(line + b"\n", 0, 1, 1 << 20, None, None, BOUNDS)
    seconds = kept[0][3]
    if seconds is not None:
        assert same(event_from_plain(line, seconds), event_from_bytes(line))
