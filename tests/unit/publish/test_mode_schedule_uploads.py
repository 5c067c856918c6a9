from __future__ import annotations

import random

import pytest

from onionfleet.publish.mode import Mode, ModeMachine
from onionfleet.publish.schedule import PublishInputs, RepublishSchedule
from onionfleet.publish.uploads import UploadRound, UploadState

# --- mode -------------------------------------------------------------------------------------


def test_alone_node_lets_tor_publish() -> None:
    m = ModeMachine(single_node_grace_s=60, now=0)
    change = m.initial()
    assert change.mode is Mode.SINGLE and change.tor_publishes
    assert m.observe(0, 1000) is None
    assert m.mode is Mode.SINGLE


def test_peers_switch_to_multi_at_once_and_back_after_grace() -> None:
    m = ModeMachine(single_node_grace_s=60, now=0)
    change = m.observe(2, 5)
    assert change is not None and change.mode is Mode.MULTI and not change.tor_publishes
    assert m.observe(2, 6) is None
    assert m.observe(0, 10) is None  # alone, grace starts
    assert m.seconds_until_single(40) == pytest.approx(30)
    assert m.observe(0, 69) is None
    back = m.observe(0, 70)
    assert back is not None and back.mode is Mode.SINGLE and back.tor_publishes


def test_a_peer_blip_shorter_than_grace_does_not_flap() -> None:
    m = ModeMachine(single_node_grace_s=60, now=0)
    m.observe(1, 1)
    for t in range(2, 50):
        assert m.observe(0 if t % 10 < 5 else 1, t) is None
    assert m.mode is Mode.MULTI


def test_mode_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        ModeMachine(single_node_grace_s=-1, now=0)
    with pytest.raises(ValueError):
        ModeMachine(single_node_grace_s=1, now=0).observe(-1, 0)


# --- schedule ---------------------------------------------------------------------------------


def inputs(ips: set[str], tp: int = 1, hsdirs: tuple[str, ...] = ("A", "B")) -> PublishInputs:
    return PublishInputs(frozenset(ips), ((tp, b"s"), (tp + 1, b"t")), (frozenset(hsdirs),) * 2)


def test_schedule_reasons() -> None:
    sched = RepublishSchedule(republish_min_s=3600, republish_max_s=7200, rng=random.Random(1))
    base = inputs({"a", "b"})
    assert sched.reasons(base, 0) == ["first publish"]
    sched.published(base, 0)
    assert sched.reasons(base, 10) == []
    assert sched.reasons(inputs({"a", "c"}), 10) == ["intro points changed (+1 -1)"]
    assert sched.reasons(inputs({"a", "b"}, tp=2), 10) == ["time period or SRV rotated"]
    assert sched.reasons(inputs({"a", "b"}, hsdirs=("A", "C")), 10) == [
        "responsible HSDirs changed"
    ]
    sched.verification_failed()
    assert sched.reasons(base, 10) == ["verification found a different descriptor on the HSDirs"]
    sched.published(base, 20)
    wait = sched.seconds_until_periodic(20)
    assert wait is not None and 3600 <= wait <= 7200
    assert sched.reasons(base, 20 + wait) == ["periodic republish"]


def test_periodic_republish_is_randomised_within_bounds() -> None:
    rng = random.Random(7)
    sched = RepublishSchedule(republish_min_s=60, republish_max_s=120, rng=rng)
    waits = set()
    for i in range(50):
        sched.published(inputs({"a"}), i)
        w = sched.seconds_until_periodic(i)
        assert w is not None and 60 <= w <= 120
        waits.add(round(w))
    assert len(waits) > 10


def test_schedule_rejects_bad_bounds() -> None:
    with pytest.raises(ValueError):
        RepublishSchedule(republish_min_s=100, republish_max_s=50, rng=random.Random())


# --- uploads ----------------------------------------------------------------------------------

FIRST = ["AA" * 20, "BB" * 20, "CC" * 20]
SECOND = ["CC" * 20, "DD" * 20]


def test_all_uploaded() -> None:
    r = UploadRound({"first": FIRST, "second": SECOND}, now=0)
    for fp in FIRST + SECOND:
        assert r.uploaded("$" + fp) is not None
    assert r.all_uploaded and r.done
    assert r.counts("first") == (3, 3)
    assert r.counts("second") == (2, 2)
    assert r.uploaded(FIRST[0]) is None  # nothing pending any more


def test_shared_hsdir_counts_twice() -> None:
    r = UploadRound({"first": FIRST, "second": SECOND}, now=0)
    shared = "CC" * 20
    a = r.uploaded(shared + "~relay2")
    b = r.uploaded(shared.lower())
    assert a is not None and b is not None
    assert {a.descriptor, b.descriptor} == {"first", "second"}


def test_failure_retries_with_backoff_then_gives_up() -> None:
    r = UploadRound({"first": ["AA" * 20]}, now=0, backoff_s=(2, 4))
    up = r.failed("AA" * 20, "UPLOAD_REJECTED", now=1)
    assert up is not None and up.state is UploadState.RETRY_WAIT
    assert r.next_deadline() == 3
    assert r.due_retries(2) == []
    (retry,) = r.due_retries(3)
    assert retry.attempts == 2
    r.failed("AA" * 20, "UPLOAD_REJECTED", now=4)
    (retry,) = r.due_retries(8)
    assert retry.attempts == 3
    final = r.failed("AA" * 20, "UPLOAD_REJECTED", now=9)
    assert final is not None and final.state is UploadState.FAILED
    assert final.last_reason == "UPLOAD_REJECTED"
    assert r.done and not r.all_uploaded


def test_silence_times_out() -> None:
    r = UploadRound({"first": ["AA" * 20, "BB" * 20]}, now=0, timeout_s=30)
    r.uploaded("AA" * 20)
    assert r.expire(29) == []
    (late,) = r.expire(30)
    assert late.hsdir_fingerprint == "BB" * 20 and late.last_reason == "TIMEOUT"
    assert late.state is UploadState.RETRY_WAIT


def test_unknown_hsdir_is_ignored() -> None:
    r = UploadRound({"first": ["AA" * 20]}, now=0)
    assert r.uploaded("EE" * 20) is None
    assert r.failed("EE" * 20, "X", 0) is None
