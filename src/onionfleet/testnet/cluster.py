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

import contextlib
import dataclasses
import itertools
import json
import logging
import os
import secrets
import sys
import threading
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
from onionfleet.testnet.errors import SocksReplyError, TestnetError
from onionfleet.testnet.explain import FetchWindow, explain_fetch, serving_nodes
from onionfleet.testnet.network import TestNetwork, TorInstance
from onionfleet.testnet.trace import TorEventTracer

__all__ = [
    "ClusterFetch",
    "ContinuousFetcher",
    "LocalCluster",
    "LocalNode",
    "PublishSnapshot",
    "describe_failures",
    "summarize_fetches",
]

log = logging.getLogger(__name__)

#: seconds after a fetch ended before its circuit and stream events are taken as complete
_EVENTS_SETTLE_S = 1.0


@dataclass(frozen=True, slots=True)
class ClusterFetch:
    """One request through the master address: its outcome and which node served it."""

    ok: bool
    status: int | None
    node: str | None
    seconds: float
    error: str | None = None
    #: the SOCKS5 reply code when tor refused the request (0xF0: descriptor not found …)
    reply_code: int | None = None
    #: wall-clock time the request started
    started_wall: float = 0.0
    #: wall-clock time it ended (answer read, refused or given up)
    ended_wall: float = 0.0
    #: the SOCKS username and password it was sent with (``IsolateSOCKSAuth``: its own
    #: circuits); the tracer's events carry it as ``SOCKS_USERNAME``
    isolation: str = ""
    #: what its circuits and streams show (``onionfleet.testnet.explain``), for failed fetches
    explanation: str | None = None
    #: who caused the failure: ``onionfleet``, ``tor`` or ``unexplained`` (failed fetches)
    verdict: str | None = None


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

    def stop(self, timeout_s: float = 90.0) -> None:
        """SIGTERM (orderly: hand over to the other nodes, quiesce, leave), then SIGKILL after
        ``timeout_s``."""
        if self.process is not None:
            stop_process(self.process, timeout_s=timeout_s, label=f"node {self.name}")

    def terminate(self) -> None:
        """Send SIGTERM without waiting. A :meth:`stop` right after sends the second SIGTERM,
        which makes the daemon skip what is left of its hand-over."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()

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

    @property
    def tor_control_socket(self) -> Path:
        """The managed tor's control socket (cookie authentication, cookie in its data dir)."""
        return self.data_dir / "tor" / "control.sock"

    def tor_pid(self) -> int | None:
        """The pid of the node's managed tor (a child process named ``tor``), if it runs."""
        pid = self.pid
        if pid is None or not self.is_running():
            return None
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # "<pid> (<comm>) <state> <ppid> …": comm may hold spaces, so split after ")"
            comm = stat[stat.find("(") + 1 : stat.rfind(")")]
            fields = stat[stat.rfind(")") + 2 :].split()
            if comm == "tor" and len(fields) > 1 and int(fields[1]) == pid:
                return int(entry.name)
        return None

    def kill_tor(self) -> int:
        """kill -9 the node's tor (the daemon restarts it with new intro points); its old pid."""
        tor = self.tor_pid()
        if tor is None:
            raise TestnetError(f"node {self.name} has no running tor child to kill")
        os.kill(tor, 9)
        return tor

    def metrics_text(self, timeout_s: float = 5.0) -> str | None:
        """The node's Prometheus text (``/metrics`` on its status socket), or None."""
        if not self.is_running() or not self.status_socket.exists():
            return None
        try:
            return StatusClient(
                Endpoint(unix_path=self.status_socket), timeout_s=timeout_s
            ).get_metrics()
        except ObservabilityError:
            return None


