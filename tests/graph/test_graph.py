"""`carepath graph`: Mermaid output checked against a strict grammar subset; DOT structure."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from carepath.cli.app import main
from carepath.graph.render import mermaid_text, render
from carepath.loading.loader import load, loads

ROOT = Path(__file__).resolve().parents[2]
EX = ROOT / "examples"
EXAMPLES = [str(EX / "vn-retail-support.yaml"), str(EX / "omnichannel-journey.yaml")]

# --- a strict checker for the stateDiagram-v2 subset carepath emits ---------------------------------
ID = r"[A-Za-z][A-Za-z0-9_]*"
# label text: no raw characters that Mermaid's state grammar treats specially; entity codes allowed
TEXT = r"(?:[^:;#\"{}<>%\\|`\n]|#(?:\d+|quot|lt|gt|amp);)+"
LINE_RULES = [
    ("header", re.compile(r"stateDiagram-v2")),
    ("direction", re.compile(r"direction (LR|TB|RL|BT)")),
    ("alias", re.compile(rf'state "(?P<label>{TEXT})" as (?P<id>{ID})')),
    ("descr", re.compile(rf"(?P<id>{ID}) : (?P<text>{TEXT})")),
    ("start", re.compile(rf"\[\*\] --> (?P<dst>{ID})")),
    ("end", re.compile(rf"(?P<src>{ID}) --> \[\*\]")),
    ("edge", re.compile(rf"(?P<src>{ID}) --> (?P<dst>{ID})(?: : (?P<text>{TEXT}))?")),
    ("classdef", re.compile(rf"classDef {ID} [a-z-]+:[^;\s]+(?:,[a-z-]+:[^;\s]+)*")),
    ("class", re.compile(rf"class (?P<ids>{ID}(?:,{ID})*) {ID}")),
    ("comment", re.compile(r"%%.*")),
]
KEYWORDS = {
    "state",
    "note",
    "end",
    "direction",
    "class",
    "classDef",
    "as",
    "left",
    "right",
    "of",
    "fork",
    "join",
    "choice",
    "default",
    "style",
    "click",
}


def check_mermaid(text: str) -> dict[str, set[str]]:
    """Raise AssertionError unless ``text`` is in the grammar subset; return ids by role."""
    lines = text.splitlines()
    i = 0
    if lines[:1] == ["---"]:  # front matter: title only
        end = lines.index("---", 1)
        for fm in lines[1:end]:
            assert re.fullmatch(rf"title: {TEXT}", fm), f"front matter: {fm!r}"
        i = end + 1
    body = [ln for ln in lines[i:] if ln.strip()]
    assert body and body[0] == "stateDiagram-v2", "the first line is the diagram type"
    ids: dict[str, set[str]] = {
        "declared": set(),
        "used": set(),
        "start": set(),
        "end": set(),
        "classed": set(),
    }
    for ln in body[1:]:
        assert ln.startswith("    ") and not ln.startswith("     "), f"indentation: {ln!r}"
        s = ln[4:]
        assert s == s.rstrip(), f"trailing space: {ln!r}"
        for kind, rx in LINE_RULES:
            m = rx.fullmatch(s)
            if m is None:
                continue
            groups = m.groupdict()
            for key in ("id", "src", "dst"):
                if groups.get(key):
                    assert groups[key] not in KEYWORDS, f"keyword used as id: {ln!r}"
                    ids["used"].add(groups[key])
            if kind == "alias":
                assert groups["id"] not in ids["declared"], f"declared twice: {ln!r}"
                ids["declared"].add(groups["id"])
            if kind == "start":
                ids["start"].add(groups["dst"])
            if kind == "end":
                ids["end"].add(groups["src"])
            if kind == "class":
                ids["classed"].update(groups["ids"].split(","))
            break
        else:
            raise AssertionError(f"not in the stateDiagram-v2 subset: {ln!r}")
    assert len(ids["start"]) == 1, "exactly one initial transition"
    assert ids["classed"] <= ids["used"], "class applied to an unknown state"
    return ids


def mermaid(path: str) -> str:
    return render(load(path), "mermaid")


@pytest.mark.parametrize("path", EXAMPLES)
def test_mermaid_of_examples_is_in_the_grammar(path: str) -> None:
    pb = load(path)
    ids = check_mermaid(mermaid(path))
    assert ids["start"] == {pb.initial}
    assert ids["end"] == {n for n, s in pb.stages.items() if s.final}
    assert set(pb.stages) <= ids["used"]


def test_support_graph_content() -> None:
    text = mermaid(EXAMPLES[0])
    assert "new --> waiting_customer : agent.replied [event.needs_customer]" in text
    assert "waiting_customer --> closed : after 5d / set close_reason, send closing_notice" in text
    assert "solved --> closed : after 5d" in text
    assert (
        "waiting_customer : ⏸ SLA resolution paused" in text
    )  # the pause, on the stage it affects
    assert "s_any_non_final_stage --> closed : case.cancelled" in text  # root `on:` handler
    assert "closed --> [*]" in text and "[*] --> new" in text
    assert "#quot;vip#quot;" in text  # guards are escaped, never raw quotes


def test_journey_graph_content() -> None:
    text = mermaid(EXAMPLES[1])
    assert "after_sales --> loyal : after 30d [orders #gt;= 2]" in text
    assert "every 0 10 1 * * window quiet_hours / send monthly_checkin" in text
    assert "exit on customer.unsubscribed" in text


def test_awkward_stage_names_get_safe_ids() -> None:
    pb = loads("""\
