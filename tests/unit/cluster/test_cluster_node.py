"""ClusterNode end to end on an in-memory network (no sockets, virtual time)."""

from __future__ import annotations

import logging
from collections import deque

import pytest

from onionfleet.cluster.actions import (
    Action,
    BecomePublisher,
    FrameRejected,
    IntroPointsChanged,
    PeerLeft,
    SendTo,
    StepDown,
)
from onionfleet.cluster.auth import ClusterToken, FrameSealer
from onionfleet.cluster.errors import RejectReason
from onionfleet.cluster.membership import PeerStatus
from onionfleet.cluster.messages import Hello, IntroPointSet, Role
from onionfleet.cluster.node import ClusterNode
from onionfleet.cluster.settings import ClusterSettings
from onionfleet.errors import ConfigError

TOKEN = b"unit-test cluster token 32 bytes"
KEY = ClusterToken(TOKEN).derive_mac_key()


class Clock:
    def __init__(self, net: Net, skew_s: float = 0.0) -> None:
        self.net = net
        self.skew_s = skew_s

    def monotonic(self) -> float:
        return self.net.now

    def wall(self) -> float:
        return 1_700_000_000.0 + self.net.now + self.skew_s


class Net:
    """Delivers every SendTo after ``delay_s``; ticks every node every ``step_s``."""

    def __init__(self, delay_s: float = 0.01) -> None:
        self.now = 0.0
        self.delay_s = delay_s
        self.nodes: dict[str, ClusterNode] = {}
        self.down: set[str] = set()
        self.queue: deque[tuple[float, str, bytes]] = deque()
        self.log: list[tuple[float, str, Action]] = []
        self._boot = 0

    def add(
        self,
        name: str,
        priority: int,
        seeds: tuple[str, ...] = (),
        skew_s: float = 0.0,
    ) -> ClusterNode:
        self._boot += 1
        settings = ClusterSettings(
            node_id=name,
            address=f"{name}:1",
            priority=priority,
            seeds=tuple(f"{s}:1" for s in seeds),
        )
        boot_id = self._boot.to_bytes(16, "big")
        node = ClusterNode(settings, KEY, Clock(self, skew_s), boot_id=boot_id)
        self.nodes[name] = node
        self.down.discard(name)
        self.handle(name, node.start())
        return node

    def handle(self, name: str, actions: list[Action]) -> None:
        for action in actions:
            self.log.append((self.now, name, action))
            if isinstance(action, SendTo):
                self.queue.append(
                    (self.now + self.delay_s, action.address.split(":")[0], action.frame)
                )

    def run(self, seconds: float, step_s: float = 0.05) -> None:
        end = self.now + seconds
        while self.now < end - 1e-9:
            self.now = round(self.now + step_s, 6)
            while self.queue and self.queue[0][0] <= self.now:
                _, target, frame = self.queue.popleft()
                if target in self.nodes and target not in self.down:
                    self.handle(target, self.nodes[target].receive(frame))
            for name, node in self.nodes.items():
                if name not in self.down and node.next_wakeup() <= self.now:
                    self.handle(name, node.tick())

    def publishers(self) -> list[str]:
        return [n for n, node in self.nodes.items() if n not in self.down and node.is_publisher]

    def of(self, kind: type, name: str | None = None) -> list[Action]:
        return [a for _, n, a in self.log if isinstance(a, kind) and (name is None or n == name)]


def three(net: Net) -> tuple[ClusterNode, ClusterNode, ClusterNode]:
    a = net.add("a", priority=1)
    b = net.add("b", priority=2, seeds=("a",))
    c = net.add("c", priority=3, seeds=("b",))  # chain: c only knows b
    return a, b, c


def test_chain_join_becomes_full_mesh_and_best_is_publisher() -> None:
    net = Net()
    a, b, c = three(net)
    net.run(1.0)
    for node in (a, b, c):
        alive = {p.node_id for p in node.peers() if p.status is PeerStatus.ALIVE}
        assert alive == {"a", "b", "c"} - {node.node_id}
    assert net.publishers() == []  # everyone listens for a lease first
    net.run(8.0)  # lease 6 s + grace 2 s
    assert net.publishers() == ["a"]
    assert a.role is Role.PUBLISHER and a.term.number == 1
    assert b.term == a.term == c.term
    assert net.of(BecomePublisher) == [BecomePublisher(a.term)]


