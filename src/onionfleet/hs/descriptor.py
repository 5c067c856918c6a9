"""v3 onion-service descriptors: parse → verify → decrypt, and build → encrypt → sign.

rend-spec-v3 [DESC-OUTER], [HS-DESC-FIRST-LAYER], [HS-DESC-SECOND-LAYER],
[HS-DESC-ENCRYPTED-INNER]; tor ``hs_descriptor.c`` (``desc_encode_v3``,
``desc_decode_plaintext_v3``, ``desc_decode_superencrypted_v3``, ``desc_decode_encrypted_v3``).

Stages (only the last exposes intro points)::

    parse_descriptor(text, expected_blinded_key) -> ParsedDescriptor      structure, pinned key
    ParsedDescriptor.verify(now=…)              -> VerifiedDescriptor    cert 08 + signature
    VerifiedDescriptor.decrypt(address, now=…)  -> DecryptedDescriptor   both layers, IP certs

:func:`build_descriptor` makes a descriptor from intro points (recertified under a fresh
descriptor-signing key), the master key, a time period, a revision counter and ``now``.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from onionfleet.hs._layer_crypto import decrypt_layer, encrypt_layer
from onionfleet.hs._netdoc import (
    Token,
    b64_multiline,
    b64_nopad,
    b64decode_loose,
    expect_args,
    expect_no_object,
    expect_object,
    parse_uint,
    required,
    single,
    tokenize,
)
from onionfleet.hs.blinding import blind_secret_key, subcredential_for
from onionfleet.hs.certs import CheckedCert, UncheckedCert, cert_to_pem, create_cert, decode_cert
from onionfleet.hs.client_auth import (
    AuthClientEntry,
    ClientAuthPrivateKey,
    ClientAuthPublicKey,
    DescriptorCookie,
    build_auth_client_entries,
    find_descriptor_cookie,
)
from onionfleet.hs.errors import (
    CertificateError,
    ClientAuthError,
    DescriptorDecryptionError,
    DescriptorError,
    DescriptorSignatureError,
    DescriptorTooLarge,
    TooManyIntroPoints,
)
from onionfleet.hs.intro_point import IntroPoint, decode_intro_point, recertify_intro_points
from onionfleet.hs.keys import (
    BlindedPublicKey,
    DescSigningKeypair,
    HsIdExpandedSecretKey,
    HsIdPublicKey,
    OnionAddress,
    TokenBytes,
    ed25519_verify,
)
from onionfleet.hs.params import (
    CERT_TYPE_HS_BLINDED_ID_V_SIGNING,
    HS_DESC_CERT_LIFETIME_H,
    HS_DESC_COOKIE_LEN,
    HS_DESC_DEFAULT_LIFETIME_MIN,
    HS_DESC_ENC_CONSTANT,
    HS_DESC_MAX_LEN,
    HS_DESC_MAX_LIFETIME_MIN,
    HS_DESC_SIG_PREFIX,
    HS_DESC_SUPERENC_CONSTANT,
    HS_DESC_VERSION,
    HS_MAX_INTRO_POINTS,
)
from onionfleet.hs.timeperiod import TimePeriod

__all__ = [
    "BuiltDescriptor",
    "DecryptedDescriptor",
    "FlowControl",
    "ParsedDescriptor",
    "PowParams",
    "VerifiedDescriptor",
    "build_descriptor",
    "decode_descriptor",
    "parse_descriptor",
    "parse_descriptor_unpinned",
]

_ISO_NOSPACE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\Z")
_PROTOVER_RANGE = re.compile(r"\d{1,5}(-\d{1,5})?(,\d{1,5}(-\d{1,5})?)*\Z")


# --- inner-layer values ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FlowControl:
    """``flow-control <versions> <sendme-inc>`` (prop 324; tor writes ``flow-control 1-2 31``).

    Copy the nodes' line: without it clients do not negotiate congestion control
    (``hs_desc_supports_congestion_control``).
    """

    versions: str
    sendme_inc: int

    def __post_init__(self) -> None:
        if not _PROTOVER_RANGE.match(self.versions):
            raise DescriptorError(f"flow-control: bad version range {self.versions[:32]!r}")
        if not 0 <= self.sendme_inc <= 255:
            raise DescriptorError(f"flow-control: sendme-inc {self.sendme_inc} is not 0..255")

    def encode(self) -> str:
        return f"flow-control {self.versions} {self.sendme_inc}\n"


@dataclass(frozen=True, slots=True)
class PowParams:
    """``pow-params v1 <seed-b64> <suggested-effort> <expiration>`` (prop 327 §2), kept as data.

    The seed belongs to ONE node's tor (each tor has its own random seed), so a pow-params line is
    only meaningful in a descriptor whose intro points all belong to that node.
    """

    pow_type: str
    seed: bytes
    suggested_effort: int
    expiration: str  # ISO time without space, as tor writes it: 2026-01-02T03:04:05

    def __post_init__(self) -> None:
        if self.pow_type != "v1":
            raise DescriptorError(f"pow-params: unknown type {self.pow_type[:16]!r}")
        if len(self.seed) != 32:
            raise DescriptorError("pow-params: the seed must be 32 bytes")
        if not 0 <= self.suggested_effort < 1 << 32:
            raise DescriptorError("pow-params: suggested effort out of range")
        if not _ISO_NOSPACE.match(self.expiration):
            raise DescriptorError(f"pow-params: bad expiration {self.expiration[:32]!r}")

    def expires_at(self) -> int:
        try:
            dt = datetime.strptime(self.expiration, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
        except ValueError as exc:
            raise DescriptorError(f"pow-params: bad expiration {self.expiration!r}") from exc
        return int(dt.timestamp())

    def encode(self) -> str:
        seed = base64.b64encode(self.seed).decode("ascii")
        return f"pow-params {self.pow_type} {seed} {self.suggested_effort} {self.expiration}\n"


# --- stage 1: parsed --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParsedDescriptor:
    """The outer (plaintext) layer, structurally valid; nothing verified yet (tor
    ``desc_decode_plaintext_v3``). ``blinded_key`` is the key in cert 08's extension."""

    text: str
    lifetime_min: int
    signing_key_cert: UncheckedCert
    revision_counter: int
    superencrypted_blob: bytes
    signature: bytes
    signed_part: bytes
    blinded_key: BlindedPublicKey

    @property
    def size_bytes(self) -> int:
        return len(self.text.encode("ascii"))

    def verify(self, *, now: float, dangerously_assume_timely: bool = False) -> VerifiedDescriptor:
        """Check cert 08 (signed by the blinded key, not expired) and the descriptor signature."""
        try:
            cert = self.signing_key_cert.check(
                CERT_TYPE_HS_BLINDED_ID_V_SIGNING,
                now=now,
                signing_key=self.blinded_key.raw,
                what="descriptor-signing-key-cert",
                dangerously_assume_timely=dangerously_assume_timely,
            )
        except CertificateError as exc:
            raise DescriptorSignatureError(f"descriptor: {exc}") from exc
        if not ed25519_verify(
            cert.certified_key, self.signature, HS_DESC_SIG_PREFIX + self.signed_part
        ):
            raise DescriptorSignatureError(
                "descriptor: the signature does not verify under its descriptor-signing key"
            )
        return VerifiedDescriptor(self, cert)


