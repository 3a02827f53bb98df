"""Retention (SPEC §10): ``Store.purge`` and ``carepath purge`` on every store. Ended cases past
``ended_cases`` go (one transaction per case, with their actions), the others stay byte-identical;
delivered actions and rejected events go after their own retention. Time is injected."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import carepath
from carepath.errors import CarepathError
from carepath.events import Event
from carepath.runtime import Runtime, Store, open_store
from carepath.runtime.clock import ManualClock
from carepath.state import Action
from conftest import postgres_schema_url

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
T0 = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)

PLAYBOOK = """\
carepath: 1
id: shop
version: 1
retention: {ended_cases: 30d, rejected: 7d, delivered_actions: 1d}
events:
  order.placed:
    phone: {type: string, pii: true}
    total: {type: int, default: 0}
  order.delivered: {}
fields:
  phone: {type: string, pii: true}
  total: int
start:
  on: order.placed
  set: {phone: =event.phone, total: =event.total}
stages:
  open:
    initial: true
    on:
      order.delivered: {to: done}
  done: {final: true}
"""


@pytest.fixture(scope="module")
def playbook(tmp_path_factory: pytest.TempPathFactory) -> carepath.Playbook:
    path = tmp_path_factory.mktemp("pb") / "shop.yaml"
    path.write_text(PLAYBOOK, encoding="utf-8")
    return carepath.load(path)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'cases.db'}" if request.param == "sqlite" else None
    s = open_store(url or postgres_schema_url())
    yield s
    s.close()


def _event(key: str, type_: str, at: datetime, **data: Any) -> Event:
    return Event.from_dict(
        {"id": f"{key}-{type_}", "type": type_, "at": at.isoformat(), "case": key, "data": data}
    )


def _fill(store: Store, pb: carepath.Playbook, ends: dict[str, int | None]) -> ManualClock:
    """A case per key, ended ``days`` after T0 (``None``: still open), each with a delivered
    action due when it was placed."""
    clock = ManualClock(T0)
    rt = Runtime([pb], store, clock=clock)
    for key in sorted(ends):
        assert rt.submit(_event(key, "order.placed", T0, phone="+84" + key)).status == "applied"
        act = Action(f"{key}:crm", pb.id, key, "emit", {"to": "+84" + key}, T0, "x")
        store.atomic(lambda tx, act=act: tx.add_outbox([act]))
        store.atomic(lambda tx, key=key: tx.finish_outbox(pb.id, f"{key}:crm", "w", delivered=True))
    for key, days in sorted(
        ((k, d) for k, d in ends.items() if d is not None), key=lambda kd: (kd[1], kd[0])
    ):
        at = clock.set(T0 + timedelta(days=days))
        assert rt.submit(_event(key, "order.delivered", at)).status == "applied"
    return clock


def _snapshot(store: Store) -> dict[str, str]:
    return {c.case: c.to_json() for c in store.cases()}


def test_purge_ended_cases_actions_and_rejected(store: Store, playbook: carepath.Playbook) -> None:
    _fill(store, playbook, {"old": 1, "recent": 20, "open": None})
    rt = Runtime([playbook], store, clock=ManualClock(T0 + timedelta(days=5)))
    assert rt.submit_raw("not json").status == "rejected"
    before = _snapshot(store)
    now = (T0 + timedelta(days=31, hours=12)).timestamp()
    done = store.purge([playbook], now)
    assert done.to_dict() == {"cases": 1, "actions": 3, "rejected": 1}
    after = _snapshot(store)
    assert sorted(after) == ["open", "recent"]
    assert after == {k: before[k] for k in after}  # the others are untouched
    assert [i.case for i in store.outbox()] == []  # delivered > 1d ago: gone, with old's
    assert store.rejected() == []
    # nothing more is due: purging again changes nothing
    assert store.purge([playbook], now).to_dict() == {"cases": 0, "actions": 0, "rejected": 0}


def test_purge_keeps_a_case_with_an_action_to_deliver(
    store: Store, playbook: carepath.Playbook
) -> None:
    _fill(store, playbook, {"old": 1})
    act = Action("old:late", playbook.id, "old", "emit", {"n": 1}, T0, "x")
    store.atomic(lambda tx: tx.add_outbox([act]))
    now = (T0 + timedelta(days=90)).timestamp()
    assert store.purge([playbook], now).cases == 0
    assert [c.case for c in store.cases()] == ["old"]


def test_purge_without_retention_deletes_nothing(
    store: Store, playbook: carepath.Playbook, tmp_path: Path
) -> None:
    _fill(store, playbook, {"old": 1})
    path = tmp_path / "keep.yaml"
    path.write_text(PLAYBOOK.replace("retention:", "# retention:"), encoding="utf-8")
    keep = carepath.load(path)
    now = (T0 + timedelta(days=900)).timestamp()
    assert store.purge([keep], now).to_dict() == {"cases": 0, "actions": 0, "rejected": 0}
    assert len(store.cases()) == 1


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ends=st.dictionaries(
        st.sampled_from("abcdefgh"), st.none() | st.integers(min_value=0, max_value=60), max_size=6
    ),
    at=st.integers(min_value=0, max_value=100),
)
def test_purge_removes_exactly_the_cases_past_retention(
    playbook: carepath.Playbook,
    tmp_path_factory: pytest.TempPathFactory,
    ends: dict[str, int | None],
    at: int,
) -> None:
    with open_store(f"sqlite:///{tmp_path_factory.mktemp('p') / 'cases.db'}") as store:
        _fill(store, playbook, ends)
        before = _snapshot(store)
        store.purge([playbook], (T0 + timedelta(days=at)).timestamp())
        gone = {k for k, d in ends.items() if d is not None and at - d >= 30}
        after = _snapshot(store)
        assert set(after) == set(ends) - gone
        assert after == {k: before[k] for k in after}


def test_bad_retention_is_a_located_load_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(PLAYBOOK.replace("rejected: 7d", "rejected: 7bd"), encoding="utf-8")
    with pytest.raises(CarepathError) as err:
        carepath.load(path)
    assert "retention" in str(err.value) and "business days" in str(err.value)
    path.write_text(PLAYBOOK.replace("rejected: 7d", "kept: 7d"), encoding="utf-8")
    with pytest.raises(CarepathError) as err:
        carepath.load(path)
    assert "kept" in str(err.value)


def test_cli_purge(tmp_path: Path, playbook: carepath.Playbook) -> None:
    db = tmp_path / "cases.db"
    with open_store(f"sqlite:///{db}") as store:
        _fill(store, playbook, {"old": 1, "recent": 20})
    pb = tmp_path / "shop.yaml"
    pb.write_text(PLAYBOOK, encoding="utf-8")
    url = f"sqlite:///{db}"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "carepath", *args],
            env=ENV,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    r = cli("purge", str(pb), "--store", url, "--now", "2027-02-05T00:00:00Z", "-f", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"cases": 1, "actions": 2, "rejected": 0}
    r = cli("purge", str(pb), "--store", url, "--now", "2027-03-03T00:00:00Z")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "purged 1 case(s), 0 action(s), 0 rejected event(s)\n"
    r = cli("purge", str(pb), "--store", url, "--now", "soon")
    assert r.returncode == 2 and r.stderr.startswith("carepath: --now:")
    r = cli("purge", str(pb), "--store", f"sqlite:///{tmp_path / 'none.db'}")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_run_follow_is_a_worker_loop_and_purges_too(
    tmp_path: Path, playbook: carepath.Playbook
) -> None:
    # SPEC §10: retention is applied "daily by the worker loop"; `carepath run --follow` on the
    # real clock is one (a worker that fires wake-ups and delivers), as `serve` and run_forever are
    db = tmp_path / "cases.db"
    then = datetime(2020, 1, 6, 9, 0, tzinfo=UTC)  # the run below is on the real clock
    with open_store(f"sqlite:///{db}") as store:
        rt = Runtime([playbook], store, clock=ManualClock(then))
        for key in ("old", "open"):
            assert rt.submit(_event(key, "order.placed", then, phone="+84")).status == "applied"
        assert rt.submit(_event("old", "order.delivered", then)).status == "applied"
    pb = tmp_path / "shop.yaml"
    pb.write_text(PLAYBOOK, encoding="utf-8")
    (tmp_path / "none.jsonl").write_text("", encoding="utf-8")
    args = ["run", str(pb), "--store", f"sqlite:///{db}", "--events", str(tmp_path / "none.jsonl")]
    # --until already past: one idle round, then it stops
    args += ["--follow", "--poll", "0.05", "--until", "2000-01-01T00:00:00Z"]
    r = subprocess.run(
        [sys.executable, "-m", "carepath", *args],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    with open_store(f"sqlite:///{db}") as store:
        assert [c.case for c in store.cases()] == ["open"]


@pytest.mark.slow
def test_a_killed_purge_leaves_each_case_purged_or_untouched(
    tmp_path: Path, playbook: carepath.Playbook
) -> None:
    db = tmp_path / "cases.db"
    pb = tmp_path / "shop.yaml"
    pb.write_text(PLAYBOOK, encoding="utf-8")
    keys = [f"K{i}" for i in range(6)]
    with open_store(f"sqlite:///{db}") as store:
        _fill(store, playbook, dict.fromkeys(keys, 1))
        before = _snapshot(store)
    now = (T0 + timedelta(days=40)).timestamp()
    script = textwrap.dedent(
        f"""
        import os, signal
        import carepath
        from carepath.runtime import open_store
        from carepath.runtime.purge import purge
        seen = []
        def inside(pb, key):
            seen.append(key)
            if len(seen) == 4:  # the 4th case's actions are deleted, the case not yet
                os.kill(os.getpid(), signal.SIGKILL)
        purge(open_store("sqlite:///{db}"), [carepath.load({str(pb)!r})], {now}, _inside=inside)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], env=ENV, timeout=60, check=False)
    assert proc.returncode == -9
    with open_store(f"sqlite:///{db}") as store:
        after = _snapshot(store)
        assert sorted(after) == keys[3:]  # three purged whole, the others as they were
        assert after == {k: before[k] for k in after}
        assert sorted(i.case for i in store.outbox()) == keys[3:]  # the 4th rolled back
        assert store.purge([playbook], now).cases == 3
        assert store.cases() == [] and store.outbox() == []


