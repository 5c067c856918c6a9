"""Control-port authentication, pure parts: PROTOCOLINFO parsing, method choice, SAFECOOKIE math.

control-spec §3.21 PROTOCOLINFO, §3.5 AUTHENTICATE, §3.24 AUTHCHALLENGE. The adapter
(:mod:`onionfleet.tor.controller`) reads the cookie file and makes the nonce; no I/O here.
No function here puts the cookie or password into a message.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
from dataclasses import dataclass, field

from onionfleet.tor.errors import ControlAuthError, RemoteProtocolError
from onionfleet.tor.messages import Reply, split_arguments

__all__ = [
    "COOKIE_LEN",
    "NONCE_LEN",
    "SAFECOOKIE_CLIENT_KEY",
    "SAFECOOKIE_SERVER_KEY",
    "AuthChallenge",
    "AuthMethod",
    "ProtocolInfo",
    "check_cookie",
    "choose_auth_method",
    "parse_authchallenge",
    "parse_protocolinfo",
    "safecookie_client_hash",
    "safecookie_server_hash",
    "verify_server_hash",
]

#: control-spec §3.24 AUTHCHALLENGE: the HMAC-SHA256 keys of the two hashes.
SAFECOOKIE_SERVER_KEY = b"Tor safe cookie authentication server-to-controller hash"
SAFECOOKIE_CLIENT_KEY = b"Tor safe cookie authentication controller-to-server hash"
#: control-spec §3.24: "The ClientNonce and ServerNonce are each 32 bytes"; the cookie is 32 bytes
#: (tor's ``AUTHENTICATION_COOKIE_LEN``).
NONCE_LEN = 32
COOKIE_LEN = 32

_HEX64 = re.compile(r"[0-9A-Fa-f]{64}")


class AuthMethod(enum.Enum):
    """The methods of ``250-AUTH METHODS=…`` (control-spec §3.21)."""

    NULL = "NULL"
    HASHEDPASSWORD = "HASHEDPASSWORD"
    COOKIE = "COOKIE"
    SAFECOOKIE = "SAFECOOKIE"


@dataclass(frozen=True, slots=True)
class ProtocolInfo:
    """The PROTOCOLINFO reply (control-spec §3.21). Unknown methods are kept as strings."""

    protocol_version: int
    auth_methods: frozenset[str]
    cookie_file: str | None = None
    tor_version: str | None = None
    extra_lines: tuple[str, ...] = field(default=())


def parse_protocolinfo(reply: Reply) -> ProtocolInfo:
    """Parse ``250-PROTOCOLINFO 1`` / ``250-AUTH METHODS=… [COOKIEFILE="…"]`` / ``250-VERSION
    Tor="…"`` / ``250 OK``. Raises TorCommandError for a 5xx, RemoteProtocolError when malformed."""
    reply.raise_for_status("PROTOCOLINFO")
    version: int | None = None
    methods: frozenset[str] | None = None
    cookie_file: str | None = None
    tor_version: str | None = None
    extra: list[str] = []
    for line in reply.lines[:-1]:
        keyword, _, rest = line.text.partition(" ")
        if keyword == "PROTOCOLINFO":
            if not rest.strip().isdigit():
                raise RemoteProtocolError("PROTOCOLINFO version is not a number")
            version = int(rest.strip())
        elif keyword == "AUTH":
            kw = {a.key: a.value for a in split_arguments(rest) if a.key is not None}
            if "METHODS" not in kw:
                raise RemoteProtocolError("PROTOCOLINFO AUTH line lacks METHODS=")
            methods = frozenset(m for m in kw["METHODS"].split(",") if m)
            cookie_file = kw.get("COOKIEFILE")
        elif keyword == "VERSION":
            kw = {a.key: a.value for a in split_arguments(rest) if a.key is not None}
            tor_version = kw.get("Tor")
        else:
            extra.append(line.text)
    if version is None or methods is None:
        raise RemoteProtocolError("PROTOCOLINFO reply lacks its PROTOCOLINFO or AUTH line")
    return ProtocolInfo(version, methods, cookie_file, tor_version, tuple(extra))


def choose_auth_method(info: ProtocolInfo, *, have_password: bool, have_cookie: bool) -> AuthMethod:
    """Pick how to authenticate: NULL, then a configured password, then SAFECOOKIE, then COOKIE.

    SAFECOOKIE beats COOKIE: it proves tor knows the cookie too (control-spec §3.24).
    """
    methods = info.auth_methods
    if AuthMethod.NULL.value in methods:
        return AuthMethod.NULL
    if have_password and AuthMethod.HASHEDPASSWORD.value in methods:
        return AuthMethod.HASHEDPASSWORD
    if have_cookie and AuthMethod.SAFECOOKIE.value in methods:
        return AuthMethod.SAFECOOKIE
    if have_cookie and AuthMethod.COOKIE.value in methods:
        return AuthMethod.COOKIE
    offered = ",".join(sorted(methods)) or "none"
    raise ControlAuthError(
        f"no usable control-port auth method (tor offers {offered}; "
        f"password configured: {have_password}, cookie readable: {have_cookie}); "
        "configure the control password or give onionfleet read access to tor's cookie file"
    )


def check_cookie(cookie: bytes, path: str) -> bytes:
    """Return ``cookie`` if it has tor's cookie length, else raise (contents never shown)."""
    if len(cookie) != COOKIE_LEN:
        raise ControlAuthError(
            f"control auth cookie {path} has {len(cookie)} bytes, expected {COOKIE_LEN}; "
            "is this tor's control_auth_cookie?"
        )
    return cookie


