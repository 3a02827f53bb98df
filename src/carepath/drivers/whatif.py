"""The what-if of a change of SLA targets, replayed only where the change can reach (issue 17).

The usual what-if (``carepath report --compare OTHER``) asks what one change of targets would
have done: "a 5-minute first response for VIP chats instead of 10". :func:`changed_targets` says
whether two playbooks differ only so — in the ``within`` or ``calendar`` of some SLA targets and
in the thresholds of some SLAs (besides what no replay reads: version, title, description, owner,
goals, staffing) — and which targets those are.

Then a case that never selects one of those targets has the same steps under both playbooks: the
targets it selects are the same, so are its due times, thresholds, breaches and records, and so
is everything its stages do. The engine notes every case that selects one
(:meth:`~carepath.engine.engine.Engine.watch_targets`, on both engine backends), so a replay of
the first playbook learns the set ``D`` of the cases the change can reach. The second playbook's
replay is then the first one without the cases of ``D``, plus a replay of only the cases of
``D`` under the second playbook (:func:`rest_part` takes the first apart;
:func:`~carepath.drivers.shard.replay_sharded` puts the parts together as it merges its workers'
shares). Where the rest of the log could still tell the playbooks apart — an id met again in
a reached case and in another, an event of a reached case that one playbook rejects and the
other does not (:func:`consistent`) — the share is replayed whole under the second playbook
instead. The result is byte for byte the report of two whole replays; the tests
compare both on generated logs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from carepath.drivers.replay import Keys

if TYPE_CHECKING:
    from carepath.compile.ir import Playbook

__all__ = ["changed_targets", "consistent", "rest_part"]

#: Keys of a playbook that no replay reads (the report shows them): they may differ.
_UNREAD = ("version", "title", "description", "owner", "goals", "staffing")


def changed_targets(a: Playbook, b: Playbook) -> dict[str, frozenset[int]] | None:
    """The targets (indexes, by SLA name) in which ``b`` differs from ``a``, when that and what
    no replay reads is all they differ in (``{}``: the replays are the same); ``None`` otherwise.

    A target differs when its ``within`` or ``calendar`` does; when an SLA's thresholds differ,
    every target of that SLA does (a threshold is a share of, or an offset from, the target the
    case selected). Targets must keep their ``when``, and SLAs their order and everything else.
    """
    if a.id != b.id or a.timezone != b.timezone:
        return None
    da = a.spec.model_dump(mode="json", by_alias=True)
    db = b.spec.model_dump(mode="json", by_alias=True)
    slas_a, slas_b = da.pop("slas", None) or {}, db.pop("slas", None) or {}
    for key in _UNREAD:
        da.pop(key, None)
        db.pop(key, None)
    if da != db or list(slas_a) != list(slas_b):
        return None
    changed: dict[str, frozenset[int]] = {}
    for name, sa in slas_a.items():
        sb = slas_b[name]
        ta, tb = sa.pop("targets"), sb.pop("targets")
        tha, thb = sa.pop("thresholds"), sb.pop("thresholds")
        if sa != sb or len(ta) != len(tb):
            return None
        if any(x["when"] != y["when"] for x, y in zip(ta, tb, strict=True)):
            return None
        if tha != thb:
            indexes = frozenset(range(len(ta)))
        else:
            indexes = frozenset(i for i, (x, y) in enumerate(zip(ta, tb, strict=True)) if x != y)
        if indexes:
            changed[name] = indexes
    return changed


def consistent(whole: Keys, first: Keys, second: Keys, reached: set[str]) -> bool:
    """Whether the replays of the cases ``reached`` alone under the first and the second
    playbook (the keys of their replays, ``first`` and ``second``, as their lines were fed)
    leave the rest of the log as the first playbook's replay of it all (``whole``) has it:

    * the same events rejected by both (an event that one takes and the other rejects would
      decide a later duplicate of its id differently);
    * every id met again only in one case, or in cases that are all reached or all not: a
      duplicate is decided by the id met first, so an id shared by a reached case and another
      would let a change in one decide the other; and the reached cases alone meet the same
      duplicates as within the whole log.
    """
    if first.rejected != second.rejected:
        return False
    sides: dict[str, set[bool]] = {}
    for eid, case in whole.repeated:
        sides.setdefault(eid, set()).add(case in reached)
    if any(len(s) > 1 or (s == {False} and eid in first.seen) for eid, s in sides.items()):
        return False
    inside = Counter(eid for eid, case in whole.repeated if case in reached)
    return inside == Counter(e for e, _ in first.repeated) == Counter(e for e, _ in second.repeated)


def rest_part(
    whole: dict[str, Any],
    reached: dict[str, Any],
    without: Callable[[Any, Any], Any] | None = None,
) -> dict[str, Any] | None:
    """The exported part of ``whole`` (a replay of a share of the cases under the first
    playbook) without the cases of ``reached`` (the replay of some of those cases alone, under
    the same playbook), or None when ``reached`` is not contained in ``whole`` as it should be.
    ``without(whole_facts, reached_facts)`` takes the reached cases out of what the replay's
    sink saw (``Collector.without``); a sink that saw something and cannot: None.

    A fact belongs to the case of the event it came from: one event reaches one case, so the
    facts of ``whole`` whose merge key (:class:`~carepath.drivers.replay.Keys`) is among those of
    ``reached`` are the reached cases' facts."""
    wk, rk = whole["keys"], reached["keys"]
    out = dict(whole)
    keys = Keys()
    keys.seen, keys.last = wk.seen, wk.last
    for name in ("breaches", "opened", "rejected"):
        drop = set(getattr(rk, name))
        pairs = [
            (x, k) for x, k in zip(whole[name], getattr(wk, name), strict=True) if k not in drop
        ]
        if len(pairs) != len(whole[name]) - len(reached[name]):
            return None
        out[name] = [x for x, _ in pairs]
        setattr(keys, name, [k for _, k in pairs])
    drop = set(rk.records)
    kept = [i for i, k in enumerate(wk.records) if k not in drop]
    if len(kept) != len(wk.records) - len(rk.records):
        return None
    out["records"] = whole["records"].take(kept)
    keys.records = [wk.records[i] for i in kept]
    out["keys"] = keys
    for name in ("n_events", "duplicates", "cases"):
        out[name] = whole[name] - reached[name]
    actions = Counter(whole["actions"])
    actions.subtract(reached["actions"])
    if any(v < 0 for v in actions.values()):
        return None
    out["actions"] = {k: v for k, v in actions.items() if v > 0}
    if whole["facts"] is not None:
        facts = None if without is None else without(whole["facts"], reached["facts"])
        if facts is None:
            return None
        out["facts"] = facts
    return out
