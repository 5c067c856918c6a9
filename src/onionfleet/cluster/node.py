"""One node's cluster state machine: authentication, membership and election together (sans-IO).

The adapter (a transport) owns sockets and timers and drives a :class:`ClusterNode`:

* bytes from a connection go through that connection's
  :class:`~onionfleet.cluster.messages.FrameDecoder`; each complete frame goes to
  :meth:`ClusterNode.receive`;
* it calls :meth:`ClusterNode.tick` at (or soon after) :meth:`ClusterNode.next_wakeup`;
* it reports its own health, drain state and intro points with :meth:`set_health`,
  :meth:`set_draining`, :meth:`set_intro_points`, and calls :meth:`leave` on shutdown;
* every method returns a list of :mod:`~onionfleet.cluster.actions` to carry out in order.

Time comes only from the injected :class:`~onionfleet.clock.Clock`: ``monotonic()`` for every
timer and lease, ``wall()`` only to stamp and check frame freshness.
"""

from __future__ import annotations

import logging

from onionfleet.clock import Clock
from onionfleet.cluster.actions import (
    Action,
    BecomePublisher,
    FrameRejected,
    SendTo,
    StepDown,
)
from onionfleet.cluster.auth import FrameSealer, MacKey, RejectCounters, ReplayGuard, open_frame
from onionfleet.cluster.election import Candidate, Election
from onionfleet.cluster.errors import (
    ClockSkewRejected,
    RejectReason,
    RemotePeerProtocolError,
)
from onionfleet.cluster.membership import Membership, PeerRecord, PeerView
from onionfleet.cluster.messages import (
    BOOT_ID_BYTES,
    Drain,
    Heartbeat,
    Hello,
    IntroPoints,
    IntroPointSet,
    IntroPointsRequest,
    LeaseRelease,
    Leave,
    Message,
    Role,
    Term,
)
from onionfleet.cluster.settings import ClusterSettings
from onionfleet.errors import ConfigError

__all__ = ["ClusterNode"]

log = logging.getLogger(__name__)

_SKEW_LOG_EVERY_S = 60.0


