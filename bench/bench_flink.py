"""Events/s through the Flink job (parallelism 1 and 2), the start-up apart from the rate after it,
beside the embedded engine on the same log.

    .venv/bin/python bench/bench_flink.py [--copies N] [--parallelism 1 2] [--against REV]
                                          [--workers loopback process] [--json]

The log: the two example logs replicated ``--copies`` times with distinct case keys and event ids
(each copy's keys renamed; time order kept), both playbooks. Rows:

* ``embedded``: :func:`carepath.flink.reference.run_reference` (the engine in memory, the same
  per-case code path as the job) and ``carepath run --clock simulated`` on SQLite;
* ``flink pN (MODE)``: ``carepath flink`` as a user runs it, in a child process, on the whole log,
  with PyFlink's Python functions in ``loopback`` (all in the client process: PyFlink's default
  on a local mini-cluster, and so the earlier revisions') or ``process`` mode (a Python process
  per operator subtask: the command's default; ``--workers`` picks the modes): its
  summary line gives the start-up (from the command's call until the first event enters the job:
  the JVM, the mini-cluster, the job graph, the Python workers), the work (until the last case was
  handled) with its rate (``ev/s``: events / work seconds) and the shutdown (the last checkpoint,
  the workers stopping, the last outputs collected);
* ``flink pN, 1 event``: the same on a one-line log — what a job costs before and after any work;
* ``net ev/s``: the rate as the earlier bench took it, ``(events - 1) / (wall - wall of the
  1-event run)`` (the start-up and the shutdown taken to be those of the 1-event run);
* with ``--against REV``: ``carepath flink`` of git revision ``REV`` (its ``src/carepath``
  extracted with ``git archive`` and put first on ``PYTHONPATH``, for the client and the job's
  Python workers alike), which prints only its total: its rate is the ``net ev/s``.

Every job's process tree (the client, the JVM it starts, the Python workers the JVM starts) is
sampled every 0.1 s from ``/proc``: ``CPU`` is the user + system seconds of all of them, split into
the client's (which runs every Python function in loopback mode), the JVM's and the Python worker
processes'; ``cores`` is CPU / wall, the cores kept busy on average; and ``workers`` the Python
worker processes the job started (in loopback mode they only start and hand over to the client).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

from _revision import archive  # noqa: E402

NAMES = ["vn-retail-support", "omnichannel-journey"]
TICK = os.sysconf("SC_CLK_TCK")
WORKERS_VAR = "_python_worker_execution_mode"  # carepath.flink.job.WORKERS_VAR (imports PyFlink)
DEFAULT = "process"  # configure()'s default
SUMMARY = re.compile(
    r"start-up (?P<startup>[\d.]+) s, then (?P<events>[\d,]+) events in (?P<work>[\d.]+) s"
    r"(?: \([\d,]+ events/s\))?(?:, shutdown (?P<shutdown>[\d.]+) s)?"
)


def make_log(copies: int) -> list[str]:
    from carepath.events import Event
    from carepath.flink.core import micros

    base = []
    for n in NAMES:
        for line in (
            (ROOT / "examples" / "events" / f"{n}.jsonl").read_text(encoding="utf-8").splitlines()
        ):
            if line.strip():
                base.append(json.loads(line))
    out = []
    for c in range(copies):
        for d in base:
            e = dict(d)
            e["id"] = f"{d['id']}-c{c}"
            if e.get("case") is not None:
                e["case"] = f"{d['case']}-c{c}"
            data = dict(e.get("data") or {})
            if "customer" in data:
                data["customer"] = f"{data['customer']}-c{c}"
            e["data"] = data
            out.append(e)
    out.sort(key=lambda e: micros(Event.from_dict(e).at))
    return [json.dumps(e, ensure_ascii=False) for e in out]


# -- the process tree's CPU -----------------------------------------------------------------------
@dataclass
class Tree:
    """The CPU seconds of a process and of every descendant seen, sampled from ``/proc``."""

    root: int
    cpu: dict[int, tuple[str, float]] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def sample(self) -> None:
        parents: dict[int, int] = {}
        stats: dict[int, tuple[str, float]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                text = Path(f"/proc/{entry}/stat").read_text()
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            rest = text[text.rindex(")") + 2 :].split()
            parents[int(entry)] = int(rest[1])
            kind = (
                "python worker"
                if b"beam_boot" in cmd or b"pyflink.fn_execution" in cmd
                else "jvm"
                if b"java" in cmd.split(b"\0")[0]
                else "client"
            )
            stats[int(entry)] = (kind, (int(rest[11]) + int(rest[12])) / TICK)
        family = {self.root}
        grew = True
        while grew:
            grew = False
            for pid, ppid in parents.items():
                if ppid in family and pid not in family:
                    family.add(pid)
                    grew = True
        for pid in family:
            if pid in stats:
                self.cpu[pid] = stats[pid]

    def run(self) -> None:
        while not self.stop.wait(0.1):
            self.sample()

    def by_kind(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for kind, seconds in self.cpu.values():
            out[kind] = out.get(kind, 0.0) + seconds
        return out

    def workers(self) -> int:
        return sum(1 for kind, _ in self.cpu.values() if kind == "python worker")


def flink_cli(
    pbs: list[str],
    events: Path,
    out: Path,
    parallelism: int,
    pythonpath: str | None = None,
    workers: str | None = None,
) -> dict[str, Any]:
    """Run ``carepath flink`` in a child process (``workers``: PyFlink's Python execution mode,
    else the command's default); its wall time, summary and process tree's CPU."""
    env = dict(os.environ)
    env.pop(WORKERS_VAR, None)
    if workers:
        env[WORKERS_VAR] = workers
    if pythonpath:
        env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "carepath", "flink", *pbs, "--events", str(events)]
    cmd += ["--out", str(out), "--parallelism", str(parallelism)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=out.parent
    )
    tree = Tree(proc.pid)
    watcher = threading.Thread(target=tree.run, daemon=True)
    watcher.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    tree.stop.set()
    watcher.join()
    if proc.returncode != 0:
        raise SystemExit(f"carepath flink failed ({proc.returncode}): {err[-2000:]}")
    summary = next(x for x in err.splitlines() if x.startswith("carepath flink:"))
    m = SUMMARY.search(summary)
    kinds = tree.by_kind()
    cpu = sum(kinds.values())
    return {
        "wall_s": wall,
        "startup_s": float(m["startup"]) if m else None,
        "work_s": float(m["work"]) if m else None,
        "shutdown_s": float(m["shutdown"]) if m and m["shutdown"] else None,
        "summary": summary,
        "cpu_s": cpu,
        "jvm_cpu_s": kinds.get("jvm", 0.0),
        "worker_cpu_s": kinds.get("python worker", 0.0),
        "client_cpu_s": kinds.get("client", 0.0),
        "cores": cpu / wall,
        "workers": tree.workers(),
    }


def extract(rev: str) -> str:
    """``src/carepath`` of git revision ``rev`` in a temporary folder (for ``PYTHONPATH``)."""
    return str(archive(rev, "src/carepath") / "src")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--copies", type=int, default=100, help="copies of the example logs (default 100)"
    )
    ap.add_argument("--parallelism", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--against", metavar="REV", help="also run git revision REV's carepath flink")
    ap.add_argument(
        "--workers",
        nargs="*",
        choices=("loopback", "process"),
        default=["loopback", "process"],
        help="Python execution modes to run at each parallelism besides the default",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    load_before = os.getloadavg()

    from carepath import load
    from carepath.cli.app import main as cli_main
    from carepath.flink.reference import run_reference

    pbs = [str(ROOT / "examples" / f"{n}.yaml") for n in NAMES]
    lines = make_log(args.copies)
    n = len(lines)
    rows: list[dict[str, Any]] = []

    compiled = [load(p) for p in pbs]
    t0 = time.perf_counter()
    ref = run_reference(compiled, lines)
    dt = time.perf_counter() - t0
    rows.append({"run": "embedded (engine in memory)", "events": n, "wall_s": dt, "rate": n / dt})
    cases = len(ref.states)

    with tempfile.TemporaryDirectory() as d:
        ev = Path(d) / "events.jsonl"
        ev.write_text("\n".join(lines) + "\n", encoding="utf-8")
        one = Path(d) / "one.jsonl"
        one.write_text(lines[0] + "\n", encoding="utf-8")
        t0 = time.perf_counter()
        cli_main(["run", *pbs, "--store", f"sqlite:///{d}/c.db", "--events", str(ev), "-q"])
        dt = time.perf_counter() - t0
        rows.append({"run": "carepath run (SQLite)", "events": n, "wall_s": dt, "rate": n / dt})

        then = extract(args.against) if args.against else None
        for p in args.parallelism:
            default = DEFAULT
            small = flink_cli(pbs, one, Path(d) / f"out1-{p}", p)
            rows.append({"run": f"flink p{p}, 1 event ({default})", "events": 1, **small})
            for mode in sorted({default, *args.workers}, key=lambda m: m != default):
                out = Path(d) / f"out-{p}-{mode}"
                big = flink_cli(pbs, ev, out, p, workers=mode)
                got = sorted((out / "states.jsonl").read_text().splitlines())
                assert got == ref.state_lines(), "the Flink job disagrees with the engine"
                net = big["wall_s"] - small["wall_s"]
                rows.append(
                    {
                        "run": f"flink p{p} ({mode})",
                        "events": n,
                        **big,
                        "rate": n / big["work_s"] if big["work_s"] else None,
                        "net_rate": (n - 1) / net if net > 0 and mode == default else None,
                    }
                )
            if then is not None:
                small = flink_cli(pbs, one, Path(d) / f"then1-{p}", p, then)
                rows.append({"run": f"flink p{p}, 1 event, {args.against}", "events": 1, **small})
                big = flink_cli(pbs, ev, Path(d) / f"then-{p}", p, then)
                net = big["wall_s"] - small["wall_s"]
                rows.append(
                    {
                        "run": f"flink p{p} (loopback), {args.against}",
                        "events": n,
                        **big,
                        "net_rate": (n - 1) / net if net > 0 else None,
                    }
                )

    info = {"events": n, "cases": cases, "cpus": len(os.sched_getaffinity(0)), "rows": rows}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{n:,} events, {cases:,} cases; {info['cpus']} CPUs; load before: {load_before}")
    print("work/stop: the work after the start-up and the shutdown after it; CPU over the run")
    print(
        f"{'run':34} {'events':>6} {'wall s':>7} {'start-up':>8} {'work':>6} {'stop':>5} "
        f"{'ev/s':>6} {'net ev/s':>8} {'CPU s':>6} {'client':>6} {'JVM':>5} {'Python':>6} "
        f"{'cores':>5} {'workers':>7}"
    )
    for r in rows:
        print(
            f"{r['run']:34} {r['events']:>6} {r['wall_s']:>7.1f} {_f(r.get('startup_s'), 8, 1)} "
            f"{_f(r.get('work_s'), 6, 2)} {_f(r.get('shutdown_s'), 5, 1)} "
            f"{_f(r.get('rate'), 6, 0)} {_f(r.get('net_rate'), 8, 0)} "
            f"{_f(r.get('cpu_s'), 6, 1)} {_f(r.get('client_cpu_s'), 6, 1)} "
            f"{_f(r.get('jvm_cpu_s'), 5, 1)} "
            f"{_f(r.get('worker_cpu_s'), 6, 1)} {_f(r.get('cores'), 5, 2)} "
            f"{'' if r.get('workers') is None else r['workers']:>7}"
        )
    print(f"load after: {os.getloadavg()}")
    return 0


def _f(x: float | None, width: int, digits: int) -> str:
    return f"{'':>{width}}" if x is None else f"{x:>{width},.{digits}f}"


if __name__ == "__main__":
    sys.exit(main())
