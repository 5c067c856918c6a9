"""Pure planning of a publish: periods, ring, fetchable slot, flow control, counters, diffs."""

from __future__ import annotations

import pytest
from publish_factory import (
    NEXT_RUN_B,
    PHASE_A,
    PHASE_B,
    SRV_START,
    make_intro_points,
    make_view,
    master_key,
)

from onionfleet.hs.blinding import blind_public_key, blind_secret_key
from onionfleet.hs.descriptor import FlowControl
from onionfleet.hs.hashring import HsDirRelay, responsible_hsdirs
from onionfleet.hs.intro_point import LS_LEGACY_ID, IntroPoint, LinkSpecifier
from onionfleet.hs.revision_counter import RevisionCounterOpe
from onionfleet.hs.timeperiod import DescriptorSlot, TimePeriod, time_period_at
from onionfleet.publish.plan import (
    candidate_time_periods,
    compare_intro_points,
    fetchable_slot,
    intro_point_relay,
    intro_point_set_digest,
    max_descriptor_size,
    merged_flow_control,
    next_revision_counter,
    plan_descriptors,
    seconds_until_srv_rotation,
    time_period_rules_for,
)
from onionfleet.publish.schedule import PublishInputs, RepublishSchedule
from onionfleet.publish.selection import NodeIntroPoints, select_intro_points


def _rules(valid_after: int = PHASE_B):
    return time_period_rules_for(make_view(valid_after), testing_tor_network=True)


def test_testing_network_rules_come_from_the_voting_interval() -> None:
    rules = _rules()
    assert (rules.length_min, rules.rotation_offset_min, rules.srv_run_s) == (4, 2, 240)
    real = time_period_rules_for(
        make_view(PHASE_B, voting_interval_s=3600), testing_tor_network=False
    )
    assert (real.length_min, real.rotation_offset_min) == (1440, 720)


def test_candidate_time_periods_are_tp_then_neighbours() -> None:
    rules = _rules()
    tp = time_period_at(PHASE_B, rules)
    assert candidate_time_periods(PHASE_B, rules) == (tp, tp.previous(), tp.next())


def test_plan_gives_both_descriptors_their_own_blinded_key_and_ring() -> None:
    key = master_key()
    view = make_view(PHASE_B)
    rules = _rules()
    first, second = plan_descriptors(view, key.public_key(), rules)
    assert (first.which, second.which) == (DescriptorSlot.FIRST, DescriptorSlot.SECOND)
    assert second.period.time_period == first.period.time_period.next()
    assert first.blinded_key == blind_public_key(key.public_key(), first.period.time_period)
    relays = [HsDirRelay(fp, ed) for fp, ed in view.hsdirs()]
    for plan in (first, second):
        expected = responsible_hsdirs(
            relays,
            plan.blinded_key,
            plan.period.time_period,
            plan.period.srv,
            n_replicas=2,
            spread_store=4,
        )
        assert plan.hsdirs == tuple(r.fingerprint_hex for r in expected)
        assert len(plan.hsdirs) == 8
    # the first descriptor counts its revision from the previous SRV run, the second from this one
    assert first.period.srv_run_start_s == SRV_START - 240
    assert second.period.srv_run_start_s == SRV_START


def test_consensus_params_change_the_ring_size() -> None:
    from types import MappingProxyType

    from onionfleet.tor.consensus import ConsensusView

    base = make_view(PHASE_B, relays=20)
    view = ConsensusView(
        base.valid_after,
        base.fresh_until,
        base.valid_until,
        MappingProxyType({"hsdir_n_replicas": 3, "hsdir_spread_store": 2}),
        base.srv_current,
        base.srv_previous,
        base.relays,
        base._by_fingerprint,
    )
    first, _ = plan_descriptors(view, master_key().public_key(), _rules())
    assert len(first.hsdirs) == 6
    assert max_descriptor_size(view) == 50_000


def test_fetchable_slot_follows_the_phase() -> None:
    rules = _rules()
    assert fetchable_slot(PHASE_B, rules) is DescriptorSlot.FIRST
    assert fetchable_slot(PHASE_A, rules) is DescriptorSlot.SECOND


def _inputs(valid_after: int, srv_current: str, srv_previous: str) -> PublishInputs:
    view = make_view(valid_after, srv_current=srv_current, srv_previous=srv_previous)
    plans = plan_descriptors(view, master_key().public_key(), _rules())
    return PublishInputs(
        intro_points=frozenset({1, 2}),
        periods=tuple((p.period.time_period, p.period.srv) for p in plans),
        hsdirs=tuple(frozenset(p.hsdirs) for p in plans),
    )


def test_srv_rotation_republishes_and_tp_start_does_not() -> None:
    import random

    schedule = RepublishSchedule(republish_min_s=3600, republish_max_s=7200, rng=random.Random(1))
    schedule.published(_inputs(PHASE_B, "cur", "prev"), 0)
    # TP start (phase B -> A): same TPs and SRVs for both descriptors: nothing to do
    assert schedule.reasons(_inputs(PHASE_A, "cur", "prev"), 100) == []
    # new SRV run: the TPs move on and the SRVs shift
    reasons = schedule.reasons(_inputs(NEXT_RUN_B, "new", "cur"), 200)
    assert "time period or SRV rotated" in reasons


def test_seconds_until_srv_rotation() -> None:
    rules = _rules()
    assert seconds_until_srv_rotation(PHASE_B, rules, PHASE_B + 5) == 240 - 30 - 5
    assert seconds_until_srv_rotation(PHASE_A, rules, PHASE_A) == 90