def _parse(text: str, expected: BlindedPublicKey | None) -> ParsedDescriptor:
    if not isinstance(text, str):
        raise DescriptorError("a descriptor must be text")
    if len(text) >= HS_DESC_MAX_LEN:
        raise DescriptorTooLarge(
            f"descriptor is {len(text)} bytes; HSDirs reject descriptors of {HS_DESC_MAX_LEN} "
            "bytes or more"
        )
    what = "descriptor"
    if not text.startswith("hs-descriptor "):
        raise DescriptorError(
            "descriptor: does not start with 'hs-descriptor'; is this a v3 descriptor?"
        )
    tokens = tokenize(text, what)
    if not tokens or tokens[0].keyword != "hs-descriptor":
        raise DescriptorError("descriptor: does not start with 'hs-descriptor'")
    if tokens[-1].keyword != "signature":
        raise DescriptorError("descriptor: does not end with a 'signature' line")
    known = {
        "hs-descriptor",
        "descriptor-lifetime",
        "descriptor-signing-key-cert",
        "revision-counter",
        "superencrypted",
        "signature",
    }
    for kw in known:
        required(tokens, kw, what)
    head = tokens[0]
    expect_args(head, what, 1, 1)
    if head.args[0] != str(HS_DESC_VERSION):
        raise DescriptorError(f"descriptor: unsupported version {head.args[0][:8]!r} (need 3)")
    life_tok = required(tokens, "descriptor-lifetime", what)
    expect_args(life_tok, what, 1, 1)
    expect_no_object(life_tok, what)
    lifetime = parse_uint(life_tok.args[0], "descriptor-lifetime", 32)
    if not 0 < lifetime <= HS_DESC_MAX_LIFETIME_MIN:
        raise DescriptorError(
            f"descriptor: lifetime {lifetime} min is outside 1..{HS_DESC_MAX_LIFETIME_MIN}"
        )
    cert_tok = required(tokens, "descriptor-signing-key-cert", what)
    expect_args(cert_tok, what, 0, 0)
    try:
        cert = decode_cert(
            expect_object(cert_tok, "ED25519 CERT", what), "descriptor-signing-key-cert"
        )
    except CertificateError as exc:
        raise DescriptorError(str(exc)) from exc
    if cert.cert_type != CERT_TYPE_HS_BLINDED_ID_V_SIGNING:
        raise DescriptorError("descriptor-signing-key-cert: not a type 08 cert")
    signer = cert.signing_key
    if signer is None:
        raise DescriptorError("descriptor-signing-key-cert: no signing key extension (04)")
    blinded = BlindedPublicKey(signer)
    if expected is not None and blinded != expected:
        raise DescriptorError(
            f"descriptor is for blinded key {blinded.b64()}, expected {expected.b64()}; "
            "wrong address or time period"
        )
    rev_tok = required(tokens, "revision-counter", what)
    expect_args(rev_tok, what, 1, 1)
    expect_no_object(rev_tok, what)
    revision = parse_uint(rev_tok.args[0], "revision-counter", 64)
    sup_tok = required(tokens, "superencrypted", what)
    expect_args(sup_tok, what, 0, 0)
    blob = expect_object(sup_tok, "MESSAGE", what)
    sig_tok = tokens[-1]
    expect_args(sig_tok, what, 1, 1)
    expect_no_object(sig_tok, what)
    signature = b64decode_loose(sig_tok.args[0], "descriptor signature", 64)
    rest = text[sig_tok.start :].rstrip("\n")
    if "\n" in rest:
        raise DescriptorError("descriptor: data after the signature line")
    return ParsedDescriptor(
        text=text,
        lifetime_min=lifetime,
        signing_key_cert=cert,
        revision_counter=revision,
        superencrypted_blob=blob,
        signature=signature,
        signed_part=text[: sig_tok.start].encode("ascii"),
        blinded_key=blinded,
    )


