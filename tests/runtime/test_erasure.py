"""Erasure of personal data (SPEC §10) on every store: states, outbox params, rejected events;
clocks untouched; one transaction per case (a real SIGKILL in the middle of an erasure)."""

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
events:
  order.placed:
    phone: {type: string, pii: true}
    name: {type: string, pii: true}
    total: {type: int, default: 0}
  order.delivered: {}
fields:
  phone: {type: string, pii: true}
  name: {type: string, pii: true}
  total: int
start:
  on: order.placed
  set: {phone: =event.phone, name: =event.name, total: =event.total}
stages:
  open:
    initial: true
    on:
      order.delivered: {to: done}
  done: {final: true}
slas:
  delivery: {start: {on: order.placed}, stop: {on: order.delivered}, targets: [{within: 48h}],
             calendar: always}
"""


@pytest.fixture(scope="module")
def playbook(tmp_path_factory: pytest.TempPathFactory) -> carepath.Playbook:
    path = tmp_path_factory.mktemp("pb") / "shop.yaml"
    path.write_text(PLAYBOOK, encoding="utf-8")
    return carepath.load(path)


def _sqlite(tmp: Path) -> Store:
    return open_store(f"sqlite:///{tmp / 'cases.db'}")


def _postgres(tmp: Path) -> Store:
    return open_store(postgres_schema_url())


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = (_sqlite if request.param == "sqlite" else _postgres)(tmp_path)
    yield s
    s.close()


def _placed(key: str, phone: Any, name: Any, total: Any = 1, n: int = 0) -> dict[str, Any]:
    return {
        "id": f"{key}-{n}",
        "type": "order.placed",
        "at": (T0 + timedelta(minutes=n)).isoformat(),
        "case": key,
        "data": {"phone": phone, "name": name, "total": total},
    }


def _fill(store: Store, pb: carepath.Playbook, people: dict[str, tuple[str, str]]) -> Runtime:
    """One case per key, a bad event for each (rejected with its data), and an action whose
    params hold the customer's phone."""
    rt = Runtime([pb], store, clock=ManualClock(T0))
    for n, (key, (phone, name)) in enumerate(sorted(people.items())):
        assert rt.submit(Event.from_dict(_placed(key, phone, name, n=n))).status == "applied"
        bad = _placed(key, phone, name, total="x", n=n + 1000)
        assert rt.submit_raw(json.dumps(bad)).status == "rejected"
        act = Action(
            f"{key}:crm", pb.id, key, "emit", {"to": phone, "text": f"Hi {name}!", "n": 1}, T0, "x"
        )
        store.atomic(lambda tx, act=act: tx.add_outbox([act]))
    return rt


def _everything(store: Store) -> str:
    """All the store can return, as one text."""
    return json.dumps(
        {
            "cases": [c.to_json() for c in store.cases()],
            "outbox": [i.to_dict() for i in store.outbox()],
            "rejected": [r.to_dict() for r in store.rejected()],
        },
        ensure_ascii=False,
    )


def _clocks(store: Store) -> dict[str, Any]:
    return {c.case: (c.to_dict()["clocks"], c.stage, c.next_wakeup_s) for c in store.cases()}


def test_erase_one_case_everywhere(store: Store, playbook: carepath.Playbook) -> None:
    _fill(store, playbook, {"A": ("+84901234567", "Nguyễn Thị Mai"), "B": ("+84987", "Lan")})
    before = _clocks(store)
    done = store.erase("A")
    assert done.to_dict() == {"cases": 1, "values": 2, "actions": 1, "rejected": 1}
    text = _everything(store)
    assert "+84901234567" not in text and "Nguyễn Thị Mai" not in text
    assert "+84987" in text and "Lan" in text  # the other customer is untouched
    a = store.get("shop", "A")
    assert a is not None and dict(a.data) == {"phone": None, "name": None, "total": 1}
    assert _clocks(store) == before
    (item,) = [i for i in store.outbox() if i.case == "A"]
    assert dict(item.action.params) == {"to": None, "text": None, "n": 1}
    (rej,) = store.rejected("A")
    assert rej.event["data"] == {"phone": None, "name": None, "total": "x"}
    assert store.erase("A").to_dict() == {"cases": 1, "values": 0, "actions": 0, "rejected": 0}


def test_erase_by_field_and_case_goes_on(store: Store, playbook: carepath.Playbook) -> None:
    rt = _fill(
        store, playbook, {"A": ("+8490", "Mai"), "B": ("+8491", "Lan"), "C": ("+8490", "Mai")}
    )
    done = store.erase(field="phone", value="+8490", playbook="shop")
    assert (done.cases, done.values) == (2, 4)
    assert store.erase(field="phone", value="+8490").cases == 0  # already erased
    assert store.erase(field="phone", value="+8491", playbook="other").cases == 0
    ev = Event("A-done", "order.delivered", T0 + timedelta(hours=1), "A", {})
    assert rt.submit(ev).status == "applied"
    a = store.get("shop", "A")
    assert a is not None and a.stage == "done" and a.clocks["delivery"].status == "met"


