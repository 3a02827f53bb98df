"""Realistic, deterministic event logs for the example playbooks (demo, docs, benchmarks).

``retail`` (``examples/vn-retail-support.yaml``): about ``base`` tickets a day (quieter at the
weekend), the 11.11 and 12.12 sale days, and the Tết peak — contacts climb in the fortnight before
Tết to ``peak`` on the peak day (5,000 against 1,000 on usual days), drop during the closure and
come back after it. A channel mix (hotline, email, chat, Facebook, Zalo, chatbot), customer tiers,
seniors and businesses; first replies, questions to the customer, solves, reopenings, cancellations,
priority changes, escalation requests, handled-contact durations (AHT), CSAT/NPS/CES answers,
complaints, orders and returns.

``journey`` (``examples/omnichannel-journey.yaml``): customers who subscribe, browse, abandon carts,
order (often more than once), get deliveries (some late), answer surveys, return or complain.

Everything comes from ``random.Random(seed)``: the same arguments give the same bytes.

>>> events = list(generate("retail", days=2, base=20, seed=1))
>>> events[0]["type"]
'case.opened'
"""

from __future__ import annotations

import heapq
import json
import math
import random
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from carepath._instants import MAX_INSTANT, MIN_INSTANT

__all__ = ["KINDS", "day_volume", "generate", "write_jsonl"]

KINDS = ("retail", "journey")
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
TET_PEAK = date(2027, 2, 2)  # the last working days before Tết Đinh Mùi (6 Feb 2027)
TET_CLOSED = (date(2027, 2, 4), date(2027, 2, 11))
SALE_DAYS = {(11, 11): 2.2, (12, 12): 1.9}

_CHANNELS = (
    ("phone", 25),
    ("email", 15),
    ("chat", 20),
    ("facebook", 12),
    ("zalo", 16),
    ("chatbot", 12),
)
_TOPICS = ("order", "delivery", "warranty", "payment", "return", "account", "other")
_TOPIC_W = (25, 30, 12, 8, 10, 7, 8)
_NAMES = (
    "Nguyễn Thị Mai",
    "Trần Văn Hùng",
    "Lê Thu Hà",
    "Phạm Quốc Bảo",
    "Hoàng Minh Anh",
    "Vũ Thị Lan",
    "Đặng Văn Nam",
    "Bùi Thị Hương",
    "Công ty TNHH Minh Phát",
    "Đỗ Gia Huy",
)
# contacts by local hour of day (0–23), a two-humped working day with an evening tail
_HOURS = (1, 1, 0.5, 0.5, 0.5, 1, 2, 5, 9, 11, 11, 9, 6, 8, 10, 10, 9, 7, 5, 5, 5, 4, 3, 2)


def day_volume(
    d: date, base: float = 1000.0, peak: float = 5000.0, peak_day: date = TET_PEAK
) -> float:
    """Expected contacts on local date ``d``."""
    v = base * (0.75 if d.weekday() == 5 else 0.55 if d.weekday() == 6 else 1.0)
    v *= SALE_DAYS.get((d.month, d.day), 1.0)
    if TET_CLOSED[0] <= d <= TET_CLOSED[1]:
        return v * 0.3
    gap = (peak_day - d).days
    if 0 <= gap <= 14:  # the rush before Tết: up to `peak` on the peak day
        return v + (peak - base) * math.exp(-gap / 3.0)
    if 0 < -gap <= 9:  # the day after the peak, just before the closure
        return v * 2.0
    if TET_CLOSED[1] < d <= TET_CLOSED[1] + timedelta(days=5):
        return v * 1.6  # back-log after the closure
    return v


class _Out:
    """Events of many cases merged into ``at`` order (a heap; cases start in order)."""

    def __init__(self) -> None:
        self.heap: list[tuple[float, int, dict[str, Any]]] = []
        self.seq = 0
        self.n = 0

    def add(
        self, t: float, type_: str, case: str | None, data: dict[str, Any] | None = None
    ) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, {"type": type_, "case": case, "data": data or {}}))

    def flush(self, until: float, prefix: str) -> Iterator[dict[str, Any]]:
        h = self.heap
        while h and h[0][0] < until:
            t, _, ev = heapq.heappop(h)
            self.n += 1
            yield {
                "id": f"{prefix}-{self.n:07d}",
                "type": ev["type"],
                "at": datetime.fromtimestamp(round(t), TZ).isoformat(),
                "case": ev["case"],
                "data": ev["data"],
            }