carepath: 1
id: odd
version: "1"
timezone: UTC
start: {on: go}
stages:
  end:
    initial: true
    on: {go: state}
    after: [{in: 1h, to: state}]
  state:
    final: true
""")
    text = render(pb, "mermaid")
    ids = check_mermaid(text)
    assert "end" not in ids["used"] and "state" not in ids["used"]
    assert 'state "end" as s_end' in text


def test_mermaid_text_escapes() -> None:
    assert (
        mermaid_text('a: "b"; {c} <d> #1 %')
        == "a#58; #quot;b#quot;#59; #123;c#125; #lt;d#gt; #35;1 #37;"
    )


@pytest.mark.parametrize("path", EXAMPLES)
def test_dot_structure(path: str) -> None:
    text = render(load(path), "dot")
    assert text.startswith("digraph ") and text.rstrip().endswith("}")
    assert text.count("{") == text.count("}")
    pb = load(path)
    for name, st in pb.stages.items():
        assert f'"{name}" [' in text
        if st.final:
            assert re.search(rf'"{name}" \[[^\n]*peripheries=2', text)
    assert '"__start" -> ' in text
    # every quoted string is closed on its line
    for ln in text.splitlines():
        assert len(re.findall(r'(?<!\\)"', ln)) % 2 == 0, ln


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz not installed")
@pytest.mark.parametrize("path", EXAMPLES)
def test_dot_parses_with_graphviz(path: str) -> None:
    subprocess.run(
        ["dot", "-Tsvg"],
        input=render(load(path), "dot"),
        text=True,
        check=True,
        capture_output=True,
    )


@pytest.mark.skipif(shutil.which("mmdc") is None, reason="mermaid-cli (mmdc) not installed")
@pytest.mark.parametrize("path", EXAMPLES)
def test_mermaid_renders_with_mermaid_cli(path: str, tmp_path: Path) -> None:
    src = tmp_path / "g.mmd"
    src.write_text(mermaid(path), encoding="utf-8")
    subprocess.run(
        ["mmdc", "-i", str(src), "-o", str(tmp_path / "g.svg")],
        check=True,
        capture_output=True,
        timeout=120,
    )


def test_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["graph", EXAMPLES[0]]) == 0
    out, _ = capsys.readouterr()
    check_mermaid(out)
    assert main(["graph", EXAMPLES[0], "--format", "dot", "-o", str(tmp_path / "g.dot")]) == 0
    assert (tmp_path / "g.dot").read_text(encoding="utf-8").startswith("digraph")


def test_cli_broken_inputs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["graph", str(tmp_path / "nope.yaml")]) == 2
    _, err = capsys.readouterr()
    assert "no such file" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("carepath: 1\nid: bad\nversion: '1'\nstagez: {}\n", encoding="utf-8")
    assert main(["graph", str(bad)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "stagez" in err
