"""Model → compiled playbook: resolved references, compiled conditions, built calendars.

:func:`compile_playbook` builds the immutable :class:`~carepath.compile.ir.Playbook` (with a
content hash) that the engines read. Reference and expression problems are reported into the
loader's reporter with their paths.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from carepath.compile.calendars import (
    check_customer_timezone,
    compile_calendars,
    customer_calendars,
)
from carepath.compile.channels import (
    CONSENT_PREFIX,
    FEEDBACK_FAILED,
    OPT_EVENTS,
    compile_channels,
    consent_channels,
)
from carepath.compile.content import content_hash
from carepath.compile.ir import (
    AGENT_ASSIGNED,
    ASSIGNEE,
    ActionDef,
    ChannelDef,
    ClockDef,
    HandlerDef,
    PauseDef,
    Playbook,
    ScheduleDef,
    SetValue,
    StageDef,
    StartDef,
    TargetDef,
    ThresholdDef,
    TimerDef,
    TriggerDef,
)
from carepath.compile.personal import personal_data
from carepath.durations import DurationError, parse_duration
from carepath.errors import DefinitionError, ExpressionError
from carepath.expr.compiler import Expr, compile_expr
from carepath.expr.types import (
    BOOL,
    DATETIME,
    DURATION,
    EVENT_BUILTINS,
    STRING,
    FieldType,
    TypeEnv,
    assignable,
    coerce,
    describe,
)
from carepath.lint.goals import check_goals

if TYPE_CHECKING:
    from carepath.calendar.business import Calendar
    from carepath.loading.source import Reporter
    from carepath.model import ActionSpec, PlaybookSpec
    from carepath.model.actions import AssignSpec

__all__ = ["compile_playbook"]

CLOCK_STATUSES = ("pending", "running", "paused", "met", "breached", "cancelled")
NOTIFY_SPECIAL = ("assignee", "customer")
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


# --------------------------------------------------------------------------------------------
class _Compiler:
    def __init__(self, spec: PlaybookSpec, rep: Reporter) -> None:
        self.spec = spec
        self.rep = rep
        self.stage_names = list(spec.stages)
        self.tiers = list(spec.tiers)
        self.roles = {t.role for t in spec.tiers.values() if t is not None and t.role is not None}
        self.calendar_names = ["always", *spec.calendars]
        self.fields: dict[str, FieldType] = {}
        self.defaults: dict[str, Any] = {}
        self.events: dict[str, dict[str, tuple[FieldType, Any, bool]]] = {}
        self.event_types: set[str] = set()
        self.consent: dict[str, FieldType] = {}

    # -- helpers -------------------------------------------------------------------------------
    def hint(self, word: str, options: list[str]) -> str | None:
        close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
        return (
            f"did you mean {close[0]!r}?"
            if close
            else (f"known: {', '.join(options)}" if options and len(options) <= 12 else None)
        )

    def env(self, event_type: str | None = None) -> TypeEnv:
        payload = None
        if event_type is not None and event_type in self.events:
            payload = {k: v[0] for k, v in self.events[event_type].items()}
        return TypeEnv(fields=self.fields, event=payload, specials=self.specials)

    def expr(
        self,
        src: Any,
        path: tuple[str | int, ...],
        env: TypeEnv,
        *,
        want: FieldType | None = BOOL,
        shift: int = 0,
    ) -> Expr | None:
        try:
            return compile_expr(src, env, want=want)
        except ExpressionError as exc:
            text = (
                ("=" * shift + src) if isinstance(src, str) else None
            )  # the scalar (`=` of a set)
            self.rep.add(
                exc.code, str(exc), path, offset=exc.offset + shift, value=text, hint=exc.hint
            )
            return None

    def check_recipient(
        self, name: str, path: tuple[str | int, ...], special: tuple[str, ...]
    ) -> None:
        """CP302: where the playbook declares tiers, ``notify`` and ``task.for`` name a tier, a
        tier's ``role`` or one of ``special``. Without tiers, recipients are the host's to define."""
        if not self.tiers or name in self.tiers or name in self.roles or name in special:
            return
        options = [*self.tiers, *sorted(self.roles), *special]
        self.rep.add(
            "CP302",
            f"unknown tier or role {name!r}",
            path,
            hint=self.hint(name, options)
            or "declare it under `tiers` (a tier, or a tier's `role`)",
        )

    def check_ref(
        self,
        value: str | None,
        options: list[str],
        code: str,
        what: str,
        path: tuple[str | int, ...],
        extra: tuple[str, ...] = (),
    ) -> None:
        if value is None or value in options or value in extra:
            return
        section = {
            "CP301": "stages",
            "CP302": "tiers",
            "CP303": "calendars",
            "CP304": "channels",
            "CP305": "segments",
            "CP306": "templates",
            "CP308": "slas",
        }.get(code, "")
        if (section, value) in self.rep.tainted:
            return  # the entry exists but the schema rejected it: reported there already
        self.rep.add(
            code, f"unknown {what} {value!r}", path, hint=self.hint(value, options + list(extra))
        )

    # -- sections ------------------------------------------------------------------------------
    def compile_fields(self) -> None:
        path: tuple[str | int, ...]
        for name, f in self.spec.fields.items():
            path = ("fields", name)
            ft = self.field_type(f, path)
            if ft is None:
                continue
            self.fields[name] = ft
            if f.default is not None:
                ok, val = coerce(f.default, ft)
                if ok:
                    self.defaults[name] = val
                else:
                    self.rep.add(
                        "CP203",
                        f"default {f.default!r} is not a valid {describe(ft)}",
                        (*path, "default"),
                    )
        for ev, payload in self.spec.events.items():
            self.event_types.add(ev)
            out: dict[str, tuple[FieldType, Any, bool]] = {}
            for name, f in (payload or {}).items():
                path = ("events", ev, name)
                ft = self.field_type(f, path)
                if ft is None:
                    continue
                default = None
                if f.default is not None:
                    ok, default = coerce(f.default, ft)
                    if not ok:
                        self.rep.add(
                            "CP203",
                            f"default {f.default!r} is not a valid {describe(ft)}",
                            (*path, "default"),
                        )
                out[name] = (ft, default, f.default is None)
            self.events[ev] = out

    def field_type(self, f: Any, path: tuple[str | int, ...]) -> FieldType | None:
        if f.type == "enum":
            if not f.values:
                self.rep.add("CP202", "an enum needs `values`", path)
                return None
            return FieldType("enum", tuple(f.values))
        if f.type == "list":
            item = FieldType("enum", tuple(f.values)) if f.values else FieldType(f.item or "string")
            return FieldType("list", (), item)
        return FieldType(f.type)

    def compile_specials(self) -> None:
        sp: dict[str, FieldType] = {
            "stage": FieldType("enum", tuple(self.stage_names)),
            "segment": FieldType("enum", tuple(self.spec.segments))
            if self.spec.segments
            else STRING,
            "segments": FieldType(
                "list",
                (),
                FieldType("enum", tuple(self.spec.segments)) if self.spec.segments else STRING,
            ),
            "tier": FieldType("enum", tuple(self.tiers)) if self.tiers else STRING,
        }
        if "channel" not in self.fields and self.spec.channels:
            sp["channel"] = FieldType("enum", tuple(self.spec.channels))
        sp[ASSIGNEE] = STRING
        self.consent = {CONSENT_PREFIX + ch: BOOL for ch in consent_channels(self.spec)}
        sp.update(self.consent)
        for clock in self.spec.slas:
            sp[f"sla.{clock}.status"] = FieldType("enum", CLOCK_STATUSES)
            sp[f"sla.{clock}.breached"] = BOOL
            sp[f"sla.{clock}.elapsed"] = DURATION
            sp[f"sla.{clock}.remaining"] = DURATION
            sp[f"sla.{clock}.due"] = DATETIME
        self.specials = sp

    def compile_calendars(self) -> dict[str, Calendar]:
        return compile_calendars(self.spec, self.rep)

    def compile_channels(self) -> dict[str, ChannelDef]:
        return compile_channels(self.spec, self.rep, self.calendar_names, self.check_ref)

    def sets(
        self, values: Mapping[str, Any] | None, path: tuple[str | int, ...], env: TypeEnv
    ) -> tuple[SetValue, ...]:
        out: list[SetValue] = []
        for name, value in (values or {}).items():
            p = (*path, name)
            ft = self.fields.get(name) or self.consent.get(name)
            if ft is None:
                self.rep.add(
                    "CP402",
                    f"`set` names undeclared field {name!r}",
                    p,
                    key=True,
                    hint=self.hint(name, list(self.fields)) or "declare it under `fields`",
                )
                continue
            if isinstance(value, str) and value.startswith("="):
                e = self.expr(value[1:], p, env, want=None, shift=1)
                if e is None:
                    continue
                if not assignable(e.type, ft):
                    self.rep.add(
                        "CP403",
                        f"expression gives {describe(e.type)}, field {name!r} is {describe(ft)}",
                        p,
                        offset=1,
                    )
                    continue
                out.append(SetValue(name, None, e, ft))
            else:
                ok, val = coerce(value, ft)
                if not ok:
                    self.rep.add(
                        "CP203",
                        f"{value!r} is not a valid {describe(ft)} for field {name!r}",
                        p,
                        hint="start the value with '=' to write an expression"
                        if isinstance(value, str)
                        else None,
                    )
                    continue
                out.append(SetValue(name, val, None, ft))
        return tuple(out)

    def action(self, a: ActionSpec, path: tuple[str | int, ...], env: TypeEnv) -> ActionDef:
        verb = a.verb
        arg = getattr(a, verb)
        src = _path_text(path)
        params: dict[str, Any] = dict(a.params or {})
        arg = self.verb_arg(a, arg, params, path)
        if a.calendar is not None and a.in_ is None:
            self.rep.add(
                "CP203",
                f"`calendar: {a.calendar}` has no effect: it is the calendar an `in:` delay "
                "counts in, and this action has no `in:`",
                (*path, "calendar"),
                hint="remove it, or add a delay (`in: 2h`); a task's `due` counts in wall-clock time "
                "(`bd`: the case channel's calendar)",
            )
        if a.channel is not None:
            self.check_ref(
                a.channel, list(self.spec.channels), "CP304", "channel", (*path, "channel")
            )
        self.check_ref(
            a.calendar,
            self.calendar_names,
            "CP303",
            "calendar",
            (*path, "calendar"),
            extra=("channel",),
        )
        self.check_ref(
            a.window,
            self.calendar_names,
            "CP303",
            "calendar",
            (*path, "window"),
            extra=("channel",),
        )
        delay = None
        if a.in_ is not None:
            try:
                delay = parse_duration(a.in_, business=a.calendar is not None)
            except DurationError as exc:
                self.rep.add(exc.code, str(exc), (*path, "in"), hint=exc.hint)
        for k in ("channel", "due", "message"):
            if getattr(a, k) is not None:
                params[k] = getattr(a, k)
        if a.for_ is not None:
            params["for"] = a.for_
        sets: tuple[SetValue, ...] = ()
        if verb == "set":
            sets = self.sets(arg, (*path, "set"), env)
            arg = {s.field: s.literal for s in sets if s.expr is None}
        when, fallback = self.delivery(a, path, env)
        return ActionDef(
            verb,
            arg,
            MappingProxyType(params),
            src,
            delay,
            a.calendar,
            a.window,
            a.keep,
            sets,
            when,
            fallback,
        )

    def verb_arg(
        self, a: ActionSpec, arg: Any, params: dict[str, Any], path: tuple[str | int, ...]
    ) -> Any:
        """Check the verb's argument (tier, recipient, template); the compiled argument."""
        verb = a.verb
        if verb == "assign":
            return self.assign(arg, params, path)
        if verb == "escalate":
            self.check_ref(arg, self.tiers, "CP302", "tier", (*path, verb), extra=("next",))
        elif verb == "notify":
            self.check_recipient(arg, (*path, verb), NOTIFY_SPECIAL)
            if arg == ASSIGNEE:
                self.event_types.add(AGENT_ASSIGNED)
        elif verb == "send":
            if self.spec.templates:
                self.check_ref(arg, list(self.spec.templates), "CP306", "template", (*path, verb))
        elif verb == "task" and a.for_ is not None:
            self.check_recipient(a.for_, (*path, "for"), ())
        return arg

    def assign(self, spec: AssignSpec, params: dict[str, Any], path: tuple[str | int, ...]) -> str:
        """``assign``'s tier (checked); a ``strategy`` (and its ``skills``) go into the action's
        params for the runtime's allocator, which answers with ``agent.assigned`` (SPEC §10)."""
        where = (*path, "assign") if spec.strategy is None else (*path, "assign", "tier")
        self.check_ref(spec.tier, self.tiers, "CP302", "tier", where)
        if spec.strategy is not None:  # the model lets `skills` come only with `strategy: skills`
            params["strategy"] = spec.strategy
            params.update({"skills": list(spec.skills)} if spec.skills else {})
            self.event_types.add(AGENT_ASSIGNED)
        return spec.tier

    def delivery(
        self, a: ActionSpec, path: tuple[str | int, ...], env: TypeEnv
    ) -> tuple[Expr | None, tuple[str, ...]]:
        """An action's ``when`` and ``fallback`` channels (SPEC §10)."""
        when = self.expr(a.when, (*path, "when"), env) if a.when is not None else None
        fallback = tuple(a.fallback or ())
        if fallback and a.verb not in ("send", "survey"):
            self.rep.add("CP203", f"`fallback` applies to send and survey, not {a.verb}", path)
        for i, ch in enumerate(fallback):
            self.check_ref(ch, list(self.spec.channels), "CP304", "channel", (*path, "fallback", i))
        if fallback:
            self.event_types.add(FEEDBACK_FAILED)
        return when, fallback

    def actions(
        self, items: list[ActionSpec], path: tuple[str | int, ...], env: TypeEnv
    ) -> tuple[ActionDef, ...]:
        return tuple(self.action(a, (*path, i), env) for i, a in enumerate(items))

    def handlers(
        self, on: Mapping[str, Any], path: tuple[str | int, ...]
    ) -> dict[str, tuple[HandlerDef, ...]]:
        out: dict[str, tuple[HandlerDef, ...]] = {}
        for ev, hs in on.items():
            self.event_types.add(ev)
            env = self.env(ev)
            lst: list[HandlerDef] = []
            for i, h in enumerate(hs):
                hp = (*path, ev, i) if len(hs) > 1 else (*path, ev)
                self.check_ref(
                    h.to,
                    self.stage_names,
                    "CP301",
                    "stage",
                    (*hp, "to") if not isinstance(h.to, str) or len(hs) > 1 else hp,
                )
                when = self.expr(h.when, (*hp, "when"), env) if h.when is not None else None
                lst.append(
                    HandlerDef(
                        ev,
                        h.to,
                        when,
                        self.sets(h.set, (*hp, "set"), env),
                        self.actions(h.do, (*hp, "do"), env),
                        _path_text(hp),
                    )
                )
            out[ev] = tuple(lst)
        return out

    def stages(self) -> dict[str, StageDef]:
        from carepath.calendar.schedule import Schedule

        out: dict[str, StageDef] = {}
        env = self.env()
        for name, st in self.spec.stages.items():
            path: tuple[str | int, ...] = ("stages", name)
            if st is None:
                out[name] = StageDef(name, False, False, (), (), MappingProxyType({}), (), ())
                continue
            timers: list[TimerDef] = []
            for i, t in enumerate(st.after):
                tp = (*path, "after", i)
                self.check_ref(t.to, self.stage_names, "CP301", "stage", (*tp, "to"))
                self.check_ref(
                    t.calendar,
                    self.calendar_names,
                    "CP303",
                    "calendar",
                    (*tp, "calendar"),
                    extra=("channel",),
                )
                self.check_ref(
                    t.window,
                    self.calendar_names,
                    "CP303",
                    "calendar",
                    (*tp, "window"),
                    extra=("channel",),
                )
                try:
                    d = parse_duration(t.in_, business=t.calendar is not None)
                except DurationError:
                    continue  # reported by the schema
                when = self.expr(t.when, (*tp, "when"), env) if t.when is not None else None
                timers.append(
                    TimerDef(
                        i,
                        d,
                        t.to,
                        self.actions(t.do, (*tp, "do"), env),
                        when,
                        t.calendar,
                        t.window,
                        _path_text(tp),
                    )
                )
            scheds: list[ScheduleDef] = []
            for i, s in enumerate(st.every):
                sp = (*path, "every", i)
                self.check_ref(
                    s.window,
                    self.calendar_names,
                    "CP303",
                    "calendar",
                    (*sp, "window"),
                    extra=("channel",),
                )
                try:
                    sched = Schedule(s.cron, self.spec.timezone)
                except (DefinitionError, ValueError) as exc:
                    self.rep.add(
                        "CP203",
                        f"invalid cron expression {s.cron!r}: {exc}",
                        (*sp, "cron"),
                        hint='five fields: minute hour day-of-month month day-of-week, e.g. "0 9 * * MON"',
                    )
                    continue
                when = self.expr(s.when, (*sp, "when"), env) if s.when is not None else None
                scheds.append(
                    ScheduleDef(
                        i,
                        s.cron,
                        sched,
                        s.window,
                        self.actions(s.do, (*sp, "do"), env),
                        when,
                        _path_text(sp),
                    )
                )
            out[name] = StageDef(
                name,
                st.initial,
                st.final,
                self.actions(st.enter, (*path, "enter"), env),
                self.actions(st.exit, (*path, "exit"), env),
                MappingProxyType(self.handlers(st.on, (*path, "on"))),
                tuple(timers),
                tuple(scheds),
            )
        return out

    def trigger(self, t: Any, path: tuple[str | int, ...]) -> TriggerDef | None:
        if t is None:
            return None
        for i, s in enumerate(t.enter):
            self.check_ref(
                s,
                self.stage_names,
                "CP301",
                "stage",
                (*path, "enter", i) if len(t.enter) > 1 else (*path, "enter"),
            )
        self.event_types.update(t.on)
        when = self.expr(t.when, (*path, "when"), self.env()) if t.when is not None else None
        return TriggerDef(frozenset(t.on), frozenset(t.enter), when)

    def clocks(self) -> dict[str, ClockDef]:
        out: dict[str, ClockDef] = {}
        env = self.env()
        for name, c in self.spec.slas.items():
            path: tuple[str | int, ...] = ("slas", name)
            self.check_ref(
                c.calendar,
                self.calendar_names,
                "CP303",
                "calendar",
                (*path, "calendar"),
                extra=("channel",),
            )
            pause = None
            if c.pause is not None:
                for i, s in enumerate(c.pause.in_):
                    self.check_ref(
                        s,
                        self.stage_names,
                        "CP301",
                        "stage",
                        (*path, "pause", "in", i)
                        if len(c.pause.in_) > 1
                        else (*path, "pause", "in"),
                    )
                pw = (
                    self.expr(c.pause.when, (*path, "pause", "when"), env)
                    if c.pause.when is not None
                    else None
                )
                pause = PauseDef(frozenset(c.pause.in_), pw)
            targets: list[TargetDef] = []
            for i, t in enumerate(c.targets):
                tp = (*path, "targets", i)
                self.check_ref(
                    t.calendar,
                    self.calendar_names,
                    "CP303",
                    "calendar",
                    (*tp, "calendar"),
                    extra=("channel",),
                )
                when = self.expr(t.when, (*tp, "when"), env) if t.when is not None else None
                d = parse_duration(t.within, business=True)
                targets.append(
                    TargetDef(
                        i,
                        when,
                        None if d.business_days else d.seconds,
                        d.business_days or None,
                        t.calendar,
                        t.within,
                    )
                )
            if targets and c.targets[-1].when not in (None, True):
                self.rep.add(
                    "CP504",
                    f"the last target of SLA {name!r} has a condition, so some cases have no target",
                    (*path, "targets", len(c.targets) - 1, "when"),
                    hint="end the list with an unconditional target such as {within: 8h}",
                )
            thresholds: list[ThresholdDef] = []
            for i, th in enumerate(c.thresholds):
                tp = (*path, "thresholds", i)
                if th.at.endswith("%"):
                    pct, off = float(th.at[:-1]), None
                else:
                    d = parse_duration(th.at[1:], business=True)
                    pct, off = None, (-d.seconds if th.at.startswith("-") else d.seconds)
                thresholds.append(
                    ThresholdDef(
                        i, pct, off, self.actions(th.do, (*tp, "do"), env), th.at, _path_text(tp)
                    )
                )
            out[name] = ClockDef(
                name,
                self.trigger(c.start, (*path, "start")) or TriggerDef(),
                self.trigger(c.stop, (*path, "stop")),
                pause,
                self.trigger(c.reset, (*path, "reset")),
                self.trigger(c.cancel, (*path, "cancel")),
                c.repeat,
                c.calendar,
                tuple(targets),
                tuple(thresholds),
            )
        return out

    def start(self) -> StartDef | None:
        s = self.spec.start
        if not s.on:
            self.rep.add(
                "CP203",
                "`start.on` lists no event type, so no case can ever begin",
                ("start", "on"),
                hint="name the event that opens a case: `start: {on: case.opened}`",
            )
            return None
        self.event_types.update(s.on)
        env = self.env(s.on[0] if len(s.on) == 1 else None)
        when = self.expr(s.when, ("start", "when"), env) if s.when is not None else None
        key = self.expr(s.key, ("start", "key"), env, want=None)
        md = None
        if s.min_interval is not None:
            md = parse_duration(s.min_interval)
        sets = self.sets(s.set, ("start", "set"), env)
        if key is None:
            return None
        self.check_key_payload(key, s.key, s.on)
        return StartDef(frozenset(s.on), when, key, s.key, sets, s.reentry, md)

    def check_key_payload(self, key: Expr, text: str, start_events: list[str]) -> None:
        """CP402: ``start.key`` reads an event value that a start event does not declare. Such an
        event would have no key: the simulator would skip it and the runtime reject it."""
        for name in sorted(key.names):
            if not name.startswith("event.") or name in EVENT_BUILTINS:
                continue
            value = name[len("event.") :]
            for event in start_events:
                payload = self.events.get(event)
                if payload is not None and (value in payload or value.split(".")[0] in payload):
                    continue
                where = "declares no payload" if payload is None else f"does not declare {value!r}"
                at = text.find(name)
                self.rep.add(
                    "CP402",
                    f"`start.key` reads {name}, but the start event {event!r} {where}, "
                    "so such events would find no case",
                    ("start", "key"),
                    offset=at if at >= 0 else None,
                    value=text,
                    hint=f"declare it: `events: {{{event}: {{{value}: string}}}}`, or key cases by event.case",
                )
                return

    def templates(self) -> None:
        names = set(self.fields) | set(self.specials)
        for tname, t in self.spec.templates.items():
            if t is None:
                continue
            if t.channel is not None:
                self.check_ref(
                    t.channel,
                    list(self.spec.channels),
                    "CP304",
                    "channel",
                    ("templates", tname, "channel"),
                )
            for key in ("subject", "text"):
                text = getattr(t, key)
                if not text:
                    continue
                for m in _PLACEHOLDER.finditer(text):
                    ref = m.group(1).strip()
                    if ref in names or ref.startswith("event.") or ref in ("case", "playbook"):
                        continue
                    self.rep.add(
                        "CP306",
                        f"template placeholder {{{ref}}} names no declared field",
                        ("templates", tname, key),
                        offset=m.start(),
                        value=text,
                        hint=self.hint(ref, sorted(names)),
                    )


