"""ManagedTor: a real tor child — offline (restart after kill -9) and joined to the testnet."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path

import pytest
from _tor_helpers import free_port, require_tor

from onionfleet.hs.keys import master_key_from_seed, save_secret_key_file
from onionfleet.testnet import TestNetwork
from onionfleet.tor.controller import ControllerSettings, TorController
from onionfleet.tor.errors import ControlConnectionLost, ManagedTorError
from onionfleet.tor.events import BootstrapStatus, ControllerReconnected, HsDescEvent, UnknownEvent
from onionfleet.tor.process import (
    HiddenServicePort,
    ManagedTor,
    ManagedTorSettings,
    wait_for_bootstrap,
)

pytestmark = pytest.mark.testnet


@pytest.fixture(scope="module")
def tor_net(testnet: TestNetwork) -> TestNetwork:
    """The shared session network (tests/integration/conftest.py)."""
    return testnet


async def _start(
    tg: asyncio.TaskGroup, managed: ManagedTor, settings: ControllerSettings
) -> TorController:
    loop = asyncio.get_running_loop()
    tor_ready: asyncio.Future[None] = loop.create_future()
    tg.create_task(managed.run(tor_ready))
    async with asyncio.timeout(30):
        await tor_ready
    controller = TorController(settings)
    ctl_ready: asyncio.Future[None] = loop.create_future()
    tg.create_task(controller.run(ctl_ready))
    async with asyncio.timeout(30):
        await ctl_ready
    return controller


async def _kill9_during_pending_command(
    managed: ManagedTor, controller: TorController, timeout_s: float
) -> None:
    """SIGSTOP (so the command is surely pending), send GETINFO, SIGKILL: typed error in time."""
    pid = managed.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    pending = asyncio.create_task(controller.get_info("version", timeout_s=timeout_s))
    await asyncio.sleep(0.2)
    assert not pending.done()
    started = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(ControlConnectionLost, match="GETINFO"):
        await pending
    assert time.monotonic() - started < timeout_s


async def test_offline_managed_tor_restarts_after_kill9(tmp_path: Path) -> None:
    tor = require_tor()
    settings = ManagedTorSettings(
        data_dir=tmp_path / "tor",
        tor_binary=tor,
        extra_lines=("DisableNetwork 1",),
        restart_initial_s=0.2,
        restart_max_s=1.0,
    )
    managed = ManagedTor(settings)
    ctl_settings = ControllerSettings(
        settings.controller_settings().endpoint,
        command_timeout_s=5.0,
        reconnect_initial_s=0.05,
        reconnect_max_s=0.5,
    )
    async with asyncio.TaskGroup() as tg:
        controller = await _start(tg, managed, ctl_settings)
        first_pid = managed.pid
        assert (await controller.get_info("process/pid"))["process/pid"] == str(first_pid)
        # a setting changed while tor runs applies to the restarted tor (the torrc is rewritten)
        flipped = not settings.publish_descriptors
        managed.set_publish_descriptors(flipped)
        async with controller.subscribe("CONF_CHANGED") as sub:
            await _kill9_during_pending_command(managed, controller, ctl_settings.command_timeout_s)
            event = await sub.get(30)
            assert isinstance(event, ControllerReconnected) and event.generation == 2
            assert managed.starts == 2 and managed.pid != first_pid
            conf = await controller.get_conf("PublishHidServDescriptors")
            assert conf["PublishHidServDescriptors"] == ["1" if flipped else "0"]
            assert (await controller.get_info("process/pid"))["process/pid"] == str(managed.pid)
            await controller.set_conf({"Nickname": "afterKill"})
            event = await sub.get(5)
            assert isinstance(event, UnknownEvent) and event.keyword == "CONF_CHANGED"
        last_pid = managed.pid
        assert last_pid is not None
        await managed.stop()
        controller.close()
    assert managed.pid == last_pid
    with pytest.raises(ProcessLookupError):
        os.kill(last_pid, 0)


async def test_first_start_failure_is_raised(tmp_path: Path) -> None:
    require_tor()
    settings = ManagedTorSettings(
        data_dir=tmp_path / "tor", extra_lines=("NoSuchTorOption 1",), start_timeout_s=20
    )
    with pytest.raises(ManagedTorError, match="exited with status"):
        await ManagedTor(settings).run(asyncio.get_running_loop().create_future())


async def test_managed_tor_joins_testnet_with_onionbalance_instance(
    tor_net: TestNetwork, tmp_path: Path
) -> None:
    tor = require_tor()
    data_dir = tmp_path / "node"
    hs_dir = data_dir / "hs"
    hs_dir.mkdir(parents=True, mode=0o700)
    master = master_key_from_seed(bytes(range(32)))
    save_secret_key_file(hs_dir / "hs_ed25519_secret_key", master)
    address = str(master.public_key().address())
    settings = ManagedTorSettings(
        data_dir=data_dir,
        tor_binary=tor,
        socks_port=free_port(),
        hidden_service_dir=hs_dir,
        hidden_service_ports=(HiddenServicePort(80, f"127.0.0.1:{free_port()}"),),
        master_onion_address=address,
        publish_descriptors=False,
        extra_lines=(*tor_net.network_torrc_lines(), "Nickname managednode"),
        restart_initial_s=0.2,
    )
    managed = ManagedTor(settings)
    ctl_settings = ControllerSettings(
        settings.controller_settings().endpoint,
        command_timeout_s=5.0,
        reconnect_initial_s=0.05,
        reconnect_max_s=0.5,
    )
    progress: list[BootstrapStatus] = []
    async with asyncio.TaskGroup() as tg:
        controller = await _start(tg, managed, ctl_settings)
        done = await wait_for_bootstrap(controller, timeout_s=90, on_progress=progress.append)
        assert done.progress == 100 and done.done
        assert progress[-1] == done
        assert [p.progress for p in progress] == sorted(p.progress for p in progress)

        assert (hs_dir / "ob_config").read_text() == f"MasterOnionAddress {address}\n"
        assert (hs_dir / "hostname").read_text().strip() == address
        conf = await controller.get_conf(
            "PublishHidServDescriptors", "HiddenServiceOnionBalanceInstance"
        )
        assert conf["PublishHidServDescriptors"] == ["0"]
        log_text = settings.log_path.read_text()
        assert re.search(r"OnionBalance: MasterOnionAddress \S+ registered", log_text), log_text[
            -2000:
        ]

        # kill -9 on the private network: pending command fails, tor restarts, the controller
        # reconnects, tor bootstraps again and subscribed HS_DESC events flow again.
        async with controller.subscribe("HS_DESC") as sub:
            await _kill9_during_pending_command(managed, controller, ctl_settings.command_timeout_s)
            async with asyncio.timeout(60):
                event = await sub.get()
                while not isinstance(event, ControllerReconnected):
                    event = await sub.get()
            assert managed.starts == 2
            await wait_for_bootstrap(controller, timeout_s=90)
            async with asyncio.timeout(90):
                while True:
                    event = await sub.get()
                    if isinstance(event, HsDescEvent) and event.action == "CREATED":
                        assert event.address == address.removesuffix(".onion")
                        break
        await managed.stop()
        controller.close()
