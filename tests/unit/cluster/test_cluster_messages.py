"""Message values, the binary codec and the stream decoder (sans-IO, no sockets)."""

from __future__ import annotations

import struct

import pytest

from onionfleet.cluster.errors import (
    FrameTooLarge,
    LocalPeerProtocolError,
    MalformedFrame,
    PeerProtocolError,
    RejectReason,
    RemotePeerProtocolError,
    UnsupportedVersion,
)
from onionfleet.cluster.messages import (
    FRAME_HEADER_BYTES,
    MAC_BYTES,
    MAX_BODY_BYTES,
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    Drain,
    Envelope,
    FrameDecoder,
    Heartbeat,
    Hello,
    IntroPoints,
    IntroPointSet,
    IntroPointsRequest,
    LeaseRelease,
    Leave,
    Message,
    MessageType,
    PeerAddress,
    Role,
    Term,
    WireGuardIdentity,
    decode_body,
    encode_body,
    encode_header,
    parse_header,
)

ENVELOPE = Envelope("node-a", bytes(range(16)), 7, 1_700_000_000_123)
INTRO = IntroPointSet((b"\x00" * 10, b"introduction-point AAAA\n"), "flow-control 1-2 31")

SIMPLE_CASES: list[Message] = [
    Hello("10.0.0.1:7800"),
    Heartbeat(
        address="10.0.0.1:7800",
        priority=5,
        role=Role.PUBLISHER,
        term=Term(3, "node-a"),
        lease_ms=6000,
        serving=True,
        health_reason="",
        draining=False,
        intro_digest=INTRO.digest(),
        peers=(PeerAddress("node-b", "10.0.0.2:7800"), PeerAddress("node-c", "[fd00::3]:7800")),
    ),
    Heartbeat(
        address="10.77.0.1:7420",
        priority=5,
        role=Role.FOLLOWER,
        term=Term(3, "node-a"),
        lease_ms=6000,
        serving=True,
        health_reason="",
        draining=False,
        intro_digest=b"",
        peers=(
            PeerAddress("node-b", "10.77.0.2:7420",
                        WireGuardIdentity(b"\x02" * 32, "192.0.2.2:51820", "10.77.0.2")),
            PeerAddress("node-c", "10.77.0.3:7420",
                        WireGuardIdentity(b"\x03" * 32, "", "fd00::3")),
            PeerAddress("node-d", "10.77.0.4:7420"),
        ),
        wireguard=WireGuardIdentity(b"\x01" * 32, "192.0.2.1:51820", "10.77.0.1"),
    ),
    Heartbeat(
        address="x",
        priority=0,
        role=Role.FOLLOWER,
        term=Term(0, ""),
        lease_ms=0,
        serving=False,
        health_reason="target 127.0.0.1:80 refused",
        draining=True,
        intro_digest=b"",
        peers=(),
    ),
    IntroPoints(INTRO),
    IntroPoints(IntroPointSet((), None)),
    IntroPointsRequest(b""),
    IntroPointsRequest(b"\x01" * 32),
    Drain(True, "maintenance"),
    Leave("shutting down"),
    LeaseRelease(Term(9, "node-a"), "node-b"),
    LeaseRelease(Term(9, "node-a"), ""),
]


@pytest.mark.parametrize("message", SIMPLE_CASES, ids=lambda m: type(m).__name__)
def test_round_trip_and_canonical(message: Message) -> None:
    kind, body = encode_body(ENVELOPE, message)
    envelope, decoded = decode_body(kind, body)
    assert envelope == ENVELOPE
    assert decoded == message
    assert encode_body(envelope, decoded) == (kind, body)


def test_trailing_bytes_refused() -> None:
    kind, body = encode_body(ENVELOPE, Leave("bye"))
    with pytest.raises(MalformedFrame, match="trailing"):
        decode_body(kind, body + b"\x00")


def test_truncated_body_refused_at_every_length() -> None:
    kind, body = encode_body(ENVELOPE, SIMPLE_CASES[1])
    for cut in range(len(body)):
        with pytest.raises(MalformedFrame):
            decode_body(kind, body[:cut])


def test_unknown_type_and_bad_bool_refused() -> None:
    kind, body = encode_body(ENVELOPE, Drain(True, ""))
    with pytest.raises(MalformedFrame, match="unknown message type"):
        decode_body(99, body)
    flag_at = body.index(b"\x01\x00\x00", 1 + 6 + 16 + 16)
    bad = body[:flag_at] + b"\x02" + body[flag_at + 1 :]
    with pytest.raises(MalformedFrame, match="0 or 1"):
        decode_body(kind, bad)


def test_invalid_decoded_field_is_remote_error() -> None:
    # A heartbeat whose gossiped peer id is not a valid node id.
    hb = SIMPLE_CASES[1]
    assert isinstance(hb, Heartbeat)
    kind, body = encode_body(ENVELOPE, hb)
    bad = body.replace(b"\x06node-b", b"\x06node_b")
    with pytest.raises(MalformedFrame) as info:
        decode_body(kind, bad)
    assert isinstance(info.value, RemotePeerProtocolError)
    assert info.value.reason is RejectReason.MALFORMED


