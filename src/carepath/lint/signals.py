"""CP508: cycles of signal handlers — a handler whose immediate effects can raise, through a chain
of signals, the signal it handles (SPEC §4.3–4.6)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

from carepath.lint.graph import Graph, fires

if TYPE_CHECKING:
    from carepath.compile.ir import ActionDef, Playbook
    from carepath.expr.compiler import Expr
    from carepath.loading.source import Reporter

__all__ = ["check_signal_cycles", "is_signal"]

Path = tuple[str | int, ...]


def is_signal(name: str, pb: Playbook) -> bool:
    """Engine-raised signal names (SPEC §4.3–4.6)."""
    if name in ("tier.exhausted", "capped", "ignored"):
        return True
    parts = name.split(".")
    return len(parts) == 3 and parts[0] == "sla" and parts[1] in pb.clocks


_ENDS = ("met", "missed", "cancelled", "breached")


class SignalEffects:
    """The signals that a handler's immediate effects can raise (delayed actions raise theirs
    later, in another step, so they cannot close a chain)."""

    def __init__(self, pb: Playbook) -> None:
        self.pb = pb
        self.capped = any(ch.cap_max is not None for ch in pb.channels.values())

    def of_actions(self, actions: Iterable[ActionDef]) -> tuple[set[str], set[str]]:
        """(signals, names changed) of the immediate actions."""
        sig: set[str] = set()
        changed: set[str] = set()
        for a in actions:
            if a.delay is not None:
                continue
            if a.verb == "escalate":
                changed.add("tier")
                if a.arg == "next":
                    sig.add("tier.exhausted")
            elif a.verb == "assign":
                changed.add("tier")
            elif a.verb == "send" and self.capped:
                ch = a.params.get("channel")
                if ch is None or (
                    ch in self.pb.channels and self.pb.channels[ch].cap_max is not None
                ):
                    sig.add("capped")
            elif a.verb == "set":
                changed.update(s.field for s in a.sets)
                changed.update(a.arg if isinstance(a.arg, Mapping) else ())
        return sig, changed

    def of_change(self, changed: set[str]) -> set[str]:
        """Signals that a change of the names in ``changed`` can raise through clock conditions."""
        if not changed:
            return set()
        seg_names: set[str] = set()
        for _, e in self.pb.segments:
            seg_names |= set(e.names)
        if changed & seg_names:
            changed = changed | {"segment", "segments"}
        out: set[str] = set()
        for n, c in self.pb.clocks.items():

            def reads(e: Expr | None) -> bool:
                return e is not None and bool(set(e.names) & changed)

            if c.start and reads(c.start.when):
                out.add(f"sla.{n}.started")
            if c.stop and reads(c.stop.when):
                out.update((f"sla.{n}.met", f"sla.{n}.missed"))
            if c.cancel and reads(c.cancel.when):
                out.add(f"sla.{n}.cancelled")
            if c.reset and reads(c.reset.when):
                out.update(
                    (f"sla.{n}.reset", f"sla.{n}.started", f"sla.{n}.met", f"sla.{n}.missed")
                )
            if c.pause and reads(c.pause.when):
                out.update((f"sla.{n}.paused", f"sla.{n}.resumed"))
            if any(reads(t.when) for t in c.targets):
                out.update((f"sla.{n}.breached", f"sla.{n}.warning", f"sla.{n}.overdue"))
                for th in c.thresholds:
                    s, _ = self.of_actions(th.do)
                    out |= s
        return out

    def of_triggers(self, event: str | None, entered: frozenset[str], left: str | None) -> set[str]:
        """Signals the clock triggers can raise for ``event`` / entering ``entered`` / leaving ``left``."""
        out: set[str] = set()
        final = any(self.pb.stages[s].final for s in entered if s in self.pb.stages)
        for n, c in self.pb.clocks.items():
            if fires(c.start, event, entered):
                out.add(f"sla.{n}.started")
            if fires(c.stop, event, entered):
                out.update((f"sla.{n}.met", f"sla.{n}.missed"))
            if fires(c.cancel, event, entered):
                out.add(f"sla.{n}.cancelled")
            if fires(c.reset, event, entered):
                out.update(
                    (f"sla.{n}.reset", f"sla.{n}.started", f"sla.{n}.met", f"sla.{n}.missed")
                )
            if c.pause is not None and (
                (entered & c.pause.stages) or (left is not None and left in c.pause.stages)
            ):
                out.update((f"sla.{n}.paused", f"sla.{n}.resumed"))
            if final:
                out.update(f"sla.{n}.{e}" for e in _ENDS)
        return out


def check_signal_cycles(graph: Graph, rep: Reporter) -> None:
    """CP508: signal handlers whose immediate effects can raise, through a chain of signals, the
    signal they handle — in the stage the case is in when each signal is handled."""
    pb = graph.pb
    effects = SignalEffects(pb)
    signals = sorted(e for e in graph.events if is_signal(e, pb))
    if not signals:
        return
    nodes = [(s, st) for s in signals for st in graph.stage_names if not graph.is_final(st)]
    edges: dict[tuple[str, str], set[tuple[str, str]]] = {n: set() for n in nodes}
    where: dict[tuple[str, str], Path] = {}
    for sig, stage in nodes:
        outs: set[tuple[str, str]] = set()
        # clock triggers that listen to the signal itself
        outs |= {(t, stage) for t in effects.of_triggers(sig, frozenset(), None)}
        for o in graph.outcomes(stage, sig):
            h = o.handler
            if h is None:
                continue
            where.setdefault((sig, stage), o.path)
            raised, changed = effects.of_actions(h.do)
            changed |= {s.field for s in h.sets}
            after = stage
            if h.to is not None and h.to in pb.stages:
                after = h.to
                st_old, st_new = pb.stages[stage], pb.stages[h.to]
                r1, c1 = effects.of_actions(st_old.exit)
                r2, c2 = effects.of_actions(st_new.enter)
                raised |= r1 | r2
                changed |= c1 | c2 | {"stage"}
                raised |= effects.of_triggers(None, frozenset({h.to}), stage)
            raised |= effects.of_change(changed)
            if pb.stages[after].final:
                continue  # the case has ended; nothing handles what follows
            outs |= {(t, after) for t in raised if is_signal(t, pb)}
        edges[(sig, stage)] = {n for n in outs if n in edges}
    for comp in _sccs(nodes, edges):
        if len(comp) == 1 and comp[0] not in edges[comp[0]]:
            continue
        handled = sorted(n for n in comp if n in where)
        if not handled:
            continue
        first = handled[0]
        chain = " → ".join(f"{s} (in {st})" for s, st in _cycle_from(first, set(comp), edges))
        rep.add(
            "CP508",
            f"signal handlers form a cycle: {chain}",
            where[first],
            key=True,
            hint="break the loop: handle the signal in one stage only, or make one step delayed (`in:`)",
        )


def _sccs(
    nodes: list[tuple[str, str]], edges: Mapping[tuple[str, str], set[tuple[str, str]]]
) -> list[list[tuple[str, str]]]:
    """Strongly connected components (iterative Tarjan)."""
    index: dict[tuple[str, str], int] = {}
    low: dict[tuple[str, str], int] = {}
    on: set[tuple[str, str]] = set()
    stack: list[tuple[str, str]] = []
    out: list[list[tuple[str, str]]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[tuple[str, str], Iterator[tuple[str, str]]]] = [
            (root, iter(sorted(edges[root])))
        ]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(edges[nxt]))))
                elif nxt in on:
                    low[v] = min(low[v], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp: list[tuple[str, str]] = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                out.append(sorted(comp))
    return out


def _cycle_from(
    start: tuple[str, str],
    comp: set[tuple[str, str]],
    edges: Mapping[tuple[str, str], set[tuple[str, str]]],
) -> list[tuple[str, str]]:
    """A shortest cycle through ``start`` inside its component (for the message)."""
    prev: dict[tuple[str, str], tuple[str, str]] = {}
    q: deque[tuple[str, str]] = deque([start])
    seen = {start}
    while q:
        v = q.popleft()
        for w in sorted(edges[v]):
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(prev[path[-1]])
                return [*reversed(path), start]
            if w in comp and w not in seen:
                seen.add(w)
                prev[w] = v
                q.append(w)
    return [start, start]  # pragma: no cover - a component always has a cycle
