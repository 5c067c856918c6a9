"""TorController against a real tor (offline, DisableNetwork 1) and against a fake control server.

The fake server (127.0.0.1, asyncio) is used only where real tor cannot misbehave on demand: a
wrong SAFECOOKIE server hash. Testnet-dependent controller tests (HSPOST/HSFETCH/consensus) live in
test_controller_testnet.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from _tor_helpers import OfflineTor, free_port, offline_tor_fixture

from onionfleet.testnet import TestNetwork, TorInstance
from onionfleet.tor.auth import safecookie_client_hash, safecookie_server_hash
from onionfleet.tor.consensus import ConsensusView
from onionfleet.tor.consensus_watch import ConsensusWatcher
from onionfleet.tor.controller import (
    ControlAuth,
    ControlEndpoint,
    ControllerSettings,
    EventSubscription,
    TorController,
    open_controller,
)
from onionfleet.tor.errors import (
    ControlAuthError,
    ControlConnectionLost,
    ControlTimeout,
    LocalProtocolError,
    TorCommandError,
)
from onionfleet.tor.events import (
    ControllerReconnected,
    HsDescContentEvent,
    HsDescEvent,
    UnknownEvent,
)


@pytest.fixture
def offline_tor(tmp_path: Path) -> Iterator[OfflineTor]:
    yield from offline_tor_fixture(tmp_path)


def _tcp(tor: OfflineTor, **kw: float) -> ControllerSettings:
    return ControllerSettings(ControlEndpoint.tcp(tor.control_port), **kw)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- real tor


@pytest.mark.testnet
async def test_safecookie_over_tcp_and_unix(offline_tor: OfflineTor) -> None:
    for endpoint in (
        ControlEndpoint.tcp(offline_tor.control_port),
        ControlEndpoint.unix(offline_tor.control_socket),
    ):
        async with open_controller(ControllerSettings(endpoint)) as ctl:
            assert ctl.auth_method is not None and ctl.auth_method.value == "SAFECOOKIE"
            assert ctl.protocol_info is not None
            assert ctl.protocol_info.tor_version is not None
            info = await ctl.get_info("version", "config-text")
            assert info["version"] == ctl.protocol_info.tor_version
            assert "DisableNetwork 1" in info["config-text"].splitlines()


@pytest.mark.testnet
async def test_cookie_and_password_auth(offline_tor: OfflineTor) -> None:
    # HASHEDPASSWORD, enabled at run time; plain COOKIE is tested against the fake server below
    # (real tor always offers SAFECOOKIE next to COOKIE, and we prefer SAFECOOKIE).
    hashed = await asyncio.to_thread(offline_tor.hash_password, "s3cret pass")
    async with open_controller(_tcp(offline_tor)) as ctl:
        await ctl.set_conf({"HashedControlPassword": hashed})
    settings = ControllerSettings(
        ControlEndpoint.tcp(offline_tor.control_port), ControlAuth(password="s3cret pass")
    )
    async with open_controller(settings) as ctl:
        assert ctl.auth_method is not None and ctl.auth_method.value == "HASHEDPASSWORD"
        assert (await ctl.get_info("version"))["version"]
    bad = ControllerSettings(
        ControlEndpoint.tcp(offline_tor.control_port), ControlAuth(password="wrong")
    )
    with pytest.raises(ControlAuthError) as info:
        async with open_controller(bad):
            pass
    assert "wrong" not in str(info.value)


@pytest.mark.testnet
async def test_conf_signal_events_and_errors(offline_tor: OfflineTor) -> None:
    async with open_controller(_tcp(offline_tor)) as ctl:
        conf = await ctl.get_conf("SocksPort", "Nickname", "DisableNetwork")
        assert conf["SocksPort"] == ["0"]
        assert conf["DisableNetwork"] == ["1"]
        async with ctl.subscribe("CONF_CHANGED") as sub:
            await ctl.set_conf({"Nickname": "onionfleetTest", "ContactInfo": 'a "quoted" b'})
            event = await sub.get(5)
            assert isinstance(event, UnknownEvent) and event.keyword == "CONF_CHANGED"
            assert "Nickname=onionfleetTest" in [line.text for line in event.lines]
        conf = await ctl.get_conf("Nickname", "ContactInfo")
        assert conf == {"Nickname": ["onionfleetTest"], "ContactInfo": ['a "quoted" b']}
        await ctl.reset_conf("Nickname")
        assert (await ctl.get_conf("Nickname"))["Nickname"] != ["onionfleetTest"]
        await ctl.signal("heartbeat")
        with pytest.raises(TorCommandError) as err:
            await ctl.signal("NOT_A_SIGNAL")
        assert err.value.code == 552 and err.value.command == "SIGNAL"
        with pytest.raises(TorCommandError) as err:
            await ctl.set_conf({"NoSuchOption": "1"})
        assert err.value.code == 552
        with pytest.raises(LocalProtocolError):
            await ctl.command("HSPOST", "SERVER=$" + "A" * 40, data="hs-descriptor 3\n")
        status = await ctl.bootstrap_status()
        assert 0 <= status.progress <= 100
        # Pipelining: many concurrent commands, replies matched in order.
        keys = ["version", "config-file", "process/pid", "net/listeners/control"] * 25
        results = await asyncio.gather(*(ctl.get_info(k) for k in keys))
        assert [next(iter(r)) for r in results] == keys
        assert (await ctl.get_info("process/pid"))["process/pid"] == str(offline_tor.proc.pid)


@pytest.mark.testnet
async def test_kill9_fails_pending_command_then_reconnects(offline_tor: OfflineTor) -> None:
    """Pending command + SIGKILL: typed error within the timeout; reconnect; events resume.

    The tor is SIGSTOPped first so the command is certainly pending when the SIGKILL lands.
    """
    settings = ControllerSettings(
        ControlEndpoint.unix(offline_tor.control_socket),
        command_timeout_s=5.0,
        reconnect_initial_s=0.05,
        reconnect_max_s=0.5,
    )
    async with open_controller(settings) as ctl, ctl.subscribe("CONF_CHANGED") as sub:
        os.kill(offline_tor.proc.pid, signal.SIGSTOP)
        pending = asyncio.create_task(ctl.get_info("version"))
        await asyncio.sleep(0.2)
        assert not pending.done()
        started = time.monotonic()
        os.kill(offline_tor.proc.pid, signal.SIGKILL)
        offline_tor.proc.wait()
        with pytest.raises(ControlConnectionLost, match="GETINFO"):
            await pending
        assert time.monotonic() - started < settings.command_timeout_s
        # While tor is down, a new command waits for the reconnection and times out by name.
        with pytest.raises(ControlTimeout, match="GETINFO"):
            await ctl.get_info("version", timeout_s=0.3)
        await asyncio.to_thread(offline_tor.start)  # same data dir and socket
        event = await sub.get(20)
        assert isinstance(event, ControllerReconnected) and event.generation == 2
        await ctl.set_conf({"Nickname": "afterRestart"})
        event = await sub.get(5)
        assert isinstance(event, UnknownEvent) and event.keyword == "CONF_CHANGED"
        assert (await ctl.get_info("process/pid"))["process/pid"] == str(offline_tor.proc.pid)


@pytest.mark.testnet
async def test_run_task_shape_with_taskgroup(offline_tor: OfflineTor) -> None:
    controller = TorController(_tcp(offline_tor))
    async with asyncio.TaskGroup() as tg:
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task = tg.create_task(controller.run(ready))
        async with asyncio.timeout(10):
            await ready
        assert controller.connected and controller.generation == 1
        assert (await controller.get_info("version"))["version"]
        controller.close()
        await task
    assert not controller.connected


# ----------------------------------------------------------------------------- fake server

COOKIE = bytes(range(32))


class FakeControlPort:
    """Speaks just enough of the control protocol for the SAFECOOKIE / COOKIE handshake."""

    def __init__(self, cookie_path: Path, *, methods: str, wrong_server_hash: bool) -> None:
        self.cookie_path = cookie_path
        self.methods = methods
        self.wrong_server_hash = wrong_server_hash
        self.received: list[str] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> FakeControlPort:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client_nonce = b""
        server_nonce = hashlib.sha256(b"server nonce").digest()
        try:
            while line := await reader.readline():
                text = line.decode().rstrip("\r\n")
                self.received.append(text)
                keyword, _, rest = text.partition(" ")
                if keyword == "PROTOCOLINFO":
                    writer.write(
                        f"250-PROTOCOLINFO 1\r\n250-AUTH METHODS={self.methods} "
                        f'COOKIEFILE="{self.cookie_path}"\r\n250-VERSION Tor="0.4.9.11"\r\n'
                        "250 OK\r\n".encode()
                    )
                elif keyword == "AUTHCHALLENGE":
                    client_nonce = bytes.fromhex(rest.split()[1])
                    server_hash = safecookie_server_hash(COOKIE, client_nonce, server_nonce)
                    if self.wrong_server_hash:
                        server_hash = bytes([server_hash[0] ^ 0x80]) + server_hash[1:]
                    writer.write(
                        f"250 AUTHCHALLENGE SERVERHASH={server_hash.hex().upper()} "
                        f"SERVERNONCE={server_nonce.hex().upper()}\r\n".encode()
                    )
                elif keyword == "AUTHENTICATE":
                    expected = (
                        safecookie_client_hash(COOKIE, client_nonce, server_nonce)
                        if client_nonce
                        else COOKIE
                    )
                    ok = rest.lower() == expected.hex()
                    writer.write(b"250 OK\r\n" if ok else b"515 Authentication failed\r\n")
                elif keyword == "GETINFO":
                    writer.write(b"250-version=fake\r\n250 OK\r\n")
                else:
                    writer.write(b"510 Unrecognized command\r\n")
                await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def cookie_file(tmp_path: Path) -> AsyncIterator[Path]:
    path = tmp_path / "control_auth_cookie"
    path.write_bytes(COOKIE)
    yield path


async def test_safecookie_rejects_wrong_server_hash(cookie_file: Path) -> None:
    async with FakeControlPort(
        cookie_file, methods="COOKIE,SAFECOOKIE", wrong_server_hash=True
    ) as fake:
        settings = ControllerSettings(ControlEndpoint.tcp(fake.port))
        with pytest.raises(ControlAuthError, match="SERVERHASH is wrong") as info:
            async with open_controller(settings, ready_timeout_s=10):
                pass
        assert COOKIE.hex() not in str(info.value)
        # We never sent AUTHENTICATE to a port that could not prove it knows the cookie.
        assert not any(line.startswith("AUTHENTICATE") for line in fake.received)


async def test_safecookie_and_cookie_succeed_against_honest_fake(cookie_file: Path) -> None:
    for methods in ("COOKIE,SAFECOOKIE", "COOKIE"):
        async with FakeControlPort(cookie_file, methods=methods, wrong_server_hash=False) as fake:
            settings = ControllerSettings(ControlEndpoint.tcp(fake.port))
            async with open_controller(settings, ready_timeout_s=10) as ctl:
                assert (await ctl.get_info("version")) == {"version": "fake"}
                assert ctl.auth_method is not None
                assert ctl.auth_method.value == methods.split(",")[-1]


async def test_connect_timeout_when_nothing_listens() -> None:
    settings = ControllerSettings(ControlEndpoint.tcp(free_port()), reconnect_initial_s=0.05)
    with pytest.raises(ControlTimeout, match="CONNECT"):
        async with open_controller(settings, ready_timeout_s=0.5):
            pass


# ----------------------------------------------------------------------------- private network


@pytest.fixture(scope="module")
def tor_net(testnet: TestNetwork) -> TestNetwork:
    """The shared session network (tests/integration/conftest.py)."""
    return testnet


def _settings_for(inst: TorInstance) -> ControllerSettings:
    return ControllerSettings(
        ControlEndpoint.tcp(inst.control_port), ControlAuth(cookie_path=inst.cookie_path)
    )


def _unique(prefix: str) -> str:
    return f"{prefix}{os.getpid() % 10000}{int(time.monotonic() * 1000) % 100000}"


async def _collect_hs_desc(
    sub: EventSubscription, action: str, count: int, timeout_s: float
) -> list[HsDescEvent]:
    found: list[HsDescEvent] = []
    async with asyncio.timeout(timeout_s):
        while len(found) < count:
            event = await sub.get()
            if isinstance(event, HsDescEvent) and event.action == action:
                found.append(event)
    return found


@pytest.mark.testnet
async def test_consensus_view_lists_every_relay_with_ed25519(tor_net: TestNetwork) -> None:
    client = tor_net.add_client(_unique("cvc"))
    async with open_controller(_settings_for(client)) as ctl:
        view = await ctl.consensus_view()
    names = {r.nickname for r in view.relays}
    assert names == set(tor_net.relay_names)
    assert all(r.is_hsdir for r in view.relays)  # TestingDirAuthVoteHSDir *
    assert view.relays_missing_ed25519() == []  # none lost to the md/all newline pitfall
    assert len(view.hsdirs()) == len(tor_net.relay_names)
    assert view.voting_interval_s == tor_net.voting_interval_s
    assert view.valid_after < view.fresh_until < view.valid_until


@pytest.mark.testnet
async def test_hsfetch_delivers_hs_desc_and_content(tor_net: TestNetwork) -> None:
    service = tor_net.add_onion_service(_unique("fsv"), target_port=free_port())
    client = tor_net.add_client(_unique("fcl"))
    assert service.onion_address is not None
    address = service.onion_address.removesuffix(".onion")
    async with (
        open_controller(_settings_for(client)) as ctl,
        ctl.subscribe("HS_DESC", "HS_DESC_CONTENT") as sub,
    ):
        view = await ctl.consensus_view()
        async with asyncio.timeout(60):
            content: HsDescContentEvent | None = None
            received: HsDescEvent | None = None
            while content is None or not content.descriptor:
                await ctl.hs_fetch(service.onion_address)
                content = None
                while content is None:
                    event = await sub.get()
                    if isinstance(event, HsDescEvent) and event.action == "RECEIVED":
                        received = event
                    if isinstance(event, HsDescContentEvent):
                        content = event
                if not content.descriptor:
                    await asyncio.sleep(2)  # HSDirs may not have it yet (testnet.md pitfall 4)
        assert received is not None and received.address == address
        assert received.hsdir is not None and view.relay(received.hsdir.fingerprint_hex)
        assert content.address == address
        assert content.descriptor.startswith("hs-descriptor 3\n")
        assert "\nsignature " in content.descriptor
        # SERVER= restricts the fetch to one HSDir.
        fp = received.hsdir.fingerprint_hex
        await ctl.hs_fetch(address, servers=[fp])
        async with asyncio.timeout(30):
            while True:
                event = await sub.get()
                if isinstance(event, HsDescEvent) and event.action == "REQUESTED":
                    assert event.hsdir is not None and event.hsdir.fingerprint_hex == fp
                    break


@pytest.mark.testnet
async def test_hspost_gets_per_hsdir_uploaded_events(tor_net: TestNetwork) -> None:
    """A never-published descriptor (PublishHidServDescriptors 0) HSPOSTed through a client's
    controller to every HSDir of our ConsensusView, with HSADDRESS=: one UPLOADED per HSDir."""
    service = tor_net.add_onion_service(
        _unique("psv"),
        target_port=free_port(),
        extra_torrc=["PublishHidServDescriptors 0"],
        wait=False,
    )
    service.wait_bootstrapped(60)
    client = tor_net.add_client(_unique("pcl"))
    assert service.onion_address is not None
    address = service.onion_address.removesuffix(".onion")
    key = f"hs/service/desc/id/{address}"
    async with open_controller(_settings_for(service)) as svc_ctl:
        async with asyncio.timeout(90):
            while True:
                try:
                    descriptor = (await svc_ctl.get_info(key))[key]
                    break
                except TorCommandError:
                    await asyncio.sleep(1)  # not built yet (intro points pending)
    assert descriptor.startswith("hs-descriptor 3\n")
    async with open_controller(_settings_for(client)) as ctl, ctl.subscribe("HS_DESC") as sub:
        view = await ctl.consensus_view()
        servers = [fp for fp, _ in view.hsdirs()]
        assert len(servers) == len(tor_net.relay_names)
        await ctl.hs_post(descriptor, servers=servers, hs_address=service.onion_address)
        uploaded = await _collect_hs_desc(sub, "UPLOADED", len(servers), timeout_s=60)
    assert {e.hsdir.fingerprint_hex for e in uploaded if e.hsdir} == set(servers)
    assert all(e.address == address for e in uploaded)


@pytest.mark.testnet
@pytest.mark.late  # a fresh network needs two SRV runs (48 voting intervals) for both SRVs
async def test_consensus_watcher_sees_both_srvs(tor_net: TestNetwork) -> None:
    """Refreshes on STATUS_CLIENT CONSENSUS_ARRIVED until the consensus carries the current and
    the previous SRV (a private network needs 2 SRV runs = 2 x 24 voting intervals for that)."""
    client = tor_net.add_client(_unique("wcl"))
    updates: list[ConsensusView] = []
    async with open_controller(_settings_for(client)) as ctl:
        watcher = ConsensusWatcher(ctl, on_update=updates.append)
        async with asyncio.TaskGroup() as tg:
            ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            task = tg.create_task(watcher.run(ready))
            async with asyncio.timeout(30):
                await ready
            first = watcher.current
            assert first is not None
            # A newer consensus arrives every voting interval and triggers a refresh.
            await watcher.wait_for(lambda v: v.valid_after > first.valid_after, timeout_s=60)
            limit_s = 60 * tor_net.voting_interval_s
            view = await watcher.wait_for(
                lambda v: v.srv_current is not None and v.srv_previous is not None,
                timeout_s=limit_s,
            )
            task.cancel()
    assert view.srv_current is not None and len(view.srv_current.value) == 32
    assert view.srv_previous is not None and len(view.srv_previous.value) == 32
    assert len(updates) >= 2
