"""Round trips (hypothesis) and seeded mutation fuzzing of every onionfleet.hs parser.

Each fuzz test feeds >= 100,000 hostile inputs, derived from valid seeds (our descriptors, C-tor's
recorded ones, certs, key files, addresses), to one parser. Every failure must be an
:class:`~onionfleet.hs.errors.HsError` subclass; anything else escaping fails the test with the
offending input's seed and index so it can be replayed.
"""

from __future__ import annotations

import base64
import json
import random
import struct
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onionfleet.hs._layer_crypto import decrypt_layer
from onionfleet.hs._netdoc import tokenize
from onionfleet.hs.blinding import subcredential_for
from onionfleet.hs.certs import create_cert, decode_cert
from onionfleet.hs.client_auth import parse_auth_private
from onionfleet.hs.descriptor import (
    FlowControl,
    PowParams,
    _parse_inner,
    _parse_middle,
    build_descriptor,
    parse_descriptor_unpinned,
)
from onionfleet.hs.errors import HsError
from onionfleet.hs.intro_point import (
    IntroPoint,
    LinkSpecifier,
    decode_link_specifiers,
    encode_link_specifiers,
)
from onionfleet.hs.keys import (
    DescSigningKeypair,
    OnionAddress,
    encode_public_key_file,
    encode_secret_key_file,
    master_key_from_seed,
    parse_public_key_file,
    parse_secret_key_file,
)
from onionfleet.hs.params import (
    CERT_TYPE_HS_BLINDED_ID_V_SIGNING,
    CERT_TYPE_HS_IP_CC_SIGNING,
    CERT_TYPE_HS_IP_V_SIGNING,
    HS_DESC_ENC_CONSTANT,
    HS_DESC_SUPERENC_CONSTANT,
)
from onionfleet.hs.timeperiod import TimePeriod