class LocalCluster:
    """``nodes`` onionfleet nodes behind one master address on ``net``.

    ``start()`` makes a master key and cluster token, starts the target (an onion service in
    front of a page saying ``page``), writes one config per node and starts every node process.
    ``prefix`` names this cluster's tors on the network (``<prefix>target``, ``<prefix>client``),
    so several clusters can share one network. ``trace`` follows the client's and every node's
    tor's circuits and streams (:attr:`tracer`, :meth:`explain`) and has the nodes' tors log
    ``[rend,circ,edge]`` at info. ``target_delay_s`` slows the target's answers and
    ``proxy_idle_timeout_s`` sets the nodes' ``[proxy] idle_timeout_s`` (fault injection).
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
        pow_defenses: bool = False,
        trace: bool = False,
        target_delay_s: float = 0.0,
        proxy_idle_timeout_s: float | None = None,
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
        self._pow = pow_defenses
        self._progress = progress or (lambda _m: None)
        self.prefix = prefix
        self._spawner = Spawner()
        self.nodes: list[LocalNode] = []
        self.target_http: StaticHttpServer | None = None
        self.target: TorInstance | None = None
        self.client: TorInstance | None = None
        self.master_address: str = ""
        self._fetch_ids = itertools.count(1)
        self._trace = trace
        self._target_delay = target_delay_s
        self._proxy_idle = proxy_idle_timeout_s
        #: with ``trace``: the client's and every node's tor's circuits and streams
        self.tracer: TorEventTracer | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(
        self,
        *,
        timeout_s: float = 180.0,
        wait_serving: bool = True,
        initial_nodes: int | None = None,
    ) -> None:
        """Start the target, the client and the nodes (only the first ``initial_nodes`` of them
        if given: start the others later with ``node(name).start()``)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._progress("starting the target web page and its onion service")
        self.target_http = StaticHttpServer(self.page, delay_s=self._target_delay)
        self.target = self.net.add_onion_service(
            f"{self.prefix}target", target_port=self.target_http.port
        )
        self._progress("starting the client tor")
        self.client = self.net.add_client(f"{self.prefix}client")
        if self._trace:
            self.tracer = TorEventTracer(self.root / "trace")
            self.tracer.follow_port("client", self.client.control_port, self.client.cookie_path)
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
            node = LocalNode(self, name, i, config)
            self.nodes.append(node)
            if self.tracer is not None:
                tor_dir = node.tor_control_socket.parent
                self.tracer.follow_socket(
                    name, node.tor_control_socket, tor_dir / "control_auth_cookie"
                )
        first = self.nodes if initial_nodes is None else self.nodes[:initial_nodes]
        for node in first:
            self._progress(f"starting {node.name}")
            node.start()
        if wait_serving:
            self.wait_for(
                lambda: all(self._serving(n) for n in first),
                timeout_s=timeout_s,
                what="every node serving (tor bootstrapped, intro points, healthy target)",
            )

    def close(self) -> None:
        # Teardown, quickly: every node gets SIGTERM at once, then stop() sends each the second
        # one, which skips the hand-over (nobody is left to take over anyway).
        for node in self.nodes:
            node.terminate()
        for node in self.nodes:
            node.stop(timeout_s=30.0)
        self._spawner.close()
        if self.tracer is not None:
            self.tracer.close()
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
        if self._trace:  # what the node's tor did with circuits, streams and rendezvous
            extra.append(f"Log [rend,circ,edge]info file {data_dir / 'tor' / 'circ-info.log'}")
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
                f"pow_defenses = {'true' if self._pow else 'false'}",
                "[target]",
                f"onion_address = {json.dumps(target)}",
                "port = 80",
                "[proxy]",
                f'listen = "127.0.0.1:{free_port()}"',
                *([f"idle_timeout_s = {self._proxy_idle}"] if self._proxy_idle else []),
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

    def fetch(self, *, timeout_s: float = 30.0, attribute: bool = True) -> ClusterFetch:
        """GET the master address on a fresh circuit; say which node served it (only with
        ``attribute`` and when no other request runs at the same time)."""
        return self._fetch(self.master_address, "fetch", timeout_s=timeout_s, attribute=attribute)

    def fetch_control(self, *, timeout_s: float = 30.0) -> ClusterFetch:
        """GET the target's own onion address on a fresh circuit: the control measurement.

        The target is a plain onion service (one tor, no onionfleet) on the same network,
        fetched from the same client tor, so its failures are tor's own rate
        (docs/testing.md "The control")."""
        if self.target is None or self.target.onion_address is None:
            raise TestnetError("the cluster has no target onion service (call start first)")
        return self._fetch(
            self.target.onion_address, "control", timeout_s=timeout_s, attribute=False
        )

    def _fetch(
        self, address: str, label: str, *, timeout_s: float, attribute: bool
    ) -> ClusterFetch:
        if self.client is None or self.client.socks_port is None:
            raise TestnetError("the cluster has no client (call start first)")
        number = next(self._fetch_ids)
        isolation = f"{label}-{os.getpid()}-{number}"
        before = self._accepted() if attribute else {}
        start = time.monotonic()
        wall = time.time()
        try:
            code, body = http_get_via_socks(
                self.client.socks_port,
                f"http://{address}/",
                isolation=isolation,
                timeout_s=timeout_s,
            )
        except SocksReplyError as exc:
            return ClusterFetch(
                False, None, None, time.monotonic() - start, str(exc), exc.reply_code, wall,
                time.time(), isolation,
            )  # fmt: skip
        except TestnetError as exc:
            return ClusterFetch(
                False, None, None, time.monotonic() - start, str(exc), None, wall,
                time.time(), isolation,
            )  # fmt: skip
        seconds = time.monotonic() - start
        ended = time.time()
        node = None
        if attribute:
            after = self._accepted()
            served = [n for n in after if after[n] > before.get(n, after[n])]
            node = served[0] if len(served) == 1 else None
        ok = code == 200 and body == self.page
        error = None
        if not ok:
            error = f"HTTP {code}"
            if body != self.page:
                error += f" with a wrong or cut body ({len(body)} of {len(self.page)} bytes)"
        return ClusterFetch(
            ok,
            code,
            node,
            seconds,
            error,
            started_wall=wall,
            ended_wall=ended,
            isolation=isolation,
        )

    def explain(self, fetch: ClusterFetch) -> ClusterFetch:
        """``fetch`` with its explanation and verdict (docs/testing.md) when it failed and the
        cluster traces its tors (``trace=True``); otherwise ``fetch`` as it is."""
        if fetch.ok or self.tracer is None or not fetch.isolation:
            return fetch
        # tor sends a stream's and circuits' closing events just after the client saw the end
        settle = fetch.ended_wall + _EVENTS_SETTLE_S - time.time()
        if settle > 0:
            time.sleep(settle)
        # from 10 min before: the client's previous descriptor fetch (a time period is 4 min
        # on the test network) tells a time-period switch from a refetch
        events = self.tracer.events(since=fetch.started_wall - 600, until=fetch.ended_wall + 60)
        why = explain_fetch(
            fetch.isolation,
            fetch.started_wall,
            fetch.ended_wall,
            events,
            node_outages=self.tracer.outages(sources=[n.name for n in self.nodes]),
        )
        return dataclasses.replace(fetch, explanation=why.render(), verdict=why.verdict)

    def with_serving_nodes(self, results: Sequence[ClusterFetch]) -> list[ClusterFetch]:
        """``results`` with ``node`` filled in from the trace where it was not known: the node
        that came to each fetch's rendezvous (``a|b`` where two fit), for concurrent fetches
        that the proxy counters cannot attribute. Unchanged without ``trace``."""
        if self.tracer is None or not results:
            return list(results)
        windows = [
            FetchWindow(r.isolation, r.started_wall, r.ended_wall)
            for r in results
            if r.node is None and r.isolation
        ]
        since = min(r.started_wall for r in results) - 5
        nodes = serving_nodes(windows, self.tracer.events(since=since))
        return [
            dataclasses.replace(r, node="|".join(nodes[r.isolation]))
            if r.node is None and nodes.get(r.isolation)
            else r
            for r in results
        ]

    def explain_all(self, results: Sequence[ClusterFetch]) -> list[ClusterFetch]:
        """:meth:`explain` for each of ``results``."""
        return [self.explain(r) for r in results]

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

    # ------------------------------------------------------------------ publisher view

    def publish_snapshot(self) -> PublishSnapshot | None:
        """What the current publisher (role publisher, multi mode) says it published last."""
        for name, doc in self.statuses().items():
            if doc is None or doc["node"]["role"] != "publisher" or doc["node"]["mode"] != "multi":
                continue
            snap = PublishSnapshot.from_status(name, doc)
            if snap is not None:
                return snap
        return None

    def wait_uploaded(
        self,
        *,
        since_wall: float,
        check: Callable[[PublishSnapshot], bool] = lambda _s: True,
        timeout_s: float,
        what: str,
        poll_s: float = 0.2,
    ) -> tuple[PublishSnapshot, float]:
        """Wait for a publish made at or after ``since_wall`` whose two descriptors reached
        every responsible HSDir and that satisfies ``check``; return it and the wall time it
        was seen (polled every ``poll_s``). TestnetError on timeout."""
        found: list[PublishSnapshot] = []

        def probe() -> bool:
            snap = self.publish_snapshot()
            if (
                snap is not None
                and snap.last_publish_wall is not None
                and snap.last_publish_wall >= since_wall
                and snap.all_uploaded
                and check(snap)
            ):
                found.append(snap)
                return True
            return False

        self.wait_for(probe, timeout_s=timeout_s, what=what, poll_s=poll_s)
        return found[-1], time.time()


