"""``carepath flink PLAYBOOK… --events FILE --out DIR``: the same run on Apache Flink (SPEC §7).

The events file is read by a Flink file source on a local mini-cluster (PyFlink, the ``flink``
extra, Java 17); each event goes to every playbook, keyed by the playbook's ``start.key``, and a
keyed function runs the engine per case with a timer at its next wake-up. Time is event time: it
ends as ``carepath run --clock simulated`` ends it — at ``--until``, or at the last event — so for
the same events and ``--until`` the outputs equal that run's.

Writes ``DIR/actions.jsonl`` (the action objects, as ``carepath run --actions`` writes them),
``DIR/states.jsonl`` (the final ``CaseState.to_json()`` of each case, one a line) and
``DIR/rejected.jsonl`` (``{event, reason, message, playbook}``). The summary on standard error
separates the start-up (until the first event enters the job) and the shutdown (after the last
case was handled: the last checkpoint, the workers stopping) from the rate between. Exit codes:
0 ok (rejected events included), 1 an invalid playbook, 2 bad arguments, unreadable files or
PyFlink/Java missing, 3 the job failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HELP = "run playbooks on Apache Flink (PyFlink, local mini-cluster): actions and final states"
ORDER = 65


def register(sub: Any) -> None:
    """Add the ``flink`` sub-command."""
    p = sub.add_parser(
        "flink",
        help=HELP,
        description=__doc__.split("\n\n")[0] if __doc__ else HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes: 0 ok, 1 invalid playbook, 2 bad arguments, unreadable file or "
        "PyFlink/Java missing, 3 the job failed",
    )
    p.add_argument("playbooks", nargs="+", metavar="PLAYBOOK", help="playbook files")
    p.add_argument("--events", required=True, metavar="FILE", help="JSON lines of events")
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="where to write actions.jsonl, states.jsonl, rejected.jsonl",
    )
    p.add_argument(
        "--until",
        metavar="T",
        help="after the last event, go on to T (ISO 8601; without an offset, local time in the "
        "first playbook's timezone)",
    )
    p.add_argument(
        "--parallelism", type=int, default=1, metavar="N", help="parallel subtasks (default: 1)"
    )
    p.add_argument(
        "--out-of-orderness",
        type=int,
        default=0,
        metavar="MS",
        help="how late (ms) an event may arrive after a later one and still be applied in `at` "
        "order (default: 0: the file is in time order)",
    )
    p.add_argument(
        "--checkpoint-interval",
        type=int,
        default=1000,
        metavar="MS",
        help="checkpoint every MS milliseconds (default: 1000; 0 turns checkpoints off)",
    )
    p.add_argument(
        "--state-backend",
        choices=("hashmap", "rocksdb"),
        default=None,
        help="keyed state backend (default: Flink's, hashmap)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no summary on standard error")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the job; return the exit code."""
    from carepath.cli.common import load_playbooks, parse_until
    from carepath.flink import available

    if args.parallelism < 1:
        print("carepath: --parallelism must be at least 1", file=sys.stderr)
        return 2
    if args.out_of_orderness < 0:
        print("carepath: --out-of-orderness must be ≥ 0", file=sys.stderr)
        return 2
    playbooks = load_playbooks(args.playbooks)
    if isinstance(playbooks, int):
        return playbooks
    until = parse_until(args.until, playbooks)
    if not Path(args.events).is_file():
        print(f"carepath: {args.events}: no such file", file=sys.stderr)
        return 2
    why = available()
    if why is not None:
        print(f"carepath: flink: {why}", file=sys.stderr)
        return 2
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"carepath: --out: {exc.strerror or exc}", file=sys.stderr)
        return 2

    from carepath.flink.job import JobOptions, run_file

    opts = JobOptions(out_of_orderness_ms=args.out_of_orderness)
    try:
        res = run_file(
            args.playbooks,
            args.events,
            until=until,
            options=opts,
            parallelism=args.parallelism,
            checkpoint_ms=args.checkpoint_interval or None,
            state_backend=args.state_backend,
        )
    except Exception as exc:
        text = str(exc).strip().splitlines()
        print(
            f"carepath: flink: the job failed: {type(exc).__name__}: {text[0] if text else ''}",
            file=sys.stderr,
        )
        return 3
    actions = sorted(res.actions, key=_action_order)
    states = sorted(res.states, key=_state_order)
    (out / "actions.jsonl").write_text("".join(a + "\n" for a in actions), encoding="utf-8")
    (out / "states.jsonl").write_text("".join(s + "\n" for s in states), encoding="utf-8")
    (out / "rejected.jsonl").write_text("".join(r + "\n" for r in res.rejected), encoding="utf-8")
    if not args.quiet:
        print(
            f"carepath flink: {len(actions)} actions, {len(states)} cases, {len(res.rejected)} rejected events; "
            f"parallelism {args.parallelism}{_where(res)}; {_timing(res)} → {out}",
            file=sys.stderr,
        )
    return 0


def _where(res: Any) -> str:
    """`` (Python in one process)`` or `` (a Python process per subtask)``."""
    if res.workers == "loopback":
        return " (Python in one process)"
    if res.workers == "process":
        return " (a Python process per subtask)"
    return ""


def _timing(res: Any) -> str:
    """``start-up S s, then N events in T s (R events/s), shutdown U s``: the rate after the
    start-up and before the shutdown (``carepath.flink.job.RunResult``)."""
    startup, steady, rate, shutdown = res.startup_s, res.steady_s, res.rate, res.shutdown_s
    if startup is None or steady is None:  # no event entered the job
        return f"{res.seconds:.1f} s"
    each = f" ({rate:,.0f} events/s)" if rate is not None else ""
    end = f", shutdown {shutdown:.1f} s" if shutdown is not None else ""
    return f"start-up {startup:.1f} s, then {res.events:,} events in {steady:.2f} s{each}{end}"


def _action_order(line: str) -> tuple[float, str, str, str]:
    from carepath._instants import from_iso

    d = json.loads(line)
    return (from_iso(d["at"]), d["playbook"], d["case"], d["id"])


def _state_order(line: str) -> tuple[str, str]:
    d = json.loads(line)
    return (d["playbook"]["id"], d["case"])