N_FUZZ = 100_000
NOW = 1_790_000_000.0
TP = TimePeriod(int((NOW / 60 - 720) // 1440), 1440)
REAL = Path(__file__).parents[1] / "vectors" / "hs" / "real_tor"
MASTER = master_key_from_seed(bytes(range(32)))
ADDR = OnionAddress(MASTER.public_key())

# Tokens that steer mutations into interesting parser states.
DICTIONARY = [
    b"\n",
    b" ",
    b"\x00",
    b"-----BEGIN MESSAGE-----\n",
    b"-----END MESSAGE-----\n",
    b"-----BEGIN ED25519 CERT-----\n",
    b"-----END ED25519 CERT-----\n",
    b"hs-descriptor 3\n",
    b"signature ",
    b"revision-counter 18446744073709551616\n",
    b"descriptor-lifetime 0\n",
    b"introduction-point ",
    b"auth-client AAAAAAAAAAA AAAAAAAAAAAAAAAAAAAAAA AAAAAAAAAAAAAAAAAAAAAA\n",
    b"flow-control 1-2 999\n",
    b"pow-params v1 ",
    b"onion-key ntor ",
    b"enc-key ntor ",
    b"legacy-key\n",
    b"create2-formats 2\n",
    b"=",
    b"\xff",
    b"99999999999999999999999",
]


def mutate(rng: random.Random, data: bytes, others: list[bytes]) -> bytes:
    """One to four random edits: flips, overwrites, deletions, insertions, splices, truncation."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(9)
        n = len(buf)
        pos = rng.randrange(n + 1)
        if op == 0 and n:
            buf[min(pos, n - 1)] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            buf[min(pos, n - 1)] = rng.randrange(256)
        elif op == 2:
            del buf[pos : pos + rng.choice((1, 2, 4, 16, 64, 1000))]
        elif op == 3:
            buf[pos:pos] = rng.randbytes(rng.choice((1, 2, 8, 32)))
        elif op == 4:
            buf[pos:pos] = rng.choice(DICTIONARY)
        elif op == 5:
            length = rng.choice((1, 16, 80, 400))
            buf[pos:pos] = buf[pos : pos + length]
        elif op == 6:
            del buf[pos:]
        elif op == 7:
            other = rng.choice(others)
            cut = rng.randrange(len(other) + 1)
            buf[pos:] = other[cut:]
        else:
            lines = bytes(buf).split(b"\n")
            if len(lines) > 2:
                i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
                lines[i], lines[j] = lines[j], lines[i]
                buf = bytearray(b"\n".join(lines))
    return bytes(buf)


def fuzz(
    name: str, seeds: list[bytes], target: Callable[[bytes], object], n: int = N_FUZZ
) -> Counter[str]:
    rng = random.Random(name)
    outcomes: Counter[str] = Counter()
    for i in range(n):
        data = mutate(rng, rng.choice(seeds), seeds)
        try:
            target(data)
        except HsError as exc:
            outcomes[type(exc).__name__] += 1
        except Exception as exc:
            pytest.fail(
                f"{name}: input #{i} (rng seed {name!r}) raised {type(exc).__name__}: {exc!r}; "
                f"input starts {data[:120]!r}"
            )
        else:
            outcomes["ok"] += 1
    assert sum(outcomes.values()) == n
    return outcomes


# --- seeds -----------------------------------------------------------------------------------


def _intro_points(n: int, rng: random.Random) -> list[IntroPoint]:
    return [
        IntroPoint.create(
            [
                LinkSpecifier.ipv4("10.1.2.3", 443 + i),
                LinkSpecifier.legacy_id(rng.randbytes(20)),
                LinkSpecifier.ed25519_id(rng.randbytes(32)),
                LinkSpecifier.ipv6("2001:db8::1", 443),
            ],
            onion_key=rng.randbytes(32),
            auth_key=DescSigningKeypair.from_seed(rng.randbytes(32)).public_raw,
            enc_key=rng.randbytes(32),
        )
        for i in range(n)
    ]


def _our_descriptor(n_ips: int, **kw: object) -> str:
    rng = random.Random(n_ips)
    return build_descriptor(
        master_key=MASTER,
        time_period=TP,
        revision_counter=7,
        intro_points=_intro_points(n_ips, rng),
        now=NOW,
        token_bytes=rng.randbytes,
        flow_control=FlowControl("1-2", 31),
        **kw,  # type: ignore[arg-type]
    ).text


def _layers(text: str, address: OnionAddress) -> tuple[bytes, bytes, bytes]:
    """(middle plaintext, inner plaintext, signing key) of a public descriptor."""
    parsed = parse_descriptor_unpinned(text)
    sub = subcredential_for(address.public_key, parsed.blinded_key).raw
    middle = decrypt_layer(
        parsed.superencrypted_blob,
        secret_data=parsed.blinded_key.raw,
        subcredential=sub,
        revision_counter=parsed.revision_counter,
        constant=HS_DESC_SUPERENC_CONSTANT,
        what="m",
    )
    enc = next(t for t in tokenize(middle.decode(), "m") if t.keyword == "encrypted").obj
    assert enc is not None
    inner = decrypt_layer(
        enc,
        secret_data=parsed.blinded_key.raw,
        subcredential=sub,
        revision_counter=parsed.revision_counter,
        constant=HS_DESC_ENC_CONSTANT,
        what="i",
    )
    return middle, inner, parsed.signing_key_cert.certified_key


def _real() -> tuple[str, OnionAddress, float]:
    meta = json.loads((REAL / "svcplain" / "meta.json").read_text())
    text = (REAL / "svcplain" / "descriptor.txt").read_text()
    return text, OnionAddress.parse(meta["address"]), float(meta["recorded_at_unix"])


# --- fuzz tests ------------------------------------------------------------------------------


def test_fuzz_descriptor_outer_layer() -> None:
    real_text, _, _ = _real()
    seeds = [_our_descriptor(1).encode(), _our_descriptor(2, single_onion_service=True).encode()]
    seeds.append(real_text.encode())

    def target(data: bytes) -> None:
        parsed = parse_descriptor_unpinned(data.decode("latin-1"))
        verified = parsed.verify(now=NOW)
        verified.decrypt(ADDR, now=NOW)

    outcomes = fuzz("outer", seeds, target)
    assert outcomes["ok"] > 0 and len(outcomes) > 3


def test_fuzz_superencrypted_layer() -> None:
    real_text, real_addr, _ = _real()
    seeds = [_layers(_our_descriptor(1), ADDR)[0], _layers(real_text, real_addr)[0]]

    def target(data: bytes) -> None:
        _parse_middle(data.decode("latin-1"))

    outcomes = fuzz("middle", seeds, target)
    assert outcomes["ok"] > 0


def test_fuzz_encrypted_layer_and_intro_points() -> None:
    real_text, real_addr, real_now = _real()
    ours, ours_key = _layers(_our_descriptor(1), ADDR)[1:]
    theirs, theirs_key = _layers(real_text, real_addr)[1:]
    pow_line = PowParams("v1", bytes(32), 5, "2026-09-21T10:00:00").encode().encode()
    with_pow = ours.replace(b"flow-control", pow_line + b"flow-control")

    def target_with(key: bytes, now: float) -> Callable[[bytes], None]:
        def target(data: bytes) -> None:
            _parse_inner(
                data.decode("latin-1"), signing_key=key, now=now, dangerously_assume_timely=False
            )

        return target

    ours_out = fuzz("inner-ours", [ours, with_pow], target_with(ours_key, NOW), n=60_000)
    theirs_out = fuzz("inner-tor", [theirs], target_with(theirs_key, real_now), n=40_000)
    assert ours_out["ok"] > 0 and theirs_out["ok"] > 0


def test_fuzz_certs() -> None:
    signer = DescSigningKeypair.from_seed(b"\x01" * 32)
    seeds = [
        create_cert(t, bytes(range(32)), signer.public_raw, signer.sign, int(NOW // 3600) + 54)
        for t in (
            CERT_TYPE_HS_BLINDED_ID_V_SIGNING,
            CERT_TYPE_HS_IP_V_SIGNING,
            CERT_TYPE_HS_IP_CC_SIGNING,
        )
    ]
    ext = struct.pack(">HBB", 3, 0x42, 0) + b"abc"
    body = seeds[1][:39] + b"\x02" + seeds[1][39:-64] + ext
    seeds.append(body + signer.sign(body))

    def target(data: bytes) -> None:
        decode_cert(data).check(CERT_TYPE_HS_IP_V_SIGNING, now=NOW)

    outcomes = fuzz("certs", seeds, target)
    assert outcomes["ok"] > 0


def test_fuzz_key_files() -> None:
    seeds = [encode_secret_key_file(MASTER), encode_public_key_file(MASTER.public_key())]

    def target(data: bytes) -> None:
        if b"secret" in data[:32]:
            parse_secret_key_file(data)
        else:
            parse_public_key_file(data)

    outcomes = fuzz("keyfiles", seeds, target)
    assert outcomes["ok"] > 0


def test_fuzz_addresses_link_specifiers_and_auth_files() -> None:
    addr_seeds = [str(ADDR).encode(), ADDR.without_suffix().encode(), b"sub." + str(ADDR).encode()]
    fuzz("address", addr_seeds, lambda d: OnionAddress.parse(d.decode("latin-1")))
    ls_seeds = [
        encode_link_specifiers(ip.link_specifiers) for ip in _intro_points(2, random.Random(1))
    ]
    fuzz("linkspec", ls_seeds, decode_link_specifiers)
    b32 = base64.b32encode(b"\x07" * 32).decode().rstrip("=")
    auth_seeds = [f"{ADDR.without_suffix()}:descriptor:x25519:{b32}\n".encode()]
    fuzz("auth_private", auth_seeds, lambda d: parse_auth_private(d.decode("latin-1"), ADDR))


# --- hypothesis round trips ------------------------------------------------------------------

_settings = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(st.binary(min_size=32, max_size=32))
def test_address_and_key_file_round_trip(seed: bytes) -> None:
    sk = master_key_from_seed(seed)
    addr = OnionAddress(sk.public_key())
    assert OnionAddress.parse(str(addr)) == addr
    assert parse_secret_key_file(encode_secret_key_file(sk)) == sk
    assert parse_public_key_file(encode_public_key_file(sk.public_key())) == sk.public_key()


@_settings
@given(
    st.sampled_from(
        [CERT_TYPE_HS_BLINDED_ID_V_SIGNING, CERT_TYPE_HS_IP_V_SIGNING, CERT_TYPE_HS_IP_CC_SIGNING]
    ),
    st.binary(min_size=32, max_size=32),
    st.integers(min_value=0, max_value=2**32 - 1),
)
def test_cert_round_trip(cert_type: int, key: bytes, exp_h: int) -> None:
    signer = DescSigningKeypair.from_seed(b"\x03" * 32)
    cert = decode_cert(create_cert(cert_type, key, signer.public_raw, signer.sign, exp_h))
    assert (cert.cert_type, cert.certified_key, cert.expiration_hours) == (cert_type, key, exp_h)
    assert (
        cert.check(cert_type, now=0, dangerously_assume_timely=True).signing_key
        == signer.public_raw
    )


_link_spec = st.one_of(
    st.builds(lambda b: LinkSpecifier(0, b), st.binary(min_size=6, max_size=6)),
    st.builds(lambda b: LinkSpecifier(1, b), st.binary(min_size=18, max_size=18)),
    st.builds(lambda b: LinkSpecifier(2, b), st.binary(min_size=20, max_size=20)),
    st.builds(lambda b: LinkSpecifier(3, b), st.binary(min_size=32, max_size=32)),
    st.builds(LinkSpecifier, st.integers(4, 255), st.binary(max_size=40)),
)


@_settings
@given(st.lists(_link_spec, min_size=1, max_size=8))
def test_link_specifier_round_trip(specs: list[LinkSpecifier]) -> None:
    assert decode_link_specifiers(encode_link_specifiers(specs)) == tuple(specs)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_ips=st.integers(1, 20),
    rev=st.integers(0, 2**64 - 1),
    single_onion=st.booleans(),
    flow=st.one_of(st.none(), st.just(FlowControl("1-2", 31))),
    seed=st.integers(0, 2**32),
)
def test_descriptor_round_trip(
    n_ips: int, rev: int, single_onion: bool, flow: FlowControl | None, seed: int
) -> None:
    rng = random.Random(seed)
    ips = _intro_points(n_ips, rng)
    built = build_descriptor(
        master_key=MASTER,
        time_period=TP,
        revision_counter=rev,
        intro_points=ips,
        now=NOW,
        token_bytes=rng.randbytes,
        flow_control=flow,
        single_onion_service=single_onion,
    )
    d = parse_descriptor_unpinned(built.text).verify(now=NOW).decrypt(ADDR, now=NOW)
    assert d.revision_counter == rev
    assert d.single_onion_service == single_onion
    assert d.flow_control == flow
    assert [ip.link_specifiers for ip in d.intro_points] == [ip.link_specifiers for ip in ips]
    assert [ip.enc_key for ip in d.intro_points] == [ip.enc_key for ip in ips]
