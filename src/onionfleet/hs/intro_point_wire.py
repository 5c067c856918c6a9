"""A node's intro point as it travels between nodes: the keys and link specifiers, no certs.

A node reads its intro points from its own descriptor, whose 09/0B certs are signed by that
descriptor's throw-away signing key; the publisher re-certifies every intro point under its own
signing key anyway (rend-spec-v3 [ENCRYPTED-DATA]; :func:`~onionfleet.hs.intro_point.
recertify_intro_points`). So only what the certs certify travels, in a fixed binary layout::

    "OFIP" | version 0x01 | u16 length of link specifiers | link specifiers (rend-spec-v3
    [LINK-SPECIFIERS] encoding: NSPEC, then LSTYPE LSLEN LSPEC…) | onion-key ntor (32)
    | auth key (32) | enc-key ntor (32) | ed25519 form of the enc key (32)

Intro points with legacy (RSA) keys never travel: they cannot go into a merged descriptor.
"""

from __future__ import annotations

import struct

from onionfleet.hs.errors import IntroPointError, LegacyIntroPointError
from onionfleet.hs.intro_point import IntroPoint, decode_link_specifiers, encode_link_specifiers

__all__ = ["decode_intro_point_wire", "encode_intro_point_wire"]

_MAGIC = b"OFIP\x01"
_KEYS = 4 * 32
#: Link specifiers of one intro point: a handful of short entries; 1 KiB is generous.
_MAX_LINK_SPECIFIERS_BYTES = 1024


def encode_intro_point_wire(ip: IntroPoint) -> bytes:
    """The wire form of ``ip`` (certs are dropped)."""
    if ip.has_legacy_key:
        raise LegacyIntroPointError("intro points with legacy (RSA) keys are not sent to peers")
    specs = encode_link_specifiers(ip.link_specifiers)
    if len(specs) > _MAX_LINK_SPECIFIERS_BYTES:
        raise IntroPointError(f"intro point link specifiers too long ({len(specs)} bytes)")
    return b"".join(
        (
            _MAGIC,
            struct.pack(">H", len(specs)),
            specs,
            ip.onion_key,
            ip.auth_key,
            ip.enc_key,
            ip.enc_key_ed25519,
        )
    )


def decode_intro_point_wire(raw: bytes) -> IntroPoint:
    """Parse :func:`encode_intro_point_wire` output; other bytes raise :class:`IntroPointError`."""
    if not raw.startswith(_MAGIC):
        raise IntroPointError("peer intro point: not an onionfleet intro point (bad magic/version)")
    body = raw[len(_MAGIC) :]
    if len(body) < 2:
        raise IntroPointError("peer intro point: truncated before the link specifiers")
    (spec_len,) = struct.unpack(">H", body[:2])
    if spec_len > _MAX_LINK_SPECIFIERS_BYTES:
        raise IntroPointError(f"peer intro point: link specifiers too long ({spec_len} bytes)")
    if len(body) != 2 + spec_len + _KEYS:
        raise IntroPointError(
            f"peer intro point: {len(body)} bytes after the header, expected {2 + spec_len + _KEYS}"
        )
    specs = decode_link_specifiers(body[2 : 2 + spec_len])
    keys = body[2 + spec_len :]
    return IntroPoint(
        specs,
        onion_key=keys[0:32],
        auth_key=keys[32:64],
        enc_key=keys[64:96],
        enc_key_ed25519=keys[96:128],
    )
