"""The private Tor network harness against real tor (issue 2, part 3).

Uses the session ``testnet`` (conftest.py) where it can; the SIGKILL and CLI tests start their
own small networks in subprocesses.
"""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from onionfleet.testnet import (
    StaticHttpServer,
    TestnetError,
    TestNetwork,
    TorInstance,
    http_get_via_socks,
    http_get_with_retry,
)

pytestmark = [pytest.mark.testnet, pytest.mark.timeout(300)]

LAUNCH_TO_FETCH_BUDGET_S = 90.0


def _fetch(client: TorInstance, service: TorInstance, timeout_s: float = 60.0) -> tuple[int, bytes]:
    assert client.socks_port is not None and service.onion_address is not None
    return http_get_with_retry(
        client.socks_port, f"http://{service.onion_address}/", timeout_s=timeout_s
    )


# ------------------------------------------------------------------------------ onion fetch


def test_onion_service_fetched_through_socks(
    testnet: TestNetwork,
    http_server: Callable[..., StaticHttpServer],
) -> None:
    """Service + fresh client launched together on the ready network, then one fetch.

    launch -> first fetch = the network's own start-up + (service and client start -> fetch),
    i.e. what a standalone run (``onionfleet testnet up --demo``) does in sequence.
    """
    server = http_server(b"hello through the private network\n")
    t0 = time.monotonic()
    service = testnet.add_onion_service("ttweb", target_port=server.port, wait=False)
    client = testnet.add_client("ttclient", wait=False)
    client.wait_bootstrapped(timeout_s=60)
    service.wait_ready(timeout_s=60)
    address = service.onion_address
    assert address is not None and re.fullmatch(r"[a-z2-7]{56}\.onion", address)
    assert service.hs_dir is not None and (service.hs_dir / "hs_ed25519_secret_key").exists()

    status, body = _fetch(client, service)
    to_fetch_s = time.monotonic() - t0

    assert (status, body) == (200, b"hello through the private network\n")
    assert server.hits == 1
    assert testnet.start_duration_s is not None
    total_s = testnet.start_duration_s + to_fetch_s
    print(
        f"\nlaunch -> first onion fetch: {total_s:.1f} s (network ready "
        f"{testnet.start_duration_s:.1f} s + service/client launch -> fetch {to_fetch_s:.1f} s)"
    )
    assert total_s < LAUNCH_TO_FETCH_BUDGET_S

    # A second fetch on a fresh circuit (IsolateSOCKSAuth) works straight away.
    assert client.socks_port is not None
    status2, _ = http_get_via_socks(
        client.socks_port, f"http://{address}/", isolation="second", timeout_s=30
    )
    assert status2 == 200
    assert server.hits == 2


def test_given_key_dir_gives_the_same_address(
    testnet: TestNetwork, http_server: Callable[..., StaticHttpServer]
) -> None:
    server = http_server(b"k")
    first = testnet.add_onion_service("ttkeya", target_port=server.port, wait=False)
    deadline = time.monotonic() + 30
    while first.onion_address is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert first.onion_address is not None and first.hs_dir is not None
    second = testnet.add_onion_service(
        "ttkeyb", target_port=server.port, key_dir=first.hs_dir, wait=False
    )
    try:
        assert second.hs_dir is not None
        assert (second.hs_dir / "hs_ed25519_secret_key").stat().st_mode & 0o777 == 0o600
        assert second.hs_dir.stat().st_mode & 0o777 == 0o700
        deadline = time.monotonic() + 30
        while second.onion_address is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert second.onion_address == first.onion_address
    finally:
        first.stop()
        second.stop()


def test_a_failing_tor_raises_with_its_log(testnet: TestNetwork) -> None:
    with pytest.raises(TestnetError, match="exited with code") as info:
        testnet.add_tor("ttbroken", extra_torrc=["NoSuchTorOption 1"])
    assert "NoSuchTorOption" in str(info.value)  # the quoted log says what tor disliked
    assert not testnet.instances["ttbroken"].is_running()


