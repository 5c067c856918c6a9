"""The lease election policy, driven directly with local monotonic times."""

from __future__ import annotations

from onionfleet.cluster.actions import BecomePublisher, LeaseRenewed, StepDown
from onionfleet.cluster.election import Candidate, Election
from onionfleet.cluster.messages import LeaseRelease, Role, Term
from onionfleet.cluster.settings import ClusterSettings

# I = 2 s, dead_after = 3 -> lease 6 s, grace 2 s, hand-over delay 2 s.
S = ClusterSettings(node_id="b", address="b:1", priority=10)


def none() -> list[Candidate]:
    return []


def test_fresh_node_listens_for_lease_then_grace_before_claiming() -> None:
    e = Election(S, now=100.0)
    assert e.evaluate(100.0, True, 10, none, renewing=False) == []
    assert e.evaluate(107.9, True, 10, none, renewing=False) == []  # 6 s lease + 2 s grace
    actions = e.evaluate(108.0, True, 10, none, renewing=False)
    assert actions == [BecomePublisher(Term(1, "b"))]
    assert e.is_publisher and e.role is Role.PUBLISHER


def test_only_the_best_candidate_claims() -> None:
    e = Election(S, now=0.0)
    better = [Candidate("a", 5, 0.0)]
    assert e.evaluate(50.0, True, 10, lambda: better, renewing=False) == []
    tie_loser = [Candidate("c", 10, 0.0)]  # same priority, higher id: we win the tie
    assert e.evaluate(50.0, True, 10, lambda: tie_loser, renewing=False)[0] == BecomePublisher(
        Term(1, "b")
    )


def test_ineligible_never_claims() -> None:
    e = Election(S, now=0.0)
    assert e.evaluate(50.0, False, 10, none, renewing=False) == []


def test_holder_heartbeats_keep_lease_and_lapse_plus_grace_allows_takeover() -> None:
    e = Election(S, now=0.0)
    e.observe("a", Term(4, "a"), Role.PUBLISHER, 6.0, now=10.0)
    assert e.highest == Term(4, "a")
    assert e.evaluate(17.9, True, 10, none, renewing=False) == []  # 10 + 6 + 2
    assert e.evaluate(18.0, True, 10, none, renewing=False) == [BecomePublisher(Term(5, "b"))]


def test_gossiped_term_is_lapsed_until_its_holder_is_heard() -> None:
    e = Election(S, now=0.0)
    e.observe("a", Term(4, "a"), Role.PUBLISHER, 6.0, now=10.0)
    e.observe("c", Term(6, "d"), Role.FOLLOWER, 6.0, now=11.0)  # c heard of d's term 6
    assert e.lease_term == Term(6, "d")
    assert e.evaluate(12.9, True, 10, none, renewing=False) == []
    assert e.evaluate(13.0, True, 10, none, renewing=False) == [BecomePublisher(Term(7, "b"))]


def test_holder_reporting_follower_releases_its_lease() -> None:
    e = Election(S, now=0.0)
    e.observe("a", Term(4, "a"), Role.PUBLISHER, 6.0, now=10.0)
    e.observe("a", Term(4, "a"), Role.FOLLOWER, 6.0, now=11.0)  # a restarted or stepped down
    assert e.evaluate(12.9, True, 10, none, renewing=False) == []
    assert e.evaluate(13.0, True, 10, none, renewing=False)[0] == BecomePublisher(Term(5, "b"))


def test_publisher_renews_and_steps_down_at_once_on_higher_term() -> None:
    e = Election(S, now=0.0)
    e.evaluate(8.0, True, 10, none, renewing=False)
    renew = e.evaluate(10.0, True, 10, none, renewing=True)
    assert renew == [LeaseRenewed(Term(1, "b"), 16.0)]
    assert e.observe("c", Term(1, "a"), Role.PUBLISHER, 6.0, now=11.0) == []  # lower: ignored
    out = e.observe("c", Term(1, "c"), Role.PUBLISHER, 6.0, now=11.0)
    assert len(out) == 1 and isinstance(out[0], StepDown)
    assert out[0].term == Term(1, "b") and out[0].successor is None
    assert not e.is_publisher
    assert e.lease_term == Term(1, "c")


