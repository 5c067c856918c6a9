"""Peer-protocol messages and their wire format (version 2).

Every message travels in one length-prefixed binary frame with a hard size cap::

    offset  size  field
    0       2     magic b"OF"
    2       1     protocol version (1)
    3       1     message type (MessageType)
    4       4     body length n, unsigned big-endian; 8 + n + 32 <= MAX_FRAME_BYTES
    8       n     body = envelope || payload
    8+n     32    MAC: HMAC-SHA256 over bytes [0, 8+n) under the cluster MAC key (see auth.py)

The envelope names the sender: node id (str8), boot id (16 bytes, new at every start), sequence
number (u64, grows per boot) and the sender's wall time in milliseconds (u64). The payload layout
is fixed per message type. Primitives: ``u8 u16 u32 u64`` big-endian; ``str8``/``str16`` = UTF-8
with a u8/u16 byte length; ``bytes32`` = u32 length + bytes; ``opt`` = u8 0/1 flag then the value;
``bool`` = u8 that must be 0 or 1; ``wgid`` = ``opt`` of (32-byte WireGuard public key, str8 UDP
endpoint ``host:port`` or empty, str8 tunnel IP address in canonical form). Decoding is strict
and canonical: trailing bytes, a bool other than 0/1, bad UTF-8, a field out of range or an
unknown message type are refused with :class:`~onionfleet.cluster.errors.MalformedFrame`, so
every accepted payload re-encodes to the same bytes. Constructors validate their fields and raise
:class:`~onionfleet.cluster.errors.LocalPeerProtocolError` (h11 ``_events.py`` style).

:class:`FrameDecoder` is the sans-IO stream side: ``feed(bytes)`` returns the complete frames in
it. A header that claims more than the cap is refused before the body is buffered; after a
framing error the decoder stays failed (the connection must be closed).

Version history: 1 — first release. 2 — a heartbeat ends with the sender's ``wgid`` and every
gossiped peer entry (id, address) is followed by that peer's ``wgid``, so every node learns every
peer's WireGuard identity (WireGuard management, ``wireguard.py``). A version-1 frame is refused
with :class:`~onionfleet.cluster.errors.UnsupportedVersion` ("upgrade the older node").
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import re
import struct
from dataclasses import dataclass
from typing import Final

from onionfleet.cluster.errors import (
    FrameTooLarge,
    LocalPeerProtocolError,
    MalformedFrame,
    UnsupportedVersion,
)

__all__ = [
    "BOOT_ID_BYTES",
    "FRAME_HEADER_BYTES",
    "MAC_BYTES",
    "MAGIC",
    "MAX_FRAME_BYTES",
    "PROTOCOL_VERSION",
    "Drain",
    "Envelope",
    "FrameDecoder",
    "FrameHeader",
    "Heartbeat",
    "Hello",
    "IntroPointSet",
    "IntroPoints",
    "IntroPointsRequest",
    "LeaseRelease",
    "Leave",
    "Message",
    "MessageType",
    "PeerAddress",
    "Role",
    "Term",
    "WireGuardIdentity",
    "decode_body",
    "encode_body",
    "frame_sender",
    "parse_header",
]

MAGIC: Final = b"OF"
PROTOCOL_VERSION: Final = 2
FRAME_HEADER_BYTES: Final = 8
MAC_BYTES: Final = 32
# 64 KiB: a full heartbeat of 256 peers is ~20 kB and 20 intro points ~30 kB; anything bigger is
# refused before it is buffered (h11 keeps DEFAULT_MAX_INCOMPLETE_EVENT_SIZE = 16 KiB for the same
# reason: a bounded buffer per connection).
MAX_FRAME_BYTES: Final = 64 * 1024
MAX_BODY_BYTES: Final = MAX_FRAME_BYTES - FRAME_HEADER_BYTES - MAC_BYTES
BOOT_ID_BYTES: Final = 16
DIGEST_BYTES: Final = 32
MAX_PEERS: Final = 512
MAX_INTRO_ENTRIES: Final = 64
MAX_REASON_BYTES: Final = 512
MAX_ADDRESS_BYTES: Final = 255
WG_KEY_BYTES: Final = 32
MAX_TUNNEL_ADDRESS_BYTES: Final = 45  # the longest IPv6 text form
MAX_PRIORITY: Final = 0xFFFF
MAX_LEASE_MS: Final = 0xFFFFFFFF
U64_MAX: Final = (1 << 64) - 1

# Same rule as config.py's [node] id: letters, digits, '.', '-', max 63, not starting with . or -.
_NODE_ID_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,62}")

_HEADER: Final = struct.Struct(">2sBBI")
_U8: Final = struct.Struct(">B")
_U16: Final = struct.Struct(">H")
_U32: Final = struct.Struct(">I")
_U64: Final = struct.Struct(">Q")
_ENVELOPE_TAIL: Final = struct.Struct(">16sQQ")
_HB_FIXED: Final = struct.Struct(">HBQ")  # priority, role, term number


class MessageType(enum.IntEnum):
    """The type byte of a frame."""

    HELLO = 1
    HEARTBEAT = 2
    INTRO_POINTS = 3
    INTRO_POINTS_REQUEST = 4
    DRAIN = 5
    LEAVE = 6
    LEASE_RELEASE = 7


class Role(enum.IntEnum):
    """A node's election role, as carried in heartbeats."""

    FOLLOWER = 0
    PUBLISHER = 1


