"""Introduction points of a v3 descriptor's inner layer (rend-spec-v3 [HS-DESC-ENCRYPTED-INNER]).

tor: ``hs_descriptor.c:encode_intro_point()``, ``decode_introduction_point()``,
``encode_link_specifiers()``; link specifiers are the trunnel ``link_specifier_list``
(``n_spec u8 | (type u8 | len u8 | body)*``, tor-spec [EXTEND2]).

An :class:`IntroPoint` carries the keys the certs certify. Certs are re-made under each new
descriptor-signing key by :func:`recertify_intro_points` (rend-spec-v3 §2.5.2.2: the certs run
"backwards", so no node secret is needed).
"""

from __future__ import annotations

import base64
import ipaddress
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from onionfleet.hs._netdoc import (
    Token,
    b64decode_loose,
    expect_args,
    expect_no_object,
    expect_object,
    required,
    single,
)
from onionfleet.hs.certs import CheckedCert, cert_to_pem, create_cert, decode_cert
from onionfleet.hs.errors import (
    CertificateError,
    IntroPointError,
    LegacyIntroPointError,
    TooManyIntroPoints,
)
from onionfleet.hs.keys import DescSigningKeypair
from onionfleet.hs.params import (
    CERT_TYPE_HS_IP_CC_SIGNING,
    CERT_TYPE_HS_IP_V_SIGNING,
    HS_DESC_CERT_LIFETIME_H,
    HS_MAX_INTRO_POINTS,
)

__all__ = [
    "LS_ED25519_ID",
    "LS_IPV4",
    "LS_IPV6",
    "LS_LEGACY_ID",
    "IntroPoint",
    "LinkSpecifier",
    "decode_link_specifiers",
    "ed25519_from_curve25519",
    "encode_link_specifiers",
    "recertify_intro_points",
]

LS_IPV4 = 0
LS_IPV6 = 1
LS_LEGACY_ID = 2
LS_ED25519_ID = 3
_LS_FIXED_LEN = {LS_IPV4: 6, LS_IPV6: 18, LS_LEGACY_ID: 20, LS_ED25519_ID: 32}

_P = 2**255 - 19


@dataclass(frozen=True, slots=True)
class LinkSpecifier:
    """One link specifier (tor-spec [EXTEND2]); unknown types are carried verbatim."""

    ls_type: int
    body: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.ls_type <= 255 or len(self.body) > 255:
            raise IntroPointError("link specifier type or length out of range")
        want = _LS_FIXED_LEN.get(self.ls_type)
        if want is not None and len(self.body) != want:
            raise IntroPointError(
                f"link specifier type {self.ls_type} must be {want} bytes, got {len(self.body)}"
            )

    @classmethod
    def ipv4(cls, address: str, port: int) -> LinkSpecifier:
        return cls(LS_IPV4, ipaddress.IPv4Address(address).packed + struct.pack(">H", port))

    @classmethod
    def ipv6(cls, address: str, port: int) -> LinkSpecifier:
        return cls(LS_IPV6, ipaddress.IPv6Address(address).packed + struct.pack(">H", port))

    @classmethod
    def legacy_id(cls, rsa_id_digest: bytes) -> LinkSpecifier:
        return cls(LS_LEGACY_ID, rsa_id_digest)

    @classmethod
    def ed25519_id(cls, ed25519_id: bytes) -> LinkSpecifier:
        return cls(LS_ED25519_ID, ed25519_id)

    def describe(self) -> str:
        """Human form: ``ipv4 1.2.3.4:9001``, ``legacy-id <HEX>``, ``ed25519-id <b64>``."""
        if self.ls_type == LS_IPV4:
            port = struct.unpack(">H", self.body[4:])[0]
            return f"ipv4 {ipaddress.IPv4Address(self.body[:4])}:{port}"
        if self.ls_type == LS_IPV6:
            port = struct.unpack(">H", self.body[16:])[0]
            return f"ipv6 [{ipaddress.IPv6Address(self.body[:16])}]:{port}"
        if self.ls_type == LS_LEGACY_ID:
            return f"legacy-id {self.body.hex().upper()}"
        if self.ls_type == LS_ED25519_ID:
            return f"ed25519-id {base64.b64encode(self.body).decode().rstrip('=')}"
        return f"type-{self.ls_type} {self.body.hex()}"


def encode_link_specifiers(specs: Sequence[LinkSpecifier]) -> bytes:
    """The trunnel ``link_specifier_list`` encoding."""
    if not 1 <= len(specs) <= 255:
        raise IntroPointError(f"an intro point needs 1..255 link specifiers, got {len(specs)}")
    out = bytearray([len(specs)])
    for s in specs:
        out += bytes([s.ls_type, len(s.body)]) + s.body
    return bytes(out)


