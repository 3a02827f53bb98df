"""``carepath test PATH…``: run playbook scenario tests (``*.test.yaml``).

PATH is a scenario file, a playbook (its ``NAME.test.yaml`` next to it is run), or a folder
(every ``*.test.yaml`` below it). Each scenario feeds events and clock advances to an in-memory
simulation and checks the expected stages, clocks, actions, signals and deadlines; a failure
prints a readable diff with the scenario file, line and column. The format is described in
``docs/testing.md``.

Exit codes: 0 every scenario passed, 1 a scenario failed (or a scenario file or its playbook is
invalid — the playbook's diagnostics are those of ``carepath validate``), 2 a path that does not
exist or holds no scenario file.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

HELP = "run playbook scenario tests (*.test.yaml)"
ORDER = 30


def register(sub: Any) -> None:
    """Add the ``test`` sub-command."""
    p = sub.add_parser(
        "test",
        help=HELP,
        description=__doc__.split("\n\n")[0] if __doc__ else HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes: 0 all passed, 1 failures, 2 bad paths",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="scenario files, playbooks or folders")
    p.add_argument(
        "--format",
        "-f",
        choices=("text", "junit"),
        default="text",
        help="text (default) or a JUnit XML report on standard output",
    )
    p.add_argument(
        "-k", dest="name_filter", metavar="TEXT", help="only scenarios whose name contains TEXT"
    )
    p.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the text report (auto: on a terminal, unless NO_COLOR is set)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="only failures and the summary")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:  # noqa: C901 - one check per option, in the order the help lists them
    """Run the scenario files; return the exit code."""
    from carepath.cli.validate import use_color
    from carepath.diagnostics import format_diagnostics
    from carepath.testing.scenario import FileResult, find_scenario_files, run_file, to_junit

    files: list[str] = []
    bad_path = False
    for path in args.paths:
        try:
            found = find_scenario_files(path)
        except FileNotFoundError as exc:
            print(f"carepath: {exc}", file=sys.stderr)
            bad_path = True
            continue
        if not found:
            print(f"carepath: {path}: no scenario files (*.test.yaml)", file=sys.stderr)
            bad_path = True
        files.extend(f for f in found if f not in files)
    results: list[FileResult] = [run_file(f, name_filter=args.name_filter) for f in files]
    color = args.format == "text" and use_color(args.color, sys.stdout)
    green, red, yellow, dim, bold, reset = (
        ("\x1b[32m", "\x1b[31m", "\x1b[33m", "\x1b[2m", "\x1b[1m", "\x1b[0m")
        if color
        else ("",) * 6
    )
    n_pass = n_fail = n_skip = 0
    out: list[str] = []
    for fr in results:
        if args.format == "text":
            out.append(
                f"{bold}{fr.file}{reset}"
                + (f"{dim}  ({fr.playbook}){reset}" if fr.playbook else "")
            )
        if fr.error is not None:
            n_fail += 1
            out.append("  " + red + "ERROR" + reset + " " + fr.error.render().replace("\n", "\n  "))
        if fr.diagnostics_errors:
            n_fail += 1
            out.append(f"  {red}ERROR{reset} the playbook {fr.playbook} is invalid:")
            out.append(
                format_diagnostics(fr.diagnostics, "text", sources=fr.sources, color=color).rstrip()
            )
        for r in fr.results:
            if r.skipped:
                n_skip += 1
                if not args.quiet:
                    out.append(f"  {yellow}skip{reset} {r.name}")
            elif r.passed:
                n_pass += 1
                if not args.quiet:
                    out.append(
                        f"  {green}ok{reset}   {r.name} {dim}({r.seconds * 1000:.0f} ms){reset}"
                    )
            else:
                n_fail += 1
                out.append(f"  {red}FAIL{reset} {r.name}")
                for fl in r.failures:
                    out.append("       " + fl.render().replace("\n", "\n       "))
    summary = (
        f"{n_pass + n_fail + n_skip} scenario(s): {n_pass} passed, {n_fail} failed"
        + (f", {n_skip} skipped" if n_skip else "")
        + f" in {len(files)} file(s)"
    )
    if args.format == "junit":
        sys.stdout.write(to_junit(results))
        print(f"carepath: {summary}", file=sys.stderr)
    else:
        out.append((red if n_fail else green) + summary + reset)
        sys.stdout.write("\n".join(out) + "\n")
    sys.stdout.flush()
    if bad_path:
        return 2
    return 1 if n_fail else 0