def check_node_id(node_id: str, what: str = "node id") -> None:
    """Refuse a node id that config would refuse (LocalPeerProtocolError)."""
    if not isinstance(node_id, str) or _NODE_ID_RE.fullmatch(node_id) is None:
        raise LocalPeerProtocolError(
            f"{what} {node_id!r} is invalid: use letters, digits, '.', '-' (max 63)"
        )


def _check_text(value: str, limit: int, what: str) -> None:
    if not isinstance(value, str):
        raise LocalPeerProtocolError(f"{what} must be a str, not {type(value).__name__}")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise LocalPeerProtocolError(f"{what} is not encodable as UTF-8") from exc
    if size > limit:
        raise LocalPeerProtocolError(f"{what} is {size} bytes; the limit is {limit}")


def _check_int(value: int, low: int, high: int, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise LocalPeerProtocolError(f"{what} must be an int in [{low}, {high}], got {value!r}")


def _check_bool(value: bool, what: str) -> None:
    if not isinstance(value, bool):
        raise LocalPeerProtocolError(f"{what} must be a bool, got {value!r}")


def _check_digest(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) not in (0, DIGEST_BYTES):
        raise LocalPeerProtocolError(f"{what} must be empty or {DIGEST_BYTES} bytes")


@dataclass(frozen=True, slots=True, order=True)
class Term:
    """An election term: ``number`` only grows; ``holder`` is the node that claimed it.

    Terms compare as ``(number, holder)``, so two nodes that claim the same number while
    partitioned still hold different terms, and the higher one wins when they meet.
    ``Term(0, "")`` means "no term yet".
    """

    number: int
    holder: str

    def __post_init__(self) -> None:
        _check_int(self.number, 0, U64_MAX, "term number")
        if self.number == 0:
            if self.holder != "":
                raise LocalPeerProtocolError("term 0 has no holder")
        else:
            check_node_id(self.holder, "term holder")

    def __str__(self) -> str:
        return f"{self.number}/{self.holder}" if self.number else "0"


NO_TERM: Final = Term(0, "")


def _canonical_ip(value: str) -> bool:
    if len(value) > MAX_TUNNEL_ADDRESS_BYTES or "%" in value:
        return False  # no IPv6 scope ids: a tunnel address is global to the tunnel
    try:
        return str(ipaddress.ip_address(value)) == value
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class WireGuardIdentity:
    """A node's WireGuard identity as gossiped (protocol version 2): its public key (the 32 raw
    Curve25519 bytes ``wg pubkey`` prints in base64), the UDP ``endpoint`` (``host:port``) peers
    should send to — empty if the node has none reachable (it then only dials out) — and its
    ``tunnel_address``, the node's IP inside the tunnel in canonical text form (``10.77.0.2``),
    which becomes the peer's ``allowed-ips`` host route (wireguard.py)."""

    public_key: bytes
    endpoint: str
    tunnel_address: str

    def __post_init__(self) -> None:
        if not isinstance(self.public_key, bytes) or len(self.public_key) != WG_KEY_BYTES:
            raise LocalPeerProtocolError(f"a WireGuard public key is {WG_KEY_BYTES} bytes")
        _check_text(self.endpoint, MAX_ADDRESS_BYTES, "WireGuard endpoint")
        if not isinstance(self.tunnel_address, str) or not _canonical_ip(self.tunnel_address):
            raise LocalPeerProtocolError(
                f"WireGuard tunnel address {self.tunnel_address!r} is not an IP address in "
                "canonical form (e.g. 10.77.0.2)"
            )

    def encoded_size(self) -> int:
        return 1 + WG_KEY_BYTES + 2 + len(self.endpoint.encode("utf-8")) + len(self.tunnel_address)


@dataclass(frozen=True, slots=True)
class PeerAddress:
    """A peer as gossiped in heartbeats: its node id, where to reach it and (version 2) its
    WireGuard identity, if it has one."""

    node_id: str
    address: str
    wireguard: WireGuardIdentity | None = None

    def __post_init__(self) -> None:
        check_node_id(self.node_id)
        _check_text(self.address, MAX_ADDRESS_BYTES, "peer address")
        if self.wireguard is not None and not isinstance(self.wireguard, WireGuardIdentity):
            raise LocalPeerProtocolError("wireguard must be a WireGuardIdentity or None")

    @classmethod
    def _decoded(cls, node_id: str, address: str, wireguard: WireGuardIdentity | None
                 ) -> PeerAddress:
        # Decoder fast path: the caller has checked node_id; a str8 always fits the address.
        peer = object.__new__(cls)
        object.__setattr__(peer, "node_id", node_id)
        object.__setattr__(peer, "address", address)
        object.__setattr__(peer, "wireguard", wireguard)
        return peer


@dataclass(frozen=True, slots=True)
class IntroPointSet:
    """A node's complete current intro-point set, opaque to this layer.

    ``entries`` are the publisher layer's encoded intro points (rend-spec-v3 [ENCRYPTED-DATA]
    "introduction-point" sections, copied verbatim); ``flow_control`` is the node's descriptor
    ``flow-control`` line value, or None. :meth:`digest` (SHA-256 of the canonical encoding) is what
    heartbeats carry.
    """

    entries: tuple[bytes, ...]
    flow_control: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.entries, tuple) or len(self.entries) > MAX_INTRO_ENTRIES:
            raise LocalPeerProtocolError(
                f"intro points must be a tuple of at most {MAX_INTRO_ENTRIES} entries"
            )
        for entry in self.entries:
            if not isinstance(entry, bytes):
                raise LocalPeerProtocolError("each intro point entry must be bytes")
        if self.flow_control is not None:
            _check_text(self.flow_control, MAX_REASON_BYTES, "flow-control line")

    def digest(self) -> bytes:
        return hashlib.sha256(_encode_intro_set(self)).digest()


