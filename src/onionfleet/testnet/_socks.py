"""A minimal SOCKS5 client (RFC 1928, RFC 1929) for fetching through a test client tor.

The message codec is pure; :func:`http_get_via_socks` is the blocking adapter on top. The
hostname travels as ATYP=DOMAINNAME so tor, not we, resolves the ``.onion``. tor's extended
reply codes (``SocksPort ... ExtendedErrors``) come from tor-spec ``socks-extensions.txt``
[EXTENDED-ERRORS] / prop 304.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from onionfleet.testnet.errors import FetchTimeoutError, SocksReplyError, TestnetError

__all__ = [
    "RETRYABLE_REPLY_CODES",
    "SOCKS5_REPLY_MEANINGS",
    "HttpUrl",
    "connect_request",
    "explain_reply",
    "greeting",
    "http_get_via_socks",
    "http_get_with_retry",
    "parse_auth_reply",
    "parse_connect_reply_header",
    "parse_http_response",
    "parse_method_choice",
    "parse_url",
    "userpass_request",
]

SOCKS_VERSION = 5
METHOD_NO_AUTH = 0x00
METHOD_USERPASS = 0x02
METHOD_NONE_ACCEPTABLE = 0xFF
CMD_CONNECT = 0x01
ATYP_IPV4 = 0x01
ATYP_DOMAIN = 0x03
ATYP_IPV6 = 0x04

SOCKS5_REPLY_MEANINGS: dict[int, str] = {
    0x00: "succeeded",
    0x01: "general SOCKS server failure",
    0x02: "connection not allowed by ruleset (exit policy)",
    0x03: "network unreachable",
    0x04: "host unreachable",
    0x05: "connection refused (the onion service's target port answered with a refusal)",
    0x06: "TTL expired (circuit or stream timed out)",
    0x07: "command not supported",
    0x08: "address type not supported",
    0xF0: "onion service descriptor can not be found (not yet uploaded to the HSDirs?)",
    0xF1: "onion service descriptor is invalid",
    0xF2: "onion service introduction failed",
    0xF3: "onion service rendezvous failed",
    0xF4: "onion service missing client authorization",
    0xF5: "onion service wrong client authorization",
    0xF6: "onion service invalid address",
    0xF7: "onion service introduction timed out",
}


def explain_reply(code: int) -> str:
    """``0xF0 (onion service descriptor can not be found ...)``."""
    return f"0x{code:02X} ({SOCKS5_REPLY_MEANINGS.get(code, 'unknown reply code')})"


def greeting(*, userpass: bool) -> bytes:
    """RFC 1928 §3 method selection: offer exactly one method."""
    return bytes([SOCKS_VERSION, 1, METHOD_USERPASS if userpass else METHOD_NO_AUTH])


def parse_method_choice(reply: bytes, *, userpass: bool) -> None:
    """RFC 1928 §3: ``VER METHOD``; the server must pick the method we offered."""
    if len(reply) != 2 or reply[0] != SOCKS_VERSION:
        raise TestnetError(f"SOCKS5 server sent a malformed method reply {reply.hex()}")
    wanted = METHOD_USERPASS if userpass else METHOD_NO_AUTH
    if reply[1] != wanted:
        raise TestnetError(
            f"SOCKS5 server refused authentication method 0x{wanted:02X} "
            f"(answered 0x{reply[1]:02X})"
        )


def userpass_request(username: str, password: str) -> bytes:
    """RFC 1929 §2: ``VER=1 ULEN UNAME PLEN PASSWD`` (each 1-255 bytes)."""
    user = username.encode()
    pwd = password.encode()
    for label, value in (("username", user), ("password", pwd)):
        if not 1 <= len(value) <= 255:
            raise TestnetError(f"SOCKS5 {label} must be 1-255 bytes, got {len(value)}")
    return bytes([1, len(user)]) + user + bytes([len(pwd)]) + pwd


def parse_auth_reply(reply: bytes) -> None:
    """RFC 1929 §2: ``VER STATUS``, status 0 = success."""
    if len(reply) != 2 or reply[0] != 1:
        raise TestnetError(f"SOCKS5 server sent a malformed authentication reply {reply.hex()}")
    if reply[1] != 0:
        raise TestnetError(f"SOCKS5 server rejected the username/password (status {reply[1]})")


def connect_request(host: str, port: int) -> bytes:
    """RFC 1928 §4 CONNECT with ATYP=DOMAINNAME, so the proxy resolves ``host``."""
    name = host.encode("ascii", errors="strict") if host.isascii() else b""
    if not 1 <= len(name) <= 255:
        raise TestnetError(f"host name {host!r} must be 1-255 ASCII characters")
    if not 1 <= port <= 65535:
        raise TestnetError(f"port {port} is not a TCP port (1-65535)")
    return (
        bytes([SOCKS_VERSION, CMD_CONNECT, 0, ATYP_DOMAIN, len(name)])
        + name
        + port.to_bytes(2, "big")
    )


def parse_connect_reply_header(header: bytes) -> int:
    """RFC 1928 §6: parse ``VER REP RSV ATYP`` plus the first address byte.

    Returns how many more bytes (rest of BND.ADDR and BND.PORT) follow. Raises
    :class:`SocksReplyError` when REP is not 0 (success), explaining tor's extended codes.
    """
    if len(header) != 5 or header[0] != SOCKS_VERSION:
        raise TestnetError(f"SOCKS5 server sent a malformed CONNECT reply {header.hex()}")
    code = header[1]
    if code != 0:
        raise SocksReplyError(f"SOCKS5 CONNECT failed: {explain_reply(code)}", reply_code=code)
    atyp = header[3]
    if atyp == ATYP_IPV4:
        return 4 - 1 + 2
    if atyp == ATYP_IPV6:
        return 16 - 1 + 2
    if atyp == ATYP_DOMAIN:
        return header[4] + 2
    raise TestnetError(f"SOCKS5 CONNECT reply has unknown address type 0x{atyp:02X}")


@dataclass(frozen=True, slots=True)
class HttpUrl:
    """The parts of an ``http://host[:port]/path`` URL a GET needs."""

    host: str
    port: int
    path: str


