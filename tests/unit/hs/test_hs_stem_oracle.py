"""stem (test-only oracle) parses, validates and decrypts our descriptors; we decode stem's;
blinded keys and blinded signatures are byte-identical to stem's."""

from __future__ import annotations

import base64
import random
import time

import pytest
import stem.descriptor.hidden_service as hidden_service
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hs_factory import TP, build, make_intro_points, master_key
from stem.client.datatype import LinkByIPv4
from stem.descriptor.hidden_service import HiddenServiceDescriptorV3

from onionfleet.hs.blinding import blind_public_key, blind_secret_key, blinding_factor
from onionfleet.hs.descriptor import parse_descriptor
from onionfleet.hs.keys import OnionAddress, master_key_from_seed
from onionfleet.hs.timeperiod import TimePeriod


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_blinding_is_byte_identical_to_stem(seed: int) -> None:
    raw_seed = random.Random(seed).randbytes(32)
    ours = master_key_from_seed(raw_seed)
    priv = Ed25519PrivateKey.from_private_bytes(raw_seed)
    pub = priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert ours.public_key().raw == pub
    for tp in (TimePeriod(20_000 + seed, 1440), TimePeriod(7_400_000 + seed, 4)):
        h = blinding_factor(ours.public_key(), tp)  # stem calls this "blinding_nonce"
        stem_blinded = hidden_service._blinded_pubkey(pub, h)
        assert blind_public_key(ours.public_key(), tp).raw == stem_blinded
        msg = b"descriptor-signing-key-cert body"
        assert blind_secret_key(ours, tp).sign(msg) == hidden_service._blinded_sign(
            msg, priv, stem_blinded, h
        )
    assert str(
        OnionAddress(ours.public_key())
    ) == HiddenServiceDescriptorV3.address_from_identity_key(pub)


@pytest.mark.parametrize("n_ips", [1, 3, 20])
def test_stem_parses_validates_and_decrypts_ours(n_ips: int) -> None:
    ips = make_intro_points(n_ips, ipv6=True)
    built = build(intro_points=ips)
    desc = HiddenServiceDescriptorV3.from_str(built.text, validate=True)
    assert desc.revision_counter == 42
    assert desc.lifetime == 180
    address = str(OnionAddress(master_key().public_key()))
    inner = desc.decrypt(address)
    assert len(inner.introduction_points) == n_ips
    for stem_ip, ours in zip(inner.introduction_points, ips, strict=True):
        assert stem_ip.onion_key_raw == base64.b64encode(ours.onion_key).decode()
        assert [type(ls).__name__ for ls in stem_ip.link_specifiers] == [
            "LinkByIPv4",
            "LinkByFingerprint",
            "LinkByEd25519",
            "LinkByIPv6",
        ]
        assert (
            stem_ip.link_specifiers[0].address
            == ours.link_specifiers[0].describe()[5:].split(":")[0]
        )
    assert "flow-control 1-2 31" in inner.get_unrecognized_lines()


def test_we_decode_stem_made_descriptors() -> None:
    raw_seed = random.Random(11).randbytes(32)
    priv = Ed25519PrivateKey.from_private_bytes(raw_seed)
    ours = master_key_from_seed(raw_seed)
    tp = TP
    h = blinding_factor(ours.public_key(), tp)
    signing = Ed25519PrivateKey.from_private_bytes(random.Random(12).randbytes(32))
    ips = [
        # create_for_address drops its signing_key argument (stem 1.8.2 bug), so go one level down
        hidden_service.IntroductionPointV3.create_for_link_specifiers(
            [LinkByIPv4("1.2.3.4", 9001)], signing_key=signing
        )
        for _ in range(4)
    ]
    text = HiddenServiceDescriptorV3.content(
        inner_layer=hidden_service.InnerLayer.create(introduction_points=ips),
        identity_key=priv,
        signing_key=signing,
        blinding_nonce=h,
        revision_counter=777,
    ).decode()
    address = OnionAddress(ours.public_key())
    # stem's certs carry a datetime.utcnow() based expiry: verify against the real clock
    now = time.time()
    d = (
        parse_descriptor(text, blind_public_key(ours.public_key(), tp))
        .verify(now=now)
        .decrypt(address, now=now)
    )
    assert d.revision_counter == 777
    assert len(d.intro_points) == 4
    assert d.intro_points[0].link_specifiers[0].describe() == "ipv4 1.2.3.4:9001"
