"""Allocation to agents (SPEC §10): the roster, and the one rule that picks an agent.

A roster is a YAML or JSON list of agents ``{id, name?, tiers, skills?, capacity?, calendar?,
active?}`` (:func:`load_roster` reads a file, :func:`parse_roster` a list already in memory).
:func:`choose` is the pure rule the runtime's allocator and the replay behind ``simulate`` and
``report`` share, so both pick the same agent for the same load:

* the tier's agents are those whose ``tiers`` hold it, in roster order; inactive agents, agents
  at ``capacity`` (open assigned cases) and agents outside their calendar's open hours are skipped;
* ``round_robin`` takes the first free agent after the one chosen last in that tier, wrapping;
* ``least_loaded`` the free agent with the fewest open assigned cases (ties in roster order);
* ``skills`` only free agents with every listed skill, then least loaded.

>>> roster = parse_roster([
...     {"id": "an", "tiers": ["L1"], "capacity": 1},
...     {"id": "binh", "tiers": ["L1"], "skills": ["elder"]},
... ])
>>> choose(roster, "L1", "round_robin", (), {}, last="an").id
'binh'
>>> choose(roster, "L1", "least_loaded", (), {"an": 1}).id
'binh'
>>> choose(roster, "L1", "skills", ("elder", "vi"), {}) is None
True
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carepath.errors import DefinitionError

__all__ = [
    "QUEUED",
    "Agent",
    "Roster",
    "RosterError",
    "check_roster",
    "choose",
    "load_roster",
    "parse_roster",
    "roster_of",
]

QUEUED = "assign.queued"
"""The signal raised when nobody of the tier is free: the allocator tries again at the next poll."""

_KEYS = ("id", "name", "tiers", "skills", "capacity", "calendar", "active")


class RosterError(DefinitionError):
    """A roster that cannot be used; the message names the file, the agent and the key."""


@dataclass(frozen=True, slots=True)
class Agent:
    """One agent of the roster. ``capacity`` ``None``: no limit."""

    id: str
    name: str | None
    tiers: tuple[str, ...]
    skills: frozenset[str] = frozenset()
    capacity: int | None = None
    calendar: str | None = None
    active: bool = True


Roster = tuple[Agent, ...]
"""The agents, in roster order."""


def _names(value: Any, where: str, key: str, *, required: bool) -> tuple[str, ...]:
    if value is None and not required:
        return ()
    if isinstance(value, str):
        value = [value]
    if (
        not isinstance(value, list)
        or (required and not value)
        or not all(isinstance(v, str) and v for v in value)
    ):
        raise RosterError(
            f"{where}: `{key}` must be a {'non-empty ' if required else ''}list of names"
        )
    return tuple(value)


def parse_roster(items: Any, source: str = "roster") -> Roster:
    """Check a roster (a list of agent mappings) and return it; :class:`RosterError` names the
    place (``source``, the agent's position and id, the key) and what was expected."""
    if not isinstance(items, list):
        raise RosterError(
            f"{source}: a roster is a list of agents ({{id, tiers, …}}), got {type(items).__name__}"
        )
    out: list[Agent] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"{source}: agent {i + 1}"
        if not isinstance(item, Mapping):
            raise RosterError(f"{where}: expected a mapping {{id, tiers, …}}, got {item!r}")
        unknown = [k for k in item if k not in _KEYS]
        if unknown:
            raise RosterError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(_KEYS)}")
        aid = item.get("id")
        if not isinstance(aid, str) or not aid:
            raise RosterError(f"{where}: `id` must be a non-empty string, got {aid!r}")
        where = f"{where} ({aid})"
        if aid in seen:
            raise RosterError(f"{where}: id {aid!r} is given twice")
        seen.add(aid)
        name = item.get("name")
        if name is not None and not isinstance(name, str):
            raise RosterError(f"{where}: `name` must be a string")
        capacity = item.get("capacity")
        if capacity is not None and (
            not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 0
        ):
            raise RosterError(f"{where}: `capacity` must be a whole number ≥ 0, got {capacity!r}")
        calendar = item.get("calendar")
        if calendar is not None and (not isinstance(calendar, str) or not calendar):
            raise RosterError(f"{where}: `calendar` must be the name of a calendar of the playbook")
        active = item.get("active", True)
        if not isinstance(active, bool):
            raise RosterError(f"{where}: `active` must be true or false, got {active!r}")
        out.append(
            Agent(
                aid,
                name,
                _names(item.get("tiers"), where, "tiers", required=True),
                frozenset(_names(item.get("skills"), where, "skills", required=False)),
                capacity,
                calendar,
                active,
            )
        )
    return tuple(out)


