"""Playbook scenario tests: the ``*.test.yaml`` format and its runner (``carepath test``).

A scenario file sits next to its playbook::

    playbook: vn-retail-support.yaml        # default: the file's name without `.test`
    start: 2027-02-01T09:00:00+07:00        # when scenarios begin (default for each one)
    case: T-1                               # default case key of events
    scenarios:
      - name: email ticket answered in time
        steps:
          - event: case.opened
            data: {channel: email}
          - expect:
              stage: new
              clocks: {first_response: {status: running, due: 2027-02-01 11:00}}
              actions: {include: [{send: ack_email}]}
          - event: agent.replied
            at: +53m                        # 53 minutes after the previous step
          - expect: {stage: open, clocks: {first_response: met}}

Steps run in order on an in-memory :class:`~carepath.drivers.simulate.Simulator` (many cases at once):

- ``event: TYPE`` with ``at`` (absolute ISO 8601, local ``2027-02-01 09:00`` in the playbook's
  timezone, or ``+DURATION`` after the previous step; default: the previous step's instant),
  ``data``, ``case`` and ``id`` (generated when absent). ``rejected: true`` (or a substring of
  the error) says the engine must reject the event.
- ``advance: +2h`` or ``advance: 2027-02-03 09:00``: wake every case up to that instant.
- ``expect: {…}``: checks the case (``case:`` or the last event's case) — ``stage``, ``tier``,
  ``segment``, ``segments``, ``ended``, ``data`` (a subset), ``clocks`` (per clock a status, or a
  mapping of ``status``/``breached``/``due``/``cycle``/``elapsed``/``remaining``/``paused``),
  ``next_wakeup``, ``deadlines``, and the ``actions`` and ``signals`` emitted for the case since
  the previous ``expect`` of that case. A list means exactly those, in order; ``{include: […],
  exclude: […]}`` means these appear (in this order, others may be interleaved) and those do not.
  An action is ``send`` (its type), ``{send: ack_email}`` (type and main argument, as in a
  playbook), or ``{type: send, params: {…}}``; extra keys match ``params``, ``at`` or ``source``.
  A signal is its type or ``{type, sla, cycle}``. A deadline is ``{kind, name, due}`` (a subset).

``given: […]`` / ``advance:`` / ``expect:`` directly on a scenario are a shorthand for those
steps in that order. A scenario stops at its first failing step; every mismatch of that step is
reported with the file, line and column of the expectation.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carepath.errors import ScenarioError

if TYPE_CHECKING:
    from carepath.compile.ir import Playbook
    from carepath.drivers.simulate import Simulator

from carepath.testing.results import Failure, FileResult, ScenarioResult
from carepath.testing.steps import (
    EVENT_KEYS,
    FILE_KEYS,
    SCENARIO_KEYS,
    StepRunner,
    Where,
    YPath,
    check_keys,
    steps_of,
)

__all__ = [
    "Failure",
    "FileResult",
    "ScenarioError",
    "ScenarioResult",
    "find_scenario_files",
    "run_file",
    "run_steps",
    "to_junit",
]


# ---------------------------------------------------------------------------------------------
def find_scenario_files(path: str) -> list[str]:
    """Scenario files for a command-line path: the file itself (``*.test.yaml``), the scenario
    file next to a playbook (``x.yaml`` → ``x.test.yaml``), or every ``*.test.yaml`` under a
    folder (hidden folders skipped). Raises ``FileNotFoundError`` with a clear message."""
    p = Path(path)
    if p.is_dir():
        found: list[str] = []
        for root, dirs, files in os.walk(p):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found.extend(
                str(Path(root) / f)
                for f in sorted(files)
                if f.endswith((".test.yaml", ".test.yml"))
            )
        return found
    if p.is_file():
        if p.name.endswith((".test.yaml", ".test.yml")):
            return [str(p)]
        for suffix in (".test.yaml", ".test.yml"):
            sib = p.with_name(p.name.rsplit(".", 1)[0] + suffix)
            if sib.is_file():
                return [str(sib)]
        raise FileNotFoundError(
            f"{path}: no scenario file next to it (expected {p.with_suffix('.test.yaml').name})"
        )
    raise FileNotFoundError(f"{path}: no such file or folder")


def run_file(path: str, *, name_filter: str | None = None) -> FileResult:
    """Load a scenario file and its playbook, run every scenario (``name_filter``: only those
    whose name contains it)."""
    from carepath.loading.files import read_bounded
    from carepath.loading.loader import check_file
    from carepath.loading.yaml import Limits, YamlError, load_yaml

    res = FileResult(path, None)
    try:  # a regular file of at most the playbook limit: a FIFO or a huge file is an error
        text = read_bounded(path, Limits().max_bytes).decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        res.error = Failure(path, 0, 0, "", 0, f"cannot read the scenario file: {exc}")
        return res
    try:
        doc, pos = load_yaml(text)
    except YamlError as exc:
        p = exc.problems[0]
        res.error = Failure(path, p.line, p.col, "", 0, f"not a valid scenario file: {p.message}")
        return res
    here = Where(path, pos)
    try:
        if not isinstance(doc, dict) or not isinstance(doc.get("scenarios"), list):
            raise ScenarioError("a scenario file is a mapping with `scenarios:` (a list)", ())
        check_keys(doc, FILE_KEYS, ())
        pb_name = doc.get("playbook")
        if pb_name is None:
            base = Path(path).name
            for suffix in (".test.yaml", ".test.yml"):
                if base.endswith(suffix):
                    base = base[: -len(suffix)] + ".yaml"
            pb_name = base
        if not isinstance(pb_name, str):
            raise ScenarioError(
                "`playbook` is a file name, relative to the scenario file", ("playbook",)
            )
    except ScenarioError as exc:
        res.error = here.failure("", 0, str(exc), exc.path, key=exc.key)
        return res
    pb_path = str(Path(path).parent / pb_name)
    res.playbook = pb_path
    if not Path(pb_path).is_file():
        res.error = here.failure(
            "", 0, f"playbook {pb_name} not found (looked for {pb_path})", ("playbook",)
        )
        return res
    chk = check_file(pb_path)
    if chk.playbook is None:
        res.diagnostics = chk.diagnostics
        res.sources = chk.sources
        return res
    pb = chk.playbook
    for i, sc in enumerate(doc["scenarios"]):
        spath: YPath = ("scenarios", i)
        name = sc.get("name") if isinstance(sc, dict) else None
        name = name if isinstance(name, str) else f"scenario {i + 1}"
        if name_filter and name_filter not in name:
            continue
        res.results.append(_run_scenario(pb, sc, doc, spath, here, name))
    return res


def run_steps(
    playbook: Playbook,
    steps: Sequence[Mapping[str, Any]],
    *,
    name: str = "scenario",
    start: datetime | str | None = None,
    case: str | None = None,
    simulator: Simulator | None = None,
) -> ScenarioResult:
    """Run scenario ``steps`` (the dicts of the YAML format) against ``playbook``."""
    sc: dict[str, Any] = {"name": name, "steps": list(steps)}
    doc: dict[str, Any] = {}
    if start is not None:
        doc["start"] = start
    if case is not None:
        doc["case"] = case
    return _run_scenario(playbook, sc, doc, (), Where("", None), name, simulator=simulator)


# ---------------------------------------------------------------------------------------------
def _run_scenario(
    pb: Playbook,
    sc: Any,
    doc: Mapping[str, Any],
    spath: YPath,
    here: Where,
    name: str,
    *,
    simulator: Simulator | None = None,
) -> ScenarioResult:
    t0 = time.perf_counter()
    line = here.at(spath)[0]
    res = ScenarioResult(name, here.file, line)
    n = 0
    try:
        if not isinstance(sc, Mapping):
            raise ScenarioError("a scenario is a mapping with `name` and `steps`", spath)
        check_keys(sc, SCENARIO_KEYS, spath)
        skip = sc.get("skip", False)
        if not isinstance(skip, bool):  # `skip: yes` is a string (YAML 1.2), not a yes
            raise ScenarioError(f"`skip` is true or false, got {skip!r}", (*spath, "skip"))
        if skip:
            res.skipped = True
            return res
        run = StepRunner(pb, here, name, simulator)
        start = sc.get("start", doc.get("start"))
        if start is not None:
            run.now = run.instant(start, (*spath, "start") if "start" in sc else ("start",))
        case = sc.get("case", doc.get("case"))
        if case is not None:
            run.default_case = str(case)
        for n, (p, st) in enumerate(steps_of(sc, spath), 1):
            if not isinstance(st, Mapping):
                raise ScenarioError(
                    "a step is a mapping: {event: …}, {advance: …} or {expect: …}", p
                )
            kinds = [k for k in ("event", "advance", "expect") if k in st]
            if not kinds:  # `evnt:` — say which key was meant (docs/testing.md promises it)
                check_keys(st, EVENT_KEYS | {"advance", "expect"}, p)
            if len(kinds) != 1:
                raise ScenarioError("a step has exactly one of `event`, `advance`, `expect`", p)
            fail: Failure | None = None
            if kinds[0] == "event":
                fail = run.event(st, p, n)
            elif kinds[0] == "advance":
                check_keys(st, {"advance"}, p)
                run.advance(st["advance"], (*p, "advance") if p != spath else (*spath, "advance"))
            else:
                check_keys(st, {"expect"}, p)
                fail = run.expect(
                    st["expect"], (*p, "expect") if p != spath else (*spath, "expect"), n
                )
            if fail is not None:
                res.failures.append(fail)
                break
    except ScenarioError as exc:
        res.failures.append(
            here.failure(name, n, f"invalid scenario: {exc}", exc.path, key=exc.key)
        )
    except Exception as exc:  # an engine error is a failed scenario, not a crash of the runner
        res.failures.append(here.failure(name, n, f"{type(exc).__name__}: {exc}", spath))
    res.seconds = time.perf_counter() - t0
    return res


# ---------------------------------------------------------------------------------------------
def to_junit(files: Sequence[FileResult]) -> str:
    """A JUnit XML report: one ``testsuite`` per scenario file, one ``testcase`` per scenario."""
    from carepath.junit import Case, Suite, write_junit

    suites = []
    for f in files:
        cases = []
        if f.error is not None or f.diagnostics_errors:
            if f.error is not None:
                msg, body = f.error.message, f.error.render()
            else:
                from carepath.diagnostics import format_diagnostics

                msg = f"invalid playbook {f.playbook}"
                body = format_diagnostics(f.diagnostics, "text", sources=f.sources)
            cases.append(Case(f.file, "(load)", failures=[(msg, body)], file=f.file))
        for r in f.results:
            failures = [(fl.message, fl.render()) for fl in r.failures]
            cases.append(Case(f.file, r.name, failures, r.skipped, seconds=r.seconds, file=f.file))
        suites.append(Suite(f.file, cases, seconds=sum(r.seconds for r in f.results)))
    return write_junit("carepath test", suites)
