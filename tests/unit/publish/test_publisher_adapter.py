"""The Publisher against a fake tor: what it posts, how it tracks, retries and verifies."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from publish_factory import (
    NEXT_RUN_B,
    PHASE_A,
    PHASE_B,
    FakeTor,
    make_intro_points,
    make_view,
    master_key,
    token_bytes,
)

from onionfleet.clock import ManualClock
from onionfleet.hs.descriptor import FlowControl, build_descriptor, decode_descriptor
from onionfleet.hs.intro_point import IntroPoint
from onionfleet.publish.plan import plan_descriptors, time_period_rules_for
from onionfleet.publish.publisher import Publisher, PublisherSettings
from onionfleet.publish.selection import NodeIntroPoints
from onionfleet.publish.status import PublisherStatus, VerificationState
from onionfleet.publish.uploads import UploadState
from onionfleet.tor.consensus import ConsensusView

FC = FlowControl("1-2", 31)


@dataclass
class Rig:
    tor: FakeTor
    clock: ManualClock
    publisher: Publisher
    nodes: list[NodeIntroPoints[IntroPoint]]
    view: list[ConsensusView] = field(default_factory=list)

    def set_view(self, valid_after: int, **kwargs: object) -> ConsensusView:
        view = make_view(valid_after, **kwargs)  # type: ignore[arg-type]
        self.view.append(view)
        rules = time_period_rules_for(view, testing_tor_network=True)
        first, second = plan_descriptors(view, master_key().public_key(), rules)
        from onionfleet.publish.plan import fetchable_slot

        fetch = first if fetchable_slot(valid_after, rules).value == "first" else second
        self.tor.current_blinded_b64 = fetch.blinded_key.b64()
        self.clock._wall0 = valid_after + 3 - self.clock.monotonic()
        self.publisher.nudge()
        return view

    async def until(self, predicate, timeout_s: float = 5.0) -> PublisherStatus:  # type: ignore[no-untyped-def]
        return await self.publisher.wait_for(predicate, timeout_s=timeout_s)


def _nodes(flow: tuple[FlowControl | None, ...] = (FC, FC)) -> list[NodeIntroPoints[IntroPoint]]:
    return [
        NodeIntroPoints(f"node{i}", tuple(make_intro_points(3, seed=10 + i)), flow[i])
        for i in range(len(flow))
    ]


@asynccontextmanager
async def rig(nodes: list[NodeIntroPoints[IntroPoint]] | None = None) -> AsyncIterator[Rig]:
    tor = FakeTor()
    clock = ManualClock(start_wall=PHASE_B + 3)
    node_list = nodes if nodes is not None else _nodes()
    views: list[ConsensusView] = []
    publisher = Publisher(
        tor,  # type: ignore[arg-type]
        master_key(),
        nodes=lambda: node_list,
        consensus=lambda: views[-1] if views else None,
        clock=clock,
        rng=random.Random(1),
        token_bytes=token_bytes(5),
        settings=PublisherSettings(tick_s=0.02),
    )
    r = Rig(tor, clock, publisher, node_list, views)
    r.set_view(PHASE_B)
    task = asyncio.create_task(publisher.run())
    try:
        yield r
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _done(status: PublisherStatus) -> bool:
    last = status.last
    return last is not None and all(d.uploaded_count == len(d.hsdirs) for d in last.descriptors)


def _fetchable_verified(status: PublisherStatus) -> bool:
    last = status.last
    return last is not None and any(
        d.verification is VerificationState.VERIFIED for d in last.descriptors
    )


def _retrying(status: PublisherStatus) -> bool:
    last = status.last
    return last is not None and any(
        u.state is UploadState.RETRY_WAIT for d in last.descriptors for u in d.uploads
    )


async def test_first_publish_posts_both_descriptors_to_our_ring_and_verifies() -> None:
    async with rig() as r:
        status = await r.until(lambda s: _done(s) and _fetchable_verified(s))
        view = r.view[-1]
        rules = time_period_rules_for(view, testing_tor_network=True)
        plans = plan_descriptors(view, master_key().public_key(), rules)
        assert [p[0] for p in r.tor.posts] == [plan.hsdirs for plan in plans]
        address = master_key().public_key().address()
        assert {p[1] for p in r.tor.posts} == {address.without_suffix()}
        for (_, _, text), plan in zip(r.tor.posts, plans, strict=True):
            assert "pow-params" not in text
            decoded = decode_descriptor(
                text, address, expected_blinded_key=plan.blinded_key, now=r.clock.wall()
            )
            assert decoded.flow_control == FC
            assert decoded.pow_params is None
            assert len(decoded.intro_points) == 6
        last = status.last
        assert last is not None
        first, second = last.descriptors
        # phase B: HSFETCH gets the first (current TP); the second waits for its TP
        assert first.verification is VerificationState.VERIFIED
        assert [res.outcome.value for res in first.verification_results] == ["match"] * 8
        assert second.verification is VerificationState.WAITING_FOR_TIME_PERIOD
        assert r.tor.fetches == [(address.without_suffix(), first.hsdirs)]
        assert status.flow_control == "flow-control 1-2 31"
        assert last.per_node == {"node0": 3, "node1": 3}
        assert last.reasons == ("first publish",)


async def test_the_other_descriptor_is_verified_when_its_time_period_starts() -> None:
    async with rig() as r:
        await r.until(lambda s: _done(s) and _fetchable_verified(s))
        r.set_view(PHASE_A)  # TP start: nothing to republish, the second is fetchable now
        status = await r.until(
            lambda s: (
                s.last is not None
                and all(d.verification is VerificationState.VERIFIED for d in s.last.descriptors)
            )
        )
        assert status.publishes == 1


async def test_past_time_period_descriptor_is_marked_unverifiable() -> None:
    async with rig() as r:
        r.set_view(PHASE_A)
        status = await r.until(lambda s: _done(s) and _fetchable_verified(s))
        assert status.last is not None
        first, second = status.last.descriptors
        assert first.verification is VerificationState.PAST_TIME_PERIOD
        assert second.verification is VerificationState.VERIFIED


async def test_failed_upload_is_reposted_to_that_hsdir_only_after_backoff() -> None:
    async with rig() as r:
        view = r.view[-1]
        rules = time_period_rules_for(view, testing_tor_network=True)
        first_plan, _ = plan_descriptors(view, master_key().public_key(), rules)
        victim = first_plan.hsdirs[2]
        r.tor.reject_once[victim] = None
        # the publisher started already; force a fresh round by changing the intro points
        await r.until(lambda s: s.last is not None)
        status = await r.until(
            lambda s: (
                (
                    s.last is not None
                    and any(
                        u.state is UploadState.RETRY_WAIT
                        for d in s.last.descriptors
                        for u in d.uploads
                    )
                )
                or _done(s)
            )
        )
        assert not _done(status)
        posts_before = len(r.tor.posts)
        r.clock.advance(2.5)  # first backoff step: 2 s
        r.publisher.nudge()
        status = await r.until(_done)
        retry = r.tor.posts[posts_before:]
        assert [p[0] for p in retry] == [(victim,)]
        assert status.last is not None
        upload = next(
            u for d in status.last.descriptors for u in d.uploads if u.hsdir_fingerprint == victim
        )
        assert upload.attempts == 2


async def test_rejected_hsdir_is_retried_and_tracked_per_descriptor() -> None:
    tor_nodes = _nodes()
    async with rig(tor_nodes) as r:
        await r.until(_done)
        view = r.view[-1]
        rules = time_period_rules_for(view, testing_tor_network=True)
        _, second_plan = plan_descriptors(view, master_key().public_key(), rules)
        victim = second_plan.hsdirs[0]
        r.tor.reject_once[victim] = second_plan.blinded_key.b64()
        tor_nodes.append(NodeIntroPoints("node9", tuple(make_intro_points(2, seed=40)), FC))
        r.publisher.nudge()
        status = await r.until(
            lambda s: (
                s.publishes == 2
                and s.last is not None
                and any(
                    u.last_reason == "UPLOAD_FAILED" for d in s.last.descriptors for u in d.uploads
                )
            )
        )
        assert status.last is not None
        failed = [
            (d.label, u.hsdir_fingerprint)
            for d in status.last.descriptors
            for u in d.uploads
            if u.state is UploadState.RETRY_WAIT
        ]
        # the FAILED event names the blinded key, so the second descriptor's slot is blamed even
        # though this HSDir also takes the first descriptor
        assert failed == [("second", victim)]
        r.clock.advance(2.5)
        r.publisher.nudge()
        status = await r.until(_done)
        assert r.tor.posts[-1][0] == (victim,)


async def test_intro_point_change_republishes_with_a_higher_counter_in_the_same_second() -> None:
    nodes = _nodes()
    async with rig(nodes) as r:
        first_status = await r.until(_done)
        assert first_status.last is not None
        counters = {d.label: d.revision_counter for d in first_status.last.descriptors}
        nodes[1] = NodeIntroPoints("node1", tuple(make_intro_points(2, seed=77)), FC)
        r.publisher.nudge()
        status = await r.until(lambda s: s.publishes == 2 and _done(s))
        assert status.last is not None
        assert status.last.reasons == ("intro points changed (+2 -3)",)
        for d in status.last.descriptors:
            assert d.revision_counter == counters[d.label] + 1  # same wall second
            assert d.uploaded_count == 8  # the HSDirs took it: strictly higher


async def test_changed_intro_points_do_not_wait_for_an_unsettled_round() -> None:
    """An HSDir that never answers keeps the round in flight for settle_max_s; new intro points
    (tor dropped the old ones) are published at once, other reasons wait."""
    nodes = _nodes()
    async with rig(nodes) as r:
        status = await r.until(_done)
        assert status.last is not None
        r.tor.silent.update(fp for d in status.last.descriptors for fp in d.hsdirs)
        r.set_view(NEXT_RUN_B, srv_current="new", srv_previous="cur")
        await r.until(lambda s: s.publishes == 2)  # posted; its uploads get no outcome
        r.set_view(NEXT_RUN_B, srv_current="newer", srv_previous="new")  # a reason that waits
        await r.until(lambda s: s.waiting_for == "the previous upload round to settle")
        assert r.publisher.status().publishes == 2
        nodes[1] = NodeIntroPoints("node1", tuple(make_intro_points(2, seed=77)), FC)
        r.publisher.nudge()
        status = await r.until(lambda s: s.publishes == 3)
        assert status.last is not None
        assert "intro points changed (+2 -3)" in status.last.reasons


async def test_srv_rotation_republishes_for_the_new_periods() -> None:
    async with rig() as r:
        first = await r.until(_done)
        r.set_view(NEXT_RUN_B, srv_current="new", srv_previous="cur")
        status = await r.until(lambda s: s.publishes == 2 and _done(s))
        assert status.last is not None and first.last is not None
        assert "time period or SRV rotated" in status.last.reasons
        old_tps = [d.time_period for d in first.last.descriptors]
        assert [d.time_period for d in status.last.descriptors] == [t + 1 for t in old_tps]


async def test_mismatch_on_an_hsdir_triggers_a_warning_and_a_republish(caplog) -> None:  # type: ignore[no-untyped-def]
    async with rig() as r:
        view = r.view[-1]
        rules = time_period_rules_for(view, testing_tor_network=True)
        first_plan, _ = plan_descriptors(view, master_key().public_key(), rules)
        stale = build_descriptor(
            master_key=master_key(),
            time_period=first_plan.period.time_period,
            revision_counter=1,
            intro_points=make_intro_points(2, seed=55),
            now=r.clock.wall(),
            token_bytes=token_bytes(9),
        )
        r.tor.tamper[first_plan.hsdirs[5]] = stale.text
        await r.until(
            lambda s: (
                s.last is not None
                and s.last.descriptors[0].verification is VerificationState.MISMATCH
            )
        )
        # not in a tight loop: the republish waits for mismatch_republish_delay_s
        assert r.publisher.status().publishes == 1
        r.clock.advance(31)
        r.publisher.nudge()
        status = await r.until(lambda s: s.publishes >= 2)
        history = r.publisher.history()
        first = history[0].descriptors[0]
        assert first.verification is VerificationState.MISMATCH
        bad = [res for res in first.verification_results if res.outcome.value == "mismatch"]
        assert [b.hsdir_fingerprint for b in bad] == [first_plan.hsdirs[5]]
        assert bad[0].missing == 6 and bad[0].unexpected == 2
        assert status.last is not None
        assert "verification found a different descriptor on the HSDirs" in history[1].reasons
        assert "verification of the first descriptor FAILED" in caplog.text


async def test_nodes_without_intro_points_are_reported_and_disagreeing_flow_control_dropped() -> (
    None
):
    nodes = [
        NodeIntroPoints("a", tuple(make_intro_points(2, seed=1)), FC),
        NodeIntroPoints("b", tuple(make_intro_points(2, seed=2)), FlowControl("1", 31)),
        NodeIntroPoints("c", (), FC),
    ]
    async with rig(nodes) as r:
        status = await r.until(_done)
        assert status.nodes_without_intro_points == ("c",)
        assert status.flow_control is None
        assert set(status.selected_per_node) == {"a", "b"}
        assert all(len(v) == 2 for v in status.selected_per_node.values())


async def test_waits_without_intro_points_or_consensus() -> None:
    async with rig([NodeIntroPoints("a", (), FC)]) as r:
        status = await r.until(lambda s: s.waiting_for == "no eligible node has intro points")
        assert status.last is None and r.tor.posts == []


async def test_upload_rejected_is_retried_with_a_rebuilt_higher_counter() -> None:
    from onionfleet.hs.blinding import blind_secret_key
    from onionfleet.hs.revision_counter import RevisionCounterOpe

    async with rig([]) as r:  # no intro points yet: nothing published
        view = r.view[-1]
        rules = time_period_rules_for(view, testing_tor_network=True)
        first_plan, _ = plan_descriptors(view, master_key().public_key(), rules)
        victim = first_plan.hsdirs[1]
        ope = RevisionCounterOpe(blind_secret_key(master_key(), first_plan.period.time_period))
        taken = ope.counter(first_plan.period.srv_run_start_s, int(r.clock.wall()))
        r.tor.store[(victim, first_plan.blinded_key.b64())] = (taken, "someone else's")
        r.nodes.extend(_nodes())
        r.publisher.nudge()
        status = await r.until(_retrying)
        assert status.last is not None
        assert status.last.descriptors[0].revision_counter == taken
        r.clock.advance(2.5)
        r.publisher.nudge()
        status = await r.until(_done)
        posted_again = r.tor.posts[-1]
        assert posted_again[0] == (victim,)
        assert r.tor.store[(victim, first_plan.blinded_key.b64())][0] > taken
        assert status.last is not None
        assert status.last.descriptors[0].revision_counter > taken
