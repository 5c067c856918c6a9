"""Opening a socket to a target: directly (TCP targets) or through tor's SOCKS5 (onion targets).

This is an adapter (it does I/O). The proxy and the prober take a :class:`TargetConnector`, so
tests can inject their own. Onion targets use python-socks' asyncio API with ``rdns=True``: the
``.onion`` name goes to tor as SOCKS5 ATYP=DOMAINNAME (RFC 1928 §4) and tor resolves it. SOCKS
username/password select tor's stream isolation (``IsolateSOCKSAuth``, on by default): a fresh
random pair per probe gives a fresh circuit.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass
from typing import Protocol

from python_socks import ProxyConnectionError, ProxyError, ProxyTimeoutError, ProxyType
from python_socks.async_.asyncio import Proxy

from onionfleet.node.errors import NodeConfigError, TargetConnectError
from onionfleet.node.targets import OnionTarget, SocksEndpoint, Target

__all__ = ["SocksAuth", "StreamConnector", "TargetConnector", "socks_reply_text"]

# tor's SOCKS5 reply codes with `ExtendedErrors` (tor.1 man page, SocksPort ExtendedErrors;
# tor's socks5_reply_status_t), plus RFC 1928 §6.
_SOCKS_REPLY_TEXT: dict[int, str] = {
    0x01: "general SOCKS server failure",
    0x02: "connection not allowed by ruleset",
    0x03: "network unreachable",
    0x04: "host unreachable",
    0x05: "connection refused by the target",
    0x06: "TTL expired (tor: stream timed out)",
    0x07: "command not supported",
    0x08: "address type not supported",
    0xF0: "onion service descriptor not found (target not published yet, or down)",
    0xF1: "onion service descriptor is invalid",
    0xF2: "onion service introduction failed",
    0xF3: "onion service rendezvous failed",
    0xF4: "onion service needs client authorization",
    0xF5: "onion service client authorization is wrong",
    0xF6: "onion address is invalid",
    0xF7: "onion service introduction timed out",
}


def socks_reply_text(code: int | None) -> str:
    """Human text for a SOCKS5 reply code, including tor's ExtendedErrors 0xF0–0xF7."""
    if code is None:
        return "SOCKS handshake failed"
    return _SOCKS_REPLY_TEXT.get(code, f"SOCKS reply code 0x{code:02x}")


@dataclass(frozen=True, slots=True)
class SocksAuth:
    """SOCKS5 username/password (RFC 1929), used by tor only as a stream-isolation key."""

    username: str
    password: str

    def __repr__(self) -> str:
        return "SocksAuth(<isolation>)"


class TargetConnector(Protocol):
    """Opens a connected, non-blocking socket to a target within ``timeout_s``.

    Raises :class:`~onionfleet.node.errors.TargetConnectError` on any failure (never a bare
    ``OSError``); cancellation propagates.
    """

    async def open_socket(
        self, target: Target, *, timeout_s: float, isolation: SocksAuth | None = None
    ) -> socket.socket: ...


class StreamConnector:
    """The real connector: direct TCP for TCP targets, tor's SOCKS5 port for onion targets."""

    def __init__(self, socks: SocksEndpoint | None) -> None:
        self._socks = socks

    async def open_socket(
        self, target: Target, *, timeout_s: float, isolation: SocksAuth | None = None
    ) -> socket.socket:
        if timeout_s <= 0:
            raise TargetConnectError(
                f"no time left to connect to target {target.display}",
                target=target.display,
                reason="timeout",
            )
        if isinstance(target, OnionTarget):
            sock = await self._open_via_socks(target, timeout_s, isolation)
        else:
            sock = await self._open_direct(target.host, target.port, target.display, timeout_s)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    async def _open_via_socks(
        self, target: OnionTarget, timeout_s: float, isolation: SocksAuth | None
    ) -> socket.socket:
        if self._socks is None:
            raise NodeConfigError(
                f"onion target {target.display} needs tor's SOCKS port; set the node's "
                "tor SOCKS port in the configuration"
            )
        proxy = Proxy(
            ProxyType.SOCKS5,
            self._socks.host,
            self._socks.port,
            username=isolation.username if isolation else None,
            password=isolation.password if isolation else None,
            rdns=True,
        )
        try:
            sock: socket.socket = await proxy.connect(target.host, target.port, timeout=timeout_s)
        except ProxyTimeoutError as exc:
            raise TargetConnectError(
                f"connecting to onion target {target.display} through tor timed out after "
                f"{timeout_s:.1f} s (circuit build can take 5-30 s; raise connect_timeout_s if "
                "this repeats)",
                target=target.display,
                reason="timeout",
            ) from exc
        except ProxyConnectionError as exc:
            raise TargetConnectError(
                f"cannot reach tor's SOCKS port {self._socks.host}:{self._socks.port} for target "
                f"{target.display}: {exc.strerror or exc}; is the node's tor running?",
                target=target.display,
                reason="socks-down",
            ) from exc
        except ProxyError as exc:
            code = exc.error_code if isinstance(exc.error_code, int) else None
            raise TargetConnectError(
                f"tor could not connect to onion target {target.display}: {socks_reply_text(code)}",
                target=target.display,
                reason="socks",
            ) from exc
        except OSError as exc:
            raise TargetConnectError(
                f"connection to tor's SOCKS port failed for target {target.display}: {exc}",
                target=target.display,
                reason="socks",
            ) from exc
        sock.setblocking(False)
        return sock

    async def _open_direct(
        self, host: str, port: int, display: str, timeout_s: float
    ) -> socket.socket:
        loop = asyncio.get_running_loop()
        last: OSError | None = None
        try:
            async with asyncio.timeout(timeout_s):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
                for family, type_, proto, _canon, addr in infos:
                    sock = socket.socket(family, type_, proto)
                    try:
                        sock.setblocking(False)
                        await loop.sock_connect(sock, addr)
                    except BaseException as exc:
                        sock.close()
                        if isinstance(exc, OSError):
                            last = exc
                            continue
                        raise
                    return sock
        except TimeoutError as exc:
            raise TargetConnectError(
                f"connecting to target {display} timed out after {timeout_s:.1f} s",
                target=display,
                reason="timeout",
            ) from exc
        except OSError as exc:  # getaddrinfo
            raise TargetConnectError(
                f"cannot resolve target {display}: {exc}", target=display, reason="unreachable"
            ) from exc
        reason = "refused" if isinstance(last, ConnectionRefusedError) else "unreachable"
        detail = last.strerror if last is not None and last.strerror else str(last)
        raise TargetConnectError(
            f"connecting to target {display} failed: {detail}; is the target running?",
            target=display,
            reason=reason,
        ) from last