@dataclass(frozen=True, slots=True)
class Envelope:
    """Who sent a frame and when: checked against replay and clock skew (auth.py)."""

    sender: str
    boot_id: bytes
    seq: int
    sent_wall_ms: int

    def __post_init__(self) -> None:
        check_node_id(self.sender, "sender node id")
        if not isinstance(self.boot_id, bytes) or len(self.boot_id) != BOOT_ID_BYTES:
            raise LocalPeerProtocolError(f"boot id must be {BOOT_ID_BYTES} bytes")
        _check_int(self.seq, 0, U64_MAX, "sequence number")
        _check_int(self.sent_wall_ms, 0, U64_MAX, "wall time (ms)")


@dataclass(frozen=True, slots=True)
class Hello:
    """First contact: "I am <envelope sender>, reachable at ``address``; send me a heartbeat"."""

    address: str

    def __post_init__(self) -> None:
        _check_text(self.address, MAX_ADDRESS_BYTES, "address")


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Sent every heartbeat interval to every known peer (node id, boot id, wall time and sequence
    number are in the envelope).

    ``term`` is the highest term the sender knows; with ``role == PUBLISHER`` it is the sender's
    own lease, valid for ``lease_ms`` after the receiver gets it (a local monotonic deadline).
    ``serving``/``health_reason`` are the sender's health verdict; ``intro_digest`` the digest of
    its current intro-point set (empty: none yet); ``peers`` the peers it believes alive;
    ``wireguard`` the sender's own WireGuard identity (None: it runs no managed WireGuard).
    """

    address: str
    priority: int
    role: Role
    term: Term
    lease_ms: int
    serving: bool
    health_reason: str
    draining: bool
    intro_digest: bytes
    peers: tuple[PeerAddress, ...]
    wireguard: WireGuardIdentity | None = None

    def __post_init__(self) -> None:
        _check_text(self.address, MAX_ADDRESS_BYTES, "address")
        _check_int(self.priority, 0, MAX_PRIORITY, "priority")
        if not isinstance(self.role, Role):
            raise LocalPeerProtocolError(f"role must be a Role, got {self.role!r}")
        if not isinstance(self.term, Term):
            raise LocalPeerProtocolError("term must be a Term")
        _check_int(self.lease_ms, 0, MAX_LEASE_MS, "lease (ms)")
        _check_bool(self.serving, "serving")
        _check_text(self.health_reason, MAX_REASON_BYTES, "health reason")
        _check_bool(self.draining, "draining")
        _check_digest(self.intro_digest, "intro digest")
        if not isinstance(self.peers, tuple) or len(self.peers) > MAX_PEERS:
            raise LocalPeerProtocolError(f"peers must be a tuple of at most {MAX_PEERS}")
        for peer in self.peers:
            if not isinstance(peer, PeerAddress):
                raise LocalPeerProtocolError("peers must hold PeerAddress values")
        if self.wireguard is not None and not isinstance(self.wireguard, WireGuardIdentity):
            raise LocalPeerProtocolError("wireguard must be a WireGuardIdentity or None")


@dataclass(frozen=True, slots=True)
class IntroPoints:
    """The sender's full current intro-point set: sent on change and on request."""

    intro: IntroPointSet

    def __post_init__(self) -> None:
        if not isinstance(self.intro, IntroPointSet):
            raise LocalPeerProtocolError("intro must be an IntroPointSet")


