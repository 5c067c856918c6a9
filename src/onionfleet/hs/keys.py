"""Key types of a v3 onion service, one per role, and tor's key files.

Spec vocabulary (rend-spec-v3 [NAMING-KEYS]): ``KP_hs_id`` (:class:`HsIdPublicKey`), ``KS_hs_id`` in
tor's expanded form (:class:`HsIdExpandedSecretKey`), ``KP_hs_blind_id``
(:class:`BlindedPublicKey`),
``KS_hs_blind_id`` (:class:`BlindedSecretKey`), ``KP/KS_hs_desc_sign``
(:class:`DescSigningKeypair`).

The only I/O in ``onionfleet.hs`` lives here: thin functions that read and write tor's
``hs_ed25519_secret_key`` / ``hs_ed25519_public_key`` files (tor
``crypto_write_tagged_contents_to_file``: a 32-byte NUL-padded tag, then the key).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nacl.bindings
import nacl.exceptions
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from onionfleet.hs.errors import AddressError, KeyFileError, KeyFilePermissionError
from onionfleet.hs.params import (
    HS_KEY_FILE_HEADER_LEN,
    HS_ONION_CHECKSUM_PREFIX,
    HS_ONION_VERSION,
    HS_PUBLIC_KEY_FILE_TAG,
    HS_SECRET_KEY_FILE_TAG,
)

__all__ = [
    "BlindedPublicKey",
    "BlindedSecretKey",
    "DescSigningKeypair",
    "HsIdExpandedSecretKey",
    "HsIdPublicKey",
    "OnionAddress",
    "TokenBytes",
    "ed25519_verify",
    "encode_public_key_file",
    "encode_secret_key_file",
    "generate_master_key",
    "load_public_key_file",
    "load_secret_key_file",
    "master_key_from_seed",
    "parse_public_key_file",
    "parse_secret_key_file",
    "save_public_key_file",
    "save_secret_key_file",
    "sign_with_expanded_key",
]

#: An injected source of random bytes (``secrets.token_bytes`` in adapters, a seeded one in tests).
TokenBytes = Callable[[int], bytes]

_L = 2**252 + 27742317777372353535851937790883648493  # order of the ed25519 base point


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def _check_len(raw: bytes, n: int, what: str) -> None:
    if not isinstance(raw, bytes) or len(raw) != n:
        raise ValueError(f"{what} must be {n} bytes")


@dataclass(frozen=True, slots=True)
class HsIdPublicKey:
    """``KP_hs_id``: the service's master ed25519 public key (32 bytes; rend-spec-v3
    [NAMING-KEYS])."""

    raw: bytes

    def __post_init__(self) -> None:
        _check_len(self.raw, 32, "KP_hs_id")

    def b64(self) -> str:
        return _b64(self.raw)

    def address(self) -> OnionAddress:
        return OnionAddress(self)


@dataclass(frozen=True, slots=True)
class HsIdExpandedSecretKey:
    """``KS_hs_id`` in tor's expanded form: 64 bytes ``a ‖ prefix`` (tor ``ed25519_secret_key_t``).

    ``a`` is the clamped scalar, ``prefix`` the nonce-derivation half of ``SHA512(seed)``. The repr
    hides
    the bytes. Made by :func:`master_key_from_seed` or read by :func:`load_secret_key_file`.
    """

    raw: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_len(self.raw, 64, "KS_hs_id (expanded)")

    def __repr__(self) -> str:
        return "HsIdExpandedSecretKey(<secret>)"

    @property
    def scalar(self) -> bytes:
        return self.raw[:32]

    @property
    def prefix(self) -> bytes:
        return self.raw[32:]

    def public_key(self) -> HsIdPublicKey:
        """``A = a·B`` (tor ``ed25519_public_key_generate``)."""
        try:
            pub = nacl.bindings.crypto_scalarmult_ed25519_base_noclamp(self.scalar)
        except (nacl.exceptions.RuntimeError, ValueError, TypeError) as exc:
            raise KeyFileError(
                "the secret key is not a usable ed25519 key (scalar is zero or invalid); "
                "restore hs_ed25519_secret_key from a backup"
            ) from exc
        return HsIdPublicKey(pub)

    def sign(self, message: bytes) -> bytes:
        """An ed25519 signature with the expanded key (tor ``ed25519_sign``)."""
        return sign_with_expanded_key(self.scalar, self.prefix, self.public_key().raw, message)


@dataclass(frozen=True, slots=True)
class BlindedPublicKey:
    """``KP_hs_blind_id`` (``A'``): the master key blinded for one time period (rend-spec-v3
    [KEYBLIND])."""

    raw: bytes

    def __post_init__(self) -> None:
        _check_len(self.raw, 32, "KP_hs_blind_id")

    def b64(self) -> str:
        """Base64 without padding, as tor logs and ``HS_DESC`` events show it."""
        return _b64(self.raw)

    def verify(self, signature: bytes, message: bytes) -> bool:
        return ed25519_verify(self.raw, signature, message)


@dataclass(frozen=True, slots=True)
class BlindedSecretKey:
    """``KS_hs_blind_id``: 64 bytes ``a' ‖ prefix'`` (tor ``ed25519_keypair_blind``). Repr hides
    bytes."""

    raw: bytes = field(repr=False)
    public: BlindedPublicKey

    def __post_init__(self) -> None:
        _check_len(self.raw, 64, "KS_hs_blind_id")

    def __repr__(self) -> str:
        return f"BlindedSecretKey(<secret>, public={self.public.b64()})"

    def sign(self, message: bytes) -> bytes:
        """An ed25519 signature verifiable under ``A'`` (tor ``ed25519_sign`` on the blinded
        keypair)."""
        return sign_with_expanded_key(self.raw[:32], self.raw[32:], self.public.raw, message)


@dataclass(frozen=True, slots=True)
class DescSigningKeypair:
    """``KP_hs_desc_sign``/``KS_hs_desc_sign``: a fresh key per descriptor (rend-spec-v3
    [DESC-OUTER]).

    Signs the descriptor and the intro points' 09/0B certs; certified by a type-08 cert from the
    blinded key. ``secret`` is libsodium's 64-byte ``seed ‖ public`` form (signing through
    libsodium is ~3x faster than through ``cryptography``). The repr hides the secret.
    """

    secret: bytes = field(repr=False)
    public_raw: bytes

    def __post_init__(self) -> None:
        _check_len(self.secret, 64, "descriptor-signing secret key")
        _check_len(self.public_raw, 32, "descriptor-signing public key")

    @classmethod
    def from_seed(cls, seed: bytes) -> DescSigningKeypair:
        _check_len(seed, 32, "descriptor-signing key seed")
        public_raw, secret = nacl.bindings.crypto_sign_seed_keypair(seed)
        return cls(secret, public_raw)

    @classmethod
    def generate(cls, token_bytes: TokenBytes) -> DescSigningKeypair:
        return cls.from_seed(token_bytes(32))

    def __repr__(self) -> str:
        return f"DescSigningKeypair(<secret>, public={_b64(self.public_raw)})"

    def sign(self, message: bytes) -> bytes:
        """A standard (RFC 8032) ed25519 signature."""
        signed: bytes = nacl.bindings.crypto_sign(message, self.secret)
        return signed[:64]


def ed25519_verify(public_raw: bytes, signature: bytes, message: bytes) -> bool:
    """True if ``signature`` is a valid ed25519 signature of ``message`` under ``public_raw``."""
    if len(public_raw) != 32 or len(signature) != 64:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def sign_with_expanded_key(
    scalar: bytes, prefix: bytes, public_raw: bytes, message: bytes
) -> bytes:
    """RFC 8032 signing from an expanded secret ``(a, prefix)`` (tor ``ed25519_donna_sign``).

    ``r = SHA512(prefix ‖ M) mod ℓ``, ``R = r·B``, ``S = r + SHA512(R ‖ A ‖ M)·a mod ℓ``. Works for
    the master key and for blinded keys, whose scalar is not clamped.
    """
    r = int.from_bytes(hashlib.sha512(prefix + message).digest(), "little") % _L
    r_bytes = r.to_bytes(32, "little")
    big_r = nacl.bindings.crypto_scalarmult_ed25519_base_noclamp(r_bytes)
    k = int.from_bytes(hashlib.sha512(big_r + public_raw + message).digest(), "little")
    a = int.from_bytes(scalar, "little")
    s = (r + k * a) % _L
    return big_r + s.to_bytes(32, "little")


def master_key_from_seed(seed: bytes) -> HsIdExpandedSecretKey:
    """Expand a 32-byte seed as tor does (``ed25519_secret_key_from_seed``: SHA512, then clamp)."""
    _check_len(seed, 32, "master key seed")
    h = bytearray(hashlib.sha512(seed).digest())
    h[0] &= 248
    h[31] &= 63
    h[31] |= 64
    return HsIdExpandedSecretKey(bytes(h))


def generate_master_key(token_bytes: TokenBytes) -> HsIdExpandedSecretKey:
    """A new master identity key from injected randomness."""
    return master_key_from_seed(token_bytes(32))


# --- onion addresses ---------------------------------------------------------------------------

_ONION_SUFFIX = ".onion"
_ADDR_LEN = 56
_BASE32_ADDR = re.compile(r"[a-z2-7]{56}\Z")


@dataclass(frozen=True, slots=True)
class OnionAddress:
    """A v3 onion address (rend-spec-v3 [ONIONADDRESS]).

    ``onion_address = base32(PUBKEY | CHECKSUM | VERSION) + ".onion"``,
    ``CHECKSUM = H(".onion checksum" | PUBKEY | VERSION)[:2]``, ``VERSION = 3``.
    ``str()`` gives the full address; :meth:`redacted` the log form (``???`` + last 3 characters).
    """

    public_key: HsIdPublicKey

    @classmethod
    def parse(cls, text: str) -> OnionAddress:
        """Parse ``<56 chars>.onion`` (or the bare 56 characters tor's control port uses).

        Errors, checked in this order: not an onion domain, unsupported version, wrong checksum.
        """
        if not isinstance(text, str):
            raise AddressError("an onion address must be text")
        s = text.strip().lower()
        if s.endswith(_ONION_SUFFIX):
            s = s[: -len(_ONION_SUFFIX)]
        if "." in s:
            s = s.rsplit(".", 1)[1]  # subdomains are allowed in front of the address
        if len(s) != _ADDR_LEN or not s.isascii():
            raise AddressError(
                f"not a v3 onion address: {_redact(text)!r} (expected 56 base32 characters "
                "followed by .onion)"
            )
        if not _BASE32_ADDR.match(s):
            raise AddressError(
                f"not a v3 onion address: {_redact(text)!r} contains characters outside base32"
            )
        decoded = base64.b32decode(s.upper())
        pubkey, checksum, version = decoded[:32], decoded[32:34], decoded[34]
        if version != HS_ONION_VERSION:
            raise AddressError(
                f"unsupported onion address version {version} in {_redact(text)!r}: only v3 exists"
            )
        if checksum != _checksum(pubkey):
            raise AddressError(
                f"wrong checksum in onion address {_redact(text)!r}: it is mistyped or truncated"
            )
        return cls(HsIdPublicKey(pubkey))

    def __str__(self) -> str:
        return self.without_suffix() + _ONION_SUFFIX

    def without_suffix(self) -> str:
        """The 56 characters tor's control port wants (HSPOST ``HSADDRESS=``, GETINFO)."""
        pk = self.public_key.raw
        raw = pk + _checksum(pk) + bytes([HS_ONION_VERSION])
        return base64.b32encode(raw).decode("ascii").lower()

    def redacted(self) -> str:
        return "???" + self.without_suffix()[-3:] + _ONION_SUFFIX


def _checksum(pubkey: bytes) -> bytes:
    return hashlib.sha3_256(HS_ONION_CHECKSUM_PREFIX + pubkey + bytes([HS_ONION_VERSION])).digest()[
        :2
    ]


def _redact(text: str) -> str:
    text = str(text)
    return "???" + text[-9:] if len(text) > 12 else text


# --- tor key files -----------------------------------------------------------------------------


def _header(tag: bytes) -> bytes:
    return tag.ljust(HS_KEY_FILE_HEADER_LEN, b"\x00")


def _parse_tagged(content: bytes, tag: bytes, body_len: int, name: str) -> bytes:
    """tor ``crypto_read_tagged_contents_from_file``: 32-byte tag, then exactly ``body_len``
    bytes."""
    expected = HS_KEY_FILE_HEADER_LEN + body_len
    if len(content) != expected:
        raise KeyFileError(
            f"{name}: wrong size {len(content)} bytes (a tor key file of this kind has "
            f"{expected}); "
            "is it the right file?"
        )
    if content[:HS_KEY_FILE_HEADER_LEN] != _header(tag):
        raise KeyFileError(
            f"{name}: header is not {tag.decode()!r}; this is not a tor v3 onion-service key file"
        )
    return content[HS_KEY_FILE_HEADER_LEN:]


def parse_secret_key_file(
    content: bytes, name: str = "hs_ed25519_secret_key"
) -> HsIdExpandedSecretKey:
    """Decode the bytes of an ``hs_ed25519_secret_key`` file (no I/O)."""
    body = _parse_tagged(content, HS_SECRET_KEY_FILE_TAG, 64, name)
    key = HsIdExpandedSecretKey(body)
    a = body[0]
    if a & 7 or not body[31] & 64 or body[31] & 128:
        raise KeyFileError(f"{name}: the secret scalar is not clamped; the file is corrupt")
    key.public_key()
    return key


def parse_public_key_file(content: bytes, name: str = "hs_ed25519_public_key") -> HsIdPublicKey:
    """Decode the bytes of an ``hs_ed25519_public_key`` file (no I/O)."""
    return HsIdPublicKey(_parse_tagged(content, HS_PUBLIC_KEY_FILE_TAG, 32, name))


def encode_secret_key_file(key: HsIdExpandedSecretKey) -> bytes:
    return _header(HS_SECRET_KEY_FILE_TAG) + key.raw


def encode_public_key_file(key: HsIdPublicKey) -> bytes:
    return _header(HS_PUBLIC_KEY_FILE_TAG) + key.raw


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror or exc}") from exc


