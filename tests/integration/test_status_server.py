"""The status endpoint over real sockets (a unix socket and a loopback port; no tor needed),
and ``onionfleet status``/``drain`` against it, in-process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from onionfleet.cli import main
from onionfleet.clock import ManualClock
from onionfleet.config import Endpoint
from onionfleet.observability.errors import (
    StatusListenError,
    StatusRequestError,
    StatusUnreachableError,
)
from onionfleet.observability.metrics import Metrics
from onionfleet.observability.status import NodeStatus, StatusDocument, TorStatus
from onionfleet.observability.status_client import StatusClient, endpoint_from_url
from onionfleet.observability.status_server import ServerLimits, StatusServer, metrics_server

DOC = StatusDocument(
    generated_at_wall=1_800_000_000.0,
    node=NodeStatus(
        node_id="node-a",
        version="0.1.0",
        role="publisher",
        mode="multi",
        term=3,
        serving=True,
        verdict_reason="serving: ok",
        draining=False,
        started_at_wall=1_799_999_000.0,
        tor=TorStatus(100, "Done", True),
    ),
)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # unix socket paths are limited to ~107 bytes: pytest's tmp_path can be too long
    path = Path(tempfile.mkdtemp(prefix="ofst-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


class Daemon:
    """A status server with a provider, a registry and a drain callback, in this event loop."""

    def __init__(self, listen: Endpoint, limits: ServerLimits | None = None) -> None:
        self.registry = CollectorRegistry()
        self.metrics = Metrics(self.registry, clock=ManualClock(), node_id="node-a")
        self.drains = 0
        self.drain_result: dict[str, Any] = {"drained": True, "message": "0 streams left"}
        self.drain_delay_s = 0.0
        self.fail_status = False
        self.server = StatusServer(
            listen,
            status=self.status,
            registry=self.registry,
            drain=self.drain,
            limits=limits,
        )

    def status(self) -> Mapping[str, Any]:
        if self.fail_status:
            raise RuntimeError("provider bug")
        return DOC.to_dict()

    async def drain(self) -> Mapping[str, Any]:
        self.drains += 1
        await asyncio.sleep(self.drain_delay_s)
        return self.drain_result


@contextlib.asynccontextmanager
async def running(
    listen: Endpoint, limits: ServerLimits | None = None
) -> AsyncIterator[tuple[Daemon, Endpoint]]:
    daemon = Daemon(listen, limits)
    ready: asyncio.Future[Endpoint] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(daemon.server.run(ready))
    try:
        async with asyncio.timeout(5):
            address = await ready
        yield daemon, address
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def raw(address: Endpoint, data: bytes, *, timeout_s: float = 5.0) -> bytes:
    """Send raw bytes, read until the server closes."""
    async with asyncio.timeout(timeout_s):
        if address.unix_path is not None:
            reader, writer = await asyncio.open_unix_connection(str(address.unix_path))
        else:
            reader, writer = await asyncio.open_connection(address.host, address.port)
        try:
            writer.write(data)
            await writer.drain()
            return await reader.read()
        finally:
            writer.close()


def parse(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    assert int(headers["content-length"]) == len(body)
    return status, headers, body


async def get(
    address: Endpoint, path: str, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    return parse(await raw(address, f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()))


@pytest.fixture(params=["unix", "tcp"])
def listen(request: pytest.FixtureRequest, short_dir: Path) -> Endpoint:
    if request.param == "unix":
        return Endpoint(unix_path=short_dir / "status.sock")
    return Endpoint(host="127.0.0.1", port=0)


async def test_status_metrics_drain(listen: Endpoint) -> None:
    async with running(listen) as (daemon, address):
        status, headers, body = await get(address, "/status")
        assert status == 200
        assert headers["content-type"] == "application/json"
        assert headers["connection"] == "close"
        assert StatusDocument.from_dict(json.loads(body)) == DOC

        daemon.metrics.set_election(is_publisher=True, term=3, publisher_known=True)
        status, headers, body = await get(address, "/metrics?x=1")
        assert status == 200
        assert headers["content-type"].startswith("text/plain")
        assert b"onionfleet_term 3.0" in body
        assert b'onionfleet_info{node="node-a"' in body

        status, _, body = await get(address, "/drain", "POST")
        assert status == 200
        assert json.loads(body) == daemon.drain_result
        assert daemon.drains == 1
    if listen.unix_path is not None:
        assert not listen.unix_path.exists()  # removed on shutdown
    else:
        assert address.port != 0


async def test_unix_socket_mode_and_stale_socket(short_dir: Path) -> None:
    path = short_dir / "status.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # a socket file nobody listens on: left over from a crashed daemon
    async with running(Endpoint(unix_path=path)) as (_, address):
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert mode == 0o600
        assert (await get(address, "/status"))[0] == 200
        # a second daemon on the same socket is refused, the first keeps serving
        second = StatusServer(Endpoint(unix_path=path), status=dict)
        with pytest.raises(StatusListenError, match="another process already serves"):
            await second.run()
        assert (await get(address, "/status"))[0] == 200
    regular = short_dir / "not-a-socket"
    regular.write_text("x")
    with pytest.raises(StatusListenError, match="not a socket"):
        await StatusServer(Endpoint(unix_path=regular), status=dict).run()


async def test_unix_mode_0660(short_dir: Path) -> None:
    path = short_dir / "s.sock"
    server = StatusServer(Endpoint(unix_path=path), status=dict, unix_mode=0o660)
    ready: asyncio.Future[Endpoint] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(server.run(ready))
    await ready
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    with pytest.raises(ValueError):
        StatusServer(Endpoint(unix_path=path), status=dict, unix_mode=0o666)


@pytest.mark.parametrize("host", ["10.0.0.1", "0.0.0.0", "::", "192.168.1.5", "example.com"])
def test_non_loopback_is_refused(host: str) -> None:
    with pytest.raises(StatusListenError, match="not a loopback address"):
        StatusServer(Endpoint(host=host, port=9936), status=dict)
    with pytest.raises(StatusListenError, match="not a loopback address"):
        metrics_server(Endpoint(host=host, port=9935), CollectorRegistry())


async def test_errors(listen: Endpoint) -> None:
    limits = ServerLimits(max_head_bytes=1024, max_body_bytes=64)
    async with running(listen, limits) as (daemon, address):
        status, _, body = await get(address, "/nope")
        assert status == 404
        assert "GET /status" in json.loads(body)["error"]
        status, headers, body = await get(address, "/status", "POST")
        assert (status, headers["allow"]) == (405, "GET")
        assert json.loads(body)["status"] == 405
        status, headers, _ = await get(address, "/drain", "GET")
        assert (status, headers["allow"]) == (405, "POST")
        assert daemon.drains == 0

        big_head = b"GET /status HTTP/1.1\r\nX-Fill: " + b"a" * 4096 + b"\r\n\r\n"
        assert parse(await raw(address, big_head))[0] == 431
        big_body = b"POST /drain HTTP/1.1\r\nContent-Length: 65\r\n\r\n" + b"x" * 65
        assert parse(await raw(address, big_body))[0] == 413
        assert daemon.drains == 0
        assert parse(await raw(address, b"HELLO\r\n\r\n"))[0] == 400
        assert parse(await raw(address, b"GET /status HTTP/1.1\r\nbad header\r\n\r\n"))[0] == 400
        chunked = b"POST /drain HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        assert parse(await raw(address, chunked))[0] == 501
        assert parse(await raw(address, b"GET /st\xffus HTTP/1.1\r\n\r\n"))[0] == 400

        daemon.fail_status = True
        status, _, body = await get(address, "/status")
        assert status == 500 and "RuntimeError" in json.loads(body)["error"]
        daemon.fail_status = False
        assert (await get(address, "/status"))[0] == 200  # still serving


async def test_slow_and_silent_clients_time_out(listen: Endpoint) -> None:
    limits = ServerLimits(read_timeout_s=0.3, max_clients=4)
    async with running(listen, limits) as (_, address):
        if address.unix_path is not None:
            reader, writer = await asyncio.open_unix_connection(str(address.unix_path))
        else:
            reader, writer = await asyncio.open_connection(address.host, address.port)
        writer.write(b"GET /sta")  # ... and never more
        await writer.drain()
        started = time.monotonic()
        async with asyncio.timeout(3):
            answer = await reader.read()
        elapsed = time.monotonic() - started
        writer.close()
        assert parse(answer)[0] == 408
        assert 0.2 < elapsed < 2.0
        # a body that never fully arrives is cut off as well, and nothing is drained
        answer = await raw(address, b"POST /drain HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
        assert parse(answer)[0] == 408


async def test_concurrent_clients_and_a_slow_one(listen: Endpoint) -> None:
    limits = ServerLimits(read_timeout_s=2.0, max_clients=8)
    async with running(listen, limits) as (daemon, address):
        if address.unix_path is not None:
            _, slow_writer = await asyncio.open_unix_connection(str(address.unix_path))
        else:
            _, slow_writer = await asyncio.open_connection(address.host, address.port)
        slow_writer.write(b"GET /status HTTP/1.1\r\n")  # holds one slot
        results = await asyncio.gather(*(get(address, "/status") for _ in range(30)))
        assert [r[0] for r in results] == [200] * 30
        slow_writer.close()
        assert daemon.server.requests_served >= 30


async def test_drain_timeout_and_serialised_drains(listen: Endpoint) -> None:
    limits = ServerLimits(drain_timeout_s=0.2)
    async with running(listen, limits) as (daemon, address):
        daemon.drain_delay_s = 1.0
        status, _, body = await get(address, "/drain", "POST")
        assert status == 504 and "0.2 s" in json.loads(body)["error"]
        daemon.drain_delay_s = 0.05
        results = await asyncio.gather(*(get(address, "/drain", "POST") for _ in range(3)))
        assert [r[0] for r in results] == [200, 200, 200]


async def test_metrics_only_listener() -> None:
    registry = CollectorRegistry()
    Metrics(registry, clock=ManualClock(), node_id="node-m")
    server = metrics_server(Endpoint(host="127.0.0.1", port=0), registry)
    ready: asyncio.Future[Endpoint] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(server.run(ready))
    try:
        address = await ready
        status, _, body = await get(address, "/metrics")
        assert status == 200 and b'node="node-m"' in body
        assert (await get(address, "/status"))[0] == 404
        assert (await get(address, "/drain", "POST"))[0] == 404
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_port_in_use_is_a_listen_error() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        port = holder.getsockname()[1]
        with pytest.raises(StatusListenError, match="cannot listen"):
            await StatusServer(Endpoint(host="127.0.0.1", port=port), status=dict).run()
    finally:
        holder.close()


# -- the client and the CLI ----------------------------------------------------------------------


async def test_client(listen: Endpoint) -> None:
    async with running(listen) as (daemon, address):
        client = StatusClient(address, timeout_s=5)
        assert await asyncio.to_thread(client.get_status) == DOC.to_dict()
        assert "onionfleet_info" in await asyncio.to_thread(client.get_metrics)
        assert await asyncio.to_thread(client.drain) == daemon.drain_result
        bad = StatusClient(address, timeout_s=5)
        daemon.fail_status = True
        with pytest.raises(StatusRequestError, match="HTTP 500"):
            await asyncio.to_thread(bad.get_status)


async def test_cli_status_and_drain(
    listen: Endpoint, capsys: pytest.CaptureFixture[str], short_dir: Path
) -> None:
    async with running(listen) as (daemon, address):
        if address.unix_path is not None:
            where = ["--socket", str(address.unix_path)]
            config = short_dir / "node.toml"
            config.write_text(f'[status]\nlisten = "unix:{address.unix_path}"\n')
        else:
            where = ["--url", f"http://127.0.0.1:{address.port}"]
            config = short_dir / "node.toml"
            config.write_text(f'[status]\nlisten = "127.0.0.1:{address.port}"\n')
        capsys.readouterr()

        assert await asyncio.to_thread(main, ["status", *where]) == 0
        out = capsys.readouterr().out
        assert "node node-a (onionfleet 0.1.0): publisher, mode multi, term 3" in out
        assert "tor: bootstrap 100% (Done)" in out

        assert await asyncio.to_thread(main, ["status", "--config", str(config), "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == DOC.to_dict()

        assert await asyncio.to_thread(main, ["drain", *where]) == 0
        assert capsys.readouterr().out.startswith("drained: 0 streams left")
        daemon.drain_result = {"drained": False, "message": "3 streams still open", "left": 3}
        assert await asyncio.to_thread(main, ["drain", *where, "--json"]) == 1
        assert json.loads(capsys.readouterr().out)["left"] == 3
        assert daemon.drains == 2


async def test_cli_unreachable_daemon(short_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    cases = [
        ["status", "--socket", str(short_dir / "missing.sock")],
        ["status", "--url", f"http://127.0.0.1:{port}"],
        ["drain", "--socket", str(short_dir / "missing.sock")],
        ["status", "--url", "http://10.1.2.3:9936"],
        ["status", "--config", str(short_dir / "missing.toml")],
    ]
    for argv in cases:
        capsys.readouterr()
        assert await asyncio.to_thread(main, argv) == 2, argv
        captured = capsys.readouterr()
        assert captured.out == ""
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1, captured.err
        assert lines[0].startswith("onionfleet: error: ")
        assert "Traceback" not in captured.err
    capsys.readouterr()
    await asyncio.to_thread(main, ["status", "--socket", str(short_dir / "missing.sock")])
    assert "is the daemon running" in capsys.readouterr().err


def test_client_refuses_non_loopback_urls() -> None:
    assert endpoint_from_url("http://127.0.0.1:9936") == Endpoint(host="127.0.0.1", port=9936)
    assert endpoint_from_url("http://[::1]:9936") == Endpoint(host="::1", port=9936)
    for url in ["http://10.0.0.1:1", "https://127.0.0.1:1", "http://127.0.0.1", "ftp://x"]:
        with pytest.raises(StatusRequestError):
            endpoint_from_url(url)
    with pytest.raises(StatusUnreachableError):
        StatusClient(Endpoint(unix_path=Path("/nonexistent/s.sock"))).get_status()
