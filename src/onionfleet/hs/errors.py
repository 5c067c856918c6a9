"""Typed errors of the onion-service layer (``onionfleet.hs``).

Every failure a key file, an onion address, a certificate or a descriptor (from tor, a peer or an
operator) can cause is an :class:`HsError`. Messages name the thing that failed and what to do next;
they never contain secret key bytes or derived keys.
"""

from __future__ import annotations

from onionfleet.errors import OnionfleetError

__all__ = [
    "AddressError",
    "BlindingError",
    "CertificateError",
    "CertificateExpired",
    "CertificateSignatureError",
    "ClientAuthError",
    "DescriptorDecryptionError",
    "DescriptorError",
    "DescriptorSignatureError",
    "DescriptorTooLarge",
    "HsError",
    "IntroPointError",
    "KeyFileError",
    "KeyFilePermissionError",
    "LegacyIntroPointError",
    "TooManyIntroPoints",
]


class HsError(OnionfleetError):
    """Root of the onion-service errors (keys, addresses, certs, descriptors, time periods)."""


class KeyFileError(HsError):
    """A tor key file (``hs_ed25519_secret_key`` / ``hs_ed25519_public_key``) is missing or
    malformed."""


class KeyFilePermissionError(KeyFileError):
    """A secret key file is readable or writable by group/others; tor's fix: ``chmod 600``."""


class AddressError(HsError):
    """A string is not a valid v3 onion address."""


class BlindingError(HsError):
    """Key blinding failed (e.g. a public key that is not a valid ed25519 point)."""


class CertificateError(HsError):
    """A tor ed25519 certificate (cert-spec v1) is malformed, of the wrong type or signed by the
    wrong key."""


class CertificateSignatureError(CertificateError):
    """A certificate's signature does not verify under its signing key."""


class CertificateExpired(CertificateError):
    """A certificate's expiry is in the past at the time it was checked."""


class DescriptorError(HsError):
    """A v3 onion-service descriptor is malformed, or cannot be built as asked."""


class DescriptorSignatureError(DescriptorError):
    """The descriptor's signature or its signing-key certificate does not verify."""


class DescriptorDecryptionError(DescriptorError):
    """A descriptor layer failed to decrypt (wrong address, time period, client key or cookie)."""


class DescriptorTooLarge(DescriptorError):
    """An encoded descriptor would reach ``HS_DESC_MAX_LEN`` (50,000) bytes; HSDirs reject it."""


class TooManyIntroPoints(DescriptorError):
    """More than ``HS_CONFIG_V3_MAX_INTRO_POINTS`` (20) intro points; clients reject the
    descriptor."""


class IntroPointError(DescriptorError):
    """An introduction point entry is malformed or cannot be used."""


class LegacyIntroPointError(IntroPointError):
    """An intro point uses a legacy (RSA) key; it cannot be recertified into a merged descriptor."""


class ClientAuthError(DescriptorError):
    """Client authorization data (an ``.auth_private`` key, a cookie, auth-client lines) is bad."""