@dataclass(frozen=True, slots=True)
class PublishSnapshot:
    """The publisher section of one node's ``/status``: its last publish of both descriptors."""

    publisher: str
    publishes: int
    last_publish_wall: float | None
    reasons: tuple[str, ...]
    per_node: dict[str, int]
    #: one dict per descriptor: label, time_period, revision_counter, intro_points, uploaded,
    #: responsible, verification (the status document's ``DescriptorReport`` fields)
    descriptors: tuple[dict[str, Any], ...]

    @classmethod
    def from_status(cls, name: str, doc: dict[str, Any]) -> PublishSnapshot | None:
        pub = doc.get("publisher")
        if not pub or pub.get("last_publish_wall") is None:
            return None
        return cls(
            publisher=name,
            publishes=int(pub["publishes"]),
            last_publish_wall=pub["last_publish_wall"],
            reasons=tuple(pub.get("last_publish_reasons", ())),
            per_node=dict(pub.get("intro_points_per_node", {})),
            descriptors=tuple(pub.get("descriptors", ())),
        )

    @property
    def all_uploaded(self) -> bool:
        """Both descriptors reached every responsible HSDir (HS_DESC UPLOADED from each)."""
        return len(self.descriptors) == 2 and all(
            d["responsible"] > 0 and d["uploaded"] == d["responsible"] for d in self.descriptors
        )

    def descriptor(self, label: str) -> dict[str, Any] | None:
        for d in self.descriptors:
            if d["label"] == label:
                return d
        return None