def test_flow_control_copied_only_when_every_node_agrees() -> None:
    fc = FlowControl("1-2", 31)
    assert merged_flow_control([fc, FlowControl("1-2", 31)]) == fc
    assert merged_flow_control([fc, None]) is None
    assert merged_flow_control([fc, FlowControl("1", 31)]) is None
    assert merged_flow_control([]) is None


def test_next_revision_counter_is_strictly_increasing_within_a_second() -> None:
    assert next_revision_counter(100, None) == 100
    assert next_revision_counter(100, 99) == 100
    assert next_revision_counter(100, 100) == 101
    assert next_revision_counter(100, 150) == 151
    # last + 1 never overtakes the next second's OPE value
    ope = RevisionCounterOpe(blind_secret_key(master_key(), TimePeriod(7480618, 4)))
    for t in range(SRV_START, SRV_START + 50):
        now_value = ope.counter(SRV_START, t)
        bumped = next_revision_counter(now_value, now_value)
        assert bumped <= ope.counter(SRV_START, t + 1)


def test_compare_and_digest_use_auth_keys_only() -> None:
    ips = make_intro_points(4, seed=1)
    stripped = [ip.without_certs() for ip in reversed(ips)]
    assert compare_intro_points(ips, stripped).matches
    assert intro_point_set_digest(ip.auth_key for ip in ips) == intro_point_set_digest(
        ip.auth_key for ip in stripped
    )
    other = make_intro_points(1, seed=2)
    diff = compare_intro_points(ips[:3], [*ips[1:3], *other])
    assert diff.missing == {ips[0].auth_key}
    assert diff.unexpected == {other[0].auth_key}
    assert not diff.matches


@pytest.mark.parametrize("valid_after", [PHASE_B, PHASE_A, NEXT_RUN_B])
def test_plan_first_and_second_cover_the_fetch_tp(valid_after: int) -> None:
    rules = _rules(valid_after)
    plans = plan_descriptors(make_view(valid_after), master_key().public_key(), rules)
    current = time_period_at(valid_after, rules)
    slot = fetchable_slot(valid_after, rules)
    assert {p.which: p for p in plans}[slot].period.time_period == current


def _on_relay(ip: IntroPoint, relay: bytes) -> IntroPoint:
    specs = tuple(
        LinkSpecifier.legacy_id(relay) if s.ls_type == LS_LEGACY_ID else s
        for s in ip.link_specifiers
    )
    return IntroPoint.create(
        specs, onion_key=ip.onion_key, auth_key=ip.auth_key, enc_key=ip.enc_key
    )


def test_one_intro_point_per_relay_dealt_round_robin() -> None:
    relays = [bytes([r]) * 20 for r in range(4)]
    # three nodes, each with 3 intro points, on only 4 relays between them; node c's all share
    a = [_on_relay(ip, relays[i]) for i, ip in enumerate(make_intro_points(3, seed=1))]
    b = [_on_relay(ip, relays[i + 1]) for i, ip in enumerate(make_intro_points(3, seed=2))]
    c = [_on_relay(ip, relays[i]) for i, ip in enumerate(make_intro_points(3, seed=3))]
    nodes = [
        NodeIntroPoints("a", tuple(a)),
        NodeIntroPoints("b", tuple(b)),
        NodeIntroPoints("c", tuple(c)),
    ]
    plain = select_intro_points(nodes)
    assert len(plain.chosen) == 9  # without relay_of: duplicates on relays
    sel = select_intro_points(nodes, relay_of=intro_point_relay)
    used = [intro_point_relay(ip) for ip in sel.chosen]
    assert len(used) == len(set(used)) == 4
    assert all(sel.per_node[n] >= 1 for n in "abc"), sel.per_node
    assert sel.dropped_same_relay == 5 and sel.left_out == 5
    # stable: republishing with the same nodes keeps the same choice
    again = select_intro_points(nodes, relay_of=intro_point_relay, previous=sel.chosen)
    assert set(again.chosen) == set(sel.chosen)


def test_relay_identity_prefers_the_legacy_id() -> None:
    ip = make_intro_points(1, seed=4)[0]
    legacy = next(s for s in ip.link_specifiers if s.ls_type == LS_LEGACY_ID)
    assert intro_point_relay(ip) == bytes([LS_LEGACY_ID]) + legacy.body


def test_a_late_node_is_not_shut_out_by_relays_of_earlier_publishes() -> None:
    relays = [bytes([r]) * 20 for r in range(5)]
    a = [_on_relay(ip, relays[i]) for i, ip in enumerate(make_intro_points(3, seed=1))]
    b = [_on_relay(ip, relays[i + 2]) for i, ip in enumerate(make_intro_points(3, seed=2))]
    first = select_intro_points(
        [NodeIntroPoints("a", tuple(a)), NodeIntroPoints("b", tuple(b))],
        relay_of=intro_point_relay,
    )
    assert len(first.chosen) == 5
    # node c arrives later with intro points only on relays already in use
    c = [_on_relay(ip, relays[i]) for i, ip in enumerate(make_intro_points(3, seed=3))]
    nodes = [
        NodeIntroPoints("a", tuple(a)),
        NodeIntroPoints("b", tuple(b)),
        NodeIntroPoints("c", tuple(c)),
    ]
    later = select_intro_points(nodes, relay_of=intro_point_relay, previous=first.chosen)
    assert all(later.per_node[n] >= 1 for n in "abc"), later.per_node
    assert len({intro_point_relay(ip) for ip in later.chosen}) == len(later.chosen) == 5