def test_the_worker_loop_purges_when_it_starts_and_daily(
    store: Store, playbook: carepath.Playbook
) -> None:
    """SPEC §10: retention is applied daily by the worker loop, on the runtime's clock."""
    import threading

    from carepath.runtime._delivery import PURGE_EVERY

    clock = _fill(store, playbook, {"a": 1, "b": 25, "open": None})
    rt = Runtime([playbook], store, clock=clock)

    class OneRound(threading.Event):
        """Set after the loop has checked it once: run_forever does exactly one round."""

        checks = 0

        def is_set(self) -> bool:
            self.checks += 1
            return self.checks > 1

    clock.set(T0 + timedelta(days=32))
    rt.run_forever(stop=OneRound(), poll=0.01)  # the first round purges: "a" ended 31 days ago
    assert sorted(c.case for c in store.cases()) == ["b", "open"]
    # within the day nothing is applied, even once "b" is past its retention
    clock.set(T0 + timedelta(days=32) + PURGE_EVERY - timedelta(seconds=1))
    assert rt.purge_due() is None
    # a day after the last purge it runs again: "b" ended 25 + 30 days after T0 is gone then
    clock.set(T0 + timedelta(days=56))
    done = rt.purge_due()
    assert done is not None and done.cases == 1
    assert [c.case for c in store.cases()] == ["open"]
    assert rt.purge_due() is None  # and not again the same day


