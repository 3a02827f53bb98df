"""Events/s through the Flink job (parallelism 1 and 2) beside the embedded engine on the same log,
and the job's start-up cost measured separately.

The log: the two example logs replicated ``--copies`` times with distinct case keys and event ids
(each copy shifted by a few seconds so time order is kept), both playbooks. Measured:

* ``embedded``: :func:`carepath.flink.reference.run_reference` (the engine in memory, the same
  per-case code path as the job) and ``carepath run --clock simulated`` on SQLite;
* ``flink-startup``: the same job on a one-line log — what a job costs before it does any work;
* ``flink pN``: the whole log, end to end (mini-cluster start, run, collect), and the rate net of
  start-up: ``events / (total - startup)``.

Run: ``.venv/bin/python bench/bench_flink.py [--copies N]``. Prints a table; ``--json`` for JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAMES = ["vn-retail-support", "omnichannel-journey"]


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--copies", type=int, default=40, help="copies of the example logs (default 40)"
    )
    ap.add_argument("--parallelism", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from carepath import load
    from carepath.cli.app import main as cli_main
    from carepath.flink.reference import run_reference

    pbs = [str(ROOT / "examples" / f"{n}.yaml") for n in NAMES]
    lines = make_log(args.copies)
    n = len(lines)
    rows: list[dict[str, object]] = []

    compiled = [load(p) for p in pbs]
    t0 = time.perf_counter()
    ref = run_reference(compiled, lines)
    dt = time.perf_counter() - t0
    rows.append(
        {"run": "embedded (engine in memory)", "events": n, "seconds": dt, "events_per_s": n / dt}
    )
    cases = len(ref.states)
    sizes = [len(s.to_json()) for s in ref.states.values()]

    with tempfile.TemporaryDirectory() as d:
        ev = Path(d) / "events.jsonl"
        ev.write_text("\n".join(lines) + "\n", encoding="utf-8")
        t0 = time.perf_counter()
        cli_main(
            [
                "run",
                *pbs,
                "--store",
                f"sqlite:///{d}/c.db",
                "--events",
                str(ev),
                "--clock",
                "simulated",
                "-q",
            ]
        )
        dt = time.perf_counter() - t0
        rows.append(
            {"run": "carepath run (SQLite)", "events": n, "seconds": dt, "events_per_s": n / dt}
        )

    from carepath.flink.job import run_lines

    for p in args.parallelism:
        t0 = time.perf_counter()
        run_lines(pbs, lines[:1], parallelism=p)
        startup = time.perf_counter() - t0
        rows.append(
            {
                "run": f"flink p{p} start-up (1 event)",
                "events": 1,
                "seconds": startup,
                "events_per_s": None,
            }
        )
        t0 = time.perf_counter()
        res = run_lines(pbs, lines, parallelism=p)
        total = time.perf_counter() - t0
        assert sorted(res.states) == ref.state_lines(), "the Flink job disagrees with the engine"
        net = total - startup
        rows.append(
            {
                "run": f"flink p{p} end to end",
                "events": n,
                "seconds": total,
                "events_per_s": n / total,
                "net_events_per_s": n / net if net > 0 else None,
            }
        )

    info = {
        "events": n,
        "cases": cases,
        "state_bytes_mean": sum(sizes) / len(sizes),
        "state_bytes_max": max(sizes),
        "rows": rows,
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(
        f"{n} events, {cases} cases; CaseState JSON mean {info['state_bytes_mean']:.0f} B, max {max(sizes)} B"
    )
    print(f"{'run':34} {'events':>7} {'seconds':>8} {'events/s':>9} {'net ev/s':>9}")
    for r in rows:
        eps = r["events_per_s"]
        net = r.get("net_events_per_s")
        print(
            f"{r['run']:34} {r['events']:>7} {r['seconds']:>8.2f} "
            f"{'' if eps is None else f'{eps:,.0f}':>9} {'' if net is None else f'{net:,.0f}':>9}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
