"""Peer codec: Hypothesis round trips for every message type, hostile bytes, and a seeded
mutation fuzz of >= 100,000 frames that must all be refused with our typed errors only."""

from __future__ import annotations

import random
import struct
import time
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from onionfleet.cluster.auth import ClusterToken, FrameSealer, ReplayGuard, open_frame
from onionfleet.cluster.errors import RejectReason, RemotePeerProtocolError
from onionfleet.cluster.messages import (
    BOOT_ID_BYTES,
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
)

node_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9.-]{0,62}", fullmatch=True)
texts = st.text(max_size=40)
addresses = st.text(max_size=60)
digests = st.one_of(st.just(b""), st.binary(min_size=32, max_size=32))
terms = st.one_of(
    st.just(Term(0, "")),
    st.builds(Term, st.integers(1, (1 << 64) - 1), node_ids),
)
intro_sets = st.builds(
    IntroPointSet,
    st.lists(st.binary(max_size=300), max_size=8).map(tuple),
    st.one_of(st.none(), texts),
)
tunnel_ips = st.one_of(
    st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str)
)
wg_ids = st.one_of(
    st.none(),
    st.builds(WireGuardIdentity, st.binary(min_size=32, max_size=32), addresses, tunnel_ips),
)
messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(Hello, addresses),
    st.builds(
        Heartbeat,
        address=addresses,
        priority=st.integers(0, 0xFFFF),
        role=st.sampled_from(Role),
        term=terms,
        lease_ms=st.integers(0, 0xFFFFFFFF),
        serving=st.booleans(),
        health_reason=texts,
        draining=st.booleans(),
        intro_digest=digests,
        peers=st.lists(
            st.builds(PeerAddress, node_ids, addresses, wg_ids), max_size=12
        ).map(tuple),
        wireguard=wg_ids,
    ),
    st.builds(IntroPoints, intro_sets),
    st.builds(IntroPointsRequest, digests),
    st.builds(Drain, st.booleans(), texts),
    st.builds(Leave, texts),
    st.builds(LeaseRelease, terms.filter(lambda t: t.number > 0), st.one_of(st.just(""), node_ids)),
)
envelopes = st.builds(
    Envelope,
    node_ids,
    st.binary(min_size=BOOT_ID_BYTES, max_size=BOOT_ID_BYTES),
    st.integers(0, (1 << 64) - 1),
    st.integers(0, (1 << 64) - 1),
)

KEY = ClusterToken(b"property-test cluster token ....").derive_mac_key()


@settings(max_examples=400, deadline=None)
@given(envelopes, messages)
def test_decode_encode_round_trip(envelope: Envelope, message: Message) -> None:
    kind, body = encode_body(envelope, message)
    assert decode_body(kind, body) == (envelope, message)


@settings(max_examples=200, deadline=None)
@given(node_ids, messages, st.floats(0, 4e9))
def test_sealed_frames_open_to_the_same_message(sender: str, message: Message, wall: float) -> None:
    frame = FrameSealer(KEY, sender, b"\x05" * 16).seal(message, wall)
    assert len(frame) <= MAX_FRAME_BYTES
    assert FrameDecoder().feed(frame) == [frame]
    envelope, decoded = open_frame(KEY, frame)
    assert decoded == message and envelope.sender == sender


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([*list(MessageType), 0, 8, 255]), st.binary(max_size=400))
def test_arbitrary_bodies_raise_only_typed_errors(kind: int, body: bytes) -> None:
    try:
        envelope, message = decode_body(kind, body)
    except RemotePeerProtocolError:
        return
    # Canonical: whatever is accepted re-encodes to exactly the same bytes.
    assert encode_body(envelope, message) == (kind, body)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=100), max_size=6))
def test_arbitrary_streams_raise_only_typed_errors(chunks: list[bytes]) -> None:
    decoder = FrameDecoder()
    try:
        for chunk in chunks:
            for frame in decoder.feed(chunk):
                open_frame(KEY, frame)
    except RemotePeerProtocolError:
        pass  # a typed refusal is the only acceptable failure


# --- seeded mutation fuzz ----------------------------------------------------------------------

FUZZ_FRAMES = 100_000
WALL = 1_700_000_000.0


def _sample_messages(rng: random.Random) -> list[Message]:
    intro = IntroPointSet(
        tuple(rng.randbytes(rng.randrange(50, 400)) for _ in range(3)), "flow-control 1-2 31"
    )
    peers = tuple(
        PeerAddress(
            f"n{i}", f"10.0.0.{i}:7800",
            WireGuardIdentity(bytes([i]) * 32, f"192.0.2.{i}:51820", f"10.77.0.{i}")
            if i % 2 else None,
        )
        for i in range(12)
    )
    return [
        Hello("10.0.0.1:7800"),
        Heartbeat(
            "10.0.0.1:7800",
            3,
            Role.PUBLISHER,
            Term(7, "n1"),
            6000,
            True,
            "",
            False,
            intro.digest(),
            peers,
            WireGuardIdentity(b"\x07" * 32, "192.0.2.1:51820", "10.77.0.1"),
        ),
        IntroPoints(intro),
        IntroPointsRequest(intro.digest()),
        Drain(True, "maintenance"),
        Leave("bye"),
        LeaseRelease(Term(7, "n1"), "n2"),
    ]


