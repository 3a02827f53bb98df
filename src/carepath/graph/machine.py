"""The compiled stage graph as a ``transitions`` machine (interop, diagrams, test oracle).

``to_machine(playbook)`` returns a :class:`transitions.Machine` whose states are the playbook's
stages and whose triggers are the event types and signals of the handlers (stage handlers first,
then the root ``on:`` handlers, exactly the engine's precedence) and ``after:<timer source>`` for
timers that move the case (``after:stages.waiting_customer.after[2]``). A guard (``when``) becomes
a condition that evaluates the compiled expression against the model's ``data`` and the trigger's
``event`` keyword (a mapping of the event's data), so ``model.trigger("agent.replied",
event={"needs_customer": True})`` picks the same handler as the engine would when the guard reads
only the event and the case data. ``machine.carepath_guards`` maps ``(trigger, source, dest)`` to
the guard's source text.

This is *not* the engine: it knows nothing of clocks, timers' due times, actions or the final-stage
rule. The engine never uses it on its hot path; ``transitions`` is imported lazily, here only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carepath.compile.ir import HandlerDef, Playbook

__all__ = ["to_machine"]


class _Scope:
    def get(self, name: str, default: Any = None) -> Any:
        return default


class _Guard:
    """A transition condition: the handler's compiled ``when``."""

    def __init__(self, when: Any, model: Any) -> None:
        self.when = when
        self.model = model
        self.source: str = getattr(when, "source", str(when))
        self.__name__ = self.source  # what diagrams show

    def __call__(self, *args: Any, **kwargs: Any) -> bool:
        ev = kwargs.get("event")
        view: Mapping[str, Any] = ev if isinstance(ev, Mapping) else {}
        data = getattr(self.model, "data", None)
        return bool(self.when(data if isinstance(data, Mapping) else {}, view, _Scope()) is True)

    def __repr__(self) -> str:
        return self.source


class _Model:
    """The default model: holds the case ``data`` guards read."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}


def _transitions(
    trigger: str,
    source: str,
    hs: tuple[HandlerDef, ...],
    model: Any,
    guards: dict[tuple[str, str, str], str],
) -> list[dict[str, Any]]:
    out = []
    for h in hs:
        dest = h.to if h.to is not None else None  # None: internal (stays, no exit/entry)
        t: dict[str, Any] = {"trigger": trigger, "source": source, "dest": dest}
        if h.when is not None:
            g = _Guard(h.when, model)
            t["conditions"] = [g]
            guards[(trigger, source, dest or source)] = g.source
        out.append(t)
    return out


def to_machine(playbook: Playbook, model: Any = None, **kwargs: Any) -> Any:
    """A ``transitions.Machine`` over ``playbook``'s stage graph.

    ``model`` defaults to a fresh object with a ``data`` dict; extra keyword arguments go to
    ``Machine`` (``auto_transitions`` defaults to ``False``, ``ignore_invalid_triggers`` to
    ``True``, ``queued`` to ``False``). Final stages are ``final`` states.
    """
    from transitions import Machine, State

    if model is None:
        model = _Model()
    guards: dict[tuple[str, str, str], str] = {}
    states = [
        State(name, final=st.final) if _supports_final(State) else State(name)
        for name, st in playbook.stages.items()
    ]
    trans: list[dict[str, Any]] = []
    for name, st in playbook.stages.items():
        if st.final:
            continue
        own = set()
        for trig, hs in st.on.items():
            trans += _transitions(trig, name, hs, model, guards)
            own.add(trig)
        for trig, hs in playbook.on.items():
            # root handlers apply when none of the stage's own handlers match: listed after them
            trans += _transitions(trig, name, hs, model, guards)
        for t in st.after:
            if t.to is not None:
                tr: dict[str, Any] = {"trigger": f"after:{t.source}", "source": name, "dest": t.to}
                if t.when is not None:
                    g = _Guard(t.when, model)
                    tr["conditions"] = [g]
                    guards[(tr["trigger"], name, t.to)] = g.source
                trans.append(tr)
    kwargs.setdefault("auto_transitions", False)
    kwargs.setdefault("ignore_invalid_triggers", True)
    m: Any = Machine(
        model=model, states=states, transitions=trans, initial=playbook.initial, **kwargs
    )
    m.carepath_guards = guards
    m.carepath_playbook = playbook
    return m


def _supports_final(state_cls: Any) -> bool:
    import inspect

    try:
        return "final" in inspect.signature(state_cls.__init__).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False
