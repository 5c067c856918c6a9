"""Two full ``onionfleet run`` daemons with ``[cluster] transport = "tor"`` on the private Tor
network (LocalCluster's configs, switched to the Tor transport): each starts its peer tor with the
peer onion key made beforehand, they find each other through the onion addresses only and agree
on one publisher."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from onionfleet.cluster.tor_transport import ensure_peer_onion_key, peer_tor_settings
from onionfleet.testnet import TestNetwork
from onionfleet.testnet.cluster import LocalCluster

pytestmark = pytest.mark.testnet


def _switch_to_tor(config: Path, peers: list[str]) -> None:
    text = config.read_text()
    text, n = re.subn(r"^peers = .*$", f"peers = {json.dumps(peers)}\ntransport = \"tor\"", text,
                      flags=re.M)
    assert n == 1
    config.write_text(text)


def test_daemons_over_the_tor_transport(testnet: TestNetwork, tmp_path: Path) -> None:
    started = time.monotonic()
    cluster = LocalCluster(testnet, tmp_path / "c", nodes=2, prefix="dtor",
                           names=["tor-a", "tor-b"])
    try:
        cluster.start(initial_nodes=0, wait_serving=False)
        address = {}
        for node in cluster.nodes:
            text = node.config_path.read_text()
            listen = re.search(r'^listen = "127\.0\.0\.1:(\d+)"$', text.split("[cluster]")[1],
                               flags=re.M)
            data_line = re.search(r"^data_dir = (.*)$", text, flags=re.M)
            assert listen is not None and data_line is not None
            port = int(listen.group(1))
            data_dir = Path(json.loads(data_line.group(1)))
            settings = peer_tor_settings(data_dir, listen_port=port, socks_port=1)
            address[node.name] = f"{ensure_peer_onion_key(settings, os.urandom)}:{port}"
        _switch_to_tor(cluster.nodes[0].config_path, [])
        _switch_to_tor(cluster.nodes[1].config_path, [address["tor-a"]])
        for node in cluster.nodes:
            node.start()

        def agreed() -> bool:
            docs = cluster.statuses()
            if any(d is None or d.get("cluster") is None for d in docs.values()):
                return False
            for name, doc in docs.items():
                assert doc is not None
                members = {m["node_id"]: m for m in doc["cluster"]["members"]}
                other = "tor-b" if name == "tor-a" else "tor-a"
                if members.get(other, {}).get("state") != "alive":
                    return False
            return cluster.publisher() is not None

        took = cluster.wait_for(agreed, timeout_s=170, what="both daemons alive to each other "
                                "over the Tor transport with one publisher")
        print(f"\ntwo daemons over the Tor transport: publisher {cluster.publisher()} "
              f"after {took:.1f} s")
        for name, doc in cluster.statuses().items():
            assert doc is not None
            for member in doc["cluster"]["members"]:
                if member["state"] != "self":
                    # status redacts onion addresses to their last 3 characters
                    expected = "???" + address[member["node_id"]][53:]
                    assert member["address"] == expected, (name, member)
    except BaseException:
        for node in cluster.nodes:
            print(f"--- {node.name}\n{node.log_tail(40)}")
        raise
    finally:
        cluster.close()
    assert time.monotonic() - started < 240