@dataclass(frozen=True, slots=True)
class IntroPointsRequest:
    """Ask the receiver for its full set; ``have_digest`` is the digest we hold (empty: none)."""

    have_digest: bytes

    def __post_init__(self) -> None:
        _check_digest(self.have_digest, "digest")


@dataclass(frozen=True, slots=True)
class Drain:
    """The sender starts (``draining``) or stops draining: it is no publisher candidate and its
    intro points should leave the merged descriptor."""

    draining: bool
    reason: str

    def __post_init__(self) -> None:
        _check_bool(self.draining, "draining")
        _check_text(self.reason, MAX_REASON_BYTES, "reason")


@dataclass(frozen=True, slots=True)
class Leave:
    """The sender leaves the cluster on purpose: forget it now, no need to wait for dead_after."""

    reason: str

    def __post_init__(self) -> None:
        _check_text(self.reason, MAX_REASON_BYTES, "reason")


@dataclass(frozen=True, slots=True)
class LeaseRelease:
    """The publisher of ``term`` stepped down; ``successor`` (empty: none named) may claim the next
    term at once, without waiting for the grace period (the hand-over)."""

    term: Term
    successor: str

    def __post_init__(self) -> None:
        if not isinstance(self.term, Term) or self.term.number == 0:
            raise LocalPeerProtocolError("a lease release names a real term")
        if self.successor:
            check_node_id(self.successor, "successor")


Message = Hello | Heartbeat | IntroPoints | IntroPointsRequest | Drain | Leave | LeaseRelease

_TYPE_OF: Final[dict[type, MessageType]] = {
    Hello: MessageType.HELLO,
    Heartbeat: MessageType.HEARTBEAT,
    IntroPoints: MessageType.INTRO_POINTS,
    IntroPointsRequest: MessageType.INTRO_POINTS_REQUEST,
    Drain: MessageType.DRAIN,
    Leave: MessageType.LEAVE,
    LeaseRelease: MessageType.LEASE_RELEASE,
}


def message_type(message: Message) -> MessageType:
    try:
        return _TYPE_OF[type(message)]
    except KeyError:
        raise LocalPeerProtocolError(f"not a peer message: {type(message).__name__}") from None


# --- encoding -------------------------------------------------------------------------------


def _str8(value: str) -> bytes:
    raw = value.encode("utf-8")
    return _U8.pack(len(raw)) + raw


def _str16(value: str) -> bytes:
    raw = value.encode("utf-8")
    return _U16.pack(len(raw)) + raw


