"""The report's replay over worker processes equals the one-process replay, fact for fact."""

from __future__ import annotations

import json
import random
import sys
from array import array
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carepath import load
from carepath.compile.ir import Playbook
from carepath.drivers import shard
from carepath.drivers.generate import generate, write_jsonl
from carepath.drivers.replay import Replay, replay_log
from carepath.drivers.shard import _case_in_bytes, replay_log_sharded, shard_of, share_of
from carepath.events import Event
from carepath.metrics import Collector
from carepath.report import build_report, render
from strategies import disturbed_logs, retail_lines

ROOT = Path(__file__).resolve().parents[2]
RETAIL = ROOT / "examples" / "vn-retail-support.yaml"
JOURNEY = ROOT / "examples" / "omnichannel-journey.yaml"


@pytest.fixture(scope="module")
def playbooks() -> dict[str, Playbook]:
    return {"retail": load(RETAIL), "journey": load(JOURNEY)}


@pytest.fixture(scope="module")
def lines() -> list[str]:
    return retail_lines(3)


def facts(rp: Replay) -> dict[str, Any]:
    """Everything a replay holds but its states (a sharded replay keeps none: it counts them)."""
    return {
        "records": list(rp.records),
        "breaches": rp.breaches,
        "opened": rp.opened,
        "rejected": [(e, msg) for e, msg in rp.rejected],
        "bad": rp.bad,
        "events": rp.n_events,
        "duplicates": rp.duplicates,
        "cases": rp.cases,
        "period": (rp.first_s, rp.last_s),
        "actions": dict(rp.actions),
    }


def check(pbs: list[Playbook], path: Path, workers: int) -> dict[str, Any]:
    """Assert the sharded replays equal one process's; return the stats of the sharded run."""
    one = replay_log(pbs, path, Collector)
    stats: dict[str, Any] = {}
    many = replay_log_sharded(pbs, path, Collector, workers=workers, stats=stats)
    for pb, a, b in zip(pbs, one, many, strict=True):
        assert facts(b) == facts(a)
        assert render(build_report(pb, b), "json") == render(build_report(pb, a), "json")
    return stats


@pytest.mark.parametrize("workers", [2, 3])
def test_a_generated_log_gives_the_same_report_in_shares(
    tmp_path: Path, lines: list[str], playbooks: dict[str, Playbook], workers: int
) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    stats = check([playbooks["retail"]], path, workers)
    assert stats["workers"] == workers and len(stats["worker_rss_kib"]) == workers


@pytest.mark.parametrize("workers", [2, 3])
def test_the_what_if_gives_the_same_reports_in_shares(
    tmp_path: Path, lines: list[str], playbooks: dict[str, Playbook], workers: int
) -> None:
    """The log's bad lines and a repeated id are said once, as one process says them."""
    log = list(lines)
    log.insert(40, "not json")
    log.insert(90, '{"id": 1}')
    log.insert(120, log[100])  # a duplicate
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(log) + "\n", encoding="utf-8")
    stats = check([playbooks["retail"], playbooks["journey"]], path, workers)
    assert stats["workers"] == workers


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), workers=st.integers(1, 4))
def test_any_share_count_gives_the_one_process_result(
    tmp_path: Path,
    lines: list[str],
    playbooks: dict[str, Playbook],
    data: st.DataObject,
    workers: int,
) -> None:
    log = data.draw(disturbed_logs(lines))
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(log) + "\n", encoding="utf-8")
    check([playbooks["retail"]], path, workers)


