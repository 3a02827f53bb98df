"""A series' selection of one group's values (:meth:`carepath.metrics.series.Series.select`):
the whole series' values grouped once and kept for the next query of the same key, the same
values in the same order as testing every sample, also after the series grows or is sorted."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from carepath.drivers.cycles import Ctx
from carepath.metrics.series import GROUPS, Series

# few distinct case values, shared by many samples (as a replay shares them), and None
CTXS = [
    Ctx("vip", "phone", "l1", "open"),
    Ctx("vip", "email", "l2", "open"),
    Ctx(None, "phone", None, "solved"),
    Ctx("sme", None, "l1", "solved"),
]
samples = st.lists(
    st.tuples(st.integers(738_000, 738_010), st.sampled_from([*CTXS, None]), st.integers()),
    max_size=40,
)
wheres = st.tuples(
    st.sampled_from(GROUPS), st.sampled_from(["vip", "sme", "phone", "email", "l1", "open", "x"])
)


def one_by_one(s: Series, key: str, value: str, lo: int | None, hi: int | None) -> list[int]:
    """The values ``select`` gives, by testing every sample."""
    j = GROUPS.index(key)
    return [
        v
        for d, c, v in zip(s.days, s.ctxs, s.values, strict=True)
        if c is not None and c[j] == value and (lo is None or d >= lo) and (hi is None or d <= hi)
    ]


def filled(items: list[tuple[int, Ctx | None, int]]) -> Series:
    s = Series()
    for d, c, v in items:
        s.add(d, c, v)
    return s


@given(samples, samples, st.lists(wheres, min_size=1, max_size=4))
def test_one_group_is_the_samples_tested_one_by_one(
    first: list[tuple[int, Ctx | None, int]],
    more: list[tuple[int, Ctx | None, int]],
    asked: list[tuple[str, str]],
) -> None:
    s = filled(first)
    for key, value in asked:  # asked again: the grouping kept is read
        assert s.select(None, None, {key: value}) == one_by_one(s, key, value, None, None)
    for d, c, v in more:  # grown: grouped again
        s.add(d, c, v)
    s.sort()  # sorted (new lists): grouped again
    for key, value in asked:
        assert s.select(None, None, {key: value}) == one_by_one(s, key, value, None, None)
        assert s.select(738_003, 738_006, {key: value}) == one_by_one(
            s, key, value, 738_003, 738_006
        )


def test_a_selection_is_the_caller_s_own_list() -> None:
    s = filled([(738_000, CTXS[0], 1), (738_001, CTXS[1], 2), (738_001, CTXS[0], 3)])
    got = s.select(None, None, {"channel": "phone"})
    got.append(99)  # the caller's: the next query is not changed
    assert s.select(None, None, {"channel": "phone"}) == [1, 3]
