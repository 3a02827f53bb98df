"""``carepath schema``: print the playbook JSON Schema (2020-12); ``--check FILE`` fails when
FILE differs from it (the drift check CI runs on ``schemas/playbook.schema.json``); ``-o FILE``
writes it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

HELP = "print the playbook JSON Schema"
ORDER = 50


def register(sub: Any) -> None:
    """Add the ``schema`` sub-command."""
    p = sub.add_parser("schema", help=HELP, description=__doc__)
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--check", metavar="FILE", help="exit 1 when FILE differs from the generated schema"
    )
    g.add_argument("-o", "--output", metavar="FILE", help="write the schema to FILE")
    p.add_argument(
        "--scenario",
        action="store_true",
        help="the schema of scenario test files (*.test.yaml) instead of playbooks",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print, write or check the schema."""
    from carepath.model.schema import schema_text
    from carepath.testing.schema import scenario_schema_text

    text = scenario_schema_text() if args.scenario else schema_text()
    if args.check:
        try:  # bounded: /dev/zero or a huge file cannot be equal anyway
            with Path(args.check).open("rb") as fh:
                raw = fh.read(2 * len(text.encode("utf-8")) + 2)  # CRLF line ends read as LF
        except OSError as exc:
            print(f"carepath: cannot read {args.check}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        current = raw.decode("utf-8", errors="replace").replace("\r\n", "\n")
        if current != text:
            print(
                f"carepath: {args.check} is out of date with the models; regenerate it with "
                f"`carepath schema{' --scenario' if args.scenario else ''} -o {args.check}`",
                file=sys.stderr,
            )
            return 1
        print(f"carepath: {args.check} is up to date", file=sys.stderr)
        return 0
    if args.output:
        try:
            with Path(args.output).open("w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
        except OSError as exc:
            print(f"carepath: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        return 0
    sys.stdout.write(text)
    return 0
