from __future__ import annotations

import random

import pytest

from onionfleet.hs.errors import HsError, IntroPointError, LegacyIntroPointError
from onionfleet.hs.intro_point import IntroPoint, LinkSpecifier
from onionfleet.hs.intro_point_wire import decode_intro_point_wire, encode_intro_point_wire


def make_ip(seed: int) -> IntroPoint:
    rng = random.Random(seed)
    specs = [
        LinkSpecifier.ipv4(f"127.0.0.{rng.randrange(1, 255)}", rng.randrange(1, 65535)),
        LinkSpecifier.legacy_id(rng.randbytes(20)),
        LinkSpecifier.ed25519_id(rng.randbytes(32)),
    ]
    if seed % 2:
        specs.append(LinkSpecifier.ipv6("::1", rng.randrange(1, 65535)))
    return IntroPoint.create(
        specs, onion_key=rng.randbytes(32), auth_key=rng.randbytes(32), enc_key=rng.randbytes(32)
    )


@pytest.mark.parametrize("seed", range(20))
def test_round_trip_drops_only_certs(seed: int) -> None:
    ip = make_ip(seed)
    assert decode_intro_point_wire(encode_intro_point_wire(ip)) == ip.without_certs()


def test_legacy_intro_points_do_not_travel() -> None:
    ip = make_ip(1)
    legacy = IntroPoint(
        ip.link_specifiers,
        ip.onion_key,
        ip.auth_key,
        ip.enc_key,
        ip.enc_key_ed25519,
        legacy_key=b"rsa",
    )
    with pytest.raises(LegacyIntroPointError):
        encode_intro_point_wire(legacy)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"", "bad magic"),
        (b"OFIP\x02" + b"\x00" * 200, "bad magic"),
        (b"OFIP\x01\x00", "truncated"),
        (b"OFIP\x01\xff\xff" + b"\x00" * 10, "too long"),
        (b"OFIP\x01\x00\x00" + b"\x00" * 127, "expected"),
    ],
)
def test_malformed_is_a_specific_error(raw: bytes, words: str) -> None:
    with pytest.raises(IntroPointError, match=words):
        decode_intro_point_wire(raw)


def test_hostile_bytes_raise_only_typed_errors() -> None:
    """100k seeded mutations of valid encodings: only HsError subclasses escape."""
    rng = random.Random(20261122)
    seeds = [encode_intro_point_wire(make_ip(i)) for i in range(8)]
    accepted = 0
    for _ in range(100_000):
        buf = bytearray(rng.choice(seeds))
        for _ in range(rng.randrange(1, 6)):
            op = rng.randrange(4)
            if op == 0 and buf:
                buf[rng.randrange(len(buf))] = rng.randrange(256)
            elif op == 1 and buf:
                del buf[rng.randrange(len(buf)) :]
            elif op == 2:
                pos = rng.randrange(len(buf) + 1)
                buf[pos:pos] = rng.randbytes(rng.randrange(1, 40))
            elif buf:
                start = rng.randrange(len(buf))
                del buf[start : start + rng.randrange(1, 20)]
        try:
            ip = decode_intro_point_wire(bytes(buf))
        except HsError:
            continue
        accepted += 1
        assert decode_intro_point_wire(encode_intro_point_wire(ip)) == ip
    assert accepted > 0  # some mutations (key bytes) stay valid: the loop really decodes
