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
* ``wireguard`` — pure WireGuard planning: gossiped identities → ``wg set`` argument lists,
  ``wg show <iface> dump`` parsing, handshake ages.

Adapters (they do I/O and are deliberately *not* re-exported below, so importing the sans-IO core
never imports asyncio):

* ``transport`` — ``TcpTransport``, the asyncio peer transport; its dialing is pluggable
  (``dial=``, plain TCP by default) — WireGuard or private addresses.
* ``tor_transport`` — ``[cluster] transport = "tor"``: ``socks_dialer`` (SOCKS5, onion name as a
  domain) for ``TcpTransport``, and the node's *peer tor* (``peer_tor_settings``,
  ``ensure_peer_onion_key``): a second onion service with its own key, in a tor of its own
  because ``PublishHidServDescriptors 0`` is global.
* ``wgsync`` — ``WireGuardSync``: runs ``wg`` to add/remove the peers gossip announces
  (``[wireguard] manage = true``); the interface itself is the operator's.

Integration (daemon/_daemon.py ``_start_cluster``):

* A transport (``TcpTransport``, dialing TCP or through tor's SOCKS port) keeps one connection per
  peer pair, runs one ``FrameDecoder`` per connection
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