def test_intro_points_reach_every_node_and_changes_are_pushed() -> None:
    net = Net()
    a, b, c = three(net)
    sets = {n: IntroPointSet((n.encode() * 10,), "flow-control 1-2 31") for n in "abc"}
    for name, node in (("a", a), ("b", b), ("c", c)):
        net.handle(name, node.set_intro_points(sets[name]))
    net.run(3.0)
    for node in (a, b, c):
        assert node.intro_point_sets() == sets
    new = IntroPointSet((b"new",), None)
    net.handle("c", c.set_intro_points(new))
    net.run(0.1)
    assert a.intro_point_sets()["c"] == new
    assert IntroPointsChanged("c", new) in net.of(IntroPointsChanged, "a")


def test_publisher_crash_is_taken_over_within_lease_plus_grace() -> None:
    net = Net()
    _a, b, _ = three(net)
    net.run(10.0)
    assert net.publishers() == ["a"]
    crash_at = net.now
    net.down.add("a")
    net.run(12.0)
    assert net.publishers() == ["b"]
    claim_time = next(t for t, n, x in net.log if n == "b" and isinstance(x, BecomePublisher))
    # last heartbeat from a <= crash; lease 6 s + grace 2 s; tick granularity 0.05 s
    assert claim_time - crash_at <= 6.0 + 2.0 + 0.2
    assert b.term.number == 2


def test_drain_hands_over_at_once_and_return_hands_back() -> None:
    net = Net()
    a, _b, _c = three(net)
    net.run(10.0)
    net.handle("a", a.set_draining(True, "maintenance"))
    net.run(0.2)
    assert net.publishers() == ["b"]
    assert a.intro_point_sets() == {}  # a is no candidate; no intro points known yet either
    assert [s.successor for s in net.of(StepDown, "a") if isinstance(s, StepDown)] == ["b"]
    net.handle("a", a.set_draining(False))
    net.run(1.0)
    assert net.publishers() == ["b"]  # no flapping: b keeps it for the hand-over delay
    net.run(4.0)
    assert net.publishers() == ["a"]
    assert [s.successor for s in net.of(StepDown, "b") if isinstance(s, StepDown)] == ["a"]


def test_unhealthy_publisher_steps_down() -> None:
    net = Net()
    a, b, _ = three(net)
    net.run(10.0)
    net.handle("a", a.set_health(False, "target refused"))
    net.run(0.2)
    assert net.publishers() == ["b"]
    peer_a = next(p for p in b.peers() if p.node_id == "a")
    assert not peer_a.serving and peer_a.health_reason == "target refused"


def test_leave_releases_and_peers_forget_at_once() -> None:
    net = Net()
    a, b, c = three(net)
    net.run(10.0)
    net.handle("a", a.leave("upgrade"))
    net.run(0.2)
    assert net.publishers() == ["b"]
    assert PeerLeft("a", "upgrade") in net.of(PeerLeft, "c")
    net.run(5.0)  # b's gossip may still list a for a moment: it must not bring a back
    assert "a" not in {p.node_id for p in c.peers()}
    assert "a" not in {p.node_id for p in b.peers()}
    assert a.tick() == [] and a.leave() == []


def test_restarted_node_does_not_take_over_immediately() -> None:
    net = Net()
    _a, _b, _c = three(net)
    net.run(10.0)
    net.down.add("a")
    net.run(10.0)
    assert net.publishers() == ["b"]
    net.add("a", priority=1)  # restart with a new boot id, no seeds: b and c still know a
    net.run(1.0)
    assert net.publishers() == ["b"]
    net.run(5.0)
    assert net.publishers() == ["a"]
    assert net.nodes["a"].term.number == 3


def test_forged_replayed_skewed_and_own_id_frames_are_counted() -> None:
    net = Net()
    a, _b, _ = three(net)
    net.run(3.0)
    wrong = ClusterToken(b"some other token, long enough..").derive_mac_key()
    forged = FrameSealer(wrong, "b", b"\x09" * 16).seal(Hello("b:1"), 1_700_000_003.0)
    out = a.receive(forged)
    assert [type(x) for x in out] == [FrameRejected]
    assert a.rejects.get(RejectReason.BAD_MAC) == 1
    sealer = FrameSealer(KEY, "x", b"\x07" * 16)
    frame = sealer.seal(Hello("x:1"), 1_700_000_003.0)
    a.receive(frame)
    a.receive(frame)
    assert a.rejects.get(RejectReason.REPLAY) == 1
    a.receive(sealer.seal(Hello("x:1"), 1_700_000_003.0 + 31))
    assert a.rejects.get(RejectReason.CLOCK_SKEW) == 1
    a.receive(FrameSealer(KEY, "a", b"\x08" * 16).seal(Hello("a:9"), 1_700_000_003.0))
    assert a.rejects.get(RejectReason.SAME_NODE_ID) == 1
    assert a.rejects.total == 4


