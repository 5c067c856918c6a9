"""MAC key derivation, sealing/opening, the replay window and the skew check."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from onionfleet.cluster.auth import (
    MAC_INFO,
    REPLAY_WINDOW,
    ClusterToken,
    FrameSealer,
    MacKey,
    RejectCounters,
    ReplayGuard,
    open_frame,
)
from onionfleet.cluster.errors import (
    ClockSkewRejected,
    MalformedFrame,
    PeerAuthError,
    RejectReason,
    ReplayRejected,
)
from onionfleet.cluster.messages import Envelope, Hello, Leave
from onionfleet.errors import ConfigError

TOKEN = b"correct horse battery staple 123"
BOOT = bytes(16)


def _rfc5869_sha256(ikm: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF written out from RFC 5869 §2.2–2.3 (salt absent = HashLen zero bytes)."""
    prk = hmac.new(b"\x00" * 32, ikm, hashlib.sha256).digest()
    okm, block = b"", b""
    counter = 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


def test_mac_key_is_rfc5869_hkdf_of_token() -> None:
    key = ClusterToken(TOKEN).derive_mac_key()
    expected = _rfc5869_sha256(TOKEN, b"onionfleet cluster mac v1")
    assert MAC_INFO == b"onionfleet cluster mac v1"
    assert key.mac(b"abc") == hmac.new(expected, b"abc", hashlib.sha256).digest()


def test_secrets_never_in_repr() -> None:
    token = ClusterToken(TOKEN)
    key = token.derive_mac_key()
    for text in (repr(token), str(token), repr(key), str(key)):
        assert "hidden" in text
        assert TOKEN.decode() not in text
        assert TOKEN.hex() not in text


def test_short_token_is_config_error() -> None:
    with pytest.raises(ConfigError, match=r"cluster\.token"):
        ClusterToken(b"short")


def test_seal_open_round_trip_and_sequence() -> None:
    key = ClusterToken(TOKEN).derive_mac_key()
    sealer = FrameSealer(key, "node-a", BOOT)
    f1 = sealer.seal(Hello("a:1"), 1000.5)
    f2 = sealer.seal(Leave("x"), 1001.0)
    env1, msg1 = open_frame(key, f1)
    env2, _ = open_frame(key, f2)
    assert msg1 == Hello("a:1")
    assert (env1.sender, env1.seq, env1.sent_wall_ms) == ("node-a", 1, 1_000_500)
    assert env2.seq == 2


def test_wrong_token_and_any_bit_flip_fail_mac() -> None:
    key = ClusterToken(TOKEN).derive_mac_key()
    other = ClusterToken(b"another token, also 32 bytes...").derive_mac_key()
    frame = FrameSealer(other, "node-a", BOOT).seal(Hello("a:1"), 1000.0)
    with pytest.raises(PeerAuthError) as info:
        open_frame(key, frame)
    assert info.value.reason is RejectReason.BAD_MAC
    assert "cluster.token" in str(info.value)
    good = FrameSealer(key, "node-a", BOOT).seal(Hello("a:1"), 1000.0)
    for byte in range(8, len(good)):  # every bit after the header (length flips: other errors)
        for bit in range(8):
            bad = bytearray(good)
            bad[byte] ^= 1 << bit
            with pytest.raises(PeerAuthError):
                open_frame(key, bytes(bad))


def test_frame_length_must_match_header() -> None:
    key = ClusterToken(TOKEN).derive_mac_key()
    frame = FrameSealer(key, "node-a", BOOT).seal(Hello("a:1"), 1000.0)
    with pytest.raises(MalformedFrame):
        open_frame(key, frame[:-1])
    with pytest.raises(MalformedFrame):
        open_frame(key, frame + b"\x00")


def _env(
    seq: int, boot: bytes = BOOT, wall_ms: int = 1_000_000, sender: str = "node-a"
) -> Envelope:
    return Envelope(sender, boot, seq, wall_ms)


def test_replay_window_accepts_reordering_once() -> None:
    guard = ReplayGuard()
    for seq in (1, 3, 2, 10, 5):
        guard.check(_env(seq), 1000.0)
    for seq in (1, 2, 3, 5, 10):
        with pytest.raises(ReplayRejected) as info:
            guard.check(_env(seq), 1000.0)
        assert info.value.reason is RejectReason.REPLAY
    guard.check(_env(10 + REPLAY_WINDOW), 1000.0)
    with pytest.raises(ReplayRejected, match="older than the replay window"):
        guard.check(_env(4), 1000.0)


def test_new_boot_supersedes_and_old_boot_is_refused() -> None:
    guard = ReplayGuard()
    old, new = b"\x01" * 16, b"\x02" * 16
    guard.check(_env(50, old), 1000.0)
    guard.check(_env(1, new), 1000.0)  # restart: sequence starts again
    guard.check(_env(2, new), 1000.0)
    with pytest.raises(ReplayRejected) as info:
        guard.check(_env(51, old), 1000.0)
    assert info.value.reason is RejectReason.STALE_BOOT
    # other senders are independent
    guard.check(_env(1, old, sender="node-b"), 1000.0)


def test_skew_rejected_with_ntp_hint() -> None:
    guard = ReplayGuard(max_clock_skew_s=30.0)
    guard.check(_env(1, wall_ms=1_029_000), 1000.0)
    with pytest.raises(ClockSkewRejected) as info:
        guard.check(_env(2, wall_ms=1_045_500), 1000.0)
    err = info.value
    assert err.reason is RejectReason.CLOCK_SKEW
    assert err.skew_s == pytest.approx(45.5)
    assert "clocks disagree" in str(err)
    assert "45.5 s ahead" in str(err)
    assert "NTP" in str(err)
    with pytest.raises(ClockSkewRejected, match="behind"):
        guard.check(_env(3, wall_ms=960_000), 1000.0)
    guard.check(_env(2, wall_ms=1_000_000), 1000.0)  # a skewed frame does not burn its seq


def test_skew_setting_validated() -> None:
    with pytest.raises(ConfigError):
        ReplayGuard(max_clock_skew_s=0)


def test_reject_counters() -> None:
    counters = RejectCounters()
    counters.record(RejectReason.BAD_MAC)
    counters.record(RejectReason.BAD_MAC)
    counters.record(RejectReason.REPLAY)
    assert counters.total == 3
    assert counters.get(RejectReason.BAD_MAC) == 2
    assert counters.as_dict()["bad_mac"] == 2
    assert set(counters.as_dict()) == {r.value for r in RejectReason}
    assert "bad_mac=2" in repr(counters)


def test_mac_key_requires_32_bytes() -> None:
    from onionfleet.cluster.errors import LocalPeerProtocolError

    with pytest.raises(LocalPeerProtocolError):
        MacKey(b"x")
