"""``GET /cases`` paging (``limit``, ``after``) and the store reads behind it and ``/metrics``
(``Store.case_page``, ``Store.outbox_stats``): the SQL stores agree with the generic default, and
pages read one after the other list every case exactly once — the cases of one key in several
playbooks always in the same page."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

import carepath
from carepath.runtime import Runtime, Store, open_store
from carepath.runtime.clock import ManualClock
from carepath.serve.service import Service
from serving import TICKETS

T0 = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)

# a second playbook opening a case on the same events: every key lives in both playbooks
TWIN = TICKETS.replace("id: tickets", "id: twin")


def _runtime(store: Store, clock: ManualClock) -> Runtime:
    return Runtime([carepath.loads(TICKETS), carepath.loads(TWIN)], store, clock=clock)


def _open(rt: Runtime, keys: list[str]) -> None:
    evs = [{"id": f"o-{k}", "type": "ticket.opened", "case": k, "at": T0.isoformat()} for k in keys]
    assert {r.status for r in rt.submit_many(evs)} <= {"applied", "duplicate"}


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Runtime:
    path = tmp_path_factory.mktemp("paging") / "cases.db"
    runtime = _runtime(open_store(f"sqlite:///{path}"), ManualClock(T0))
    _open(runtime, [f"K{i:02d}" for i in range(12)])
    runtime.submit({"id": "c-K05", "type": "ticket.closed", "case": "K05", "at": T0.isoformat()})
    return runtime


def _pages(svc: Service, limit: int, **kw: object) -> list[list[tuple[str, str]]]:
    pages, after = [], None
    while True:
        page = svc._cases(kw.get("playbook"), kw.get("stage"), kw.get("breached"), limit, after)  # type: ignore[arg-type]
        if not page:
            return pages
        pages.append([(c.case, c.playbook) for c in page])
        after = page[-1].case


@given(limit=st.integers(1, 30))
def test_pages_list_every_case_once_and_keep_a_key_together(rt: Runtime, limit: int) -> None:
    svc = Service(rt)
    pages = _pages(svc, limit)
    flat = [x for p in pages for x in p]
    every = sorted((s.case, s.playbook) for s in rt.store.cases())
    assert flat == every
    for page in pages:
        assert len(page) <= max(limit, 2)  # over the limit only when one key alone fills it
        if limit >= 2:
            assert len(page) <= limit
    keys_per_page = [{k for k, _ in p} for p in pages]
    for a, b in itertools.pairwise(keys_per_page):
        assert not a & b


def test_filters_by_playbook_stage_and_breach(rt: Runtime) -> None:
    svc = Service(rt)
    only = [x for p in _pages(svc, 5, playbook="twin") for x in p]
    assert {pb for _, pb in only} == {"twin"} and len(only) == 12
    done = [x for p in _pages(svc, 5, stage="done") for x in p]
    assert done == [("K05", "tickets"), ("K05", "twin")]
    assert _pages(svc, 5, breached=True) == []  # nothing has run past its 30 minutes
    assert len([x for p in _pages(svc, 7, breached=False) for x in p]) == 24


@given(
    after=st.one_of(st.none(), st.sampled_from(["", "K03", "K05", "K050", "Z", "é"])),
    limit=st.integers(0, 30),
    playbook=st.one_of(st.none(), st.sampled_from(["tickets", "twin", "other"])),
    stage=st.one_of(st.none(), st.sampled_from(["open", "done", "gone"])),
)
def test_the_sql_page_is_the_default_page(
    rt: Runtime, after: str | None, limit: int, playbook: str | None, stage: str | None
) -> None:
    store = rt.store
    kw = {"after": after, "limit": limit, "playbook": playbook, "stage": stage}
    sql = [(s.case, s.playbook) for s in store.case_page(**kw)]  # type: ignore[arg-type]
    default = [(s.case, s.playbook) for s in Store.case_page(store, **kw)]  # type: ignore[arg-type]
    assert sql == default


def test_outbox_stats_count_by_status_and_find_the_oldest_due(rt: Runtime) -> None:
    store = rt.store
    now = T0.timestamp()
    stats = store.outbox_stats(now)
    assert stats == Store.outbox_stats(store, now)
    assert stats.by_status == {"pending": 24}  # each opened case: its `send hello`
    assert stats.oldest_due == now  # the notify an hour later is not due yet
    later = (T0 + timedelta(hours=2)).timestamp()
    assert store.outbox_stats(later) == Store.outbox_stats(store, later)
    assert store.outbox_stats(now - 1).oldest_due is None
