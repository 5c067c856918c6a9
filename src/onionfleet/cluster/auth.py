"""Authentication of peer frames: MAC key derivation, sealing/opening, replay and skew checks.

* The MAC key is ``HKDF(SHA-256, salt=None, info="onionfleet cluster mac v1")`` of the cluster
  token (RFC 5869, via ``cryptography``), 32 bytes. Every frame carries HMAC-SHA256 over its header
  and body (messages.py layout); it is compared in constant time (``hmac.compare_digest``) before
  any byte of the body is parsed.
* The token authenticates *cluster membership*, not a node: any holder of the token can speak for
  any node id. Keep it as secret as the master key's transport.
* Replay: a window of the last 64 sequence numbers per (sender, boot id). A frame from a new boot
  id (fresh wall time, i.e. within the skew) supersedes the sender's previous boot; frames from
  superseded boots are refused (``STALE_BOOT``).
* Skew: a frame whose wall time differs from ours by more than ``max_clock_skew_s`` (default
  30 s) is refused with :class:`ClockSkewRejected`, whose message says by how much and hints at
  NTP. Leases never depend on wall clocks (election.py); only this freshness check does.

Neither :class:`ClusterToken` nor :class:`MacKey` shows its bytes in ``repr``/``str``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import deque
from dataclasses import dataclass, field
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from onionfleet.cluster.errors import (
    ClockSkewRejected,
    LocalPeerProtocolError,
    MalformedFrame,
    PeerAuthError,
    RejectReason,
    ReplayRejected,
)
from onionfleet.cluster.messages import (
    FRAME_HEADER_BYTES,
    MAC_BYTES,
    Envelope,
    Message,
    decode_body,
    encode_body,
    encode_header,
    parse_header,
)
from onionfleet.errors import ConfigError

__all__ = [
    "MAC_INFO",
    "REPLAY_WINDOW",
    "ClusterToken",
    "FrameSealer",
    "MacKey",
    "RejectCounters",
    "ReplayGuard",
    "open_frame",
]

MAC_INFO: Final = b"onionfleet cluster mac v1"
MIN_TOKEN_BYTES: Final = 16
REPLAY_WINDOW: Final = 64
_MAX_SUPERSEDED_BOOTS: Final = 8


class ClusterToken:
    """The shared cluster secret (config ``cluster.token``). ``repr`` hides it."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes) or len(secret) < MIN_TOKEN_BYTES:
            raise ConfigError(
                f"the cluster token must be at least {MIN_TOKEN_BYTES} bytes",
                key_path="cluster.token",
                fix="generate one with `onionfleet init` (32 random bytes)",
            )
        self._secret = secret

    @classmethod
    def from_text(cls, text: str) -> ClusterToken:
        return cls(text.encode("utf-8"))

    def derive_mac_key(self) -> MacKey:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=MAC_INFO)
        return MacKey(hkdf.derive(self._secret))

    def __repr__(self) -> str:
        return "ClusterToken(<hidden>)"

    __str__ = __repr__