def test_no_purge_without_retention(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "plain.yaml"
    path.write_text(
        PLAYBOOK.replace(
            "retention: {ended_cases: 30d, rejected: 7d, delivered_actions: 1d}\n", ""
        ),
        encoding="utf-8",
    )
    pb = carepath.load(path)
    clock = _fill(store, pb, {"a": 1})
    clock.set(T0 + timedelta(days=400))
    assert Runtime([pb], store, clock=clock).purge_due() is None
    assert [c.case for c in store.cases()] == ["a"]


def test_delivered_actions_are_kept_for_their_retention_from_their_delivery(
    store: Store, playbook: carepath.Playbook
) -> None:
    """``delivered_actions: 1d`` counts from the delivery, not from when the action was due."""
    clock = ManualClock(T0)
    act = Action("late:crm", playbook.id, "late", "emit", {"n": 1}, T0, "x")
    store.atomic(lambda tx: tx.add_outbox([act]))
    rt = Runtime([playbook], store, clock=clock, handlers={"*": lambda a, s: None})
    clock.set(T0 + timedelta(days=5))  # the worker was down: delivered five days late
    assert rt.deliver() == 1
    half_a_day_later = (T0 + timedelta(days=5, hours=12)).timestamp()
    assert store.purge([playbook], half_a_day_later).actions == 0
    assert [i.id for i in store.outbox()] == ["late:crm"]
    a_day_later = (T0 + timedelta(days=6, seconds=1)).timestamp()
    assert store.purge([playbook], a_day_later).actions == 1
    assert store.outbox() == []