def decode_link_specifiers(raw: bytes) -> tuple[LinkSpecifier, ...]:
    """Parse ``link_specifier_list``; known types must have their fixed length; no trailing
    bytes."""
    if not raw:
        raise IntroPointError("empty link specifier list")
    n = raw[0]
    pos = 1
    specs: list[LinkSpecifier] = []
    for _ in range(n):
        if pos + 2 > len(raw):
            raise IntroPointError("truncated link specifier")
        ls_type, ls_len = raw[pos], raw[pos + 1]
        pos += 2
        if pos + ls_len > len(raw):
            raise IntroPointError("link specifier body overruns the list")
        specs.append(LinkSpecifier(ls_type, raw[pos : pos + ls_len]))
        pos += ls_len
    if pos != len(raw):
        raise IntroPointError(f"{len(raw) - pos} trailing bytes after the link specifiers")
    if not specs:
        raise IntroPointError("an intro point needs at least one link specifier")
    return tuple(specs)


def ed25519_from_curve25519(u_raw: bytes, sign_bit: int = 0) -> bytes:
    """The ed25519 form of an x25519 key, ``y = (u-1)/(u+1)`` (tor
    ``ed25519_public_key_from_curve25519_public_key``); tor's 0B certs use sign bit 0."""
    if len(u_raw) != 32:
        raise IntroPointError("an x25519 key is 32 bytes")
    u = int.from_bytes(u_raw, "little") & ((1 << 255) - 1)
    if (u + 1) % _P == 0:
        raise IntroPointError("x25519 key has no ed25519 form (u = -1)")
    y = (u - 1) * pow(u + 1, _P - 2, _P) % _P
    out = bytearray(y.to_bytes(32, "little"))
    out[31] |= (sign_bit & 1) << 7
    return bytes(out)


@dataclass(frozen=True, slots=True)
class IntroPoint:
    """One introduction point (rend-spec-v3 [HS-DESC-ENCRYPTED-INNER] "introduction-point").

    ``auth_key`` is the ed25519 key certified by the ``auth-key`` cert (09); ``enc_key`` the ntor
    x25519 key and ``enc_key_ed25519`` its ed25519 form certified by ``enc-key-cert`` (0B);
    ``onion_key`` the ntor key of the relay. ``auth_key_cert``/``enc_key_cert`` are the checked
    certs
    when the IP came from a descriptor (their signer is that descriptor's signing key).
    """

    link_specifiers: tuple[LinkSpecifier, ...]
    onion_key: bytes
    auth_key: bytes
    enc_key: bytes
    enc_key_ed25519: bytes
    auth_key_cert: CheckedCert | None = None
    enc_key_cert: CheckedCert | None = None
    legacy_key: bytes | None = None
    legacy_key_cert: bytes | None = None

    def __post_init__(self) -> None:
        for name in ("onion_key", "auth_key", "enc_key", "enc_key_ed25519"):
            value = getattr(self, name)
            if not isinstance(value, bytes) or len(value) != 32:
                raise IntroPointError(f"intro point {name} must be 32 bytes")
        if not self.link_specifiers:
            raise IntroPointError("an intro point needs at least one link specifier")

    @classmethod
    def create(
        cls,
        link_specifiers: Sequence[LinkSpecifier],
        *,
        onion_key: bytes,
        auth_key: bytes,
        enc_key: bytes,
    ) -> IntroPoint:
        """An intro point from raw keys; the ed25519 form of ``enc_key`` is derived (sign bit 0)."""
        return cls(
            tuple(link_specifiers), onion_key, auth_key, enc_key, ed25519_from_curve25519(enc_key)
        )

    def without_certs(self) -> IntroPoint:
        """The same IP with its certs dropped: compares equal across re-encodings of a node's
        descriptor (each ``GETINFO`` re-signs the certs with a new descriptor-signing key)."""
        return IntroPoint(
            self.link_specifiers,
            self.onion_key,
            self.auth_key,
            self.enc_key,
            self.enc_key_ed25519,
            legacy_key=self.legacy_key,
            legacy_key_cert=self.legacy_key_cert,
        )

    @property
    def has_legacy_key(self) -> bool:
        return self.legacy_key is not None or self.legacy_key_cert is not None

    def certs_valid_until(self) -> int | None:
        """The earlier of the two certs' expiry (Unix seconds), when the IP came from a
        descriptor."""
        if self.auth_key_cert is None or self.enc_key_cert is None:
            return None
        return min(self.auth_key_cert.expires_at, self.enc_key_cert.expires_at)

    def encode(self) -> str:
        """The IP's text, ending in a newline (tor ``encode_intro_point``). Needs certs."""
        if self.auth_key_cert is None or self.enc_key_cert is None:
            raise IntroPointError("intro point has no certs; recertify it before encoding")
        if self.has_legacy_key:
            raise LegacyIntroPointError("intro points with legacy (RSA) keys cannot be encoded")
        ls_b64 = base64.b64encode(encode_link_specifiers(self.link_specifiers)).decode()
        return (
            f"introduction-point {ls_b64}\n"
            f"onion-key ntor {base64.b64encode(self.onion_key).decode()}\n"
            f"auth-key\n{cert_to_pem(self.auth_key_cert.encoded)}\n"
            f"enc-key ntor {base64.b64encode(self.enc_key).decode()}\n"
            f"enc-key-cert\n{cert_to_pem(self.enc_key_cert.encoded)}\n"
        )


