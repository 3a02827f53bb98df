"""A playbook's state machine as a diagram: Mermaid (``stateDiagram-v2``) or Graphviz DOT.

What is drawn (SPEC §8, ``carepath graph``):

- every stage; the initial stage has an arrow from the start point, final stages an arrow to
  the end point (Mermaid) or a double border (DOT);
- every transition, labelled with its event and guard: ``agent.replied [event.needs_customer]``;
- stage timers: ``after 5d`` (``after 2bd``, ``after 4h (office)``…), with their guard;
- root ``on:`` handlers (valid in every non-final stage) as one pseudo-stage, *any non-final
  stage*, with its transitions;
- inside each stage box: entry actions, handlers that stay, timers and schedules without a move,
  and the SLA clocks paused there (``⏸ resolution``).

Mermaid is strict about what a label may contain, so labels are escaped into a small safe
alphabet (``:``/``;``/``#``/quotes/braces become entity codes); stage names that are not plain
identifiers (or clash with Mermaid keywords) get a generated id and their real name as label.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from carepath.compile.ir import ActionDef, HandlerDef, Playbook, StageDef, TimerDef

__all__ = ["FORMATS", "render", "to_dot", "to_mermaid"]

FORMATS = ("mermaid", "dot")
ANY = "any non-final stage"
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_MERMAID_KEYWORDS = frozenset(
    {
        "state",
        "note",
        "end",
        "direction",
        "class",
        "classDef",
        "style",
        "as",
        "left",
        "right",
        "of",
        "stateDiagram",
        "TB",
        "BT",
        "LR",
        "RL",
        "fork",
        "join",
        "choice",
        "default",
        "click",
        "hide",
    }
)


def render(playbook: Playbook, fmt: str = "mermaid") -> str:
    """The diagram in ``fmt`` (``mermaid`` or ``dot``)."""
    if fmt == "mermaid":
        return to_mermaid(playbook)
    if fmt == "dot":
        return to_dot(playbook)
    raise ValueError(f"unknown graph format {fmt!r}; expected one of {', '.join(FORMATS)}")


# -- what to draw (format-neutral) ------------------------------------------------------------
def _action(a: ActionDef) -> str:
    if a.verb == "set":
        text = "set " + ", ".join(s.field for s in a.sets)
    else:
        text = f"{a.verb} {a.arg}" if a.arg not in (None, "") else a.verb
    if a.delay is not None:
        text += f" in {a.delay.text or a.delay}"
    return text


def _actions(acts: tuple[ActionDef, ...]) -> str:
    return ", ".join(_action(a) for a in acts)


def _guard(h: HandlerDef | TimerDef) -> str:
    w = h.when
    if w is None:
        return ""
    src = getattr(w, "source", None) or getattr(w, "text", None) or str(w)
    return f" [{src}]"


def _timer_label(t: TimerDef) -> str:
    text = f"after {t.delay.text or t.delay}"
    if t.calendar:
        text += f" ({t.calendar})"
    if t.window:
        text += f" window {t.window}"
    return text + _guard(t)


Edge = tuple[str, str, str]  # (from, to, label); from "" = start point, to "" = end point


def _model(pb: Playbook) -> tuple[list[str], dict[str, list[str]], list[Edge], list[str]]:  # noqa: C901 - one pass over every kind of stage content (handlers, timers, schedules, entry and exit)
    """Stages (ordered), their inner lines, edges, and the root handlers' inner lines."""
    stages = list(pb.stages)
    inner: dict[str, list[str]] = {s: [] for s in stages}
    edges: list[Edge] = [("", pb.initial, "")]
    pauses: dict[str, list[str]] = {}
    for cname, c in pb.clocks.items():
        if c.pause is not None:
            for s in sorted(c.pause.stages):
                pauses.setdefault(s, []).append(cname)
    for name in stages:
        st: StageDef = pb.stages[name]
        lines = inner[name]
        if st.initial:
            lines.append("initial")
        if st.final:
            lines.append("final")
        for cn in pauses.get(name, []):
            lines.append(f"⏸ SLA {cn} paused")
        if st.enter:
            lines.append("enter / " + _actions(st.enter))
        if st.exit:
            lines.append("exit / " + _actions(st.exit))
        for ev, hs in st.on.items():
            for h in hs:
                label = ev + _guard(h)
                if h.do:
                    label += " / " + _actions(h.do)
                if h.to is not None:
                    edges.append((name, h.to, label))
                else:
                    lines.append(
                        label + (" / set " + ", ".join(s.field for s in h.sets) if h.sets else "")
                    )
        for t in st.after:
            label = _timer_label(t) + (" / " + _actions(t.do) if t.do else "")
            if t.to is not None:
                edges.append((name, t.to, label))
            else:
                lines.append(label)
        for sc in st.every:
            lines.append(
                f"every {sc.cron}"
                + (f" window {sc.window}" if sc.window else "")
                + (" / " + _actions(sc.do) if sc.do else "")
            )
        if st.final:
            edges.append((name, "", ""))
    root: list[str] = []
    for ev, hs in pb.on.items():
        for h in hs:
            label = ev + _guard(h)
            if h.do:
                label += " / " + _actions(h.do)
            if h.to is not None:
                edges.append((ANY, h.to, label))
            else:
                root.append(
                    label + (" / set " + ", ".join(s.field for s in h.sets) if h.sets else "")
                )
    if pb.exit_on:
        root.append("exit on " + ", ".join(sorted(pb.exit_on)) + " (ends the case)")
    return stages, inner, edges, root


