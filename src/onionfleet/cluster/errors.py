"""The cluster layer's typed errors (STYLE §1 h11: errors say whose fault it is).

``PeerProtocolError`` is abstract. :class:`LocalPeerProtocolError` means *we* asked for something
illegal (a message with a bad field, encoding more than a frame can hold, feeding a decoder that
already failed). :class:`RemotePeerProtocolError` means a peer (or someone on the wire) sent
something we refuse; every such error carries a :class:`RejectReason` so rejections can be counted
(:class:`~onionfleet.cluster.auth.RejectCounters`). None of these messages ever contains the
cluster token or the derived MAC key.
"""

from __future__ import annotations

import enum
from typing import Any

from onionfleet.errors import OnionfleetError

__all__ = [
    "ClockSkewRejected",
    "ClusterError",
    "FrameTooLarge",
    "InvariantViolated",
    "LocalPeerProtocolError",
    "MalformedFrame",
    "PeerAuthError",
    "PeerProtocolError",
    "RejectReason",
    "RemotePeerProtocolError",
    "ReplayRejected",
    "UnsupportedVersion",
    "WireGuardCommandError",
    "WireGuardDumpError",
    "WireGuardError",
]


class RejectReason(enum.Enum):
    """Why an incoming frame was refused (one counter per value)."""

    TOO_LARGE = "too_large"
    MALFORMED = "malformed"
    BAD_VERSION = "bad_version"
    BAD_MAC = "bad_mac"
    REPLAY = "replay"
    STALE_BOOT = "stale_boot"
    CLOCK_SKEW = "clock_skew"
    SAME_NODE_ID = "same_node_id"


class ClusterError(OnionfleetError):
    """Root of the cluster layer's errors."""


class PeerProtocolError(ClusterError):
    """A peer-protocol error; abstract: raise the Local or Remote subclass."""

    def __new__(cls, *args: Any, **kwargs: Any) -> PeerProtocolError:
        if cls is PeerProtocolError:
            raise TypeError("PeerProtocolError is abstract: use Local/RemotePeerProtocolError")
        return super().__new__(cls, *args, **kwargs)


class LocalPeerProtocolError(PeerProtocolError):
    """We tried something illegal: a bad field value, an oversized message, a failed decoder."""


class RemotePeerProtocolError(PeerProtocolError):
    """A frame from the wire was refused. ``reason`` says which counter it goes to."""

    default_reason = RejectReason.MALFORMED

    def __init__(self, message: str, *, reason: RejectReason | None = None) -> None:
        super().__init__(message)
        self.reason = reason if reason is not None else self.default_reason


class MalformedFrame(RemotePeerProtocolError):
    """The frame is truncated, has trailing bytes, an unknown type or a field out of range."""

    default_reason = RejectReason.MALFORMED


class FrameTooLarge(RemotePeerProtocolError):
    """A frame header claims more bytes than the hard cap; refused before buffering the body."""

    default_reason = RejectReason.TOO_LARGE


class UnsupportedVersion(RemotePeerProtocolError):
    """Bad magic or a protocol version this node does not speak."""

    default_reason = RejectReason.BAD_VERSION


class PeerAuthError(RemotePeerProtocolError):
    """The frame's MAC does not verify: wrong cluster token, or the frame was altered."""

    default_reason = RejectReason.BAD_MAC


class ReplayRejected(RemotePeerProtocolError):
    """A sequence number already seen (or too old) for that sender's boot, or a superseded boot."""

    default_reason = RejectReason.REPLAY


class ClockSkewRejected(RemotePeerProtocolError):
    """The sender's wall clock disagrees with ours by more than the allowed skew.

    ``skew_s`` is sender minus receiver (positive: the sender is ahead).
    """

    default_reason = RejectReason.CLOCK_SKEW

    def __init__(self, message: str, *, skew_s: float, sender: str) -> None:
        super().__init__(message)
        self.skew_s = skew_s
        self.sender = sender


class InvariantViolated(ClusterError):
    """The simulator found a broken cluster invariant. The message names the seed to replay."""

    def __init__(self, message: str, *, seed: int) -> None:
        super().__init__(f"{message} (replay with ONIONFLEET_SIM_SEED={seed})")
        self.seed = seed


class WireGuardError(ClusterError):
    """WireGuard peer management failed (wireguard.py, wgsync.py). Never carries key material
    other than public keys."""


class WireGuardDumpError(WireGuardError):
    """``wg show <interface> dump`` printed something we cannot parse (which line and field)."""


class WireGuardCommandError(WireGuardError):
    """Running ``wg`` failed: missing binary, no such interface, no permission, a timeout."""
