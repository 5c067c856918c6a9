"""The reverse proxy with real sockets on 127.0.0.1 (no tor needed).

After every test: no leaked file descriptors (``/proc/self/fd``) and no leftover tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from onionfleet.clock import SystemClock
from onionfleet.node.balancer import Balancer
from onionfleet.node.connect import StreamConnector
from onionfleet.node.errors import ProxyListenError
from onionfleet.node.health import HealthChanged, HealthState, ProbeResult, ProbeSpec
from onionfleet.node.prober import TargetProber, probe_target
from onionfleet.node.proxy import ProxyConfig, ReverseProxy, TcpListen, UnixListen
from onionfleet.node.proxy_protocol import (
    ProxyFamily,
    circuit_id_of,
    encode_v1,
    parse_proxy_header,
    tor_circuit_header,
)
from onionfleet.node.targets import TcpTarget

pytestmark = pytest.mark.timeout(60)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    server: asyncio.Server
    port: int
    received: list[bytes] = field(default_factory=list)


async def start_server(handler: Handler) -> Server:
    writers: set[asyncio.StreamWriter] = set()

    async def wrapped(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        writers.add(w)
        try:
            await handler(r, w)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writers.discard(w)
            w.close()
            with contextlib.suppress(Exception):
                await w.wait_closed()

    srv = await asyncio.start_server(wrapped, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    return Server(srv, port)


async def echo_until_eof(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    """Read everything until EOF, then answer with the byte count and the data, then close."""
    data = await r.read()
    w.write(f"{len(data)}\n".encode() + data)
    await w.drain()


@contextlib.asynccontextmanager
async def running_proxy(
    targets: list[TcpTarget], **config: object
) -> AsyncIterator[tuple[ReverseProxy, int | str]]:
    listen = config.pop("listen", None) or TcpListen(0)
    cfg = ProxyConfig(listen=listen, **config)  # type: ignore[arg-type]
    proxy = ReverseProxy(cfg, Balancer(targets), StreamConnector(None))
    ready: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(proxy.run(ready))  # type: ignore[arg-type]
    try:
        addr = await asyncio.wait_for(ready, 5)
        yield proxy, (addr[1] if isinstance(addr, tuple) else str(addr))
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def no_leaks() -> AsyncIterator[None]:
    fds = open_fds()
    tasks = len(asyncio.all_tasks())
    yield
    for _ in range(50):
        await asyncio.sleep(0.01)
        if open_fds() == fds and len(asyncio.all_tasks()) == tasks:
            break
    assert open_fds() == fds, "file descriptors leaked"
    assert len(asyncio.all_tasks()) == tasks, f"tasks leaked: {asyncio.all_tasks()}"


async def connect(port: int | str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if isinstance(port, str):
        return await asyncio.open_unix_connection(port)
    return await asyncio.open_connection("127.0.0.1", port)


async def close(w: asyncio.StreamWriter) -> None:
    w.close()
    with contextlib.suppress(Exception):
        await w.wait_closed()


async def test_half_close_both_ways(no_leaks: None, caplog: pytest.LogCaptureFixture) -> None:
    srv = await start_server(echo_until_eof)
    async with srv.server, running_proxy([TcpTarget("127.0.0.1", srv.port)]) as (proxy, port):
        r, w = await connect(port)
        payload = os.urandom(300_000)
        w.write(payload)
        w.write_eof()  # client half-closes; the target must see EOF and still answer
        answer = await asyncio.wait_for(r.read(), 10)
        assert answer == b"300000\n" + payload
        await close(w)

        # The other direction: the target finishes first, the client keeps sending.
        got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def target_first(r2: asyncio.StreamReader, w2: asyncio.StreamWriter) -> None:
            w2.write(b"hello")
            w2.write_eof()
            got.set_result(await r2.read())

        srv2 = await start_server(target_first)
        async with srv2.server, running_proxy([TcpTarget("127.0.0.1", srv2.port)]) as (_, p2):
            r, w = await connect(p2)
            assert await asyncio.wait_for(r.read(), 5) == b"hello"  # EOF forwarded to client
            w.write(b"still talking")
            w.write_eof()
            assert await asyncio.wait_for(got, 5) == b"still talking"
            await close(w)
        await asyncio.sleep(0.05)
        snap = proxy.stats.snapshot()
        assert snap.bytes_client_to_target == 300_000
        assert snap.bytes_target_to_client == 300_007
        assert snap.active == 0


async def test_slow_reader_is_backpressured(no_leaks: None) -> None:
    total = 64 * 1024 * 1024
    sent = 0

    async def firehose(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        nonlocal sent
        chunk = b"x" * 65536
        while sent < total:
            w.write(chunk)
            sent += len(chunk)
            await w.drain()
        w.write_eof()
        await r.read()

    srv = await start_server(firehose)
    async with srv.server, running_proxy([TcpTarget("127.0.0.1", srv.port)]) as (proxy, port):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        r, w = await asyncio.open_connection(sock=sock, limit=65536)
        r._transport.pause_reading()  # type: ignore[attr-defined]  # a client that never reads
        await asyncio.sleep(1.0)
        in_proxy = proxy.stats.bytes_target_to_client
        # Kernel socket buffers (a few MB on loopback) + the proxy's write buffer, not 64 MiB.
        assert in_proxy < 16 * 1024 * 1024, in_proxy
        assert sent < 32 * 1024 * 1024, sent
        r._transport.resume_reading()  # type: ignore[attr-defined]
        received = 0
        while True:
            chunk = await asyncio.wait_for(r.read(1 << 20), 10)
            if not chunk:
                break
            received += len(chunk)
        assert received == total
        await close(w)


async def test_slow_writer_and_slow_target(no_leaks: None) -> None:
    async def slow_consumer(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        n = 0
        while chunk := await r.read(1000):
            n += len(chunk)
            await asyncio.sleep(0.001)
        w.write(str(n).encode())

    srv = await start_server(slow_consumer)
    async with (
        srv.server,
        running_proxy([TcpTarget("127.0.0.1", srv.port)], write_buffer_high_bytes=16384) as (
            proxy,
            port,
        ),
    ):
        r, w = await connect(port)
        for _ in range(50):  # a slow writer: small pieces with pauses
            w.write(b"a" * 100)
            await w.drain()
            await asyncio.sleep(0.002)
        w.write(b"b" * 2_000_000)  # then a burst the target reads slowly
        await w.drain()
        w.write_eof()
        assert await asyncio.wait_for(r.read(), 30) == b"2005000"
        await close(w)
        assert proxy.stats.snapshot().bytes_client_to_target == 2_005_000


async def test_client_vanishes_mid_stream(no_leaks: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="onionfleet.node.proxy")
    target_saw_end: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def streamer(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while True:
                w.write(b"y" * 65536)
                await w.drain()
        except ConnectionError as exc:
            target_saw_end.set_result(type(exc).__name__)

    srv = await start_server(streamer)
    async with srv.server, running_proxy([TcpTarget("127.0.0.1", srv.port)]) as (proxy, port):
        sock = socket.create_connection(("127.0.0.1", port))
        await asyncio.sleep(0.1)
        sock.recv(1000)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # RST: the client is gone
        assert await asyncio.wait_for(target_saw_end, 5)
        for _ in range(100):
            if proxy.stats.active == 0:
                break
            await asyncio.sleep(0.01)
        assert proxy.stats.snapshot().client_resets_total == 1
    assert "client vanished mid-stream" in caplog.text


async def test_target_refusing(no_leaks: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="onionfleet.node.proxy")
    dead = free_port()
    async with running_proxy([TcpTarget("127.0.0.1", dead)]) as (proxy, port):
        r, w = await connect(port)
        w.write(b"GET / HTTP/1.0\r\n\r\n")
        assert await asyncio.wait_for(r.read(), 5) == b""  # closed without an answer
        await close(w)
        await asyncio.sleep(0.05)
        snap = proxy.stats.snapshot()
        assert snap.no_target_total == 1
        assert snap.targets[0].connect_failures_total == 1
    assert f"connecting to target 127.0.0.1:{dead} failed" in caplog.text
    assert "every target failed" in caplog.text


async def test_all_targets_down(no_leaks: None, caplog: pytest.LogCaptureFixture) -> None:
    targets = [TcpTarget("127.0.0.1", free_port(), name=f"t{i}") for i in range(3)]
    async with running_proxy(targets) as (proxy, port):
        for _ in range(5):
            r, w = await connect(port)
            assert await asyncio.wait_for(r.read(), 5) == b""
            await close(w)
        await asyncio.sleep(0.05)
        snap = proxy.stats.snapshot()
        assert snap.no_target_total == 5
        assert sum(t.connect_failures_total for t in snap.targets) == 15
    assert "t0: refused; t1: refused; t2: refused" in caplog.text or "refused" in caplog.text


async def test_two_targets_one_down_every_request_served(no_leaks: None) -> None:
    async def http_ok(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await r.readuntil(b"\r\n\r\n")
        w.write(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")

    srv = await start_server(http_ok)
    up = TcpTarget("127.0.0.1", srv.port, name="up")
    down = TcpTarget("127.0.0.1", free_port(), name="down")
    async with srv.server, running_proxy([down, up]) as (proxy, port):
        for _ in range(20):
            r, w = await connect(port)
            w.write(b"GET / HTTP/1.0\r\n\r\n")
            assert (await asyncio.wait_for(r.read(), 5)).endswith(b"\r\n\r\nok")
            await close(w)
        # Once the probes mark it unhealthy it is not even tried first.
        proxy.balancer.set_health("down", HealthState.UNHEALTHY)
        proxy.balancer.set_health("up", HealthState.HEALTHY)
        before = proxy.stats.snapshot()
        for _ in range(10):
            r, w = await connect(port)
            w.write(b"GET / HTTP/1.0\r\n\r\n")
            assert (await asyncio.wait_for(r.read(), 5)).endswith(b"ok")
            await close(w)
        after = proxy.stats.snapshot()
        down_before = next(t for t in before.targets if t.target == "down")
        down_after = next(t for t in after.targets if t.target == "down")
        assert down_after.connect_failures_total == down_before.connect_failures_total
        assert after.no_target_total == 0


async def test_max_connections(no_leaks: None, caplog: pytest.LogCaptureFixture) -> None:
    async def hold(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await r.read()

    srv = await start_server(hold)
    async with (
        srv.server,
        running_proxy([TcpTarget("127.0.0.1", srv.port)], max_connections=2) as (proxy, port),
    ):
        held = [await connect(port) for _ in range(2)]
        await asyncio.sleep(0.1)
        assert proxy.stats.active == 2
        r, w = await connect(port)
        with contextlib.suppress(ConnectionResetError):
            assert await asyncio.wait_for(r.read(), 5) == b""
        await close(w)
        assert proxy.stats.snapshot().refused_overload_total == 1
        for _, hw in held:
            await close(hw)
        for _ in range(100):
            if proxy.stats.active == 0:
                break
            await asyncio.sleep(0.01)
        # Below the limit again: accepted.
        r, w = await connect(port)
        await asyncio.sleep(0.1)
        assert proxy.stats.active == 1
        await close(w)
    assert "max_connections=2" in caplog.text


async def test_idle_timeout(no_leaks: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="onionfleet.node.proxy")

    async def silent(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await r.read()

    srv = await start_server(silent)
    async with (
        srv.server,
        running_proxy([TcpTarget("127.0.0.1", srv.port)], idle_timeout_s=0.3) as (proxy, port),
    ):
        r, w = await connect(port)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(3):  # activity keeps it open
            await asyncio.sleep(0.2)
            w.write(b"x")
        assert await asyncio.wait_for(r.read(), 5) == b""
        assert loop.time() - start >= 0.8
        await close(w)
        await asyncio.sleep(0.05)
        assert proxy.stats.snapshot().idle_timeouts_total == 1
    assert "without data in either direction" in caplog.text


@pytest.mark.parametrize("version", [1, 2])
async def test_tor_circuit_id_forwarded_as_proxy_header(no_leaks: None, version: int) -> None:
    seen: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def record(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        seen.set_result(await r.read())

    srv = await start_server(record)
    async with (
        srv.server,
        running_proxy(
            [TcpTarget("127.0.0.1", srv.port)],
            expect_tor_proxy_header=True,
            send_proxy_header=version,
        ) as (_, port),
    ):
        _r, w = await connect(port)
        # Exactly what tor sends for circuit 666 on virtual port 42 (tor's test_hs_service.c).
        w.write(b"PROXY TCP6 fc00:dead:beef:4dad::0:29a ::1 666 42\r\nGET / HTTP/1.0\r\n\r\n")
        w.write_eof()
        data = await asyncio.wait_for(seen, 5)
        parsed = parse_proxy_header(data)
        assert parsed is not None
        header, used = parsed
        assert header.version == version
        assert header.family is ProxyFamily.TCP6
        assert circuit_id_of(header) == 666
        assert (header.src_port, header.dst_port) == (666, 42)
        assert data[used:] == b"GET / HTTP/1.0\r\n\r\n"
        await close(w)


async def test_bad_tor_header_closes_stream(
    no_leaks: None, caplog: pytest.LogCaptureFixture
) -> None:
    srv = await start_server(echo_until_eof)
    async with (
        srv.server,
        running_proxy(
            [TcpTarget("127.0.0.1", srv.port)], expect_tor_proxy_header=True, header_timeout_s=0.3
        ) as (proxy, port),
    ):
        r, w = await connect(port)
        w.write(b"GET / HTTP/1.0\r\n\r\n")
        assert await asyncio.wait_for(r.read(), 5) == b""
        await close(w)
        r, w = await connect(port)  # says nothing at all
        assert await asyncio.wait_for(r.read(), 5) == b""
        await close(w)
        await asyncio.sleep(0.05)
        assert proxy.stats.snapshot().header_errors_total == 2
    assert "bad PROXY header from tor" in caplog.text
    assert "no PROXY header from tor within" in caplog.text


async def test_unix_socket_listener_and_no_header_sends_unknown(
    no_leaks: None, tmp_path: os.PathLike[str]
) -> None:
    seen: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def record(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        seen.set_result(await r.read())

    path = os.path.join(os.fspath(tmp_path), "p.sock")
    srv = await start_server(record)
    async with (
        srv.server,
        running_proxy(
            [TcpTarget("127.0.0.1", srv.port)], listen=UnixListen(path), send_proxy_header=1
        ) as (_, addr),
    ):
        assert addr == path
        _r, w = await connect(path)
        w.write(b"hi")
        w.write_eof()
        assert await asyncio.wait_for(seen, 5) == b"PROXY UNKNOWN\r\nhi"
        await close(w)
    assert not Path(path).exists()  # removed on shutdown  # noqa: ASYNC240


async def test_graceful_drain(no_leaks: None) -> None:
    async def slow_answer(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await r.read(1)
        await asyncio.sleep(0.2)
        w.write(b"done")

    srv = await start_server(slow_answer)
    async with srv.server, running_proxy([TcpTarget("127.0.0.1", srv.port)]) as (proxy, port):
        r, w = await connect(port)
        w.write(b"x")
        await asyncio.sleep(0.05)
        proxy.stop_accepting()
        await asyncio.sleep(0.01)
        with pytest.raises(OSError):
            await connect(port)
        assert await asyncio.wait_for(r.read(), 5) == b"done"
        await close(w)
        assert await proxy.wait_drained(5)


async def test_accept_survives_emfile(no_leaks: None, caplog: pytest.LogCaptureFixture) -> None:
    import resource

    srv = await start_server(echo_until_eof)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    async with (
        srv.server,
        running_proxy([TcpTarget("127.0.0.1", srv.port)], accept_backoff_s=0.05) as (proxy, port),
    ):
        # Use up every file descriptor: the proxy's accept() then fails with EMFILE.
        client = socket.socket()
        fillers: list[int] = []
        highest = max(int(fd) for fd in os.listdir("/proc/self/fd"))
        resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 1, hard))
        try:
            with contextlib.suppress(OSError):
                while True:
                    fillers.append(os.open("/dev/null", os.O_RDONLY))
            client.connect(("127.0.0.1", port))  # completes in the listen backlog
            for _ in range(100):
                if proxy.stats.accept_errors_total:
                    break
                await asyncio.sleep(0.01)
        finally:
            for fd in fillers:
                os.close(fd)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        assert proxy.stats.accept_errors_total >= 1
        # Resources are back: the pending stream is accepted and served.
        client.setblocking(False)
        r, w = await asyncio.open_connection(sock=client)
        w.write(b"abc")
        w.write_eof()
        assert await asyncio.wait_for(r.read(), 5) == b"3\nabc"
        await close(w)
    assert "out of resources" in caplog.text


def test_encode_v1_of_tor_header_matches_tor() -> None:
    # tor prints the address non-canonically; we send the canonical form of the same address.
    assert encode_v1(tor_circuit_header(666, 42)) == (
        b"PROXY TCP6 fc00:dead:beef:4dad::29a ::1 666 42\r\n"
    )


# ------------------------------------------------------------------ health probes (direct TCP)


def _http_server(status: int, body: bytes, *, delay_s: float = 0.0) -> Handler:
    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            await r.readuntil(b"\r\n\r\n")
            if delay_s:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(r.read(), delay_s)  # ends early if the client leaves
            w.write(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n" % (status, len(body)) + body)
            await w.drain()
        finally:
            w.close()

    return handler


@pytest.mark.parametrize(
    ("status", "body", "spec_kw", "ok", "reason"),
    [
        (200, b"all good", {}, True, "HTTP 200"),
        (204, b"", {"expected_statuses": frozenset({200, 204})}, True, "HTTP 204"),
        (500, b"oops", {}, False, "HTTP status 500, expected one of [200]"),
        (200, b"db: down", {"body_regex": "db: up"}, False, "does not match body_regex"),
        (200, b"db: up", {"body_regex": "db: up"}, True, "HTTP 200"),
    ],
)
async def test_probe_target_outcomes(
    no_leaks: None, status: int, body: bytes, spec_kw: dict[str, object], ok: bool, reason: str
) -> None:
    srv = await start_server(_http_server(status, body))
    async with srv.server:
        spec = ProbeSpec(**spec_kw)  # type: ignore[arg-type]
        result = await probe_target(
            TcpTarget("127.0.0.1", srv.port), spec, StreamConnector(None), clock=SystemClock()
        )
    assert result.ok is ok
    assert reason in result.reason
    if ok:
        assert result.status == status


async def test_probe_failures_are_results_not_exceptions(no_leaks: None) -> None:
    conn = StreamConnector(None)
    clock = SystemClock()
    refused = await probe_target(
        TcpTarget("127.0.0.1", free_port()), ProbeSpec(), conn, clock=clock
    )
    assert not refused.ok
    assert "connect failed" in refused.reason

    srv = await start_server(_http_server(200, b"late", delay_s=5))
    async with srv.server:
        slow = await probe_target(
            TcpTarget("127.0.0.1", srv.port), ProbeSpec(read_timeout_s=0.2), conn, clock=clock
        )
    assert not slow.ok
    assert "read_timeout_s=0.2" in slow.reason

    async def garbage(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await r.readuntil(b"\r\n\r\n")
        w.write(b"SSH-2.0-OpenSSH_9\r\n\r\n")

    srv = await start_server(garbage)
    async with srv.server:
        bad = await probe_target(TcpTarget("127.0.0.1", srv.port), ProbeSpec(), conn, clock=clock)
    assert not bad.ok
    assert "HTTP/" in bad.reason


async def test_prober_drives_balancer(no_leaks: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="onionfleet.node")
    port = free_port()
    target = TcpTarget("127.0.0.1", port, name="web")
    balancer = Balancer([target])
    changes: list[HealthChanged] = []
    changed = asyncio.Event()

    def on_change(change: HealthChanged) -> None:
        changes.append(change)
        changed.set()

    results: list[ProbeResult] = []
    spec = ProbeSpec(interval_s=0.05, rise=2, fall=2, read_timeout_s=1, connect_timeout_s=1)
    prober = TargetProber(
        [target],
        spec,
        StreamConnector(None),
        clock=SystemClock(),
        token_bytes=bytes,
        balancer=balancer,
        on_change=on_change,
        on_result=results.append,
    )

    async def until(state: HealthState) -> None:
        async with asyncio.timeout(5):
            while prober.state(target) is not state:
                changed.clear()
                await changed.wait()

    server = await asyncio.start_server(
        _http_server(200, b"ok"), "127.0.0.1", port, reuse_address=True
    )
    task = asyncio.create_task(prober.run())
    try:
        await until(HealthState.HEALTHY)
        assert balancer.healthy_count == 1
        server.close()
        await server.wait_closed()
        await until(HealthState.UNHEALTHY)
        assert balancer.loads()[0].health is HealthState.UNHEALTHY
        server = await asyncio.start_server(
            _http_server(200, b"ok"), "127.0.0.1", port, reuse_address=True
        )
        await until(HealthState.HEALTHY)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        server.close()
        await server.wait_closed()
    # every probe is reported (metrics count them): the first success (UNKNOWN -> HEALTHY), then
    # fall failures, then rise successes at least
    assert len(results) >= 1 + spec.fall + spec.rise
    assert {r.ok for r in results} == {True, False}
    assert all(r.target == "web" and r.latency_s >= 0 for r in results)
    assert [c.new for c in changes] == [
        HealthState.HEALTHY,
        HealthState.UNHEALTHY,
        HealthState.HEALTHY,
    ]
    assert "target web is now unhealthy" in caplog.text


async def test_listen_errors_are_typed(no_leaks: None, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proxy = ReverseProxy(
            ProxyConfig(listen=TcpListen(port)),
            Balancer([TcpTarget("127.0.0.1", 9)]),
            StreamConnector(None),
        )
        with pytest.raises(ProxyListenError, match=f"127.0.0.1:{port}"):
            await proxy.run()
    regular = tmp_path / "not-a-socket"
    regular.write_text("x")
    proxy = ReverseProxy(
        ProxyConfig(listen=UnixListen(str(regular))),
        Balancer([TcpTarget("127.0.0.1", 9)]),
        StreamConnector(None),
    )
    with pytest.raises(ProxyListenError, match="is not a socket"):
        await proxy.run()
    # A stale socket file from an earlier run (nobody listens) is replaced.
    stale = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(stale))
    srv = await start_server(echo_until_eof)
    async with (
        srv.server,
        running_proxy([TcpTarget("127.0.0.1", srv.port)], listen=UnixListen(str(stale))) as (
            _,
            addr,
        ),
    ):
        r, w = await connect(addr)
        w.write(b"z")
        w.write_eof()
        assert await asyncio.wait_for(r.read(), 5) == b"1\nz"
        await close(w)


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_https_probe(no_leaks: None, tmp_path: Path) -> None:
    import ssl

    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    handler = _http_server(200, b"secure")

    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    target = TcpTarget("localhost", port)
    conn, clock = StreamConnector(None), SystemClock()
    try:
        # Default verification: a self-signed certificate is a failed probe, with the reason.
        strict = await probe_target(target, ProbeSpec(tls=True), conn, clock=clock)
        assert not strict.ok
        assert "CERTIFICATE_VERIFY_FAILED" in strict.reason
        # Trusting it explicitly (the operator's CA file): healthy.
        trusting = ssl.create_default_context(cafile=str(cert))
        ok = await probe_target(
            target,
            ProbeSpec(tls=True, body_regex="secure"),
            conn,
            clock=clock,
            ssl_context=trusting,
        )
        assert ok.ok, ok.reason
        # tls_verify=False (typical for onion targets): the prober builds a non-verifying context.
        prober = TargetProber(
            [target],
            ProbeSpec(tls=True, tls_verify=False),
            conn,
            clock=clock,
            token_bytes=bytes,
        )
        change = await prober.probe_once(target)
        assert change is not None and change.new is HealthState.HEALTHY
    finally:
        server.close()
        await server.wait_closed()