# -- Mermaid ------------------------------------------------------------------------------------
_MM_ESCAPES = {
    "#": "#35;",
    ":": "#58;",
    ";": "#59;",
    '"': "#quot;",
    "{": "#123;",
    "}": "#125;",
    "<": "#lt;",
    ">": "#gt;",
    "%": "#37;",
    "\\": "#92;",
    "|": "#124;",
    "`": "#96;",
}


def mermaid_text(s: str) -> str:
    """A label in Mermaid's safe alphabet (entity codes for the characters its grammar uses)."""
    s = " ".join(s.split())
    return "".join(_MM_ESCAPES.get(ch, ch) for ch in s)


def _mm_ids(names: list[str]) -> dict[str, str]:
    ids: dict[str, str] = {}
    used: set[str] = set()
    for n in names:
        if _IDENT.fullmatch(n) and n not in _MERMAID_KEYWORDS and n.lower() not in ("end", "state"):
            cand = n
        else:
            cand = "s_" + re.sub(r"[^A-Za-z0-9_]", "_", n)
        base, i = cand, 2
        while cand in used:
            cand, i = f"{base}_{i}", i + 1
        ids[n] = cand
        used.add(cand)
    return ids


def to_mermaid(pb: Playbook) -> str:
    """A Mermaid ``stateDiagram-v2``."""
    stages, inner, edges, root = _model(pb)
    has_any = bool(root) or any(e[0] == ANY for e in edges)
    ids = _mm_ids([*stages, *([ANY] if has_any else [])])
    title = f"{pb.id} {pb.version}"
    out = ["---", f"title: {mermaid_text(title)}", "---", "stateDiagram-v2", "    direction LR"]
    for name in stages:
        sid = ids[name]
        if sid != name:
            out.append(f'    state "{mermaid_text(name)}" as {sid}')
    if has_any:
        out.append(f'    state "{ANY}" as {ids[ANY]}')
    for name in stages:
        for line in inner[name]:
            out.append(f"    {ids[name]} : {mermaid_text(line)}")
    for line in root:
        out.append(f"    {ids[ANY]} : {mermaid_text(line)}")
    for src, dst, label in edges:
        a = "[*]" if src == "" else ids[src]
        b = "[*]" if dst == "" else ids[dst]
        out.append(f"    {a} --> {b}" + (f" : {mermaid_text(label)}" if label else ""))
    finals = [ids[n] for n in stages if pb.stages[n].final]
    out.append("    classDef final font-weight:bold,stroke-width:3px")
    out.append("    classDef initial stroke-width:2px")
    out.append("    classDef anystage stroke-dasharray:4")
    if finals:
        out.append(f"    class {','.join(finals)} final")
    out.append(f"    class {ids[pb.initial]} initial")
    if has_any:
        out.append(f"    class {ids[ANY]} anystage")
    return "\n".join(out) + "\n"


# -- DOT ----------------------------------------------------------------------------------------
def _dq(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(pb: Playbook) -> str:
    """A Graphviz ``digraph``."""
    stages, inner, edges, root = _model(pb)
    has_any = bool(root) or any(e[0] == ANY for e in edges)
    out = [
        f"digraph {_dq(pb.id)} {{",
        f"  label={_dq(f'{pb.id} {pb.version}')}; labelloc=t; rankdir=LR;",
        '  node [shape=box, style=rounded, fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
        '  "__start" [shape=point, width=0.2, label=""];',
    ]
    for name in stages:
        st = pb.stages[name]
        lines = [name, *(x for x in inner[name] if x not in ("initial", "final"))]
        label = "\\n".join(_dq(x)[1:-1] for x in lines)
        attrs = [f'label="{label}"']
        if st.final:
            attrs.append("peripheries=2")
        if st.initial:
            attrs.append("penwidth=2")
        out.append(f"  {_dq(name)} [{', '.join(attrs)}];")
    if has_any:
        lines = [ANY, *root]
        label = "\\n".join(_dq(x)[1:-1] for x in lines)
        out.append(f'  {_dq(ANY)} [label="{label}", style="rounded,dashed"];')
    for src, dst, label in edges:
        if dst == "":
            continue
        a = '"__start"' if src == "" else _dq(src)
        out.append(f"  {a} -> {_dq(dst)}" + (f" [label={_dq(label)}]" if label else "") + ";")
    out.append("}")
    return "\n".join(out) + "\n"
