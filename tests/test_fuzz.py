"""A bounded fuzzing harness (issue 15, "Also"): hostile input finds its way into CI, not to users.

Three surfaces, one property each: *never an exception other than the documented ones, and an
answer in bounded time*.

- ``carepath.loads`` / ``check`` over random text, random YAML documents, and the examples
  mutated (text cut, repeated and spliced with hostile tokens; values swapped in the parsed
  tree). Documented: a :class:`~carepath.errors.PlaybookError` whose diagnostics all have a known
  code and a position from 1, and that every output format can print.
- Event decoding (``decode_event``, ``event_from_line``, ``Event.from_dict``). Documented:
  ``ValueError``; and the fast line decoder agrees with the general path.
- ``Runtime.submit`` on an in-memory SQLite store. Documented: it never raises for bad input; it
  returns a :class:`~carepath.runtime.SubmitResult` whose status is one of four.

Bounded and reproducible: a fixed number of examples per property, ``derandomize=True`` (the
same examples on every run, no example database), ``deadline=None`` (shared CI machines; time is
bounded by the sizes generated, not measured). The whole module runs in well under a minute.
Set ``CAREPATH_FUZZ_EXAMPLES`` to a larger number to fuzz for longer locally (still seeded), and
``CAREPATH_FUZZ_EXPLORE=1`` for fresh random examples on each run.
"""

from __future__ import annotations

import functools
import json
import os
import string
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import carepath
from carepath.diagnostics import CODES, FORMATS, format_diagnostics
from carepath.errors import PlaybookError
from carepath.events import Event, decode_event, event_from_line
from carepath.loading import check
from carepath.loading.yaml import load_yaml

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
PLAYBOOKS = sorted(p for p in EXAMPLES.glob("*.yaml") if not p.name.endswith(".test.yaml"))
TEXTS = {p.name: p.read_text(encoding="utf-8") for p in PLAYBOOKS}
SCALE = int(os.environ.get("CAREPATH_FUZZ_EXAMPLES", "1"))
EXPLORE = os.environ.get("CAREPATH_FUZZ_EXPLORE") == "1"  # fresh random examples: local only


def fuzz(n: int) -> settings:
    """``n`` examples (times ``CAREPATH_FUZZ_EXAMPLES``), seeded, no database, no deadline."""
    return settings(
        max_examples=n * SCALE,
        derandomize=not EXPLORE,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# -- strategies ----------------------------------------------------------------------------------
#: Tokens that have broken a loader somewhere: YAML 1.1 booleans, special floats, huge numbers,
#: anchors and aliases, tags, flow indicators, control characters, long runs (regex blow-ups).
# fmt: off
HOSTILE = [
    "yes", "no", "on", "off", "y", "~", "null", "true", "True", "1", "0", "-1", "1e400", "-.inf",
    ".nan", "0x" + "f" * 40, "0o777", "9" * 4301, "9" * 200, "13:00", "2027-02-30", "9999-12-31",
    "&a", "*a", "&b [*a, *a]", "!!python/object:os.system", "!x", "<<", "? ", "- ", ": ", "{", "}",
    "[", "]", ",", "|", ">", "'", '"', "#", "%YAML 1.1", "---", "...", "\t", "\0", "\x1b[31m",
    "\u2028", "\ufeff", "\ud800", " " * 5000, "1" * 5000 + "x", ">=" + " " * 5000 + "x",
    "=event.x", "=1/0", "=" + "(" * 300, "P" + "1" * 3000, "2h", "1h30m", "3bd", "PT2H", "75%",
    "next", "L1", "channel", "always",
]
# fmt: on
hostile = st.sampled_from(HOSTILE)
words = st.text(string.ascii_letters + string.digits + "._-", min_size=1, max_size=12)
scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), words, hostile, st.text(max_size=30)
)
values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.one_of(words, hostile), inner, max_size=4)
    ),
    max_leaves=20,
)


def _dump(value: Any) -> str:
    return yaml.safe_dump(value, allow_unicode=True, sort_keys=False, width=10_000)


@st.composite
def mutated_text(draw: st.DrawFn) -> tuple[str, str]:
    """An example playbook with a few text mutations: cut, repeat, or splice in a token."""
    name = draw(st.sampled_from(sorted(TEXTS)))
    text = TEXTS[name]
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        j = min(len(text), i + draw(st.integers(0, 200)))
        op = draw(st.sampled_from(["cut", "repeat", "insert", "replace_line"]))
        if op == "cut":
            text = text[:i] + text[j:]
        elif op == "repeat":
            text = text[:j] + text[i:j] + text[j:]
        elif op == "insert":
            text = text[:i] + draw(hostile) + text[i:]
        else:
            lines = text.split("\n")
            k = draw(st.integers(0, len(lines) - 1))
            indent = lines[k][: len(lines[k]) - len(lines[k].lstrip())]
            lines[k] = indent + draw(
                st.sampled_from([f"{draw(words)}: {draw(hostile)}", draw(hostile)])
            )
            text = "\n".join(lines)
    return name, text


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(_paths(v, (*prefix, i)))
    return out


