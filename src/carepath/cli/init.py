"""``carepath init [--example NAME] [--force] DIR``: scaffold a working playbook from one of the
examples shipped inside the package — the playbook, its scenario tests, an event log and the JSON
Schema the playbook's editor modeline points at — so ``carepath validate DIR``, ``carepath test
DIR`` and ``carepath report`` work at once."""

from __future__ import annotations

import argparse
import sys
from typing import Any

HELP = "scaffold a playbook, its scenario tests and an event log from a shipped example"
ORDER = 5
DEFAULT = "vn-retail-support"
MODELINE = "$schema=../schemas/playbook.schema.json"
SCENARIO_MODELINE = "$schema=../schemas/scenario.schema.json"


def _shipped(package: str, folder: str) -> Any:
    """A data package's folder: inside the installed package, or in a source checkout run
    without installing (``PYTHONPATH=src``), the repository's own folder."""
    from importlib.resources import files
    from pathlib import Path

    try:
        return files(package)
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[3] / folder


def examples() -> list[str]:
    """The names of the examples shipped in the package."""
    return sorted(
        p.name.removesuffix(".yaml")
        for p in _shipped("carepath.examples", "examples").iterdir()
        if p.name.endswith(".yaml") and not p.name.endswith(".test.yaml")
    )


def register(sub: Any) -> None:
    """Add the ``init`` sub-command."""
    p = sub.add_parser(
        "init",
        help=HELP,
        description="Write a working playbook into DIR from a shipped example: NAME.yaml, "
        "NAME.test.yaml (its scenario tests), events/NAME.jsonl (an event log to simulate and "
        "report on) and the JSON Schemas of both files in schemas/ (for the editor). Existing files are kept "
        "unless --force.",
    )
    p.add_argument("dir", metavar="DIR", help="the folder to write into (created when missing)")
    p.add_argument(
        "--example",
        metavar="NAME",
        default=DEFAULT,
        help="which example: vn-retail-support, omnichannel-journey, zalo-care or eldercare-queue "
        f"(default {DEFAULT})",
    )
    p.add_argument("--force", action="store_true", help="overwrite files that exist")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Copy the example's files into ``args.dir``."""
    from pathlib import Path

    names = examples()
    if args.example not in names:
        print(
            f"carepath init: --example {args.example!r}: expected one of {', '.join(names)}",
            file=sys.stderr,
        )
        return 2
    name = args.example
    src = _shipped("carepath.examples", "examples")
    out = Path(args.dir)
    plan = {
        out / f"{name}.yaml": (src / f"{name}.yaml").read_text(encoding="utf-8"),
        out / f"{name}.test.yaml": (src / f"{name}.test.yaml").read_text(encoding="utf-8"),
        out / "events" / f"{name}.jsonl": (src / "events" / f"{name}.jsonl").read_text(
            encoding="utf-8"
        ),
        out / "schemas" / "playbook.schema.json": (
            _shipped("carepath.schemas", "schemas") / "playbook.schema.json"
        ).read_text(encoding="utf-8"),
    }
    plan[out / "schemas" / "scenario.schema.json"] = (
        _shipped("carepath.schemas", "schemas") / "scenario.schema.json"
    ).read_text(encoding="utf-8")
    roster = src / "rosters" / f"{name}.yaml"
    if roster.is_file():  # the agents of an example that allocates (SPEC §10)
        plan[out / "rosters" / f"{name}.yaml"] = roster.read_text(encoding="utf-8")
    playbook, scenarios = out / f"{name}.yaml", out / f"{name}.test.yaml"
    plan[playbook] = plan[playbook].replace(MODELINE, "$schema=schemas/playbook.schema.json", 1)
    plan[scenarios] = plan[scenarios].replace(
        SCENARIO_MODELINE, "$schema=schemas/scenario.schema.json", 1
    )
    existing = [p for p in plan if p.exists()]
    if existing and not args.force:
        print(
            f"carepath init: {existing[0]} exists; nothing written (--force overwrites)",
            file=sys.stderr,
        )
        return 2
    try:
        for path, text in plan.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(
            f"carepath init: cannot write {exc.filename or out}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 2
    d = str(out)
    print(
        f"carepath init: wrote {name} into {d}. Next:\n"
        f"  carepath validate {d}\n"
        f"  carepath test {d}\n"
        f"  carepath simulate {d}/{name}.yaml {d}/events/{name}.jsonl\n"
        f"  carepath report {d}/{name}.yaml {d}/events/{name}.jsonl --format html -o report.html",
        file=sys.stderr,
    )
    return 0