@pytest.mark.parametrize(
    "build",
    [
        lambda: Term(1, ""),
        lambda: Term(0, "node-a"),
        lambda: Term(-1, ""),
        lambda: PeerAddress("bad id", "x"),
        lambda: PeerAddress("-a", "x"),
        lambda: Envelope("a", b"short", 1, 0),
        lambda: Envelope("a", bytes(16), -1, 0),
        lambda: Hello("x" * 256),
        lambda: Drain(1, ""),  # type: ignore[arg-type]
        lambda: IntroPointsRequest(b"\x00" * 31),
        lambda: IntroPointSet([b"x"]),  # type: ignore[arg-type]
        lambda: IntroPointSet(tuple(b"x" for _ in range(65))),
        lambda: LeaseRelease(Term(0, ""), "b"),
        lambda: LeaseRelease(Term(1, "a"), "not valid"),
        lambda: WireGuardIdentity(b"\x00" * 31, "", "10.0.0.1"),
        lambda: WireGuardIdentity(b"\x00" * 32, "", "10.0.0.01"),
        lambda: WireGuardIdentity(b"\x00" * 32, "", "FD00::1"),
        lambda: WireGuardIdentity(b"\x00" * 32, "", "fe80::1%eth0"),
        lambda: WireGuardIdentity(b"\x00" * 32, "x" * 256, "10.0.0.1"),
        lambda: PeerAddress("a", "x", "key"),  # type: ignore[arg-type]
    ],
)
def test_constructors_validate_locally(build: object) -> None:
    with pytest.raises(LocalPeerProtocolError):
        build()  # type: ignore[operator]


def test_protocol_error_is_abstract() -> None:
    with pytest.raises(TypeError):
        PeerProtocolError("x")


def test_terms_order_by_number_then_holder() -> None:
    assert Term(2, "a") > Term(1, "z")
    assert Term(2, "b") > Term(2, "a")
    assert Term(1, "a") > Term(0, "")
    assert str(Term(4, "n1")) == "4/n1"


def test_encode_refuses_oversized_message() -> None:
    big = IntroPointSet((b"x" * (MAX_BODY_BYTES),))
    with pytest.raises(LocalPeerProtocolError, match="at most"):
        encode_body(ENVELOPE, IntroPoints(big))


def _frame(message: Message) -> bytes:
    kind, body = encode_body(ENVELOPE, message)
    return encode_header(kind, len(body)) + body + b"\xaa" * MAC_BYTES


def test_decoder_splits_stream_fed_byte_by_byte() -> None:
    frames = [_frame(m) for m in SIMPLE_CASES]
    stream = b"".join(frames)
    decoder = FrameDecoder()
    out: list[bytes] = []
    for i in range(len(stream)):
        out += decoder.feed(stream[i : i + 1])
    assert out == frames
    assert decoder.buffered == 0
    assert decoder.feed(b"") == []


def test_decoder_returns_many_frames_from_one_chunk() -> None:
    frames = [_frame(m) for m in SIMPLE_CASES]
    decoder = FrameDecoder()
    assert decoder.feed(b"".join(frames) + frames[0][:5]) == frames
    assert decoder.buffered == 5


def test_decoder_refuses_oversized_header_before_body() -> None:
    decoder = FrameDecoder()
    header = struct.pack(">2sBBI", b"OF", PROTOCOL_VERSION, MessageType.HELLO, MAX_FRAME_BYTES)
    with pytest.raises(FrameTooLarge) as info:
        decoder.feed(header)  # only the 8 header bytes: refused without waiting for the body
    assert info.value.reason is RejectReason.TOO_LARGE
    assert decoder.failed
    with pytest.raises(LocalPeerProtocolError, match="already failed"):
        decoder.feed(b"more")


def test_largest_allowed_frame_passes() -> None:
    header = encode_header(MessageType.HELLO, MAX_BODY_BYTES)
    assert parse_header(header).frame_len == MAX_FRAME_BYTES
    decoder = FrameDecoder()
    frame = header + b"\x00" * (MAX_BODY_BYTES + MAC_BYTES)
    assert decoder.feed(frame) == [frame]


@pytest.mark.parametrize(
    ("header", "error"),
    [
        (b"HTTP/1.1", UnsupportedVersion),
        (struct.pack(">2sBBI", b"OF", 3, 1, 0), UnsupportedVersion),
        (struct.pack(">2sBBI", b"OF", 1, 1, 0), UnsupportedVersion),  # v1: no WireGuard fields
    ],
)
def test_decoder_refuses_foreign_older_or_newer_streams(header: bytes, error: type) -> None:
    decoder = FrameDecoder()
    with pytest.raises(error):
        decoder.feed(header)
    assert decoder.failed


def test_parse_header_needs_eight_bytes() -> None:
    with pytest.raises(MalformedFrame):
        parse_header(b"OF\x01")
    assert FRAME_HEADER_BYTES == 8


def test_intro_digest_depends_on_every_field() -> None:
    a = IntroPointSet((b"a", b"b"), None)
    assert a.digest() != IntroPointSet((b"b", b"a"), None).digest()
    assert a.digest() != IntroPointSet((b"a", b"b"), "").digest()
    assert a.digest() == IntroPointSet((b"a", b"b"), None).digest()
    assert len(a.digest()) == 32


def test_wireguard_identity_with_a_non_canonical_tunnel_address_is_malformed() -> None:
    message = Heartbeat("a:1", 1, Role.FOLLOWER, Term(0, ""), 0, True, "", False, b"", (),
                        WireGuardIdentity(b"\x09" * 32, "", "10.77.0.9"))
    kind, body = encode_body(ENVELOPE, message)
    bad = body.replace(b"\x0910.77.0.9", b"\x0910.77.0.A")
    with pytest.raises(MalformedFrame, match="canonical"):
        decode_body(kind, bad)
    flag = body.rindex(b"\x01" + b"\x09" * 32)
    with pytest.raises(MalformedFrame, match="0 or 1"):
        decode_body(kind, body[:flag] + b"\x02" + body[flag + 1 :])