TREES = {name: load_yaml(text)[0] for name, text in TEXTS.items()}


@st.composite
def mutated_tree(draw: st.DrawFn) -> str:
    """An example playbook parsed, a few nodes replaced, removed or given an unknown sibling."""
    tree = json.loads(json.dumps(TREES[draw(st.sampled_from(sorted(TREES)))], default=str))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(_paths(tree)[1:]))
        parent = tree
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        op = draw(st.sampled_from(["replace", "remove", "sibling"]))
        if op == "replace":
            parent[last] = draw(values)
        elif op == "remove":
            del parent[last]
        elif isinstance(parent, dict):
            parent[draw(st.one_of(words, hostile))] = draw(values)
        else:
            parent.append(draw(values))
    return _dump(tree)


# -- loads ---------------------------------------------------------------------------------------
def assert_loads_answers(text: str, base_dir: Path | None = EXAMPLES) -> None:
    """``loads`` returns a playbook or raises PlaybookError with printable, located findings."""
    try:
        carepath.loads(text, file="fuzz.yaml", base_dir=base_dir)
    except PlaybookError as exc:
        assert exc.diagnostics, "a PlaybookError without a diagnostic"
        for d in exc.diagnostics:
            assert d.code in CODES, d
            assert d.line >= 1 and d.col >= 1, d
        for fmt in FORMATS:
            format_diagnostics(
                exc.diagnostics, fmt, sources={"fuzz.yaml": text}, files=["fuzz.yaml"]
            )


@fuzz(300)
@given(st.text(max_size=300))
def test_loads_answers_any_text(text: str) -> None:
    assert_loads_answers(text)


@fuzz(200)
@given(st.lists(st.one_of(hostile, words, st.text(max_size=10)), max_size=30))
def test_loads_answers_hostile_token_soup(tokens: list[str]) -> None:
    assert_loads_answers(" ".join(tokens) + "\n" + "\n".join(tokens))


@fuzz(150)
@given(values)
def test_loads_answers_any_yaml_document(value: Any) -> None:
    assert_loads_answers(_dump(value))


@fuzz(60)
@given(mutated_text())
def test_loads_answers_mutated_examples(named: tuple[str, str]) -> None:
    assert_loads_answers(named[1])


@fuzz(60)
@given(mutated_tree())
def test_loads_answers_examples_with_mutated_values(text: str) -> None:
    assert_loads_answers(text)


def test_the_examples_load_unmutated() -> None:
    # the mutations start from valid playbooks: otherwise the harness only tests the error path
    for name, text in TEXTS.items():
        assert check(text, file=name, base_dir=EXAMPLES).ok, name


# -- event decoding ------------------------------------------------------------------------------
instants = st.one_of(
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    st.sampled_from(
        [
            "9999-12-31T23:59:59+00:00",
            "0001-01-01T00:00:00+00:00",
            "2027-02-01T09:00:00",
            "2027-02-01T09:00:00Z",
            "2027-02-30T09:00:00+00:00",
            "2027-02-01",
            "now",
            "",
            "\ud800",
            "2027-02-01T09:00:00+25:00",
            "1" * 5000,
        ]
    ),
    st.integers(),
    st.none(),
    st.floats(),
)
json_values: st.SearchStrategy[Any] = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20), hostile),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
event_dicts = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.text(max_size=10), st.integers(), st.booleans(), st.none(), hostile),
        "type": st.one_of(
            st.sampled_from(["case.opened", "agent.replied", "case.solved"]), json_values
        ),
        "at": instants,
        "case": st.one_of(st.text(max_size=10), st.integers(), st.none(), hostile, json_values),
        "data": st.one_of(
            st.dictionaries(st.text(max_size=10), json_values, max_size=4), json_values
        ),
        "extra": json_values,
    },
)


def _line(d: dict[str, Any], raw: str) -> str:
    try:
        return json.dumps(d, ensure_ascii=False)
    except (ValueError, TypeError):  # not every float is JSON
        return raw