def test_erase_needs_one_selector(store: Store) -> None:
    with pytest.raises(ValueError, match="either a case key or a field"):
        store.erase()
    with pytest.raises(ValueError, match="either a case key or a field"):
        store.erase("A", field="phone", value="x")


_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=4)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    people=st.dictionaries(
        st.from_regex(r"K[0-9]{1,3}", fullmatch=True),
        st.tuples(_text.map(lambda s: "tel:" + s), _text.map(lambda s: "name:" + s)),
        min_size=1,
        max_size=4,
    ),
    data=st.data(),
)
def test_erasure_removes_every_marked_value(
    tmp_path_factory: pytest.TempPathFactory,
    playbook: carepath.Playbook,
    people: dict[str, tuple[str, str]],
    data: st.DataObject,
) -> None:
    """Whatever the values, none of an erased case's marked values is left anywhere the store
    can return it, the others are all still there, and no clock moves."""
    with _sqlite(tmp_path_factory.mktemp("p")) as store:
        _fill(store, playbook, people)
        before = _clocks(store)
        gone = data.draw(st.sampled_from(sorted(people)))
        store.erase(gone)
        text = _everything(store)
        assert _clocks(store) == before
        for key, (phone, name) in people.items():
            erased = [phone, name] if key == gone else []
            for v in erased:
                assert json.dumps(v, ensure_ascii=False)[1:-1] not in text
        kept = {v for k, vs in people.items() if k != gone for v in vs}
        for v in kept - set(people[gone]):
            if not any(e in v for e in people[gone]):
                assert json.dumps(v, ensure_ascii=False)[1:-1] in text


@pytest.mark.slow
def test_a_killed_erasure_leaves_each_case_erased_or_untouched(
    tmp_path: Path, playbook: carepath.Playbook
) -> None:
    db = tmp_path / "cases.db"
    people = {f"K{i}": (f"+8490{i:04d}", f"Name {i}") for i in range(6)}
    with _sqlite(tmp_path) as store:
        _fill(store, playbook, people)
        before = _clocks(store)
    script = textwrap.dedent(
        f"""
        import os, signal
        from carepath.runtime import open_store
        from carepath.runtime.erasure import erase
        seen = []
        def inside(pb, key):
            seen.append(key)
            if len(seen) == 4:  # the state of the 4th case is written, its outbox not yet
                os.kill(os.getpid(), signal.SIGKILL)
        erase(open_store("sqlite:///{db}"), field="total", value=1, _inside=inside)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], env=ENV, timeout=60, check=False)
    assert proc.returncode == -9
    with _sqlite(tmp_path) as store:
        assert _clocks(store) == before
        erased = []
        for key, (phone, _name) in people.items():
            state = store.get("shop", key)
            assert state is not None
            (item,) = [i for i in store.outbox() if i.case == key]
            (rej,) = store.rejected(key)
            parts = (state.data["phone"], item.action.params["to"], rej.event["data"]["phone"])
            assert parts in ((None, None, None), (phone, phone, phone)), key
            erased.append(parts[0] is None)
        assert sum(erased) == 3
        assert store.erase(field="total", value=1).cases == 6
        assert not any(p in _everything(store) for p, _ in people.values())


def test_cli_erase(tmp_path: Path, playbook: carepath.Playbook) -> None:
    with _sqlite(tmp_path) as store:
        _fill(store, playbook, {"A": ("+8490", "Mai"), "B": ("+8491", "Lan")})
    url = f"sqlite:///{tmp_path / 'cases.db'}"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "carepath", *args],
            env=ENV,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    r = cli("--log-level", "info", "erase", "--store", url, "--case", "A", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"cases": 1, "values": 2, "actions": 1, "rejected": 1}
    assert "erased personal data: 1 case(s)" in r.stderr and "+8490" not in r.stderr
    r = cli("erase", "--store", url, "--field", "name", "--value", "Lan")
    assert r.returncode == 0 and r.stdout.startswith("erased 1 case(s): 2 value(s)")
    r = cli("erase", "--store", url, "--case", "NOPE")
    assert r.returncode == 2 and r.stderr.strip() == "carepath: no case 'NOPE'"
    r = cli("erase", "--store", url, "--field", "name")
    assert r.returncode == 2 and "--field and --value go together" in r.stderr
    r = cli("erase", "--store", url)
    assert r.returncode == 2 and "Traceback" not in r.stderr
