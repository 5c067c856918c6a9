from __future__ import annotations

import base64
import random

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from hs_factory import NOW, TP, build, make_intro_points, master_key, token_bytes

from onionfleet.hs._layer_crypto import compute_padded_plaintext_length
from onionfleet.hs.blinding import blind_public_key
from onionfleet.hs.client_auth import (
    ClientAuthPrivateKey,
    ClientAuthPublicKey,
    parse_auth_private,
)
from onionfleet.hs.descriptor import (
    FlowControl,
    PowParams,
    decode_descriptor,
    parse_descriptor,
    parse_descriptor_unpinned,
)
from onionfleet.hs.errors import (
    ClientAuthError,
    DescriptorDecryptionError,
    DescriptorError,
    DescriptorSignatureError,
    DescriptorTooLarge,
    LegacyIntroPointError,
    TooManyIntroPoints,
)
from onionfleet.hs.intro_point import IntroPoint, LinkSpecifier, recertify_intro_points
from onionfleet.hs.keys import DescSigningKeypair, OnionAddress
from onionfleet.hs.params import CERT_TYPE_HS_IP_CC_SIGNING, CERT_TYPE_HS_IP_V_SIGNING
from onionfleet.hs.timeperiod import TimePeriod

ADDR = OnionAddress(master_key().public_key())
BLINDED = blind_public_key(master_key().public_key(), TP)


def _decode(text: str, **kw: object):  # type: ignore[no-untyped-def]
    return parse_descriptor(text, BLINDED).verify(now=NOW).decrypt(ADDR, now=NOW, **kw)  # type: ignore[arg-type]