def load_roster(path: str | os.PathLike[str]) -> Roster:
    """Read a roster file: JSON (``.json``) or YAML (anything else, JSON being YAML too)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RosterError(f"{p}: cannot read the roster: {exc}") from exc
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise RosterError(f"{p}: not JSON: {exc}") from exc
    else:
        from carepath.errors import YamlError
        from carepath.loading.yaml import load_yaml

        try:
            data, _ = load_yaml(text)
        except YamlError as exc:
            first = exc.problems[0]
            raise RosterError(f"{p}:{first.line}:{first.col}: {first.message}") from exc
    return parse_roster(data, str(p))


def roster_of(value: Any) -> Roster:
    """``Runtime(..., roster=…)``: a path, a list of agent mappings, or a roster already read
    (``None``: no roster)."""
    if value is None:
        return ()
    if isinstance(value, tuple) and all(isinstance(a, Agent) for a in value):
        return value
    if isinstance(value, str | os.PathLike):
        return load_roster(value)
    return parse_roster(list(value))


def check_roster(roster: Roster, tiers: set[str], calendars: Sequence[set[str]]) -> None:
    """Every agent's tiers are tiers of some playbook, and its calendar a calendar of every
    playbook (the allocator reads it in the case's playbook); :class:`RosterError` otherwise."""
    for i, a in enumerate(roster):
        where = f"agent {i + 1} ({a.id})"
        for t in a.tiers:
            if t not in tiers:
                raise RosterError(
                    f"{where}: tier {t!r} is not a tier of the playbooks "
                    f"({', '.join(sorted(tiers)) or 'none'})"
                )
        if a.calendar is not None:
            for names in calendars:
                if a.calendar not in names:
                    raise RosterError(
                        f"{where}: calendar {a.calendar!r} is not a calendar of the playbook "
                        f"({', '.join(sorted(names)) or 'none'})"
                    )


def choose(
    roster: Roster,
    tier: str,
    strategy: str,
    skills: Sequence[str],
    loads: Mapping[str, int],
    *,
    last: str | None = None,
    is_open: Callable[[Agent], bool] | None = None,
) -> Agent | None:
    """The agent SPEC §10's rule picks, or ``None`` when nobody is free. ``loads``: open
    assigned cases per agent id; ``last``: the agent chosen last in this tier (round robin);
    ``is_open(agent)``: whether the agent's calendar is open now (default: always)."""
    team = [a for a in roster if tier in a.tiers]

    def free(a: Agent) -> bool:
        return (
            a.active
            and (a.capacity is None or loads.get(a.id, 0) < a.capacity)
            and (is_open is None or a.calendar is None or is_open(a))
        )

    if strategy == "round_robin":
        ids = [a.id for a in team]
        start = ids.index(last) + 1 if last in ids else 0
        for a in team[start:] + team[:start]:
            if free(a):
                return a
        return None
    want = set(skills) if strategy == "skills" else set()
    best: Agent | None = None
    for a in team:
        if (
            want <= a.skills
            and free(a)
            and (best is None or loads.get(a.id, 0) < loads.get(best.id, 0))
        ):
            best = a
    return best