def test_mutation_fuzz_every_hostile_frame_is_refused() -> None:
    rng = random.Random(20260522)
    wrong = ClusterToken(b"not the cluster token at all....").derive_mac_key()
    samples = _sample_messages(rng)
    boot, old_boot = b"\x01" * 16, b"\x00" * 16
    guard = ReplayGuard(max_clock_skew_s=30.0)
    sealer = FrameSealer(KEY, "n1", boot)
    old_sealer = FrameSealer(KEY, "n1", old_boot)
    # An earlier run of n1 was seen, then n1 restarted: old-boot frames are stale from now on.
    guard.check(open_frame(KEY, old_sealer.seal(samples[0], WALL))[0], WALL)
    accepted: list[bytes] = []
    for _ in range(300):
        frame = sealer.seal(rng.choice(samples), WALL + rng.uniform(-5, 5))
        guard.check(open_frame(KEY, frame)[0], WALL)
        accepted.append(frame)
    counts: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    start = time.perf_counter()

    def refuse(frame: bytes, stream: bool) -> None:
        try:
            if stream:
                decoder = FrameDecoder()
                frames = decoder.feed(frame)
                if not frames:  # waiting for bytes that never come: nothing accepted
                    counts["incomplete"] += 1
                    return
                (frame,) = frames
            envelope, _ = open_frame(KEY, frame)
            guard.check(envelope, WALL)
        except RemotePeerProtocolError as exc:
            assert isinstance(exc.reason, RejectReason)
            counts[exc.reason.value] += 1
            return
        raise AssertionError(f"hostile frame accepted: {frame[:64].hex()}")

    for i in range(FUZZ_FRAMES):
        kind = rng.randrange(8)
        message = rng.choice(samples)
        if kind == 0:  # forged: well-formed, sealed with the wrong token
            frame = FrameSealer(wrong, "n1", boot).seal(message, WALL)
            kinds["forged"] += 1
        elif kind == 1:  # replayed verbatim
            frame = rng.choice(accepted)
            kinds["replayed"] += 1
        elif kind == 2:  # correctly sealed, but the sender's clock is off by > 30 s
            skew = rng.choice((-1, 1)) * rng.uniform(30.5, 1e6)
            frame = FrameSealer(KEY, "n2", boot).seal(message, WALL + skew)
            kinds["skewed"] += 1
        elif kind == 3:  # truncated anywhere
            good = rng.choice(accepted)
            frame = good[: rng.randrange(len(good))]
            kinds["truncated"] += 1
        elif kind == 4:  # oversized: the header claims more than the cap
            body_len = rng.randrange(MAX_FRAME_BYTES - 39, 1 << 32)
            frame = struct.pack(
                ">2sBBI", b"OF", PROTOCOL_VERSION, rng.randrange(256), body_len
            ) + rng.randbytes(rng.randrange(64))
            kinds["oversized"] += 1
        elif kind == 5:  # bit flips in a valid frame
            bad = bytearray(rng.choice(accepted))
            for _ in range(rng.randrange(1, 9)):
                bad[rng.randrange(len(bad))] ^= 1 << rng.randrange(8)
            frame = bytes(bad)
            kinds["bit_flips"] += 1
        elif kind == 6:  # a frame from the superseded boot
            frame = old_sealer.seal(message, WALL)
            kinds["stale_boot"] += 1
        else:  # random garbage, sometimes with a valid-looking header
            head = b""
            if rng.random() < 0.5:
                head = struct.pack(">2sBB", b"OF", PROTOCOL_VERSION, rng.randrange(1, 8))
            frame = head + rng.randbytes(rng.randrange(0, 300))
            kinds["garbage"] += 1
        refuse(frame, stream=i % 2 == 0)
    elapsed = time.perf_counter() - start
    total = sum(counts.values())
    print(f"\nfuzz: {FUZZ_FRAMES} hostile frames in {elapsed:.1f}s, all refused: {dict(counts)}")
    assert total == FUZZ_FRAMES == sum(kinds.values())
    assert counts["bad_mac"] > 0 and counts["replay"] > 0 and counts["clock_skew"] > 0
    assert counts["too_large"] > 0 and counts["malformed"] > 0 and counts["stale_boot"] > 0
    assert counts["bad_version"] > 0


def test_mutated_heartbeat_bodies_decode_or_raise_only_typed_errors() -> None:
    """Below the MAC: 100,000 mutated version-2 heartbeat bodies (WireGuard identities in the
    sender and peer entries) either decode canonically or raise MalformedFrame."""
    rng = random.Random(20261122)
    envelope = Envelope("n1", b"\x05" * 16, 9, 1_700_000_000_000)
    bodies = [encode_body(envelope, m)[1] for m in _sample_messages(rng)
              if isinstance(m, Heartbeat)]
    accepted = 0
    for _ in range(100_000):
        body = bytearray(rng.choice(bodies))
        op = rng.randrange(3)
        if op == 0:
            for _ in range(rng.randrange(1, 6)):
                body[rng.randrange(len(body))] = rng.randrange(256)
        elif op == 1:
            del body[rng.randrange(len(body)):]
        else:
            at = rng.randrange(len(body))
            body[at:at] = rng.randbytes(rng.randrange(1, 40))
        try:
            env, message = decode_body(MessageType.HEARTBEAT, bytes(body))
        except RemotePeerProtocolError:
            continue
        accepted += 1
        assert encode_body(env, message) == (MessageType.HEARTBEAT, bytes(body))
    assert accepted < 100_000