def _term(term: Term) -> bytes:
    return _U64.pack(term.number) + _str8(term.holder)


def _digest(value: bytes) -> bytes:
    return _U8.pack(len(value)) + value


def _wgid(wg: WireGuardIdentity | None) -> bytes:
    if wg is None:
        return b"\x00"
    return b"\x01" + wg.public_key + _str8(wg.endpoint) + _str8(wg.tunnel_address)


def _encode_intro_set(intro: IntroPointSet) -> bytes:
    parts = [_U8.pack(len(intro.entries))]
    for entry in intro.entries:
        parts.append(_U32.pack(len(entry)))
        parts.append(entry)
    if intro.flow_control is None:
        parts.append(b"\x00")
    else:
        parts.append(b"\x01" + _str16(intro.flow_control))
    return b"".join(parts)


def _encode_payload(message: Message) -> bytes:
    if isinstance(message, Heartbeat):
        parts = [
            _str8(message.address),
            _U16.pack(message.priority),
            _U8.pack(message.role),
            _term(message.term),
            _U32.pack(message.lease_ms),
            b"\x01" if message.serving else b"\x00",
            _str16(message.health_reason),
            b"\x01" if message.draining else b"\x00",
            _digest(message.intro_digest),
            _U16.pack(len(message.peers)),
        ]
        for peer in message.peers:
            parts.append(_str8(peer.node_id))
            parts.append(_str8(peer.address))
            parts.append(_wgid(peer.wireguard))
        parts.append(_wgid(message.wireguard))
        return b"".join(parts)
    if isinstance(message, Hello):
        return _str8(message.address)
    if isinstance(message, IntroPoints):
        return _encode_intro_set(message.intro)
    if isinstance(message, IntroPointsRequest):
        return _digest(message.have_digest)
    if isinstance(message, Drain):
        return (b"\x01" if message.draining else b"\x00") + _str16(message.reason)
    if isinstance(message, Leave):
        return _str16(message.reason)
    if isinstance(message, LeaseRelease):
        return _term(message.term) + _str8(message.successor)
    raise LocalPeerProtocolError(f"not a peer message: {type(message).__name__}")


def encode_body(envelope: Envelope, message: Message) -> tuple[MessageType, bytes]:
    """Encode envelope + payload; raises LocalPeerProtocolError if it would exceed the cap."""
    body = (
        _str8(envelope.sender)
        + _ENVELOPE_TAIL.pack(envelope.boot_id, envelope.seq, envelope.sent_wall_ms)
        + _encode_payload(message)
    )
    if len(body) > MAX_BODY_BYTES:
        raise LocalPeerProtocolError(
            f"{type(message).__name__} needs {len(body)} body bytes; a frame holds at most "
            f"{MAX_BODY_BYTES} (MAX_FRAME_BYTES={MAX_FRAME_BYTES}); send fewer peers/intro points"
        )
    return message_type(message), body


def encode_header(kind: MessageType, body_len: int) -> bytes:
    return _HEADER.pack(MAGIC, PROTOCOL_VERSION, kind, body_len)


# --- decoding -------------------------------------------------------------------------------


