"""The node data plane against real tor on the private network.

Topology (all on 127.0.0.1)::

    client tor --Tor--> "npnode" onion (HiddenServiceExportCircuitID haproxy)
        --HiddenServicePort--> our ReverseProxy --> (a) SOCKS5 of "npsocks" tor --Tor-->
        "nptarget" onion --> HTTP server;  or (b) a plain TCP HTTP target

tor self-publishes the node's descriptor (a single node, no merging). The health test stops the
target's web server behind its onion (tor keeps running: the "zombie backend" case) and restarts
it, probing through tor's SOCKS port with a new circuit per probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from onionfleet.clock import SystemClock
from onionfleet.node.balancer import Balancer
from onionfleet.node.connect import StreamConnector
from onionfleet.node.health import HealthChanged, HealthState, ProbeSpec, node_verdict
from onionfleet.node.prober import TargetProber
from onionfleet.node.proxy import ProxyConfig, ReverseProxy, TcpListen
from onionfleet.node.proxy_protocol import TOR_CIRCUIT_NETWORK, circuit_id_of, parse_proxy_header
from onionfleet.node.stats import ProxyStats
from onionfleet.node.targets import OnionTarget, SocksEndpoint, Target, TcpTarget
from onionfleet.testnet import TestNetwork, TorInstance, http_get_with_retry

pytestmark = [pytest.mark.testnet, pytest.mark.timeout(420)]

TARGET_PAGE = b"<h1>the target onion's page</h1>"
TCP_PAGE = b"<h1>the plain TCP target's page</h1>"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HttpTarget:
    """A tiny HTTP server that can be stopped and started again on the same port.

    It records the first line of each connection when it is a PROXY header.
    """

    def __init__(self, body: bytes, port: int) -> None:
        self.body = body
        self.port = port
        self.server: asyncio.Server | None = None
        self.proxy_lines: list[bytes] = []
        self.hits = 0

    async def _handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                head = await r.readuntil(b"\r\n\r\n")
                if head.startswith(b"PROXY"):
                    line, _, rest = head.partition(b"\r\n")
                    self.proxy_lines.append(line + b"\r\n")
                    head = rest if rest.endswith(b"\r\n\r\n") else await r.readuntil(b"\r\n\r\n")
                self.hits += 1
                w.write(
                    b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n"
                    % len(self.body)
                    + self.body
                )
                await w.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            w.close()

    async def start(self) -> None:
        self.server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None


@dataclass
class NodeNet:
    net: TestNetwork
    target_http_port: int
    target_onion: TorInstance
    node_socks: TorInstance
    node: TorInstance
    proxy_port: int
    client: TorInstance


@pytest.fixture(scope="module")
def node_net(testnet: TestNetwork) -> Iterator[NodeNet]:
    """Our tors on the shared session network; stopped when the module is done."""
    net = testnet
    target_http_port = free_port()
    target_onion = net.add_onion_service("nptarget", target_port=target_http_port)
    node_socks = net.add_client("npsocks")
    proxy_port = free_port()
    node = net.add_onion_service(
        "npnode",
        target_port=proxy_port,
        extra_torrc=["HiddenServiceExportCircuitID haproxy"],
    )
    client = net.add_client("npclient")
    yield NodeNet(net, target_http_port, target_onion, node_socks, node, proxy_port, client)
    for inst in (client, node, node_socks, target_onion):
        inst.stop()


@contextlib.asynccontextmanager
async def node_proxy(
    nn: NodeNet, targets: list[Target], *, send_proxy_header: int | None = None
) -> AsyncIterator[ReverseProxy]:
    assert nn.node_socks.socks_port is not None
    config = ProxyConfig(
        listen=TcpListen(nn.proxy_port),
        connect_timeout_s=60,
        idle_timeout_s=60,
        expect_tor_proxy_header=True,  # the node tor runs HiddenServiceExportCircuitID haproxy
        send_proxy_header=send_proxy_header,  # type: ignore[arg-type]
    )
    proxy = ReverseProxy(
        config, Balancer(targets), StreamConnector(SocksEndpoint(nn.node_socks.socks_port))
    )
    ready: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(proxy.run(ready))  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(ready, 10)
        yield proxy
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def fetch_node(nn: NodeNet, path: str = "/") -> tuple[int, bytes]:
    assert nn.client.socks_port is not None and nn.node.onion_address is not None
    return await asyncio.to_thread(
        http_get_with_retry,
        nn.client.socks_port,
        f"http://{nn.node.onion_address}{path}",
        timeout_s=120.0,
    )


async def test_onion_target_through_node(node_net: NodeNet) -> None:
    """(a) client → node onion → our proxy → tor SOCKS → target onion → target's page."""
    nn = node_net
    assert nn.target_onion.onion_address is not None
    target = HttpTarget(TARGET_PAGE, nn.target_http_port)
    await target.start()
    try:
        async with node_proxy(nn, [OnionTarget(nn.target_onion.onion_address, 80)]) as proxy:
            status, body = await fetch_node(nn)
            assert status == 200
            assert TARGET_PAGE in body
            stats: ProxyStats = proxy.stats
            assert stats.header_errors_total == 0
            assert stats.bytes_target_to_client >= len(TARGET_PAGE)
            assert target.hits >= 1
    finally:
        await target.stop()


