"""The safe YAML loader (SPEC §2.1): hostile input fails fast with a clear error; YAML 1.2 scalars;
positions of keys and values."""

from __future__ import annotations

import pytest

from carepath.loading.loader import check
from carepath.loading.yaml import Limits, YamlError, load_yaml


def problems(text: str, limits: Limits = Limits()) -> list[tuple[str, int, int]]:
    with pytest.raises(YamlError) as info:
        load_yaml(text, limits)
    return [(p.code, p.line, p.col) for p in info.value.problems]


def test_billion_laughs_fails_fast() -> None:
    lol = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        prev = f"*a{i - 1}"
        lol.append(f"a{i}: &a{i} [{', '.join([prev] * 9)}]")
    got = problems("\n".join(lol) + "\n")  # bounded by counting, not by expanding
    assert got and got[0][0] == "CP105"


def test_few_aliases_many_nodes() -> None:
    # two aliases per level, 30 levels: 2**30 nodes from 60 aliases
    lines = ["l0: &l0 [x, x]"] + [f"l{i}: &l{i} [*l{i - 1}, *l{i - 1}]" for i in range(1, 30)]
    assert problems("\n".join(lines) + "\n")[0][0] == "CP105"


def test_small_aliases_are_fine() -> None:
    data, _ = load_yaml("a: &x {h: [1, 2]}\nb: *x\n")
    assert data == {"a": {"h": [1, 2]}, "b": {"h": [1, 2]}}


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system ['ls']",
        "!!python/name:os.system",
        "!custom x",
        "!!str 3",
        "!!binary aGVsbG8=",
    ],
)
def test_tags_are_rejected(tag: str) -> None:
    got = problems(f"a: 1\nb: {tag}\n")
    assert got[0] == ("CP103", 2, 4)


def test_duplicate_key_at_second_occurrence() -> None:
    assert problems("a: 1\nb:\n  c: 1\n  d: 2\n  c: 3\n") == [("CP102", 5, 3)]


def test_unquoted_list_in_a_flow_mapping_hints_at_quotes() -> None:
    # SPEC §2 writes `- {when: priority in ["high", "urgent"], within: 8h}`, which YAML cannot
    # read: inside { } a plain value ends at `[`. The error says where, and how to write it.
    text = 'targets:\n  - {when: priority in ["high", "urgent"], within: 8h}\n'
    with pytest.raises(YamlError) as info:
        load_yaml(text)
    (p,) = info.value.problems
    assert (p.code, p.line, p.col) == ("CP101", 2, 24)
    assert p.hint is not None and "quote" in p.hint


def test_duplicate_keys_in_flow_mapping() -> None:
    assert problems("a: {x: 1, y: 2, x: 3}\n") == [("CP102", 1, 17)]


def test_every_duplicate_is_reported() -> None:
    got = problems("a: 1\na: 2\nb: 1\nb: 2\n")
    assert got == [("CP102", 2, 1), ("CP102", 4, 1)]


def test_huge_file() -> None:
    text = "a: " + "x" * (1 << 20) + "\n"
    assert problems(text)[0][0] == "CP104"
    res = check(text)
    assert [d.code for d in res.diagnostics] == ["CP104"]


@pytest.mark.parametrize(
    "text",
    [
        "[" * 10_000 + "]" * 10_000,
        "a:\n" + "".join("  " * i + "- \n" for i in range(1, 200)),
        "{a: " * 5000 + "1" + "}" * 5000,
    ],
)
def test_deep_nesting(text: str) -> None:
    with pytest.raises(YamlError) as info:
        load_yaml(text + "\n")
    p = info.value.problems[0]
    # libyaml's own flow-depth guard (1000) may answer first, as CP101 "…maximum nesting depth"
    assert p.code == "CP106" or (p.code == "CP101" and "nesting" in p.message)


def test_depth_limit_is_configurable() -> None:
    assert problems("a: [[[1]]]\n", Limits(max_depth=2))[0][0] == "CP106"
    load_yaml("a: [[[1]]]\n", Limits(max_depth=10))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("on", "on"),
        ("off", "off"),
        ("yes", "yes"),
        ("no", "no"),
        ("y", "y"),
        ("n", "n"),
        ("On", "On"),
        ("NO", "NO"),
        ("13:00", "13:00"),
        ("08:00-12:00", "08:00-12:00"),
        ("1:30:00", "1:30:00"),
        ("true", True),
        ("false", False),
        ("True", True),
        ("null", None),
        ("~", None),
        ("", None),
        ("12", 12),
        ("-3", -3),
        ("0o17", 15),
        ("0x1F", 31),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        ("017", 17),
        ("2026-04-30", "2026-04-30"),
        ("1_000", "1_000"),
        ("+1h", "+1h"),
        ("75%", "75%"),
    ],
)
def test_yaml_12_scalars(text: str, value: object) -> None:
    data, _ = load_yaml(f"k: {text}\n")
    assert data == {"k": value}
    assert type(data["k"]) is type(value)


def test_on_is_a_string_key() -> None:
    data, _ = load_yaml("on:\n  yes: no\n")
    assert data == {"on": {"yes": "no"}}


def test_quoted_scalars_stay_strings() -> None:
    data, _ = load_yaml("a: '12'\nb: \"true\"\n")
    assert data == {"a": "12", "b": "true"}


def test_positions_of_keys_and_values() -> None:
    _, pos = load_yaml("a:\n  b: [x, {c: 3}]\n")
    assert pos.key(("a", "b")) == (2, 3)
    assert pos.value(("a", "b", 0)) == (2, 7)
    assert pos.key(("a", "b", 1, "c")) == (2, 11)
    assert pos.value(("a", "b", 1, "c")) == (2, 14)


def test_multiple_documents_rejected() -> None:
    assert problems("a: 1\n---\nb: 2\n")[0][0] == "CP101"


def test_undefined_alias() -> None:
    assert problems("a: *nope\n")[0][0] == "CP101"


def test_non_string_keys() -> None:
    assert problems("? [a, b]\n: 1\n")[0][0] == "CP101"


def test_syntax_error_position() -> None:
    assert problems("a: [1, 2\nb: 3\n")[0][0] == "CP101"


def test_merge_keys_are_not_magic() -> None:
    # `<<` is an ordinary key in YAML 1.2 core: the playbook schema rejects it as unknown.
    res = check(
        "carepath: 1\nid: t\nversion: '1'\nbase: &b {x: 1}\n<<: *b\nstart: {on: a}\nstages: {s: {initial: true}}\n"
    )
    assert "CP201" in {d.code for d in res.diagnostics}


@pytest.mark.parametrize(
    ("written", "version"),
    [
        ("2026.10", "2026.10"),
        ("1.20", "1.20"),
        ("2026.11", "2026.11"),
        ("3", "3"),
        ('"2.10"', "2.10"),
    ],
)
def test_unquoted_version_keeps_its_text(written: str, version: str) -> None:
    # SPEC §2 `version: "2026.11"`; unquoted, YAML reads 2026.10 as the number 2026.1: the
    # playbook's version is the text as written, never a number's shortest form
    text = f"carepath: 1\nid: t\nversion: {written}\nstart: {{on: a}}\n"
    text += "stages:\n  new: {initial: true, on: {b: done}, after: [{in: 1d, to: done}]}\n"
    text += "  done: {final: true}\n"
    res = check(text)
    assert res.playbook is not None, res.diagnostics
    assert res.playbook.version == version
