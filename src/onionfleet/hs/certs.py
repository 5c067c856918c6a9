"""Tor ed25519 certificates, version 1 (cert-spec [ED-CERT]; tor ``torcert.c``,
``ed25519_cert.trunnel``).

Layout::

    VERSION (1) = 1 | CERT_TYPE (1) | EXPIRATION_DATE (4, hours since the epoch) | CERT_KEY_TYPE (1)
    | CERTIFIED_KEY (32) | N_EXTENSIONS (1) | EXTENSIONS | SIGNATURE (64)
    EXTENSION = ExtLength (2) | ExtType (1) | ExtFlags (1) | ExtData (ExtLength)

The signature covers every byte before it. Stages: :func:`decode_cert` gives an
:class:`UncheckedCert` (structure only); :meth:`UncheckedCert.check` verifies type, signature and
expiry and gives a :class:`CheckedCert`. ``dangerously_assume_timely`` skips only the expiry check
(tor's HSDirs do not check it either; our decoders do unless told otherwise).
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Callable
from dataclasses import dataclass

from onionfleet.hs.errors import CertificateError, CertificateExpired, CertificateSignatureError
from onionfleet.hs.keys import ed25519_verify
from onionfleet.hs.params import (
    CERT_EXT_FLAG_AFFECTS_VALIDATION,
    CERT_EXT_SIGNED_WITH_ED25519_KEY,
    CERT_KEY_TYPE_ED25519,
    CERT_TYPE_HS_BLINDED_ID_V_SIGNING,
    CERT_TYPE_HS_IP_CC_SIGNING,
    CERT_TYPE_HS_IP_V_SIGNING,
    TOR_CERT_VERSION,
)

__all__ = [
    "CERT_TYPE_NAMES",
    "CertExtension",
    "CheckedCert",
    "UncheckedCert",
    "cert_from_pem_body",
    "cert_to_pem",
    "create_cert",
    "decode_cert",
]

CERT_TYPE_NAMES: dict[int, str] = {
    CERT_TYPE_HS_BLINDED_ID_V_SIGNING: "HS_BLINDED_ID_V_SIGNING (08)",
    CERT_TYPE_HS_IP_V_SIGNING: "HS_IP_V_SIGNING (09)",
    CERT_TYPE_HS_IP_CC_SIGNING: "HS_IP_CC_SIGNING (0B)",
}

_HEADER = struct.Struct(">BBIB32sB")  # version, type, expiry hours, key type, key, n_ext
_SIG_LEN = 64
_PEM_BEGIN = "-----BEGIN ED25519 CERT-----"
_PEM_END = "-----END ED25519 CERT-----"


def _type_name(cert_type: int) -> str:
    return CERT_TYPE_NAMES.get(cert_type, f"type {cert_type:02X}")


@dataclass(frozen=True, slots=True)
class CertExtension:
    """One cert extension (cert-spec [ED-CERT]); unknown ones are kept verbatim."""

    ext_type: int
    flags: int
    data: bytes


@dataclass(frozen=True, slots=True)
class UncheckedCert:
    """A structurally valid cert whose signature, type and expiry are not yet checked."""

    cert_type: int
    expiration_hours: int
    certified_key: bytes
    extensions: tuple[CertExtension, ...]
    signature: bytes
    encoded: bytes

    @property
    def signing_key(self) -> bytes | None:
        """The key in extension 04 (signed-with-ed25519-key), if present."""
        for ext in self.extensions:
            if ext.ext_type == CERT_EXT_SIGNED_WITH_ED25519_KEY:
                return ext.data
        return None

    @property
    def expires_at(self) -> int:
        """Expiry as Unix seconds (tor ``tor_cert_t.valid_until``)."""
        return self.expiration_hours * 3600

    def check(
        self,
        expected_type: int,
        *,
        now: float,
        signing_key: bytes | None = None,
        what: str = "certificate",
        dangerously_assume_timely: bool = False,
    ) -> CheckedCert:
        """Verify type, signer and signature, then expiry (tor
        ``cert_is_valid``/``tor_cert_checksig``).

        ``signing_key``: the key that must have signed it; if given and the cert also carries
        extension 04, both must agree. tor requires ext 04 in every descriptor cert, so do we.
        """
        if self.cert_type != expected_type:
            raise CertificateError(
                f"{what}: wrong cert type {_type_name(self.cert_type)}, expected "
                f"{_type_name(expected_type)}"
            )
        included = self.signing_key
        if included is None:
            raise CertificateError(f"{what}: the signing key extension (04) is missing")
        if signing_key is not None and included != signing_key:
            raise CertificateSignatureError(
                f"{what}: signed by {_b64(included)}, expected {_b64(signing_key)}"
            )
        if not ed25519_verify(included, self.signature, self.encoded[:-_SIG_LEN]):
            raise CertificateSignatureError(f"{what}: the signature does not verify")
        if not dangerously_assume_timely and self.expires_at < now:
            raise CertificateExpired(
                f"{what}: expired at {self.expires_at} (Unix time), now is {int(now)}; "
                "check the clock or rebuild the descriptor"
            )
        return CheckedCert(
            self.cert_type, self.expires_at, self.certified_key, included, self.encoded
        )


@dataclass(frozen=True, slots=True)
class CheckedCert:
    """A cert whose type, signature (by ``signing_key``) and expiry were verified."""

    cert_type: int
    expires_at: int
    certified_key: bytes
    signing_key: bytes
    encoded: bytes


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def decode_cert(encoded: bytes, what: str = "certificate") -> UncheckedCert:
    """Parse a v1 cert (tor ``tor_cert_parse``/trunnel ``ed25519_cert_parse``); no crypto checks.

    Rejects other versions, key types, truncated data, trailing bytes, extension 04 of the wrong
    length and unknown extensions that carry the affects-validation flag.
    """
    if not isinstance(encoded, bytes):
        raise CertificateError(f"{what}: a cert must be bytes")
    if len(encoded) < _HEADER.size + _SIG_LEN:
        raise CertificateError(f"{what}: truncated ({len(encoded)} bytes)")
    version, cert_type, exp_h, key_type, key, n_ext = _HEADER.unpack_from(encoded)
    if version != TOR_CERT_VERSION:
        raise CertificateError(f"{what}: unsupported cert version {version} (only 1 exists)")
    if key_type != CERT_KEY_TYPE_ED25519:
        raise CertificateError(f"{what}: certified key type {key_type} is not ed25519 (01)")
    pos = _HEADER.size
    body_end = len(encoded) - _SIG_LEN
    extensions: list[CertExtension] = []
    for _ in range(n_ext):
        if pos + 4 > body_end:
            raise CertificateError(f"{what}: truncated extension header")
        ext_len, ext_type, flags = struct.unpack_from(">HBB", encoded, pos)
        pos += 4
        if pos + ext_len > body_end:
            raise CertificateError(f"{what}: extension {ext_type:02X} overruns the cert")
        data = encoded[pos : pos + ext_len]
        pos += ext_len
        if ext_type == CERT_EXT_SIGNED_WITH_ED25519_KEY:
            if ext_len != 32:
                raise CertificateError(f"{what}: signed-with-ed25519-key extension is not 32 bytes")
            if any(e.ext_type == ext_type for e in extensions):
                raise CertificateError(f"{what}: signed-with-ed25519-key extension appears twice")
        elif flags & CERT_EXT_FLAG_AFFECTS_VALIDATION:
            raise CertificateError(
                f"{what}: unknown extension {ext_type:02X} marked as affecting validation"
            )
        extensions.append(CertExtension(ext_type, flags, data))
    if pos != body_end:
        raise CertificateError(f"{what}: {body_end - pos} unexpected trailing bytes")
    return UncheckedCert(
        cert_type=cert_type,
        expiration_hours=exp_h,
        certified_key=key,
        extensions=tuple(extensions),
        signature=encoded[body_end:],
        encoded=encoded,
    )


def create_cert(
    cert_type: int,
    certified_key: bytes,
    signing_public_key: bytes,
    sign: Callable[[bytes], bytes],
    expiration_hours: int,
) -> bytes:
    """Encode and sign a cert with extension 04 (tor ``tor_cert_create_ed25519``, flags 0)."""
    if len(certified_key) != 32 or len(signing_public_key) != 32:
        raise CertificateError("certified and signing keys must be 32-byte ed25519 keys")
    if not 0 <= expiration_hours < 1 << 32:
        raise CertificateError(f"cert expiry {expiration_hours} h does not fit in 32 bits")
    body = (
        _HEADER.pack(
            TOR_CERT_VERSION, cert_type, expiration_hours, CERT_KEY_TYPE_ED25519, certified_key, 1
        )
        + struct.pack(">HBB", 32, CERT_EXT_SIGNED_WITH_ED25519_KEY, 0)
        + signing_public_key
    )
    return body + sign(body)


def cert_to_pem(encoded: bytes) -> str:
    """``-----BEGIN ED25519 CERT-----`` block as tor writes it (``tor_cert_encode_ed22519``), no
    final newline."""
    b64 = base64.b64encode(encoded).decode("ascii")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return "\n".join([_PEM_BEGIN, *lines, _PEM_END])


def cert_from_pem_body(body: str, what: str = "certificate") -> bytes:
    """Decode the base64 between the BEGIN/END lines of a cert object."""
    try:
        return base64.b64decode("".join(body.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CertificateError(f"{what}: the cert object is not valid base64") from exc
