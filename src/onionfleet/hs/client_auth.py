"""Client authorization ("restricted discovery") in the superencrypted layer.

rend-spec-v3 [CLIENT-AUTH], [HS-DESC-SECOND-LAYER]; tor ``hs_descriptor.c``
``hs_desc_build_authorized_client()``, ``decrypt_descriptor_cookie()``.

For each client: ``SECRET_SEED = x25519(KS_hs_desc_ephem, KP_hsc_desc_enc)``,
``KEYS = SHAKE-256(N_hs_subcred | SECRET_SEED, 40)``, ``CLIENT-ID = KEYS[:8]``,
``COOKIE-KEY = KEYS[8:40]``, a 16-byte cookie,
``encrypted-cookie = AES-256-CTR(COOKIE-KEY, iv) ⊕ descriptor_cookie``.
Lines are padded with fakes to a multiple of 16 (``HS_DESC_AUTH_CLIENT_MULTIPLE``); with auth off,
16 fake lines.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from onionfleet.hs._layer_crypto import aes256_ctr
from onionfleet.hs.errors import AddressError, ClientAuthError
from onionfleet.hs.keys import OnionAddress, TokenBytes
from onionfleet.hs.params import (
    HS_DESC_AUTH_CLIENT_MULTIPLE,
    HS_DESC_CLIENT_ID_LEN,
    HS_DESC_COOKIE_KEY_LEN,
    HS_DESC_COOKIE_LEN,
)

__all__ = [
    "AuthClientEntry",
    "ClientAuthPrivateKey",
    "ClientAuthPublicKey",
    "DescriptorCookie",
    "build_auth_client_entries",
    "find_descriptor_cookie",
    "parse_auth_private",
]


@dataclass(frozen=True, slots=True)
class ClientAuthPublicKey:
    """``KP_hsc_desc_enc``: a client's x25519 public key (tor ``authorized_clients/*.auth``)."""

    raw: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.raw, bytes) or len(self.raw) != 32:
            raise ClientAuthError("a client authorization public key is 32 bytes")

    @classmethod
    def from_auth_line(cls, line: str) -> ClientAuthPublicKey:
        """Parse tor's ``descriptor:x25519:<base32 key>`` (an ``authorized_clients/*.auth``
        file)."""
        parts = line.strip().split(":")
        if len(parts) != 3 or parts[0] != "descriptor" or parts[1] != "x25519":
            raise ClientAuthError(
                "a client .auth line must read 'descriptor:x25519:<base32 public key>'"
            )
        return cls(_b32_key(parts[2], "client public key"))


@dataclass(frozen=True, slots=True)
class ClientAuthPrivateKey:
    """``KS_hsc_desc_enc``: a client's x25519 private key. Repr hides the bytes."""

    raw: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.raw, bytes) or len(self.raw) != 32:
            raise ClientAuthError("a client authorization private key is 32 bytes")

    def __repr__(self) -> str:
        return "ClientAuthPrivateKey(<secret>)"

    def public_key(self) -> ClientAuthPublicKey:
        pub = X25519PrivateKey.from_private_bytes(self.raw).public_key()
        return ClientAuthPublicKey(pub.public_bytes(Encoding.Raw, PublicFormat.Raw))


@dataclass(frozen=True, slots=True)
class DescriptorCookie:
    """The 16-byte ``descriptor_cookie`` that keys the inner layer under client auth. Repr hides
    it."""

    raw: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.raw, bytes) or len(self.raw) != HS_DESC_COOKIE_LEN:
            raise ClientAuthError(f"a descriptor cookie is {HS_DESC_COOKIE_LEN} bytes")

    def __repr__(self) -> str:
        return "DescriptorCookie(<secret>)"


@dataclass(frozen=True, slots=True)
class AuthClientEntry:
    """One ``auth-client <client-id> <iv> <encrypted-cookie>`` line."""

    client_id: bytes
    iv: bytes
    encrypted_cookie: bytes

    def encode(self) -> str:
        def nopad(b: bytes) -> str:
            return base64.b64encode(b).decode("ascii").rstrip("=")

        return (
            f"auth-client {nopad(self.client_id)} {nopad(self.iv)} {nopad(self.encrypted_cookie)}"
        )


