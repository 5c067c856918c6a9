"""Cluster tokens and WireGuard keys (RFC 7748 known answer; wg's clamping)."""

from __future__ import annotations

import base64
import random

import pytest

from onionfleet.cluster.auth import ClusterToken
from onionfleet.provision.errors import ProvisionError
from onionfleet.provision.secrets_gen import (
    generate_cluster_id,
    generate_cluster_token,
    generate_wireguard_keypair,
    parse_wireguard_key,
    wireguard_keypair_from_private,
)


def test_token_is_32_random_bytes_urlsafe() -> None:
    token = generate_cluster_token(random.Random(1).randbytes)
    assert len(token) == 43
    assert base64.urlsafe_b64decode(token + "=") == random.Random(1).randbytes(32)
    assert token != generate_cluster_token(random.Random(2).randbytes)
    ClusterToken.from_text(token).derive_mac_key()  # the peer protocol accepts it


def test_cluster_id_is_hex() -> None:
    cid = generate_cluster_id(random.Random(3).randbytes)
    assert len(cid) == 32 and int(cid, 16) >= 0


def test_rfc7748_x25519_vector() -> None:
    """RFC 7748 section 6.1: Alice's private key and public key."""
    priv = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    pub = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    kp = wireguard_keypair_from_private(priv)
    assert base64.b64decode(kp.public_b64) == pub
    clamped = base64.b64decode(kp.private_b64)
    assert clamped[0] & 7 == 0 and clamped[31] & 128 == 0 and clamped[31] & 64


def test_keypair_repr_hides_private_key() -> None:
    kp = generate_wireguard_keypair(random.Random(4).randbytes)
    assert kp.private_b64 not in repr(kp)
    assert kp.public_b64 in repr(kp)
    assert len(parse_wireguard_key(kp.private_b64, "k")) == 32


@pytest.mark.parametrize("bad", ["", "abc", "A" * 44, "!" * 43 + "="])
def test_parse_wireguard_key_rejects(bad: str) -> None:
    with pytest.raises(ProvisionError):
        parse_wireguard_key(bad, "key")
