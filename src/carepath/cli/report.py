"""``carepath report PLAYBOOK (EVENTS | --store URL) [--format text|json|html] [-o FILE]
[--compare OTHER.yaml] [--lang en|vi] [--template DIR] [--csv DIR]``."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from carepath.cli import progress

HELP = "metrics, SLA attainment, goals, load and staffing from an event log or a store (what-if with --compare)"
ORDER = 60


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "report",
        help=HELP,
        description="Replay an event log (JSONL, one event per line; '-' for standard input) through the "
        "playbook and report metrics, SLA attainment, goals, load and Erlang C staffing. "
        "With --compare, replay the same events under another playbook version (what-if).",
    )
    p.add_argument("playbook", metavar="PLAYBOOK", help="the playbook (YAML)")
    p.add_argument(
        "events", metavar="EVENTS", nargs="?", help="event log: JSONL (or a YAML list); '-' = stdin"
    )
    p.add_argument(
        "--store",
        metavar="URL",
        help="read cases from a runtime store instead (sqlite:///cases.db)",
    )
    p.add_argument(
        "--format",
        choices=("text", "json", "html"),
        default="text",
        help="output format (default text)",
    )
    p.add_argument(
        "-o", "--output", metavar="FILE", help="write the report to FILE instead of standard output"
    )
    p.add_argument(
        "--compare",
        metavar="OTHER.yaml",
        help="replay the same events under this playbook too, and show both side by side",
    )
    p.add_argument(
        "--lang",
        choices=("en", "vi"),
        default="en",
        help="language of the text and HTML report: English or Vietnamese (default en)",
    )
    p.add_argument(
        "--template",
        metavar="DIR",
        help="HTML templates that replace the shipped ones of the same name (to rebrand the report)",
    )
    p.add_argument(
        "--csv",
        metavar="DIR",
        help="also write every table of the report as a CSV file into DIR",
    )
    p.add_argument(
        "--workers",
        metavar="N",
        type=int,
        help="replay the log in N processes, each with a share of the cases (default: the usable "
        "CPUs for a log of 4 MiB or more, else 1; 1 = in this process); the report is the same",
    )
    p.add_argument(
        "--roster",
        metavar="FILE",
        help="agents (YAML or JSON): allocate assign actions with a strategy as the runtime "
        "would, and add a table per agent (SPEC §10; the log is then replayed in one process)",
    )
    progress.add_argument(p)
    p.set_defaults(func=run)


def _err(msg: str) -> int:
    print(f"carepath report: {msg}", file=sys.stderr)
    return 2


def _store_states(url: str) -> list[Any]:
    """Every case of the store, opened read-only (a report never creates or migrates one)."""
    from carepath.cli.common import open_read_store

    store = open_read_store(url)
    try:
        return list(store.cases())
    finally:
        store.close()


def _reading(args: argparse.Namespace) -> progress.Progress:
    """The progress of the replay: lines read, in bytes of the file's size (none for stdin)."""
    from pathlib import Path

    total = None
    if args.events != "-":
        try:
            total = Path(args.events).stat().st_size or None
        except OSError:
            total = None  # the replay says why it cannot read it
    return progress.for_args(args, "report", "lines", total=total, in_bytes=True)


