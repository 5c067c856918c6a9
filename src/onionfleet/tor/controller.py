"""asyncio adapter for tor's control port: one shared connection per tor (control-spec §1-§4).

Lifecycle (STYLE.md §2): :meth:`TorController.run` is the long-lived task. It connects (TCP on
loopback or a unix socket), authenticates from PROTOCOLINFO, restores the event subscriptions, sets
``ready`` the first time, then pumps replies and events. When the connection breaks it fails every
pending command with :class:`ControlConnectionLost`, reconnects with exponential backoff, restores
the subscriptions and hands :class:`ControllerReconnected` to every subscriber. Authentication
errors end ``run`` (retrying cannot fix a wrong password). :meth:`TorController.close` ends ``run``.
:func:`open_controller` wraps all this in an ``async with`` for callers without a TaskGroup.

Commands are pipelined: each is written at once and its reply is matched in order (control-spec §1
"Servers respond to messages in the order messages are received"). Every command has a timeout and
raises :class:`ControlTimeout` naming it; a command issued while disconnected waits for the
reconnection inside that same timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from onionfleet.tor.auth import (
    NONCE_LEN,
    AuthMethod,
    ProtocolInfo,
    check_cookie,
    choose_auth_method,
    parse_authchallenge,
    parse_protocolinfo,
    verify_server_hash,
)
from onionfleet.tor.circuits import CircuitInfo, parse_circuit_status
from onionfleet.tor.codec import (
    DEFAULT_MAX_LINE_BYTES,
    DEFAULT_MAX_REPLY_BYTES,
    Command,
    ControlCodec,
)
from onionfleet.tor.consensus import ConsensusView, build_consensus_view
from onionfleet.tor.errors import (
    ControlAuthError,
    ControlConnectionLost,
    ControlProtocolError,
    ControlTimeout,
    RemoteProtocolError,
    TorCommandError,
)
from onionfleet.tor.events import (
    BootstrapStatus,
    ControllerReconnected,
    Event,
    parse_bootstrap_phase,
)
from onionfleet.tor.messages import Reply, quote, unquote

__all__ = [
    "ControlAuth",
    "ControlEndpoint",
    "ControllerSettings",
    "EventSubscription",
    "TorController",
    "open_controller",
]

log = logging.getLogger(__name__)

_READ_CHUNK = 256 * 1024


@dataclass(frozen=True, slots=True)
class ControlEndpoint:
    """Where tor's control port listens: ``tcp_port`` on a loopback ``host``, or ``unix_path``."""

    tcp_port: int | None = None
    host: str = "127.0.0.1"
    unix_path: Path | None = None

    def __post_init__(self) -> None:
        if (self.tcp_port is None) == (self.unix_path is None):
            raise ValueError("ControlEndpoint needs exactly one of tcp_port and unix_path")
        if self.tcp_port is not None:
            if not 0 < self.tcp_port < 65536:
                raise ValueError(f"control port {self.tcp_port} is not a TCP port")
            if self.host != "localhost" and not ipaddress.ip_address(self.host).is_loopback:
                raise ValueError(f"control host {self.host} is not a loopback address")

    @classmethod
    def tcp(cls, port: int, host: str = "127.0.0.1") -> ControlEndpoint:
        return cls(tcp_port=port, host=host)

    @classmethod
    def unix(cls, path: Path | str) -> ControlEndpoint:
        return cls(unix_path=Path(path))

    def describe(self) -> str:
        return (
            f"unix:{self.unix_path}"
            if self.unix_path is not None
            else f"{self.host}:{self.tcp_port}"
        )


@dataclass(frozen=True, slots=True)
class ControlAuth:
    """Credentials. ``password`` for HASHEDPASSWORD (never shown in repr or logs); ``cookie_path``
    overrides the COOKIEFILE tor reports in PROTOCOLINFO (e.g. tor in another mount namespace)."""

    password: str | None = field(default=None, repr=False)
    cookie_path: Path | None = None


