"""A cluster-only node process for the multi-process tests (not a daemon: no tor, no publisher).

Runs ``ClusterNode`` + ``TcpTransport`` (+ ``WireGuardSync`` when the config has ``wireguard``)
with the JSON config named on the command line::

    {"node_id": "n1", "listen_host": "127.0.0.1", "listen_port": 7001, "seeds": ["127.0.0.1:7002"],
     "token": "<cluster token text>", "priority": 100, "heartbeat_interval_s": 0.3,
     "dead_after": 3, "lease_grace_s": 0.3,
     "wireguard": {"interface": "ofwg0", "address": "10.77.0.1/24",
                   "endpoint": "10.203.0.1:51820", "private_key_file": "/path/wg.key"}}

Status channel: one JSON line on stdout per change of what the node believes, checked at 20 Hz:
``{"node", "mono", "role", "term", "holder", "peers": {id: [status, address]},
"wg": {id: handshake age or null}, "wg_rx_tx": {id: [rx, tx]}}``; the first line is
``{"node", "ready": true, "port": N}``. SIGTERM leaves the cluster cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

from onionfleet.clock import SystemClock
from onionfleet.cluster.auth import ClusterToken
from onionfleet.cluster.messages import WireGuardIdentity
from onionfleet.cluster.node import ClusterNode
from onionfleet.cluster.settings import ClusterSettings
from onionfleet.cluster.transport import TcpTransport
from onionfleet.cluster.wgsync import WireGuardSync, own_wireguard_identity


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


async def main(cfg: dict[str, Any]) -> None:
    clock = SystemClock()
    own_wg: WireGuardIdentity | None = None
    wg_cfg = cfg.get("wireguard")
    if wg_cfg is not None:  # what the daemon does for [wireguard] manage = true
        own_wg = own_wireguard_identity(
            Path(wg_cfg["private_key_file"]), wg_cfg["address"], wg_cfg.get("endpoint")
        )
    address = cfg.get("advertise") or f"{cfg['listen_host']}:{cfg['listen_port']}"
    settings = ClusterSettings(
        node_id=cfg["node_id"],
        address=address,
        priority=cfg.get("priority", 100),
        heartbeat_interval_s=cfg.get("heartbeat_interval_s", 0.3),
        dead_after=cfg.get("dead_after", 3),
        lease_grace_s=cfg.get("lease_grace_s", 0.3),
        forget_after_s=cfg.get("forget_after_s", 60.0),
        seeds=tuple(cfg.get("seeds", ())),
        wireguard=own_wg,
    )
    node = ClusterNode(
        settings,
        ClusterToken.from_text(cfg["token"]).derive_mac_key(),
        clock,
        boot_id=os.urandom(16),
    )
    sync: WireGuardSync | None = None
    transport = TcpTransport(
        node, clock, listen_host=cfg["listen_host"], listen_port=cfg["listen_port"],
        rng=random.Random(), on_event=lambda _a: sync.nudge() if sync is not None else None,
        backoff_max_s=1.0,
    )
    if own_wg is not None and wg_cfg is not None:
        sync = WireGuardSync(
            interface=wg_cfg["interface"], own=own_wg, tunnel_network=wg_cfg["address"],
            peers=node.peers, clock=clock, interval_s=0.5,
        )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with asyncio.TaskGroup() as tg:
        if sync is not None:
            wg_ready: asyncio.Future[None] = loop.create_future()
            tg.create_task(sync.run(wg_ready))
            await asyncio.wait_for(wg_ready, 10)
        ready: asyncio.Future[None] = loop.create_future()
        tg.create_task(transport.run(ready))
        await asyncio.wait_for(ready, 10)
        _emit({"node": node.node_id, "ready": True, "port": transport.bound_port})
        last: dict[str, Any] = {}
        while not stop.is_set():
            state: dict[str, Any] = {
                "node": node.node_id,
                "role": node.role.name.lower(),
                "term": node.term.number,
                "holder": node.term.holder,
                "peers": {p.node_id: [p.status.value, p.address] for p in node.peers()},
            }
            if sync is not None:
                state["wg"] = {k: v is not None for k, v in sync.handshake_ages().items()}
                state["wg_rx_tx"] = {k: [rx > 0, tx > 0] for k, (rx, tx) in
                                     sync.transfer().items()}
            if state != last:
                last = state
                _emit({**state, "mono": time.monotonic()})
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.05):
                    await stop.wait()
        await transport.leave("stopping")
        raise _Stopped  # cancels every task in the group


class _Stopped(Exception):
    pass


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s {sys.argv[1]} %(name)s %(message)s")
    try:
        asyncio.run(main(json.loads(Path(sys.argv[1]).read_text())))
    except* _Stopped:
        pass