def load_secret_key_file(path: str | os.PathLike[str]) -> HsIdExpandedSecretKey:
    """Read tor's ``hs_ed25519_secret_key``; refuse it if group or others may read or write it."""
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {p}: {exc.strerror or exc}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFilePermissionError(
            f"secret key file {p} is accessible by group or others (mode {stat.S_IMODE(mode):o}); "
            f"fix: chmod 600 {p}"
        )
    return parse_secret_key_file(_read(p), str(p))


def load_public_key_file(path: str | os.PathLike[str]) -> HsIdPublicKey:
    """Read tor's ``hs_ed25519_public_key``."""
    p = Path(path)
    return parse_public_key_file(_read(p), str(p))


def _write_private(path: Path, content: bytes) -> None:
    try:
        if not path.parent.exists():
            path.parent.mkdir(mode=0o700, parents=True)
            path.parent.chmod(0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, content)
        finally:
            os.close(fd)
    except OSError as exc:
        raise KeyFileError(f"cannot write key file {path}: {exc.strerror or exc}") from exc


def save_secret_key_file(path: str | os.PathLike[str], key: HsIdExpandedSecretKey) -> None:
    """Write ``hs_ed25519_secret_key`` with mode 0600 (a new directory gets 0700)."""
    _write_private(Path(path), encode_secret_key_file(key))


def save_public_key_file(path: str | os.PathLike[str], key: HsIdPublicKey) -> None:
    """Write ``hs_ed25519_public_key`` (0600, as tor does)."""
    _write_private(Path(path), encode_public_key_file(key))
