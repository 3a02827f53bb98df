"""Benchmark: carepath business-time ``add`` against the ``businesstimedelta`` peer.

Run with ``python bench/bench_calendar.py [--n 200000] [--peer-n 2000] [--seed 7]``.

Both libraries get the same inputs: a Mon-Fri 08:00-17:00 calendar in Asia/Ho_Chi_Minh with the
Vietnamese public holidays of the `holidays` package, start instants spread over 2026-2027 (any
time of day, open or closed), and targets of 1-200 business hours (whole minutes). The script
prints each rate, their ratio, and how many of the peer's results differ from carepath's, with
the reason for each kind of difference it knows about.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from carepath.calendar.business import Calendar

ZONE = "Asia/Ho_Chi_Minh"
SPEC = {"timezone": ZONE, "hours": {"mon-fri": ["08:00-17:00"]}, "holidays": [{"country": "VN"}]}


def inputs(n: int, seed: int) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    lo = datetime(2026, 1, 1, tzinfo=ZoneInfo(ZONE)).timestamp()
    span = 2 * 365 * 86400
    return [(lo + rng.randrange(span), 60.0 * rng.randrange(60, 200 * 60 + 1)) for _ in range(n)]


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds else float("inf")


def bench_carepath(cal: Calendar, data: list[tuple[float, float]]) -> tuple[float, float]:
    add_s = cal.add_s
    for t, d in data[:1000]:  # materialise the years outside the timing
        add_s(t, d)
    start = time.perf_counter()
    for t, d in data:
        add_s(t, d)
    fast = rate(len(data), time.perf_counter() - start)

    tz = ZoneInfo(ZONE)
    dts = [(datetime.fromtimestamp(t, tz), timedelta(seconds=d)) for t, d in data]
    add = cal.add
    start = time.perf_counter()
    for t2, d2 in dts:
        add(t2, d2)
    slow = rate(len(dts), time.perf_counter() - start)
    return fast, slow


def bench_peer(data: list[tuple[float, float]]) -> tuple[float, list[float]] | None:
    try:
        import businesstimedelta as btd
        import holidays
        import pytz  # type: ignore[import-untyped]
    except ImportError:
        return None
    tz = pytz.timezone(ZONE)
    vn = {d for y in range(2025, 2030) for d in holidays.country_holidays("VN", years=y)}
    work = btd.WorkDayRule(
        start_time=datetime.min.time().replace(hour=8),
        end_time=datetime.min.time().replace(hour=17),
        working_days=[0, 1, 2, 3, 4],
        tz=tz,
    )
    rules = btd.Rules([work, btd.HolidayRule(vn, tz=tz)])
    starts = [
        (datetime.fromtimestamp(t, pytz.utc), btd.BusinessTimeDelta(rules, seconds=d))
        for t, d in data
    ]
    out: list[float] = []
    begin = time.perf_counter()
    for t, d in starts:
        out.append((t + d).timestamp())
    return rate(len(data), time.perf_counter() - begin), out


def explain(cal: Calendar, data: list[tuple[float, float]], peer: list[float]) -> dict[str, int]:
    kinds: dict[str, int] = {}
    tz = ZoneInfo(ZONE)
    for (t, d), theirs in zip(data, peer, strict=True):
        ours = cal.add_s(t, d)
        if abs(ours - theirs) < 1e-6:
            continue
        ours_l, theirs_l = datetime.fromtimestamp(ours, tz), datetime.fromtimestamp(theirs, tz)
        if (
            ours_l.time() == datetime.min.time().replace(hour=17)
            and cal.next_open_s(ours) == theirs
        ):
            kind = "closing boundary: peer moves a budget that ends at 17:00 to the next opening"
        elif cal.elapsed_s(t, theirs) != d:
            kind = (
                f"peer result has {cal.elapsed_s(t, theirs) - d:+.0f}s of open time vs the target"
            )
        else:
            kind = "other"
        kinds[kind] = kinds.get(kind, 0) + 1
        del ours_l, theirs_l
    return kinds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--peer-n", type=int, default=2_000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    cal = Calendar.from_dict(SPEC)
    data = inputs(args.n, args.seed)
    fast, slow = bench_carepath(cal, data)
    print(
        f"calendar: Mon-Fri 08:00-17:00 {ZONE}, VN holidays; targets 1-200 business hours; {date.today()}"
    )
    print(f"carepath add_s (epoch seconds): {fast:12,.0f} calls/s  (n={len(data):,})")
    print(f"carepath add   (datetime):      {slow:12,.0f} calls/s")
    peer = bench_peer(data[: args.peer_n])
    if peer is None:
        print("businesstimedelta not installed: no comparison")
        return
    peer_rate, results = peer
    print(f"businesstimedelta:              {peer_rate:12,.0f} calls/s  (n={len(results):,})")
    print(
        f"ratio add_s / peer: {fast / peer_rate:,.0f}x ; datetime add / peer: {slow / peer_rate:,.0f}x"
    )
    kinds = explain(cal, data[: args.peer_n], results)
    print(f"disagreements: {sum(kinds.values())} of {len(results)}")
    for kind, count in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"  {count:6d}  {kind}")


if __name__ == "__main__":
    main()