class ContinuousFetcher:
    """Background threads (``workers``) fetching the master address (with ``control``: the
    target's own address, :meth:`LocalCluster.fetch_control`) on fresh circuits, one request at
    a time each, until :meth:`stop`. ``results`` holds every :class:`ClusterFetch` (a
    thread-safe copy)."""

    def __init__(
        self,
        cluster: LocalCluster,
        *,
        pause_s: float = 0.2,
        timeout_s: float = 30.0,
        workers: int = 1,
        control: bool = False,
    ) -> None:
        self._cluster = cluster
        self._control = control
        self._pause = pause_s
        self._timeout = timeout_s
        self._lock = threading.Lock()
        self._results: list[ClusterFetch] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name=f"continuous-fetch-{i}", daemon=True)
            for i in range(max(1, workers))
        ]

    def start(self) -> ContinuousFetcher:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> list[ClusterFetch]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self._timeout + 5.0)
        return self.results

    def __enter__(self) -> ContinuousFetcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def results(self) -> list[ClusterFetch]:
        with self._lock:
            return list(self._results)

    def since(self, wall: float) -> list[ClusterFetch]:
        return [r for r in self.results if r.started_wall >= wall]

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._control:
                result = self._cluster.fetch_control(timeout_s=self._timeout)
            else:
                result = self._cluster.fetch(timeout_s=self._timeout, attribute=False)
            with self._lock:
                self._results.append(result)
            if not result.ok:
                log.info("continuous fetch failed: %s", result.error)
            self._stop.wait(self._pause)


def summarize_fetches(results: Sequence[ClusterFetch]) -> str:
    """``N ok / M`` plus the failures grouped by error."""
    ok = sum(r.ok for r in results)
    errors: dict[str, int] = {}
    for r in results:
        if not r.ok:
            if r.reply_code is not None:
                key = f"SOCKS 0x{r.reply_code:02X}"
            elif r.error is not None and "no answer in" in r.error:
                key = f"no answer within {r.seconds:.0f} s"
            else:
                key = (r.error or "?")[:80]
            errors[key] = errors.get(key, 0) + 1
    extra = f" (failures: {errors})" if errors else ""
    verdicts: dict[str, int] = {}
    for r in results:
        if not r.ok and r.verdict is not None:
            verdicts[r.verdict] = verdicts.get(r.verdict, 0) + 1
    if verdicts:
        extra += f" (by verdict: {verdicts})"
    took = sorted(r.seconds for r in results if r.ok)
    if took:
        extra += f"; ok requests took median {took[len(took) // 2]:.2f} s, max {took[-1]:.2f} s"
    return f"{ok} ok / {len(results)}{extra}"


def describe_failures(results: Sequence[ClusterFetch]) -> str:
    """One paragraph per failed fetch: when, what the client saw, and its explanation."""
    out = []
    for r in results:
        if r.ok:
            continue
        when = time.strftime("%H:%M:%S", time.gmtime(r.started_wall))
        out.append(
            f"fetch {r.isolation} at {when} ({r.seconds:.1f} s): {r.error}\n"
            + (r.explanation or "  (not traced)")
        )
    return "\n".join(out)