def test_better_candidate_waits_for_handover_delay() -> None:
    e = Election(S, now=0.0)
    e.evaluate(8.0, True, 10, none, renewing=False)
    returning = [Candidate("a", 1, 20.0)]
    assert e.evaluate(20.5, True, 10, lambda: returning, renewing=False) == []  # not a renewal
    renew = e.evaluate(21.0, True, 10, lambda: returning, renewing=True)
    assert isinstance(renew[0], LeaseRenewed)  # alive only 1 s < 2 s hand-over delay
    out = e.evaluate(23.0, True, 10, lambda: returning, renewing=True)
    assert out == [StepDown(Term(1, "b"), "handing over to better candidate a", "a")]
    assert not e.is_publisher
    # A worse candidate never triggers a hand-over.
    e2 = Election(S, now=0.0)
    e2.evaluate(8.0, True, 10, none, renewing=False)
    worse = [Candidate("c", 50, 0.0)]
    assert isinstance(e2.evaluate(30.0, True, 10, lambda: worse, renewing=True)[0], LeaseRenewed)


def test_successor_claims_at_once_on_release() -> None:
    a = ClusterSettings(node_id="a", address="a:1", priority=1)
    e = Election(a, now=0.0)
    e.observe("b", Term(3, "b"), Role.PUBLISHER, 6.0, now=1.0)
    e.observe_release("b", LeaseRelease(Term(3, "b"), "a"), now=2.0)
    assert e.evaluate(2.0, True, 1, none, renewing=False) == [BecomePublisher(Term(4, "a"))]


def test_release_naming_someone_else_only_lapses_the_lease() -> None:
    c = ClusterSettings(node_id="c", address="c:1", priority=1)
    e = Election(c, now=0.0)
    e.observe("b", Term(3, "b"), Role.PUBLISHER, 6.0, now=1.0)
    e.observe_release("b", LeaseRelease(Term(3, "b"), "a"), now=2.0)
    assert e.evaluate(3.9, True, 1, none, renewing=False) == []
    assert e.evaluate(4.0, True, 1, none, renewing=False) == [BecomePublisher(Term(4, "c"))]


def test_release_by_someone_not_holding_the_term_is_ignored() -> None:
    e = Election(S, now=0.0)
    e.observe("a", Term(3, "a"), Role.PUBLISHER, 6.0, now=1.0)
    e.observe_release("x", LeaseRelease(Term(3, "a"), "b"), now=2.0)
    assert e.evaluate(2.0, True, 10, none, renewing=False) == []


def test_losing_eligibility_steps_down_naming_best_other() -> None:
    e = Election(S, now=0.0)
    e.evaluate(8.0, True, 10, none, renewing=False)
    others = [Candidate("z", 50, 0.0), Candidate("y", 20, 0.0)]
    out = e.evaluate(9.0, False, 10, lambda: others, renewing=False)
    assert out == [StepDown(Term(1, "b"), "this node is not serving or is draining", "y")]


def test_terms_never_reused_across_restarts() -> None:
    e = Election(S, now=0.0, last_term_number=41)
    assert e.evaluate(8.0, True, 10, none, renewing=False) == [BecomePublisher(Term(42, "b"))]
    e.observe("c", Term(1, "c"), Role.FOLLOWER, 6.0, now=9.0)
    e.observe("a", Term(50, "a"), Role.PUBLISHER, 6.0, now=9.0)  # steps down
    e.observe("a", Term(50, "a"), Role.FOLLOWER, 6.0, now=10.0)
    assert e.evaluate(12.0, True, 10, none, renewing=False) == [BecomePublisher(Term(51, "b"))]


def test_holder_gone_lapses_lease() -> None:
    e = Election(S, now=0.0)
    e.observe("a", Term(3, "a"), Role.PUBLISHER, 6.0, now=1.0)
    e.holder_gone("a", now=2.0)
    assert e.evaluate(4.0, True, 10, none, renewing=False) == [BecomePublisher(Term(4, "b"))]


def test_candidates_not_consulted_while_lease_is_held() -> None:
    e = Election(S, now=0.0)
    calls = []

    def spy() -> list[Candidate]:
        calls.append(1)
        return []

    e.evaluate(1.0, True, 10, spy, renewing=False)
    assert calls == []
