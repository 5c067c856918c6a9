"""TCP transport: runs a :class:`~onionfleet.cluster.node.ClusterNode` over TCP (asyncio adapter).

For WireGuard or any other private addresses; the peer frames are authenticated by the node, so
this layer only moves bytes. Rules (STYLE §2):

* **One connection per peer pair.** Frames to a known node go on its live connection, whichever
  side dialed it. If both sides dialed at once, the connection dialed by the node with the lower
  node id is kept and the other is closed (both sides decide the same way).
* **Reconnect with backoff.** A link to an address dials only when it has frames to send; a failed
  dial waits ``backoff_initial_s`` doubling up to ``backoff_max_s`` (with jitter from the injected
  ``random.Random``) and drops the frames it held (heartbeats are resent every interval anyway).
* **Bounded queues.** Each link holds at most ``queue_frames`` frames; when full the oldest frame
  is dropped (a slow peer must not grow our memory).
* **Framing errors close the connection**, counted in ``node.rejects``; per-frame rejections
  (MAC, replay, skew) are counted by the node and the connection survives.
* Every network await sits under ``asyncio.timeout``; every task belongs to ``run``'s TaskGroup.
* **Dialing is pluggable** (``dial=``): :func:`tcp_dial` by default; the Tor transport passes
  :func:`onionfleet.cluster.tor_transport.socks_dialer` and advertises ``<peer onion>:<port>``.
  Everything else (framing, auth, one connection per pair, backoff) is this class.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable

from onionfleet.clock import Clock
from onionfleet.cluster.actions import Action, FrameRejected, SendTo
from onionfleet.cluster.errors import RemotePeerProtocolError
from onionfleet.cluster.messages import FrameDecoder, frame_sender
from onionfleet.cluster.node import ClusterNode
from onionfleet.errors import ConfigError

__all__ = ["Dialer", "TcpTransport", "split_address", "tcp_dial"]

log = logging.getLogger(__name__)

_READ_BYTES = 64 * 1024


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` → (host, port); ConfigError if malformed."""
    host, sep, port_text = address.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"peer address {address!r} is not host:port",
                          key_path="cluster.peers", fix='write it like "10.77.0.2:7800"')
    return host, int(port_text)