def parse_descriptor(text: str, expected_blinded_key: BlindedPublicKey) -> ParsedDescriptor:
    """Parse the outer layer of a descriptor that must be for ``expected_blinded_key``."""
    return _parse(text, expected_blinded_key)


def parse_descriptor_unpinned(text: str) -> ParsedDescriptor:
    """Parse without a pinned blinded key (``onionfleet descriptor inspect`` with only an address).

    Safe only because :meth:`VerifiedDescriptor.decrypt` derives the subcredential from the
    address *and* this blinded key: the layer MAC fails unless the blinded key belongs to it.
    """
    return _parse(text, None)


# --- stage 2: verified ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifiedDescriptor:
    """Signature and cert 08 verified; layers still encrypted."""

    parsed: ParsedDescriptor
    signing_key_cert: CheckedCert

    @property
    def revision_counter(self) -> int:
        return self.parsed.revision_counter

    @property
    def lifetime_min(self) -> int:
        return self.parsed.lifetime_min

    @property
    def blinded_key(self) -> BlindedPublicKey:
        return self.parsed.blinded_key

    @property
    def signing_key(self) -> bytes:
        return self.signing_key_cert.certified_key

    def decrypt(
        self,
        identity: OnionAddress | HsIdPublicKey,
        *,
        now: float,
        client_key: ClientAuthPrivateKey | None = None,
        descriptor_cookie: DescriptorCookie | None = None,
        dangerously_assume_timely: bool = False,
    ) -> DecryptedDescriptor:
        """Decrypt both layers (tor ``desc_decode_superencrypted_v3``/``desc_decode_encrypted_v3``).

        Without ``client_key``/``descriptor_cookie`` the inner layer must be public.
        """
        pub = identity.public_key if isinstance(identity, OnionAddress) else identity
        subcred = subcredential_for(pub, self.blinded_key).raw
        p = self.parsed
        blinded = self.blinded_key.raw
        super_plain = decrypt_layer(
            p.superencrypted_blob,
            secret_data=blinded,
            subcredential=subcred,
            revision_counter=p.revision_counter,
            constant=HS_DESC_SUPERENC_CONSTANT,
            what="superencrypted layer",
        )
        middle = _parse_middle(_ascii(super_plain, "superencrypted layer"))
        cookie = descriptor_cookie
        if cookie is None and client_key is not None:
            cookie = find_descriptor_cookie(
                entries=middle.auth_clients,
                client_key=client_key,
                ephemeral_public=middle.ephemeral_key,
                subcredential=subcred,
            )
            if cookie is None:
                raise ClientAuthError(
                    "this client key is not authorized for the descriptor (no matching "
                    "auth-client line)"
                )
        secret = blinded + (cookie.raw if cookie is not None else b"")
        try:
            inner_plain = decrypt_layer(
                middle.encrypted_blob,
                secret_data=secret,
                subcredential=subcred,
                revision_counter=p.revision_counter,
                constant=HS_DESC_ENC_CONSTANT,
                what="encrypted layer",
            )
        except DescriptorDecryptionError as exc:
            if cookie is None:
                raise DescriptorDecryptionError(
                    "encrypted layer: cannot decrypt without client authorization; pass the "
                    "client's .auth_private key"
                ) from exc
            raise
        inner = _parse_inner(
            _ascii(inner_plain, "encrypted layer"),
            signing_key=self.signing_key,
            now=now,
            dangerously_assume_timely=dangerously_assume_timely,
        )
        return DecryptedDescriptor(
            verified=self,
            superencrypted_size=len(super_plain),
            superencrypted_blob_size=len(p.superencrypted_blob),
            encrypted_size=len(inner_plain),
            auth_client_count=len(middle.auth_clients),
            client_auth_used=cookie is not None,
            create2_formats=inner.create2_formats,
            intro_auth_required=inner.intro_auth_required,
            single_onion_service=inner.single_onion_service,
            flow_control=inner.flow_control,
            pow_params=inner.pow_params,
            intro_points=inner.intro_points,
        )


