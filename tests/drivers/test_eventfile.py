"""The event file reader decodes each line once, from its bytes when it can, with the result of
the text path: the same events, line numbers and bad lines, whatever the lines are."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carepath.drivers.eventfile import BadEvent, iter_events, numbered_events, read_lines
from carepath.events import MAX_EVENT_BYTES, Event, event_from_line

GOOD = {"id": "e1", "type": "case.opened", "at": "2027-02-08T09:00:00+07:00", "case": "T-1"}

pieces = st.one_of(
    st.builds(
        lambda i, n, data: json.dumps({**GOOD, "id": f"e{i}", "data": data}, ensure_ascii=n),
        st.integers(0, 99),
        st.booleans(),
        st.dictionaries(
            st.text(max_size=4),
            st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=4), st.none()),
            max_size=3,
        ),
    ).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.sampled_from(
        [
            b"",
            b"   ",
            b"# a comment",
            b"// a comment",
            b"not json",
            b'{"id": 1, "type": "x", "at": "2027-02-08T09:00:00Z", "case": 5}',
            b'{"id":"e","type":"x","at":"2027-02-08T09:00:00Z","data":{"v":"\xff"}}',
            b'{"id":"e","type":"x","at":"2027-02-08T09:00:00Z","data":{"v":"\xed\xa0\x80"}}',
            b'{"id":"e","type":"x","at":"2027-02-08T09:00:00Z","data":{"v":"\\u0000"}}',
            b'{"id":"e","type":"x","at":"2027-02-08T09:00:00Z","data":{"v":1e400}}',
            b'{"id":"e","type":"x","at":"2027-02-08T09:00:00Z","data":{"v":18446744073709551616}}',
            b'\xc2\xa0{"id":"e","type":"x","at":"2027-02-08T09:00:00Z"}',
            b'{"id":"e","type":"x","at":"2027-02-08"}',
            b'{"id":"e","type":"","at":"2027-02-08T09:00:00Z"}',
            b'{"id":"e","type":"x","at":"2027-02-08T09:00:00Z","data":{"s":"'
            + b"x" * MAX_EVENT_BYTES
            + b'"}}',
        ]
    ),
)


def by_text(path: Path) -> tuple[list[tuple[int, Event]], list[BadEvent]]:
    """The text path alone: each line decoded to text, then ``event_from_line``."""
    good, bad = [], []
    for number, text, problem in read_lines(path):
        if problem is not None:
            bad.append(BadEvent(number, problem, text))
            continue
        try:
            good.append((number, event_from_line(text)))
        except (ValueError, TypeError) as exc:
            bad.append(BadEvent(number, str(exc), text))
    return good, bad


def slots(e: Event) -> tuple[Any, ...]:
    return (e.id, e.type, e.at, e.at.utcoffset(), e.case, json.dumps(dict(e.data)), e._ts)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(pieces, max_size=12),
    bom=st.booleans(),
    ends=st.sampled_from([b"\n", b"\r\n"]),
    last=st.booleans(),
)
def test_one_decode_per_line_gives_the_text_path_result(
    tmp_path: Path, lines: list[bytes], bom: bool, ends: bytes, last: bool
) -> None:
    path = tmp_path / "log.jsonl"
    body = ends.join(lines) + (ends if last else b"")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + body)
    want_good, want_bad = by_text(path)
    bad: list[BadEvent] = []
    got = list(numbered_events(path, bad))
    assert [(n, slots(e)) for n, e in got] == [(n, slots(e)) for n, e in want_good]
    assert bad == want_bad
    bad2: list[BadEvent] = []
    assert [(el.line, slots(el.event)) for el in iter_events(path, bad2)] == [
        (n, slots(e)) for n, e in want_good
    ]
    assert bad2 == want_bad