@dataclass(frozen=True, slots=True)
class AuthChallenge:
    """``250 AUTHCHALLENGE SERVERHASH=… SERVERNONCE=…`` (control-spec §3.24)."""

    server_hash: bytes
    server_nonce: bytes


def parse_authchallenge(reply: Reply) -> AuthChallenge:
    reply.raise_for_status("AUTHCHALLENGE")
    keyword, _, rest = reply.text.partition(" ")
    if keyword != "AUTHCHALLENGE":
        raise RemoteProtocolError("AUTHCHALLENGE reply does not start with AUTHCHALLENGE")
    kw = {a.key: a.value for a in split_arguments(rest) if a.key is not None}
    server_hash = kw.get("SERVERHASH", "")
    server_nonce = kw.get("SERVERNONCE", "")
    if _HEX64.fullmatch(server_hash) is None or _HEX64.fullmatch(server_nonce) is None:
        raise RemoteProtocolError(
            "AUTHCHALLENGE reply lacks a 64-hex-digit SERVERHASH= or SERVERNONCE="
        )
    return AuthChallenge(bytes.fromhex(server_hash), bytes.fromhex(server_nonce))


def safecookie_server_hash(cookie: bytes, client_nonce: bytes, server_nonce: bytes) -> bytes:
    """``HMAC-SHA256(SAFECOOKIE_SERVER_KEY, CookieString | ClientNonce | ServerNonce)`` (§3.24)."""
    return hmac.new(
        SAFECOOKIE_SERVER_KEY, cookie + client_nonce + server_nonce, hashlib.sha256
    ).digest()


def safecookie_client_hash(cookie: bytes, client_nonce: bytes, server_nonce: bytes) -> bytes:
    """``HMAC-SHA256(SAFECOOKIE_CLIENT_KEY, CookieString | ClientNonce | ServerNonce)`` (§3.24)."""
    return hmac.new(
        SAFECOOKIE_CLIENT_KEY, cookie + client_nonce + server_nonce, hashlib.sha256
    ).digest()


def verify_server_hash(cookie: bytes, client_nonce: bytes, challenge: AuthChallenge) -> bytes:
    """Check tor's SERVERHASH (constant time) and return the client hash to send.

    A wrong server hash means whatever answers on the control port does not know tor's cookie (a
    spoofed control port, or a stale cookie file): :class:`ControlAuthError`, and we send nothing.
    """
    if len(challenge.server_nonce) != NONCE_LEN:
        raise ControlAuthError("AUTHCHALLENGE server nonce is not 32 bytes")
    expected = safecookie_server_hash(cookie, client_nonce, challenge.server_nonce)
    if not hmac.compare_digest(expected, challenge.server_hash):
        raise ControlAuthError(
            "SAFECOOKIE: the control port's SERVERHASH is wrong — it does not know this cookie "
            "(stale cookie file, or not the tor you expect on that port); refusing to authenticate"
        )
    return safecookie_client_hash(cookie, client_nonce, challenge.server_nonce)
