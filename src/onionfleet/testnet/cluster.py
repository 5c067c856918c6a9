"""A local onionfleet cluster on the private Tor network: target, nodes, client.

Used by the end-to-end tests, the benchmarks and ``onionfleet demo``. Every node is a real
``onionfleet run --config …`` process (so ``kill -9`` means what it says), with its own managed
tor joining the private network; the target is an onion service in front of a tiny web page; a
client tor fetches through the master address.

Which node served a request: requests are made one at a time and the node whose reverse proxy
accepted a new stream (``proxy.accepted_total`` in its ``/status``) is the one that answered. The
health probes go to the target directly, never through a node's proxy, so they do not count.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onionfleet.config import Endpoint
from onionfleet.hs.keys import generate_master_key, save_public_key_file, save_secret_key_file
from onionfleet.observability.errors import ObservabilityError
from onionfleet.observability.status_client import StatusClient
from onionfleet.testnet._http import StaticHttpServer
from onionfleet.testnet._ports import probe_free_port as free_port
from onionfleet.testnet._process import Spawner, kill_process, stop_process
from onionfleet.testnet._socks import http_get_via_socks
from onionfleet.testnet.errors import TestnetError
from onionfleet.testnet.network import TestNetwork, TorInstance

__all__ = ["ClusterFetch", "LocalCluster", "LocalNode"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClusterFetch:
    """One request through the master address: its outcome and which node served it."""

    ok: bool
    status: int | None
    node: str | None
    seconds: float
    error: str | None = None


class LocalNode:
    """One node process of a :class:`LocalCluster`."""

    def __init__(self, cluster: LocalCluster, name: str, index: int, config_path: Path) -> None:
        self.cluster = cluster
        self.name = name
        self.index = index
        self.config_path = config_path
        self.data_dir = config_path.parent
        self.log_path = self.data_dir / "node.log"
        self.status_socket = self.data_dir / "status.sock"
        self.process: Any = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return None if self.process is None else int(self.process.pid)

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        if self.is_running():
            return
        self.starts += 1
        with self.log_path.open("ab") as f:
            f.write(f"--- start #{self.starts} at {time.time():.3f}\n".encode())
        argv = [sys.executable, "-m", "onionfleet", "run", "--config", str(self.config_path)]
        self.process = self.cluster._spawner.spawn(argv, cwd=self.data_dir, output=self.log_path)

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM (orderly: leave the cluster, drain), then SIGKILL after ``timeout_s``."""
        if self.process is not None:
            stop_process(self.process, timeout_s=timeout_s, label=f"node {self.name}")

    def kill(self) -> None:
        """kill -9: no goodbye to the peers; its tor dies with it (PDEATHSIG)."""
        if self.process is not None:
            kill_process(self.process)

    def status(self, timeout_s: float = 5.0) -> dict[str, Any] | None:
        """The node's ``/status`` document, or None if it does not answer."""
        if not self.is_running() or not self.status_socket.exists():
            return None
        try:
            return StatusClient(
                Endpoint(unix_path=self.status_socket), timeout_s=timeout_s
            ).get_status()
        except ObservabilityError:
            return None

    def drain(self, timeout_s: float = 300.0) -> dict[str, Any]:
        client = StatusClient(Endpoint(unix_path=self.status_socket), timeout_s=timeout_s)
        return client.drain(timeout_s=timeout_s)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class LocalCluster:
    """``nodes`` onionfleet nodes behind one master address on ``net``.

    ``start()`` makes a master key and cluster token, starts the target (an onion service in
    front of a page saying ``page``), writes one config per node and starts every node process.
    ``prefix`` names this cluster's tors on the network (``<prefix>target``, ``<prefix>client``),
    so several clusters can share one network.
    """

    def __init__(
        self,
        net: TestNetwork,
        root: Path,
        *,
        nodes: int = 3,
        page: bytes = b"Hello from onionfleet\n",
        heartbeat_interval_s: float = 1.0,
        dead_after: int = 3,
        lease_grace_s: float = 1.0,
        single_node_grace_s: float = 10.0,
        health_interval_s: float = 2.0,
        extra_tor_lines: Sequence[str] = (),
        names: Sequence[str] | None = None,
        prefix: str = "",
        progress: Callable[[str], None] | None = None,
    ) -> None:
        if prefix and not prefix.isalnum():
            raise TestnetError(
                f"cluster prefix {prefix!r} must be letters and digits (tor nickname)"
            )
        if nodes < 1:
            raise TestnetError("a cluster needs at least one node")
        self.net = net
        self.root = root
        self.page = page
        self._n = nodes
        self._names = list(names) if names else [f"node-{chr(ord('a') + i)}" for i in range(nodes)]
        self._hb = heartbeat_interval_s
        self._dead_after = dead_after
        self._grace = lease_grace_s
        self._single_grace = single_node_grace_s
        self._health_interval = health_interval_s
        self._extra = tuple(extra_tor_lines)
        self._progress = progress or (lambda _m: None)
        self.prefix = prefix
        self._spawner = Spawner()
        self.nodes: list[LocalNode] = []
        self.target_http: StaticHttpServer | None = None
        self.target: TorInstance | None = None
        self.client: TorInstance | None = None
        self.master_address: str = ""
        self._fetches = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self, *, timeout_s: float = 180.0, wait_serving: bool = True) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._progress("starting the target web page and its onion service")
        self.target_http = StaticHttpServer(self.page)
        self.target = self.net.add_onion_service(
            f"{self.prefix}target", target_port=self.target_http.port
        )
        self._progress("starting the client tor")
        self.client = self.net.add_client(f"{self.prefix}client")
        key = generate_master_key(secrets.token_bytes)
        key_dir = self.root / "master"
        key_dir.mkdir(mode=0o700, exist_ok=True)
        save_secret_key_file(key_dir / "hs_ed25519_secret_key", key)
        save_public_key_file(key_dir / "hs_ed25519_public_key", key.public_key())
        self.master_address = str(key.public_key().address())
        token = self.root / "cluster-token"
        token.write_text(secrets.token_urlsafe(32))
        token.chmod(0o600)
        peer_ports = [free_port() for _ in range(self._n)]
        for i, name in enumerate(self._names):
            data_dir = self.root / name
            data_dir.mkdir(mode=0o700, exist_ok=True)
            config = data_dir / "node.toml"
            config.write_text(
                self._config(
                    name=name,
                    index=i,
                    data_dir=data_dir,
                    key_dir=key_dir,
                    token=token,
                    peer_ports=peer_ports,
                ),
                encoding="utf-8",
            )
            self.nodes.append(LocalNode(self, name, i, config))
        for node in self.nodes:
            self._progress(f"starting {node.name}")
            node.start()
        if wait_serving:
            self.wait_for(
                lambda: all(self._serving(n) for n in self.nodes),
                timeout_s=timeout_s,
                what="every node serving (tor bootstrapped, intro points, healthy target)",
            )

    def close(self) -> None:
        for node in self.nodes:
            node.stop(timeout_s=10.0)
        self._spawner.close()
        if self.target_http is not None:
            self.target_http.close()

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _config(
        self,
        *,
        name: str,
        index: int,
        data_dir: Path,
        key_dir: Path,
        token: Path,
        peer_ports: Sequence[int],
    ) -> str:
        extra = [*self.net.network_torrc_lines(), *self._extra]
        seeds = [f"127.0.0.1:{peer_ports[0]}"] if index > 0 else []
        if index == 0 and len(peer_ports) > 1:
            seeds = [f"127.0.0.1:{peer_ports[1]}"]
        target = self.target.onion_address if self.target is not None else ""
        return "\n".join(
            [
                "[node]",
                f"id = {json.dumps(name)}",
                f"data_dir = {json.dumps(str(data_dir))}",
                f"priority = {10 + index}",
                "[master]",
                f"key_dir = {json.dumps(str(key_dir))}",
                "[tor]",
                f"extra_torrc = {json.dumps(extra)}",
                "bootstrap_timeout_s = 120",
                "[target]",
                f"onion_address = {json.dumps(target)}",
                "port = 80",
                "[proxy]",
                f'listen = "127.0.0.1:{free_port()}"',
                "[health]",
                f"interval_s = {self._health_interval}",
                "timeout_s = 20",
                "rise = 1",
                "fall = 2",
                "[cluster]",
                f"cluster_token_file = {json.dumps(str(token))}",
                f'listen = "127.0.0.1:{peer_ports[index]}"',
                f"peers = {json.dumps(seeds)}",
                f"heartbeat_interval_s = {self._hb}",
                f"dead_after = {self._dead_after}",
                f"lease_grace_s = {self._grace}",
                "[publish]",
                f"single_node_grace_s = {self._single_grace}",
                "[status]",
                f"listen = {json.dumps('unix:' + str(data_dir / 'status.sock'))}",
                "[logging]",
                'level = "INFO"',
                "",
            ]
        )

    # ------------------------------------------------------------------ queries

    def node(self, name: str) -> LocalNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise TestnetError(f"no node named {name!r} in this cluster")

    def statuses(self) -> dict[str, dict[str, Any] | None]:
        return {n.name: n.status() for n in self.nodes}

    def publisher(self) -> str | None:
        """The node that says it is publisher in multi-node mode (None if none or ambiguous)."""
        found = [
            name
            for name, doc in self.statuses().items()
            if doc is not None and doc["node"]["role"] == "publisher"
        ]
        return found[0] if len(found) == 1 else None

    def wait_for(
        self, predicate: Callable[[], bool], *, timeout_s: float, what: str, poll_s: float = 0.5
    ) -> float:
        """Wait until ``predicate()``; return the seconds it took. TestnetError on timeout."""
        start = time.monotonic()
        deadline = start + timeout_s
        while True:
            if predicate():
                return time.monotonic() - start
            if time.monotonic() >= deadline:
                tails = "\n".join(f"--- {n.name}\n{n.log_tail(15)}" for n in self.nodes)
                raise TestnetError(f"timed out after {timeout_s:g} s waiting for {what}\n{tails}")
            time.sleep(poll_s)

    def fetch(self, *, timeout_s: float = 30.0) -> ClusterFetch:
        """GET the master address on a fresh circuit; say which node served it."""
        if self.client is None or self.client.socks_port is None:
            raise TestnetError("the cluster has no client (call start first)")
        self._fetches += 1
        before = self._accepted()
        start = time.monotonic()
        try:
            code, body = http_get_via_socks(
                self.client.socks_port,
                f"http://{self.master_address}/",
                isolation=f"fetch-{os.getpid()}-{self._fetches}",
                timeout_s=timeout_s,
            )
        except TestnetError as exc:
            return ClusterFetch(False, None, None, time.monotonic() - start, str(exc))
        seconds = time.monotonic() - start
        after = self._accepted()
        served = [n for n in after if after[n] > before.get(n, after[n])]
        node = served[0] if len(served) == 1 else None
        ok = code == 200 and body == self.page
        return ClusterFetch(ok, code, node, seconds, None if ok else f"HTTP {code}")

    def _accepted(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for node in self.nodes:
            doc = node.status()
            if doc is not None and doc.get("proxy"):
                out[node.name] = int(doc["proxy"]["accepted_total"])
        return out

    @staticmethod
    def _serving(node: LocalNode) -> bool:
        doc = node.status()
        return bool(doc is not None and doc["node"]["serving"])