def _ascii(raw: bytes, what: str) -> str:
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise DescriptorError(f"{what}: plaintext is not ASCII") from exc


@dataclass(frozen=True, slots=True)
class _Middle:
    ephemeral_key: bytes
    auth_clients: tuple[AuthClientEntry, ...]
    encrypted_blob: bytes


def _parse_middle(text: str) -> _Middle:
    what = "superencrypted layer"
    tokens = tokenize(text, what)
    if not tokens or tokens[0].keyword != "desc-auth-type":
        raise DescriptorError(f"{what}: does not start with 'desc-auth-type'")
    auth_type = required(tokens, "desc-auth-type", what)
    expect_args(auth_type, what, 1)
    eph_tok = required(tokens, "desc-auth-ephemeral-key", what)
    expect_args(eph_tok, what, 1)
    eph = b64decode_loose(eph_tok.args[0], "desc-auth-ephemeral-key", 32)
    clients: list[AuthClientEntry] = []
    for tok in tokens:
        if tok.keyword == "auth-client":
            expect_args(tok, what, 3)
            expect_no_object(tok, what)
            clients.append(
                AuthClientEntry(
                    b64decode_loose(tok.args[0], "auth-client client-id", 8),
                    b64decode_loose(tok.args[1], "auth-client iv", 16),
                    b64decode_loose(
                        tok.args[2], "auth-client encrypted-cookie", HS_DESC_COOKIE_LEN
                    ),
                )
            )
    if not clients:
        raise DescriptorError(f"{what}: no 'auth-client' lines")
    enc_tok = required(tokens, "encrypted", what)
    expect_args(enc_tok, what, 0, 0)
    blob = expect_object(enc_tok, "MESSAGE", what)
    return _Middle(eph, tuple(clients), blob)


