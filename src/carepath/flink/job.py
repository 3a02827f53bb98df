"""Building and running the carepath job on Flink (this module imports PyFlink).

:func:`build` wires any ``DataStream`` of event lines (JSON text, one event each — from Kafka,
files, sockets…) into the engine and returns the :class:`Outputs` streams, so a user attaches the
sinks of their choice. :func:`configure` sets up an environment (Python executable, parallelism,
checkpointing, restarts, state backend). :func:`run_file` is what ``carepath flink`` runs: a
bounded file source on a local mini-cluster, the outputs collected into ``DIR``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyflink.common import Configuration, Duration, Types, WatermarkStrategy  # type: ignore[import-untyped, import-not-found, unused-ignore]
from pyflink.datastream import DataStream, StreamExecutionEnvironment  # type: ignore[import-untyped, import-not-found, unused-ignore]

from carepath.flink.core import micros
from carepath.flink.function import (
    OUTCOMES,
    RECORD_TYPE,
    REJECTED,
    STATES,
    TIMING,
    CaseFunction,
    FanOut,
    PlaybookSource,
    RecordTimestamps,
    VerdictFunction,
)

__all__ = [
    "STATE_CACHE",
    "WORKERS_VAR",
    "JobOptions",
    "Outputs",
    "RunResult",
    "build",
    "configure",
    "python_workers",
    "run_file",
    "run_lines",
    "sources",
]


@dataclass(frozen=True, slots=True)
class JobOptions:
    """How the job runs.

    ``until``: no wake-up fires after it (``None``: none is capped; at the end of a *bounded*
    input the clock then stops at the last watermark). ``out_of_orderness_ms``: how late an event
    may arrive after a later one and still be applied in ``at`` order. ``time``: ``event`` or
    ``processing``. ``states``: ``final`` (each case's state at the end of the input), ``changes``
    (after every change) or ``None``. ``idleness_ms``: mark a silent input partition idle after
    this long so it does not hold the watermark back (unbounded sources). ``dedupe``: drop an
    event whose id its case has already applied.
    """

    until: datetime | None = None
    out_of_orderness_ms: int = 0
    time: str = "event"
    states: str | None = "final"
    idleness_ms: int | None = None
    dedupe: bool = True
    throttle_s: float = (
        0.0  # testing: sleep per input line (keeps a job running across checkpoints)
    )


@dataclass(slots=True)
class Outputs:
    """The job's streams, each of JSON text lines: ``actions`` (``Action.to_dict()``), ``states``
    (``CaseState.to_json()``) and ``rejected`` (``{event, reason, message, playbook}``);
    ``timing``: when the job works (``first SECONDS``, ``work SECONDS``: see
    :mod:`carepath.flink.function`)."""

    actions: DataStream
    states: DataStream
    rejected: DataStream
    timing: DataStream | None = None


def sources(paths: Sequence[str]) -> list[PlaybookSource]:
    """Read playbook files for shipping to the workers (validated here, compiled there)."""
    from carepath.loading.loader import load

    out = []
    for p in paths:
        load(p)  # fail fast, on the client, with the loader's diagnostics
        out.append(PlaybookSource(str(Path(p).resolve()), Path(p).read_text(encoding="utf-8")))
    return out


#: PyFlink reads where the Python functions run from this environment variable (``loopback`` or
#: ``process``); see :func:`configure`.
WORKERS_VAR = "_python_worker_execution_mode"
#: the value the environment had when this module was imported: the user's, kept (PyFlink itself
#: writes the JVM's environment back into this process's after a loopback run)
_USER_WORKERS = os.environ.get(WORKERS_VAR)

#: States a Python worker keeps in memory (PyFlink's default, 1,000, is fewer than the states of
#: a few hundred cases: every state access then goes to the JVM). Measured in bench_flink.py.
STATE_CACHE = 100_000


def python_workers(mode: str) -> str:
    """Run the job's Python functions in ``mode`` (``loopback``: in this process, one interpreter
    for every subtask; ``process``: a Python process per operator subtask) unless the user chose
    (:data:`WORKERS_VAR` in the environment when this module was imported). Returns the mode in
    force."""
    chosen = _USER_WORKERS or mode
    os.environ[WORKERS_VAR] = chosen
    return chosen


def configure(
    *,
    parallelism: int = 1,
    checkpoint_ms: int | None = 1000,
    restarts: int = 3,
    restart_delay_ms: int = 500,
    state_backend: str | None = None,
    checkpoint_dir: str | None = None,
    extra: dict[str, str] | None = None,
    workers: str | None = None,
) -> StreamExecutionEnvironment:
    """A ``StreamExecutionEnvironment`` for the job.

    The Python workers run ``sys.executable`` (PyFlink would otherwise start ``python`` from
    ``PATH`` and fail with ``No module named 'pyflink'`` in a virtual environment). Checkpointing
    is on unless ``checkpoint_ms`` is ``None``; a failure restarts the job from the last checkpoint
    up to ``restarts`` times. ``state_backend``: ``hashmap`` (default) or ``rocksdb``.

    ``workers``: where the Python functions run on a local mini-cluster (:func:`python_workers`).
    PyFlink's default there is ``loopback``: every subtask's Python code in this one process, under
    one interpreter lock (shared with the loop collecting the outputs), so a parallelism above 1
    cannot use a second core. The default here is ``process``: each operator subtask in the Python
    process PyFlink starts for it anyway (in loopback mode those processes only start and hand
    over), so the subtasks run at once (``bench/bench_flink.py``: 12,100 events at parallelism 1,
    197 events/s against 159 in loopback; at 2, 238 against 190).
    """
    python_workers(workers or "process")
    conf = Configuration()
    conf.set_string("python.executable", sys.executable)
    conf.set_string("python.client.executable", sys.executable)
    conf.set_string("restart-strategy.type", "fixed-delay" if restarts > 0 else "none")
    if restarts > 0:
        conf.set_string("restart-strategy.fixed-delay.attempts", str(restarts))
        conf.set_string("restart-strategy.fixed-delay.delay", f"{restart_delay_ms} ms")
    # PyFlink 2.3: with Python workers on Flink's managed memory, cancelling a task chain of several
    # Python operators (what a restart does) releases the shared Beam harness twice ("Reference
    # count must not be negative") and takes the TaskManager down; off managed memory, it does not.
    conf.set_string("python.fn-execution.memory.managed", "false")
    conf.set_string("python.state.cache-size", str(STATE_CACHE))
    if state_backend:
        conf.set_string("state.backend.type", state_backend)
    if checkpoint_dir:
        conf.set_string("execution.checkpointing.dir", checkpoint_dir)
    for k, v in (extra or {}).items():
        conf.set_string(k, v)
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    env.set_parallelism(parallelism)
    if checkpoint_ms:
        env.enable_checkpointing(checkpoint_ms)
    return env


def build(
    events: DataStream, playbooks: Sequence[PlaybookSource], options: JobOptions = JobOptions()
) -> Outputs:
    """Wire ``events`` (a ``DataStream`` of JSON event lines) into the engine for ``playbooks``.

    Each event goes to every playbook, keyed by ``(playbook, start.key)``; the keyed function
    runs the engine for its case. With several playbooks a second keyed stage (by event id)
    decides whether an event is rejected overall.
    """
    pbs = list(playbooks)
    cap = None if options.until is None else micros(options.until) / 1_000_000
    fan = events.process(FanOut(pbs, options.throttle_s), output_type=RECORD_TYPE).name(
        "carepath: route"
    )
    recs = fan
    if options.time == "event":
        wm = WatermarkStrategy.for_bounded_out_of_orderness(
            Duration.of_millis(options.out_of_orderness_ms)
        )
        if options.idleness_ms is not None:
            wm = wm.with_idleness(Duration.of_millis(options.idleness_ms))
        recs = fan.assign_timestamps_and_watermarks(wm.with_timestamp_assigner(RecordTimestamps()))
    cases = (
        recs.key_by(lambda r: r[0], key_type=Types.STRING())
        .process(
            CaseFunction(
                pbs, cap_s=cap, states=options.states, time=options.time, dedupe=options.dedupe
            ),
            output_type=Types.STRING(),
        )
        .name("carepath: cases")
    )
    rejected = fan.get_side_output(REJECTED).union(cases.get_side_output(REJECTED))
    if len(pbs) > 1:
        verdicts = (
            cases.get_side_output(OUTCOMES)
            .key_by(lambda s: json.loads(s)[0], key_type=Types.STRING())
            .process(VerdictFunction(), output_type=Types.STRING())
            .name("carepath: verdicts")
        )
        rejected = rejected.union(verdicts)
    return Outputs(
        actions=cases,
        states=cases.get_side_output(STATES),
        rejected=rejected,
        timing=fan.get_side_output(TIMING).union(cases.get_side_output(TIMING)),
    )


@dataclass(slots=True)
class RunResult:
    """What a collected run produced, and how long it took.

    ``seconds``: the job's run, from its submission to its last output. The instants (wall clock,
    POSIX seconds) split a run of :func:`run_file` in three: ``began`` (the call) to ``started``
    (the first event line entered the job: the JVM, the mini-cluster, the job graph and the
    Python workers are up) is the start-up; ``started`` to ``worked`` (the last time a case
    subtask was at work, within :data:`~carepath.flink.function.MARK_EVERY_S`) is the work, over
    which :attr:`rate` counts ``events`` (the lines fed to the job); ``worked`` to ``ended``
    (every output collected) is the shutdown (the last checkpoint, the workers stopping)."""

    actions: list[str] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    seconds: float = 0.0
    began: float | None = None
    started: float | None = None
    worked: float | None = None
    ended: float | None = None
    events: int = 0
    workers: str = ""
    """Where the Python functions ran: ``loopback`` or ``process`` (:func:`configure`)."""

    @property
    def startup_s(self) -> float | None:
        """Seconds from the call until the first event entered the job."""
        if self.began is None or self.started is None:
            return None
        return max(0.0, self.started - self.began)

    @property
    def steady_s(self) -> float | None:
        """Seconds from the first event entering the job until the work was done."""
        end = self.worked if self.worked is not None else self.ended
        if self.started is None or end is None:
            return None
        return max(0.0, end - self.started)

    @property
    def shutdown_s(self) -> float | None:
        """Seconds from the end of the work until every output was collected."""
        if self.worked is None or self.ended is None:
            return None
        return max(0.0, self.ended - self.worked)

    @property
    def rate(self) -> float | None:
        """Events a second after the start-up (``None`` when it cannot be told)."""
        steady = self.steady_s
        return self.events / steady if steady and self.events else None


def _tagged(out: Outputs) -> DataStream:
    a = out.actions.map(lambda s: "a" + s, output_type=Types.STRING())
    s = out.states.map(lambda s: "s" + s, output_type=Types.STRING())
    r = out.rejected.map(lambda s: "r" + s, output_type=Types.STRING())
    if out.timing is None:
        return a.union(s, r)
    # as they are (a map would be one more Python operator, with Python workers of its own to
    # start): "first …" and "work …" do not begin with a tag letter
    return a.union(s, r, out.timing)


def collect(env: StreamExecutionEnvironment, out: Outputs, name: str = "carepath") -> RunResult:
    """Run the job and gather its outputs (through Flink's collect sink, which hands results over
    only once a checkpoint covers them, so a restart does not repeat them here)."""
    res = RunResult()
    first: list[float] = []
    work: list[float] = []
    t0 = time.perf_counter()
    with _tagged(out).execute_and_collect(name) as it:
        for x in it:
            tag, body = x[0], x[1:]
            if tag == "f" or tag == "w":  # timing: "first SECONDS", "work SECONDS"
                (first if tag == "f" else work).append(float(x.split(" ", 1)[1]))
                continue
            (res.actions if tag == "a" else res.states if tag == "s" else res.rejected).append(body)
    res.seconds = time.perf_counter() - t0
    res.ended = time.time()
    res.started = min(first, default=None)
    res.worked = max(work, default=None)
    return res


def last_instant(lines: Iterable[str]) -> datetime | None:
    """The latest ``at`` among the event lines (``None`` when there is no event)."""
    from carepath.flink.core import micros, parse_line, skip_line

    last: int | None = None
    for line in lines:
        if skip_line(line):
            continue
        ev, _, _ = parse_line(line)
        if ev is not None:
            us = micros(ev.at)
            last = us if last is None else max(last, us)
    return None if last is None else datetime.fromtimestamp(last / 1_000_000, UTC)


def end_of_time(until: datetime | None, lines: Iterable[str]) -> datetime | None:
    """Where wake-ups stop for a bounded log, as ``carepath run --clock simulated`` ends it."""
    from carepath.flink.core import cap_us, micros

    last = last_instant(lines)
    c = cap_us(None if until is None else micros(until), None if last is None else micros(last))
    return None if c is None else datetime.fromtimestamp(c / 1_000_000, UTC)


def readable_copy(events: str, copy: Path) -> tuple[list[str], list[str]]:
    """Read ``events`` through the one bounded reader (:mod:`carepath.drivers.eventfile`) into
    ``copy``, the file the Flink source reads: every line it can read, in order, without the lines
    it refused (not UTF-8, too long), so that one bad line costs only itself.

    Returns the lines copied and the rejected-output lines of the refused ones (as ``carepath
    run`` records them: ``{"raw": preview}``, ``invalid``, ``line N: …``)."""
    from carepath.drivers.eventfile import read_lines
    from carepath.flink.core import line_rejection

    good: list[str] = []
    refused: list[str] = []
    with copy.open("w", encoding="utf-8") as out:
        for line in read_lines(events):
            if line.problem is not None:
                refused.append(line_rejection(line))
                continue
            good.append(line.text)
            out.write(line.text + "\n")
    return good, refused


def run_file(
    playbooks: Sequence[str],
    events: str,
    *,
    until: datetime | None = None,
    options: JobOptions = JobOptions(),
    parallelism: int = 1,
    checkpoint_ms: int | None = 1000,
    prepare: Callable[[DataStream], DataStream] | None = None,
    **conf: Any,
) -> RunResult:
    """Run an events file (JSONL) through the job on a local mini-cluster and collect the outputs.

    The file is read by the bounded reader first (:func:`readable_copy`): a line that is not
    UTF-8 or too long is in the rejected output, located, and the rest runs. Time ends as in
    ``carepath run --clock simulated``: at ``until``, or at the last event (``options.until`` is
    set from them). ``prepare`` may transform the stream of lines first.
    """
    import tempfile

    from pyflink.datastream.connectors.file_system import FileSource, StreamFormat  # type: ignore[import-untyped, import-not-found, unused-ignore]

    began = time.time()
    with tempfile.TemporaryDirectory(prefix="carepath-flink-") as d:
        copy = Path(d) / "events.jsonl"
        text, refused = readable_copy(events, copy)
        options = replace(options, until=end_of_time(until, text))
        n = len(text)
        del text
        env = configure(parallelism=parallelism, checkpoint_ms=checkpoint_ms, **conf)
        workers = os.environ.get(WORKERS_VAR, "")  # before a loopback run writes over it
        src = FileSource.for_record_stream_format(
            StreamFormat.text_line_format(), str(copy.resolve())
        ).build()
        lines = env.from_source(src, WatermarkStrategy.no_watermarks(), "events").set_parallelism(1)
        if prepare is not None:
            lines = prepare(lines)
        res = collect(env, build(lines, sources(playbooks), options))
    res.rejected[:0] = refused
    res.began, res.events = began, n
    res.workers = workers
    return res


def run_lines(
    playbooks: Sequence[str],
    lines: Sequence[str],
    *,
    until: datetime | None = None,
    options: JobOptions = JobOptions(),
    parallelism: int = 1,
    checkpoint_ms: int | None = 1000,
    prepare: Callable[[DataStream], DataStream] | None = None,
    **conf: Any,
) -> RunResult:
    """The same for lines in memory (written to a temporary file, so the source is checkpointable)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="carepath-flink-") as d:
        path = Path(d) / "events.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return run_file(
            playbooks,
            str(path),
            until=until,
            options=options,
            parallelism=parallelism,
            checkpoint_ms=checkpoint_ms,
            prepare=prepare,
            **conf,
        )
