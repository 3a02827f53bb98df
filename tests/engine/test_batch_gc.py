"""``batch_gc``: the collector's thresholds are raised while batch jobs run, in any thread, and
restored once the last is over; a host that turned automatic collection off is left alone."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from carepath.engine.batch_gc import BATCH_GC_THRESHOLDS, batch_gc, paused_gc


@pytest.fixture(autouse=True)
def _thresholds() -> Iterator[None]:
    old = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*old)


def test_raised_inside_and_restored_after() -> None:
    with batch_gc():
        assert gc.get_threshold() == BATCH_GC_THRESHOLDS
    assert gc.get_threshold() == (700, 10, 10)


def test_restored_after_an_exception() -> None:
    with pytest.raises(RuntimeError), batch_gc():
        raise RuntimeError("boom")
    assert gc.get_threshold() == (700, 10, 10)


def test_nested_jobs_restore_once_the_outer_one_is_over() -> None:
    with batch_gc():
        with batch_gc():
            assert gc.get_threshold() == BATCH_GC_THRESHOLDS
        assert gc.get_threshold() == BATCH_GC_THRESHOLDS  # the outer job still runs
    assert gc.get_threshold() == (700, 10, 10)


def test_overlapping_jobs_in_two_threads_restore_the_hosts_thresholds() -> None:
    # A enters, B enters, A leaves, B leaves: with a save-and-restore per job B would restore
    # A's raised thresholds for good
    a_in, a_out, b_in = threading.Event(), threading.Event(), threading.Event()
    seen: list[tuple[int, ...]] = []

    def a() -> None:
        with batch_gc():
            a_in.set()
            b_in.wait(10)
        a_out.set()

    def b() -> None:
        a_in.wait(10)
        with batch_gc():
            b_in.set()
            a_out.wait(10)
            seen.append(gc.get_threshold())  # A is over, B still runs: still raised

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert seen == [BATCH_GC_THRESHOLDS]
    assert gc.get_threshold() == (700, 10, 10)


def test_a_higher_host_threshold_is_kept() -> None:
    gc.set_threshold(500_000, 5, 5000)
    with batch_gc():
        assert gc.get_threshold() == (500_000, 1000, 5000)
    assert gc.get_threshold() == (500_000, 5, 5000)


def test_a_host_that_turned_collection_off_is_left_alone() -> None:
    gc.set_threshold(0)
    with batch_gc():
        assert gc.get_threshold()[0] == 0
    assert gc.get_threshold()[0] == 0


def test_paused_gc_turns_collection_off_and_back_as_it_was() -> None:
    """Off inside, even with a batch job's thresholds; on again after (also when the block
    raises), or left off when the host had turned it off."""
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with batch_gc():
            assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), paused_gc():
        raise RuntimeError
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