def test_network_torrc_lines(testnet: TestNetwork) -> None:
    lines = testnet.network_torrc_lines()
    assert "TestingTorNetwork 1" in lines
    assert sum(line.startswith("DirAuthority ") for line in lines) == 3
    assert "ClientUseIPv6 0" in lines


# ------------------------------------------------------------------------------ kill -9 / restart


def test_kill9_and_restart(
    testnet: TestNetwork,
    http_server: Callable[..., StaticHttpServer],
) -> None:
    """kill -9 the service and the client, restart both: the service is fetchable again.

    The client is restarted too (tor keeps no onion descriptor cache on disk): a client that
    still caches the dead service's descriptor can hang on its old intro points for 30 s+.
    """
    server = http_server(b"still here\n")
    service = testnet.add_onion_service("ttrestart", target_port=server.port)
    client = testnet.add_client("ttrclient")
    assert _fetch(client, service)[0] == 200
    address = service.onion_address
    old_pids = (service.pid, client.pid)
    assert None not in old_pids

    for inst in (service, client):
        inst.kill()
        assert not inst.is_running()
        assert inst.pid is None
    assert not any(Path(f"/proc/{pid}").exists() for pid in old_pids)

    t0 = time.monotonic()
    client.restart(wait=False)
    service.restart(wait=True)
    client.wait_bootstrapped(timeout_s=60)
    assert service.pid not in (None, *old_pids) and client.pid not in (None, *old_pids)
    assert service.onion_address == address  # same key, same address
    status, body = _fetch(client, service, timeout_s=90)
    print(f"\nkill -9 -> restarted service fetched again in {time.monotonic() - t0:.1f} s")
    assert (status, body) == (200, b"still here\n")
    client.stop()
    service.stop()
    assert not client.is_running() and not service.is_running()


# ------------------------------------------------------------------------------ loopback only

_TABLES = ("tcp", "tcp6", "udp", "udp6")


def _decode_addr(hex_addr: str) -> str:
    """/proc/net/tcp{,6} address (host byte order words) -> textual IP."""
    ip_hex, _, _port = hex_addr.partition(":")
    raw = bytes.fromhex(ip_hex)
    # Each 32-bit word is stored in host (little-endian) order.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    if len(words) == 4:
        return ".".join(str(b) for b in words)
    return str(ipaddress.IPv6Address(words))


