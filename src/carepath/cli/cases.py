"""``carepath cases --store URL list|show KEY|rejected|migrate``: the cases of a store (SPEC §7, §9).

``list`` shows every case (stage, tier, next wake-up, clocks with their due times, pending
actions); ``show KEY`` one case's whole state with its outbox items and the rejected events that
name it; ``rejected`` every rejected event with its reason; ``migrate --to PLAYBOOK [--map
OLD=NEW]… [--dry-run]`` moves every open case of that playbook id that runs another version onto
it (in batches, idempotently) and says how many moved and how many now fall due earlier or later.
``--format json`` prints one JSON document on standard output. ``--store`` may stand before or
after the sub-command.

Exit codes: 0 ok, 1 some cases could not be migrated (or ``--to`` is not a valid playbook), 2 an
unknown case (or bad arguments, an unreadable store or playbook file).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from carepath._terminal import json_term_safe, term_safe
from carepath.cli import progress

if TYPE_CHECKING:
    from carepath.runtime import Store
    from carepath.state import CaseState

HELP = "the cases of a store: list, show KEY, rejected, migrate --to PLAYBOOK"
ORDER = 61
DEFAULT_STORE = "sqlite:///cases.db"


def register(sub: Any) -> None:
    """Add the ``cases`` sub-command."""
    p = sub.add_parser(
        "cases",
        help=HELP,
        description=__doc__.split("\n\n")[0] if __doc__ else HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes: 0 ok, 1 cases left unmigrated, 2 unknown case, bad arguments or "
        "unreadable store",
    )
    p.add_argument(
        "--store",
        default=DEFAULT_STORE,
        metavar="URL",
        help=f"the case store (default: {DEFAULT_STORE})",
    )
    p.add_argument(
        "--format", "-f", choices=("table", "json"), default="table", help="output format"
    )
    p.add_argument("--playbook", "-p", metavar="ID", help="only cases of this playbook id")
    sp = p.add_subparsers(dest="cases_command", metavar="COMMAND")
    fmt: dict[str, Any] = {
        "choices": ("table", "json"),
        "default": argparse.SUPPRESS,
        "help": "output format",
    }
    lp = sp.add_parser("list", help="every case")
    lp.add_argument("--format", "-f", **fmt)
    lp.add_argument(
        "--playbook", "-p", metavar="ID", default=argparse.SUPPRESS, help="only this playbook"
    )
    shp = sp.add_parser("show", help="one case: its state, outbox items and rejected events")
    shp.add_argument("key", metavar="KEY", help="the case key")
    shp.add_argument("--format", "-f", **fmt)
    shp.add_argument(
        "--playbook", "-p", metavar="ID", default=argparse.SUPPRESS, help="the case's playbook id"
    )
    rp = sp.add_parser("rejected", help="rejected events with their reasons")
    rp.add_argument("--format", "-f", **fmt)
    mp = sp.add_parser(
        "migrate",
        help="move the open cases of a playbook onto a new version of it",
        description="Move every open case of the playbook's id that runs another version onto "
        "PLAYBOOK (Engine.migrate: clock history kept, due times recomputed), in batches; "
        "running it again moves only what is left.",
    )
    mp.add_argument("--to", required=True, metavar="PLAYBOOK", help="the new playbook file")
    mp.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="rename a stage the new version no longer has (repeatable)",
    )
    mp.add_argument("--dry-run", action="store_true", help="say what would move; write nothing")
    mp.add_argument("--batch", type=int, default=200, metavar="N", help="cases per transaction")
    mp.add_argument("--format", "-f", **fmt)
    progress.add_argument(mp)
    for sub_parser in (lp, shp, rp, mp):
        sub_parser.add_argument(
            "--store", default=argparse.SUPPRESS, metavar="URL", help="the case store"
        )
    p.set_defaults(func=run)


def _iso(x: Any) -> str | None:
    return None if x is None else str(x.isoformat())


def summary(state: CaseState) -> dict[str, Any]:
    """The ``list --format json`` object of a case."""
    parts = getattr(state, "summary_parts", None)
    fast = parts() if parts is not None else None
    if fast is not None:  # a native state, its fields not built: the core's numbers
        from carepath._instants import to_iso, zone

        tz = zone(state.timezone)
        tier, clocks = fast
        return {
            "playbook": state.playbook,
            "case": state.case,
            "stage": state.stage,
            "tier": tier,
            "next_wakeup": to_iso(state.next_wakeup_s, tz),
            "clocks": {n: {"status": s, "due": to_iso(d, tz)} for n, s, d in clocks},
        }
    return {
        "playbook": state.playbook,
        "case": state.case,
        "stage": state.stage,
        "tier": state.tier,
        "next_wakeup": _iso(state.next_wakeup),
        "clocks": {n: {"status": c.status, "due": _iso(c.due)} for n, c in state.clocks.items()},
    }


def _json(doc: Any) -> None:
    sys.stdout.write(json_term_safe(json.dumps(doc, ensure_ascii=False, indent=2)) + "\n")


def _table(rows: list[list[str]], head: list[str]) -> str:
    """An aligned table; every cell made safe for a terminal (ids and data come from events)."""
    rows = [[term_safe(c) for c in r] for r in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines) + "\n"


def _short(x: Any) -> str:
    return (
        "—"
        if x is None
        else str(x.isoformat(timespec="minutes"))
        if hasattr(x, "isoformat")
        else str(x)
    )


def run(args: argparse.Namespace) -> int:
    """Run; return the exit code."""
    from carepath.cli.common import open_read_store
    from carepath.runtime import StoreError

    cmd = args.cases_command or "list"
    if cmd == "migrate":
        return _migrate(args)
    try:
        store = open_read_store(args.store)
    except (StoreError, OSError, ValueError) as exc:
        print(f"carepath: --store: {exc}", file=sys.stderr)
        return 2
    try:
        if cmd == "list":
            return _list(store, args)
        if cmd == "show":
            return _show(store, args)
        return _rejected(store, args)
    finally:
        store.close()


def _list(store: Store, args: argparse.Namespace) -> int:
    cases = store.cases(args.playbook)
    if args.format == "json":
        _json([summary(s) for s in cases])
        return 0
    pending: dict[tuple[str, str], int] = {}
    for it in store.outbox(status="pending"):
        pending[(it.playbook, it.case)] = pending.get((it.playbook, it.case), 0) + 1
    rows = []
    for s in cases:
        clocks = ", ".join(
            f"{n}: {c.status}"
            + (f" due {_short(c.due)}" if c.due is not None and c.is_open else "")
            for n, c in s.clocks.items()
            if c.status != "pending"
        )
        rows.append(
            [
                s.playbook,
                s.case,
                s.stage + (" (ended)" if s.ended else ""),
                s.tier or "—",
                _short(s.next_wakeup),
                str(pending.get((s.playbook, s.case), 0)),
                clocks or "—",
            ]
        )
    sys.stdout.write(
        _table(rows, ["PLAYBOOK", "CASE", "STAGE", "TIER", "NEXT WAKE-UP", "PENDING", "CLOCKS"])
    )
    n_rej = len(store.rejected())
    print(
        f"{len(cases)} case(s)"
        + (f"; {n_rej} rejected event(s): carepath cases rejected" if n_rej else ""),
        file=sys.stderr,
    )
    return 0


def _show(store: Store, args: argparse.Namespace) -> int:
    key = args.key
    found = [s for s in store.cases(args.playbook) if s.case == key]
    rejected = store.rejected(case=key)
    if len(found) > 1:
        names = term_safe(", ".join(s.playbook for s in found))
        print(
            f"carepath: case {key!r} exists in several playbooks ({names}); give --playbook",
            file=sys.stderr,
        )
        return 2
    state = found[0] if found else None
    items = store.outbox(playbook=state.playbook, case=key) if state is not None else []
    if args.format == "json":
        doc = {
            "playbook": None if state is None else state.playbook,
            "case": key,
            "state": None if state is None else state.to_dict(),
            "outbox": [i.to_dict() for i in items],
            "rejected": [r.to_dict() for r in rejected],
        }
        _json(doc)
    else:
        if state is not None:
            _print_state(state)
            if items:
                print("\noutbox:")
                sys.stdout.write(
                    _table(
                        [
                            [
                                i.id,
                                i.type,
                                i.status,
                                str(i.attempts),
                                _short(i.action.at),
                                json.dumps(dict(i.action.params), ensure_ascii=False)[:60],
                            ]
                            for i in items
                        ],
                        ["ID", "TYPE", "STATUS", "ATTEMPTS", "AT", "PARAMS"],
                    )
                )
        if rejected:
            print("\nrejected events:")
            _print_rejected(rejected)
    if state is None:
        print(
            f"carepath: no case {key!r} in {store.url}"
            + (f" for playbook {args.playbook}" if args.playbook else ""),
            file=sys.stderr,
        )
        return 2
    return 0


def _say(line: str) -> None:
    print(term_safe(line))


def _print_state(s: CaseState) -> None:
    _say(f"case {s.case}  ({s.playbook} {s.version})")
    _say(f"  stage        {s.stage}{' (ended)' if s.ended else ''}")
    _say(f"  tier         {s.tier or '—'}")
    _say(f"  segment      {s.segment or '—'}")
    _say(f"  opened       {_short(s.opened)}")
    _say(f"  now          {_short(s.now)}")
    _say(f"  next wake-up {_short(s.next_wakeup)}")
    if s.data:
        print("  data")
        for k, v in s.data.items():
            _say(f"    {k}: {v}")
    if s.clocks:
        print("\nclocks:")
        sys.stdout.write(
            _table(
                [
                    [
                        n,
                        c.status,
                        str(c.cycle),
                        "yes" if c.breached else "no",
                        _short(c.due),
                        str(c.elapsed),
                        "—" if c.target is None else str(c.target),
                    ]
                    for n, c in s.clocks.items()
                ],
                ["CLOCK", "STATUS", "CYCLE", "BREACHED", "DUE", "ELAPSED", "TARGET"],
            )
        )
    if s.pending:
        from carepath._instants import dt, zone

        print("\npending:")
        sys.stdout.write(
            _table(
                [[p.kind, p.ref, _short(dt(p.due, zone(s.timezone)))] for p in s.pending],
                ["KIND", "REF", "DUE"],
            )
        )


def _print_rejected(rej: list[Any]) -> None:
    rows = []
    for r in rej:
        ev = r.event
        what = (
            f"{ev.get('id', '—')} {ev.get('type', '')}".strip()
            if "raw" not in ev
            else "raw: " + str(ev["raw"])[:40]
        )
        rows.append([r["at"] or "—", r.reason, what, r.message[:80]])
    sys.stdout.write(_table(rows, ["RECEIVED", "REASON", "EVENT", "MESSAGE"]))


def _rejected(store: Store, args: argparse.Namespace) -> int:
    rej = store.rejected()
    if args.format == "json":
        _json([r.to_dict() for r in rej])
        return 0
    _print_rejected(rej)
    print(f"{len(rej)} rejected event(s)", file=sys.stderr)
    return 0


def _mapping(pairs: list[str], stages: Any) -> dict[str, str] | str:
    """``--map OLD=NEW`` options as a mapping, or why one is wrong."""
    out: dict[str, str] = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        old, new = old.strip(), new.strip()
        if not sep or not old or not new:
            return f"--map {pair!r}: expected OLD=NEW (two stage names)"
        if new not in stages:
            return f"--map {pair!r}: the new version has no stage {new!r} (stages: {', '.join(stages)})"
        if out.get(old, new) != new:
            return f"--map: stage {old!r} is mapped twice"
        out[old] = new
    return out


def _migrate(args: argparse.Namespace) -> int:
    """``cases migrate``: move the open cases of a playbook onto the version given."""
    from carepath.cli.common import load_playbook
    from carepath.runtime import StoreError, open_store
    from carepath.runtime.migrate import migrate_cases

    if args.batch < 1:
        print("carepath: --batch must be at least 1", file=sys.stderr)
        return 2
    pb = load_playbook(args.to)
    if isinstance(pb, int):
        return pb
    mapping = _mapping(args.map, pb.stages)
    if isinstance(mapping, str):
        print(term_safe(f"carepath: {mapping}"), file=sys.stderr)
        return 2
    try:
        store = open_store(args.store, create=False)
    except (StoreError, OSError, ValueError) as exc:
        print(f"carepath: --store: {exc}", file=sys.stderr)
        return 2
    try:
        with progress.for_args(args, "cases migrate", "cases") as shown:
            report = migrate_cases(
                store,
                pb,
                mapping,
                dry_run=args.dry_run,
                batch=args.batch,
                progress=lambda done, total: shown.update(done, total=total),
            )
    finally:
        store.close()
    if args.format == "json":
        _json(report.to_dict())
    else:
        verb = "would move" if args.dry_run else "moved"
        print(
            term_safe(
                f"{verb} {report.moved} open case(s) of {pb.id} to version {pb.version}: "
                f"{report.earlier} now fall due earlier, {report.later} later, "
                f"{report.unchanged} unchanged"
            )
        )
    for key, why in report.failed[:20]:
        print(term_safe(f"carepath: case {key!r} not moved: {why}"), file=sys.stderr)
    if report.failed:
        more = len(report.failed) - 20
        print(
            f"carepath: {len(report.failed)} case(s) not moved"
            + (f" ({more} more not shown)" if more > 0 else "")
            + "; map their stages with --map OLD=NEW and run the same command again",
            file=sys.stderr,
        )
        return 1
    return 0
