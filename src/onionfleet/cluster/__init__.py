"""The peer protocol: how nodes find each other and agree on one publisher (sans-IO core).

Modules:

* ``messages`` — versioned, length-prefixed binary frames (64 KiB cap), message values and the
  strict canonical codec; ``FrameDecoder`` splits a byte stream (h11 style, bounded buffer).
* ``auth`` — HKDF-derived HMAC-SHA256 key from the cluster token, frame sealing/opening, replay
  window per (sender, boot id), clock-skew check, ``RejectCounters``.
* ``membership`` — gossip membership (alive → suspect → dead → forgotten).
* ``election`` — the lease election and its hand-over policy (documented there).
* ``node`` — ``ClusterNode``: the per-node state machine combining the three; the only object an
  adapter drives. ``actions`` lists what it returns.
* ``sim`` — a deterministic simulator (virtual clock, seeded faults) used by the tests, by
  ``bench/cluster.py`` and later by ``onionfleet demo``.
* ``transport`` — the asyncio TCP adapter (``TcpTransport``; WireGuard or private addresses). It
  is the only module here that does I/O and is deliberately *not* re-exported below, so importing
  the sans-IO core never imports asyncio. The Tor transport (SOCKS dial + a second onion service
  per node), WireGuard peer management and ``init``/``join`` are not written yet.

Integration (the daemon is written later):

* A transport (``transport.TcpTransport`` over WireGuard/private addresses; later one over Tor
  through SOCKS) keeps one connection per peer pair, runs one ``FrameDecoder`` per connection
  and hands each frame to ``ClusterNode.receive``; a framing error (``FrameTooLarge``,
  ``UnsupportedVersion``) closes that connection cleanly, while per-frame rejections (MAC,
  replay, skew, malformed body) are counted in ``ClusterNode.rejects`` and the connection
  survives. It calls ``ClusterNode.tick`` at ``next_wakeup()`` (a local monotonic time) and
  carries out the returned actions in order: ``SendTo`` writes the sealed frame to the peer's
  connection (dial ``address`` if none; a ``node_id`` of None is a seed not yet identified); the
  other actions are events for the daemon (``TcpTransport(on_event=...)``).
* The daemon feeds the node's health verdict (``set_health``), drain state (``set_draining``)
  and its own intro points (``set_intro_points``) — through ``TcpTransport.submit(node.x(...))``
  so the resulting actions are carried out — persists ``BecomePublisher.term.number`` and passes
  it back as ``last_term_number`` at the next start, persists ``known_addresses()`` for
  ``remembered_peers`` likewise, calls ``leave()`` on shutdown, starts and stops the publisher
  loop on ``BecomePublisher``/``StepDown``, and gives the publisher ``intro_point_sets()`` (every
  alive, serving, non-draining node's set, its own included).
* Status and metrics expose ``role``, ``term``, ``peers()`` (``PeerView`` per peer) and
  ``rejects.as_dict()`` (refused frames per reason).
"""

from onionfleet.cluster.actions import (
    Action,
    BecomePublisher,
    FrameRejected,
    IntroPointsChanged,
    LeaseRenewed,
    PeerDead,
    PeerForgotten,
    PeerJoined,
    PeerLeft,
    PeerSuspected,
    PeerUpdated,
    SendTo,
    StepDown,
)
from onionfleet.cluster.auth import ClusterToken, MacKey, RejectCounters
from onionfleet.cluster.errors import (
    ClockSkewRejected,
    ClusterError,
    FrameTooLarge,
    LocalPeerProtocolError,
    MalformedFrame,
    PeerAuthError,
    PeerProtocolError,
    RejectReason,
    RemotePeerProtocolError,
    ReplayRejected,
    UnsupportedVersion,
)
from onionfleet.cluster.membership import PeerStatus, PeerView
from onionfleet.cluster.messages import FrameDecoder, IntroPointSet, Role, Term
from onionfleet.cluster.node import ClusterNode
from onionfleet.cluster.settings import ClusterSettings

__all__ = [
    "Action",
    "BecomePublisher",
    "ClockSkewRejected",
    "ClusterError",
    "ClusterNode",
    "ClusterSettings",
    "ClusterToken",
    "FrameDecoder",
    "FrameRejected",
    "FrameTooLarge",
    "IntroPointSet",
    "IntroPointsChanged",
    "LeaseRenewed",
    "LocalPeerProtocolError",
    "MacKey",
    "MalformedFrame",
    "PeerAuthError",
    "PeerDead",
    "PeerForgotten",
    "PeerJoined",
    "PeerLeft",
    "PeerProtocolError",
    "PeerStatus",
    "PeerSuspected",
    "PeerUpdated",
    "PeerView",
    "RejectCounters",
    "RejectReason",
    "RemotePeerProtocolError",
    "ReplayRejected",
    "Role",
    "SendTo",
    "StepDown",
    "Term",
    "UnsupportedVersion",
]
