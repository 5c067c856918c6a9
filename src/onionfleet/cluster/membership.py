"""Gossip membership: who is alive, from direct frames; who exists, from gossip (sans-IO).

A peer becomes ALIVE only when a frame from it arrives (authenticated, fresh); gossip (the peer
lists in heartbeats) only makes a peer *known* (JOINING), so the node then greets it. Timers, with
``I`` the heartbeat interval and ``t`` the time the peer was last heard:

    ALIVE --(t + suspect_after*I)--> SUSPECT --(t + dead_after*I)--> DEAD
    DEAD --(t + forget_after_s)--> gone
    JOINING (never heard) --(first known + forget_after_s)--> gone

A frame from a new boot id means the peer restarted: its health, intro points and role are reset.
Only ALIVE and SUSPECT peers are gossiped, so a forgotten peer is not resurrected by gossip.

WireGuard identities (protocol version 2) travel the same way: a peer's own heartbeat is the
authority for its identity; gossip fills it in for a peer we have not heard yet (JOINING, or DEAD:
it may have come back with a new key), which is how a node that knows one peer learns the keys
it needs to reach all the others (wireguard.py plans the ``wg set`` commands from
:class:`PeerView`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from onionfleet.cluster.actions import (
    Action,
    IntroPointsChanged,
    PeerDead,
    PeerForgotten,
    PeerJoined,
    PeerLeft,
    PeerSuspected,
    PeerUpdated,
)
from onionfleet.cluster.messages import (
    Heartbeat,
    IntroPointSet,
    PeerAddress,
    Role,
    Term,
    WireGuardIdentity,
)
from onionfleet.cluster.settings import ClusterSettings

__all__ = ["GOSSIP_MAX_BYTES", "GOSSIP_MAX_PEERS", "Membership", "PeerRecord", "PeerStatus",
           "PeerView"]

# Heartbeats name at most this many peers / bytes of peer entries (see Membership.gossip).
GOSSIP_MAX_PEERS: Final = 256
GOSSIP_MAX_BYTES: Final = 32 * 1024


class PeerStatus(enum.Enum):
    JOINING = "joining"
    ALIVE = "alive"
    SUSPECT = "suspect"
    DEAD = "dead"


@dataclass(slots=True)
class PeerRecord:
    """Mutable bookkeeping for one peer (internal; see :class:`PeerView` for a snapshot)."""

    node_id: str
    address: str
    status: PeerStatus
    first_known: float
    boot_id: bytes | None = None
    last_heard: float | None = None
    priority: int | None = None
    serving: bool = False
    health_reason: str = ""
    draining: bool = False
    role: Role = Role.FOLLOWER
    term: Term | None = None
    intro_digest: bytes = b""
    intro: IntroPointSet | None = None
    intro_have: bytes = b""
    intro_requested_at: float | None = None
    eligible_since: float | None = None
    wireguard: WireGuardIdentity | None = None

    @property
    def live(self) -> bool:
        return self.status in (PeerStatus.ALIVE, PeerStatus.SUSPECT)

    def eligible(self) -> bool:
        """A publisher candidate: live, heard a heartbeat, serving and not draining."""
        return self.live and self.priority is not None and self.serving and not self.draining


@dataclass(frozen=True, slots=True)
class PeerView:
    """A snapshot of one peer for status pages and metrics."""

    node_id: str
    address: str
    status: PeerStatus
    priority: int | None
    serving: bool
    health_reason: str
    draining: bool
    role: Role
    last_heard: float | None
    has_intro_points: bool
    wireguard: WireGuardIdentity | None = None


class Membership:
    """The peer table of one node. Every method takes the local monotonic ``now``."""

    __slots__ = ("_due", "_gossip_offset", "_left", "_peers", "_settings")

    def __init__(self, settings: ClusterSettings) -> None:
        self._settings = settings
        self._peers: dict[str, PeerRecord] = {}
        # A lower bound of the next timer (exact after expire(); heard() only moves timers later).
        self._due: float | None = None
        self._gossip_offset = 0
        # Peers that said Leave: node id -> (boot id, when). Gossip cannot bring them back; a new
        # boot of theirs can. Kept for forget_after_s.
        self._left: dict[str, tuple[bytes | None, float]] = {}

    def get(self, node_id: str) -> PeerRecord | None:
        return self._peers.get(node_id)

    def records(self) -> list[PeerRecord]:
        return list(self._peers.values())

    def live(self) -> list[PeerRecord]:
        return [p for p in self._peers.values() if p.live]

    def gossip(self) -> tuple[PeerAddress, ...]:
        """The live peers to put in a heartbeat, at most GOSSIP_MAX_PEERS / GOSSIP_MAX_BYTES.

        A bigger cluster gossips a window that rotates with every call, so each peer is still
        named every few heartbeats and the frame stays far below the 64 KiB cap.
        """
        live = [p for p in self._peers.values() if p.live]
        if len(live) > 1:
            live.sort(key=lambda p: p.node_id)
        start = self._gossip_offset % len(live) if live else 0
        out: list[PeerAddress] = []
        budget = GOSSIP_MAX_BYTES
        for k in range(min(len(live), GOSSIP_MAX_PEERS)):
            p = live[(start + k) % len(live)]
            budget -= 2 + len(p.node_id) + len(p.address.encode("utf-8")) + (
                1 if p.wireguard is None else p.wireguard.encoded_size()
            )
            if budget < 0:
                break
            out.append(PeerAddress(p.node_id, p.address, p.wireguard))
        if len(out) < len(live):
            self._gossip_offset = start + len(out)  # next time, continue where this one ended
        return tuple(out)

    def views(self) -> list[PeerView]:
        return [
            PeerView(p.node_id, p.address, p.status, p.priority, p.serving, p.health_reason,
                     p.draining, p.role, p.last_heard, p.intro is not None, p.wireguard)
            for p in sorted(self._peers.values(), key=lambda p: p.node_id)
        ]

    def learn(self, peer: PeerAddress, now: float) -> bool:
        """Gossip names ``peer``. Returns True if it is new (the node should greet it)."""
        record = self._peers.get(peer.node_id)
        if record is None:
            if peer.node_id == self._settings.node_id or peer.node_id in self._left:
                return False
            self._peers[peer.node_id] = PeerRecord(
                peer.node_id, peer.address, PeerStatus.JOINING, first_known=now,
                wireguard=peer.wireguard,
            )
            self._lower_due(now + self._settings.suspect_s)
            return True
        if not record.live:
            # It may have moved (or got a new WireGuard key) while we did not hear it.
            if record.address != peer.address:
                record.address = peer.address
            if peer.wireguard is not None:
                record.wireguard = peer.wireguard
        return False

    def heard(
        self, node_id: str, boot_id: bytes, address: str | None, now: float
    ) -> tuple[PeerRecord | None, list[Action]]:
        """A direct, authenticated frame from ``node_id``. ``address`` is None for message types
        that carry none; an unknown peer is then not recorded (returns None)."""
        actions: list[Action] = []
        left = self._left.get(node_id)
        if left is not None:
            if left[0] == boot_id:
                return None, actions  # a straggler frame from the run that left
            del self._left[node_id]
        record = self._peers.get(node_id)
        if record is None:
            if address is None:
                return None, actions
            record = PeerRecord(node_id, address, PeerStatus.JOINING, first_known=now)
            self._peers[node_id] = record
        self._lower_due(now + self._settings.suspect_s)
        restarted = record.boot_id is not None and record.boot_id != boot_id
        if restarted:
            # A new run of the peer: forget what the old one said.
            record.priority = None
            record.serving = False
            record.health_reason = ""
            record.draining = False
            record.role = Role.FOLLOWER
            record.term = None
            record.intro_digest = b""
            record.intro_requested_at = None
            record.eligible_since = None
            record.intro_have = b""
            if record.intro is not None:
                record.intro = None
                actions.append(IntroPointsChanged(node_id, None))
        record.boot_id = boot_id
        if address is not None:
            record.address = address
        record.last_heard = now
        if record.status in (PeerStatus.JOINING, PeerStatus.DEAD) or restarted:
            record.status = PeerStatus.ALIVE
            actions.append(PeerJoined(node_id, record.address, restarted))
        else:
            record.status = PeerStatus.ALIVE
        return record, actions

    def apply_heartbeat(self, record: PeerRecord, hb: Heartbeat, now: float) -> list[Action]:
        actions: list[Action] = []
        changed = (
            record.priority is None
            or record.serving != hb.serving
            or record.health_reason != hb.health_reason
            or record.draining != hb.draining
        )
        record.priority = hb.priority
        record.serving = hb.serving
        record.health_reason = hb.health_reason
        record.draining = hb.draining
        record.role = hb.role
        record.term = hb.term
        record.intro_digest = hb.intro_digest
        record.wireguard = hb.wireguard
        if changed:
            actions.append(PeerUpdated(record.node_id, hb.serving, hb.health_reason, hb.draining))
        self._update_eligibility(record, now)
        return actions

    def set_draining(self, record: PeerRecord, draining: bool, now: float) -> list[Action]:
        if record.draining == draining:
            return []
        record.draining = draining
        self._update_eligibility(record, now)
        return [PeerUpdated(record.node_id, record.serving, record.health_reason, draining)]

    def set_intro(self, record: PeerRecord, intro: IntroPointSet) -> list[Action]:
        record.intro_requested_at = None
        if record.intro == intro:
            return []
        record.intro = intro
        record.intro_have = intro.digest()
        return [IntroPointsChanged(record.node_id, intro)]

    def remove(self, node_id: str, boot_id: bytes, reason: str, now: float) -> list[Action]:
        """The peer (this boot of it) said Leave."""
        self._left[node_id] = (boot_id, now)
        self._lower_due(now + self._settings.forget_after_s)
        record = self._peers.pop(node_id, None)
        if record is None:
            return []
        actions: list[Action] = [PeerLeft(node_id, reason)]
        if record.intro is not None:
            actions.append(IntroPointsChanged(node_id, None))
        return actions

    def expire(self, now: float) -> tuple[list[Action], list[str]]:
        """Advance the timers. Returns the actions and the ids of forgotten peers."""
        s = self._settings
        actions: list[Action] = []
        forgotten: list[str] = []
        for node_id, (_, when) in list(self._left.items()):
            if now >= when + s.forget_after_s:
                del self._left[node_id]
        for record in list(self._peers.values()):
            if record.last_heard is None:
                if now >= record.first_known + s.forget_after_s:
                    del self._peers[record.node_id]
                    forgotten.append(record.node_id)
                    actions.append(PeerForgotten(record.node_id))
                continue
            heard = record.last_heard
            if record.status is PeerStatus.ALIVE and now >= heard + s.suspect_s:
                record.status = PeerStatus.SUSPECT
                actions.append(PeerSuspected(record.node_id))
            if record.status is PeerStatus.SUSPECT and now >= heard + s.lease_s:
                record.status = PeerStatus.DEAD
                record.role = Role.FOLLOWER
                self._update_eligibility(record, now)
                actions.append(PeerDead(record.node_id))
            if record.status is PeerStatus.DEAD and now >= heard + s.forget_after_s:
                del self._peers[record.node_id]
                forgotten.append(record.node_id)
                actions.append(PeerForgotten(record.node_id))
                if record.intro is not None:
                    actions.append(IntroPointsChanged(record.node_id, None))
        self._due = self._compute_due()
        return actions, forgotten

    def next_deadline(self) -> float | None:
        """A monotonic time by which :meth:`expire` must run again (never later than needed;
        possibly earlier)."""
        return self._due

    def _lower_due(self, due: float) -> None:
        if self._due is None or due < self._due:
            self._due = due

    def _compute_due(self) -> float | None:
        s = self._settings
        best: float | None = None
        for record in self._peers.values():
            if record.last_heard is None:
                due = record.first_known + s.forget_after_s
            elif record.status is PeerStatus.ALIVE:
                due = record.last_heard + s.suspect_s
            elif record.status is PeerStatus.SUSPECT:
                due = record.last_heard + s.lease_s
            else:
                due = record.last_heard + s.forget_after_s
            if best is None or due < best:
                best = due
        for _, when in self._left.values():
            due = when + s.forget_after_s
            if best is None or due < best:
                best = due
        return best

    @staticmethod
    def _update_eligibility(record: PeerRecord, now: float) -> None:
        if record.eligible():
            if record.eligible_since is None:
                record.eligible_since = now
        else:
            record.eligible_since = None
