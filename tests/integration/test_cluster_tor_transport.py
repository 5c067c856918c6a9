"""The Tor transport on the private Tor network: three nodes, each with its own peer tor
(``peer_tor_settings``: a peer onion service with its own key + a SOCKS port), ClusterNode +
TcpTransport dialing ``<peer onion>:<port>`` through SOCKS. They join through one seed, elect
one publisher and exchange their intro-point sets."""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path

import pytest
from _tor_helpers import free_port

from onionfleet.clock import SystemClock
from onionfleet.cluster.actions import Action
from onionfleet.cluster.auth import ClusterToken
from onionfleet.cluster.membership import PeerStatus
from onionfleet.cluster.messages import IntroPointSet
from onionfleet.cluster.node import ClusterNode
from onionfleet.cluster.settings import ClusterSettings
from onionfleet.cluster.tor_transport import (
    ensure_peer_onion_key,
    peer_tor_settings,
    socks_dialer,
)
from onionfleet.cluster.transport import TcpTransport
from onionfleet.testnet import TestNetwork
from onionfleet.tor.process import ManagedTor

pytestmark = pytest.mark.testnet

KEY = ClusterToken(b"tor transport test token 32 byte").derive_mac_key()
NAMES = ("tt1", "tt2", "tt3")
INTERVAL_S = 1.0


async def test_three_nodes_over_onion_services(testnet: TestNetwork, tmp_path: Path) -> None:
    started = time.monotonic()
    clock = SystemClock()
    tors: dict[str, ManagedTor] = {}
    events: dict[str, list[Action]] = {n: [] for n in NAMES}
    try:
        async with asyncio.timeout(110), asyncio.TaskGroup() as tg:
            listen = {n: free_port() for n in NAMES}
            settings_of = {}
            onion = {}
            for n in NAMES:
                settings = peer_tor_settings(
                    tmp_path / n, listen_port=listen[n], socks_port=free_port(),
                    extra_lines=(*testnet.network_torrc_lines(), f"Nickname {n}peer"),
                )
                settings_of[n] = settings
                onion[n] = ensure_peer_onion_key(settings, os.urandom)
                tors[n] = ManagedTor(settings)
                ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                tg.create_task(tors[n].run(ready))
                await asyncio.wait_for(ready, 30)
            address = {n: f"{onion[n]}:{listen[n]}" for n in NAMES}
            for n in NAMES:  # tor serves the key we made (it writes hostname from it)
                hs_dir = settings_of[n].hidden_service_dir
                assert hs_dir is not None
                hostname = hs_dir / "hostname"
                while not hostname.exists():  # noqa: ASYNC110 - tor writes it at start-up
                    await asyncio.sleep(0.05)
                assert hostname.read_text().strip() == onion[n]
            print(f"\npeer addresses: {address} (+{time.monotonic() - started:.1f} s)")

            nodes: dict[str, ClusterNode] = {}
            transports: dict[str, TcpTransport] = {}
            for i, n in enumerate(NAMES):
                cs = ClusterSettings(
                    node_id=n, address=address[n], priority=10 + i,
                    heartbeat_interval_s=INTERVAL_S, dead_after=5, lease_grace_s=INTERVAL_S,
                    seeds=() if n == "tt1" else (address["tt1"],),
                )
                nodes[n] = ClusterNode(cs, KEY, clock, boot_id=os.urandom(16))
                transports[n] = TcpTransport(
                    nodes[n], clock, listen_host="127.0.0.1", listen_port=listen[n],
                    rng=random.Random(i), on_event=events[n].append,
                    dial=socks_dialer(settings_of[n].socks_port or 0),
                    connect_timeout_s=30.0, backoff_initial_s=1.0, backoff_max_s=4.0,
                )
                ready = asyncio.get_running_loop().create_future()
                tg.create_task(transports[n].run(ready))
                await asyncio.wait_for(ready, 10)
                transports[n].submit(nodes[n].set_intro_points(
                    IntroPointSet((f"introduction-point {n}".encode(),), None)
                ))

            def converged() -> bool:
                if any(len(node.intro_point_sets()) != 3 for node in nodes.values()):
                    return False
                if any(p.status is not PeerStatus.ALIVE for node in nodes.values()
                       for p in node.peers()):
                    return False
                pubs = [n for n, node in nodes.items() if node.is_publisher]
                return len(pubs) == 1 and all(node.term == nodes[pubs[0]].term
                                              for node in nodes.values())

            while not converged():  # noqa: ASYNC110 - polling four nodes' state at 5 Hz
                await asyncio.sleep(0.2)
            took = time.monotonic() - started
            pub = next(n for n, node in nodes.items() if node.is_publisher)
            print(f"mesh over tor: publisher {pub}, every node holds 3 intro-point sets "
                  f"after {took:.1f} s")
            for n, node in nodes.items():
                assert {p.address for p in node.peers()} == {address[m] for m in NAMES if m != n}
                assert node.rejects.as_dict() == {} or sum(node.rejects.as_dict().values()) == 0
            for t in transports.values():
                await t.leave()
            raise _Done
    except* _Done:
        pass
    finally:
        for tor in tors.values():
            await tor.stop()
    assert time.monotonic() - started < 120


class _Done(Exception):
    pass