def parse_url(url: str) -> HttpUrl:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise TestnetError(f"URL {url!r} is not an http://host/... URL")
    try:
        port = parts.port or 80
    except ValueError as exc:
        raise TestnetError(f"URL {url!r} has an invalid port") from exc
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return HttpUrl(host=parts.hostname, port=port, path=path)


_STATUS_RE = re.compile(rb"HTTP/1\.[01] (\d{3})(?: [^\r\n]*)?")


def parse_http_response(raw: bytes) -> tuple[int, bytes]:
    """Split an HTTP/1.0 response read to EOF into ``(status, body)``."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise TestnetError(f"HTTP response has no end of headers ({len(raw)} bytes received)")
    status_line = head.split(b"\r\n", 1)[0]
    match = _STATUS_RE.fullmatch(status_line)
    if match is None:
        raise TestnetError(f"HTTP response has a malformed status line {status_line[:80]!r}")
    return int(match.group(1)), body


def _recv_exactly(sock: socket.socket, count: int, what: str) -> bytes:
    chunks: list[bytes] = []
    remaining = count
    while remaining:
        chunk = sock.recv(remaining)
        if not chunk:
            raise TestnetError(f"SOCKS5 server closed the connection while sending {what}")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def http_get_via_socks(
    socks_port: int,
    url: str,
    *,
    isolation: str | None = None,
    timeout_s: float = 30.0,
    max_body_bytes: int = 16 * 1024 * 1024,
) -> tuple[int, bytes]:
    """Blocking HTTP/1.0 GET of ``url`` through the SOCKS5 port ``127.0.0.1:socks_port``.

    ``isolation`` is sent as SOCKS username and password: with ``IsolateSOCKSAuth`` each distinct
    value gets its own circuit. Raises :class:`SocksReplyError` if tor refuses the stream (e.g.
    0xF0, descriptor not found) and :class:`TestnetError` on any other failure or after
    ``timeout_s`` seconds in total.
    """
    target = parse_url(url)
    deadline = time.monotonic() + timeout_s

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise FetchTimeoutError(
                f"GET {url} via SOCKS port {socks_port}: no answer in {timeout_s} s"
            )
        return left

    try:
        with socket.create_connection(("127.0.0.1", socks_port), timeout=remaining()) as sock:
            sock.settimeout(remaining())
            sock.sendall(greeting(userpass=isolation is not None))
            parse_method_choice(
                _recv_exactly(sock, 2, "its method choice"), userpass=isolation is not None
            )
            if isolation is not None:
                sock.sendall(userpass_request(isolation, isolation))
                parse_auth_reply(_recv_exactly(sock, 2, "its authentication reply"))
            sock.sendall(connect_request(target.host, target.port))
            sock.settimeout(remaining())
            rest = parse_connect_reply_header(_recv_exactly(sock, 5, "its CONNECT reply"))
            _recv_exactly(sock, rest, "its CONNECT reply")
            request = (
                f"GET {target.path} HTTP/1.0\r\nHost: {target.host}\r\n"
                "User-Agent: onionfleet-testnet\r\nConnection: close\r\n\r\n"
            ).encode()
            sock.sendall(request)
            received = bytearray()
            while True:
                sock.settimeout(remaining())
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
                if len(received) > max_body_bytes:
                    raise TestnetError(f"GET {url}: response larger than {max_body_bytes} bytes")
    except TimeoutError as exc:
        raise FetchTimeoutError(
            f"GET {url} via SOCKS port {socks_port}: no answer in {timeout_s} s"
        ) from exc
    except OSError as exc:
        raise TestnetError(
            f"GET {url} via SOCKS port {socks_port} failed: {exc}; is the client tor running?"
        ) from exc
    return parse_http_response(bytes(received))


# SOCKS5 replies that mean "not yet" on a young network: descriptor not on the HSDir yet,
# introduction/rendezvous failed on a circuit built too early, general failure while bootstrapping.
RETRYABLE_REPLY_CODES = frozenset({0x01, 0x04, 0x06, 0xF0, 0xF2, 0xF3, 0xF7})


def http_get_with_retry(
    socks_port: int,
    url: str,
    *,
    timeout_s: float = 60.0,
    attempt_timeout_s: float = 30.0,
    retry_interval_s: float = 1.0,
    isolation_prefix: str = "attempt",
) -> tuple[int, bytes]:
    """:func:`http_get_via_socks` until it succeeds, retrying the "not yet" SOCKS replies.

    Each attempt uses a fresh isolation key (a new circuit) and at most ``attempt_timeout_s``;
    an attempt that times out is retried too. Raises the last error once ``timeout_s`` seconds
    have passed.
    """
    deadline = time.monotonic() + timeout_s
    attempt = 0
    while True:
        attempt += 1
        left = deadline - time.monotonic()
        try:
            return http_get_via_socks(
                socks_port,
                url,
                isolation=f"{isolation_prefix}-{attempt}",
                timeout_s=max(1.0, min(attempt_timeout_s, left)),
            )
        except SocksReplyError as exc:
            if exc.reply_code not in RETRYABLE_REPLY_CODES:
                raise
            if time.monotonic() + retry_interval_s >= deadline:
                raise SocksReplyError(
                    f"{exc} (still failing after {attempt} attempts in {timeout_s:.0f} s)",
                    reply_code=exc.reply_code,
                ) from exc
        except FetchTimeoutError as exc:
            if time.monotonic() + retry_interval_s >= deadline:
                raise FetchTimeoutError(
                    f"{exc} (still failing after {attempt} attempts in {timeout_s:.0f} s)"
                ) from exc
        time.sleep(retry_interval_s)
