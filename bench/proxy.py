"""Benchmark: onionfleet's reverse proxy vs socat, relaying the same loopback traffic in one run.

Measures, for the proxy and for ``socat TCP-LISTEN:p,fork,reuseaddr TCP:127.0.0.1:target``
(socat's default 8 KiB buffer is the baseline; ``socat -b 262144`` is shown too, for throughput):

* throughput: one stream pushing ``--mib`` MiB to a discard target (best of ``--reps``);
* connection rate: ``--conns`` short request/response streams, ``--concurrency`` at a time;

and for the proxy alone, the RSS of the proxy process holding ``--idle`` idle relayed streams
(each stream = a client socket + a target socket in the proxy). The proxy, the targets and socat
run in child processes; the client runs here. Everything is on 127.0.0.1. Ratios print last.

Usage: .venv/bin/python bench/proxy.py [--mib 1024] [--reps 3] [--conns 3000] [--idle 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

HOST = "127.0.0.1"


# ------------------------------------------------------------------------------- child modes


def _raise_nofile() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def child_proxy(listen_port: int, target_port: int) -> None:
    """Run onionfleet's ReverseProxy (the process whose RSS is measured)."""
    from onionfleet.node.balancer import Balancer
    from onionfleet.node.connect import StreamConnector
    from onionfleet.node.proxy import ProxyConfig, ReverseProxy, TcpListen
    from onionfleet.node.targets import TcpTarget

    _raise_nofile()
    # Keep the bench output readable: per-stream warnings (e.g. resets while 10k idle streams
    # are torn down at once) are not what is measured here.
    logging.basicConfig(level=logging.ERROR)
    config = ProxyConfig(
        listen=TcpListen(listen_port), max_connections=20_000, backlog=4096, idle_timeout_s=600
    )
    proxy = ReverseProxy(config, Balancer([TcpTarget(HOST, target_port)]), StreamConnector(None))

    async def main() -> None:
        ready: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(proxy.run(ready))  # type: ignore[arg-type]
        await ready
        print("ready", flush=True)
        await task

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


def child_target(port: int) -> None:
    """Targets: ``discard`` (reads to EOF, answers ``OK``) and request/response (``ping``→``pong``)
    on one port: the first byte says which. Also holds idle connections."""
    _raise_nofile()

    class Target(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.t = transport
            self.n = 0
            self.mode = b""

        def data_received(self, data: bytes) -> None:
            if not self.mode:
                self.mode = data[:1]
            self.n += len(data)
            if self.mode == b"p" and data.endswith(b"\n"):
                self.t.write(b"pong\n")  # type: ignore[attr-defined]
                self.t.close()

        def eof_received(self) -> bool:
            self.t.write(b"OK %d\n" % self.n)  # type: ignore[attr-defined]
            self.t.close()
            return True

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Target, HOST, port, backlog=4096)
        print("ready", flush=True)
        await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


# ------------------------------------------------------------------------------ orchestration


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {HOST}:{port}")


@contextlib.contextmanager
def child(args: list[str], *, ready_line: bool) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        if ready_line:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"child {args} did not start: {line!r}")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_throughput(port: int, total: int) -> float:
    """Push ``total`` bytes through the relay to the discard target; return bytes/s."""
    chunk = memoryview(b"d" * (1 << 20))
    with socket.create_connection((HOST, port)) as s:
        start = time.perf_counter()
        sent = 0
        while sent < total:
            s.sendall(chunk)
            sent += len(chunk)
        s.shutdown(socket.SHUT_WR)
        answer = b""
        while not answer.endswith(b"\n"):
            part = s.recv(100)
            if not part:
                break
            answer += part
        elapsed = time.perf_counter() - start
    if answer.strip() != b"OK %d" % total:
        raise RuntimeError(f"relay lost data: target answered {answer!r}")
    return total / elapsed


