"""Membership timers and gossip bookkeeping."""

from __future__ import annotations

from onionfleet.cluster.actions import (
    IntroPointsChanged,
    PeerDead,
    PeerForgotten,
    PeerJoined,
    PeerLeft,
    PeerSuspected,
    PeerUpdated,
)
from onionfleet.cluster.membership import Membership, PeerRecord, PeerStatus
from onionfleet.cluster.messages import (
    Heartbeat,
    IntroPointSet,
    PeerAddress,
    Role,
    Term,
    WireGuardIdentity,
)
from onionfleet.cluster.settings import ClusterSettings

S = ClusterSettings(node_id="me", address="me:1", forget_after_s=60.0)
BOOT1, BOOT2 = b"\x01" * 16, b"\x02" * 16


def hb(serving: bool = True, draining: bool = False) -> Heartbeat:
    return Heartbeat("p:1", 3, Role.FOLLOWER, Term(0, ""), 6000, serving, "", draining, b"", ())


def test_alive_suspect_dead_forgotten() -> None:
    m = Membership(S)
    record, actions = m.heard("p", BOOT1, "p:1", now=0.0)
    assert record is not None and actions == [PeerJoined("p", "p:1", False)]
    m.apply_heartbeat(record, hb(), 0.0)
    assert m.expire(3.9) == ([], [])
    assert m.expire(4.0)[0] == [PeerSuspected("p")]
    assert m.get("p").status is PeerStatus.SUSPECT  # type: ignore[union-attr]
    assert [p.node_id for p in m.live()] == ["p"]
    assert m.expire(6.0)[0] == [PeerDead("p")]
    assert m.live() == [] and m.gossip() == ()
    assert m.expire(60.0) == ([PeerForgotten("p")], ["p"])
    assert m.get("p") is None


def test_heard_again_revives_and_restart_resets() -> None:
    m = Membership(S)
    record, _ = m.heard("p", BOOT1, "p:1", now=0.0)
    assert record is not None
    m.apply_heartbeat(record, hb(), 0.0)
    m.set_intro(record, IntroPointSet((b"x",)))
    m.expire(7.0)
    _, actions = m.heard("p", BOOT1, None, now=8.0)
    assert actions == [PeerJoined("p", "p:1", False)]
    _, actions = m.heard("p", BOOT2, "p:2", now=9.0)
    assert actions == [IntroPointsChanged("p", None), PeerJoined("p", "p:2", True)]
    assert record.priority is None and record.intro is None and record.address == "p:2"


def test_gossip_makes_peers_known_not_alive() -> None:
    m = Membership(S)
    assert m.learn(PeerAddress("q", "q:1"), now=0.0) is True
    assert m.learn(PeerAddress("q", "q:1"), now=1.0) is False
    assert m.learn(PeerAddress("me", "me:1"), now=1.0) is False
    assert m.get("q").status is PeerStatus.JOINING  # type: ignore[union-attr]
    assert m.gossip() == ()
    assert m.expire(59.0)[0] == []
    assert m.expire(60.0)[0] == [PeerForgotten("q")]


def test_unknown_peer_without_address_is_not_recorded() -> None:
    m = Membership(S)
    record, actions = m.heard("p", BOOT1, None, now=0.0)
    assert record is None and actions == []


def _since(record: PeerRecord) -> float | None:
    return record.eligible_since


def test_eligibility_tracking_and_updates() -> None:
    m = Membership(S)
    record, _ = m.heard("p", BOOT1, "p:1", now=0.0)
    assert record is not None
    assert m.apply_heartbeat(record, hb(), 1.0) == [PeerUpdated("p", True, "", False)]
    assert _since(record) == 1.0
    assert m.apply_heartbeat(record, hb(), 2.0) == []
    assert _since(record) == 1.0
    assert m.set_draining(record, True, 3.0) == [PeerUpdated("p", True, "", True)]
    assert _since(record) is None
    m.set_draining(record, False, 4.0)
    assert _since(record) == 4.0


def test_leave_removes_at_once() -> None:
    m = Membership(S)
    record, _ = m.heard("p", BOOT1, "p:1", now=0.0)
    assert record is not None
    m.set_intro(record, IntroPointSet((b"x",)))
    assert m.remove("p", BOOT1, "bye", 1.0) == [PeerLeft("p", "bye"), IntroPointsChanged("p", None)]
    assert m.remove("p", BOOT1, "bye", 1.0) == []
    assert m.learn(PeerAddress("p", "p:1"), now=2.0) is False  # gossip cannot revive it
    assert m.heard("p", BOOT1, "p:1", now=2.0) == (None, [])  # nor a straggler frame
    record, actions = m.heard("p", BOOT2, "p:1", now=3.0)  # a new run of it can
    assert record is not None and actions == [PeerJoined("p", "p:1", False)]


def test_next_deadline_is_never_late() -> None:
    m = Membership(S)
    assert m.next_deadline() is None
    m.heard("p", BOOT1, "p:1", now=0.0)
    due = m.next_deadline()
    assert due is not None and due <= 4.0
    m.expire(1.0)
    assert m.next_deadline() == 4.0


def test_gossip_of_a_huge_cluster_rotates_and_stays_under_the_cap() -> None:
    from onionfleet.cluster.membership import GOSSIP_MAX_BYTES, GOSSIP_MAX_PEERS

    m = Membership(S)
    for i in range(600):
        m.heard(f"p{i:03d}", BOOT1, f"[fd00::{i:x}]:7800" + "x" * 100, now=0.0)
    seen: set[str] = set()
    for _ in range(4):
        batch = m.gossip()
        assert 0 < len(batch) <= GOSSIP_MAX_PEERS
        assert sum(2 + len(p.node_id) + len(p.address) for p in batch) <= GOSSIP_MAX_BYTES
        seen |= {p.node_id for p in batch}
    assert len(seen) == 600


def test_wireguard_identities_spread_by_gossip_and_the_peer_itself_is_the_authority() -> None:
    m = Membership(S)
    gossiped = WireGuardIdentity(b"\x02" * 32, "192.0.2.2:51820", "10.77.0.2")
    assert m.learn(PeerAddress("q", "10.77.0.2:7420", gossiped), now=0.0) is True
    assert m.views()[0].wireguard == gossiped  # known before we ever heard q
    newer = WireGuardIdentity(b"\x03" * 32, "192.0.2.2:51820", "10.77.0.2")
    m.learn(PeerAddress("q", "10.77.0.2:7420", newer), now=0.5)
    assert m.views()[0].wireguard == newer  # not heard yet: gossip may update it
    record, _ = m.heard("q", BOOT1, "10.77.0.2:7420", now=1.0)
    assert record is not None
    own = WireGuardIdentity(b"\x04" * 32, "", "10.77.0.2")
    beat = Heartbeat("10.77.0.2:7420", 3, Role.FOLLOWER, Term(0, ""), 6000, True, "", False,
                     b"", (), own)
    m.apply_heartbeat(record, beat, now=1.0)
    m.learn(PeerAddress("q", "10.77.0.2:7420", gossiped), now=1.5)
    assert m.views()[0].wireguard == own  # alive: only its own heartbeats change it
    assert PeerAddress("q", "10.77.0.2:7420", own) in m.gossip()
