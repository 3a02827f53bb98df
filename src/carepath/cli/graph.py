"""``carepath graph PLAYBOOK``: draw a playbook's state machine (Mermaid or Graphviz DOT).

Stages (the initial one marked, final ones ending at the end point), transitions labelled with
their event and guard, timers (``after 7d``), root ``on:`` handlers as the pseudo-stage *any
non-final stage*, and the SLA clocks each stage pauses. ``-o FILE`` writes the diagram to FILE.

Exit codes: 0 ok, 1 an invalid playbook (the diagnostics of ``carepath validate`` on standard
error), 2 a file that cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

HELP = "draw a playbook's state machine (mermaid or dot)"
ORDER = 40


def register(sub: Any) -> None:
    """Add the ``graph`` sub-command."""
    p = sub.add_parser(
        "graph",
        help=HELP,
        description=__doc__.split("\n\n")[0] if __doc__ else HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes: 0 ok, 1 invalid playbook, 2 unreadable file",
    )
    p.add_argument("playbook", metavar="PLAYBOOK", help="the playbook file")
    p.add_argument(
        "--format",
        "-f",
        choices=("mermaid", "dot"),
        default="mermaid",
        help="diagram language (default: mermaid)",
    )
    p.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        help="write the diagram to FILE instead of standard output",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print (or write) the diagram; return the exit code."""
    from carepath.cli.common import load_playbook
    from carepath.graph.render import render

    pb = load_playbook(args.playbook)
    if isinstance(pb, int):
        return pb
    text = render(pb, args.format)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            print(f"carepath: {args.output}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    else:
        sys.stdout.write(text)
    return 0
