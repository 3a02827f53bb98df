"""SPEC §4 rules on small purpose-built playbooks (one rule per test where possible)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from carepath import Engine, Event, loads
from carepath.errors import InvalidEvent, PlaybookMismatch, SignalLoop

T0 = datetime.fromisoformat("2027-03-01T09:00:00+00:00")  # Monday


def pb(body: dict[str, Any], **top: Any) -> Engine:
    d: dict[str, Any] = {
        "carepath": 1,
        "id": "t",
        "version": "1",
        "timezone": "UTC",
        "fields": {
            "priority": {"type": "enum", "values": ["low", "high"], "default": "low"},
            "n": {"type": "int", "default": 0},
            "m": {"type": "int", "default": 0},
        },
        "calendars": {"office": {"hours": {"mon-fri": ["09:00-17:00"]}}},
        "tiers": {"L1": {}, "L2": {}},
        "start": {"on": "opened"},
    }
    d.update(top)
    d.update(body)
    return Engine(loads(json.dumps(d)))


def E(type_: str, minutes: float, **data: Any) -> Event:
    return Event(
        id=f"{type_}@{minutes}", type=type_, at=T0 + timedelta(minutes=minutes), case="K", data=data
    )


def types(step: Any) -> list[str]:
    return [s.type for s in step.signals]


SIMPLE_STAGES = {
    "a": {"initial": True, "on": {"go": "b", "done": "z"}},
    "b": {"on": {"back": "a", "done": "z"}},
    "z": {"final": True},
}


def test_thresholds_percent_and_signed_offsets_fire_in_order_once() -> None:
    engine = pb(
        {
            "stages": SIMPLE_STAGES,
            "slas": {
                "c": {
                    "start": {"on": "opened"},
                    "stop": {"on": "done"},
                    "targets": [{"within": "1h"}],
                    "thresholds": [
                        {"at": "25%", "do": [{"notify": "L1"}]},
                        {"at": "-15m", "do": [{"notify": "L2"}]},
                        {"at": "100%", "do": [{"escalate": "next"}]},
                        {"at": "+30m", "do": [{"notify": "L2"}]},
                        {"at": "200%", "do": [{"emit": "way_late"}]},
                    ],
                }
            },
        }
    )
    s = engine.start(E("opened", 0))
    assert s.state.next_wakeup == T0 + timedelta(minutes=15)
    seen = []
    st_ = s.state
    for m in (15, 45, 60, 90, 120, 121):
        r = engine.advance(st_, T0 + timedelta(minutes=m))
        seen.append((m, types(r), [a.type for a in r.actions]))
        st_ = r.state
    assert seen == [
        (15, ["sla.c.warning"], ["notify"]),
        (45, ["sla.c.warning"], ["notify"]),
        (60, ["sla.c.breached"], ["escalate"]),  # a 100 % threshold fires with the breach
        (90, ["sla.c.overdue"], ["notify"]),
        (120, ["sla.c.overdue"], ["emit"]),
        (121, [], []),
    ]
    assert st_.tier == "L1"  # escalate next from no tier → the first tier


def test_all_overdue_thresholds_fire_at_once_in_order_when_advancing_late() -> None:
    engine = pb(
        {
            "stages": SIMPLE_STAGES,
            "slas": {
                "c": {
                    "start": {"on": "opened"},
                    "stop": {"on": "done"},
                    "targets": [{"within": "1h"}],
                    "thresholds": [
                        {"at": "50%", "do": [{"emit": "half"}]},
                        {"at": "+1h", "do": [{"emit": "late"}]},
                    ],
                }
            },
        }
    )
    s = engine.start(E("opened", 0))
    r = engine.advance(s.state, T0 + timedelta(hours=5))
    assert types(r) == ["sla.c.warning", "sla.c.breached", "sla.c.overdue"]
    # each fired at its own instant, not at the advance time
    assert [a.at for a in r.actions] == [T0 + timedelta(minutes=30), T0 + timedelta(hours=2)]
    assert [s_.at for s_ in r.signals] == [
        T0 + timedelta(minutes=30),
        T0 + timedelta(hours=1),
        T0 + timedelta(hours=2),
    ]


def test_history_is_bounded_to_20_records() -> None:
    engine = pb(
        {
            "stages": SIMPLE_STAGES,
            "slas": {
                "c": {
                    "start": {"on": "go"},
                    "stop": {"on": "back"},
                    "repeat": True,
                    "targets": [{"within": "1h"}],
                }
            },
        }
    )
    st_ = engine.start(E("opened", 0)).state
    m = 1
    for _ in range(25):
        st_ = engine.handle(st_, E("go", m)).state
        st_ = engine.handle(st_, E("back", m + 1)).state
        m += 2
    c = st_.clocks["c"]
    assert c.cycle == 25 and len(c.history) == 20
    assert [h.cycle for h in c.history] == list(range(6, 26))


def test_without_repeat_a_start_after_a_stop_does_nothing() -> None:
    engine = pb(
        {
            "stages": SIMPLE_STAGES,
            "slas": {
                "c": {"start": {"on": "go"}, "stop": {"on": "back"}, "targets": [{"within": "1h"}]}
            },
        }
    )
    st_ = engine.start(E("opened", 0)).state
    st_ = engine.handle(st_, E("go", 1)).state
    st_ = engine.handle(st_, E("back", 2)).state
    r = engine.handle(st_, E("go", 3))
    assert r.state.clocks["c"].status == "met" and r.state.clocks["c"].cycle == 1
    assert "sla.c.started" not in types(r)


def test_signal_chain_deeper_than_16_raises_signal_loop() -> None:
    n = 18
    stages: dict[str, Any] = {f"s{i}": {"on": {f"sla.c{i}.started": f"s{i + 1}"}} for i in range(n)}
    stages["s0"]["initial"] = True
    stages[f"s{n}"] = {"final": True}
    slas = {
        f"c{i}": {
            "start": {"enter": f"s{i}"} if i else {"on": "opened"},
            "stop": {"on": "never"},
            "targets": [{"within": "1h"}],
        }
        for i in range(n)
    }
    engine = pb({"stages": stages, "slas": slas})
    with pytest.raises(SignalLoop):
        engine.start(E("opened", 0))
    # a shorter chain is fine
    stages2 = {f"s{i}": {"on": {f"sla.c{i}.started": f"s{i + 1}"}} for i in range(5)}
    stages2["s0"]["initial"] = True
    stages2["s5"] = {"final": True}
    slas2 = {
        f"c{i}": {
            "start": {"enter": f"s{i}"} if i else {"on": "opened"},
            "stop": {"on": "never"},
            "targets": [{"within": "1h"}],
        }
        for i in range(5)
    }
    s = pb({"stages": stages2, "slas": slas2}).start(E("opened", 0))
    assert s.state.stage == "s5" and s.state.ended


def test_set_outside_the_field_type_is_invalid_and_changes_nothing() -> None:
    engine = pb(
        {
            "stages": {
                "a": {
                    "initial": True,
                    "on": {"prio": {"set": {"priority": "=event.level"}}, "done": "z"},
                },
                "z": {"final": True},
            }
        }
    )
    s = engine.start(E("opened", 0)).state
    with pytest.raises(InvalidEvent) as ei:
        engine.handle(s, E("prio", 1, level="critical"))
    assert ei.value.state is s or ei.value.state is None
    ok = engine.handle(s, E("prio", 1, level="high"))
    assert ok.state.data["priority"] == "high"


def test_set_evaluates_every_value_before_assigning() -> None:
    engine = pb(
        {
            "stages": {
                "a": {
                    "initial": True,
                    "on": {"swap": {"set": {"n": "=m", "m": "=n"}}, "done": "z"},
                },
                "z": {"final": True},
            }
        },
        start={"on": "opened", "set": {"n": 1, "m": 2}},
    )
    s = engine.start(E("opened", 0)).state
    r = engine.handle(s, E("swap", 1)).state
    assert (r.data["n"], r.data["m"]) == (2, 1)


def test_reset_cancels_the_open_cycle_and_opens_a_new_one() -> None:
    engine = pb(
        {
            "stages": SIMPLE_STAGES,
            "slas": {
                "c": {
                    "start": {"on": "opened"},
                    "stop": {"on": "done"},
                    "reset": {"on": "again"},
                    "targets": [{"within": "1h"}],
                }
            },
        }
    )
    s = engine.start(E("opened", 0)).state
    r = engine.handle(s, E("again", 20))
    c = r.state.clocks["c"]
    assert types(r) == ["sla.c.cancelled", "sla.c.reset", "sla.c.started"]
    assert (
        c.cycle == 2
        and c.started == T0 + timedelta(minutes=20)
        and c.due == T0 + timedelta(minutes=80)
    )
    rec = c.history[-1]
    assert rec.met is None and rec.failed_by is None and rec.elapsed == timedelta(minutes=20)


def test_final_stage_ends_open_cycles_cancelled_or_missed() -> None:
    engine = pb(
        {
            "stages": SIMPLE_STAGES,
            "slas": {
                "fast": {
                    "start": {"on": "opened"},
                    "stop": {"on": "never"},
                    "targets": [{"within": "10m"}],
                },
                "slow": {
                    "start": {"on": "opened"},
                    "stop": {"on": "never"},
                    "targets": [{"within": "1h"}],
                },
            },
        }
    )
    s = engine.start(E("opened", 0)).state
    r = engine.handle(s, E("done", 30))
    assert r.state.ended and r.state.stage == "z"
    assert (
        r.state.clocks["fast"].status == "breached"
        and r.state.clocks["fast"].history[-1].met is False
    )
    assert (
        r.state.clocks["slow"].status == "cancelled"
        and r.state.clocks["slow"].history[-1].met is None
    )
    assert "sla.fast.missed" in types(r) and "sla.slow.cancelled" in types(r)


def test_stop_then_cancel_precedence_and_pending_clock() -> None:
    engine = pb(
        {
            "stages": SIMPLE_STAGES,
            "slas": {
                "c": {
                    "start": {"on": "go"},
                    "stop": {"on": "x"},
                    "cancel": {"on": "x"},
                    "targets": [{"within": "1h"}],
                }
            },
        }
    )
    s = engine.start(E("opened", 0)).state
    r = engine.handle(s, E("x", 1))  # stop on a pending clock does nothing
    assert r.state.clocks["c"].status == "pending"
    r = engine.handle(engine.handle(r.state, E("go", 2)).state, E("x", 3))
    assert r.state.clocks["c"].status == "met"  # stop wins over cancel


def test_pause_when_condition_and_paused_clock_has_no_due() -> None:
    engine = pb(
        {
            "stages": {
                "a": {
                    "initial": True,
                    "on": {"hold": {"set": {"n": 1}}, "free": {"set": {"n": 0}}, "done": "z"},
                },
                "z": {"final": True},
            },
            "slas": {
                "c": {
                    "start": {"on": "opened"},
                    "stop": {"on": "done"},
                    "pause": {"when": "n == 1"},
                    "targets": [{"within": "1h"}],
                }
            },
        }
    )
    s = engine.start(E("opened", 0)).state
    p = engine.handle(s, E("hold", 10))
    assert p.state.clocks["c"].status == "paused" and p.state.clocks["c"].due is None
    assert p.state.next_wakeup is None
    f = engine.handle(p.state, E("free", 70))
    c = f.state.clocks["c"]
    assert c.elapsed == timedelta(minutes=10) and c.paused == timedelta(minutes=60)
    assert c.due == T0 + timedelta(minutes=120)


def test_timer_whose_when_is_false_is_consumed() -> None:
    engine = pb(
        {
            "stages": {
                "a": {
                    "initial": True,
                    "on": {"hot": {"set": {"priority": "high"}}, "done": "z"},
                    "after": [{"in": "1h", "to": "b", "when": 'priority == "high"'}],
                },
                "b": {"on": {"done": "z"}},
                "z": {"final": True},
            }
        }
    )
    s = engine.start(E("opened", 0)).state
    r = engine.advance(s, T0 + timedelta(hours=1))
    assert r.state.stage == "a" and r.state.next_wakeup is None
    h = engine.handle(r.state, E("hot", 61))
    assert engine.advance(h.state, T0 + timedelta(hours=5)).state.stage == "a"


def test_a_transition_to_the_current_stage_reenters_it() -> None:
    engine = pb(
        {
            "stages": {
                "a": {
                    "initial": True,
                    "enter": [{"emit": "hi"}],
                    "exit": [{"emit": "bye"}],
                    "on": {"again": "a", "stay": {"do": [{"emit": "still"}]}, "done": "z"},
                    "after": [{"in": "1h", "do": [{"emit": "tick"}]}],
                },
                "z": {"final": True},
            }
        }
    )
    s = engine.start(E("opened", 0))
    assert [a.params["name"] for a in s.actions] == ["hi"]
    r = engine.handle(s.state, E("again", 30))
    assert [a.params["name"] for a in r.actions] == ["bye", "hi"]
    assert [d.due for d in r.deadlines] == [T0 + timedelta(minutes=90)]  # the timer restarted
    k = engine.handle(r.state, E("stay", 40))
    assert [a.params["name"] for a in k.actions] == ["still"]
    assert [d.due for d in k.deadlines] == [
        T0 + timedelta(minutes=90)
    ]  # a handler without `to` stays


def test_keep_true_survives_leaving_the_stage_and_exit_delays_belong_to_the_new_stage() -> None:
    engine = pb(
        {
            "stages": {
                "a": {
                    "initial": True,
                    "enter": [
                        {"emit": "kept", "in": "2h", "keep": True},
                        {"emit": "dropped", "in": "2h"},
                    ],
                    "exit": [{"emit": "from_exit", "in": "1h"}],
                    "on": {"go": "b", "done": "z"},
                },
                "b": {"on": {"back": "a", "done": "z"}},
                "z": {"final": True},
            }
        }
    )
    s = engine.start(E("opened", 0)).state
    b = engine.handle(s, E("go", 10)).state
    fired = engine.advance(b, T0 + timedelta(hours=3))
    assert sorted(a.params["name"] for a in fired.actions) == ["from_exit", "kept"]
    # leaving b before the exit action is due cancels it (it belongs to b); re-entering a arms a's
    # enter actions again (due at 20 + 120 min)
    b2 = engine.handle(b, E("back", 20)).state
    names = sorted(a.params["name"] for a in engine.advance(b2, T0 + timedelta(hours=3)).actions)
    assert names == ["dropped", "kept", "kept"]


def test_immediate_action_with_window_waits_for_the_opening() -> None:
    engine = pb(
        {
            "stages": {
                "a": {
                    "initial": True,
                    "on": {"ping": {"do": [{"emit": "msg", "window": "office"}]}, "done": "z"},
                },
                "z": {"final": True},
            }
        }
    )
    s = engine.start(E("opened", 0)).state
    night = engine.handle(s, E("ping", 10 * 60))  # 19:00 Monday
    assert night.actions == [] and night.state.next_wakeup == T0 + timedelta(hours=24)  # Tue 09:00
    a = engine.advance(night.state, T0 + timedelta(days=2))
    assert [x.at for x in a.actions] == [T0 + timedelta(hours=24)]
    day = engine.handle(s, E("ping", 60))
    assert [x.at for x in day.actions] == [T0 + timedelta(hours=1)]


def test_schedule_rearms_after_its_window_shifted_fire_time() -> None:
    engine = pb(
        {
            "stages": {
                "a": {
                    "initial": True,
                    "on": {"done": "z"},
                    "every": [{"cron": "0 8 * * *", "window": "office", "do": [{"emit": "daily"}]}],
                },
                "z": {"final": True},
            }
        }
    )
    s = engine.start(E("opened", 0)).state  # Mon 09:00
    assert s.next_wakeup == T0 + timedelta(days=1)  # Tue 08:00 → 09:00 (window)
    r = engine.advance(s, T0 + timedelta(days=7))
    # Tue..Fri 09:00 fire; Sat 08:00 → Mon 09:00 fires once; the next Sun 08:00 was after Mon's 09:00? no:
    # after Mon 09:00 (actual fire) the next cron time is Tue 08:00 → beyond the horizon.
    ats = [a.at for a in r.actions]
    assert ats == [T0 + timedelta(days=d) for d in (1, 2, 3, 4, 7)]


def test_escalate_next_from_no_tier_and_from_the_last() -> None:
    engine = pb(
        {
            "stages": {
                "a": {"initial": True, "on": {"up": {"do": [{"escalate": "next"}]}, "done": "z"}},
                "z": {"final": True},
            }
        }
    )
    s = engine.start(E("opened", 0)).state
    r1 = engine.handle(s, E("up", 1))
    assert r1.state.tier == "L1" and r1.actions[0].params == {"tier": "L1", "from": None}
    r2 = engine.handle(r1.state, E("up", 2))
    r3 = engine.handle(r2.state, E("up", 3))
    assert r3.state.tier == "L2" and types(r3) == ["tier.exhausted"]


def test_action_params_per_verb() -> None:
    engine = pb(
        {
            "stages": {
                "a": {
                    "initial": True,
                    "enter": [
                        {"notify": "L1"},
                        {"send": "hello", "channel": "sms"},
                        {"survey": "nps", "channel": "sms"},
                        {"assign": "L2"},
                        {"escalate": "L1"},
                        {"set": {"n": 5}},
                        {"task": "call", "for": "L1", "due": "2h"},
                        {"emit": "custom", "params": {"x": 1}},
                    ],
                    "on": {"done": "z"},
                },
                "z": {"final": True},
            }
        },
        templates={"hello": {"text": "Hi"}},
        channels={"sms": {"calendar": "always"}},
    )
    acts = engine.start(E("opened", 0)).actions
    got = {a.type: dict(a.params) for a in acts}
    assert got["notify"]["to"] == "L1"
    assert got["send"]["template"] == "hello" and got["send"]["channel"] == "sms"
    assert got["survey"]["survey"] == "nps"
    assert got["assign"] == {"tier": "L2", "from": None}
    assert got["escalate"] == {"tier": "L1", "from": "L2"}
    assert got["set"]["values"] == {"n": 5}
    assert got["task"]["task"] == "call" and got["task"]["for"] == "L1"
    assert got["task"]["due"] == (T0 + timedelta(hours=2)).isoformat()
    assert got["emit"]["name"] == "custom" and got["emit"]["x"] == 1
    assert [a.id for a in acts] == [f"K:{i}" for i in range(1, 9)]
    assert [a.source for a in acts] == [f"stages.a.enter[{i}]" for i in range(8)]


def test_handle_never_mutates_and_mismatch_on_content_change() -> None:
    body = {
        "stages": SIMPLE_STAGES,
        "slas": {
            "c": {"start": {"on": "opened"}, "stop": {"on": "done"}, "targets": [{"within": "1h"}]}
        },
    }
    engine = pb(body)
    s = engine.start(E("opened", 0)).state
    snap = s.to_json()
    engine.handle(s, E("go", 10))
    engine.advance(s, T0 + timedelta(hours=3))
    assert s.to_json() == snap
    body2 = json.loads(json.dumps(body))
    body2["slas"]["c"]["targets"] = [{"within": "2h"}]
    eng2 = pb(body2)
    with pytest.raises(PlaybookMismatch):
        eng2.handle(s, E("go", 10))
    with pytest.raises(PlaybookMismatch):
        eng2.advance(s, T0 + timedelta(hours=3))
    m = eng2.migrate(s)
    assert m.clocks["c"].target == timedelta(hours=2) and m.clocks["c"].due == T0 + timedelta(
        hours=2
    )
    assert eng2.handle(m, E("go", 10)).state.stage == "b"


def test_migrate_renames_stages_and_keeps_breaches() -> None:
    body = {
        "stages": SIMPLE_STAGES,
        "slas": {
            "c": {"start": {"on": "opened"}, "stop": {"on": "done"}, "targets": [{"within": "10m"}]}
        },
    }
    engine = pb(body)
    s = engine.advance(
        engine.handle(engine.start(E("opened", 0)).state, E("go", 1)).state,
        T0 + timedelta(minutes=30),
    ).state
    assert s.clocks["c"].breached and s.stage == "b"
    new = {
        "stages": {
            "a": {"initial": True, "on": {"go": "bb", "done": "z"}},
            "bb": {"on": {"done": "z"}},
            "z": {"final": True},
        },
        "slas": {
            "c": {"start": {"on": "opened"}, "stop": {"on": "done"}, "targets": [{"within": "2h"}]}
        },
    }
    eng2 = pb(new, version="2")
    with pytest.raises(PlaybookMismatch):
        eng2.migrate(s)
    m = eng2.migrate(s, {"b": "bb"})
    assert m.stage == "bb" and m.clocks["c"].breached  # a breach is never undone


def test_migrate_names_the_missing_stage_the_mapping_asks_for() -> None:
    # issue 15 #20: the error named the case's (mapped-away) stage, not the missing target
    engine = pb({"stages": SIMPLE_STAGES})
    s = engine.handle(engine.start(E("opened", 0)).state, E("go", 1)).state
    stages = {
        "a": {"initial": True, "on": {"go": "new"}},
        "new": {"on": {"done": "z"}},
        "z": {"final": True},
    }
    eng2 = pb({"stages": stages}, version="2")
    missing_target = (
        r"stage 'nonexistent' \(the mapping's target for 'b'\) does not exist in t 2; "
        r"stages: a, new, z"
    )
    with pytest.raises(PlaybookMismatch, match=missing_target):
        eng2.migrate(s, {"b": "nonexistent"})
    with pytest.raises(PlaybookMismatch, match=r"stage 'b' does not exist in t 2; map it with"):
        eng2.migrate(s, {"new": "nonexistent"})  # the case is in `b`, which the new one lacks
    assert eng2.migrate(s, {"b": "new"}).stage == "new"


def test_a_breached_cycle_keeps_the_target_it_breached() -> None:
    # issue 15 #21: a retarget breach, then a priority drop back to the longer target, ended in a
    # record reading met: false, target 8 h, failed_by 0. The cycle keeps the target it breached.
    on = {
        "bump": {"set": {"priority": "high"}},
        "calm": {"set": {"priority": "low"}},
        "done": "z",
    }
    targets = [{"when": 'priority == "high"', "within": "1h"}, {"within": "8h"}]
    clock = {
        "start": {"on": "opened"},
        "stop": {"on": "done"},
        "targets": targets,
        "thresholds": [{"at": "+30m", "do": [{"notify": "L2"}]}],
    }
    stages = {"a": {"initial": True, "on": on}, "z": {"final": True}}
    engine = pb({"stages": stages, "slas": {"c": clock}})
    s = engine.start(E("opened", 0)).state
    raised = engine.handle(s, E("bump", 120))  # 2 h in: the 1 h target is already past
    assert "sla.c.breached" in types(raised)
    assert raised.state.clocks["c"].due == T0 + timedelta(hours=1)  # the instant it crossed
    calmed = engine.handle(raised.state, E("calm", 180)).state
    c = calmed.clocks["c"]
    assert c.breached and c.target == timedelta(hours=1) and c.due == T0 + timedelta(hours=1)
    assert c.remaining == timedelta(hours=-2) and c.failed_by == timedelta(hours=2)
    done = engine.handle(calmed, E("done", 190))
    record = done.state.clocks["c"].history[-1]
    assert (record.met, record.target, record.elapsed, record.failed_by) == (
        False,
        timedelta(hours=1),
        timedelta(hours=3, minutes=10),
        timedelta(hours=2, minutes=10),
    )
    assert record.failed_by == record.elapsed - record.target
    assert "sla.c.missed" in types(done)