def test_the_parent_merges_with_collection_paused(
    tmp_path: Path,
    lines: list[str],
    playbooks: dict[str, Playbook],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The parent unpickles and merges the shares' facts (millions of small objects at a million
    events, all kept) with automatic collection off, and gives the host's collector back as it
    was: on with its thresholds, or off."""
    import gc

    from carepath.drivers import shard

    seen: list[bool] = []
    merge = shard._merge

    def watched(*args: Any) -> Replay:
        seen.append(gc.isenabled())
        return merge(*args)

    monkeypatch.setattr(shard, "_merge", watched)
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    host = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        stats: dict[str, Any] = {}
        replay_log_sharded([playbooks["retail"]], path, Collector, workers=2, stats=stats)
        assert gc.get_threshold() == (700, 10, 10)
        assert gc.isenabled()
        gc.disable()
        replay_log_sharded([playbooks["retail"]], path, Collector, workers=2)
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.set_threshold(*host)
    assert stats["workers"] == 2
    assert seen == [False, False]


def test_an_id_met_in_two_shares_replays_in_one_process(
    tmp_path: Path, lines: list[str], playbooks: dict[str, Playbook]
) -> None:
    objs = [json.loads(line) for line in lines[:300]]
    a = next(o for o in objs if shard_of(o.get("case"), 2) == 0)
    b = next(o for o in objs[objs.index(a) + 1 :] if shard_of(o.get("case"), 2) == 1)
    b["id"] = a["id"]  # a duplicate for one process: the second event is not replayed
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(json.dumps(o) for o in objs) + "\n", encoding="utf-8")
    stats = check([playbooks["retail"]], path, 2)
    assert stats["workers"] == 1  # the shares met the same id: one process decided


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ('{"id":"a","case":"T-1","data":{}}', (True, "T-1")),
        ('{"id":"a", "case" : "Đặng-1"}', (True, "Đặng-1")),
        ('{"id":"a","type":"case"}', (False, None)),  # a value, not a key: decoded to know
        ('{"id":"a"}', (False, None)),  # no case: its id and type decide, decoded
        ('{"case":"T\\u002d1"}', (False, None)),
        ('{"case":"T-1","data":{"case":"T-2"}}', (False, None)),
        ('{"case":null}', (False, None)),
        ('{"case":"T-1', (False, None)),
    ],
)
def test_the_case_is_read_from_the_text_only_when_it_is_plain(
    text: str, read: tuple[bool, str | None]
) -> None:
    plain, case = _case_in_bytes(text.encode())
    assert (plain, None if case is None else case.decode()) == read


def _what_if(tmp_path: Path) -> Path:
    """The retail playbook as another version with a tighter VIP chat target (the bench's)."""
    text = RETAIL.read_text(encoding="utf-8")
    other = text.replace('version: "2027.01"', 'version: "2027.01-whatif"', 1).replace(
        'channel in ["chat", "zalo"]\', within: 10m}',
        'channel in ["chat", "zalo"]\', within: 5m}',
        1,
    )
    assert other != text
    path = tmp_path / "whatif.yaml"
    path.write_text(other, encoding="utf-8")
    return path


@pytest.mark.parametrize("seed", [1, 11, 29, 41])
def test_the_cli_report_and_what_if_are_byte_identical_in_shares(
    tmp_path: Path, seed: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """``carepath report --format json`` and its what-if (``--compare``), as printed, are the
    same bytes in one process and in 2 or 3 worker processes, on logs of several seeds."""
    from carepath.cli.app import main

    path = tmp_path / "log.jsonl"
    n = write_jsonl(
        generate("retail", days=6, base=40, peak=160, seed=seed, start=date(2027, 1, 24)), path
    )
    assert n > 1000
    other = _what_if(tmp_path)
    for workers in (2, 3):  # the log is replayed in shares indeed (no fallback to one process)
        stats: dict[str, Any] = {}
        pbs = [load(RETAIL), load(other)]
        replay_log_sharded(pbs, path, Collector, workers=workers, stats=stats)
        assert stats["workers"] == workers
    for extra in ([], ["--compare", str(other)]):
        outs = {}
        for workers in ("1", "2", "3"):
            args = ["report", str(RETAIL), str(path), "--format", "json", "--workers", workers]
            assert main([*args, *extra]) == 0
            outs[workers] = capsys.readouterr().out.encode("utf-8")
        assert outs["2"] == outs["1"] and outs["3"] == outs["1"]
        doc = json.loads(outs["1"])
        assert (doc if not extra else doc["compare"])["events"] == n


def test_cli_workers(tmp_path: Path, lines: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from carepath.cli.app import main

    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    outs = []
    for n in ("1", "2"):
        assert main(["report", str(RETAIL), str(path), "--format", "json", "--workers", n]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1]
    assert main(["report", str(RETAIL), str(path), "--workers", "0"]) == 2
    assert "--workers: expected a whole number of processes" in capsys.readouterr().err


#: Lines without a case (``AT``: an instant; ``ID``: a number that makes the id unique).
_CASELESS = {
    "caseless bad": b'{"id":"o-ID","type":"order.placed","case":null,"at":"yesterday"}',
    "caseless escaped": b'{"id":"o\\u002dID","type":"order.placed","at":"AT","data":{}}',
    "caseless id in data": b'{"id":"o-ID","type":"order.placed","at":"AT","data":{"id":"x"}}',
    "caseless reply": b'{"id":"r-ID","type":"agent.replied","at":"AT","case":null}',
    "caseless order": b'{"id":"o-ID","type":"order.placed","at":"AT","case":null,"data":{}}',
}


@st.composite
def raw_logs(draw: Any, lines: list[str]) -> bytes:
    """The generated log cut short, as bytes, with some of what the core's block sorting leaves
    to the line reader or must read as it does: a byte-order mark, CRLF ends, blank and comment
    lines, a line longer than the limit, a line that is not UTF-8 (with a case its text shows),
    no newline after the last line; and lines without a case that the core places by their
    bytes or leaves to be decoded: a bad one whose type and id it reads, an escaped id, an id
    in the data too, a reply that stays in the first share."""
    rnd = random.Random(draw(st.integers(0, 2**32)))
    out = [line.encode() for line in lines[: draw(st.integers(20, 400))]]
    kinds = ["crlf", "blank", "comment", "long", "latin1", "bad", *_CASELESS]
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(kinds))
        i = rnd.randrange(len(out))
        if kind == "crlf":
            out[i] += b"\r"
        elif kind == "blank":
            out.insert(i, b"   ")
        elif kind == "comment":
            out.insert(i, b"# a note")
        elif kind == "long":
            out.insert(i, b'{"id":"L","case":"T-1","data":"' + b"x" * (300 * 1024) + b'"}')
        elif kind == "latin1":
            out.insert(i, b'{"id":"N","type":"note","case":"T-0000002","data":{"n":"\xe9"}}')
        elif kind == "bad":
            out.insert(i, b'{"id":"B","type":"","case":"T-0000003"}')
        else:  # at the instant of the line it goes before: in order
            at = json.loads(out[i])["at"].encode() if out[i].startswith(b"{") else b"bad"
            out.insert(i, _CASELESS[kind].replace(b"AT", at).replace(b"ID", b"%d" % i))
    text = b"\n".join(out) + (b"\n" if draw(st.booleans()) else b"")
    return (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + text


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), workers=st.integers(2, 3), block=st.sampled_from([64, 1000, 1 << 20]))
def test_lines_sorted_by_the_core_in_blocks_give_the_one_process_result(
    tmp_path: Path,
    lines: list[str],
    playbooks: dict[str, Playbook],
    data: st.DataObject,
    workers: int,
    block: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Blocks that cut lines anywhere, and every kind of line the reader treats apart: the same
    replay, bad lines (each said once, with its number) included, as one process."""
    import carepath.drivers.shard as shard

    monkeypatch.setattr(shard, "BLOCK_BYTES", block)
    monkeypatch.setattr(shard, "MIN_SHARDED_BYTES", 0)
    path = tmp_path / "log.jsonl"
    path.write_bytes(data.draw(raw_logs(lines)))
    check([playbooks["retail"]], path, workers)


def test_the_core_sorts_lines_as_the_text_reading_does() -> None:
    """``carepath_core._share_lines`` keeps a worker's lines and those no share can place, with
    the same reading of the case as :func:`_case_in_bytes`, and stops at a line too long."""
    core = pytest.importorskip("carepath_core")
    texts = [
        b'{"id":"a","case":"T-0000001"}',
        b'{"id":"b","case":"T-0000002"}',
        b'{"id":"c"}',
        b'{"case":"T\\u002d1"}',
        b'{"id":"d","case":"T-0000007"}',
    ]
    block = b"\n".join(texts) + b"\n" + b"x" * 50 + b"\n" + b'{"case":"T-9"}\n'
    for workers in (1, 2, 3):
        for me in range(workers):
            kept, count, used = core._share_lines(block, me, workers, 40)
            assert count == len(texts)  # it stops before the line of 50 bytes (limit 40)
            assert used == sum(len(t) + 1 for t in texts)
            want = []
            for i, t in enumerate(texts):
                plain, case = _case_in_bytes(t)
                share = (0 if case is None else shard_of(case.decode(), workers)) if plain else None
                if share is None or share == me:
                    want.append((i, plain, t + b"\n"))
            assert kept == want


def test_the_core_places_a_line_without_a_case_by_its_type_and_id() -> None:
    """Given the types that stay together, ``_share_lines`` places a line without a case as
    :func:`share_of` places its event, when its bytes show its type and id plainly; every worker
    keeps one whose bytes do not, to decode it."""
    core = pytest.importorskip("carepath_core")
    together = {b"agent.replied"}
    plain = [
        b'{"id":"o-1","type":"order.placed","case":null}',
        b'{"id":"o-2","type":"order.placed"}',
        b'{"id":"r-1","type":"agent.replied"}',
        b'{"type":"agent.replied","id":"r\\u002d2"}',
    ]
    unplaced = [
        b'{"id":"o\\u002d3","type":"order.placed"}',
        b'{"id":"o-4","type":"order.placed","data":{"id":"x"}}',
        b'{"id":"o-5","type":"order\\u002eplaced"}',
        b'{"id":5,"type":"order.placed"}',
    ]
    texts = plain + unplaced
    block = b"".join(t + b"\n" for t in texts)
    for workers in (2, 3):
        for me in range(workers):
            kept, _, _ = core._share_lines(block, me, workers, 1000, None, together)
            placed = [i for i, t in enumerate(plain) if _placed(t, workers) == me]
            assert kept == [(i, True, texts[i] + b"\n") for i in placed] + [
                (i, False, texts[i] + b"\n") for i in range(len(plain), len(texts))
            ]
            # without the types that stay together, every line without a case is decoded
            kept, _, _ = core._share_lines(block, me, workers, 1000)
            assert [k[0] for k in kept] == list(range(len(texts)))


def _placed(text: bytes, workers: int) -> int:
    e = json.loads(text)
    return share_of(
        Event(id=e["id"], type=e["type"], at=datetime(2027, 1, 1, tzinfo=UTC)),
        workers,
        frozenset({"agent.replied"}),
    )


def _shares(pbs: list[Playbook], path: Path, workers: int) -> list[list[Any]]:
    """The events each worker's share reads of ``path``."""
    from carepath.drivers.shard import _Share

    return [
        [e for _, e in _Share(pbs, path, Collector, me, workers).lines([])] for me in range(workers)
    ]


def test_events_without_a_case_are_spread_over_the_shares_by_id(
    tmp_path: Path, lines: list[str], playbooks: dict[str, Playbook]
) -> None:
    """A log's orders reach no case; they went to the first share, which then replayed a
    seventh more events than the other. Spread by id, a resent one meets its first copy."""
    objs = [json.loads(line) for line in lines]
    orders = [o for o in objs if o.get("case") is None]
    assert len(orders) > 100  # the generated log has them
    objs.insert(len(objs) // 2, dict(orders[0], at=objs[len(objs) // 2]["at"]))  # resent
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(json.dumps(o) for o in objs) + "\n", encoding="utf-8")
    shares = _shares([playbooks["retail"]], path, 2)
    caseless = [[e.id for e in share if e.case is None] for share in shares]
    assert sorted(caseless[0] + caseless[1]) == sorted(
        o["id"] for o in objs if o.get("case") is None
    )
    assert min(len(c) for c in caseless) > len(orders) // 3  # both shares have a good part
    assert sorted(c.count(orders[0]["id"]) for c in caseless) == [0, 2]  # the copies together
    stats = check([playbooks["retail"]], path, 2)
    assert stats["workers"] == 2


def test_replies_and_solves_without_a_case_stay_in_one_share(
    tmp_path: Path, lines: list[str], playbooks: dict[str, Playbook]
) -> None:
    """The collector keeps replies, solves and reopenings without a case under one key (for
    ``fcr`` and ``reopen_rate``): they all go to the first share, whatever their id."""
    objs = [json.loads(line) for line in lines[:2000]]
    at = [o["at"] for o in objs]
    loose = ["agent.replied", "agent.replied", "case.solved", "agent.replied", "case.reopened"]
    for i, t in enumerate(loose):
        pos = 300 + 200 * i
        objs.insert(pos, {"id": f"loose-{i}", "type": t, "at": at[pos], "data": {}})
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(json.dumps(o) for o in objs) + "\n", encoding="utf-8")
    shares = _shares([playbooks["retail"]], path, 3)
    assert sorted(e.id for e in shares[0] if e.id.startswith("loose-")) == [
        f"loose-{i}" for i in range(len(loose))
    ]
    stats = check([playbooks["retail"]], path, 3)
    assert stats["workers"] == 3


@given(st.lists(st.sets(st.integers(-(2**63), 2**63 - 1), max_size=8), min_size=1, max_size=4))
def test_shares_are_disjoint_when_no_hash_is_in_two(shares: list[set[int]]) -> None:
    expected = all(a.isdisjoint(b) for i, a in enumerate(shares) for b in shares[i + 1 :])
    assert shard._disjoint([array("q", s) for s in shares]) is expected
    with mock.patch.dict(sys.modules, {"carepath_core": None}):  # without the core
        assert shard._disjoint([array("q", s) for s in shares]) is expected


@given(st.sets(st.text(max_size=12), max_size=50))
def test_the_ids_hashes_are_pythons(ids: set[str]) -> None:
    """The hashes a worker sends (by the core) are ``array("q", map(hash, ids))``."""
    assert shard._id_hashes(ids) == array("q", map(hash, ids))