def _pick(rng: random.Random, items: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([i for i, _ in items], weights=[w for _, w in items])[0]


def _lognorm_minutes(rng: random.Random, median: float, sigma: float = 0.9) -> float:
    return 60.0 * median * math.exp(rng.gauss(0.0, sigma))


def _retail_case(rng: random.Random, out: _Out, key: str, t0: float, n: int) -> None:  # noqa: C901 - one ticket's life, told in order: each branch is a turn of the story
    ch = _pick(rng, _CHANNELS)
    r = rng.random()
    tier = "vip" if r < 0.05 else "gold" if r < 0.15 else "standard"
    r = rng.random()
    prio = "low" if r < 0.1 else "normal" if r < 0.8 else "high" if r < 0.95 else "urgent"
    data: dict[str, Any] = {
        "channel": ch,
        "priority": prio,
        "topic": rng.choices(_TOPICS, _TOPIC_W)[0],
        "customer_name": rng.choice(_NAMES),
    }
    if tier != "standard":
        data["customer_tier"] = tier
    if rng.random() < 0.08:
        data["customer_type"] = "business"
    if rng.random() < 0.1:
        data["customer_age"] = rng.randint(60, 85)
    elif rng.random() < 0.5:
        data["customer_age"] = rng.randint(18, 59)
    if rng.random() < 0.02:
        data["lives_alone"] = True
    out.add(t0, "case.opened", key, data)
    customer = f"KH-{rng.randint(1, max(50, n // 3)):07d}"
    t = t0
    if rng.random() < 0.03:  # spam, duplicates, wrong queue
        out.add(
            t + rng.uniform(60, 3600),
            "case.cancelled",
            key,
            {"reason": rng.choice(("spam", "duplicate", "wrong_queue", "other"))},
        )
        return
    if ch == "chatbot":
        if rng.random() < 0.55:  # the bot answers it
            out.add(t + rng.uniform(60, 400), "case.solved", key, {"resolution": "answered"})
            if rng.random() < 0.2:
                out.add(
                    t + rng.uniform(3700, 9000),
                    "survey.answered",
                    key,
                    {
                        "survey": "csat",
                        "score": rng.choices((1, 2, 3, 4, 5), (6, 6, 12, 36, 40))[0],
                    },
                )
            return
        t += rng.uniform(30, 300)
        ch = rng.choice(("chat", "zalo"))
        out.add(t, "bot.handed_off", key, {"to_channel": ch})
    if rng.random() < 0.02:
        out.add(t + rng.uniform(60, 1800), "case.priority_changed", key, {"priority": "urgent"})
    median = {"chat": 6, "zalo": 7, "phone": 20, "facebook": 35, "email": 95}.get(ch, 30)
    t += _lognorm_minutes(rng, median)
    agent = f"ag.{rng.randint(1, 60):02d}"
    asks = rng.random() < 0.22
    out.add(
        t,
        "agent.replied",
        key,
        {"agent": agent, "needs_customer": asks} if asks else {"agent": agent},
    )
    if ch in ("phone", "chat", "zalo", "facebook"):
        out.add(
            t + 1,
            "contact.handled",
            key,
            {"duration": int(max(40.0, rng.lognormvariate(math.log(300), 0.5)))},
        )
    if rng.random() < 0.015:
        out.add(t + rng.uniform(600, 7200), "case.escalation_requested", key)
    if asks:
        if rng.random() < 0.15:
            return  # the customer never answers: auto-close after 5 days
        t += rng.uniform(1800, 36 * 3600)
        out.add(t, "customer.replied", key)
        t += _lognorm_minutes(rng, median * 2)
        out.add(t, "agent.replied", key, {"agent": agent})
    t += _lognorm_minutes(rng, 30, 1.0)
    out.add(
        t,
        "case.solved",
        key,
        {"resolution": rng.choice(("answered", "fixed", "replaced", "refunded"))},
    )
    if rng.random() < 0.06:  # reopened: not fixed after all
        t += rng.uniform(3600, 2 * 86400)
        out.add(t, "case.reopened", key)
        t += _lognorm_minutes(rng, 60)
        out.add(t, "agent.replied", key, {"agent": agent})
        t += _lognorm_minutes(rng, 60)
        out.add(t, "case.solved", key, {"resolution": "fixed"})
    ts = t + rng.uniform(3700, 20000)
    if rng.random() < 0.35:
        w = (3, 4, 8, 35, 50) if tier == "vip" else (5, 5, 10, 35, 45)
        out.add(
            ts,
            "survey.answered",
            key,
            {"survey": "csat", "score": rng.choices((1, 2, 3, 4, 5), w)[0]},
        )
    if rng.random() < 0.1:
        out.add(
            ts + 60,
            "survey.answered",
            key,
            {
                "survey": "nps",
                "score": rng.choices(range(11), (2, 1, 1, 2, 2, 4, 6, 10, 18, 24, 30))[0],
            },
        )
    if rng.random() < 0.05:
        out.add(
            ts + 120,
            "survey.answered",
            key,
            {"survey": "ces", "score": rng.choices(range(1, 8), (20, 30, 20, 12, 8, 6, 4))[0]},
        )
    if rng.random() < 0.02:
        out.add(t + rng.uniform(600, 86400), "complaint.filed", key)
    if data["topic"] in ("order", "delivery", "payment") or rng.random() < 0.2:
        out.add(
            t + rng.uniform(600, 3 * 86400),
            "order.placed",
            None,
            {
                "customer": customer,
                "order_id": f"DH-{n:08d}",
                "amount": rng.randint(10, 400) * 10000,
            },
        )
        if rng.random() < 0.3:
            out.add(
                t + rng.uniform(86400, 20 * 86400),
                "order.placed",
                None,
                {
                    "customer": customer,
                    "order_id": f"DH-{n:08d}b",
                    "amount": rng.randint(10, 400) * 10000,
                },
            )
        if data["topic"] == "return" and rng.random() < 0.5:
            out.add(
                t + rng.uniform(3600, 5 * 86400),
                "order.returned",
                None,
                {"order_id": f"DH-{n:08d}"},
            )


def _journey_case(rng: random.Random, out: _Out, key: str, t0: float, n: int) -> None:
    ch = rng.choice(("zalo", "zalo", "facebook", "email", "sms"))
    src = rng.choice(("web", "app", "store", "zalo", "facebook", "ads"))
    name = rng.choice(("Lan", "Hùng", "Mai", "Bảo", "Hà", "Nam"))
    out.add(t0, "customer.subscribed", key, {"channel": ch, "source": src, "name": name})
    t = t0
    if rng.random() < 0.7:
        t += rng.uniform(3600, 5 * 86400)
        out.add(t, "product.viewed", key)
    if rng.random() < 0.3:
        t += rng.uniform(600, 86400)
        out.add(t, "cart.abandoned", key, {"amount": rng.randint(10, 300) * 10000})
    orders, ltv = 0, 0
    while rng.random() < (0.55 if orders == 0 else 0.35) and orders < 6:
        t += rng.uniform(3600, 30 * 86400)
        orders += 1
        amount = rng.randint(10, 500) * 10000
        ltv += amount
        oid = f"DH-{n:07d}-{orders}"
        out.add(
            t,
            "order.placed",
            key,
            {
                "customer": key,
                "order_id": oid,
                "amount": amount,
                "channel": ch,
                "source": src,
                "order_count": orders,
                "lifetime_value": ltv,
                "name": name,
            },
        )
        if rng.random() < 0.04:
            out.add(t + rng.uniform(600, 86400), "order.cancelled", key, {"order_id": oid})
            continue
        t += rng.uniform(1, 6) * 86400
        out.add(t, "order.delivered", key, {"order_id": oid})
        if rng.random() < 0.4:
            out.add(
                t + rng.uniform(86400, 3 * 86400),
                "survey.answered",
                key,
                {"survey": "csat", "score": rng.choices((1, 2, 3, 4, 5), (4, 4, 10, 37, 45))[0]},
            )
        if rng.random() < 0.06:
            out.add(t + rng.uniform(86400, 10 * 86400), "order.returned", key, {"order_id": oid})
        if rng.random() < 0.02:
            out.add(t + rng.uniform(3600, 86400), "complaint.filed", key)
    if orders >= 2 and rng.random() < 0.5:
        out.add(
            t + rng.uniform(7, 9) * 86400,
            "survey.answered",
            key,
            {
                "survey": "nps",
                "score": rng.choices(range(11), (2, 1, 1, 2, 2, 4, 6, 10, 18, 24, 30))[0],
            },
        )
    if rng.random() < 0.03:
        out.add(t + rng.uniform(86400, 20 * 86400), "customer.unsubscribed", key)


#: How long after its opening day a generated case may still have events (a generous bound).
_CASE_TAIL = timedelta(days=400)


def generate(
    kind: str = "retail",
    *,
    start: date = date(2026, 11, 1),
    days: int = 150,
    base: float = 1000.0,
    peak: float = 5000.0,
    peak_day: date = TET_PEAK,
    seed: int = 7,
    max_events: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Event dicts (SPEC §1 JSON shape) in ``at`` order; stops after ``max_events`` if given.

    The arguments are checked at once (not when the first event is asked for): ``ValueError``
    for an unknown kind, a negative count or volume, or a period whose events would fall outside
    the supported instants (1900-01-01 up to 9000-01-01, :mod:`carepath._instants`)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    for name, value in (("days", days), ("base", base), ("peak", peak)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a number ≥ 0, got {value!r}")
    if max_events is not None and max_events < 0:
        raise ValueError(f"max_events must be ≥ 0, got {max_events!r}")
    try:
        first = datetime(start.year, start.month, start.day, tzinfo=TZ)
        inside = first >= MIN_INSTANT + timedelta(days=1) and (
            first + timedelta(days=days) + _CASE_TAIL < MAX_INSTANT
        )
    except OverflowError:
        inside = False
    if not inside:
        raise ValueError(
            f"{days} day(s) from {start.isoformat()} leave the supported instants "
            f"({MIN_INSTANT.date().isoformat()} up to {MAX_INSTANT.date().isoformat()})"
        )
    return _generate(kind, start, int(days), base, peak, peak_day, seed, max_events)


def _generate(
    kind: str,
    start: date,
    days: int,
    base: float,
    peak: float,
    peak_day: date,
    seed: int,
    max_events: int | None,
) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    out = _Out()
    prefix = "g" if kind == "retail" else "j"
    case = _retail_case if kind == "retail" else _journey_case
    n = 0
    emitted = 0
    for i in range(days):
        d = start + timedelta(days=i)
        vol = day_volume(d, base, peak, peak_day) if kind == "retail" else base * 0.1
        count = max(0, round(rng.gauss(vol, math.sqrt(vol))))
        midnight = datetime(d.year, d.month, d.day, tzinfo=TZ).timestamp()
        hours = rng.choices(range(24), weights=_HOURS, k=count)
        opens = sorted(midnight + h * 3600 + rng.uniform(0, 3600) for h in hours)
        for t0 in opens:
            n += 1
            key = f"T-{n:07d}" if kind == "retail" else f"KH-{n:07d}"
            for ev in out.flush(t0, prefix):
                yield ev
                emitted += 1
                if max_events is not None and emitted >= max_events:
                    return
            case(rng, out, key, t0, n)
    for ev in out.flush(math.inf, prefix):
        yield ev
        emitted += 1
        if max_events is not None and emitted >= max_events:
            return


def write_jsonl(events: Iterable[dict[str, Any]], dest: str | Path | IO[str]) -> int:
    """Write events as JSON lines; returns how many."""
    n = 0
    if isinstance(dest, str | Path):
        with Path(dest).open("w", encoding="utf-8") as fh:
            return write_jsonl(events, fh)
    dumps = json.dumps
    for ev in events:
        dest.write(dumps(ev, ensure_ascii=False, separators=(",", ":")) + "\n")
        n += 1
    return n
