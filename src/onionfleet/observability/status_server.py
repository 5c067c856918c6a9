"""The local status endpoint: a minimal asyncio HTTP/1.1 server on a unix socket or loopback port.

Routes (each only when its source was given):

* ``GET /status`` → the JSON document from the ``status`` provider callback (the daemon composes
  it, see :mod:`onionfleet.observability.status`);
* ``GET /metrics`` → Prometheus text exposition of the registry (``generate_latest``);
* ``POST /drain`` → awaits the ``drain`` callback and returns its JSON result;
* anything else → ``404``/``405`` with a JSON error body.

One request per connection (``Connection: close``): the clients are ``onionfleet status`` and a
Prometheus scraper, so keep-alive buys nothing and closing keeps the server simple. Every read
has a time limit (a slow or silent client is cut off after ``read_timeout_s``), request heads and
bodies are bounded (``431``/``413``), and at most ``max_clients`` connections are served at once
(more wait in the kernel's accept backlog: back-pressure, not failure).

Only local listeners are allowed: a unix socket (created with mode 0600 or 0660 through a rename,
so it never exists with looser permissions) or a loopback TCP address. A non-loopback address is
refused with :class:`~onionfleet.observability.errors.StatusListenError`.

Lifecycle (STYLE §2): :meth:`StatusServer.run` binds, resolves ``ready`` with the bound
:class:`~onionfleet.config.Endpoint` (the real port when port 0 was asked for), serves until
cancelled, then closes the listener, cancels in-flight requests and removes its socket file.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import json
import logging
import os
import socket
import stat
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from onionfleet.config import Endpoint
from onionfleet.errors import OnionfleetError
from onionfleet.observability.errors import StatusHttpError, StatusListenError

__all__ = [
    "DrainCallback",
    "RequestHead",
    "ServerLimits",
    "StatusProvider",
    "StatusServer",
    "metrics_server",
    "parse_request_head",
]

log = logging.getLogger(__name__)

StatusProvider = Callable[[], Mapping[str, Any]]
DrainCallback = Callable[[], Awaitable[Mapping[str, Any]]]

_ACCEPT_CAPACITY_ERRNOS: Final = frozenset(
    {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
)
_REASONS: Final = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_JSON: Final = "application/json"


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """Bounds of the status server (seconds and bytes)."""

    max_head_bytes: int = 8 * 1024
    max_body_bytes: int = 4 * 1024
    read_timeout_s: float = 5.0
    write_timeout_s: float = 10.0
    drain_timeout_s: float = 300.0
    max_clients: int = 32

    def __post_init__(self) -> None:
        for name in ("read_timeout_s", "write_timeout_s", "drain_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("max_head_bytes", "max_body_bytes", "max_clients"):
            if not getattr(self, name) >= 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True, slots=True)
class RequestHead:
    """A parsed request head: method, path (query string removed), lower-cased headers."""

    method: str
    path: str
    headers: Mapping[str, str]
    content_length: int


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: str
    body: bytes


def parse_request_head(head: bytes, *, max_body_bytes: int) -> RequestHead:
    """Parse ``head`` (request line and headers, ending in an empty line; RFC 9112 §2-3).

    Raises only :class:`~onionfleet.observability.errors.StatusHttpError` carrying the status
    code to answer with (400 malformed, 413 body too large, 501 Transfer-Encoding).
    """
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        raise StatusHttpError(400, "request head is not ASCII") from None
    if not text.endswith("\r\n\r\n"):
        raise StatusHttpError(400, "request head does not end with an empty line")
    lines = text[:-4].split("\r\n")
    parts = lines[0].split(" ")
    if (
        len(parts) != 3
        or parts[2] not in ("HTTP/1.0", "HTTP/1.1")
        or not parts[0].isalpha()
        or not parts[1].startswith("/")
    ):
        raise StatusHttpError(400, "malformed request line")
    method, target, _ = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or any(c in name for c in " \t\r\n"):
            raise StatusHttpError(400, "malformed header line")
        headers[name.lower()] = value.strip()
    if "transfer-encoding" in headers:
        raise StatusHttpError(501, "Transfer-Encoding is not supported; send Content-Length")
    length = 0
    length_text = headers.get("content-length")
    if length_text is not None:
        if not length_text.isdigit() or len(length_text) > 12:
            raise StatusHttpError(400, "Content-Length is not a number")
        length = int(length_text)
        if length > max_body_bytes:
            raise StatusHttpError(413, f"request body is larger than {max_body_bytes} bytes")
    return RequestHead(method, target.split("?", 1)[0], headers, length)


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    content_type: str
    body: bytes
    allow: str = ""


def _json_response(status: int, doc: Mapping[str, Any]) -> _Response:
    body = json.dumps(doc, ensure_ascii=False, allow_nan=False).encode("utf-8") + b"\n"
    return _Response(status, _JSON, body)


def _error(status: int, message: str, *, allow: str = "") -> _Response:
    resp = _json_response(status, {"error": message, "status": status})
    return _Response(resp.status, resp.content_type, resp.body, allow)


class StatusServer:
    """Serves ``/status``, ``/metrics`` and ``/drain`` on one local listener (module docstring).

    ``unix_mode`` is the unix socket's permission bits (0o600, or 0o660 to let a group — e.g.
    the operators' — read status). A server with only ``registry`` is the separate metrics
    listener (:func:`metrics_server`).
    """

    def __init__(
        self,
        listen: Endpoint,
        *,
        status: StatusProvider | None = None,
        registry: CollectorRegistry | None = None,
        drain: DrainCallback | None = None,
        limits: ServerLimits | None = None,
        unix_mode: int = 0o600,
        name: str = "status",
    ) -> None:
        if unix_mode not in (0o600, 0o660):
            raise ValueError(f"unix_mode must be 0o600 or 0o660, got {unix_mode:o}")
        _check_loopback(listen, name)
        self.listen = listen
        self.limits = limits or ServerLimits()
        self._status = status
        self._registry = registry
        self._drain = drain
        self._unix_mode = unix_mode
        self._name = name
        self._address: Endpoint | None = None
        self._drain_lock = asyncio.Lock()
        self._requests_served = 0

    @property
    def address(self) -> Endpoint | None:
        """The bound address once :meth:`run` has bound (the real port for port 0)."""
        return self._address

    @property
    def requests_served(self) -> int:
        """Requests answered so far (any status code)."""
        return self._requests_served

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self, ready: asyncio.Future[Endpoint] | None = None) -> None:
        """Bind, resolve ``ready`` with the bound address, serve until cancelled."""
        sock, address, inode = self._bind()
        self._address = address
        try:
            if ready is not None and not ready.done():
                ready.set_result(address)
            log.info(
                "%s endpoint listening on %s",
                self._name,
                address,
                extra={"event": "status_listen", "endpoint": str(address)},
            )
            slots = asyncio.Semaphore(self.limits.max_clients)
            loop = asyncio.get_running_loop()
            async with asyncio.TaskGroup() as tg:
                while True:
                    await slots.acquire()
                    try:
                        conn, _ = await loop.sock_accept(sock)
                    except OSError as exc:
                        slots.release()
                        if exc.errno in _ACCEPT_CAPACITY_ERRNOS:
                            log.warning(
                                "%s endpoint cannot accept a connection (%s); retrying",
                                self._name,
                                exc.strerror,
                            )
                            await asyncio.sleep(0.1)
                            continue
                        raise
                    tg.create_task(self._serve_connection(conn, slots))
        finally:
            sock.close()
            self._remove_socket_file(inode)

    # -- binding -----------------------------------------------------------------------------

    def _bind(self) -> tuple[socket.socket, Endpoint, int | None]:
        try:
            if self.listen.unix_path is not None:
                sock, inode = self._bind_unix(self.listen.unix_path)
                return sock, Endpoint(unix_path=self.listen.unix_path), inode
            sock = self._bind_tcp()
            host, port = sock.getsockname()[:2]
            return sock, Endpoint(host=host, port=port), None
        except OSError as exc:
            raise StatusListenError(
                f"{self._name} endpoint cannot listen on {self.listen}: {exc.strerror or exc}; "
                "pick a free port or path, or stop the process that holds it"
            ) from exc

    def _bind_tcp(self) -> socket.socket:
        host = self.listen.host or "127.0.0.1"
        if host == "localhost":
            host = "127.0.0.1"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, self.listen.port or 0))
            sock.listen(64)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    def _bind_unix(self, path: Path) -> tuple[socket.socket, int]:
        self._remove_stale_socket(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(tmp))
            os.chmod(tmp, self._unix_mode)  # before the socket is reachable under its name
            os.rename(tmp, path)
            sock.listen(64)
            sock.setblocking(False)
            inode = os.stat(path).st_ino
        except BaseException:
            sock.close()
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return sock, inode

    def _remove_stale_socket(self, path: Path) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise StatusListenError(
                f"{self._name} socket path {path} exists and is not a socket; "
                "remove it or set another path in [status] listen"
            )
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError:
            os.unlink(path)  # nobody listens: left over from an earlier run
            return
        finally:
            probe.close()
        raise StatusListenError(
            f"another process already serves {self._name} on {path}; "
            "is another onionfleet daemon running with this config?"
        )

    def _remove_socket_file(self, inode: int | None) -> None:
        path = self.listen.unix_path
        if path is None or inode is None:
            return
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == inode:  # still ours, not a newer daemon's
                os.unlink(path)

    # -- one connection ----------------------------------------------------------------------

    async def _serve_connection(self, conn: socket.socket, slots: asyncio.Semaphore) -> None:
        writer: asyncio.StreamWriter | None = None
        try:
            reader, writer = await asyncio.open_connection(
                sock=conn, limit=self.limits.max_head_bytes
            )
            response = await self._respond(reader)
            await self._write(writer, response)
        except (ConnectionError, OSError, TimeoutError):
            pass  # the client went away or stopped reading: nothing to tell it
        except Exception:  # never let one connection take the endpoint down
            log.exception("%s endpoint: connection failed", self._name)
        finally:
            slots.release()
            if writer is not None:
                writer.close()
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(1.0):
                        await writer.wait_closed()
            else:
                conn.close()

    async def _respond(self, reader: asyncio.StreamReader) -> _Response:
        try:
            try:
                async with asyncio.timeout(self.limits.read_timeout_s):
                    request = await self._read_request(reader)
            except TimeoutError:
                raise StatusHttpError(
                    408, f"request not complete within {self.limits.read_timeout_s:g} s"
                ) from None
            return await self._route(request)
        except StatusHttpError as exc:
            return _error(exc.status, exc.message, allow=exc.allow)
        except Exception as exc:  # a bug in a callback must not take the endpoint down
            log.exception("%s endpoint: request failed", self._name)
            return _error(500, f"internal error ({type(exc).__name__})")
        finally:
            self._requests_served += 1

    async def _read_request(self, reader: asyncio.StreamReader) -> _Request:
        try:
            raw_head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            raise StatusHttpError(
                431, f"request head is larger than {self.limits.max_head_bytes} bytes"
            ) from None
        except asyncio.IncompleteReadError:
            raise StatusHttpError(400, "connection closed before a complete request head") from None
        head = parse_request_head(raw_head, max_body_bytes=self.limits.max_body_bytes)
        try:
            body = await reader.readexactly(head.content_length)
        except asyncio.IncompleteReadError:
            raise StatusHttpError(400, "connection closed before the request body ended") from None
        return _Request(head.method, head.path, body)

    async def _route(self, request: _Request) -> _Response:
        routes: dict[str, tuple[str, Callable[[], Awaitable[_Response]]]] = {}
        if self._status is not None:
            routes["/status"] = ("GET", self._get_status)
        if self._registry is not None:
            routes["/metrics"] = ("GET", self._get_metrics)
        if self._drain is not None:
            routes["/drain"] = ("POST", self._post_drain)
        route = routes.get(request.path)
        if route is None:
            known = ", ".join(f"{m} {p}" for p, (m, _) in sorted(routes.items()))
            raise StatusHttpError(
                404, f"no such resource {request.path!r}; this endpoint has {known}"
            )
        method, handler = route
        if request.method != method:
            raise StatusHttpError(
                405, f"{request.path} accepts {method} only, not {request.method}", allow=method
            )
        return await handler()

    async def _get_status(self) -> _Response:
        if self._status is None:  # pragma: no cover - the route exists only with a provider
            raise StatusHttpError(404, "no status here")
        try:
            doc = self._status()
            return _json_response(200, doc)
        except OnionfleetError as exc:
            log.warning("status provider failed: %s", exc, extra={"event": "status_error"})
            raise StatusHttpError(500, f"status provider failed: {exc}") from exc
        except Exception as exc:
            log.exception("status provider failed", extra={"event": "status_error"})
            raise StatusHttpError(500, f"status provider failed ({type(exc).__name__})") from exc

    async def _get_metrics(self) -> _Response:
        if self._registry is None:  # pragma: no cover - the route exists only with a registry
            raise StatusHttpError(404, "no metrics here")
        try:
            body = generate_latest(self._registry)
        except Exception as exc:
            log.exception("metrics collection failed", extra={"event": "metrics_error"})
            raise StatusHttpError(500, f"metrics collection failed ({type(exc).__name__})") from exc
        return _Response(200, CONTENT_TYPE_LATEST, body)

    async def _post_drain(self) -> _Response:
        if self._drain is None:  # pragma: no cover - the route exists only with a callback
            raise StatusHttpError(404, "no drain here")
        async with self._drain_lock:
            log.info("drain requested on the status endpoint", extra={"event": "drain_request"})
            try:
                async with asyncio.timeout(self.limits.drain_timeout_s):
                    result = await self._drain()
            except TimeoutError:
                raise StatusHttpError(
                    504, f"drain did not finish within {self.limits.drain_timeout_s:g} s"
                ) from None
            except OnionfleetError as exc:
                raise StatusHttpError(500, f"drain failed: {exc}") from exc
            return _json_response(200, result)

    async def _write(self, writer: asyncio.StreamWriter, response: _Response) -> None:
        head = [
            f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Error')}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
            "Cache-Control: no-store",
            "Connection: close",
        ]
        if response.allow:
            head.append(f"Allow: {response.allow}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("ascii") + response.body)
        async with asyncio.timeout(self.limits.write_timeout_s):
            await writer.drain()


def _check_loopback(listen: Endpoint, name: str) -> None:
    if listen.unix_path is not None:
        if not listen.unix_path.is_absolute():
            raise StatusListenError(f"{name} socket path {listen.unix_path} must be absolute")
        return
    host = listen.host or ""
    loopback = host == "localhost"
    with contextlib.suppress(ValueError):
        loopback = loopback or ipaddress.ip_address(host).is_loopback
    if not loopback:
        raise StatusListenError(
            f"{name} endpoint {listen} is not a loopback address; status and metrics are local "
            "only: listen on 127.0.0.1 or a unix socket (scrape remote nodes over SSH or "
            "WireGuard with a local forwarder)"
        )


def metrics_server(
    listen: Endpoint, registry: CollectorRegistry, *, limits: ServerLimits | None = None
) -> StatusServer:
    """The optional separate metrics listener (``[metrics] listen``): ``GET /metrics`` only."""
    return StatusServer(listen, registry=registry, limits=limits, name="metrics")
