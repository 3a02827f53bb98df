"""Semantic checks of a compiled playbook (SPEC §5): :func:`lint` runs them all — the stage-graph
checks of :mod:`carepath.lint.graph`, the signal cycles of :mod:`carepath.lint.signals`, and here
CP505/CP606 thresholds, CP605 shadowed segments and CP607 ``calendar: channel`` where the channel
can be unset or has no calendar; :mod:`carepath.lint.delivery` CP620/CP621 (consent and caps). The goals are checked from the model by :mod:`carepath.lint.goals` (the compiler runs
them, so they are reported even when another section does not compile).

Everything here reads a compiled :class:`~carepath.compile.ir.Playbook` and reports into the
loader's :class:`~carepath.loading.source.Reporter`; nothing is changed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from carepath.diagnostics import path_str
from carepath.lint.delivery import check_delivery
from carepath.lint.graph import (
    ClockAnalysis,
    Graph,
    always,
    check_clock_start_stop,
    check_forgotten,
    check_timers,
    check_unreachable,
    check_way_out,
    clock_analysis,
    reachable_stages,
)
from carepath.lint.signals import check_signal_cycles

if TYPE_CHECKING:
    from carepath.compile.ir import ActionDef, ClockDef, HandlerDef, Playbook
    from carepath.loading.source import Reporter

__all__ = ["lint", "typical_open_day"]

Path = tuple[str | int, ...]

#: CP606: a threshold beyond this many times its target is beyond reason.
MAX_THRESHOLD_FACTOR = 10.0


def lint(playbook: Playbook, rep: Reporter) -> None:
    """Run every semantic check of SPEC §5 on ``playbook``, reporting into ``rep``."""
    graph = Graph(playbook)
    no_way_out = check_way_out(graph, rep)
    reach = reachable_stages(graph)
    check_unreachable(graph, reach, rep)
    check_timers(graph, reach, rep)
    analysis = clock_analysis(graph)
    check_forgotten(graph, reach, analysis, no_way_out, rep)
    check_clock_start_stop(graph, analysis, rep)
    check_channel_calendar(graph, analysis, rep)
    check_thresholds(graph, rep)
    check_signal_cycles(graph, rep)
    check_segments(playbook, rep)
    check_delivery(playbook, _all_actions(playbook), rep)


def _channel_may_be_unset(pb: Playbook) -> str | None:
    """Why the case field ``channel`` may be unset, or ``None`` when it is always set."""
    if not pb.spec.channels:
        return "the playbook declares no channels"
    if "channel" not in pb.fields:
        return "no field `channel` is declared"
    if "channel" in pb.defaults:
        return None
    if any(s.field == "channel" for s in pb.start.sets):
        return None
    return "field `channel` has no default and `start.set` does not set it"


def check_channel_calendar(graph: Graph, analysis: ClockAnalysis, rep: Reporter) -> None:
    """CP607: ``calendar: channel`` (the clocks' default, and ``bd`` timers') where the case's
    channel can be unset, or be a value of field ``channel`` with no entry under ``channels``
    (SPEC §4.4: both count in ``always``), so the clock silently counts 24×7."""
    pb = graph.pb
    users = list(_channel_calendar_users(pb, analysis))
    if not users:
        return
    why = _channel_may_be_unset(pb)
    if why is not None:
        hint = (
            "set a default channel, set it in `start.set`, or name a calendar (`calendar: office`)"
        )
        for what, path, key in users:
            rep.add("CP607", f"{what}, but {why}; such cases count 24×7", path, key=key, hint=hint)
    field = pb.spec.fields.get("channel")
    if field is None or field.type != "enum" or not pb.spec.channels:
        return
    first = users[0][1]
    for i, v in enumerate(field.values or ()):
        if v not in pb.spec.channels:
            rep.add(
                "CP607",
                f"channel {v!r} of field `channel` has no entry under `channels`, so on such a "
                f"case the case channel's calendar is `always` (24×7), e.g. for {path_str(first)}",
                ("fields", "channel", "values", i),
                hint=f"declare it: `channels: {{{v}: {{calendar: office}}}}`",
            )


def _channel_calendar_users(
    pb: Playbook, analysis: ClockAnalysis
) -> Iterator[tuple[str, Path, bool]]:
    """What counts in the case channel's calendar: ``(description, path, at the key)``."""
    for name, c in pb.clocks.items():
        if not analysis.can_open.get(name, False):
            continue
        if c.calendar == "channel" and any(t.calendar is None for t in c.targets):
            explicit = "calendar" in pb.spec.slas[name].model_fields_set
            yield (
                f"SLA {name!r} counts in the case channel's calendar"
                + ("" if explicit else " (the default)"),
                ("slas", name, "calendar") if explicit else ("slas", name),
                True,
            )
        for tg in c.targets:
            if tg.calendar == "channel":
                yield (
                    f"target {tg.text!r} of SLA {name!r} counts in the case channel's calendar",
                    ("slas", name, "targets", tg.index, "calendar"),
                    False,
                )
    for sname, st in pb.stages.items():
        for t in st.after:
            if t.calendar == "channel" or (t.calendar is None and t.delay.business_days):
                yield (
                    f"timer `in: {t.delay.text}` counts in the case channel's calendar",
                    ("stages", sname, "after", t.index, "calendar" if t.calendar else "in"),
                    False,
                )
    for a, path in _all_actions(pb):
        if a.delay is not None and (
            a.calendar == "channel" or (a.calendar is None and a.delay.business_days)
        ):
            yield (
                f"delayed action `in: {a.delay.text}` counts in the case channel's calendar",
                (*path, "calendar" if a.calendar else "in"),
                False,
            )