@dataclass(frozen=True, slots=True)
class _Inner:
    create2_formats: tuple[int, ...]
    intro_auth_required: tuple[str, ...]
    single_onion_service: bool
    flow_control: FlowControl | None
    pow_params: PowParams | None
    intro_points: tuple[IntroPoint, ...]


def _parse_inner(
    text: str, *, signing_key: bytes, now: float, dangerously_assume_timely: bool
) -> _Inner:
    what = "encrypted layer"
    tokens = tokenize(text, what)
    if not tokens or tokens[0].keyword != "create2-formats":
        raise DescriptorError(f"{what}: does not start with 'create2-formats'")
    first_ip = next(
        (i for i, t in enumerate(tokens) if t.keyword == "introduction-point"), len(tokens)
    )
    header = tokens[:first_ip]
    c2 = required(header, "create2-formats", what)
    formats = tuple(parse_uint(a, "create2-formats", 16) for a in c2.args)
    if 2 not in formats:
        raise DescriptorError(f"{what}: create2-formats does not list ntor (2)")
    auth_req = single(header, "intro-auth-required", what, required=False)
    single_onion = single(header, "single-onion-service", what, required=False) is not None
    fc_tok = single(header, "flow-control", what, required=False)
    flow: FlowControl | None = None
    if fc_tok is not None:
        expect_args(fc_tok, what, 2)
        flow = FlowControl(fc_tok.args[0], parse_uint(fc_tok.args[1], "flow-control", 8))
    pow_tok = single(header, "pow-params", what, required=False)
    pow_params: PowParams | None = None
    if pow_tok is not None:
        expect_args(pow_tok, what, 4)
        pow_params = PowParams(
            pow_tok.args[0],
            b64decode_loose(pow_tok.args[1], "pow-params seed", 32),
            parse_uint(pow_tok.args[2], "pow-params suggested-effort", 32),
            pow_tok.args[3],
        )
    groups: list[list[Token]] = []
    for tok in tokens[first_ip:]:
        if tok.keyword == "introduction-point":
            groups.append([])
        groups[-1].append(tok)
    if len(groups) > HS_MAX_INTRO_POINTS:
        raise TooManyIntroPoints(
            f"{what}: {len(groups)} intro points; clients accept at most {HS_MAX_INTRO_POINTS}"
        )
    ips = tuple(
        decode_intro_point(
            g,
            signing_key=signing_key,
            now=now,
            what=f"intro point #{n}",
            dangerously_assume_timely=dangerously_assume_timely,
        )
        for n, g in enumerate(groups)
    )
    return _Inner(
        create2_formats=formats,
        intro_auth_required=auth_req.args if auth_req is not None else (),
        single_onion_service=single_onion,
        flow_control=flow,
        pow_params=pow_params,
        intro_points=ips,
    )


# --- stage 3: decrypted -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DecryptedDescriptor:
    """A verified, fully decrypted descriptor; the only stage exposing intro points."""

    verified: VerifiedDescriptor
    superencrypted_size: int  # plaintext bytes of the middle layer, before padding
    superencrypted_blob_size: int  # salt + ciphertext (padded) + MAC
    encrypted_size: int  # plaintext bytes of the inner layer
    auth_client_count: int
    client_auth_used: bool
    create2_formats: tuple[int, ...]
    intro_auth_required: tuple[str, ...]
    single_onion_service: bool
    flow_control: FlowControl | None
    pow_params: PowParams | None
    intro_points: tuple[IntroPoint, ...]

    @property
    def revision_counter(self) -> int:
        return self.verified.revision_counter

    @property
    def lifetime_min(self) -> int:
        return self.verified.lifetime_min

    @property
    def blinded_key(self) -> BlindedPublicKey:
        return self.verified.blinded_key

    @property
    def size_bytes(self) -> int:
        return self.verified.parsed.size_bytes