Dialer = Callable[[str, float], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
"""``dial(address, timeout_s)``: open a stream to a peer's advertised address; raises OSError,
TimeoutError or ConfigError (the transport then backs off and retries)."""


async def tcp_dial(address: str, timeout_s: float
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Plain TCP to ``host:port``."""
    host, port = split_address(address)
    async with asyncio.timeout(timeout_s):
        return await asyncio.open_connection(host, port)


class _Link:
    """One TCP connection (or an address we are dialing) and its outgoing frames."""

    __slots__ = ("address", "closed", "dialer", "node_id", "queue", "ready", "writer")

    def __init__(self, address: str, node_id: str | None, dialer: str | None,
                 queue_frames: int) -> None:
        self.address = address
        self.node_id = node_id
        self.dialer = dialer  # node id of the side that dialed (None: a peer we don't know yet)
        self.queue: deque[bytes] = deque(maxlen=queue_frames)
        self.ready = asyncio.Event()  # set when queue has frames (or the link is closing)
        self.writer: asyncio.StreamWriter | None = None
        self.closed = False

    def push(self, frame: bytes) -> None:
        self.queue.append(frame)
        self.ready.set()

    def close(self) -> None:
        self.closed = True
        self.ready.set()
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class TcpTransport:
    """Drives ``node``: accepts peers on ``listen_host:listen_port``, dials the addresses the node
    asks for, feeds frames in, ticks it at ``next_wakeup()`` and carries out its actions.
    Non-network actions go to ``on_event`` (the daemon's hook) in order."""

    def __init__(
        self,
        node: ClusterNode,
        clock: Clock,
        *,
        listen_host: str,
        listen_port: int,
        rng: random.Random,
        on_event: Callable[[Action], None] | None = None,
        connect_timeout_s: float = 5.0,
        write_timeout_s: float = 10.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        queue_frames: int = 128,
        dial: Dialer = tcp_dial,
    ) -> None:
        self.node = node
        self._dial = dial
        self._clock = clock
        self._host = listen_host
        self._port = listen_port
        self._rng = rng
        self._on_event = on_event
        self._connect_timeout_s = connect_timeout_s
        self._write_timeout_s = write_timeout_s
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._queue_frames = queue_frames
        # Idle connections are closed after twice the lease: a live peer talks every interval.
        self._idle_timeout_s = 2 * node.settings.lease_s
        self._by_address: dict[str, _Link] = {}
        self._by_node: dict[str, _Link] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._wake = asyncio.Event()
        self._flushed = asyncio.Event()
        self.bound_port: int | None = None

    # --- public ------------------------------------------------------------------------------

    def submit(self, actions: list[Action]) -> None:
        """Carry out actions from a node call made outside this transport (``set_health`` …)."""
        for action in actions:
            if isinstance(action, SendTo):
                self._send(action)
            elif self._on_event is not None:
                self._on_event(action)
        self._wake.set()  # next_wakeup may have moved

    async def leave(self, reason: str = "shutting down", timeout_s: float = 2.0) -> None:
        """Release the lease (naming a successor), tell every peer, and wait up to ``timeout_s``
        for those frames to be written. Cancel ``run`` afterwards."""
        self.submit(self.node.leave(reason))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while any(link.queue and link.writer is not None for link in self._links()):
                    self._flushed.clear()
                    await self._flushed.wait()

    def _links(self) -> list[_Link]:
        return [*self._by_address.values(), *self._by_node.values()]

    async def run(self, ready: asyncio.Future[None] | None = None) -> None:
        """Serve until cancelled; ``ready`` resolves once listening (``bound_port`` is set)."""
        server = await asyncio.start_server(self._on_inbound, self._host, self._port)
        self.bound_port = server.sockets[0].getsockname()[1]
        try:
            async with server, asyncio.TaskGroup() as tg:
                self._tg = tg
                if ready is not None and not ready.done():
                    ready.set_result(None)
                self.submit(self.node.start())
                await self._tick_loop()
        finally:
            self._tg = None
            for link in self._links():
                link.close()

    # --- internals ---------------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        while True:
            delay = self.node.next_wakeup() - self._clock.monotonic()
            if delay > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                continue
            self.submit(self.node.tick())
            await asyncio.sleep(0)

    def _send(self, action: SendTo) -> None:
        if action.node_id is not None:
            link = self._by_node.get(action.node_id)
            if link is not None and not link.closed:
                link.push(action.frame)
                return
        link = self._by_address.get(action.address)
        if link is None or link.closed:
            link = _Link(action.address, action.node_id, self.node.node_id, self._queue_frames)
            self._by_address[action.address] = link
            if self._tg is not None:
                self._tg.create_task(self._dial_loop(link))
        if link.node_id is None and action.node_id is not None:
            link.node_id = action.node_id
            if link.writer is not None:
                self._register(link, action.node_id)
        link.push(action.frame)

    async def _dial_loop(self, link: _Link) -> None:
        backoff = self._backoff_initial_s
        try:
            while True:
                await link.ready.wait()
                if link.closed:
                    return
                if link.writer is None:
                    try:
                        reader, writer = await self._dial(link.address, self._connect_timeout_s)
                    except (OSError, TimeoutError, ConfigError) as exc:
                        log.debug("cannot reach peer %s (%s); retrying in %.1fs",
                                  link.address, exc, backoff)
                        link.queue.clear()
                        link.ready.clear()
                        await asyncio.sleep(backoff * self._rng.uniform(0.8, 1.2))
                        backoff = min(backoff * 2, self._backoff_max_s)
                        continue
                    backoff = self._backoff_initial_s
                    link.writer = writer
                    if link.node_id is not None:
                        self._register(link, link.node_id)
                    if self._tg is not None:
                        self._tg.create_task(self._read_loop(link, reader, writer))
                await self._flush(link)
        finally:
            link.close()
            if self._by_address.get(link.address) is link:
                del self._by_address[link.address]

    async def _flush(self, link: _Link) -> None:
        writer = link.writer
        if writer is None:
            return
        try:
            while link.queue:
                writer.write(link.queue.popleft())
            link.ready.clear()
            async with asyncio.timeout(self._write_timeout_s):
                await writer.drain()
            self._flushed.set()
        except (OSError, TimeoutError) as exc:
            log.debug("connection to %s failed while writing: %s", link.address, exc)
            if link.writer is writer:
                link.writer = None
            writer.close()

    async def _on_inbound(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                          ) -> None:
        peer = writer.get_extra_info("peername")
        link = _Link(f"{peer[0]}:{peer[1]}" if peer else "?", None, None, self._queue_frames)
        link.writer = writer
        if self._tg is None:
            writer.close()
            return
        self._tg.create_task(self._read_loop(link, reader, writer))
        self._tg.create_task(self._pump(link))

    async def _pump(self, link: _Link) -> None:
        while not link.closed and link.writer is not None:
            await link.ready.wait()
            await self._flush(link)
        link.close()

    async def _read_loop(self, link: _Link, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        decoder = FrameDecoder()
        try:
            while not link.closed:
                async with asyncio.timeout(self._idle_timeout_s):
                    data = await reader.read(_READ_BYTES)
                if not data:
                    return
                for frame in decoder.feed(data):
                    actions = self.node.receive(frame)
                    if (link.node_id is None or link.dialer is None) and not any(
                        isinstance(a, FrameRejected) for a in actions
                    ):
                        sender = frame_sender(frame)  # authenticated: the node accepted it
                        if link.dialer is None:
                            link.dialer = sender  # an inbound connection: the peer dialed
                        link.node_id = sender
                        self._register(link, sender)
                    self.submit(actions)
        except RemotePeerProtocolError as exc:
            self.node.rejects.record(exc.reason)
            log.warning("closing the peer connection from %s: %s", link.address, exc)
        except (OSError, TimeoutError) as exc:
            log.debug("peer connection %s ended: %s", link.address, exc)
        finally:
            writer.close()
            if link.writer is writer or link.writer is None:  # not already redialed
                link.close()
                if link.node_id is not None and self._by_node.get(link.node_id) is link:
                    del self._by_node[link.node_id]

    def _register(self, link: _Link, node_id: str) -> None:
        """Make ``link`` the connection to ``node_id`` unless the one we have wins the tie."""
        current = self._by_node.get(node_id)
        if current is None or current is link or current.closed or current.writer is None:
            self._by_node[node_id] = link
            return
        # Both sides dialed: keep the connection dialed by the lower node id (both sides agree).
        # Two connections dialed by the same side: keep the older one.
        lower = min(self.node.node_id, node_id)
        keep_new = link.dialer != current.dialer and link.dialer == lower
        if keep_new:
            self._by_node[node_id] = link
            while current.queue:
                link.push(current.queue.popleft())
            current.close()
        else:
            while link.queue:
                current.push(link.queue.popleft())
            link.close()