lines = st.one_of(
    st.builds(_line, event_dicts, st.text(max_size=50)),
    st.text(max_size=200),
    st.sampled_from(
        [
            "[" * 5000 + "]" * 5000,
            '{"a":' * 40 + "1" + "}" * 40,
            '{"id": 1e400}',
            "NaN",
            '{"id": "1", "type": "x", "at": "2027-02-01T09:00:00+00:00", "case": "\\ud800"}',
            '{"id": "1", "type": "x", "at": "2027-02-01T09:00:00+00:00", "data": {"n": '
            + "9" * 5000
            + "}}",
        ]
    ),
)


def _outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args)
    except ValueError as exc:
        return "error", str(exc)


@fuzz(300)
@given(lines)
def test_event_decoders_raise_only_value_error_and_agree(text: str) -> None:
    fast = _outcome(event_from_line, text)
    slow = _outcome(lambda t: Event.from_dict(decode_event(t)), text)
    assert fast[0] == slow[0], (fast, slow)
    if fast[0] == "ok":
        assert fast[1].to_dict() == slow[1].to_dict()
    _outcome(decode_event, text.encode("utf-8", "surrogatepass"))


@fuzz(200)
@given(event_dicts)
def test_event_from_dict_raises_only_value_error(d: dict[str, Any]) -> None:
    kind, ev = _outcome(Event.from_dict, d)
    if kind == "ok":
        assert isinstance(ev, Event) and ev.at.tzinfo is not None


# -- Runtime.submit -------------------------------------------------------------------------------
MINI = """
carepath: 1
id: mini
version: "1"
events:
  case.opened: {priority: {type: enum, values: [low, high], default: low}, n: {type: int, default: 0}}
fields:
  priority: {type: enum, values: [low, high], default: low}
  n: {type: int, default: 0}
start: {on: case.opened, set: {priority: =event.priority, n: =event.n}}
stages:
  new:
    initial: true
    enter: [{send: ack}]
    on: {agent.replied: {to: done, when: n < 3}}
    after: [{in: 30m, to: done}]
  done: {final: true}
slas:
  first_response:
    start: {on: case.opened}
    stop: {on: agent.replied}
    targets: [{within: 1h}]
"""
T0 = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
STATUSES = {"applied", "duplicate", "rejected", "ignored"}
submissions = st.lists(
    st.one_of(
        lines,
        event_dicts,
        st.builds(
            lambda i, t, m, c, p: {
                "id": f"e{i}",
                "type": t,
                "at": (T0 + timedelta(minutes=m)).isoformat(),
                "case": c,
                "data": {"priority": p, "n": m},
            },
            st.integers(0, 5),
            st.sampled_from(["case.opened", "agent.replied", "other"]),
            st.integers(-10_000, 10**6),
            st.sampled_from(["C1", "C2", ""]),
            st.sampled_from(["low", "high", "urgent", 3, None]),
        ),
    ),
    min_size=1,
    max_size=8,
)


@functools.cache
def mini() -> carepath.Playbook:
    return carepath.loads(MINI)


def submit_all(events: list[Any]) -> list[Any]:
    from carepath.runtime import Runtime
    from carepath.runtime.clock import ManualClock
    from carepath.runtime.sqlite import SQLiteStore

    store = SQLiteStore(":memory:")
    try:
        rt = Runtime([mini()], store, clock=ManualClock(T0))
        return [rt.submit(ev) for ev in events]
    finally:
        store.close()


@fuzz(100)
@given(submissions)
def test_runtime_submit_never_raises(events: list[Any]) -> None:
    for res in submit_all(events):
        assert res.status in STATUSES, res
        if res.status == "rejected":
            assert res.reason and res.message


@pytest.mark.parametrize(
    "event",
    [
        {"id": "\ud800", "type": "case.opened", "at": T0.isoformat(), "case": "C1"},
        {"id": "1", "type": "case.opened", "at": T0.isoformat(), "case": "C-\ud800"},
        {"id": "2", "type": "case.opened", "at": "9999-12-31T23:59:59+00:00", "case": "C1"},
        '{"id": "3", "type": "case.opened", "at": "2027-02-01T09:00:00+00:00", "data": {"n": NaN}}',
        b'{"id": "4", "type": "case.opened", "at": "2027-02-01T09:00:00+00:00", "case": "C\xff"}',
    ],
    ids=["surrogate-id", "surrogate-case", "year-9999", "nan", "not-utf8"],
)
def test_runtime_rejects_what_the_fuzzer_found(event: Any) -> None:
    # lone surrogates and year 9999 made submit raise (issue 15 #1, #4) when this harness was written
    (res,) = submit_all([event])
    assert res.status == "rejected" and res.reason == "invalid"
