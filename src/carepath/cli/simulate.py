"""``carepath simulate PLAYBOOK EVENTS``: run an event log through the engine, in memory.

Events are JSONL (one event object a line) or YAML (``.yaml``/``.yml``: a list of events). Before
each event, every open case whose next wake-up is strictly before it is woken up (timers, SLA
thresholds, delayed actions, schedules), in time order; ``--until T`` then advances every case
to T. Nothing is stored: this is the designer's view of what a playbook does.

Output: ``--format table`` (default) is a readable timeline — stage changes, each clock's status
and due time, actions and signals — coloured on a terminal (never when NO_COLOR is set);
``--format jsonl`` prints one JSON object per step::

    {"event": {…} | null, "at": "…", "case": "T-1", "state": {…} | null,
     "actions": […], "signals": […], "deadlines": […]}

A wake-up step has ``"event": null`` (``at`` is the wake-up instant); an event that reached no
case (no key, or no open case and it opens none) has ``"state": null`` and an ``ignored``
signal. Bad events (not JSON, missing fields, a payload the playbook rejects, out of order) are
reported on standard error as ``FILE:LINE: …`` and the run goes on.

Exit codes: 0 ok, 1 any bad event or an invalid playbook (its diagnostics are printed on standard
error exactly as ``carepath validate`` prints them), 2 a file that cannot be read or a bad
``--until``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

HELP = "run events through a playbook and show the timeline"
ORDER = 20


def register(sub: Any) -> None:
    """Add the ``simulate`` sub-command."""
    p = sub.add_parser(
        "simulate",
        help=HELP,
        description=__doc__.split("\n\n")[0] if __doc__ else HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes: 0 ok, 1 bad events or an invalid playbook, 2 unreadable file "
        "or bad arguments",
    )
    p.add_argument("playbook", metavar="PLAYBOOK", help="the playbook file")
    p.add_argument(
        "events", metavar="EVENTS", help="events: JSONL, or YAML (.yaml/.yml) holding a list"
    )
    p.add_argument(
        "--until",
        metavar="T",
        help="after the last event, advance every case to T (ISO 8601; without an offset "
        "it is local time in the playbook's timezone)",
    )
    p.add_argument(
        "--format",
        "-f",
        choices=("table", "jsonl"),
        default="table",
        help="output format (default: table)",
    )
    p.add_argument(
        "--roster",
        metavar="FILE",
        help="agents (YAML or JSON) to allocate assign actions with a strategy to, as the "
        "runtime would (SPEC §10)",
    )
    p.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the table (auto: on a terminal, unless NO_COLOR is set)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:  # noqa: C901 - one check per option, in the order the help lists them
    """Run the simulation; return the exit code."""
    from carepath._instants import zone
    from carepath._terminal import json_term_safe, term_safe
    from carepath.cli.common import load_playbook, read_roster
    from carepath.cli.validate import use_color
    from carepath.drivers.simulate import Simulator, Timeline, parse_instant, read_events
    from carepath.errors import CalendarError, CaseError

    pb = load_playbook(args.playbook, color_mode=args.color)
    if isinstance(pb, int):
        return pb
    roster = read_roster(args.roster, [pb])
    if isinstance(roster, int):
        return roster
    until = None
    if args.until is not None:
        try:
            until = parse_instant(args.until, zone(pb.timezone))
        except ValueError as exc:
            print(f"carepath: --until: {exc}", file=sys.stderr)
            return 2
    try:
        events, bad = read_events(args.events)
    except OSError as exc:
        print(f"carepath: {args.events}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as exc:
        print(f"carepath: {args.events}: not UTF-8 text ({exc.reason})", file=sys.stderr)
        return 2
    bad_lines: list[tuple[int, str]] = [(b.line, b.message) for b in bad]
    out = sys.stdout
    table = args.format == "table"
    tl = Timeline(
        pb,
        color=table and use_color(args.color, out),
        case_width=max([8, *(len(e.event.case or "") for e in events)]),
    )
    sim = Simulator(pb, roster=roster or ())
    n_steps = 0

    def emit(steps: list[Any]) -> None:
        nonlocal n_steps
        for s in steps:
            n_steps += 1
            if table:
                out.write(tl.step(s))
            else:
                out.write(
                    json_term_safe(json.dumps(s.to_dict(), ensure_ascii=False, sort_keys=False))
                    + "\n"
                )

    if table:
        out.write(tl.header(len(events), args.events))
    # bad lines are reported in file order, interleaved with the run
    pending_bad = sorted(bad_lines)
    try:
        for el in events:
            while pending_bad and pending_bad[0][0] < el.line:
                _report_bad(args.events, *pending_bad.pop(0))
            try:
                emit(sim.feed(el.event))
            except CaseError as exc:
                msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                _report_bad(args.events, el.line, msg)
                bad_lines.append((el.line, msg))
        for b in pending_bad:
            _report_bad(args.events, *b)
        if until is not None:
            emit(sim.advance_to(until))
    except CalendarError as exc:  # a calendar closed for a year: the playbook cannot go on (exit 1)
        out.flush()
        print(term_safe(f"carepath: {args.playbook}: the run stops: {exc}"), file=sys.stderr)
        return 1
    if table:
        out.write(tl.summary(sim.cases, n_steps, len(bad_lines)))
    out.flush()
    return 1 if bad_lines else 0


def _report_bad(path: str, line: int, message: str) -> None:
    from carepath._terminal import term_safe

    print(term_safe(f"{path}:{line}: bad event: {message}"), file=sys.stderr)
