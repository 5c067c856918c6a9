"""The node daemon: everything one node runs, started in order and stopped in reverse.

Start-up (STYLE.md §5): master key → tor (managed child, or attach) → controller (auth) →
bootstrap → consensus watcher → reverse proxy → target probes → own-intro-point watcher →
cluster (peer transport) → status server. Each part is a long-lived ``run(ready)`` task in one
TaskGroup; the daemon waits for each part's readiness under a time limit before starting the next,
so a failure names the part that failed.

Modes (publish/mode.py): alone, tor publishes its own descriptor; with peers alive every node turns
tor's publishing off and the elected publisher runs a :class:`~onionfleet.publish.Publisher`
for the merged descriptors. The reconcile loop (once a second and on every cluster event) feeds
the node's health verdict to the cluster, switches modes, starts or stops the publisher, and
updates metrics.

Leaving (``drain``, or SIGTERM/SIGINT while other nodes can take over): mark the node draining so
the publisher republishes without its intro points, wait until the descriptor on the HSDirs holds
none of them, then quiesce (node/quiesce.py: close the intro circuits so clients move to other
intro points, serve every rendezvous already under way, wait until quiet). A second signal skips
what is left of it. Then shutdown: stop accepting streams, leave the cluster (release the lease,
tell the peers), let open streams finish within a time limit, cancel the rest, stop tor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from onionfleet import __version__
from onionfleet.clock import Clock
from onionfleet.cluster import (
    Action,
    BecomePublisher,
    ClusterNode,
    ClusterSettings,
    ClusterToken,
    IntroPointSet,
    PeerDead,
    PeerJoined,
    PeerLeft,
    StepDown,
)
from onionfleet.cluster.errors import ClusterError
from onionfleet.cluster.membership import PeerStatus
from onionfleet.cluster.messages import WireGuardIdentity
from onionfleet.cluster.tor_transport import (
    ensure_peer_onion_key,
    peer_tor_settings,
    socks_dialer,
)
from onionfleet.cluster.transport import Dialer, TcpTransport, split_address, tcp_dial
from onionfleet.cluster.wgsync import WireGuardSync, own_wireguard_identity
from onionfleet.config import NodeConfig
from onionfleet.daemon import wiring
from onionfleet.daemon.descriptor_check import fetch_current_descriptor
from onionfleet.daemon.state import NodeState, load_state, save_state
from onionfleet.errors import OnionfleetError
from onionfleet.hs.descriptor import FlowControl
from onionfleet.hs.errors import HsError
from onionfleet.hs.intro_point import IntroPoint
from onionfleet.hs.intro_point_wire import decode_intro_point_wire, encode_intro_point_wire
from onionfleet.hs.keys import (
    HsIdExpandedSecretKey,
    OnionAddress,
    TokenBytes,
    load_secret_key_file,
    save_public_key_file,
    save_secret_key_file,
)
from onionfleet.hs.timeperiod import TimePeriod
from onionfleet.node.balancer import Balancer
from onionfleet.node.connect import StreamConnector
from onionfleet.node.health import HealthChanged, node_verdict
from onionfleet.node.intro_points import IntroPointsChanged, OwnIntroPointWatcher
from onionfleet.node.prober import TargetProber
from onionfleet.node.proxy import ReverseProxy
from onionfleet.node.quiesce import Quiesce, QuiesceObservation, observe_service_circuits
from onionfleet.node.stats import ProxyStats
from onionfleet.node.targets import SocksEndpoint
from onionfleet.observability.logs import SecretRedactor
from onionfleet.observability.metrics import Metrics
from onionfleet.observability.publisher_feed import PublisherMetricsFeed
from onionfleet.observability.status import ClusterMember, NodeStatus, StatusDocument, TorStatus
from onionfleet.observability.status_build import (
    cluster_status,
    proxy_report,
    publisher_report,
    role_name,
    target_reports,
)
from onionfleet.observability.status_server import StatusServer, metrics_server
from onionfleet.publish.mode import Mode, ModeMachine
from onionfleet.publish.plan import candidate_time_periods, time_period_rules_for
from onionfleet.publish.publisher import Publisher, PublisherSettings
from onionfleet.publish.selection import NodeIntroPoints
from onionfleet.tor.consensus_watch import ConsensusWatcher
from onionfleet.tor.controller import TorController
from onionfleet.tor.errors import TorError
from onionfleet.tor.events import BootstrapStatus
from onionfleet.tor.process import ManagedTor, wait_for_bootstrap

__all__ = ["Daemon", "DaemonError"]

log = logging.getLogger(__name__)

_RECONCILE_S = 1.0
_SECRET_KEY_FILE = "hs_ed25519_secret_key"


class DaemonError(OnionfleetError):
    """The node could not start or keep running; the message names the part and what to do."""


@dataclass(frozen=True, slots=True)
class DaemonOptions:
    """Knobs for tests and the demo (the config file holds everything an operator sets)."""

    start_timeout_s: float = 120.0
    drain_verify_timeout_s: float = 120.0
    drain_streams_timeout_s: float = 60.0
    shutdown_verify_timeout_s: float = 30.0
    quiet_s: float = 3.0
    quiesce_poll_s: float = 0.25
    leave_timeout_s: float = 2.0
    intro_poll_interval_s: float = 1.0


class Daemon:
    """One node. ``run()`` until :meth:`request_stop` (or a signal handled by the caller)."""

    def __init__(
        self,
        cfg: NodeConfig,
        *,
        clock: Clock,
        rng: random.Random,
        token_bytes: TokenBytes,
        redactor: SecretRedactor | None = None,
        registry: CollectorRegistry | None = None,
        options: DaemonOptions | None = None,
    ) -> None:
        self.cfg = cfg
        self._clock = clock
        self._rng = rng
        self._token_bytes = token_bytes
        self._redactor = redactor
        self.registry = registry or CollectorRegistry()
        self.options = options or DaemonOptions()
        self.metrics = Metrics(self.registry, clock=clock, node_id=cfg.node.id)
        self._stop = asyncio.Event()
        self._hurry = asyncio.Event()  # a second stop request: skip what is left of leaving
        self._started_at_wall = clock.wall()
        self._state_path = cfg.node.data_dir / "state.json"
        # set while running
        self.address: OnionAddress | None = None
        self.controller: TorController | None = None
        self._managed_tor: ManagedTor | None = None
        self._socks_port: int | None = None
        self._consensus: ConsensusWatcher | None = None
        self._testing_tor_network = False
        self._bootstrap = BootstrapStatus(0, "starting", "starting", None)
        self._proxy: ReverseProxy | None = None
        self._proxy_stats = ProxyStats()
        self._prober: TargetProber | None = None
        self._watcher: OwnIntroPointWatcher | None = None
        self._cluster: ClusterNode | None = None
        self._transport: TcpTransport | None = None
        self._peer_tor: ManagedTor | None = None  # [cluster] transport = "tor"
        self._wg_sync: WireGuardSync | None = None  # [wireguard] manage = true
        self._mode = ModeMachine(
            single_node_grace_s=cfg.publish.single_node_grace_s, now=clock.monotonic()
        )
        self._tor_publishes: bool | None = None
        self._tor_publishes_generation = 0
        self._master_key: HsIdExpandedSecretKey | None = None
        self._publisher: Publisher | None = None
        self._publisher_task: asyncio.Task[None] | None = None
        self._publisher_feed: PublisherMetricsFeed | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._reconcile_wake = asyncio.Event()
        self._draining = False
        self._stopping = False
        self._drain_lock = asyncio.Lock()
        self._verdict_reason = "starting"
        self._serving = False
        self._bad_peer_entries: set[str] = set()

    # ------------------------------------------------------------------ public

    def request_stop(self) -> None:
        """Begin an orderly shutdown; a second request skips the rest of a graceful leave."""
        if self._stop.is_set() and not self._hurry.is_set():
            log.warning("second stop request: stopping now, without waiting for the hand-over")
            self._hurry.set()
        self._stop.set()

    @property
    def is_publisher(self) -> bool:
        return self._publisher_task is not None and not self._publisher_task.done()

    @property
    def mode(self) -> Mode:
        return self._mode.mode

    @property
    def publisher(self) -> Publisher | None:
        return self._publisher

    @property
    def proxy(self) -> ReverseProxy | None:
        return self._proxy

    @property
    def cluster(self) -> ClusterNode | None:
        return self._cluster

    @property
    def own_intro_points(self) -> tuple[IntroPoint, ...]:
        current = self._watcher.current if self._watcher is not None else None
        return current.intro_points if current is not None else ()

    async def run(self, ready: asyncio.Future[None] | None = None) -> None:
        """Start every part in order, serve until stopped, then shut down in reverse.

        A part that fails ends the whole node: its error comes out of an ``ExceptionGroup``.
        """
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                await self._start_all(tg)
                if ready is not None and not ready.done():
                    ready.set_result(None)
                log.info(
                    "node %s serving %s (mode %s)",
                    self.cfg.node.id,
                    self.address.redacted() if self.address else "?",
                    self._mode.mode.value,
                )
                await self._stop.wait()
                await self._shutdown()
                raise _Stopped  # leaving the TaskGroup body with an error cancels every part
        except BaseException as exc:
            failure: BaseException | None = exc
            if isinstance(exc, BaseExceptionGroup):
                failure = exc.split(_Stopped)[1]
            if failure is None:
                return
            if ready is not None and not ready.done():
                if isinstance(failure, Exception):
                    ready.set_exception(failure)
                else:
                    ready.cancel()
            raise failure from None if failure is not exc else failure
        finally:
            self._tg = None

    async def drain(self) -> Mapping[str, Any]:
        """Leave the descriptor, wait until it is verified without us, quiesce, stop.

        The result is the JSON the ``/drain`` endpoint returns (``drained``, ``message`` …).
        """
        async with self._drain_lock:
            if self._draining:
                return {"drained": False, "message": "a drain is already under way"}
            result = await self._leave_gracefully(
                "operator drain", verify_timeout_s=self.options.drain_verify_timeout_s
            )
            result["drained"] = bool(
                result["streams_finished"]
                and (result["verified"] or not result["takeover_possible"])
            )
            result["message"] = (
                f"drained in {result['seconds']} s; the node stops now"
                if result["drained"]
                else f"drain incomplete ({result['message_verify']}); the node stops now"
            )
            log.info("drain finished: %s", result["message"])
            self.request_stop()
            return result

    async def _leave_gracefully(self, reason: str, *, verify_timeout_s: float) -> dict[str, Any]:
        """Drain: out of the descriptor (verified on the HSDirs), then quiesce. The result says
        what happened (``verified``, ``message_verify``, ``streams_finished``, ``quiesce`` …)."""
        self._draining = True
        self.metrics.set_draining(True)
        log.info("leaving (%s): asking the publisher to republish without this node", reason)
        started = self._clock.monotonic()
        result: dict[str, Any] = {"node": self.cfg.node.id}
        if self._cluster is not None and self._transport is not None:
            self._transport.submit(self._cluster.set_draining(True, reason))
            self._reconcile_wake.set()
        takeover = self._takeover_candidates() > 0
        result["takeover_possible"] = takeover
        if not takeover:
            result["verified"] = False
            result["message_verify"] = "no other node is alive and serving: nothing takes over"
        else:
            ok, detail = await self._wait_descriptor_without_us(verify_timeout_s)
            result["verified"] = ok
            result["message_verify"] = detail
        log.info("leaving: %s", result["message_verify"])
        if self._takeover_candidates() > 0:
            result["quiesce"] = await self._quiesce()
        else:
            result["quiesce"] = "skipped: no other node serves (closing intro points helps nobody)"
        if self._proxy is not None:
            self._proxy.stop_accepting()
            streams_done = await self._proxy.wait_drained(self.options.drain_streams_timeout_s)
        else:
            streams_done = True
        result["streams_finished"] = streams_done
        result["seconds"] = round(self._clock.monotonic() - started, 1)
        return result

    async def _quiesce(self) -> str:
        """Close our intro circuits until none comes back, serve what is under way, wait for
        quiet (node/quiesce.py). Returns how it ended."""
        controller, address = self.controller, self.address
        if controller is None or address is None:
            return "skipped: tor is not connected"
        quiesce = Quiesce(
            started=self._clock.monotonic(),
            quiet_s=self.options.quiet_s,
            timeout_s=self.options.drain_streams_timeout_s,
        )
        stats = self._proxy_stats
        log.info("quiescing: closing this node's intro circuits; serving what is under way")
        while True:
            try:
                circuits = await controller.circuit_status(timeout_s=10.0)
            except TorError as exc:
                log.warning("quiescing: cannot list tor's circuits (%s); stopping anyway", exc)
                return f"stopped early: {exc}"
            intro, established, pending = observe_service_circuits(
                circuits, address.without_suffix()
            )
            step = quiesce.step(
                QuiesceObservation(
                    now=self._clock.monotonic(),
                    intro_circuits=intro,
                    established_intro=established,
                    pending_rendezvous=pending,
                    active_streams=stats.active,
                    accepted_total=stats.accepted_total,
                )
            )
            for circuit_id in step.close:
                try:
                    await controller.close_circuit(circuit_id, timeout_s=10.0)
                except TorError as exc:
                    log.warning("quiescing: cannot close intro circuit %s: %s", circuit_id, exc)
            if step.done:
                message = (
                    f"{step.reason}; closed {quiesce.closed_total} intro circuits, served "
                    f"{quiesce.served_while_quiescing} streams meanwhile"
                )
                log.info("quiesced: %s", message)
                self.metrics.observe_quiesce(
                    closed=quiesce.closed_total, served=quiesce.served_while_quiescing
                )
                return message
            await asyncio.sleep(self.options.quiesce_poll_s)

    def status_document(self) -> dict[str, Any]:
        """The ``/status`` JSON (observability/status.py schema)."""
        now_mono = self._clock.monotonic()
        now_wall = self._clock.wall()
        cluster = self._cluster
        own_ips = len(self.own_intro_points)
        term = cluster.term.number if cluster is not None else 0
        holder = (cluster.term.holder or None) if cluster is not None else None
        node = NodeStatus(
            node_id=self.cfg.node.id,
            version=__version__,
            role=role_name(cluster.role) if cluster is not None else "single",
            mode=self._mode.mode.value,
            term=term,
            serving=self._serving,
            verdict_reason=self._verdict_reason,
            draining=self._draining,
            started_at_wall=self._started_at_wall,
            term_holder=holder,
            tor=TorStatus(
                bootstrap_percent=self._bootstrap.progress,
                bootstrap_summary=self._bootstrap.summary,
                control_connected=bool(self.controller and self.controller.connected),
            ),
        )
        cluster_section = None
        if cluster is not None:
            sets = cluster.intro_point_sets(eligible_only=False)
            me = ClusterMember(
                node_id=self.cfg.node.id,
                state="self",
                role=role_name(cluster.role),
                serving=self._serving,
                draining=self._draining,
                health_reason=self._verdict_reason,
                intro_points=own_ips,
            )
            cluster_section = cluster_status(
                me=me,
                peers=cluster.peers(),
                intro_points={k: len(v.entries) for k, v in sets.items()},
                term=term,
                publisher=holder,
                rejected=cluster.rejects.as_dict(),
                now_mono=now_mono,
            )
        publisher = None
        if self._publisher is not None:
            publisher = publisher_report(
                self._publisher.status(), now_mono=now_mono, now_wall=now_wall
            )
        snapshot = self._proxy_stats.snapshot()
        targets: tuple[Any, ...] = ()
        if self._prober is not None:
            board = self._prober.board
            states = board.states()
            targets = target_reports(
                states, last_probes={n: board.last_result(n) for n in states}, proxy=snapshot
            )
        doc = StatusDocument(
            generated_at_wall=now_wall,
            node=node,
            cluster=cluster_section,
            publisher=publisher,
            proxy=proxy_report(snapshot),
            targets=targets,
        )
        out = doc.to_dict()
        if self._wg_sync is not None and out.get("cluster") is not None:
            # Seconds since the last WireGuard handshake per peer (None: never); readers that
            # do not know the key ignore it (observability/status.py).
            out["cluster"]["wireguard_handshake_age_s"] = self._wg_sync.handshake_ages()
        return out

    # ------------------------------------------------------------------ start-up

    async def _start_all(self, tg: asyncio.TaskGroup) -> None:
        cfg = self.cfg
        self._master_key = self._load_master_key()
        self.address = self._master_key.public_key().address()
        self._register_secrets()
        state = load_state(self._state_path)

        # tor
        if cfg.tor.mode == "managed":
            self._socks_port = (
                cfg.tor.socks.port
                if cfg.tor.socks and cfg.tor.socks.port
                else (_free_loopback_port())
            )
            self._prepare_hidden_service_dir(self._master_key)
            settings = wiring.managed_tor_settings(
                cfg,
                master_onion_address=str(self.address),
                socks_port=self._socks_port,
                publish_descriptors=True,
            )
            self._tor_publishes = True
            self._managed_tor = ManagedTor(settings)
            await self._start(tg, "tor", self._managed_tor.run, self.options.start_timeout_s)
            self.controller = TorController(settings.controller_settings())
        else:
            attached = wiring.attached_tor_settings(cfg)
            if cfg.tor.socks is None or cfg.tor.socks.port is None:
                raise DaemonError('attach mode needs [tor] socks = "127.0.0.1:PORT"')
            self._socks_port = cfg.tor.socks.port
            self.controller = TorController(attached.controller_settings())
        controller = self.controller
        await self._start(tg, "tor controller", controller.run, self.options.start_timeout_s)
        self.metrics.set_tor_connected(True)
        self._bootstrap = await wait_for_bootstrap(
            controller, timeout_s=cfg.tor.bootstrap_timeout_s, on_progress=self._on_bootstrap
        )
        self.metrics.set_tor_bootstrap(self._bootstrap.progress)
        conf = await controller.get_conf("TestingTorNetwork")
        self._testing_tor_network = conf.get("TestingTorNetwork", ["0"])[-1] == "1"
        if cfg.tor.mode == "attach":
            await self._check_attached_tor(controller)
            await self._set_tor_publishing(True)

        self._consensus = ConsensusWatcher(controller, on_update=lambda _v: self._nudge())
        await self._start(tg, "consensus watcher", self._consensus.run, cfg.tor.bootstrap_timeout_s)

        # data plane
        targets = wiring.targets(cfg)
        balancer = Balancer(targets)
        connector = StreamConnector(SocksEndpoint(self._socks_port))
        self._proxy = ReverseProxy(
            wiring.proxy_config(cfg, expect_tor_header=cfg.tor.mode == "managed"),
            balancer,
            connector,
            stats=self._proxy_stats,
        )
        self.metrics.watch_proxy(self._proxy_stats.snapshot)
        await self._start(tg, "reverse proxy", self._proxy.run, 30.0)
        self._prober = TargetProber(
            targets,
            wiring.probe_spec(cfg),
            connector,
            clock=self._clock,
            token_bytes=self._token_bytes,
            balancer=balancer,
            on_change=self._on_health_change,
            on_result=lambda r: self.metrics.observe_probe(
                r.target, ok=r.ok, latency_s=r.latency_s
            ),
        )
        await self._start(tg, "target probes", self._prober.run, 30.0)

        address = self.address
        self._watcher = OwnIntroPointWatcher(
            controller,
            address,
            time_periods=self._candidate_time_periods,
            clock=self._clock,
            on_change=self._on_own_intro_points,
            poll_interval_s=self.options.intro_poll_interval_s,
            node_id=cfg.node.id,
        )
        await self._start(tg, "intro point watcher", self._watcher.run, 30.0)

        # cluster
        if cfg.cluster.enabled:
            await self._start_cluster(tg, state)

        # status and metrics endpoints
        status_server = StatusServer(
            cfg.status.listen,
            status=self.status_document,
            registry=self.registry,
            drain=self.drain,
        )
        await self._start(tg, "status server", status_server.run, 10.0)
        if cfg.metrics.listen is not None:
            await self._start(
                tg, "metrics listener", metrics_server(cfg.metrics.listen, self.registry).run, 10.0
            )
        tg.create_task(self._reconcile_loop(), name="reconcile")

    async def _start(
        self,
        tg: asyncio.TaskGroup,
        name: str,
        run: Callable[[asyncio.Future[Any]], Coroutine[Any, Any, None]],
        timeout_s: float,
    ) -> None:
        """Start a long-lived part and wait for its readiness, naming it if it fails."""
        ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        task: asyncio.Task[None] = tg.create_task(run(ready), name=name)
        done, _ = await asyncio.wait(
            {task, ready}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
        if ready in done:
            try:
                ready.result()
            except OnionfleetError as exc:
                raise DaemonError(f"{name} failed to start: {exc}") from exc
            return
        if task in done:
            failure = task.exception()
            raise DaemonError(f"{name} stopped while starting: {failure}") from failure
        task.cancel()
        hint = ""
        if self._managed_tor is not None and name.startswith("tor"):
            hint = f"; tor's log ends:\n{self._managed_tor.log_tail(10)}"
        raise DaemonError(f"{name} did not start within {timeout_s:g} s{hint}")

    def _load_master_key(self) -> HsIdExpandedSecretKey:
        path = self.cfg.master.key_dir / _SECRET_KEY_FILE
        try:
            return load_secret_key_file(path)
        except HsError as exc:
            raise DaemonError(f"master key: {exc}") from exc

    def _register_secrets(self) -> None:
        if self._redactor is None or self._master_key is None:
            return
        self._redactor.add_secret(self._master_key.raw)
        if self.cfg.cluster.token is not None:
            self._redactor.add_secret(self.cfg.cluster.token.reveal())

    def _prepare_hidden_service_dir(self, key: HsIdExpandedSecretKey) -> None:
        """Copy the master key into the managed tor's HiddenServiceDir (0700, key 0600)."""
        hs_dir = wiring.tor_data_dir(self.cfg) / "hs"
        hs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(wiring.tor_data_dir(self.cfg), 0o700)
        os.chmod(hs_dir, 0o700)
        existing = hs_dir / _SECRET_KEY_FILE
        if existing.exists():
            try:
                if load_secret_key_file(existing).raw == key.raw:
                    return
            except HsError:
                pass
        save_secret_key_file(existing, key)
        save_public_key_file(hs_dir / "hs_ed25519_public_key", key.public_key())
        with contextlib.suppress(FileNotFoundError):
            (hs_dir / "hostname").unlink()  # tor writes it again for the master key

    async def _check_attached_tor(self, controller: TorController) -> None:
        """An operator-run tor must serve the master key with the OnionBalance-instance flag."""
        address = self.address
        if address is None:
            return
        try:
            await controller.get_info(f"hs/service/desc/id/{address.without_suffix()}")
        except TorError as exc:
            raise DaemonError(
                f"the attached tor does not serve {address.redacted()}: {exc}. Give it a "
                "HiddenServiceDir holding the master key"
            ) from exc
        options = await controller.get_conf("HiddenServiceOptions")
        lines = " ".join(" ".join(v) for v in options.values())
        if "HiddenServiceOnionBalanceInstance 1" not in lines:
            raise DaemonError(
                "the attached tor's onion service lacks HiddenServiceOnionBalanceInstance 1 (and "
                "an ob_config naming the master address): intro points would fail in the other "
                "time period's descriptor. Add both to its torrc and reload tor"
            )

    async def _start_cluster(self, tg: asyncio.TaskGroup, state: NodeState) -> None:
        cfg = self.cfg
        token = cfg.cluster.token
        listen = cfg.cluster.listen
        if token is None or listen is None or listen.host is None or listen.port is None:
            raise DaemonError("[cluster] needs a cluster token and a host:port listen address")
        advertise = cfg.cluster.advertise or f"{listen.host}:{listen.port}"
        for peer in cfg.cluster.peers:
            split_address(peer)
        dial: Dialer = tcp_dial
        if cfg.cluster.transport == "tor":
            advertise, dial = await self._start_peer_tor(tg, listen.host, listen.port)
        wireguard: WireGuardIdentity | None = None
        wg = cfg.wireguard
        if wg is not None and wg.manage and wg.private_key_file and wg.address:
            try:
                wireguard = own_wireguard_identity(wg.private_key_file, wg.address, wg.endpoint)
            except ClusterError as exc:
                raise DaemonError(f"[wireguard] {exc}") from exc
        settings = ClusterSettings(
            node_id=cfg.node.id,
            address=advertise,
            priority=cfg.node.priority,
            heartbeat_interval_s=cfg.cluster.heartbeat_interval_s,
            dead_after=cfg.cluster.dead_after,
            lease_grace_s=cfg.cluster.lease_grace_s,
            max_clock_skew_s=cfg.cluster.max_clock_skew_s,
            forget_after_s=max(
                60.0,
                cfg.cluster.max_clock_skew_s + 1,
                cfg.cluster.dead_after * cfg.cluster.heartbeat_interval_s * 4,
            ),
            seeds=tuple(p for p in cfg.cluster.peers if p != advertise),
            wireguard=wireguard,
        )
        mac_key = ClusterToken.from_text(token.reveal()).derive_mac_key()
        self._cluster = ClusterNode(
            settings,
            mac_key,
            self._clock,
            boot_id=self._token_bytes(16),
            last_term_number=state.last_term_number,
            remembered_peers=state.known_peers,
            serving=False,
            health_reason="starting",
        )
        self._transport = TcpTransport(
            self._cluster,
            self._clock,
            listen_host=listen.host,
            listen_port=listen.port,
            rng=self._rng,
            on_event=self._on_cluster_event,
            dial=dial,
            connect_timeout_s=5.0 if dial is tcp_dial else 60.0,
        )
        self.metrics.watch_peer_rejects(self._cluster.rejects.as_dict)
        await self._start(tg, "peer transport", self._transport.run, 10.0)
        if wireguard is not None and wg is not None and wg.address is not None:
            # Adds/removes the wg peers gossip announces (cluster/wireguard.py rules); the
            # interface itself is the operator's (docs/cluster-setup.md).
            self._wg_sync = WireGuardSync(
                interface=wg.interface,
                own=wireguard,
                tunnel_network=wg.address,
                peers=self._cluster.peers,
                clock=self._clock,
            )
            await self._start(tg, "wireguard peer sync", self._wg_sync.run, 15.0)

    async def _start_peer_tor(
        self, tg: asyncio.TaskGroup, host: str, port: int
    ) -> tuple[str, Dialer]:
        """``[cluster] transport = "tor"``: a peer tor with the peer onion service (its own key,
        made on first start in ``<data_dir>/peer-tor/peer-onion``) → ``127.0.0.1:<port>``,
        dialing through its SOCKS port. A separate tor because PublishHidServDescriptors 0 is
        global (cluster/tor_transport.py)."""
        if host not in ("127.0.0.1", "localhost"):
            raise DaemonError(
                '[cluster] transport = "tor" needs listen = "127.0.0.1:PORT": the peer onion '
                "service forwards there"
            )
        cfg = self.cfg
        settings = peer_tor_settings(
            cfg.node.data_dir,
            listen_port=port,
            socks_port=_free_loopback_port(),
            tor_binary=cfg.tor.binary,
            extra_lines=cfg.tor.extra_torrc,
            start_timeout_s=min(60.0, cfg.tor.bootstrap_timeout_s),
        )
        try:
            onion = ensure_peer_onion_key(settings, self._token_bytes)
        except ClusterError as exc:
            raise DaemonError(f"peer tor: {exc}") from exc
        self._peer_tor = ManagedTor(settings)
        await self._start(tg, "peer tor", self._peer_tor.run, self.options.start_timeout_s)
        log.info("peers reach this node at its peer onion service on port %d", port)
        return f"{onion}:{port}", socks_dialer(settings.socks_port or 0)

    # ------------------------------------------------------------------ events

    def _nudge(self) -> None:
        self._reconcile_wake.set()
        if self._publisher is not None:
            self._publisher.nudge()

    def _on_bootstrap(self, status: BootstrapStatus) -> None:
        self._bootstrap = status
        self.metrics.set_tor_bootstrap(status.progress)
        log.info("tor bootstrapped %d%%: %s", status.progress, status.summary)

    def _on_health_change(self, change: HealthChanged) -> None:
        self.metrics.set_target_health(change.target, change.new.value)
        self._reconcile_wake.set()

    def _candidate_time_periods(self) -> tuple[TimePeriod, ...]:
        view = self._consensus.current if self._consensus is not None else None
        if view is None:
            return ()
        rules = time_period_rules_for(view, testing_tor_network=self._testing_tor_network)
        return candidate_time_periods(view.valid_after, rules)

    def _on_own_intro_points(self, change: IntroPointsChanged) -> None:
        current = change.current
        log.info(
            "own intro points: %d (+%d -%d, %s)",
            len(current.intro_points),
            len(change.added),
            len(change.removed),
            change.trigger,
        )
        if self._cluster is not None and self._transport is not None:
            entries = tuple(
                encode_intro_point_wire(ip) for ip in current.intro_points if not ip.has_legacy_key
            )
            fc = current.flow_control
            flow = f"{fc.versions} {fc.sendme_inc}" if fc is not None else None
            self._transport.submit(self._cluster.set_intro_points(IntroPointSet(entries, flow)))
        self._nudge()

    def _on_cluster_event(self, action: Action) -> None:
        if isinstance(action, BecomePublisher):
            log.info("elected publisher for term %d", action.term.number)
            self._save_state(action.term.number)
        elif isinstance(action, StepDown):
            log.info("stepping down as publisher (term %d): %s", action.term.number, action.reason)
        elif isinstance(action, PeerJoined | PeerDead | PeerLeft):
            self._save_state(None)
        self._nudge()

    def _save_state(self, term_number: int | None) -> None:
        if self._cluster is None:
            return
        previous = load_state(self._state_path)
        number = max(previous.last_term_number, term_number or 0, self._cluster.term.number)
        try:
            save_state(self._state_path, NodeState(number, self._cluster.known_addresses()))
        except OSError as exc:
            log.warning("cannot save node state to %s: %s", self._state_path, exc.strerror)

    # ------------------------------------------------------------------ reconcile

    async def _reconcile_loop(self) -> None:
        while not self._stopping:
            try:
                await self._reconcile()
            except TorError as exc:
                log.warning("reconcile: tor command failed: %s", exc)
            self._reconcile_wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_RECONCILE_S):
                    await self._reconcile_wake.wait()

    def _takeover_candidates(self) -> int:
        """Peers that can carry the service without us: alive, serving and not leaving."""
        if self._cluster is None:
            return 0
        return sum(
            1
            for p in self._cluster.peers()
            if p.status is PeerStatus.ALIVE and p.serving and not p.draining
        )

    async def _reconcile(self) -> None:
        now = self._clock.monotonic()
        controller = self.controller
        connected = bool(controller and controller.connected)
        self.metrics.set_tor_connected(connected)
        ips = len(self.own_intro_points)
        healthy = self._prober.healthy_count if self._prober is not None else 0
        verdict = node_verdict(
            tor_bootstrapped=connected and self._bootstrap.done,
            intro_points_established=ips,
            healthy_targets=healthy,
        )
        if verdict.serving != self._serving or verdict.reason != self._verdict_reason:
            log.info(
                "node verdict: %s (%s)",
                "serving" if verdict.serving else "not serving",
                verdict.reason,
            )
        self._serving, self._verdict_reason = verdict.serving, verdict.reason
        self.metrics.set_serving(verdict.serving)
        cluster = self._cluster
        if cluster is not None and self._transport is not None:
            self._transport.submit(cluster.set_health(verdict.serving, verdict.reason))
            peers = cluster.peers()
            alive = sum(1 for p in peers if p.status is PeerStatus.ALIVE)
            self.metrics.set_peers(alive=alive, known=len(peers))
            self.metrics.set_election(
                is_publisher=cluster.is_publisher,
                term=cluster.term.number,
                publisher_known=bool(cluster.term.holder),
            )
            change = self._mode.observe(alive, now)
            if change is not None:
                log.info("mode %s: %s", change.mode.value, change.reason)
            sets = cluster.intro_point_sets(eligible_only=False)
            self.metrics.set_intro_points({k: len(v.entries) for k, v in sets.items()})
        else:
            self.metrics.set_intro_points({self.cfg.node.id: ips})
        if self._wg_sync is not None:
            self.metrics.set_wireguard_handshake_ages(self._wg_sync.handshake_ages())
        self.metrics.set_mode(self._mode.mode.value)
        want_tor_publishing = self._mode.mode is Mode.SINGLE and not self._draining
        if self.cfg.tor.mode == "managed" or self._tor_publishes is not None:
            await self._set_tor_publishing(want_tor_publishing)
        want_publisher = (
            self._mode.mode is Mode.MULTI and cluster is not None and cluster.is_publisher
        )
        if want_publisher and not self.is_publisher:
            self._start_publisher()
        elif not want_publisher and self._publisher_task is not None:
            await self._stop_publisher()
        if self._publisher is not None and self._publisher_feed is not None:
            self._publisher_feed.observe(
                self._publisher.history(), now_mono=now, now_wall=self._clock.wall()
            )

    async def _set_tor_publishing(self, on: bool) -> None:
        controller = self.controller
        if controller is None or not controller.connected:
            return
        # A tor that restarted (managed: crash and restart; attach: the operator's restart)
        # starts from its torrc, whatever we set before: set it again on every new connection.
        if self._tor_publishes is on and self._tor_publishes_generation == controller.generation:
            return
        await controller.set_conf({"PublishHidServDescriptors": "1" if on else "0"})
        if self._tor_publishes is not on:
            log.info("tor's own descriptor publishing %s", "on" if on else "off")
        self._tor_publishes = on
        self._tor_publishes_generation = controller.generation
        self._keep_managed_torrc(on)

    def _keep_managed_torrc(self, publish: bool) -> None:
        """Make a restarted managed tor start in the current mode: in multi-node mode a tor that
        restarts with ``PublishHidServDescriptors 1`` would upload its own descriptor (only its
        own intro points) over the merged one before we could turn that off again."""
        if self._managed_tor is not None:
            self._managed_tor.set_publish_descriptors(publish)

    def _start_publisher(self) -> None:
        tg = self._tg
        if self._stopping or tg is None or self.controller is None or self._master_key is None:
            return
        consensus = self._consensus
        self._publisher = Publisher(
            self.controller,
            self._master_key,
            nodes=self._eligible_nodes,
            consensus=lambda: consensus.current if consensus is not None else None,
            clock=self._clock,
            rng=self._rng,
            token_bytes=self._token_bytes,
            settings=PublisherSettings(
                max_intro_points=self.cfg.publish.max_intro_points,
                republish_min_s=self.cfg.publish.republish_min_s,
                republish_max_s=self.cfg.publish.republish_max_s,
            ),
            testing_tor_network=self._testing_tor_network,
        )
        self._publisher_feed = PublisherMetricsFeed(self.metrics)
        self._publisher_task = tg.create_task(self._publisher.run(), name="publisher")
        log.info("publisher started")

    async def _stop_publisher(self) -> None:
        task, self._publisher_task = self._publisher_task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        log.info("publisher stopped")

    def _eligible_nodes(self) -> list[NodeIntroPoints[IntroPoint]]:
        """Every alive, serving, non-draining node's intro points, as the publisher wants them."""
        if self._cluster is None:
            return []
        out: list[NodeIntroPoints[IntroPoint]] = []
        for node_id, intro in sorted(self._cluster.intro_point_sets(eligible_only=True).items()):
            ips: list[IntroPoint] = []
            for entry in intro.entries:
                try:
                    ips.append(decode_intro_point_wire(entry))
                except HsError as exc:
                    if node_id not in self._bad_peer_entries:
                        self._bad_peer_entries.add(node_id)
                        log.warning("ignoring a bad intro point from peer %s: %s", node_id, exc)
            out.append(NodeIntroPoints(node_id, tuple(ips), _flow_control(intro.flow_control)))
        return out

    async def _wait_descriptor_without_us(self, timeout_s: float) -> tuple[bool, str]:
        """Poll the master descriptor clients get until it holds none of our intro points
        (gives up early when no other node can take over any more)."""
        controller, consensus, address = self.controller, self._consensus, self.address
        if controller is None or consensus is None or address is None:
            return False, "not started"
        ours = {ip.auth_key for ip in self.own_intro_points}
        deadline = self._clock.monotonic() + timeout_s
        detail = "no descriptor fetched yet"
        while self._clock.monotonic() < deadline:
            if self._takeover_candidates() == 0:
                return False, "no other node is alive and serving any more: nothing takes over"
            view = consensus.current
            if view is not None:
                fetched = await fetch_current_descriptor(
                    controller,
                    address,
                    view,
                    testing_tor_network=self._testing_tor_network,
                    clock=self._clock,
                    timeout_s=min(30.0, max(1.0, deadline - self._clock.monotonic())),
                )
                if fetched.descriptor is not None:
                    theirs = {ip.auth_key for ip in fetched.descriptor.intro_points}
                    if not theirs & ours and theirs:
                        return True, (
                            f"the published descriptor holds {len(theirs)} intro points, none "
                            "of this node"
                        )
                    detail = f"{len(theirs & ours)} of our intro points still published"
                else:
                    detail = fetched.error or "fetch failed"
            await asyncio.sleep(2.0)
        return False, f"not verified within {timeout_s:g} s: {detail}"

    # ------------------------------------------------------------------ shutdown

    async def _shutdown(self) -> None:
        log.info("shutting down")
        left = self._draining
        if not self._draining and self._mode.mode is Mode.MULTI and self._takeover_candidates():
            # Hand the service over before going (the reconcile loop still runs meanwhile: if
            # we are the publisher, it steps down and a peer republishes without us).
            leaving = asyncio.ensure_future(
                self._leave_gracefully(
                    "shutting down", verify_timeout_s=self.options.shutdown_verify_timeout_s
                )
            )
            hurry = asyncio.ensure_future(self._hurry.wait())
            await asyncio.wait({leaving, hurry}, return_when=asyncio.FIRST_COMPLETED)
            hurry.cancel()
            if not leaving.done():
                leaving.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await leaving
            elif leaving.exception() is not None:
                log.error("the hand-over failed, stopping anyway: %s", leaving.exception())
            else:
                left = True
        self._stopping = True  # the reconcile loop must not restart what we stop here
        if self._proxy is not None:
            self._proxy.stop_accepting()
        await self._stop_publisher()
        if self._transport is not None:
            await self._transport.leave("shutting down", timeout_s=self.options.leave_timeout_s)
            self._save_state(None)
        if self._proxy is not None and not left:
            await self._proxy.wait_drained(min(10.0, self.options.drain_streams_timeout_s))
        if self.controller is not None:
            self.controller.close()
        if self._managed_tor is not None:
            await self._managed_tor.stop()
        if self._peer_tor is not None:
            await self._peer_tor.stop()


class _Stopped(Exception):
    """Raised inside the TaskGroup to cancel every part after an orderly shutdown."""


def _flow_control(value: str | None) -> FlowControl | None:
    if value is None:
        return None
    versions, _, inc = value.partition(" ")
    try:
        return FlowControl(versions, int(inc))
    except (ValueError, HsError):
        return None


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
