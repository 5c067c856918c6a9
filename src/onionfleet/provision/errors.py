"""Typed errors of provisioning (``onionfleet keys``, ``init``, ``join``; ``onionfleet.provision``).

Messages name the file or invite field that failed and what to do next. They never contain the
cluster token, a master secret key or a WireGuard private key.
"""

from __future__ import annotations

from onionfleet.errors import OnionfleetError

__all__ = [
    "AlreadyExists",
    "InviteError",
    "InviteFieldError",
    "InviteSyntaxError",
    "InviteVersionError",
    "KeyDirError",
    "MasterKeyMismatch",
    "ProvisionError",
    "UnsafePermissions",
]


class ProvisionError(OnionfleetError):
    """Root of the provisioning errors."""


class AlreadyExists(ProvisionError):
    """A file or key that ``init``/``join``/``keys`` would write exists already (``--force``)."""


class UnsafePermissions(ProvisionError):
    """A secret file or key directory is accessible by group or others; the message has the fix."""


class KeyDirError(ProvisionError):
    """A master key directory (tor HiddenServiceDir format) is missing, malformed or
    inconsistent."""


class MasterKeyMismatch(KeyDirError):
    """A master key does not belong to the master onion address the cluster uses."""


class InviteError(ProvisionError):
    """An invite (``onionfleet-invite:v1:…``) cannot be used."""


class InviteSyntaxError(InviteError):
    """The invite is not an ``onionfleet-invite`` line, or its base64 or JSON is broken."""


class InviteVersionError(InviteError):
    """The invite was made by a version of onionfleet whose invite format this one cannot read."""


class InviteFieldError(InviteError):
    """A field of the invite is missing, unknown, of the wrong type or has a bad value.

    ``field`` is the dotted path inside the invite (``wireguard.public_key``).
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(
            f"invite field {field!r}: {message}; ask the inviting operator for a fresh invite "
            "(onionfleet init writes one)"
        )