def _is_loopback_or_unspecified(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback or addr.is_unspecified


def _socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _inet_sockets(pid: int) -> list[tuple[str, str, str]]:
    """(table, local ip, remote ip) for every AF_INET/AF_INET6 socket ``pid`` holds."""
    inodes = _socket_inodes(pid)
    found: list[tuple[str, str, str]] = []
    for table in _TABLES:
        lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[9] in inodes:
                found.append((table, _decode_addr(fields[1]), _decode_addr(fields[2])))
    return found


def test_decode_proc_net_addresses() -> None:
    assert _decode_addr("0100007F:1F90") == "127.0.0.1"
    assert _decode_addr("00000000:0000") == "0.0.0.0"
    assert _decode_addr("00000000000000000000000001000000:0050") == "::1"
    assert not _is_loopback_or_unspecified("10.0.0.1")
    assert _is_loopback_or_unspecified("::ffff:127.0.0.1")


def test_every_tor_socket_is_loopback_only(
    testnet: TestNetwork, testnet_client: TorInstance
) -> None:
    checked = 0
    for inst in testnet.instances.values():
        pid = inst.pid
        if pid is None:
            continue
        sockets = _inet_sockets(pid)
        assert sockets, f"tor {inst.name} (pid {pid}) holds no inet socket at all?"
        for table, local, remote in sockets:
            # Bound to 0.0.0.0/:: would listen on every interface: loopback only.
            assert ipaddress.ip_address(local).is_loopback, f"{inst.name}: {table} on {local}"
            assert _is_loopback_or_unspecified(remote), f"{inst.name}: {table} peer {remote}"
            checked += 1
    assert checked >= 8 * 3  # every router has OR, Dir and control listeners at least
    print(f"\n{checked} inet sockets of {len(testnet.instances)} tors: all on loopback")


# ------------------------------------------------------------------------------ SIGKILL of owner

_OWNER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from onionfleet.testnet import TestNetwork

    net = TestNetwork(Path(sys.argv[1]), relays=1, progress=lambda m: None)
    net.start(timeout_s=90)
    net.add_client("client", wait=False)
    print("READY", flush=True)
    time.sleep(600)
    """
)


def _tors_under(root: Path) -> list[int]:
    """PIDs of live tor processes whose working directory or arguments lie under ``root``."""
    pids = []
    root_s = str(root)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if not argv or Path(argv[0].decode()).name != "tor":
                continue
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if state == "Z":
                continue
            cwd = os.readlink(proc / "cwd")
        except (OSError, IndexError):
            continue
        if cwd.startswith(root_s) or any(
            a.decode(errors="replace").startswith(root_s) for a in argv
        ):
            pids.append(int(proc.name))
    return pids


def test_sigkill_of_owner_leaves_no_tor_behind(tmp_path: Path) -> None:
    root = tmp_path / "net"
    owner = subprocess.Popen(
        [sys.executable, "-c", _OWNER_SCRIPT, str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert owner.stdout is not None
        line = ""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = owner.stdout.readline()
            if not line or line.strip() == "READY":
                break
        assert line.strip() == "READY", f"owner did not come up: {line!r}"
        deadline = time.monotonic() + 10
        tors = _tors_under(root)
        while len(tors) < 5 and time.monotonic() < deadline:  # the client is starting
            time.sleep(0.2)
            tors = _tors_under(root)
        assert len(tors) == 5, f"expected 3 authorities + 1 relay + 1 client, found {tors}"

        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=10)
        t0 = time.monotonic()
        survivors = _tors_under(root)
        while survivors and time.monotonic() - t0 < 10:
            time.sleep(0.1)
            survivors = _tors_under(root)
        print(f"\nall 5 tors gone {time.monotonic() - t0:.2f} s after SIGKILL of their owner")
        assert not survivors, f"tors survived their owner's SIGKILL: {survivors}"
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        for pid in _tors_under(root):  # never leave anything behind, even on failure
            os.kill(pid, signal.SIGKILL)


# ------------------------------------------------------------------------------ CLI


def test_cli_testnet_up_demo_exits_zero() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "onionfleet", "testnet", "up", "--demo", "--exit-after-demo"],
        check=False,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    output = proc.stdout + "\n--- stderr ---\n" + proc.stderr[-4000:]
    assert proc.returncode == 0, output
    assert "demo HTTP status:    200" in proc.stdout, output
    assert "Hello from onionfleet" in proc.stdout, output
    match = re.search(r"launch to first onion fetch: ([\d.]+) s", proc.stdout)
    assert match is not None, output
    assert re.search(r"client SOCKS port:\s+127\.0\.0\.1:\d+", proc.stdout), output
    assert re.search(r"control cookie:\s+/\S+control_auth_cookie", proc.stdout), output
    print(f"\nonionfleet testnet up --demo: launch -> first onion fetch {match.group(1)} s")
    assert float(match.group(1)) < LAUNCH_TO_FETCH_BUDGET_S
    # The temporary directory was removed.
    data_dir = re.search(r"network directory:\s+(\S+)", proc.stdout)
    assert data_dir is not None and not Path(data_dir.group(1)).exists()


def test_cli_testnet_up_stops_cleanly_on_ctrl_c() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "onionfleet", "testnet", "up", "--relays", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "press Ctrl-C" in line:
                break
        output = "".join(lines)
        assert "press Ctrl-C" in output, output
        root_match = re.search(r"network directory:\s+(\S+)", output)
        assert root_match is not None, output
        root = Path(root_match.group(1))
        assert len(_tors_under(root)) == 5  # 3 authorities, 1 relay, the client

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert not _tors_under(root)
        assert not root.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
