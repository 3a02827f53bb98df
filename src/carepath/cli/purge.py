"""``carepath purge PLAYBOOK… --store URL [--now T]`` (SPEC §10).

Applies the playbooks' ``retention`` to the store as of ``--now`` (an ISO instant, local time in
the first playbook's timezone without an offset; default: now): deletes ended cases (one
transaction per case, with their outbox actions), delivered actions and rejected events older
than the playbook keeps them.

Prints the counts: ``purged 2 case(s), 5 action(s), 1 rejected event(s)``, or with ``--format
json`` ``{"cases": 2, "actions": 5, "rejected": 1}``.

Exit codes: 0 done (also when nothing was due), 2 bad arguments, a bad playbook or an unreadable
store.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from carepath._terminal import term_safe

HELP = "delete what the playbooks' retention keeps no longer (ended cases, actions, rejected)"
ORDER = 64


def register(sub: Any) -> None:
    """Add the ``purge`` sub-command."""
    p = sub.add_parser(
        "purge",
        help=HELP,
        description=__doc__.split("\n\n")[1] if __doc__ else HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes: 0 done, 2 bad arguments, a bad playbook or an unreadable store",
    )
    p.add_argument("playbooks", nargs="+", metavar="PLAYBOOK", help="playbook files")
    p.add_argument("--store", required=True, metavar="URL", help="the case store")
    p.add_argument("--now", metavar="T", help="the instant to measure retention back from")
    p.add_argument("--format", "-f", choices=("text", "json"), default="text", help="output format")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run; return the exit code."""
    from carepath.cli.common import load_playbooks
    from carepath.runtime import StoreError, open_store

    playbooks = load_playbooks(args.playbooks)
    if isinstance(playbooks, int):
        return playbooks
    now = time.time()
    if args.now is not None:
        from carepath._instants import zone
        from carepath.drivers.simulate import parse_instant

        try:
            now = parse_instant(args.now, zone(playbooks[0].timezone)).timestamp()
        except ValueError as exc:
            print(term_safe(f"carepath: --now: {exc}"), file=sys.stderr)
            return 2
    try:
        store = open_store(args.store, create=False)
    except (StoreError, OSError, ValueError) as exc:
        print(term_safe(f"carepath: --store: {exc}"), file=sys.stderr)
        return 2
    try:
        done = store.purge(playbooks, now)
    finally:
        store.close()
    if args.format == "json":
        print(json.dumps(done.to_dict()))
    else:
        print(
            f"purged {done.cases} case(s), {done.actions} action(s), "
            f"{done.rejected} rejected event(s)"
        )
    return 0