def _b32_key(text: str, what: str) -> bytes:
    s = text.strip().upper()
    s += "=" * (-len(s) % 8)
    try:
        raw = base64.b32decode(s)
    except (binascii.Error, ValueError) as exc:
        raise ClientAuthError(f"{what} is not valid base32") from exc
    if len(raw) != 32:
        raise ClientAuthError(f"{what} must decode to 32 bytes, got {len(raw)}")
    return raw


def parse_auth_private(text: str, address: OnionAddress | None = None) -> ClientAuthPrivateKey:
    """Parse tor's ClientOnionAuthDir file: ``<addr-without-.onion>:descriptor:x25519:<base32>``.

    If ``address`` is given, the file must be for that service.
    """
    line = text.strip()
    parts = line.split(":")
    if len(parts) != 4 or parts[1] != "descriptor" or parts[2] != "x25519":
        raise ClientAuthError(
            "a .auth_private file must read "
            "'<onion-address>:descriptor:x25519:<base32 private key>'"
        )
    try:
        file_address = OnionAddress.parse(parts[0])
    except AddressError as exc:
        raise ClientAuthError(f"the .auth_private file names a bad onion address: {exc}") from exc
    if address is not None and file_address != address:
        raise ClientAuthError(
            f"the .auth_private file is for {file_address.redacted()}, not {address.redacted()}"
        )
    return ClientAuthPrivateKey(_b32_key(parts[3], "client private key"))


def _client_keys(subcredential: bytes, secret_seed: bytes) -> tuple[bytes, bytes]:
    keys = hashlib.shake_256(subcredential + secret_seed).digest(
        HS_DESC_CLIENT_ID_LEN + HS_DESC_COOKIE_KEY_LEN
    )
    return keys[:HS_DESC_CLIENT_ID_LEN], keys[HS_DESC_CLIENT_ID_LEN:]


def _fake_entry(token_bytes: TokenBytes) -> AuthClientEntry:
    return AuthClientEntry(token_bytes(8), token_bytes(16), token_bytes(HS_DESC_COOKIE_LEN))


def build_auth_client_entries(
    *,
    clients: Sequence[ClientAuthPublicKey],
    subcredential: bytes,
    ephemeral_private: bytes,
    cookie: DescriptorCookie | None,
    token_bytes: TokenBytes,
) -> list[AuthClientEntry]:
    """Real entries for ``clients`` plus fakes up to a multiple of 16, in random order
    (tor ``build_service_desc_superencrypted`` shuffles them)."""
    entries: list[AuthClientEntry] = []
    if clients:
        if cookie is None:
            raise ClientAuthError("client authorization needs a descriptor cookie")
        eph = X25519PrivateKey.from_private_bytes(ephemeral_private)
        for client in clients:
            seed = eph.exchange(X25519PublicKey.from_public_bytes(client.raw))
            client_id, cookie_key = _client_keys(subcredential, seed)
            iv = token_bytes(16)
            entries.append(AuthClientEntry(client_id, iv, aes256_ctr(cookie_key, iv, cookie.raw)))
    target = max(
        HS_DESC_AUTH_CLIENT_MULTIPLE,
        -(-len(entries) // HS_DESC_AUTH_CLIENT_MULTIPLE) * HS_DESC_AUTH_CLIENT_MULTIPLE,
    )
    while len(entries) < target:
        entries.append(_fake_entry(token_bytes))
    # Order by a fresh random key so real entries are not first (tor smartlist_shuffle).
    keys = {id(e): token_bytes(8) for e in entries}
    entries.sort(key=lambda e: keys[id(e)])
    return entries


def find_descriptor_cookie(
    *,
    entries: Sequence[AuthClientEntry],
    client_key: ClientAuthPrivateKey,
    ephemeral_public: bytes,
    subcredential: bytes,
) -> DescriptorCookie | None:
    """The cookie for ``client_key`` (tor ``decrypt_descriptor_cookie``), or None if not listed."""
    try:
        eph = X25519PublicKey.from_public_bytes(ephemeral_public)
        seed = X25519PrivateKey.from_private_bytes(client_key.raw).exchange(eph)
    except ValueError as exc:
        raise ClientAuthError("desc-auth-ephemeral-key is not a usable x25519 key") from exc
    client_id, cookie_key = _client_keys(subcredential, seed)
    for entry in entries:
        if entry.client_id == client_id:
            return DescriptorCookie(aes256_ctr(cookie_key, entry.iv, entry.encrypted_cookie))
    return None
