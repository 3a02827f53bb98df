"""``carepath generate [retail|journey] [--days N] [--seed S] [--events N] [-o FILE]``: realistic event logs."""

from __future__ import annotations

import argparse
import sys
from typing import Any

HELP = (
    "write a realistic, deterministic event log for the example playbooks (demo, docs, benchmarks)"
)
ORDER = 90


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "generate",
        help=HELP,
        description=HELP + ". The retail log has a Tết peak of "
        "about 5,000 contacts a day against about 1,000 on usual days.",
    )
    p.add_argument(
        "kind",
        nargs="?",
        choices=("retail", "journey"),
        default="retail",
        help="retail: for the vn-retail-support example; journey: for omnichannel-journey "
        "(carepath init --example NAME DIR writes the playbook)",
    )
    p.add_argument("--start", default="2026-11-01", help="first local date (default 2026-11-01)")
    p.add_argument("--days", type=int, default=150, help="number of days (default 150)")
    p.add_argument(
        "--base", type=float, default=1000.0, help="contacts on a usual weekday (default 1000)"
    )
    p.add_argument(
        "--peak", type=float, default=5000.0, help="contacts on the Tết peak day (default 5000)"
    )
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument("--events", type=int, default=None, help="stop after this many events")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default standard output)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from datetime import date

    from carepath.drivers.generate import generate, write_jsonl

    try:
        start = date.fromisoformat(args.start)
    except ValueError:
        print(
            f"carepath generate: --start {args.start!r} is not a date (YYYY-MM-DD)", file=sys.stderr
        )
        return 2
    try:  # the arguments are checked at once, before a file is opened
        events = generate(
            args.kind,
            start=start,
            days=args.days,
            base=args.base,
            peak=args.peak,
            seed=args.seed,
            max_events=args.events,
        )
    except ValueError as exc:
        print(f"carepath generate: {exc}", file=sys.stderr)
        return 2
    try:
        n = write_jsonl(events, args.output or sys.stdout)
    except OSError as exc:  # a folder, a missing folder, a full disk
        print(
            f"carepath generate: cannot write {args.output or 'standard output'}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 2
    print(f"carepath generate: {n} events", file=sys.stderr)
    return 0
