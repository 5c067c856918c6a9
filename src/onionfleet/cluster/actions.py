"""What the cluster state machine asks its adapter to do, or tells it (frozen values).

The adapter carries actions out in list order: :class:`SendTo` puts an already sealed frame on the
connection to ``address`` (the same bytes may be sent to many peers); the rest are events to log,
export as metrics and hand to the publisher loop. Persist ``BecomePublisher.term.number`` before
acting on it, and pass it back as ``last_term_number`` after a restart, so a node never claims the
same term twice (election.py); persist ``ClusterNode.known_addresses()`` now and then and pass it
back as ``remembered_peers``, so a node whose seeds are gone can still find the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

from onionfleet.cluster.errors import RejectReason
from onionfleet.cluster.messages import IntroPointSet, Message, Term

__all__ = [
    "Action",
    "BecomePublisher",
    "FrameRejected",
    "IntroPointsChanged",
    "LeaseRenewed",
    "PeerDead",
    "PeerForgotten",
    "PeerJoined",
    "PeerLeft",
    "PeerSuspected",
    "PeerUpdated",
    "SendTo",
    "StepDown",
]


@dataclass(frozen=True, slots=True)
class SendTo:
    """Send ``frame`` to ``address``. ``node_id`` is None for a seed address not yet identified."""

    address: str
    node_id: str | None
    frame: bytes
    message: Message


@dataclass(frozen=True, slots=True)
class PeerJoined:
    """First direct frame from a peer, or the first after it was dead or restarted."""

    node_id: str
    address: str
    restarted: bool


@dataclass(frozen=True, slots=True)
class PeerSuspected:
    """No frame from the peer for ``suspect_after`` heartbeat intervals."""

    node_id: str


@dataclass(frozen=True, slots=True)
class PeerDead:
    """No frame from the peer for ``dead_after`` heartbeat intervals: not a candidate, and its
    intro points leave the merged descriptor."""

    node_id: str


@dataclass(frozen=True, slots=True)
class PeerForgotten:
    """The peer was dead (or never answered) for ``forget_after_s``: removed entirely."""

    node_id: str


@dataclass(frozen=True, slots=True)
class PeerLeft:
    """The peer said Leave: removed at once."""

    node_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class PeerUpdated:
    """A peer's health verdict or drain state changed."""

    node_id: str
    serving: bool
    health_reason: str
    draining: bool


@dataclass(frozen=True, slots=True)
class IntroPointsChanged:
    """A node's intro-point set changed; ``intro`` None: the node is gone (forgotten/left)."""

    node_id: str
    intro: IntroPointSet | None


@dataclass(frozen=True, slots=True)
class BecomePublisher:
    """This node now holds the lease for ``term``: publish the merged descriptor now."""

    term: Term


@dataclass(frozen=True, slots=True)
class StepDown:
    """This node stopped being publisher of ``term``; ``successor`` named in a hand-over."""

    term: Term
    reason: str
    successor: str | None


@dataclass(frozen=True, slots=True)
class LeaseRenewed:
    """The publisher renewed its lease for ``term`` until the local monotonic ``until``."""

    term: Term
    until: float


@dataclass(frozen=True, slots=True)
class FrameRejected:
    """An incoming frame was refused (already counted in the node's RejectCounters)."""

    reason: RejectReason
    detail: str


Action = (
    SendTo
    | PeerJoined
    | PeerSuspected
    | PeerDead
    | PeerForgotten
    | PeerLeft
    | PeerUpdated
    | IntroPointsChanged
    | BecomePublisher
    | StepDown
    | LeaseRenewed
    | FrameRejected
)