def _all_actions(pb: Playbook) -> Iterator[tuple[ActionDef, Path]]:
    """Every action of the playbook with its node path."""

    def handlers(
        base: Path, on: Mapping[str, tuple[HandlerDef, ...]]
    ) -> Iterator[tuple[ActionDef, Path]]:
        for ev, hs in on.items():
            for i, h in enumerate(hs):
                hp: Path = (*base, ev, i) if len(hs) > 1 else (*base, ev)
                for j, a in enumerate(h.do):
                    yield a, (*hp, "do", j)

    for name, st in pb.stages.items():
        sp: Path = ("stages", name)
        for key, acts in (("enter", st.enter), ("exit", st.exit)):
            for j, a in enumerate(acts):
                yield a, (*sp, key, j)
        yield from handlers((*sp, "on"), st.on)
        for t in st.after:
            for j, a in enumerate(t.do):
                yield a, (*sp, "after", t.index, "do", j)
        for s in st.every:
            for j, a in enumerate(s.do):
                yield a, (*sp, "every", s.index, "do", j)
    yield from handlers(("on",), pb.on)
    for cname, c in pb.clocks.items():
        for th in c.thresholds:
            for j, a in enumerate(th.do):
                yield a, ("slas", cname, "thresholds", th.index, "do", j)


# ---------------------------------------------------------------------------------------------
# CP505 / CP606 thresholds


def typical_open_day(pb: Playbook, calendar: str) -> float | None:
    """Open seconds of an average open weekday of ``calendar`` (``always``: 24 h), from the weekly
    hours the calendar itself parsed (each interval counts on the day it opens); ``None`` for an
    unknown calendar or one never open in a week."""
    built = pb.calendars.get(calendar)
    if built is None:
        return None
    if built.always:
        return 86400.0
    per_day = [sum(close - start for start, close in intervals) for intervals in built.weekly]
    open_days = [seconds for seconds in per_day if seconds > 0]
    return sum(open_days) / len(open_days) if open_days else None


def target_seconds(pb: Playbook, c: ClockDef) -> list[tuple[str, float]]:
    """Each target of ``c`` in business seconds (``bd`` estimated with the calendar's typical
    open day, once per possible calendar), with its text."""
    out: list[tuple[str, float]] = []
    for t in c.targets:
        if t.seconds is not None:
            out.append((t.text, t.seconds))
            continue
        cal = t.calendar or c.calendar
        cals = (
            sorted({ch.calendar for ch in pb.channels.values()} | {"always"})
            if cal == "channel"
            else [cal]
        )
        for name in cals:
            day = typical_open_day(pb, name)
            if day is not None and t.business_days is not None:
                out.append(
                    (
                        f"{t.text} (about {_fmt(t.business_days * day)} in {name})",
                        t.business_days * day,
                    )
                )
    return out


def _fmt(seconds: float) -> str:
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    parts = [f"{h}h" if h else "", f"{m}m" if m else "", f"{sec}s" if sec else ""]
    return "".join(parts) or "0s"


def check_thresholds(graph: Graph, rep: Reporter) -> None:
    """CP505: thresholds not in firing order for some target; CP606: a threshold more than ten
    times every target of its clock (an offset over ten times the largest target, or a share
    over 1000 %)."""
    pb = graph.pb
    for name, c in pb.clocks.items():
        targets = target_seconds(pb, c)
        reported: set[int] = set()
        for i in range(1, len(c.thresholds)):
            a, b = c.thresholds[i - 1], c.thresholds[i]
            for text, secs in targets:
                if b.at(secs) < a.at(secs) and b.index not in reported:
                    reported.add(b.index)
                    rep.add(
                        "CP505",
                        f"threshold {b.text!r} of SLA {name!r} fires before the one above it "
                        f"({a.text!r}) for target {text}",
                        ("slas", name, "thresholds", b.index, "at"),
                        hint="list thresholds in the order they fire, for every target",
                    )
        if not targets:
            continue
        text, largest = max(targets, key=lambda t: t[1])
        for th in c.thresholds:
            far = (th.offset is not None and abs(th.offset) > MAX_THRESHOLD_FACTOR * largest) or (
                th.percent is not None and th.percent > MAX_THRESHOLD_FACTOR * 100
            )
            if far:
                rep.add(
                    "CP606",
                    f"threshold {th.text!r} of SLA {name!r} is more than ten times even its "
                    f"largest target, {text}",
                    ("slas", name, "thresholds", th.index, "at"),
                    hint="a threshold is a share of the target (75%) or an offset close to it (+1h)",
                )


def check_segments(pb: Playbook, rep: Reporter) -> None:
    """CP605: segments listed after one whose condition is always true never match first."""
    catch_all: str | None = None
    for name, e in pb.segments:
        if catch_all is not None:
            rep.add(
                "CP605",
                f"segment {name!r} comes after {catch_all!r}, whose condition is always true, "
                "so it is never the case's `segment`",
                ("segments", name),
                key=True,
                hint=f"move {catch_all!r} to the end of `segments`",
            )
        elif always(e):
            catch_all = name