def compile_playbook(spec: PlaybookSpec, rep: Reporter, text: str = "") -> Playbook | None:
    """Compile a validated model; report reference and expression problems into ``rep``.

    Returns ``None`` when an error makes a compiled playbook impossible.
    """
    c = _Compiler(spec, rep)
    c.compile_fields()
    c.compile_specials()
    calendars = c.compile_calendars()
    channels = c.compile_channels()
    segs: list[tuple[str, Expr]] = []
    env = c.env()
    for name, cond in spec.segments.items():
        e = c.expr(cond, ("segments", name), env)
        if e is not None:
            segs.append((name, e))
    stages = c.stages()
    root_on = c.handlers(spec.on, ("on",))
    clocks = c.clocks()
    start = c.start()
    c.templates()
    if c.consent:
        c.event_types.update(OPT_EVENTS)
    customer_zone = check_customer_timezone(spec, c.fields, rep, c.hint)
    check_goals(spec, rep)  # from the model: a section that failed to compile hides no goal finding
    exit_on: frozenset[str] = frozenset()
    exit_when = None
    if spec.exit is not None:
        exit_on = frozenset(spec.exit.on)
        c.event_types.update(exit_on)
        exit_when = (
            c.expr(spec.exit.when, ("exit", "when"), env) if spec.exit.when is not None else None
        )
    initials = [n for n, s in spec.stages.items() if s is not None and s.initial]
    if not initials:
        rep.add(
            "CP501",
            "no stage is marked `initial: true`",
            ("stages",),
            key=True,
            hint=f"mark the first stage: {next(iter(spec.stages))}: {{initial: true}}",
        )
    elif len(initials) > 1:
        for n in initials[1:]:
            rep.add(
                "CP502",
                f"stage {n!r} is a second initial stage (the first is {initials[0]!r})",
                ("stages", n, "initial"),
            )
    if rep.has_errors or start is None or not initials:
        return None
    digest = content_hash(spec)
    return Playbook(
        id=spec.id,
        version=str(spec.version),
        content_hash=digest,
        title=spec.title,
        timezone=spec.timezone,
        spec=spec,
        fields=MappingProxyType(dict(c.fields)),
        defaults=MappingProxyType(dict(c.defaults)),
        events=MappingProxyType({k: MappingProxyType(v) for k, v in c.events.items()}),
        calendars=MappingProxyType(calendars),
        channels=MappingProxyType(channels),
        segments=tuple(segs),
        tiers=tuple(spec.tiers),
        start=start,
        stages=MappingProxyType(stages),
        initial=initials[0],
        on=MappingProxyType(root_on),
        exit_on=exit_on,
        exit_when=exit_when,
        clocks=MappingProxyType(clocks),
        event_types=frozenset(c.event_types),
        consent_default=spec.consent_default,
        consent_channels=consent_channels(spec),
        customer_timezone=customer_zone,
        customer_calendars=MappingProxyType(customer_calendars(spec)),
        **personal_data(spec),
    )


def _path_text(path: tuple[str | int, ...]) -> str:
    from carepath.diagnostics import path_str

    return path_str(path)