@dataclass(frozen=True, slots=True)
class ControllerSettings:
    """How to reach and talk to one tor. Times in seconds."""

    endpoint: ControlEndpoint
    auth: ControlAuth = ControlAuth()
    command_timeout_s: float = 30.0
    connect_timeout_s: float = 10.0
    reconnect_initial_s: float = 0.2
    reconnect_max_s: float = 10.0
    event_queue_size: int = 1024
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES

    def __post_init__(self) -> None:
        for name in ("command_timeout_s", "connect_timeout_s", "reconnect_initial_s"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        if self.reconnect_max_s < self.reconnect_initial_s:
            raise ValueError("reconnect_max_s must be >= reconnect_initial_s")
        if self.event_queue_size < 1:
            raise ValueError("event_queue_size must be >= 1")


class EventSubscription:
    """A bounded queue of typed events of the given types (plus :class:`ControllerReconnected`).

    Use as ``async with controller.subscribe("HS_DESC") as sub: async for event in sub: …``.
    Slow-consumer policy: when the queue is full the *oldest* event is dropped and ``dropped``
    counts it (tor must never be blocked by one slow subscriber).
    """

    def __init__(self, controller: TorController, event_types: frozenset[str], size: int) -> None:
        self._controller = controller
        self.event_types = event_types
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=size)
        self.dropped = 0
        self._closed = False

    def _deliver(self, event: Event) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning(
                    "event subscriber for %s is slow: %d events dropped",
                    ",".join(sorted(self.event_types)),
                    self.dropped,
                )
        self._queue.put_nowait(event)

    async def get(self, timeout_s: float | None = None) -> Event:
        """The next event; with ``timeout_s``, raise TimeoutError when none arrives in time."""
        if timeout_s is None:
            return await self._queue.get()
        async with asyncio.timeout(timeout_s):
            return await self._queue.get()

    def get_nowait(self) -> Event | None:
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        if self._closed:
            raise StopAsyncIteration
        return await self._queue.get()

    async def __aenter__(self) -> EventSubscription:
        await self._controller._add_subscription(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closed = True
        await self._controller._remove_subscription(self)


@dataclass(slots=True)
class _Pending:
    name: str
    future: asyncio.Future[Reply]


class _Connection:
    """One open control connection: stream pair + codec + parsed-but-unconsumed messages."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, codec: ControlCodec
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.codec = codec
        self.backlog: deque[Reply | Event] = deque()

    async def next_message(self) -> Reply | Event:
        while not self.backlog:
            chunk = await self.reader.read(_READ_CHUNK)
            if not chunk:
                self.codec.feed_eof()
                raise ControlConnectionLost("tor closed the control connection")
            self.backlog.extend(self.codec.feed(chunk))
        return self.backlog.popleft()

    async def request(self, command: Command, timeout_s: float) -> Reply:
        """Handshake-time request: write, then read until its reply (events are kept aside)."""
        self.writer.write(command.encode())
        try:
            async with asyncio.timeout(timeout_s):
                await self.writer.drain()
                events: list[Reply | Event] = []
                while True:
                    message = await self.next_message()
                    if isinstance(message, Reply):
                        self.backlog.extendleft(reversed(events))
                        return message
                    events.append(message)
        except TimeoutError:
            raise ControlTimeout(command.keyword, timeout_s) from None

    def close(self) -> None:
        self.writer.close()


class TorController:
    """The one control connection of one tor. See the module docstring for its lifecycle.

    ``token_bytes`` supplies the SAFECOOKIE client nonce (injected for tests).
    """

    def __init__(
        self,
        settings: ControllerSettings,
        *,
        token_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self.settings = settings
        self._token_bytes = token_bytes
        self._conn: _Connection | None = None
        self._connected = asyncio.Event()
        self._pending: deque[_Pending] = deque()
        self._subscriptions: list[EventSubscription] = []
        self._closing = False
        self._generation = 0
        self.protocol_info: ProtocolInfo | None = None
        self.auth_method: AuthMethod | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def closing(self) -> bool:
        return self._closing

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def generation(self) -> int:
        """How many times a connection was established (1 after the first)."""
        return self._generation

    async def run(self, ready: asyncio.Future[None] | None = None) -> None:
        """Connect, authenticate, then serve until :meth:`close`; reconnect on connection loss.

        Sets ``ready`` once the first connection is authenticated and subscriptions are in place.
        Raises :class:`ControlAuthError` / :class:`TorCommandError` when authentication fails.
        """
        delay = self.settings.reconnect_initial_s
        what = self.settings.endpoint.describe()
        try:
            while not self._closing:
                try:
                    conn = await self._open()
                except (OSError, ControlConnectionLost, ControlTimeout, RemoteProtocolError) as exc:
                    if self.closing:
                        break
                    log.info(
                        "tor control %s not reachable (%s); retrying in %.1f s", what, exc, delay
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.settings.reconnect_max_s)
                    continue
                delay = self.settings.reconnect_initial_s
                self._conn = conn
                self._generation += 1
                self._connected.set()
                if ready is not None and not ready.done():
                    ready.set_result(None)
                if self._generation > 1:
                    log.info("reconnected to tor control %s", what)
                    for sub in list(self._subscriptions):
                        sub._deliver(ControllerReconnected(self._generation))
                reason = await self._pump(conn)
                self._connected.clear()
                self._conn = None
                conn.close()
                self._fail_pending(reason)
                if not self.closing:
                    log.warning("lost tor control connection %s: %s", what, reason)
        except BaseException as exc:
            if ready is not None and not ready.done():
                if isinstance(exc, Exception):
                    ready.set_exception(exc)
                else:
                    ready.cancel()
            raise
        finally:
            self._connected.clear()
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._fail_pending(ControlConnectionLost("the controller was closed"))

    def close(self) -> None:
        """Stop :meth:`run`: close the connection and fail pending commands."""
        self._closing = True
        if self._conn is not None:
            self._conn.close()

    def _fail_pending(self, reason: Exception) -> None:
        while self._pending:
            pending = self._pending.popleft()
            if not pending.future.done():
                pending.future.set_exception(
                    ControlConnectionLost(
                        f"{pending.name} got no reply: control connection lost ({reason})"
                    )
                )

    async def _open(self) -> _Connection:
        settings = self.settings
        endpoint = settings.endpoint
        async with asyncio.timeout(settings.connect_timeout_s):
            if endpoint.unix_path is not None:
                reader, writer = await asyncio.open_unix_connection(
                    str(endpoint.unix_path), limit=_READ_CHUNK
                )
            else:
                reader, writer = await asyncio.open_connection(
                    endpoint.host, endpoint.tcp_port, limit=_READ_CHUNK
                )
        codec = ControlCodec(
            max_line_bytes=settings.max_line_bytes, max_reply_bytes=settings.max_reply_bytes
        )
        conn = _Connection(reader, writer, codec)
        try:
            await self._authenticate(conn)
            types = self._event_union()
            if types:
                reply = await conn.request(
                    Command("SETEVENTS", tuple(sorted(types))), settings.command_timeout_s
                )
                reply.raise_for_status("SETEVENTS")
        except BaseException:
            conn.close()
            raise
        return conn

    async def _authenticate(self, conn: _Connection) -> None:
        """control-spec §3.21 PROTOCOLINFO → §3.24 AUTHCHALLENGE → §3.5 AUTHENTICATE."""
        timeout = self.settings.command_timeout_s
        auth = self.settings.auth
        info = parse_protocolinfo(await conn.request(Command("PROTOCOLINFO", ("1",)), timeout))
        self.protocol_info = info
        cookie: bytes | None = None
        cookie_path = auth.cookie_path or (Path(info.cookie_file) if info.cookie_file else None)
        cookie_methods = {AuthMethod.COOKIE.value, AuthMethod.SAFECOOKIE.value}
        if cookie_path is not None and info.auth_methods & cookie_methods:
            try:
                cookie = check_cookie(cookie_path.read_bytes(), str(cookie_path))
            except OSError as exc:
                log.warning("cannot read tor control cookie %s: %s", cookie_path, exc.strerror)
        method = choose_auth_method(
            info, have_password=auth.password is not None, have_cookie=cookie is not None
        )
        args: tuple[str, ...] = ()
        if method is AuthMethod.HASHEDPASSWORD:
            args = (quote(auth.password or ""),)
        elif method is AuthMethod.COOKIE:
            args = ((cookie or b"").hex(),)
        elif method is AuthMethod.SAFECOOKIE:
            client_nonce = self._token_bytes(NONCE_LEN)
            challenge = parse_authchallenge(
                await conn.request(
                    Command("AUTHCHALLENGE", ("SAFECOOKIE", client_nonce.hex())), timeout
                )
            )
            args = (verify_server_hash(cookie or b"", client_nonce, challenge).hex(),)
        reply = await conn.request(Command("AUTHENTICATE", args, secret=True), timeout)
        if not reply.is_ok:
            raise ControlAuthError(
                f"tor rejected {method.value} authentication on "
                f"{self.settings.endpoint.describe()}: {reply.status} {reply.text}"
            )
        self.auth_method = method
        log.debug(
            "authenticated to tor control %s with %s (tor %s)",
            self.settings.endpoint.describe(),
            method.value,
            info.tor_version,
        )

    async def _pump(self, conn: _Connection) -> Exception:
        """Dispatch replies (in order) and events until the connection ends; return why."""
        try:
            while True:
                message = await conn.next_message()
                if isinstance(message, Reply):
                    if not self._pending:
                        return RemoteProtocolError("tor sent a reply nobody asked for")
                    pending = self._pending.popleft()
                    if not pending.future.done():
                        pending.future.set_result(message)
                else:
                    self._dispatch(message)
        except (ControlConnectionLost, ControlProtocolError) as exc:
            return exc
        except OSError as exc:
            return ControlConnectionLost(f"control connection error: {exc}")

    def _dispatch(self, event: Event) -> None:
        for sub in self._subscriptions:
            if event.event_type in sub.event_types:
                sub._deliver(event)

    # ------------------------------------------------------------------ subscriptions

    def subscribe(self, *event_types: str, queue_size: int | None = None) -> EventSubscription:
        """Subscribe to ``event_types`` (control-spec §3.4 SETEVENTS, §4.1); use ``async with``.

        The controller sends the union of all subscriptions' types with SETEVENTS, and again after
        every reconnection.
        """
        if not event_types:
            raise ValueError("subscribe() needs at least one event type")
        size = queue_size if queue_size is not None else self.settings.event_queue_size
        return EventSubscription(self, frozenset(t.upper() for t in event_types), size)

    def _event_union(self) -> set[str]:
        union: set[str] = set()
        for sub in self._subscriptions:
            union |= sub.event_types
        return union

    async def _add_subscription(self, sub: EventSubscription) -> None:
        self._subscriptions.append(sub)
        try:
            await self._apply_events()
        except BaseException:
            self._subscriptions.remove(sub)
            raise

    async def _remove_subscription(self, sub: EventSubscription) -> None:
        with contextlib.suppress(ValueError):
            self._subscriptions.remove(sub)
        if self.connected and not self._closing:
            with contextlib.suppress(ControlConnectionLost, ControlTimeout, TorCommandError):
                await self._apply_events()

    async def _apply_events(self) -> None:
        if not self.connected:
            return  # applied on (re)connection
        await self.command("SETEVENTS", *sorted(self._event_union()))

    # ------------------------------------------------------------------ commands

    async def command(
        self,
        keyword: str,
        *args: str,
        data: str | None = None,
        timeout_s: float | None = None,
        check: bool = True,
    ) -> Reply:
        """Send one command and await its reply (control-spec §2.2, §2.3).

        ``check`` raises :class:`TorCommandError` for 4xx/5xx. Raises :class:`ControlTimeout` when
        no reply comes within ``timeout_s`` (default ``command_timeout_s``), waiting for a
        reconnection included; :class:`ControlConnectionLost` when the connection breaks first;
        :class:`LocalProtocolError` for a command that cannot be sent (e.g. HSPOST without
        HSADDRESS=).
        """
        command = Command(keyword, args, data)
        payload = command.encode()  # local errors before anything is queued
        timeout = timeout_s if timeout_s is not None else self.settings.command_timeout_s
        name = keyword.upper()
        try:
            async with asyncio.timeout(timeout):
                await self._connected.wait()
                conn = self._conn
                if conn is None:  # lost again between the wake-up and now
                    raise ControlConnectionLost(f"{name}: the control connection was just lost")
                future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
                self._pending.append(_Pending(name, future))
                conn.writer.write(payload)
                try:
                    await conn.writer.drain()
                except OSError as exc:
                    raise ControlConnectionLost(
                        f"{name}: control connection broke while sending ({exc})"
                    ) from exc
                reply = await future
        except TimeoutError:
            raise ControlTimeout(name, timeout) from None
        if check:
            reply.raise_for_status(name)
        return reply

    async def get_info(self, *keys: str, timeout_s: float | None = None) -> dict[str, str]:
        """``GETINFO`` (control-spec §3.9): ``{key: value}``; data-block values are multi-line text
        without a final newline."""
        if not keys:
            raise ValueError("get_info() needs at least one key")
        reply = await self.command("GETINFO", *keys, timeout_s=timeout_s)
        result: dict[str, str] = {}
        for line in reply.lines[:-1]:
            key, sep, value = line.text.partition("=")
            if not sep:
                raise RemoteProtocolError(f"GETINFO reply line is not key=value: {key[:60]!r}")
            result[key] = line.data if line.data is not None else value
        missing = [k for k in keys if k not in result]
        if missing:
            raise RemoteProtocolError(f"GETINFO reply lacks {', '.join(missing)}")
        return result

    async def get_conf(self, *keys: str, timeout_s: float | None = None) -> dict[str, list[str]]:
        """``GETCONF`` (control-spec §3.3): every value of each option, in order; an option at a
        default without a value maps to ``[]``. Keys are as tor spells them in the reply."""
        if not keys:
            raise ValueError("get_conf() needs at least one key")
        reply = await self.command("GETCONF", *keys, timeout_s=timeout_s)
        result: dict[str, list[str]] = {}
        for line in reply.lines:
            key, sep, value = line.text.partition("=")
            values = result.setdefault(key, [])
            if sep:
                values.append(unquote(value) if value.startswith('"') else value)
        return result

    async def set_conf(
        self, options: Mapping[str, str | Sequence[str] | None], *, timeout_s: float | None = None
    ) -> None:
        """``SETCONF`` (control-spec §3.1), all-or-nothing. A list gives an option several values;
        ``None`` sets it to 0/NULL."""
        await self.command("SETCONF", *_conf_args(options), timeout_s=timeout_s)

    async def reset_conf(self, *keys: str, timeout_s: float | None = None) -> None:
        """``RESETCONF key…`` (control-spec §3.2): back to tor's defaults."""
        if not keys:
            raise ValueError("reset_conf() needs at least one key")
        await self.command("RESETCONF", *keys, timeout_s=timeout_s)

    async def signal(self, name: str, *, timeout_s: float | None = None) -> None:
        """``SIGNAL name`` (control-spec §3.7): RELOAD, NEWNYM, HEARTBEAT, SHUTDOWN…"""
        await self.command("SIGNAL", name.upper(), timeout_s=timeout_s)

    async def hs_fetch(
        self, address: str, servers: Sequence[str] = (), *, timeout_s: float | None = None
    ) -> None:
        """``HSFETCH addr [SERVER=$fp]…`` (control-spec §3.26). Results come as HS_DESC and
        HS_DESC_CONTENT events: subscribe before calling."""
        args = [_strip_onion(address), *(f"SERVER={_server_spec(s)}" for s in servers)]
        await self.command("HSFETCH", *args, timeout_s=timeout_s)

    async def hs_post(
        self,
        descriptor: str,
        *,
        servers: Sequence[str],
        hs_address: str,
        timeout_s: float | None = None,
    ) -> None:
        """``+HSPOST SERVER=$fp… HSADDRESS=addr`` + descriptor (control-spec §3.29 HSPOST).

        ``servers`` are HSDir fingerprints (hex, with or without ``$``); ``HSADDRESS=`` is mandatory
        because tor 0.4.9 never answers an HSPOST without it (DESIGN.md §2). Per-HSDir outcomes
        arrive as ``HS_DESC UPLOADED|FAILED`` events.
        """
        args = [f"SERVER={_server_spec(s)}" for s in servers]
        args.append(f"HSADDRESS={_strip_onion(hs_address)}")
        await self.command("HSPOST", *args, data=descriptor, timeout_s=timeout_s)

    async def circuit_status(self, *, timeout_s: float | None = None) -> tuple[CircuitInfo, ...]:
        """``GETINFO circuit-status`` (control-spec §3.9), parsed (tor/circuits.py)."""
        key = "circuit-status"
        return parse_circuit_status((await self.get_info(key, timeout_s=timeout_s))[key])

    async def close_circuit(self, circuit_id: str, *, timeout_s: float | None = None) -> bool:
        """``CLOSECIRCUIT id`` (control-spec §3.11); ``False`` if tor no longer knows the circuit
        (552 "Unknown circuit"), which is what a caller that raced its closing wants to hear."""
        try:
            await self.command("CLOSECIRCUIT", circuit_id, timeout_s=timeout_s)
        except TorCommandError as exc:
            if exc.code == 552:
                return False
            raise
        return True

    async def bootstrap_status(self, *, timeout_s: float | None = None) -> BootstrapStatus:
        """``GETINFO status/bootstrap-phase`` (control-spec §3.9, §4.1.10 bootstrap phases)."""
        key = "status/bootstrap-phase"
        return parse_bootstrap_phase((await self.get_info(key, timeout_s=timeout_s))[key])

    async def consensus_view(self, *, timeout_s: float | None = None) -> ConsensusView:
        """The microdesc consensus and ``md/all`` as a :class:`ConsensusView` (two GETINFOs,
        pipelined)."""
        consensus_key = "dir/status-vote/current/consensus-microdesc"
        consensus, mds = await asyncio.gather(
            self.get_info(consensus_key, timeout_s=timeout_s),
            self.get_info("md/all", timeout_s=timeout_s),
        )
        return build_consensus_view(consensus[consensus_key], mds["md/all"])


def _strip_onion(address: str) -> str:
    return address.removesuffix(".onion")


def _server_spec(server: str) -> str:
    """An HSDir for SERVER=: ``$`` + 40 hex digits (control-spec §2.4 LongName)."""
    fingerprint = server.removeprefix("$")
    if len(fingerprint) != 40 or any(c not in "0123456789abcdefABCDEF" for c in fingerprint):
        raise ValueError(f"not a relay fingerprint (40 hex digits): {server[:60]!r}")
    return "$" + fingerprint.upper()


def _conf_args(options: Mapping[str, str | Sequence[str] | None]) -> list[str]:
    if not options:
        raise ValueError("set_conf() needs at least one option")
    args: list[str] = []
    for key, value in options.items():
        if value is None:
            args.append(key)
        elif isinstance(value, str):
            args.append(f"{key}={quote(value)}")
        else:
            args.extend(f"{key}={quote(v)}" for v in value)
    return args


@contextlib.asynccontextmanager
async def open_controller(
    settings: ControllerSettings,
    *,
    ready_timeout_s: float = 30.0,
    token_bytes: Callable[[int], bytes] = secrets.token_bytes,
) -> AsyncIterator[TorController]:
    """Run a :class:`TorController` for the body of an ``async with``; wait until it is ready.

    Raises what ``run`` raised before ready (e.g. :class:`ControlAuthError`), or
    :class:`ControlTimeout` (command ``CONNECT``) when tor cannot be reached within
    ``ready_timeout_s``.
    """
    controller = TorController(settings, token_bytes=token_bytes)
    ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(controller.run(ready), name="tor-controller")
    try:
        try:
            async with asyncio.timeout(ready_timeout_s):
                await asyncio.shield(ready)
        except TimeoutError:
            raise ControlTimeout("CONNECT", ready_timeout_s) from None
        yield controller
    finally:
        controller.close()
        task.cancel()
        await asyncio.wait([task])
        if not ready.done():
            ready.cancel()
        elif not ready.cancelled() and ready.exception() is None and not task.cancelled():
            exc = task.exception()
            if exc is not None:
                log.error("tor controller for %s failed: %s", settings.endpoint.describe(), exc)