def decode_descriptor(
    text: str,
    address: OnionAddress,
    *,
    expected_blinded_key: BlindedPublicKey | None,
    now: float,
    client_key: ClientAuthPrivateKey | None = None,
    descriptor_cookie: DescriptorCookie | None = None,
    dangerously_assume_timely: bool = False,
) -> DecryptedDescriptor:
    """All three stages at once. ``expected_blinded_key=None`` means unpinned (see
    :func:`parse_descriptor_unpinned`)."""
    parsed = _parse(text, expected_blinded_key)
    return parsed.verify(now=now, dangerously_assume_timely=dangerously_assume_timely).decrypt(
        address,
        now=now,
        client_key=client_key,
        descriptor_cookie=descriptor_cookie,
        dangerously_assume_timely=dangerously_assume_timely,
    )


# --- building ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BuiltDescriptor:
    """A signed descriptor ready for HSPOST. ``text`` ends in a newline, as tor's does."""

    text: str
    blinded_key: BlindedPublicKey
    time_period: TimePeriod
    revision_counter: int
    signing_key: bytes
    intro_point_count: int
    superencrypted_plaintext_size: int
    descriptor_cookie: DescriptorCookie | None = field(default=None, repr=False)

    @property
    def size_bytes(self) -> int:
        return len(self.text)