class _Reader:
    __slots__ = ("_buf", "_pos")

    def __init__(self, buf: bytes, pos: int = 0) -> None:
        self._buf = buf
        self._pos = pos

    def take(self, n: int, what: str) -> bytes:
        end = self._pos + n
        if end > len(self._buf):
            raise MalformedFrame(f"frame truncated inside {what}")
        chunk = self._buf[self._pos : end]
        self._pos = end
        return chunk

    def u8(self, what: str) -> int:
        if self._pos >= len(self._buf):
            raise MalformedFrame(f"frame truncated inside {what}")
        value = self._buf[self._pos]
        self._pos += 1
        return value

    def u16(self, what: str) -> int:
        value: int = _U16.unpack(self.take(2, what))[0]
        return value

    def u32(self, what: str) -> int:
        value: int = _U32.unpack(self.take(4, what))[0]
        return value

    def u64(self, what: str) -> int:
        value: int = _U64.unpack(self.take(8, what))[0]
        return value

    def flag(self, what: str) -> bool:
        value = self.u8(what)
        if value > 1:
            raise MalformedFrame(f"{what} must be 0 or 1, got {value}")
        return value == 1

    def text(self, n: int, what: str) -> str:
        try:
            return self.take(n, what).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedFrame(f"{what} is not valid UTF-8") from exc

    def str8(self, what: str) -> str:
        return self.text(self.u8(what), what)

    def str16(self, what: str) -> str:
        return self.text(self.u16(what), what)

    def term(self) -> Term:
        number = self.u64("term number")
        return Term(number, self.str8("term holder"))

    def digest(self, what: str) -> bytes:
        return self.take(self.u8(what), what)

    def wgid(self) -> WireGuardIdentity | None:
        if not self.flag("WireGuard identity presence"):
            return None
        public_key = self.take(WG_KEY_BYTES, "WireGuard public key")
        endpoint = self.str8("WireGuard endpoint")
        tunnel = self.str8("WireGuard tunnel address")
        if not _canonical_ip(tunnel):
            raise MalformedFrame(f"WireGuard tunnel address {tunnel!r} is not a canonical IP")
        return WireGuardIdentity(public_key, endpoint, tunnel)

    def peers(self, count: int) -> tuple[PeerAddress, ...]:
        # Hot path (every heartbeat carries the whole peer list): inlined str8 reads.
        buf = self._buf
        size = len(buf)
        match = _NODE_ID_RE.fullmatch
        out = []
        try:
            for _ in range(count):
                pos = self._pos
                end = pos + 1 + buf[pos]
                if end > size:
                    raise MalformedFrame("frame truncated inside peer id")
                node_id = buf[pos + 1 : end].decode("utf-8")
                if match(node_id) is None:
                    raise MalformedFrame(f"invalid peer id {node_id!r}")
                pos = end + 1 + buf[end]
                if pos > size:
                    raise MalformedFrame("frame truncated inside peer address")
                address = buf[end + 1 : pos].decode("utf-8")
                if pos >= size:
                    raise MalformedFrame("frame truncated inside a peer's WireGuard identity")
                if buf[pos] == 0:
                    self._pos = pos + 1
                    wireguard = None
                else:
                    self._pos = pos
                    wireguard = self.wgid()
                out.append(PeerAddress._decoded(node_id, address, wireguard))
        except IndexError:
            raise MalformedFrame("frame truncated inside the peer list") from None
        except UnicodeDecodeError as exc:
            raise MalformedFrame("a peer id or address is not valid UTF-8") from exc
        return tuple(out)

    def end(self) -> None:
        if self._pos != len(self._buf):
            raise MalformedFrame(f"{len(self._buf) - self._pos} unexpected trailing bytes")


def _decode_intro_set(r: _Reader) -> IntroPointSet:
    count = r.u8("intro point count")
    if count > MAX_INTRO_ENTRIES:
        raise MalformedFrame(f"{count} intro points; the limit is {MAX_INTRO_ENTRIES}")
    entries = tuple(r.take(r.u32("intro point length"), "intro point") for _ in range(count))
    flow = r.str16("flow-control line") if r.flag("flow-control presence") else None
    return IntroPointSet(entries, flow)


def _decode_payload(kind: int, r: _Reader) -> Message:
    message: Message
    if kind == MessageType.HEARTBEAT:
        address = r.str8("address")
        priority, role_value, term_number = _HB_FIXED.unpack(r.take(_HB_FIXED.size, "heartbeat"))
        if role_value > Role.PUBLISHER:
            raise MalformedFrame(f"unknown role {role_value}")
        term = Term(term_number, r.str8("term holder"))
        lease_ms = r.u32("lease")
        serving = r.flag("serving")
        reason = r.str16("health reason")
        draining = r.flag("draining")
        digest = r.digest("intro digest")
        count = r.u16("peer count")
        if count > MAX_PEERS:
            raise MalformedFrame(f"{count} peers; the limit is {MAX_PEERS}")
        peers = r.peers(count)
        wireguard = r.wgid()
        message = Heartbeat(
            address, priority, Role(role_value), term, lease_ms, serving, reason, draining,
            digest, peers, wireguard,
        )
    elif kind == MessageType.HELLO:
        message = Hello(r.str8("address"))
    elif kind == MessageType.INTRO_POINTS:
        message = IntroPoints(_decode_intro_set(r))
    elif kind == MessageType.INTRO_POINTS_REQUEST:
        message = IntroPointsRequest(r.digest("digest"))
    elif kind == MessageType.DRAIN:
        draining = r.flag("draining")
        message = Drain(draining, r.str16("reason"))
    elif kind == MessageType.LEAVE:
        message = Leave(r.str16("reason"))
    elif kind == MessageType.LEASE_RELEASE:
        term = r.term()
        message = LeaseRelease(term, r.str8("successor"))
    else:
        raise MalformedFrame(f"unknown message type {kind}")
    r.end()
    return message