def recertify_intro_points(
    intro_points: Sequence[IntroPoint], signing_keypair: DescSigningKeypair, *, now: float
) -> tuple[IntroPoint, ...]:
    """New 09 and 0B certs signed by ``signing_keypair`` for each IP, keys and link specifiers
    copied.

    Expiry is ``nearest hour + 54 h`` as tor does for IP certs (``hs_service.c``
    ``build_desc_intro_points``). Raises :class:`LegacyIntroPointError` for an IP with a legacy
    key and :class:`TooManyIntroPoints` beyond 20.
    """
    if len(intro_points) > HS_MAX_INTRO_POINTS:
        raise TooManyIntroPoints(
            f"{len(intro_points)} intro points; clients accept at most {HS_MAX_INTRO_POINTS}. "
            "Select fewer intro points across nodes."
        )
    expiry_h = math.floor(now / 3600) + HS_DESC_CERT_LIFETIME_H
    out: list[IntroPoint] = []
    pub = signing_keypair.public_raw
    for index, ip in enumerate(intro_points):
        if ip.has_legacy_key:
            raise LegacyIntroPointError(
                f"intro point #{index} has a legacy (RSA) key; it cannot be recertified. "
                "Drop it (tor only adds legacy keys for relays without ed25519 support)."
            )
        auth = create_cert(
            CERT_TYPE_HS_IP_V_SIGNING, ip.auth_key, pub, signing_keypair.sign, expiry_h
        )
        enc = create_cert(
            CERT_TYPE_HS_IP_CC_SIGNING, ip.enc_key_ed25519, pub, signing_keypair.sign, expiry_h
        )
        out.append(
            IntroPoint(
                ip.link_specifiers,
                ip.onion_key,
                ip.auth_key,
                ip.enc_key,
                ip.enc_key_ed25519,
                CheckedCert(CERT_TYPE_HS_IP_V_SIGNING, expiry_h * 3600, ip.auth_key, pub, auth),
                CheckedCert(
                    CERT_TYPE_HS_IP_CC_SIGNING, expiry_h * 3600, ip.enc_key_ed25519, pub, enc
                ),
            )
        )
    return tuple(out)


def _ntor_key(tokens: Sequence[Token], keyword: str, what: str) -> bytes:
    for tok in tokens:
        if tok.keyword == keyword:
            expect_args(tok, what, 2)
            if tok.args[0] == "ntor":
                return b64decode_loose(tok.args[1], f"{what} {keyword}", 32)
    raise IntroPointError(f"{what}: no '{keyword} ntor' line")


def decode_intro_point(
    tokens: Sequence[Token],
    *,
    signing_key: bytes,
    now: float,
    what: str,
    dangerously_assume_timely: bool = False,
) -> IntroPoint:
    """Decode one IP's tokens and check its 09/0B certs against the descriptor signing key
    (tor ``decode_introduction_point``)."""
    head = tokens[0]
    expect_args(head, what, 1, 1)
    expect_no_object(head, what)
    specs = decode_link_specifiers(b64decode_loose(head.args[0], f"{what} link specifiers"))
    onion_key = _ntor_key(tokens, "onion-key", what)
    enc_key = _ntor_key(tokens, "enc-key", what)
    auth_tok = required(tokens, "auth-key", what)
    required(tokens, "enc-key", what)
    enc_cert_tok = required(tokens, "enc-key-cert", what)
    try:
        auth_cert = decode_cert(
            expect_object(auth_tok, "ED25519 CERT", what), f"{what} auth-key cert"
        ).check(
            CERT_TYPE_HS_IP_V_SIGNING,
            now=now,
            signing_key=signing_key,
            what=f"{what} auth-key cert",
            dangerously_assume_timely=dangerously_assume_timely,
        )
        enc_cert = decode_cert(
            expect_object(enc_cert_tok, "ED25519 CERT", what), f"{what} enc-key-cert"
        ).check(
            CERT_TYPE_HS_IP_CC_SIGNING,
            now=now,
            signing_key=signing_key,
            what=f"{what} enc-key-cert",
            dangerously_assume_timely=dangerously_assume_timely,
        )
    except CertificateError as exc:
        raise IntroPointError(str(exc)) from exc
    legacy_tok = single(tokens, "legacy-key", what, required=False)
    legacy_cert_tok = single(tokens, "legacy-key-cert", what, required=False)
    return IntroPoint(
        specs,
        onion_key,
        auth_cert.certified_key,
        enc_key,
        enc_cert.certified_key,
        auth_cert,
        enc_cert,
        None if legacy_tok is None else (legacy_tok.obj or b""),
        None if legacy_cert_tok is None else (legacy_cert_tok.obj or b""),
    )