def build_descriptor(
    *,
    master_key: HsIdExpandedSecretKey,
    time_period: TimePeriod,
    revision_counter: int,
    intro_points: Sequence[IntroPoint],
    now: float,
    token_bytes: TokenBytes,
    flow_control: FlowControl | None = None,
    single_onion_service: bool = False,
    authorized_clients: Sequence[ClientAuthPublicKey] = (),
    lifetime_min: int = HS_DESC_DEFAULT_LIFETIME_MIN,
    single_owner_pow_params: PowParams | None = None,
    max_size_bytes: int = HS_DESC_MAX_LEN,
) -> BuiltDescriptor:
    """Build, encrypt and sign a descriptor (tor ``hs_desc_encode_descriptor``).

    * A fresh descriptor-signing key (from ``token_bytes``) is certified by a type-08 cert
      (``now + 54 h``) signed with the blinded master secret for ``time_period``; each intro point
      gets new 09/0B certs under it (:func:`recertify_intro_points`).
    * ``flow_control``: copy the nodes' line (``FlowControl("1-2", 31)`` on tor 0.4.8+).
    * ``authorized_clients``: enables client authorization (a random descriptor cookie); otherwise
    16
      fake ``auth-client`` lines, as tor writes.
    * ``single_owner_pow_params``: ONLY for a descriptor whose intro points all belong to the one
      node whose tor made that seed (PoW seeds are per-tor; an introduction solved for another
      node's seed is dropped). Never pass a pow-params line in a descriptor merged across nodes.
    * ``max_size_bytes``: the HSDirs' limit (consensus ``HSV3MaxDescriptorSize``, default 50,000);
      the descriptor must be strictly smaller.

    Raises :class:`TooManyIntroPoints`, :class:`LegacyIntroPointError`, :class:`DescriptorTooLarge`.
    """
    if not intro_points:
        raise DescriptorError("a descriptor needs at least one intro point")
    if len(intro_points) > HS_MAX_INTRO_POINTS:
        raise TooManyIntroPoints(
            f"{len(intro_points)} intro points; clients accept at most {HS_MAX_INTRO_POINTS}"
        )
    if not 0 <= revision_counter < 1 << 64:
        raise DescriptorError(f"revision counter {revision_counter} does not fit in 64 bits")
    if not 0 < lifetime_min <= HS_DESC_MAX_LIFETIME_MIN:
        raise DescriptorError(
            f"lifetime {lifetime_min} min is outside 1..{HS_DESC_MAX_LIFETIME_MIN}"
        )

    blinded_secret = blind_secret_key(master_key, time_period)
    blinded = blinded_secret.public
    subcred = subcredential_for(master_key.public_key(), blinded).raw
    signing = DescSigningKeypair.generate(token_bytes)
    ips = recertify_intro_points(intro_points, signing, now=now)

    # Inner layer (tor get_inner_encrypted_layer_plaintext).
    inner = ["create2-formats 2\n"]
    if single_onion_service:
        inner.append("single-onion-service\n")
    if flow_control is not None:
        inner.append(flow_control.encode())
    if single_owner_pow_params is not None:
        inner.append(single_owner_pow_params.encode())
    inner.extend(ip.encode() for ip in ips)
    inner_plain = "".join(inner).encode("ascii")

    cookie = DescriptorCookie(token_bytes(HS_DESC_COOKIE_LEN)) if authorized_clients else None
    blinded_raw = blinded.raw
    inner_blob = encrypt_layer(
        inner_plain,
        secret_data=blinded_raw + (cookie.raw if cookie is not None else b""),
        subcredential=subcred,
        revision_counter=revision_counter,
        constant=HS_DESC_ENC_CONSTANT,
        salt=token_bytes(16),
        pad=False,
    )

    # Middle layer (tor get_outer_encrypted_layer_plaintext).
    eph_secret = token_bytes(32)
    eph_public = (
        X25519PrivateKey.from_private_bytes(eph_secret)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    entries = build_auth_client_entries(
        clients=authorized_clients,
        subcredential=subcred,
        ephemeral_private=eph_secret,
        cookie=cookie,
        token_bytes=token_bytes,
    )
    middle = (
        "desc-auth-type x25519\n"
        f"desc-auth-ephemeral-key {base64.b64encode(eph_public).decode('ascii')}\n"
        + "".join(e.encode() + "\n" for e in entries)
        + "encrypted\n-----BEGIN MESSAGE-----\n"
        + b64_multiline(inner_blob)
        + "-----END MESSAGE-----"
    )
    middle_plain = middle.encode("ascii")
    middle_blob = encrypt_layer(
        middle_plain,
        secret_data=blinded_raw,
        subcredential=subcred,
        revision_counter=revision_counter,
        constant=HS_DESC_SUPERENC_CONSTANT,
        salt=token_bytes(16),
        pad=True,
    )

    # Outer layer (tor desc_encode_v3).
    cert08 = create_cert(
        CERT_TYPE_HS_BLINDED_ID_V_SIGNING,
        signing.public_raw,
        blinded_raw,
        blinded_secret.sign,
        math.ceil((now + HS_DESC_CERT_LIFETIME_H * 3600) / 3600),
    )
    body = (
        f"hs-descriptor {HS_DESC_VERSION}\n"
        f"descriptor-lifetime {lifetime_min}\n"
        f"descriptor-signing-key-cert\n{cert_to_pem(cert08)}\n"
        f"revision-counter {revision_counter}\n"
        "superencrypted\n-----BEGIN MESSAGE-----\n"
        + b64_multiline(middle_blob)
        + "-----END MESSAGE-----\n"
    )
    signature = signing.sign(HS_DESC_SIG_PREFIX + body.encode("ascii"))
    text = body + f"signature {b64_nopad(signature)}\n"
    if len(text) >= max_size_bytes:
        raise DescriptorTooLarge(
            f"descriptor with {len(ips)} intro points is {len(text)} bytes; HSDirs accept fewer "
            f"than {max_size_bytes}. Use fewer intro points."
        )
    return BuiltDescriptor(
        text=text,
        blinded_key=blinded,
        time_period=time_period,
        revision_counter=revision_counter,
        signing_key=signing.public_raw,
        intro_point_count=len(ips),
        superencrypted_plaintext_size=len(middle_plain),
        descriptor_cookie=cookie,
    )