def run_conn_rate(port: int, count: int, concurrency: int) -> float:
    """``count`` ping/pong streams, ``concurrency`` threads at once; return streams/s."""
    failures = 0
    lock = threading.Lock()

    def one(_: int) -> None:
        nonlocal failures
        try:
            with socket.create_connection((HOST, port), timeout=10) as s:
                s.sendall(b"ping\n")
                data = b""
                while not data.endswith(b"\n"):
                    part = s.recv(100)
                    if not part:
                        break
                    data += part
                if data != b"pong\n":
                    raise RuntimeError(data)
        except (OSError, RuntimeError):
            with lock:
                failures += 1

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(count)))
    elapsed = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"{failures} of {count} streams failed")
    return count / elapsed


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def idle_rss(proxy_pid: int, port: int, count: int) -> tuple[float, float, int]:
    """Open ``count`` idle streams through the proxy; return (RSS before, RSS after, streams)."""
    before = rss_mib(proxy_pid)
    socks: list[socket.socket] = []
    try:
        for i in range(count):
            socks.append(socket.create_connection((HOST, port), timeout=10))
            if i % 500 == 499:
                time.sleep(0.05)  # let the proxy accept and connect the batch
        deadline = time.monotonic() + 30
        while fd_count(proxy_pid) < 2 * count and time.monotonic() < deadline:
            time.sleep(0.1)
        established = (fd_count(proxy_pid) - 8) // 2
        time.sleep(0.5)
        after = rss_mib(proxy_pid)
    finally:
        for s in socks:
            s.close()
    return before, after, established


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024, help="MiB per throughput run")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--conns", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--idle", type=int, default=10_000)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, *ports = args.child
        if mode == "proxy":
            child_proxy(int(ports[0]), int(ports[1]))
        else:
            child_target(int(ports[0]))
        return 0

    if shutil.which("socat") is None:
        print("socat is not installed; it is the baseline", file=sys.stderr)
        return 2
    hard = _raise_nofile()
    t0 = time.monotonic()
    me = [sys.executable, os.path.abspath(__file__), "--child"]
    target_port, proxy_port = free_port(), free_port()
    socat_port, socat_big_port = free_port(), free_port()
    total = args.mib * 1024 * 1024
    results: dict[str, dict[str, float]] = {"proxy": {}, "socat": {}, "socat-b256k": {}}
    with contextlib.ExitStack() as stack:
        stack.enter_context(child([*me, "target", str(target_port)], ready_line=True))
        proxy = stack.enter_context(
            child([*me, "proxy", str(proxy_port), str(target_port)], ready_line=True)
        )
        stack.enter_context(
            child(
                [
                    "socat",
                    f"TCP-LISTEN:{socat_port},fork,reuseaddr,bind={HOST},backlog=4096",
                    f"TCP:{HOST}:{target_port}",
                ],
                ready_line=False,
            )
        )
        wait_port(socat_port)
        for _name, port in (("socat", socat_port), ("proxy", proxy_port)):
            run_throughput(port, 64 * 1024 * 1024)  # warm-up
        socat_big = stack.enter_context(
            child(
                [
                    "socat",
                    "-b",
                    "262144",
                    f"TCP-LISTEN:{socat_big_port},fork,reuseaddr,bind={HOST},backlog=4096",
                    f"TCP:{HOST}:{target_port}",
                ],
                ready_line=False,
            )
        )
        del socat_big
        wait_port(socat_big_port)
        relays = (("socat", socat_port), ("socat-b256k", socat_big_port), ("proxy", proxy_port))
        for _ in range(args.reps):  # interleaved so all see the same machine state
            for name, port in relays:
                bps = run_throughput(port, total)
                results[name]["throughput"] = max(results[name].get("throughput", 0.0), bps)
        for name, port in (("socat", socat_port), ("proxy", proxy_port)):
            results[name]["conn_rate"] = run_conn_rate(port, args.conns, args.concurrency)
        # Each relayed stream costs the proxy two descriptors; the hard RLIMIT_NOFILE caps it.
        idle = min(args.idle, (hard - 64) // 2)
        rss_before, rss_after, established = idle_rss(proxy.pid, proxy_port, idle)

    per_stream_kib = (rss_after - rss_before) * 1024 / max(1, established)
    rss_10k = rss_before + per_stream_kib * 10_000 / 1024
    print(f"throughput ({args.mib} MiB, best of {args.reps}):")
    for name in ("socat", "socat-b256k", "proxy"):
        print(f"  {name:12s} {results[name]['throughput'] / 1e6:9.1f} MB/s")
    print(f"connection rate ({args.conns} ping/pong streams, {args.concurrency} concurrent):")
    for name in ("socat", "proxy"):
        print(f"  {name:12s} {results[name]['conn_rate']:9.0f} streams/s")
    print(
        f"proxy RSS: {rss_before:.1f} MiB at start, {rss_after:.1f} MiB with "
        f"{established} idle relayed streams ({2 * established} sockets), "
        f"{per_stream_kib:.1f} KiB per stream"
    )
    if established < 10_000:
        cap = f"hard RLIMIT_NOFILE={hard} caps one process near {(hard - 64) // 2} streams; "
        print(
            f"  ({cap if idle < args.idle else ''}"
            f"linear estimate at 10k streams: {rss_10k:.1f} MiB)"
        )
    print(f"bench time: {time.monotonic() - t0:.1f} s")
    thr_ratio = results["proxy"]["throughput"] / results["socat"]["throughput"]
    rate_ratio = results["proxy"]["conn_rate"] / results["socat"]["conn_rate"]
    rss_at_10k = rss_after if established >= 10_000 else rss_10k
    print("ratios (proxy / socat; targets: throughput >= 0.8, RSS at 10k < 300 MB):")
    big_ratio = results["proxy"]["throughput"] / results["socat-b256k"]["throughput"]
    print(f"  throughput      {thr_ratio:.2f}x  {'OK' if thr_ratio >= 0.8 else 'BELOW TARGET'}")
    print(f"  throughput vs socat -b 262144  {big_ratio:.2f}x")
    print(f"  connection rate {rate_ratio:.2f}x")
    print(
        f"  RSS at 10k      {rss_at_10k * 1.048576:.0f} MB  "
        f"{'OK' if rss_at_10k * 1.048576 < 300 else 'ABOVE TARGET'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
