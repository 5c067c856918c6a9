"""The node's reverse proxy: tor's HiddenServicePort points here; each stream goes to a target.

For each incoming stream (one tor stream from a client's rendezvous circuit):

1. if ``expect_tor_proxy_header``: read the PROXY v1 line tor sends when the service has
   ``HiddenServiceExportCircuitID haproxy`` (see :mod:`onionfleet.node.proxy_protocol`) and take
   the circuit id from it (within ``header_timeout_s``);
2. connect to a target: candidates from the :class:`~onionfleet.node.balancer.Balancer`, tried in
   order until one connects, all within ``connect_timeout_s`` overall;
3. optionally send a PROXY v1/v2 header carrying the circuit id to the target
   (``send_proxy_header``), so the target can rate-limit per circuit;
4. copy both directions. Back-pressure: when one side's write buffer passes
   ``write_buffer_high_bytes`` the other side stops being read (asyncio flow control:
   ``pause_writing`` → ``pause_reading``), so memory per stream is bounded. Half-close: an EOF
   from one side is passed on with ``write_eof`` and the other direction keeps flowing. A reset
   on one side aborts the other. No byte from either side for ``idle_timeout_s`` closes both.

Beyond ``max_connections`` streams a new stream is closed at once and counted
(``refused_overload_total``). Accept errors for lack of resources (EMFILE, ENFILE, ENOBUFS,
ENOMEM: trio's ``ACCEPT_CAPACITY_ERRNOS``) are logged, the loop sleeps ``accept_backoff_s`` and
keeps accepting; any other accept error propagates.

Each stream is one task in the proxy's TaskGroup; the copying itself happens in protocol
callbacks (no task per direction), which keeps 10k idle streams cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import logging
import os
import socket
import stat
from dataclasses import dataclass
from typing import Literal, cast

from onionfleet.node.balancer import Balancer
from onionfleet.node.connect import TargetConnector
from onionfleet.node.errors import (
    NodeConfigError,
    NoTargetAvailable,
    ProxyHeaderError,
    ProxyListenError,
    TargetConnectError,
)
from onionfleet.node.proxy_protocol import (
    ProxyCommand,
    ProxyFamily,
    ProxyHeader,
    circuit_id_of,
    encode_proxy_header,
    parse_proxy_header,
)
from onionfleet.node.stats import ProxyStats, TargetStats
from onionfleet.node.targets import Target

__all__ = ["ListenAddress", "ProxyConfig", "ReverseProxy", "TcpListen", "UnixListen"]

log = logging.getLogger(__name__)

ACCEPT_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
"""trio ``_highlevel_serve_listeners.py``: accept errors that mean "out of resources, retry"."""

_MAX_ACCEPT_BATCH = 256
_LINGER_RST = (1).to_bytes(4, "little") + (0).to_bytes(4, "little")  # struct linger{1, 0}


@dataclass(frozen=True, slots=True)
class TcpListen:
    """Listen on a loopback TCP port (``HiddenServicePort 80 127.0.0.1:<port>``); 0 = any free."""

    port: int
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise NodeConfigError(f"proxy listen port {self.port} is not in 0..65535")


@dataclass(frozen=True, slots=True)
class UnixListen:
    """Listen on a unix socket (``HiddenServicePort 80 unix:<path>``), created with ``mode``."""

    path: str
    mode: int = 0o660

    def __post_init__(self) -> None:
        if not self.path or len(os.fsencode(self.path)) > 100:
            raise NodeConfigError(
                f"proxy unix socket path {self.path!r} is empty or longer than 100 bytes; "
                "use a shorter path"
            )


ListenAddress = tuple[str, int] | str
"""Where the proxy listens once bound: ``(host, port)`` or a unix socket path."""


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """Operator settings of the reverse proxy (units in the names).

    ``send_proxy_header``: ``None`` (send nothing), ``1`` or ``2`` (PROXY protocol version sent to
    the target before any data). Without a circuit id from tor it sends ``PROXY UNKNOWN`` (v1) or
    a LOCAL header (v2).
    """

    listen: TcpListen | UnixListen
    connect_timeout_s: float = 30.0
    idle_timeout_s: float = 300.0
    max_connections: int = 4096
    expect_tor_proxy_header: bool = False
    header_timeout_s: float = 10.0
    send_proxy_header: Literal[1, 2] | None = None
    write_buffer_high_bytes: int = 256 * 1024
    pending_limit_bytes: int = 256 * 1024
    accept_backoff_s: float = 0.1
    backlog: int = 1024

    def __post_init__(self) -> None:
        for name in ("connect_timeout_s", "idle_timeout_s", "header_timeout_s", "accept_backoff_s"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value > 0:
                raise NodeConfigError(f"proxy {name} {value!r} must be a number of seconds > 0")
        if self.max_connections < 1:
            raise NodeConfigError("proxy max_connections must be at least 1")
        if self.send_proxy_header not in (None, 1, 2):
            raise NodeConfigError(
                f"proxy send_proxy_header {self.send_proxy_header!r} must be none, 1 or 2"
            )
        if self.write_buffer_high_bytes < 1024 or self.pending_limit_bytes < 1024:
            raise NodeConfigError("proxy buffer sizes must be at least 1024 bytes")


class _Side(asyncio.Protocol):
    """One end of a relayed stream: forwards its events to the :class:`_Relay`."""

    __slots__ = ("is_client", "relay", "transport")

    def __init__(self, relay: _Relay, is_client: bool) -> None:
        self.relay = relay
        self.is_client = is_client
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # stream sockets: always a Transport

    def data_received(self, data: bytes) -> None:
        self.relay.on_data(self, data)

    def eof_received(self) -> bool:
        self.relay.on_eof(self)
        return True  # keep the write direction open (half-close)

    def connection_lost(self, exc: Exception | None) -> None:
        self.relay.on_lost(self, exc)

    def pause_writing(self) -> None:
        self.relay.on_peer_backlog(self, paused=True)

    def resume_writing(self) -> None:
        self.relay.on_peer_backlog(self, paused=False)


class _Relay:
    """State of one relayed stream (client side, target side, counters, phase)."""

    def __init__(self, proxy: ReverseProxy, stream_id: int) -> None:
        loop = asyncio.get_running_loop()
        self.proxy = proxy
        self.stream_id = stream_id
        self.loop = loop
        self.client = _Side(self, True)
        self.target = _Side(self, False)
        self.target_stats: TargetStats | None = None
        self.relaying = False
        self.header_buf = bytearray()
        self.need_header = proxy.config.expect_tor_proxy_header
        self.header: ProxyHeader | None = None
        self.header_ready: asyncio.Future[None] = loop.create_future()
        self.pending = bytearray()
        self.client_eof = False
        self.target_eof = False
        self.client_lost = False
        self.target_lost = False
        self.client_reset = False
        self.target_reset = False
        self.client_blocked = False  # target's write buffer is full: client not read
        self.done: asyncio.Future[None] = loop.create_future()
        self.last_activity = loop.time()
        self.bytes_up = 0
        self.bytes_down = 0

    # -- events from the sides -------------------------------------------------------------

    def on_data(self, side: _Side, data: bytes) -> None:
        self.last_activity = self.loop.time()
        stats = self.proxy.stats
        if side.is_client:
            if self.relaying:
                self.bytes_up += len(data)
                stats.bytes_client_to_target += len(data)
                if self.target_stats is not None:
                    self.target_stats.bytes_to_target += len(data)
                if self.target.transport is not None and not self.target_lost:
                    self.target.transport.write(data)
                return
            if self.need_header:
                self._feed_header(data)
            else:
                self.pending += data
            if len(self.pending) > self.proxy.config.pending_limit_bytes and side.transport:
                side.transport.pause_reading()
        else:
            self.bytes_down += len(data)
            stats.bytes_target_to_client += len(data)
            if self.target_stats is not None:
                self.target_stats.bytes_from_target += len(data)
            if self.client.transport is not None and not self.client_lost:
                self.client.transport.write(data)

    def _feed_header(self, data: bytes) -> None:
        self.header_buf += data
        try:
            parsed = parse_proxy_header(self.header_buf)
        except ProxyHeaderError as exc:
            self.need_header = False
            if not self.header_ready.done():
                self.header_ready.set_exception(exc)
            return
        if parsed is None:
            return
        header, consumed = parsed
        self.header = header
        self.need_header = False
        self.pending += self.header_buf[consumed:]
        self.header_buf = bytearray()
        if not self.header_ready.done():
            self.header_ready.set_result(None)

    def on_eof(self, side: _Side) -> None:
        if side.is_client:
            self.client_eof = True
            if not self.header_ready.done():
                self.header_ready.set_exception(
                    ProxyHeaderError("stream closed before tor's PROXY header was complete")
                )
            if self.relaying:
                self._shutdown_write(self.target)
        else:
            self.target_eof = True
            self._shutdown_write(self.client)
        if self.client_eof and self.target_eof:
            self.close()

    def _shutdown_write(self, side: _Side) -> None:
        transport = side.transport
        if transport is None or transport.is_closing():
            return
        if transport.can_write_eof():
            transport.write_eof()
        else:
            transport.close()

    def on_lost(self, side: _Side, exc: Exception | None) -> None:
        peer = self.target if side.is_client else self.client
        if side.is_client:
            self.client_lost = True
            self.client_reset = exc is not None
        else:
            self.target_lost = True
            self.target_reset = exc is not None
        if peer.transport is not None and not peer.transport.is_closing():
            if exc is not None:
                peer.transport.abort()  # a reset: drop what is still buffered
            else:
                peer.transport.close()  # flush what is buffered, then close
        if self.client_lost and (self.target_lost or self.target.transport is None):
            if not self.header_ready.done():
                self.header_ready.set_exception(
                    ProxyHeaderError("stream closed before tor's PROXY header was complete")
                )
            if not self.done.done():
                self.done.set_result(None)
        elif self.target_lost and self.client_lost and not self.done.done():
            self.done.set_result(None)

    def on_peer_backlog(self, side: _Side, paused: bool) -> None:
        """``side``'s write buffer crossed a limit: stop or resume reading the other side."""
        source = self.target if side.is_client else self.client
        if not side.is_client:
            self.client_blocked = paused
        if source.transport is None or source.transport.is_closing():
            return
        if paused:
            source.transport.pause_reading()
        else:
            source.transport.resume_reading()

    # -- actions from the handler -----------------------------------------------------------

    def client_gone(self) -> bool:
        """Whether the client's connection is already lost (it changes across awaits)."""
        return self.client_lost

    def start_relaying(self, outgoing_header: bytes) -> None:
        """The target is connected: send the header and what the client sent meanwhile."""
        target = self.target.transport
        client = self.client.transport
        if target is None or client is None:
            return
        self.relaying = True
        first = outgoing_header + bytes(self.pending)
        self.bytes_up += len(self.pending)
        self.proxy.stats.bytes_client_to_target += len(self.pending)
        if self.target_stats is not None:
            self.target_stats.bytes_to_target += len(self.pending)
        self.pending = bytearray()
        if first and not self.target_lost:
            target.write(first)
        if self.client_eof:
            self._shutdown_write(self.target)
            if self.target_eof:
                self.close()
        elif not self.client_blocked and not client.is_closing():
            client.resume_reading()

    def close(self) -> None:
        for side in (self.client, self.target):
            if side.transport is not None and not side.transport.is_closing():
                side.transport.close()

    def abort(self) -> None:
        for side in (self.client, self.target):
            if side.transport is not None:
                side.transport.abort()


