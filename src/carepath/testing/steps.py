"""One scenario's steps on a simulator: events, advances and the checks of each ``expect``.

The format is described in :mod:`carepath.testing.scenario`; this module reads a step, applies it
and compares what the case became with what the step expects, locating every mismatch.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from carepath._instants import zone
from carepath.errors import ScenarioError
from carepath.events import Event
from carepath.state import Action, CaseState, Signal
from carepath.testing.results import Failure

if TYPE_CHECKING:
    from carepath.compile.ir import Playbook
    from carepath.drivers.simulate import Simulator

#: A path of keys and indexes into a scenario file.
YPath = tuple[str | int, ...]

FILE_KEYS = {"playbook", "start", "case", "scenarios", "description"}
SCENARIO_KEYS = {
    "name",
    "description",
    "start",
    "case",
    "steps",
    "given",
    "advance",
    "expect",
    "skip",
}
EVENT_KEYS = {"event", "at", "data", "case", "id", "rejected"}
EXPECT_KEYS = {
    "case",
    "stage",
    "tier",
    "segment",
    "segments",
    "ended",
    "data",
    "clocks",
    "actions",
    "signals",
    "deadlines",
    "next_wakeup",
}
CLOCK_KEYS = {"status", "breached", "due", "cycle", "elapsed", "remaining", "paused", "target"}
MAIN_PARAM = {
    "notify": "to",
    "send": "template",
    "survey": "survey",
    "assign": "tier",
    "escalate": "tier",
    "task": "task",
    "emit": "name",
    "set": "values",
}


class Where:
    """File positions of a scenario document."""

    def __init__(self, file: str, pos: Any) -> None:
        self.file = file
        self.pos = pos

    def at(self, path: YPath, *, key: bool = False) -> tuple[int, int]:
        if self.pos is None:
            return (0, 0)
        p = self.pos.key(path) if key else self.pos.value(path)
        return (int(p[0]), int(p[1]))

    def failure(
        self,
        scenario: str,
        step: int,
        message: str,
        path: YPath,
        details: list[str] | None = None,
        *,
        key: bool = False,
    ) -> Failure:
        line, col = self.at(path, key=key)
        return Failure(self.file, line, col, scenario, step, message, details or [])


def check_keys(d: Mapping[str, Any], allowed: set[str], path: YPath) -> None:
    import difflib

    for k in d:
        if k not in allowed:
            near = difflib.get_close_matches(str(k), sorted(allowed), n=1)
            hint = (
                f" (did you mean `{near[0]}`?)"
                if near
                else f" (expected one of: {', '.join(sorted(allowed))})"
            )
            raise ScenarioError(f"unknown key `{k}`{hint}", (*path, str(k)), key=True)


def steps_of(sc: Mapping[str, Any], spath: YPath) -> list[tuple[YPath, Mapping[str, Any]]]:
    steps: list[tuple[YPath, Mapping[str, Any]]] = []
    if "steps" in sc:
        if any(k in sc for k in ("given", "advance", "expect")):
            raise ScenarioError(
                "use either `steps:` or the `given`/`advance`/`expect` shorthand", spath
            )
        if not isinstance(sc["steps"], list):
            raise ScenarioError("`steps` is a list", (*spath, "steps"))
        for j, st in enumerate(sc["steps"]):
            steps.append(((*spath, "steps", j), st))
        return steps
    given = sc.get("given", [])
    if not isinstance(given, list):
        raise ScenarioError("`given` is a list of events", (*spath, "given"))
    for j, st in enumerate(given):
        steps.append(((*spath, "given", j), st))
    if "advance" in sc:
        steps.append(((*spath,), {"advance": sc["advance"]}))
    if "expect" in sc:
        steps.append(((*spath,), {"expect": sc["expect"]}))
    return steps


class StepRunner:
    def __init__(self, pb: Playbook, here: Where, name: str, sim: Simulator | None) -> None:
        from carepath.drivers.simulate import Simulator

        self.pb = pb
        self.tz = zone(pb.timezone)
        self.here = here
        self.name = name
        self.sim = sim if sim is not None else Simulator(pb)
        self.now: datetime | None = self.sim.now
        self.default_case = "C-1"
        self.last_case: str | None = None
        self.actions: dict[str, list[Action]] = {}
        self.signals: dict[str, list[Signal]] = {}
        self.n_events = 0

    # -- time ---------------------------------------------------------------------------------
    def instant(self, value: Any, path: YPath) -> datetime:
        from carepath.drivers.simulate import parse_instant
        from carepath.durations import DurationError, add_months, parse_duration

        if isinstance(value, str) and value.strip().startswith("+"):
            if self.now is None:
                raise ScenarioError(
                    f"relative time {value!r} before any instant is known: give the scenario "
                    "a `start:` or the first event an absolute `at`",
                    path,
                )
            try:
                d = parse_duration(value.strip()[1:])
            except DurationError as exc:
                raise ScenarioError(f"bad relative time {value!r}: {exc}", path) from None
            if d.business_days:
                raise ScenarioError(
                    f"relative time {value!r}: business days are not allowed here; use d or h", path
                )
            t = self.now.astimezone(self.tz)
            if d.days or d.months:
                wall = add_months(t.replace(tzinfo=None), d.months)
                t = (wall + timedelta(days=d.days)).replace(tzinfo=self.tz)
            return t + timedelta(seconds=d.seconds)
        try:
            return parse_instant(value, self.tz)
        except ValueError as exc:
            raise ScenarioError(str(exc), path) from None

    def span(self, value: Any, path: YPath) -> float:
        from carepath.durations import DurationError, parse_duration

        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        try:
            d = parse_duration(value)
        except DurationError as exc:
            raise ScenarioError(f"bad duration {value!r}: {exc}", path) from None
        if not d.is_exact:
            raise ScenarioError(
                f"{value!r}: business durations are compared in hours, minutes, seconds", path
            )
        return d.seconds

    def fmt(self, t: datetime | None) -> str:
        return "null" if t is None else t.astimezone(self.tz).isoformat()

    # -- steps --------------------------------------------------------------------------------
    def collect(self, steps: list[Any]) -> None:
        for s in steps:
            key = s.case
            if key is None:
                continue
            if s.step is not None:
                self.actions.setdefault(key, []).extend(s.step.actions)
            self.signals.setdefault(key, []).extend(s.signals)

    def event(self, st: Mapping[str, Any], path: YPath, n: int) -> Failure | None:
        from carepath.errors import CaseError

        check_keys(st, EVENT_KEYS, path)
        etype = st["event"]
        if not isinstance(etype, str) or not etype:
            raise ScenarioError("`event` is an event type such as case.opened", (*path, "event"))
        at = self.instant(st["at"], (*path, "at")) if "at" in st else self.now
        if at is None:
            raise ScenarioError(
                "the first event needs an absolute `at` (or the scenario a `start:`)", path
            )
        data = st.get("data") or {}
        if not isinstance(data, Mapping):
            raise ScenarioError("`data` is a mapping", (*path, "data"))
        case = st.get("case", self.default_case)
        self.n_events += 1
        eid = str(st.get("id", f"e{self.n_events}"))
        try:
            ev = Event(
                id=eid, type=etype, at=at, case=None if case is None else str(case), data=data
            )
        except ValueError as exc:
            raise ScenarioError(str(exc), path) from None
        self.now = at
        self.last_case = ev.case
        want = st.get("rejected", False)
        try:
            steps = self.sim.feed(ev)
        except CaseError as exc:
            msg = str(exc).strip().splitlines()[0]
            if want is True or (isinstance(want, str) and want in msg):
                return None
            if want:
                return self.here.failure(
                    self.name,
                    n,
                    f"{etype} was rejected with another error",
                    (*path, "rejected"),
                    [f"expected: {want}", f"got:      {msg}"],
                )
            return self.here.failure(self.name, n, f"{etype} was rejected", (*path, "event"), [msg])
        self.collect(steps)
        if want:
            return self.here.failure(
                self.name,
                n,
                f"{etype} was accepted, but the step expects it rejected",
                (*path, "rejected"),
            )
        return None

    def advance(self, value: Any, path: YPath) -> None:
        from carepath.durations import DurationError, parse_duration

        if isinstance(value, str) and not value.strip().startswith("+"):
            try:  # `advance: 2h` is `advance: +2h`
                parse_duration(value.strip())
                value = "+" + value.strip()
            except DurationError:
                pass
        t = self.instant(value, path)
        self.collect(self.sim.advance_to(t))
        self.now = t

    # -- expectations ---------------------------------------------------------------------------
    def expect(self, exp: Any, path: YPath, n: int) -> Failure | None:
        if not isinstance(exp, Mapping):
            raise ScenarioError("`expect` is a mapping (stage, clocks, actions…)", path)
        check_keys(exp, EXPECT_KEYS, path)
        key = exp.get("case", self.last_case or self.default_case)
        key = None if key is None else str(key)
        state = self.sim.cases.get(key) if key is not None else None
        problems: list[tuple[YPath, str, list[str]]] = []
        if state is None or key is None:
            return self.here.failure(self.name, n, f"no case {key}: no event opened it", path)
        self.check_state(state, exp, path, problems)
        acts = self.actions.pop(key, [])
        sigs = self.signals.pop(key, [])
        if "actions" in exp:
            self.check_list(
                "actions",
                exp["actions"],
                acts,
                (*path, "actions"),
                problems,
                self.match_action,
                self.show_action,
            )
        if "signals" in exp:
            self.check_list(
                "signals",
                exp["signals"],
                sigs,
                (*path, "signals"),
                problems,
                self.match_signal,
                self.show_signal,
            )
        if "deadlines" in exp:
            dls = self.sim.engine.deadlines(state)
            self.check_list(
                "deadlines",
                exp["deadlines"],
                dls,
                (*path, "deadlines"),
                problems,
                self.match_deadline,
                lambda d: f"{d.kind} {d.name} due {self.fmt(d.due)}",
            )
        if not problems:
            return None
        first = problems[0][0]
        details: list[str] = []
        for p, msg, extra in problems:
            line, _col = self.here.at(p)
            details.append(msg + (f"   (line {line})" if line and len(problems) > 1 else ""))
            details.extend("  " + e for e in extra)
        what = f"case {key}: {len(problems)} expectation(s) not met"
        return self.here.failure(self.name, n, what, first, details)

    def check_state(  # noqa: C901 - one branch per expectation key a scenario may state
        self,
        st: CaseState,
        exp: Mapping[str, Any],
        path: YPath,
        problems: list[tuple[YPath, str, list[str]]],
    ) -> None:
        def cmp(label: str, want: Any, got: Any, p: YPath) -> None:
            if want != got:
                problems.append((p, f"{label}: expected {want!r}, got {got!r}", []))

        for k in ("stage", "tier", "segment", "ended"):
            if k in exp:
                cmp(k, exp[k], getattr(st, k), (*path, k))
        if "segments" in exp:
            cmp("segments", list(exp["segments"] or []), list(st.segments), (*path, "segments"))
        if "next_wakeup" in exp:
            next_wakeup = (
                None
                if exp["next_wakeup"] is None
                else self.instant(exp["next_wakeup"], (*path, "next_wakeup"))
            )
            if next_wakeup != st.next_wakeup:
                problems.append(
                    (
                        (*path, "next_wakeup"),
                        f"next_wakeup: expected {self.fmt(next_wakeup)}, got {self.fmt(st.next_wakeup)}",
                        [],
                    )
                )
        if "data" in exp:
            if not isinstance(exp["data"], Mapping):
                raise ScenarioError("`data` is a mapping of field → value", (*path, "data"))
            for f, want in exp["data"].items():
                got = st.data.get(f)
                if not _equal(want, got):
                    problems.append(
                        (
                            (*path, "data", f),
                            f"data.{f}: expected {want!r}, got {_plain(got)!r}",
                            [],
                        )
                    )
        if "clocks" in exp:
            clocks = exp["clocks"]
            if not isinstance(clocks, Mapping):
                raise ScenarioError(
                    "`clocks` maps a clock name to a status or {status, due…}", (*path, "clocks")
                )
            for cname, cwant in clocks.items():
                want = cwant
                cp: YPath = (*path, "clocks", cname)
                clk = st.clocks.get(cname)
                if clk is None:
                    raise ScenarioError(
                        f"no clock {cname!r} in the playbook (clocks: "
                        f"{', '.join(st.clocks) or 'none'})",
                        cp,
                    )
                if isinstance(want, str):
                    want = {"status": want}
                if not isinstance(want, Mapping):
                    raise ScenarioError("a clock expectation is a status or a mapping", cp)
                check_keys(want, CLOCK_KEYS, cp)
                for attr, w in want.items():
                    ap: YPath = (*cp, attr)
                    label = f"clocks.{cname}.{attr}"
                    if attr == "due":
                        wt = None if w is None else self.instant(w, ap)
                        if wt != clk.due:
                            problems.append(
                                (
                                    ap,
                                    f"{label}: expected {self.fmt(wt)}, got {self.fmt(clk.due)}",
                                    [],
                                )
                            )
                    elif attr in ("elapsed", "remaining", "paused", "target"):
                        got_td: timedelta | None = getattr(clk, attr)
                        ws = None if w is None else self.span(w, ap)
                        gs = None if got_td is None else got_td.total_seconds()
                        if (ws is None) != (gs is None) or (
                            ws is not None and gs is not None and abs(ws - gs) > 1e-6
                        ):
                            problems.append(
                                (
                                    ap,
                                    f"{label}: expected {w!r}, got "
                                    f"{'null' if gs is None else _span_text(gs)}",
                                    [],
                                )
                            )
                    else:
                        cmp(label, w, getattr(clk, attr), ap)

    def check_list(
        self,
        label: str,
        spec: Any,
        got: list[Any],
        path: YPath,
        problems: list[tuple[YPath, str, list[str]]],
        match: Any,
        show: Any,
    ) -> None:
        listing = [f"- {show(g)}" for g in got] or ["(none)"]
        if isinstance(spec, list):
            ok = len(spec) == len(got) and all(
                match(s, g, (*path, i)) for i, (s, g) in enumerate(zip(spec, got, strict=False))
            )
            if not ok:
                wanted = [f"- {_spec_text(s)}" for s in spec] or ["(none)"]
                problems.append(
                    (
                        path,
                        f"{label}: expected exactly {len(spec)}, in order:",
                        [*wanted, f"got {len(got)}:", *listing],
                    )
                )
            return
        if not isinstance(spec, Mapping):
            raise ScenarioError(
                f"`{label}` is a list (exactly these) or {{include: […], exclude: […]}}", path
            )
        check_keys(spec, {"include", "exclude"}, path)
        inc = spec.get("include") or []
        exc = spec.get("exclude") or []
        i = 0
        missing: list[Any] = []
        for j, s in enumerate(inc):
            k = i
            while k < len(got) and not match(s, got[k], (*path, "include", j)):
                k += 1
            if k == len(got):
                missing.append(s)
            else:
                i = k + 1
        if missing:
            problems.append(
                (
                    (*path, "include"),
                    f"{label}: missing (in this order):",
                    [*(f"- {_spec_text(s)}" for s in missing), "got:", *listing],
                )
            )
        for j, s in enumerate(exc):
            hits = [g for g in got if match(s, g, (*path, "exclude", j))]
            if hits:
                problems.append(
                    (
                        (*path, "exclude", j),
                        f"{label}: expected no {_spec_text(s)}, got:",
                        [f"- {show(g)}" for g in hits],
                    )
                )

    def match_action(self, spec: Any, a: Action, path: YPath) -> bool:
        if isinstance(spec, str):
            return a.type == spec
        if not isinstance(spec, Mapping):
            raise ScenarioError(
                "an action is a type (send), {send: template} or {type: send, params: {…}}", path
            )
        rest = dict(spec)
        if "type" in rest:
            if rest.pop("type") != a.type:
                return False
        else:
            verbs = [k for k in rest if k in MAIN_PARAM]
            if len(verbs) != 1:
                raise ScenarioError(
                    "an action needs `type` or exactly one verb key (notify, send, survey, "
                    "assign, escalate, set, task, emit)",
                    path,
                )
            verb = verbs[0]
            arg = rest.pop(verb)
            if verb != a.type:
                return False
            main = a.params.get(MAIN_PARAM[verb])
            if verb == "set":
                if not isinstance(arg, Mapping) or not all(
                    _equal(v, dict(main or {}).get(k)) for k, v in arg.items()
                ):
                    return False
            elif arg is not None and not _equal(arg, main):
                return False
        params = rest.pop("params", None) or {}
        if "at" in rest and self.instant(rest.pop("at"), (*path, "at")) != a.at:
            return False
        if "source" in rest and rest.pop("source") != a.source:
            return False
        params = {**params, **rest}
        return all(_equal(v, a.params.get(k)) for k, v in params.items())

    def show_action(self, a: Action) -> str:
        from carepath.drivers.simulate import describe_action

        return f"{describe_action(a)}  at {self.fmt(a.at)}  [{a.source}]"

    def match_signal(self, spec: Any, s: Signal, path: YPath) -> bool:
        if isinstance(spec, str):
            return s.type == spec
        if not isinstance(spec, Mapping):
            raise ScenarioError("a signal is its type or {type, sla, cycle, at}", path)
        for k, v in spec.items():
            if k == "at":
                if self.instant(v, (*path, "at")) != s.at:
                    return False
            elif k in ("type", "sla", "cycle"):
                if getattr(s, k) != v:
                    return False
            elif not _equal(v, s.data.get(k)):
                return False
        return True

    def show_signal(self, s: Signal) -> str:
        return f"{s.type}  at {self.fmt(s.at)}"

    def match_deadline(self, spec: Any, d: Any, path: YPath) -> bool:
        if not isinstance(spec, Mapping):
            raise ScenarioError("a deadline is {kind, name, due} (any subset)", path)
        check_keys(spec, {"kind", "name", "due"}, path)
        if "kind" in spec and spec["kind"] != d.kind:
            return False
        if "name" in spec and spec["name"] != d.name:
            return False
        return not ("due" in spec and self.instant(spec["due"], (*path, "due")) != d.due)


def _plain(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    return v


def _equal(want: Any, got: Any) -> bool:
    if isinstance(got, datetime):
        if isinstance(want, datetime):
            return want == got
        try:
            return datetime.fromisoformat(str(want)) == got
        except ValueError:
            return False
    if isinstance(want, Mapping) and isinstance(got, Mapping):
        return all(_equal(v, got.get(k)) for k, v in want.items())
    if isinstance(want, bool) or isinstance(got, bool):
        return want is got
    return bool(want == got)


def _span_text(s: float) -> str:
    from carepath.drivers.simulate import format_span

    return format_span(s)


def _spec_text(s: Any) -> str:
    if isinstance(s, Mapping):
        return "{" + ", ".join(f"{k}: {v}" for k, v in s.items()) + "}"
    return str(s)