async def test_tcp_target_through_node_with_circuit_id(node_net: NodeNet) -> None:
    """(b) the same with a plain TCP target; the target receives tor's circuit id (PROXY v1)."""
    nn = node_net
    tcp = HttpTarget(TCP_PAGE, free_port())
    await tcp.start()
    try:
        async with node_proxy(nn, [TcpTarget("127.0.0.1", tcp.port)], send_proxy_header=1):
            status, body = await fetch_node(nn)
            assert status == 200
            assert TCP_PAGE in body
    finally:
        await tcp.stop()
    assert tcp.proxy_lines, "the target got no PROXY header"
    parsed = parse_proxy_header(tcp.proxy_lines[-1])
    assert parsed is not None
    header = parsed[0]
    assert header.src_addr in TOR_CIRCUIT_NETWORK
    circuit = circuit_id_of(header)
    assert circuit is not None and circuit > 0
    assert header.dst_port == 80  # the node's virtual port, as tor reported it


async def test_health_verdict_follows_target(
    node_net: NodeNet, caplog: pytest.LogCaptureFixture
) -> None:
    """(c) stop the target → unhealthy within fall × interval; restart → healthy within
    rise × interval. Probes go through tor's SOCKS port, a new circuit per probe."""
    caplog.set_level(logging.INFO, logger="onionfleet.node")
    nn = node_net
    assert nn.target_onion.onion_address is not None and nn.node_socks.socks_port is not None
    interval_s, rise, fall = 3.0, 2, 2
    spec = ProbeSpec(
        path="/",
        body_regex="target onion",
        interval_s=interval_s,
        rise=rise,
        fall=fall,
        connect_timeout_s=30,
        read_timeout_s=10,
        new_circuit_per_probe=True,
    )
    onion = OnionTarget(nn.target_onion.onion_address, 80, name="target")
    changes: list[tuple[float, HealthChanged]] = []
    changed = asyncio.Event()

    def on_change(change: HealthChanged) -> None:
        changes.append((time.monotonic(), change))
        changed.set()

    balancer = Balancer([onion])
    prober = TargetProber(
        [onion],
        spec,
        StreamConnector(SocksEndpoint(nn.node_socks.socks_port)),
        clock=SystemClock(),
        token_bytes=secrets.token_bytes,
        balancer=balancer,
        on_change=on_change,
    )

    def verdict() -> bool:
        return node_verdict(
            tor_bootstrapped=nn.node.bootstrap_percent == 100,
            intro_points_established=1 if nn.node.descriptor_uploads > 0 else 0,
            healthy_targets=prober.healthy_count,
        ).serving

    async def wait_state(state: HealthState, timeout_s: float) -> float:
        start = time.monotonic()
        async with asyncio.timeout(timeout_s):
            while prober.state(onion) is not state:
                changed.clear()
                await changed.wait()
        return time.monotonic() - start

    target = HttpTarget(TARGET_PAGE, nn.target_http_port)
    await target.start()
    try:
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(prober.run())
            await wait_state(HealthState.HEALTHY, 90)
            assert verdict()
            assert balancer.healthy_count == 1

            await target.stop()
            stopped = time.monotonic()
            await wait_state(HealthState.UNHEALTHY, 60)
            down_after = changes[-1][0] - stopped
            assert not verdict()
            # fall probes at interval spacing; the in-flight probe adds at most one probe time.
            assert down_after <= fall * interval_s + 2.0, down_after

            await target.start()
            started = time.monotonic()
            await wait_state(HealthState.HEALTHY, 60)
            up_after = changes[-1][0] - started
            assert verdict()
            assert up_after <= rise * interval_s + 3.0, up_after
            task.cancel()
    finally:
        await target.stop()
    logging.getLogger(__name__).info(
        "health: unhealthy %.1f s after stop, healthy %.1f s after restart", down_after, up_after
    )
    assert "target target is now unhealthy" in caplog.text
    assert "target target is now healthy" in caplog.text


async def test_two_targets_one_down_every_request_served(node_net: NodeNet) -> None:
    """Acceptance: with one of two targets down, every client request through tor is served."""
    nn = node_net
    assert nn.target_onion.onion_address is not None
    target = HttpTarget(TARGET_PAGE, nn.target_http_port)
    await target.start()
    down = TcpTarget("127.0.0.1", free_port(), name="down")
    up = OnionTarget(nn.target_onion.onion_address, 80, name="up")
    try:
        async with node_proxy(nn, [down, up]) as proxy:
            for _ in range(6):
                status, body = await fetch_node(nn)
                assert status == 200
                assert TARGET_PAGE in body
            snap = proxy.stats.snapshot()
            assert snap.no_target_total == 0
            by_name = {t.target: t for t in snap.targets}
            assert by_name["up"].connections_total >= 6
            assert by_name["down"].connections_total == 0
    finally:
        await target.stop()