class MacKey:
    """The 32-byte HMAC-SHA256 key derived from the cluster token. ``repr`` hides it."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) != 32:
            raise LocalPeerProtocolError("a MAC key is 32 bytes")
        self._key = key

    def mac(self, data: bytes) -> bytes:
        return hmac.digest(self._key, data, hashlib.sha256)

    def verify(self, data: bytes, tag: bytes) -> bool:
        return hmac.compare_digest(self.mac(data), tag)

    def __repr__(self) -> str:
        return "MacKey(<hidden>)"

    __str__ = __repr__


class FrameSealer:
    """Builds authenticated frames for one node boot: envelope + MAC, sequence numbers growing."""

    __slots__ = ("_key", "boot_id", "next_seq", "sender")

    def __init__(self, key: MacKey, sender: str, boot_id: bytes) -> None:
        self._key = key
        self.sender = sender
        self.boot_id = boot_id
        self.next_seq = 1

    def seal(self, message: Message, wall_s: float) -> bytes:
        """One frame for ``message``; the same bytes may go to many peers (a broadcast)."""
        envelope = Envelope(self.sender, self.boot_id, self.next_seq, max(0, int(wall_s * 1000)))
        kind, body = encode_body(envelope, message)
        self.next_seq += 1
        signed = encode_header(kind, len(body)) + body
        return signed + self._key.mac(signed)


def open_frame(key: MacKey, frame: bytes) -> tuple[Envelope, Message]:
    """Check one complete frame's header and MAC, then decode it strictly.

    Raises only RemotePeerProtocolError subclasses: UnsupportedVersion, FrameTooLarge,
    MalformedFrame, PeerAuthError. Replay and skew are checked separately (:class:`ReplayGuard`).
    """
    header = parse_header(frame)
    if len(frame) != header.frame_len:
        raise MalformedFrame(
            f"frame is {len(frame)} bytes but its header says {header.frame_len}"
        )
    end = FRAME_HEADER_BYTES + header.body_len
    if not key.verify(frame[:end], frame[end : end + MAC_BYTES]):
        raise PeerAuthError(
            "peer frame failed authentication: the sender uses a different cluster token, or "
            "the frame was altered on the way; check cluster.token on both nodes"
        )
    return decode_body(header.kind, frame[FRAME_HEADER_BYTES:end])


@dataclass(slots=True)
class _SenderWindow:
    boot_id: bytes
    highest: int = 0
    bitmap: int = 0  # bit i set: seq (highest - i) seen
    superseded: deque[bytes] = field(default_factory=lambda: deque(maxlen=_MAX_SUPERSEDED_BOOTS))


class ReplayGuard:
    """Per-sender replay window and wall-clock freshness (one per node; sans-IO)."""

    __slots__ = ("_senders", "max_clock_skew_s")

    def __init__(self, max_clock_skew_s: float = 30.0) -> None:
        if not max_clock_skew_s > 0:
            raise ConfigError(
                f"max clock skew must be > 0 s, got {max_clock_skew_s}",
                key_path="cluster.max_clock_skew_s",
            )
        self.max_clock_skew_s = max_clock_skew_s
        self._senders: dict[str, _SenderWindow] = {}

    def check(self, envelope: Envelope, now_wall_s: float) -> None:
        """Accept (and record) the envelope, or raise ClockSkewRejected/ReplayRejected."""
        skew_s = envelope.sent_wall_ms / 1000.0 - now_wall_s
        if abs(skew_s) > self.max_clock_skew_s:
            ahead = "ahead of" if skew_s > 0 else "behind"
            raise ClockSkewRejected(
                f"clocks disagree: node {envelope.sender}'s wall clock is {abs(skew_s):.1f} s "
                f"{ahead} ours (allowed ±{self.max_clock_skew_s:g} s); run NTP (chronyd/ntpd) "
                "on both nodes",
                skew_s=skew_s,
                sender=envelope.sender,
            )
        window = self._senders.get(envelope.sender)
        if window is None:
            window = _SenderWindow(envelope.boot_id)
            self._senders[envelope.sender] = window
        elif window.boot_id != envelope.boot_id:
            if envelope.boot_id in window.superseded:
                raise ReplayRejected(
                    f"frame from an earlier run (boot) of node {envelope.sender}, already "
                    "superseded by a restart",
                    reason=RejectReason.STALE_BOOT,
                )
            window.superseded.append(window.boot_id)
            window.boot_id = envelope.boot_id
            window.highest = 0
            window.bitmap = 0
        seq = envelope.seq
        if seq > window.highest:
            shift = seq - window.highest
            window.bitmap = ((window.bitmap << shift) | 1) & ((1 << REPLAY_WINDOW) - 1)
            window.highest = seq
            return
        age = window.highest - seq
        if age >= REPLAY_WINDOW:
            raise ReplayRejected(
                f"frame {seq} from node {envelope.sender} is older than the replay window "
                f"({REPLAY_WINDOW} frames behind {window.highest})"
            )
        if window.bitmap >> age & 1:
            raise ReplayRejected(f"frame {seq} from node {envelope.sender} was already received")
        window.bitmap |= 1 << age

    def forget(self, sender: str) -> None:
        """Drop a forgotten peer's window (safe once its frames are older than the skew)."""
        self._senders.pop(sender, None)


class RejectCounters:
    """Refused frames counted per :class:`RejectReason` (exported as metrics by the adapter)."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: dict[RejectReason, int] = dict.fromkeys(RejectReason, 0)

    def record(self, reason: RejectReason) -> None:
        self._counts[reason] += 1

    def get(self, reason: RejectReason) -> int:
        return self._counts[reason]

    @property
    def total(self) -> int:
        return sum(self._counts.values())

    def as_dict(self) -> dict[str, int]:
        return {reason.value: count for reason, count in self._counts.items()}

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.as_dict().items() if v)
        return f"RejectCounters({shown})"