def test_skewed_node_is_rejected_with_ntp_hint_and_no_secret_in_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="onionfleet.cluster")
    net = Net()
    a = net.add("a", priority=1, seeds=("b",))
    b = net.add("b", priority=2, seeds=("a",), skew_s=45.0)
    net.run(3.0)
    assert a.rejects.get(RejectReason.CLOCK_SKEW) > 0
    assert b.rejects.get(RejectReason.CLOCK_SKEW) > 0
    skew_lines = [r.getMessage() for r in caplog.records if "clocks disagree" in r.getMessage()]
    about_b = [line for line in skew_lines if "node b's" in line]
    assert len(about_b) == 1  # once per sender per minute, not per frame
    assert "45.0 s ahead" in about_b[0] and "NTP" in about_b[0]
    assert any("node a's wall clock is 45.0 s behind" in line for line in skew_lines)
    wrong = ClusterToken(b"some other token, long enough..").derive_mac_key()
    a.receive(FrameSealer(wrong, "z", b"\x01" * 16).seal(Hello("z:1"), 1_700_000_003.0))
    text = " ".join(r.getMessage() for r in caplog.records) + repr(a.__dict__)
    assert TOKEN.decode() not in text and TOKEN.hex() not in text


def test_invalid_boot_id_refused() -> None:
    with pytest.raises(ConfigError):
        ClusterNode(ClusterSettings(node_id="a", address="a:1"), KEY, Clock(Net()), boot_id=b"x")


@pytest.mark.parametrize(
    "kw",
    [
        {"node_id": "bad id"},
        {"address": ""},
        {"priority": -1},
        {"heartbeat_interval_s": 0.0},
        {"dead_after": 2, "suspect_after": 2},
        {"lease_grace_s": -1.0},
        {"handover_delay_s": -1.0},
        {"forget_after_s": 5.0},
        {"forget_after_s": 20.0, "max_clock_skew_s": 30.0},
        {"max_clock_skew_s": 0.0},
    ],
)
def test_settings_validated(kw: dict[str, object]) -> None:
    base: dict[str, object] = {"node_id": "a", "address": "a:1"}
    base.update(kw)
    with pytest.raises(ConfigError):
        ClusterSettings(**base)  # type: ignore[arg-type]


def test_restart_with_dead_seed_rejoins_through_remembered_peers() -> None:
    net = Net()
    a, _b, c = three(net)
    net.run(3.0)
    remembered = c.known_addresses()
    assert remembered == ("a:1", "b:1")
    net.down.update({"b", "c"})  # c's only seed (b) dies for good; c restarts
    net.nodes["c"] = ClusterNode(
        c.settings, KEY, Clock(net), boot_id=b"\x42" * 16, remembered_peers=remembered
    )
    net.down.discard("c")
    net.handle("c", net.nodes["c"].start())
    net.run(2.5)
    assert "c" in {p.node_id for p in a.peers() if p.status is PeerStatus.ALIVE}


def test_a_late_timer_still_claims_at_the_lapse_not_a_heartbeat_later() -> None:
    """An adapter's timer fires a little after ``next_wakeup()``; the claim deadline must stay due
    until a tick has run at or after it (it used to vanish once the clock had passed it)."""
    net = Net()
    a = ClusterSettings(node_id="a", address="a:1", heartbeat_interval_s=1.0, lease_grace_s=1.0)
    node = ClusterNode(a, KEY, Clock(net), boot_id=b"\x01" * 16, serving=True)
    node.start()
    claim_at = node.election.lease_deadline + a.lease_grace_s
    while net.now < claim_at:  # tick whenever due, but never exactly at claim_at
        net.now = min(node.next_wakeup(), claim_at - 0.001)
        node.tick()
        if net.now >= claim_at - 0.001:
            break
    net.now = claim_at + 0.05  # the timer fired 50 ms late
    assert node.next_wakeup() <= net.now
    assert any(isinstance(x, BecomePublisher) for x in node.tick())
    assert node.next_wakeup() > net.now
