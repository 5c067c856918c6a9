"""Key blinding, credential and subcredential (rend-spec-v3 [KEYBLIND], [SUBCRED]).

tor: ``hs_common.c:build_blinded_key_param()``, ``hs_build_blinded_pubkey()``,
``hs_build_blinded_keypair()``, ``build_hs_subcredential()``; the arithmetic is
``ed25519_donna_tor.c:ed25519_donna_blind_public_key()`` / ``_blind_secret_key()``.

``h = H(BLIND_STRING | A | s | B | N)`` with ``BLIND_STRING = "Derive temporary signing key\\0"``,
``s`` empty (tor passes no secret), ``B`` the base point as a decimal string and
``N = "key-blind" | INT_8(period_number) | INT_8(period_length)``. The factor is clamped like an
ed25519 secret scalar, then ``A' = h·A`` and ``a' = h·a mod ℓ``;
``prefix' = SHA512("Derive temporary signing key hash input" | prefix)[:32]``.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import nacl.bindings
import nacl.exceptions

from onionfleet.hs.errors import BlindingError
from onionfleet.hs.keys import (
    BlindedPublicKey,
    BlindedSecretKey,
    HsIdExpandedSecretKey,
    HsIdPublicKey,
)
from onionfleet.hs.params import (
    HS_BLIND_PREFIX_STRING,
    HS_CREDENTIAL_PREFIX,
    HS_ED25519_BASEPOINT,
    HS_KEYBLIND_NONCE_PREFIX,
    HS_KEYBLIND_STRING,
    HS_SUBCREDENTIAL_PREFIX,
)
from onionfleet.hs.timeperiod import TimePeriod

__all__ = [
    "Credential",
    "Subcredential",
    "blind_public_key",
    "blind_secret_key",
    "blinding_factor",
    "credential",
    "subcredential",
    "subcredential_for",
]

_L = 2**252 + 27742317777372353535851937790883648493


def blinding_factor(public_key: HsIdPublicKey, tp: TimePeriod) -> bytes:
    """The unclamped factor ``h`` (tor ``build_blinded_key_param``; stem calls it
    ``blinding_nonce``)."""
    nonce = HS_KEYBLIND_NONCE_PREFIX + struct.pack(">QQ", tp.number, tp.length_min)
    return hashlib.sha3_256(
        HS_KEYBLIND_STRING + public_key.raw + HS_ED25519_BASEPOINT + nonce
    ).digest()


def _clamp(h: bytes) -> bytes:
    b = bytearray(h)
    b[0] &= 248
    b[31] &= 63
    b[31] |= 64
    return bytes(b)


def blind_public_key(public_key: HsIdPublicKey, tp: TimePeriod) -> BlindedPublicKey:
    """``A' = clamp(h)·A`` (tor ``hs_build_blinded_pubkey``)."""
    h = _clamp(blinding_factor(public_key, tp))
    try:
        raw = nacl.bindings.crypto_scalarmult_ed25519_noclamp(h, public_key.raw)
    except (nacl.exceptions.RuntimeError, ValueError, TypeError) as exc:
        raise BlindingError(
            f"cannot blind public key {public_key.b64()}: not a valid ed25519 point of prime order"
        ) from exc
    return BlindedPublicKey(raw)


def blind_secret_key(secret_key: HsIdExpandedSecretKey, tp: TimePeriod) -> BlindedSecretKey:
    """``(a', prefix')`` and ``A'`` for one time period (tor ``hs_build_blinded_keypair``)."""
    public = secret_key.public_key()
    h = int.from_bytes(_clamp(blinding_factor(public, tp)), "little")
    a = int.from_bytes(secret_key.scalar, "little")
    blinded_scalar = ((a * h) % _L).to_bytes(32, "little")
    prefix = hashlib.sha512(HS_BLIND_PREFIX_STRING + secret_key.prefix).digest()[:32]
    try:
        blinded_pub = nacl.bindings.crypto_scalarmult_ed25519_base_noclamp(blinded_scalar)
    except (nacl.exceptions.RuntimeError, ValueError, TypeError) as exc:  # pragma: no cover
        raise BlindingError("blinding produced the zero scalar; use another master key") from exc
    return BlindedSecretKey(blinded_scalar + prefix, BlindedPublicKey(blinded_pub))


@dataclass(frozen=True, slots=True)
class Credential:
    """``N_hs_cred = H("credential" | KP_hs_id)`` (rend-spec-v3 [SUBCRED]). Secret-ish: repr
    hides."""

    raw: bytes

    def __repr__(self) -> str:
        return "Credential(<hidden>)"


@dataclass(frozen=True, slots=True)
class Subcredential:
    """``N_hs_subcred = H("subcredential" | N_hs_cred | KP_hs_blind_id)`` (rend-spec-v3
    [SUBCRED])."""

    raw: bytes

    def __repr__(self) -> str:
        return "Subcredential(<hidden>)"


def credential(public_key: HsIdPublicKey) -> Credential:
    return Credential(hashlib.sha3_256(HS_CREDENTIAL_PREFIX + public_key.raw).digest())


def subcredential(cred: Credential, blinded: BlindedPublicKey) -> Subcredential:
    """tor ``build_hs_subcredential``."""
    return Subcredential(
        hashlib.sha3_256(HS_SUBCREDENTIAL_PREFIX + cred.raw + blinded.raw).digest()
    )


def subcredential_for(public_key: HsIdPublicKey, blinded: BlindedPublicKey) -> Subcredential:
    return subcredential(credential(public_key), blinded)