class ReverseProxy:
    """The reverse proxy (an adapter). Run it with :meth:`run` inside the daemon's TaskGroup.

    ``stats`` is the live counter object (shared with the metrics layer); ``balancer`` decides
    the order of targets and learns about health from the prober.
    """

    def __init__(
        self,
        config: ProxyConfig,
        balancer: Balancer,
        connector: TargetConnector,
        *,
        stats: ProxyStats | None = None,
    ) -> None:
        self.config = config
        self.balancer = balancer
        self.connector = connector
        self.stats = stats if stats is not None else ProxyStats()
        for target in balancer.targets:
            self.stats.target(target.display)  # every target is listed from the start
        self._ids = itertools.count(1)
        self._listener: socket.socket | None = None
        self._address: ListenAddress | None = None
        self._overloaded = False
        self._accept_task: asyncio.Task[None] | None = None
        self._drained = asyncio.Event()
        self._drained.set()

    @property
    def address(self) -> ListenAddress | None:
        """Where the proxy listens, once :meth:`run` has bound (``None`` before)."""
        return self._address

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self, ready: asyncio.Future[ListenAddress] | None = None) -> None:
        """Bind, report the address through ``ready``, then accept until cancelled.

        On cancellation the listener is closed and every stream is aborted (use
        :meth:`stop_accepting` and :meth:`wait_drained` first for a graceful drain).
        """
        listener = self._bind()
        self._listener = listener
        try:
            if ready is not None and not ready.done():
                ready.set_result(self._address_of(listener))
            log.info("proxy listening on %s", self._address)
            async with asyncio.TaskGroup() as tg:
                self._accept_task = tg.create_task(self._accept_loop(listener, tg))
                await asyncio.Event().wait()  # serve until cancelled
        finally:
            self._accept_task = None
            self._close_listener()

    def stop_accepting(self) -> None:
        """Stop accepting new streams (existing ones continue); the first step of a drain."""
        if self._accept_task is not None:
            self._accept_task.cancel()
        else:
            self._close_listener()

    async def wait_drained(self, timeout_s: float) -> bool:
        """Wait until no stream is active; ``False`` if ``timeout_s`` passed first."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._drained.wait()
        except TimeoutError:
            return False
        return True

    # -- listening ---------------------------------------------------------------------------

    def _bind(self) -> socket.socket:
        listen = self.config.listen
        try:
            if isinstance(listen, TcpListen):
                family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
                sock = socket.socket(family, socket.SOCK_STREAM)
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.bind((listen.host, listen.port))
                except BaseException:
                    sock.close()
                    raise
            else:
                self._remove_stale_socket(listen.path)
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.bind(listen.path)
                    os.chmod(listen.path, listen.mode)
                except BaseException:
                    sock.close()
                    raise
            sock.listen(self.config.backlog)
            sock.setblocking(False)
        except OSError as exc:
            raise ProxyListenError(
                f"proxy cannot listen on {self._describe_listen()}: {exc.strerror or exc}; "
                "pick a free port or path, or stop the process that holds it"
            ) from exc
        self._address = self._address_of(sock)
        return sock

    def _describe_listen(self) -> str:
        listen = self.config.listen
        if isinstance(listen, TcpListen):
            return f"{listen.host}:{listen.port}"
        return f"unix:{listen.path}"

    @staticmethod
    def _remove_stale_socket(path: str) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise ProxyListenError(
                f"proxy unix socket path {path} exists and is not a socket; remove it or pick "
                "another path"
            )
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)  # nobody listens: a stale socket from an earlier run
            return
        finally:
            probe.close()
        raise ProxyListenError(
            f"another process already listens on unix socket {path}; stop it or pick another path"
        )

    def _address_of(self, sock: socket.socket) -> ListenAddress:
        if sock.family == socket.AF_UNIX:
            return str(sock.getsockname())
        host, port = sock.getsockname()[:2]
        return (str(host), int(port))

    def _close_listener(self) -> None:
        listener = self._listener
        self._listener = None
        if listener is None:
            return
        listener.close()
        listen = self.config.listen
        if isinstance(listen, UnixListen):
            with contextlib.suppress(OSError):
                os.unlink(listen.path)

    async def _accept_loop(self, listener: socket.socket, tg: asyncio.TaskGroup) -> None:
        loop = asyncio.get_running_loop()
        try:
            await self._accept_forever(loop, listener, tg)
        finally:
            self._close_listener()

    async def _accept_forever(
        self, loop: asyncio.AbstractEventLoop, listener: socket.socket, tg: asyncio.TaskGroup
    ) -> None:
        while True:
            try:
                conn, _ = await loop.sock_accept(listener)
            except OSError as exc:
                if exc.errno in ACCEPT_CAPACITY_ERRNOS:
                    self.stats.accept_errors_total += 1
                    log.warning(
                        "proxy cannot accept a stream: %s (out of resources); retrying in %.2f s "
                        "(raise the open-files limit or lower max_connections)",
                        os.strerror(exc.errno or 0),
                        self.config.accept_backoff_s,
                    )
                    await asyncio.sleep(self.config.accept_backoff_s)
                    continue
                raise
            self._admit(conn, tg)
            # Take what else is queued without going back to the selector.
            for _ in range(_MAX_ACCEPT_BATCH):
                try:
                    conn, _ = listener.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:
                    if exc.errno in ACCEPT_CAPACITY_ERRNOS:
                        break  # the awaited accept above logs and backs off
                    raise
                self._admit(conn, tg)

    def _admit(self, conn: socket.socket, tg: asyncio.TaskGroup) -> None:
        self.stats.accepted_total += 1
        if self.stats.active >= self.config.max_connections:
            self.stats.refused_overload_total += 1
            if not self._overloaded:
                self._overloaded = True
                log.warning(
                    "proxy at max_connections=%d: refusing new streams until some finish "
                    "(raise max_connections if the host has room)",
                    self.config.max_connections,
                )
            with contextlib.suppress(OSError):
                # RST rather than FIN: the client learns at once that it was refused.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
            conn.close()
            return
        if self._overloaded and self.stats.active < self.config.max_connections * 9 // 10:
            self._overloaded = False
            log.info("proxy below max_connections again: accepting streams")
        conn.setblocking(False)
        self.stats.active += 1
        self._drained.clear()
        tg.create_task(self._serve(conn, next(self._ids)))

    # -- one stream --------------------------------------------------------------------------

    async def _serve(self, conn: socket.socket, stream_id: int) -> None:
        loop = asyncio.get_running_loop()
        relay = _Relay(self, stream_id)
        target: Target | None = None
        outcome = "closed"
        try:
            try:
                async with asyncio.timeout(self.config.header_timeout_s):
                    await loop.connect_accepted_socket(lambda: relay.client, conn)
            except (OSError, TimeoutError) as exc:
                conn.close()
                log.info("stream %d: client gone before it could be set up: %s", stream_id, exc)
                outcome = "client-gone"
                return
            client = relay.client.transport
            if client is None:  # pragma: no cover - connection_made always runs first
                return
            client.set_write_buffer_limits(high=self.config.write_buffer_high_bytes)
            if self.config.expect_tor_proxy_header:
                try:
                    async with asyncio.timeout(self.config.header_timeout_s):
                        await relay.header_ready
                except TimeoutError:
                    self.stats.header_errors_total += 1
                    outcome = "header-timeout"
                    log.warning(
                        "stream %d: no PROXY header from tor within %.1f s; closing (is "
                        "HiddenServiceExportCircuitID haproxy set on the node's tor?)",
                        stream_id,
                        self.config.header_timeout_s,
                    )
                    return
                except ProxyHeaderError as exc:
                    self.stats.header_errors_total += 1
                    outcome = "header-error"
                    if relay.client_eof or relay.client_lost:
                        log.info("stream %d: client left before the PROXY header", stream_id)
                    else:
                        log.warning("stream %d: bad PROXY header from tor: %s", stream_id, exc)
                    return
            if relay.client_gone():
                outcome = "client-gone"
                return
            circuit_id = circuit_id_of(relay.header) if relay.header is not None else None
            target, sock = await self._connect_target(stream_id, circuit_id)
            relay.target_stats = self.stats.target(target.display)
            try:
                async with asyncio.timeout(self.config.connect_timeout_s):
                    await loop.create_connection(lambda: relay.target, sock=sock)
            except (OSError, TimeoutError) as exc:
                sock.close()
                log.warning(
                    "stream %d: target %s failed right after connect: %s",
                    stream_id,
                    target.display,
                    exc,
                )
                outcome = "target-error"
                return
            if relay.client_gone():
                outcome = "client-gone"
                log.info("stream %d: client left while the target was being connected", stream_id)
                return
            target_transport = relay.target.transport
            if target_transport is not None:
                target_transport.set_write_buffer_limits(high=self.config.write_buffer_high_bytes)
            relay.start_relaying(self._outgoing_header(relay.header))
            outcome = await self._wait_done(relay)
        except NoTargetAvailable as exc:
            self.stats.no_target_total += 1
            outcome = "no-target"
            log.warning("stream %d: %s", stream_id, exc)
        finally:
            relay.abort()
            if not relay.header_ready.done():
                relay.header_ready.cancel()
            elif not relay.header_ready.cancelled():
                relay.header_ready.exception()  # mark retrieved
            if target is not None:
                self.balancer.release(target)
                self.stats.target(target.display).active -= 1
            self.stats.active -= 1
            self.stats.completed_total += 1
            if self.stats.active == 0:
                self._drained.set()
            log.debug(
                "stream %d: %s (%d bytes to target, %d bytes to client)",
                stream_id,
                outcome,
                relay.bytes_up,
                relay.bytes_down,
            )

    async def _wait_done(self, relay: _Relay) -> str:
        loop = asyncio.get_running_loop()
        idle_s = self.config.idle_timeout_s
        while not relay.done.done():
            remaining = relay.last_activity + idle_s - loop.time()
            if remaining <= 0:
                self.stats.idle_timeouts_total += 1
                log.info(
                    "stream %d: closed after %.0f s without data in either direction",
                    relay.stream_id,
                    idle_s,
                )
                return "idle-timeout"
            await asyncio.wait([relay.done], timeout=remaining)
        if relay.client_reset:
            self.stats.client_resets_total += 1
            log.info(
                "stream %d: client vanished mid-stream (%d bytes to target, %d to client)",
                relay.stream_id,
                relay.bytes_up,
                relay.bytes_down,
            )
            return "client-reset"
        if relay.target_reset:
            log.warning(
                "stream %d: target connection reset mid-stream (%d bytes to target, %d to client)",
                relay.stream_id,
                relay.bytes_up,
                relay.bytes_down,
            )
            return "target-reset"
        return "closed"

    async def _connect_target(
        self, stream_id: int, circuit_id: int | None
    ) -> tuple[Target, socket.socket]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.connect_timeout_s
        candidates = self.balancer.candidates()
        failures: list[str] = []
        try:
            async with asyncio.timeout_at(deadline):
                for target in candidates:
                    self.balancer.acquire(target)
                    tstats = self.stats.target(target.display)
                    tstats.active += 1
                    try:
                        sock = await self.connector.open_socket(
                            target, timeout_s=deadline - loop.time()
                        )
                    except TargetConnectError as exc:
                        self.balancer.release(target)
                        self.balancer.report_connect_failure(target)
                        tstats.active -= 1
                        tstats.connect_failures_total += 1
                        failures.append(f"{target.display}: {exc.reason or 'failed'}")
                        log.warning("stream %d: %s; trying the next target", stream_id, exc)
                        continue
                    except BaseException:
                        self.balancer.release(target)
                        tstats.active -= 1
                        raise
                    tstats.connections_total += 1
                    self.balancer.report_connect_success(target)
                    if circuit_id is not None:
                        log.debug(
                            "stream %d: circuit %d -> target %s",
                            stream_id,
                            circuit_id,
                            target.display,
                        )
                    return target, sock
        except TimeoutError as exc:
            raise NoTargetAvailable(
                f"no target connected within connect_timeout_s={self.config.connect_timeout_s}"
                f" (tried: {', '.join(failures) or 'none finished'}); closing the client stream",
                reason="timeout",
            ) from exc
        if not candidates:
            raise NoTargetAvailable(
                "no usable target (all unhealthy and fail-open is off); closing the client stream",
                reason="none",
            )
        raise NoTargetAvailable(
            f"every target failed ({'; '.join(failures)}); closing the client stream",
            reason="all-failed",
        )

    def _outgoing_header(self, incoming: ProxyHeader | None) -> bytes:
        version = self.config.send_proxy_header
        if version is None:
            return b""
        if incoming is None or incoming.command is ProxyCommand.LOCAL:
            header = ProxyHeader(version, ProxyCommand.LOCAL, ProxyFamily.UNSPEC)
        else:
            family = incoming.family
            if version == 1 and family not in (ProxyFamily.TCP4, ProxyFamily.TCP6):
                header = ProxyHeader(version, ProxyCommand.LOCAL, ProxyFamily.UNSPEC)
            else:
                header = ProxyHeader(
                    version,
                    ProxyCommand.PROXY,
                    family,
                    incoming.src_addr,
                    incoming.dst_addr,
                    incoming.src_port,
                    incoming.dst_port,
                )
        return encode_proxy_header(header, version)
