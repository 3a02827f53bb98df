"""``carepath erase --store URL (--case KEY | --field PATH --value V) [--playbook ID]`` (SPEC §10).

Replaces every ``pii: true`` value of the selected cases with null: in their states, in the
params of their outbox actions and in their rejected events (a line that was not JSON loses its
raw text). The cases go on running, their clocks untouched. One transaction per case.

Prints the counts, never a value: ``erased 1 case(s): 3 value(s), 2 action(s), 1 rejected
event(s)``, or with ``--format json`` ``{"cases": 1, "values": 3, "actions": 2, "rejected": 1}``.

Exit codes: 0 done (also when ``--field`` matches no case), 2 bad arguments, an unreadable store
or an unknown ``--case``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from carepath._terminal import term_safe

HELP = "erase the personal data (pii: true) of a case, or of the cases whose field equals a value"
ORDER = 63


def register(sub: Any) -> None:
    """Add the ``erase`` sub-command."""
    p = sub.add_parser(
        "erase",
        help=HELP,
        description=__doc__.split("\n\n")[1] if __doc__ else HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes: 0 done, 2 bad arguments, unreadable store or unknown --case",
    )
    p.add_argument("--store", required=True, metavar="URL", help="the case store")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--case", metavar="KEY", help="the case key")
    which.add_argument("--field", metavar="PATH", help="a case field (with --value)")
    p.add_argument("--value", metavar="V", help="the value --field must equal")
    p.add_argument("--playbook", "-p", metavar="ID", help="only cases of this playbook id")
    p.add_argument("--format", "-f", choices=("text", "json"), default="text", help="output format")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run; return the exit code."""
    from carepath.runtime import StoreError, open_store

    if (args.field is None) != (args.value is None):
        print("carepath: --field and --value go together", file=sys.stderr)
        return 2
    try:
        store = open_store(args.store, create=False)
    except (StoreError, OSError, ValueError) as exc:
        print(term_safe(f"carepath: --store: {exc}"), file=sys.stderr)
        return 2
    try:
        done = store.erase(args.case, field=args.field, value=args.value, playbook=args.playbook)
    finally:
        store.close()
    if args.case is not None and done.cases == 0:
        where = f" in playbook {args.playbook!r}" if args.playbook else ""
        print(term_safe(f"carepath: no case {args.case!r}{where}"), file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps(done.to_dict()))
    else:
        print(
            f"erased {done.cases} case(s): {done.values} value(s), {done.actions} action(s), "
            f"{done.rejected} rejected event(s)"
        )
    return 0
