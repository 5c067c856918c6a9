"""The TCP transport on loopback: real sockets, three in-process nodes, no tor needed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from onionfleet.clock import SystemClock
from onionfleet.cluster.actions import Action, BecomePublisher
from onionfleet.cluster.auth import ClusterToken, FrameSealer
from onionfleet.cluster.errors import RejectReason
from onionfleet.cluster.membership import PeerStatus
from onionfleet.cluster.messages import PROTOCOL_VERSION, Hello
from onionfleet.cluster.node import ClusterNode
from onionfleet.cluster.settings import ClusterSettings
from onionfleet.cluster.tor_transport import socks_dialer
from onionfleet.cluster.transport import TcpTransport, split_address
from onionfleet.errors import ConfigError

KEY = ClusterToken(b"tcp transport test token 32 byte").derive_mac_key()
INTERVAL_S = 0.2
GRACE_S = 0.2
LEASE_S = 3 * INTERVAL_S


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Member:
    name: str
    node: ClusterNode
    transport: TcpTransport
    task: asyncio.Task[None]
    events: list[tuple[float, Action]] = field(default_factory=list)


@dataclass
class Cluster:
    members: dict[str, Member]
    ports: dict[str, int]
    tg: asyncio.TaskGroup

    def publishers(self) -> list[str]:
        return [n for n, m in self.members.items() if not m.task.done() and m.node.is_publisher]


async def start_member(cluster: Cluster, name: str, priority: int, seeds: tuple[str, ...]) -> None:
    clock = SystemClock()
    settings = ClusterSettings(
        node_id=name, address=f"127.0.0.1:{cluster.ports[name]}", priority=priority,
        heartbeat_interval_s=INTERVAL_S, lease_grace_s=GRACE_S, forget_after_s=31.0,
        seeds=tuple(f"127.0.0.1:{cluster.ports[s]}" for s in seeds),
    )
    node = ClusterNode(settings, KEY, clock, boot_id=random.randbytes(16))
    events: list[tuple[float, Action]] = []
    transport = TcpTransport(
        node, clock, listen_host="127.0.0.1", listen_port=cluster.ports[name],
        rng=random.Random(priority), on_event=lambda a: events.append((clock.monotonic(), a)),
    )
    ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    task = cluster.tg.create_task(transport.run(ready))
    async with asyncio.timeout(5):
        await ready
    cluster.members[name] = Member(name, node, transport, task, events)


@contextlib.asynccontextmanager
async def three_nodes() -> AsyncIterator[Cluster]:
    async with asyncio.TaskGroup() as tg:
        cluster = Cluster({}, {n: free_port() for n in "abc"}, tg)
        await start_member(cluster, "a", 1, ())
        await start_member(cluster, "b", 2, ("a",))
        await start_member(cluster, "c", 3, ("b",))  # chain: c knows only b
        try:
            yield cluster
        finally:
            for member in cluster.members.values():
                member.task.cancel()


async def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                if predicate():
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout_s}s waiting for {what}") from None


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="onionfleet.cluster")


async def test_three_nodes_mesh_elect_and_keep_one_connection_per_pair() -> None:
    async with three_nodes() as cluster:
        m = cluster.members

        def meshed() -> bool:
            return all(
                sum(p.status is PeerStatus.ALIVE for p in x.node.peers()) == 2 for x in m.values()
            )

        await wait_for(meshed, 5.0, "full mesh")
        await wait_for(lambda: cluster.publishers() == ["a"], LEASE_S + GRACE_S + 3.0, "election")
        await asyncio.sleep(5 * INTERVAL_S)
        assert cluster.publishers() == ["a"]
        for x, y in (("a", "b"), ("a", "c"), ("b", "c")):
            lx = m[x].transport._by_node[y]
            ly = m[y].transport._by_node[x]
            assert lx.writer is not None and ly.writer is not None
            # the two ends of one TCP connection
            assert lx.writer.get_extra_info("sockname") == ly.writer.get_extra_info("peername")
        for member in m.values():
            assert member.node.rejects.total == 0


async def test_publisher_killed_another_takes_over_in_time() -> None:
    async with three_nodes() as cluster:
        m = cluster.members
        await wait_for(lambda: cluster.publishers() == ["a"], 6.0, "election")
        loop = asyncio.get_running_loop()
        killed_at = loop.time()
        m["a"].task.cancel()
        await wait_for(lambda: cluster.publishers() == ["b"], LEASE_S + GRACE_S + 2.0, "take-over")
        claim = [t for t, a in m["b"].events if isinstance(a, BecomePublisher)]
        assert claim and claim[0] - killed_at <= LEASE_S + GRACE_S + 2 * INTERVAL_S + 0.3


async def _raw(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    async with asyncio.timeout(5):
        return await asyncio.open_connection("127.0.0.1", port)


async def _closed(reader: asyncio.StreamReader) -> bool:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(1.0):
            return await reader.read(100) == b""
    return False


async def test_hostile_connections_are_counted_and_closed_or_survive() -> None:
    async with three_nodes() as cluster:
        a = cluster.members["a"]
        port = cluster.ports["a"]
        # Something else talking to the peer port: closed, counted as bad version.
        reader, writer = await _raw(port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert await _closed(reader)
        assert a.node.rejects.get(RejectReason.BAD_VERSION) == 1
        writer.close()
        # A header claiming 1 GiB: refused at once, closed.
        reader, writer = await _raw(port)
        writer.write(struct.pack(">2sBBI", b"OF", PROTOCOL_VERSION, 1, 1 << 30))
        assert await _closed(reader)
        assert a.node.rejects.get(RejectReason.TOO_LARGE) == 1
        writer.close()
        # A well-formed frame under the wrong token: counted, the connection survives.
        wrong = ClusterToken(b"this is not the cluster token!!!").derive_mac_key()
        reader, writer = await _raw(port)
        loop_wall = SystemClock().wall()
        writer.write(FrameSealer(wrong, "z", b"\x01" * 16).seal(Hello("127.0.0.1:9"), loop_wall))
        assert not await _closed(reader)
        assert a.node.rejects.get(RejectReason.BAD_MAC) == 1
        # Replayed: the same valid frame twice.
        frame = FrameSealer(KEY, "z", b"\x02" * 16).seal(Hello("127.0.0.1:9"), loop_wall)
        writer.write(frame + frame)
        await asyncio.sleep(0.3)
        assert a.node.rejects.get(RejectReason.REPLAY) == 1
        writer.close()
        assert cluster.publishers() in ([], ["a"])  # the node kept working


def test_split_address() -> None:
    assert split_address("10.0.0.1:7800") == ("10.0.0.1", 7800)
    assert split_address("[fd00::1]:7800") == ("fd00::1", 7800)
    for bad in ("nohost", ":80", "h:0", "h:99999", "h:x"):
        with pytest.raises(ConfigError):
            split_address(bad)


async def test_restarted_node_reconnects_and_gets_the_lease_back() -> None:
    async with three_nodes() as cluster:
        m = cluster.members
        await wait_for(lambda: cluster.publishers() == ["a"], 6.0, "election")
        m["a"].task.cancel()
        await wait_for(lambda: cluster.publishers() == ["b"], LEASE_S + GRACE_S + 2.0, "take-over")
        await start_member(cluster, "a", 1, ())  # same port, new boot id, no seeds: b redials it

        def a_back() -> bool:
            return any(p.node_id == "a" and p.status is PeerStatus.ALIVE and p.serving
                       for p in m["b"].node.peers())

        await wait_for(a_back, 5.0, "b reconnecting to the restarted a")
        await wait_for(lambda: cluster.publishers() == ["a"], 5.0, "hand-back to a")
        assert m["a"].node.term.number == 3


async def test_leaving_publisher_hands_over_at_once() -> None:
    async with three_nodes() as cluster:
        m = cluster.members
        await wait_for(lambda: cluster.publishers() == ["a"], 6.0, "election")
        loop = asyncio.get_running_loop()
        left_at = loop.time()
        async with asyncio.timeout(3):
            await m["a"].transport.leave("upgrade")
        m["a"].task.cancel()
        await wait_for(lambda: cluster.publishers() == ["b"], 1.0, "hand-over on leave")
        assert loop.time() - left_at < LEASE_S  # no waiting for the lease to lapse
        assert all(p.node_id != "a" for p in m["c"].node.peers())


async def test_socks_dialer_failures_are_oserrors_the_transport_retries() -> None:
    """The Tor transport's dial: no SOCKS listener → OSError; a SOCKS server that refuses the
    stream (what tor answers for an unreachable onion) → OSError too, never another type."""
    closed = free_port()
    with pytest.raises(OSError):
        await socks_dialer(closed)("b" * 56 + ".onion:1", 2.0)

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(3)  # greeting: v5, 1 method, no-auth
        writer.write(b"\x05\x00")
        head = await reader.readexactly(5)  # v5 CONNECT rsv ATYP=3 len
        assert head[3] == 3, "the onion name must be sent as a domain (ATYP=3)"
        await reader.readexactly(head[4] + 2)
        writer.write(b"\x05\x04\x00\x01" + bytes(6))  # host unreachable
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        with pytest.raises(OSError, match="refused the peer stream"):
            await socks_dialer(port)("a" * 56 + ".onion:7420", 2.0)