def test_round_trip_carries_everything() -> None:
    ips = make_intro_points(5, ipv6=True)
    pow_params = PowParams("v1", b"\x05" * 32, 123, "2026-09-21T10:00:00")
    built = build(intro_points=ips, single_onion_service=True, single_owner_pow_params=pow_params)
    assert built.text.endswith("\n")
    d = _decode(built.text)
    assert d.revision_counter == 42
    assert d.lifetime_min == 180
    assert d.flow_control == FlowControl("1-2", 31)
    assert d.pow_params == pow_params
    assert d.single_onion_service
    assert d.create2_formats == (2,)
    assert not d.client_auth_used and d.auth_client_count == 16
    assert d.blinded_key == BLINDED == built.blinded_key
    assert d.verified.signing_key == built.signing_key
    assert len(d.intro_points) == 5
    for got, want in zip(d.intro_points, ips, strict=True):
        assert got.link_specifiers == want.link_specifiers
        assert (got.onion_key, got.auth_key, got.enc_key, got.enc_key_ed25519) == (
            want.onion_key,
            want.auth_key,
            want.enc_key,
            want.enc_key_ed25519,
        )
        assert got.auth_key_cert is not None and got.auth_key_cert.signing_key == built.signing_key
        assert got.certs_valid_until() == (int(NOW) // 3600 + 54) * 3600
    cert08 = d.verified.signing_key_cert
    assert cert08.expires_at == -(-(int(NOW) + 54 * 3600) // 3600) * 3600


def test_layout_matches_tor() -> None:
    built = build()
    lines = built.text.split("\n")
    assert lines[0] == "hs-descriptor 3"
    assert lines[1] == "descriptor-lifetime 180"
    assert lines[2] == "descriptor-signing-key-cert"
    assert "revision-counter 42" in lines
    assert lines[-2].startswith("signature ") and lines[-1] == ""
    assert "=" not in lines[-2]
    # the superencrypted plaintext is NUL-padded to a multiple of 10,000 (tor, not stem's bug)
    parsed = parse_descriptor(built.text, BLINDED)
    assert (len(parsed.superencrypted_blob) - 16 - 32) % 10_000 == 0
    assert compute_padded_plaintext_length(built.superencrypted_plaintext_size) == (
        len(parsed.superencrypted_blob) - 48
    )
    assert compute_padded_plaintext_length(0) == 0
    assert compute_padded_plaintext_length(10_001) == 20_000


def test_deterministic_given_randomness() -> None:
    assert build(seed=5).text == build(seed=5).text
    assert build(seed=5).text != build(seed=6).text


def test_no_flow_control_no_pow_by_default() -> None:
    d = _decode(build(flow_control=None).text)
    assert d.flow_control is None and d.pow_params is None and not d.single_onion_service


def test_twenty_intro_points_fit_and_twenty_one_do_not() -> None:
    built = build(20, intro_points=make_intro_points(20, ipv6=True))
    assert built.size_bytes < 50_000
    assert len(_decode(built.text).intro_points) == 20
    with pytest.raises(TooManyIntroPoints):
        build(intro_points=make_intro_points(21))
    with pytest.raises(TooManyIntroPoints):
        recertify_intro_points(
            make_intro_points(21), DescSigningKeypair.from_seed(bytes(32)), now=NOW
        )
    with pytest.raises(DescriptorError, match="at least one"):
        build(intro_points=[])


def test_too_large_is_typed() -> None:
    with pytest.raises(DescriptorTooLarge, match="bytes"):
        build(max_size_bytes=14_000)


def test_legacy_intro_points_are_rejected() -> None:
    ip = make_intro_points(1)[0]
    legacy = IntroPoint(
        ip.link_specifiers,
        ip.onion_key,
        ip.auth_key,
        ip.enc_key,
        ip.enc_key_ed25519,
        legacy_key=b"rsa",
    )
    with pytest.raises(LegacyIntroPointError, match="legacy"):
        build(intro_points=[legacy])


def test_recertify_copies_keys_and_makes_new_certs() -> None:
    first = _decode(build().text).intro_points
    signer = DescSigningKeypair.from_seed(b"\x09" * 32)
    again = recertify_intro_points(first, signer, now=NOW + 7200)
    for old, new in zip(first, again, strict=True):
        assert new.link_specifiers == old.link_specifiers
        assert new.auth_key == old.auth_key and new.enc_key_ed25519 == old.enc_key_ed25519
        assert new.auth_key_cert is not None and new.enc_key_cert is not None
        assert new.auth_key_cert.signing_key == signer.public_raw
        assert new.auth_key_cert.cert_type == CERT_TYPE_HS_IP_V_SIGNING
        assert new.enc_key_cert.cert_type == CERT_TYPE_HS_IP_CC_SIGNING
    # a descriptor built from decoded IPs decodes to the same IPs (modulo their certs)
    rebuilt = _decode(build(intro_points=first, seed=9).text).intro_points
    assert rebuilt != first
    assert [ip.without_certs() for ip in rebuilt] == [ip.without_certs() for ip in first]
    assert [ip.without_certs() for ip in first] == make_intro_points(3)


def test_unknown_link_specifier_carried_verbatim() -> None:
    ip = make_intro_points(1)[0]
    odd = IntroPoint.create(
        (*ip.link_specifiers, LinkSpecifier(0x7F, b"future")),
        onion_key=ip.onion_key,
        auth_key=ip.auth_key,
        enc_key=ip.enc_key,
    )
    got = _decode(build(intro_points=[odd]).text).intro_points[0]
    assert got.link_specifiers[-1] == LinkSpecifier(0x7F, b"future")
    assert got.link_specifiers[-1].describe() == "type-127 " + b"future".hex()
    assert got.link_specifiers[0].describe() == "ipv4 10.0.0.1:9000"


def _client(seed: int) -> tuple[ClientAuthPrivateKey, ClientAuthPublicKey]:
    priv = X25519PrivateKey.from_private_bytes(random.Random(seed).randbytes(32))
    raw = priv.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    pub = priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return ClientAuthPrivateKey(raw), ClientAuthPublicKey(pub)


def test_client_authorization() -> None:
    clients = [_client(n) for n in range(3)]
    built = build(authorized_clients=[pub for _, pub in clients])
    assert built.descriptor_cookie is not None
    assert "secret" in repr(built.descriptor_cookie)
    for priv, pub in clients:
        assert priv.public_key() == pub
        d = _decode(built.text, client_key=priv)
        assert d.client_auth_used and d.auth_client_count == 16
        assert len(d.intro_points) == 3
    assert len(_decode(built.text, descriptor_cookie=built.descriptor_cookie).intro_points) == 3
    stranger, _ = _client(99)
    with pytest.raises(ClientAuthError, match="not authorized"):
        _decode(built.text, client_key=stranger)
    with pytest.raises(DescriptorDecryptionError, match="client authorization"):
        _decode(built.text)


def test_seventeen_clients_pad_to_thirty_two_lines() -> None:
    built = build(authorized_clients=[_client(n)[1] for n in range(17)])
    assert _decode(built.text, client_key=_client(16)[0]).auth_client_count == 32


def test_auth_private_file_format() -> None:
    priv, _ = _client(1)
    b32 = base64.b32encode(priv.raw).decode().rstrip("=")
    line = f"{ADDR.without_suffix()}:descriptor:x25519:{b32}\n"
    assert parse_auth_private(line, ADDR) == priv
    other = OnionAddress(master_key(8).public_key())
    with pytest.raises(ClientAuthError, match="not"):
        parse_auth_private(line, other)
    with pytest.raises(ClientAuthError, match="must read"):
        parse_auth_private("garbage")
    with pytest.raises(ClientAuthError, match="base32"):
        parse_auth_private(f"{ADDR.without_suffix()}:descriptor:x25519:!!!")
    assert ClientAuthPublicKey.from_auth_line(
        "descriptor:x25519:" + base64.b32encode(bytes(32)).decode().rstrip("=")
    ) == ClientAuthPublicKey(bytes(32))


def test_wrong_address_or_time_period_fails_typed() -> None:
    built = build()
    with pytest.raises(DescriptorError, match="expected"):
        parse_descriptor(
            built.text, blind_public_key(ADDR.public_key, TimePeriod(TP.number + 1, 1440))
        )
    other = OnionAddress(master_key(8).public_key())
    verified = parse_descriptor_unpinned(built.text).verify(now=NOW)
    with pytest.raises(DescriptorDecryptionError, match="MAC"):
        verified.decrypt(other, now=NOW)


def test_tampering_is_detected() -> None:
    text = build().text
    tampered = text.replace("revision-counter 42", "revision-counter 43")
    with pytest.raises(DescriptorSignatureError):
        parse_descriptor(tampered, BLINDED).verify(now=NOW)
    with pytest.raises(DescriptorSignatureError, match="expired"):
        parse_descriptor(text, BLINDED).verify(now=NOW + 60 * 3600)


def test_expired_intro_point_certs() -> None:
    text = build().text
    verified = parse_descriptor(text, BLINDED).verify(now=NOW)
    with pytest.raises(DescriptorError):
        verified.decrypt(ADDR, now=NOW + 55 * 3600)
    assert verified.decrypt(ADDR, now=NOW + 55 * 3600, dangerously_assume_timely=True)


def test_decode_descriptor_one_call() -> None:
    d = decode_descriptor(build().text, ADDR, expected_blinded_key=BLINDED, now=NOW)
    assert d.size_bytes == len(build().text)


def test_value_validation() -> None:
    with pytest.raises(DescriptorError):
        FlowControl("1-2 x", 31)
    with pytest.raises(DescriptorError):
        FlowControl("1-2", 256)
    with pytest.raises(DescriptorError):
        PowParams("v2", bytes(32), 1, "2026-01-01T00:00:00")
    with pytest.raises(DescriptorError):
        PowParams("v1", bytes(32), 1, "2026-01-01 00:00:00")
    assert PowParams("v1", bytes(32), 1, "1970-01-01T00:01:00").expires_at() == 60
    with pytest.raises(DescriptorError):
        build(revision_counter=-1)
    with pytest.raises(DescriptorError):
        build(lifetime_min=721)


def test_token_bytes_helper_is_deterministic() -> None:
    assert token_bytes(3)(8) == token_bytes(3)(8)
