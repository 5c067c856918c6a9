"""New secrets for a cluster: the cluster token and WireGuard keys. Randomness is injected.

* The cluster token is 32 random bytes as unpadded URL-safe base64 (43 characters). The peer
  protocol derives its MAC key from the token's text with HKDF (cluster/auth.py), so the token is
  only ever a high-entropy shared string.
* WireGuard keys are X25519 keys written the way ``wg genkey``/``wg pubkey`` write them: standard
  base64 of the 32 raw bytes, the private key clamped as ``wg genkey`` clamps it
  (wireguard-tools ``curve25519_clamp_secret``).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from onionfleet.provision.errors import ProvisionError

__all__ = [
    "TOKEN_BYTES",
    "TokenBytes",
    "WireGuardKeypair",
    "generate_cluster_id",
    "generate_cluster_token",
    "generate_wireguard_keypair",
    "parse_wireguard_key",
    "wireguard_keypair_from_private",
]

TokenBytes = Callable[[int], bytes]

TOKEN_BYTES: Final = 32
_WG_KEY_B64 = re.compile(r"[A-Za-z0-9+/]{43}=\Z")


def generate_cluster_token(token_bytes: TokenBytes) -> str:
    """32 random bytes as unpadded URL-safe base64 (the content of the cluster token file)."""
    raw = token_bytes(TOKEN_BYTES)
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def generate_cluster_id(token_bytes: TokenBytes) -> str:
    """A random, non-secret cluster id (16 bytes, hex) so operators can tell clusters apart."""
    return token_bytes(16).hex()


@dataclass(frozen=True, slots=True)
class WireGuardKeypair:
    """A WireGuard X25519 keypair in ``wg``'s base64 form. The repr hides the private key."""

    private_b64: str = field(repr=False)
    public_b64: str

    def __repr__(self) -> str:
        return f"WireGuardKeypair(<private>, public={self.public_b64})"


def _clamp(raw: bytes) -> bytes:
    b = bytearray(raw)
    b[0] &= 248
    b[31] = (b[31] & 127) | 64
    return bytes(b)


def wireguard_keypair_from_private(private_raw: bytes) -> WireGuardKeypair:
    """The keypair for 32 private-key bytes (clamped as ``wg genkey`` does)."""
    if len(private_raw) != 32:
        raise ProvisionError("a WireGuard private key is 32 bytes")
    clamped = _clamp(private_raw)
    public_raw = (
        X25519PrivateKey.from_private_bytes(clamped)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return WireGuardKeypair(
        base64.b64encode(clamped).decode("ascii"), base64.b64encode(public_raw).decode("ascii")
    )


def generate_wireguard_keypair(token_bytes: TokenBytes) -> WireGuardKeypair:
    """A new WireGuard keypair from injected randomness (``wg genkey | wg pubkey``)."""
    return wireguard_keypair_from_private(token_bytes(32))


def parse_wireguard_key(text: str, what: str) -> bytes:
    """Decode a ``wg``-style base64 key (44 characters) to its 32 bytes."""
    s = text.strip()
    if not _WG_KEY_B64.match(s):
        raise ProvisionError(f"{what} is not a WireGuard key (44 base64 characters ending '=')")
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProvisionError(f"{what} is not valid base64") from exc
    if len(raw) != 32:
        raise ProvisionError(f"{what} does not decode to 32 bytes")
    return raw