class ClusterNode:
    """The per-node peer-protocol state machine. See the module docstring."""

    def __init__(
        self,
        settings: ClusterSettings,
        mac_key: MacKey,
        clock: Clock,
        *,
        boot_id: bytes,
        last_term_number: int = 0,
        remembered_peers: tuple[str, ...] = (),
        serving: bool = True,
        health_reason: str = "",
    ) -> None:
        if len(boot_id) != BOOT_ID_BYTES:
            raise ConfigError(f"a boot id is {BOOT_ID_BYTES} random bytes")
        self.settings = settings
        self._clock = clock
        self._key = mac_key
        self._sealer = FrameSealer(mac_key, settings.node_id, boot_id)
        self._guard = ReplayGuard(settings.max_clock_skew_s)
        self.rejects = RejectCounters()
        now = clock.monotonic()
        self.membership = Membership(settings)
        self.election = Election(settings, now, last_term_number)
        self._serving = serving
        self._health_reason = health_reason
        self._draining = False
        self._left = False
        self._intro: IntroPointSet | None = None
        self._intro_digest = b""
        self._next_heartbeat = now
        self._last_tick = float("-inf")
        self._started = False
        self._skew_logged: dict[str, float] = {}
        self._remembered = tuple(a for a in remembered_peers if a not in settings.seeds)
        self._remember_until = now + settings.forget_after_s

    # --- read-only state for status pages and metrics ----------------------------------------

    @property
    def node_id(self) -> str:
        return self.settings.node_id

    @property
    def boot_id(self) -> bytes:
        return self._sealer.boot_id

    @property
    def role(self) -> Role:
        return self.election.role

    @property
    def is_publisher(self) -> bool:
        return self.election.is_publisher

    @property
    def term(self) -> Term:
        """The highest term this node knows (its own while it is publisher)."""
        return self.election.highest

    @property
    def serving(self) -> bool:
        return self._serving

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def eligible(self) -> bool:
        return self._serving and not self._draining and not self._left

    def peers(self) -> list[PeerView]:
        return self.membership.views()

    def known_addresses(self) -> tuple[str, ...]:
        """Addresses of every peer this node knows: persist them and pass them back as
        ``remembered_peers`` after a restart, so a node whose seeds are gone can still rejoin."""
        return tuple(sorted({r.address for r in self.membership.records()}))

    def intro_point_sets(self, *, eligible_only: bool = True) -> dict[str, IntroPointSet]:
        """Intro-point sets of this node and of every live peer (eligible ones by default)."""
        sets: dict[str, IntroPointSet] = {}
        if self._intro is not None and (self.eligible or not eligible_only):
            sets[self.node_id] = self._intro
        for record in self.membership.records():
            if record.intro is None or not record.live:
                continue
            if eligible_only and not record.eligible():
                continue
            sets[record.node_id] = record.intro
        return sets

    def next_wakeup(self) -> float:
        """The monotonic time by which :meth:`tick` must be called next."""
        due = self._next_heartbeat
        member_due = self.membership.next_deadline()
        if member_due is not None:
            due = min(due, member_due)
        if not self.election.is_publisher:
            # The claim time counts until a tick has run at or after it: an adapter whose timer
            # fires a little late must still tick then, not one heartbeat later.
            claim_at = self.election.lease_deadline + self.settings.lease_grace_s
            if claim_at > self._last_tick:
                due = min(due, claim_at)
        return due

    # --- inputs from the adapter -------------------------------------------------------------

    def start(self) -> list[Action]:
        """Greet the seeds and send the first heartbeat."""
        if self._started or self._left:
            return []
        self._started = True
        return self.tick()

    def tick(self) -> list[Action]:
        if self._left or not self._started:
            return []
        now = self._clock.monotonic()
        self._last_tick = now
        actions, forgotten = self.membership.expire(now)
        for node_id in forgotten:
            self._guard.forget(node_id)
            self.election.holder_gone(node_id, now)
        renewing = now >= self._next_heartbeat
        if renewing:
            interval = self.settings.heartbeat_interval_s
            self._next_heartbeat = max(self._next_heartbeat + interval, now + interval / 2)
        role_before = self.election.role
        actions += self._evaluate(now, renewing=renewing)
        if renewing or self.election.role is not role_before:
            actions += self._broadcast(self._heartbeat())
        if renewing:
            actions += self._greet_seeds()
        return actions

    def receive(self, frame: bytes) -> list[Action]:
        """One complete frame from any connection."""
        if self._left:
            return []
        now = self._clock.monotonic()
        try:
            envelope, message = open_frame(self._key, frame)
            if envelope.sender == self.node_id:
                raise RemotePeerProtocolError(
                    f"a frame claims to come from this node ({self.node_id}): two nodes share "
                    "one node id, or a frame looped back; give every node its own node.id",
                    reason=RejectReason.SAME_NODE_ID,
                )
            self._guard.check(envelope, self._clock.wall())
        except RemotePeerProtocolError as exc:
            return [self._reject(exc, now)]
        sender = envelope.sender
        address = message.address if isinstance(message, (Hello, Heartbeat)) else None
        if isinstance(message, Leave):
            actions = self.membership.remove(sender, envelope.boot_id, message.reason, now)
            self.election.holder_gone(sender, now)
            if actions:
                log.info("peer %s left the cluster: %s", sender, message.reason)
            return actions + self._evaluate(now, renewing=False)
        record, actions = self.membership.heard(sender, envelope.boot_id, address, now)
        if record is None:
            return actions  # an unknown peer without an address: wait for its heartbeat
        role_before = self.election.role
        if isinstance(message, Heartbeat):
            actions += self._on_heartbeat(record, message, now, joined=bool(actions))
        elif isinstance(message, Hello):
            actions += self._unicast(record.address, sender, self._heartbeat())
        elif isinstance(message, IntroPoints):
            actions += self.membership.set_intro(record, message.intro)
        elif isinstance(message, IntroPointsRequest):
            if self._intro is not None and message.have_digest != self._intro_digest:
                actions += self._unicast(record.address, sender, IntroPoints(self._intro))
        elif isinstance(message, Drain):
            actions += self.membership.set_draining(record, message.draining, now)
        elif isinstance(message, LeaseRelease):
            actions += self.election.observe_release(sender, message, now)
        actions += self._evaluate(now, renewing=False)
        if self.election.role is not role_before:
            actions += self._broadcast(self._heartbeat())
        return actions

    def set_health(self, serving: bool, reason: str = "") -> list[Action]:
        """This node's own health verdict (from the node's probes)."""
        if self._left or (serving == self._serving and reason == self._health_reason):
            return []
        self._serving = serving
        self._health_reason = reason
        return self._after_local_change()

    def set_draining(self, draining: bool, reason: str = "") -> list[Action]:
        if self._left or draining == self._draining:
            return []
        self._draining = draining
        actions = self._broadcast(Drain(draining, reason))
        return actions + self._after_local_change()

    def set_intro_points(self, intro: IntroPointSet) -> list[Action]:
        """This node's current intro points (on every change; pushed to peers at once)."""
        if self._left or intro == self._intro:
            return []
        self._intro = intro
        self._intro_digest = intro.digest()
        if not self._started:
            return []
        return self._broadcast(IntroPoints(intro), live_only=True)

    def leave(self, reason: str = "shutting down") -> list[Action]:
        """Release the lease if held, tell every peer, and stop."""
        if self._left:
            return []
        self._draining = True
        actions = self._evaluate(self._clock.monotonic(), renewing=False)
        actions += self._broadcast(Leave(reason))
        self._left = True
        return actions

    # --- internals ---------------------------------------------------------------------------

    def _after_local_change(self) -> list[Action]:
        if not self._started:
            return []
        actions = self._evaluate(self._clock.monotonic(), renewing=False)
        return actions + self._broadcast(self._heartbeat())

    def _on_heartbeat(self, record: PeerRecord, hb: Heartbeat, now: float, joined: bool
                      ) -> list[Action]:
        actions = self.membership.apply_heartbeat(record, hb, now)
        actions += self.election.observe(record.node_id, hb.term, hb.role, hb.lease_ms / 1000, now)
        greet: list[str] = []
        for peer in hb.peers:
            if self.membership.learn(peer, now):
                greet.append(peer.node_id)
        if joined:
            greet.append(record.node_id)
        if greet:
            # One sealed heartbeat to everyone new: they learn us and our peers at once.
            heartbeat = self._heartbeat()
            frame = self._sealer.seal(heartbeat, self._clock.wall())
            for node_id in greet:
                peer_record = self.membership.get(node_id)
                if peer_record is not None:
                    actions.append(SendTo(peer_record.address, node_id, frame, heartbeat))
        if hb.intro_digest and hb.intro_digest != record.intro_have and (
            record.intro_requested_at is None
            or now - record.intro_requested_at >= self.settings.heartbeat_interval_s
        ):
            record.intro_requested_at = now
            actions += self._unicast(record.address, record.node_id,
                                     IntroPointsRequest(record.intro_have))
        return actions

    def _evaluate(self, now: float, *, renewing: bool) -> list[Action]:
        def candidates() -> list[Candidate]:
            return [
                Candidate(r.node_id, r.priority, r.eligible_since)
                for r in self.membership.records()
                if r.eligible() and r.priority is not None and r.eligible_since is not None
            ]

        actions = self.election.evaluate(
            now, self.eligible, self.settings.priority, candidates, renewing
        )
        for action in list(actions):
            if isinstance(action, BecomePublisher):
                log.info("node %s is now the publisher (term %s)", self.node_id, action.term)
            elif isinstance(action, StepDown):
                log.info("node %s stepped down as publisher of term %s: %s",
                         self.node_id, action.term, action.reason)
                if action.successor is not None or not self.eligible:
                    actions += self._broadcast(
                        LeaseRelease(action.term, action.successor or "")
                    )
        return actions

    def _heartbeat(self) -> Heartbeat:
        s = self.settings
        return Heartbeat(
            address=s.address,
            priority=s.priority,
            role=self.election.role,
            term=self.election.highest,
            lease_ms=int(s.lease_s * 1000),
            serving=self._serving,
            health_reason=self._health_reason,
            draining=self._draining,
            intro_digest=self._intro_digest,
            peers=self.membership.gossip(),
            wireguard=s.wireguard,
        )

    def _broadcast(self, message: Message, *, live_only: bool = False) -> list[Action]:
        targets = [
            r for r in self.membership.records() if r.live or not live_only
        ]
        if not targets:
            return []
        frame = self._sealer.seal(message, self._clock.wall())
        return [SendTo(r.address, r.node_id, frame, message) for r in targets]

    def _unicast(self, address: str, node_id: str | None, message: Message) -> list[Action]:
        return [SendTo(address, node_id, self._sealer.seal(message, self._clock.wall()), message)]

    def _greet_seeds(self) -> list[Action]:
        known = {r.address for r in self.membership.records() if r.live}
        hello = Hello(self.settings.address)
        actions: list[Action] = []
        targets = self.settings.seeds
        if self._remembered and self._clock.monotonic() < self._remember_until:
            targets += self._remembered
        for address in targets:
            if address not in known and address != self.settings.address:
                actions += self._unicast(address, None, hello)
        return actions

    def _reject(self, exc: RemotePeerProtocolError, now: float) -> FrameRejected:
        self.rejects.record(exc.reason)
        if isinstance(exc, ClockSkewRejected):
            last = self._skew_logged.get(exc.sender)
            if last is None or now - last >= _SKEW_LOG_EVERY_S:
                self._skew_logged[exc.sender] = now
                log.warning("%s", exc)
        elif exc.reason in (RejectReason.BAD_MAC, RejectReason.SAME_NODE_ID):
            log.debug("refused a peer frame: %s", exc)
        else:
            log.debug("refused a peer frame (%s): %s", exc.reason.value, exc)
        return FrameRejected(exc.reason, str(exc))