def decode_body(kind: int, body: bytes) -> tuple[Envelope, Message]:
    """Decode a frame body of type ``kind``; raises only MalformedFrame."""
    r = _Reader(body)
    try:
        sender = r.str8("sender")
        boot_id, seq, wall_ms = _ENVELOPE_TAIL.unpack(r.take(_ENVELOPE_TAIL.size, "envelope"))
        envelope = Envelope(sender, boot_id, seq, wall_ms)
        return envelope, _decode_payload(kind, r)
    except LocalPeerProtocolError as exc:
        # A constructor refused a decoded field: the peer's fault (h11 re-raises as Remote).
        raise MalformedFrame(f"invalid field: {exc}") from exc


def frame_sender(frame: bytes) -> str:
    """The sender node id in a frame's envelope, *unauthenticated*: call only for a frame that
    :func:`~onionfleet.cluster.auth.open_frame` (or ``ClusterNode.receive``) accepted."""
    header = parse_header(frame)
    r = _Reader(frame[FRAME_HEADER_BYTES : FRAME_HEADER_BYTES + header.body_len])
    return r.str8("sender")


@dataclass(frozen=True, slots=True)
class FrameHeader:
    kind: int
    body_len: int

    @property
    def frame_len(self) -> int:
        return FRAME_HEADER_BYTES + self.body_len + MAC_BYTES


def parse_header(header: bytes) -> FrameHeader:
    """Check the 8-byte header: magic, version and the size cap (before any body is buffered)."""
    if len(header) < FRAME_HEADER_BYTES:
        raise MalformedFrame(f"frame truncated: {len(header)} of {FRAME_HEADER_BYTES} header bytes")
    magic, version, kind, body_len = _HEADER.unpack_from(header)
    if magic != MAGIC:
        raise UnsupportedVersion(
            f"not an onionfleet peer frame (magic {magic!r}); is something else talking to the "
            "peer port?"
        )
    if version != PROTOCOL_VERSION:
        raise UnsupportedVersion(
            f"peer protocol version {version}, this node speaks {PROTOCOL_VERSION}; upgrade the "
            "older node"
        )
    if body_len > MAX_BODY_BYTES:
        raise FrameTooLarge(
            f"frame header claims {FRAME_HEADER_BYTES + body_len + MAC_BYTES} bytes; the cap is "
            f"{MAX_FRAME_BYTES}"
        )
    return FrameHeader(kind, body_len)


class FrameDecoder:
    """Splits a byte stream into frames (sans-IO, STYLE §1 h11 ``receive_data``/``next_event``).

    ``feed(data)`` returns the complete frames now available (``b""`` never produces one). The
    buffer never holds more than one incomplete frame (<= MAX_FRAME_BYTES). A framing error (bad
    magic/version, oversized) is raised once and the decoder stays failed: every later ``feed``
    raises :class:`LocalPeerProtocolError`; close the connection.
    """

    __slots__ = ("_buf", "_failed", "_need")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._need: FrameHeader | None = None
        self._failed = False

    @property
    def buffered(self) -> int:
        return len(self._buf)

    @property
    def failed(self) -> bool:
        return self._failed

    def feed(self, data: bytes) -> list[bytes]:
        if self._failed:
            raise LocalPeerProtocolError("this frame decoder already failed; close the connection")
        self._buf += data
        frames: list[bytes] = []
        try:
            while True:
                if self._need is None:
                    if len(self._buf) < FRAME_HEADER_BYTES:
                        break
                    self._need = parse_header(bytes(self._buf[:FRAME_HEADER_BYTES]))
                size = self._need.frame_len
                if len(self._buf) < size:
                    break
                frames.append(bytes(self._buf[:size]))
                del self._buf[:size]
                self._need = None
        except Exception:
            self._failed = True
            self._buf.clear()
            raise
        return frames