def run(args: argparse.Namespace) -> int:  # noqa: C901 - one check per option, in the order the help lists them
    from pathlib import Path

    from carepath._terminal import json_term_safe, term_safe
    from carepath.cli.common import load_playbook, read_roster
    from carepath.drivers.replay import EventLogError, replay_log, replay_store
    from carepath.drivers.shard import replay_log_sharded
    from carepath.errors import CarepathError
    from carepath.metrics import Collector, MetricError
    from carepath.report import TemplateError, build_reports, compare_reports, render, write_csv
    from carepath.runtime import StoreError

    if args.workers is not None and args.workers < 1:
        return _err(
            f"--workers: expected a whole number of processes, 1 or more, not {args.workers}"
        )
    if (args.events is None) == (args.store is None):
        return _err(
            "give an event log (EVENTS) or --store URL, not both"
            if args.events
            else "give an event log (EVENTS) or --store URL"
        )
    if args.template and not Path(args.template).is_dir():
        return _err(f"--template {args.template}: not a folder")
    playbooks = []
    for path in [args.playbook, *([args.compare] if args.compare else [])]:
        pb = load_playbook(path)  # 2: cannot be read; 1: invalid, with validate's diagnostics
        if isinstance(pb, int):
            return pb
        playbooks.append(pb)
    roster = read_roster(args.roster, playbooks)
    if isinstance(roster, int):
        return roster
    if roster and args.store:
        return _err("--roster replays an event log; a --store report reads what the store holds")
    states: list[Any] = []
    if args.store:
        try:
            states = _store_states(args.store)
        except (StoreError, ValueError) as exc:
            return _err(f"--store: {exc}")
    try:
        if args.store:
            replays = [replay_store(pb, states) for pb in playbooks]
        else:
            # one pass over the log for every playbook; metric samples are collected as it goes
            source = sys.stdin if args.events == "-" else args.events
            with _reading(args) as shown:
                if roster:  # loads couple the cases: one process, in event order
                    replays = replay_log(
                        playbooks, source, Collector, roster=roster, progress=shown.update
                    )
                else:
                    replays = replay_log_sharded(
                        playbooks, source, Collector, workers=args.workers, progress=shown.update
                    )
        reports = build_reports(playbooks, replays)
        if len(replays) == 2 and replays[0].reached is not None:
            logging.getLogger("carepath.report").info(
                "what-if of a change of targets: %s replayed only the %d case keys whose clocks "
                "selected a changed target (of %d cases); the others are the same under both",
                playbooks[1].version,
                len(replays[0].reached),
                replays[0].cases,
            )
    except EventLogError as exc:
        print(f"carepath report: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        return _err(f"cannot read {exc.filename or args.events}: {exc.strerror or exc}")
    except (MetricError, CarepathError) as exc:
        print(f"carepath report: {exc}", file=sys.stderr)
        return 1
    if replays and replays[0].bad:  # the same lines for every playbook: said once
        first = replays[0].bad[0]
        print(
            term_safe(
                f"carepath report: warning: {len(replays[0].bad)} line(s) skipped: not events "
                f"(first: {args.events}:{first.line}: {first.message})"
            ),
            file=sys.stderr,
        )
    for rp in replays:
        if rp.rejected:
            print(
                term_safe(
                    f"carepath report: {len(rp.rejected)} event(s) rejected by {rp.playbook.id} "
                    f"{rp.playbook.version} (first: {rp.rejected[0][0].id}: {rp.rejected[0][1]})"
                ),
                file=sys.stderr,
            )
    doc = reports[0] if len(reports) == 1 else compare_reports(reports[0], reports[1])
    try:
        text = render(doc, args.format, args.lang, args.template)
    except TemplateError as exc:
        return _err(str(exc))
    if args.csv:
        try:
            files = write_csv(doc, args.csv, args.lang)
        except OSError as exc:
            return _err(f"--csv {args.csv}: {exc.strerror or exc}")
        print(f"carepath report: wrote {len(files)} CSV files into {args.csv}", file=sys.stderr)
    if (
        args.format == "text"
    ):  # titles, channels and ids come from playbooks and events: issue 15 #24
        text = "\n".join(term_safe(line) for line in text.split("\n"))
    elif args.format == "json":
        text = json_term_safe(text)
    if args.output:
        try:
            with Path(args.output).open("w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:  # a folder, a missing folder, a full disk
            return _err(f"cannot write {args.output}: {exc.strerror or exc}")
        print(f"carepath report: wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 1 if replays and replays[0].bad else 0  # as `run`: the report is made, the exit says
