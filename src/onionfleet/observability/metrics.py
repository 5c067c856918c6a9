"""Prometheus metrics of one node, in onionprobe's naming style.

``onion_service_*`` is the onion service as this node sees it (descriptors, HSDir uploads,
verification, intro points, proxy traffic, targets); ``onionfleet_*`` is cluster internals (role,
term, mode, peers, rejected peer messages, tor bootstrap). Units are in the names (``_seconds``,
``_bytes``), counters end in ``_total`` (onionprobe ``packages/onionprobe/metrics.py``;
shared/research/anchors.md §4). docs/metrics.md documents every family with example alerts.

House rule 7: no global registry. :class:`Metrics` creates every family once on the
:class:`~prometheus_client.CollectorRegistry` it is given and offers typed update methods that
take plain values, so the daemon feeds it from whatever snapshot it holds. Live counter objects
(the proxy's :class:`~onionfleet.node.stats.ProxyStats`, the cluster's ``RejectCounters``) are
read at scrape time by custom collectors (:meth:`Metrics.watch_proxy`,
:meth:`Metrics.watch_peer_rejects`): nothing is copied, so nothing is counted twice.

Label values are bounded: descriptor labels are ``first``/``second``, upload failure reasons come
from tor's fixed set (control-spec HS_DESC ``REASON=``; anything else is ``other``), HSDir
fingerprints never appear. Target labels are the targets' redacted display names, and any full
onion address that slips into a label is redacted again here (``???abc.onion``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Final, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from onionfleet import __version__
from onionfleet.clock import Clock
from onionfleet.node.health import HealthState
from onionfleet.node.stats import ProxyStatsSnapshot
from onionfleet.observability.redaction import redact_onion_addresses
from onionfleet.publish.mode import Mode
from onionfleet.publish.status import VerificationState

__all__ = [
    "DESCRIPTOR_LABELS",
    "HEALTH_STATES",
    "MODES",
    "PUBLISH_RESULTS",
    "UPLOAD_FAILURE_REASONS",
    "VERIFICATION_STATES",
    "DescriptorLabel",
    "Metrics",
    "normalise_upload_reason",
]

DescriptorLabel = Literal["first", "second"]
DESCRIPTOR_LABELS: Final[tuple[str, ...]] = ("first", "second")

#: How a publish of one descriptor ended (``onion_service_descriptor_publish_total{result}``).
PUBLISH_RESULTS: Final[tuple[str, ...]] = (
    "all_uploaded",  # every responsible HSDir took it
    "partial",  # some HSDirs took it, the others failed for good
    "none_uploaded",  # no HSDir took it
    "superseded",  # a newer publish started before this one settled
)

#: HS_DESC FAILED ``REASON=`` values tor can report (control-spec "HS_DESC"; tor
#: ``hs_control.c``/``control_events.c:rend_hsaddress_str_or_unknown``), plus ``TIMEOUT`` (no
#: outcome in time, :class:`onionfleet.publish.uploads.UploadRound`). Others map to ``other``.
UPLOAD_FAILURE_REASONS: Final[frozenset[str]] = frozenset(
    {
        "BAD_DESC",
        "QUERY_REJECTED",
        "UPLOAD_REJECTED",
        "NOT_FOUND",
        "UNEXPECTED",
        "QUERY_NO_HSDIR",
        "QUERY_RATE_LIMITED",
        "TIMEOUT",
    }
)

#: Label values of the component enums (plain strings in this API, read from the enums so they
#: never drift): :class:`~onionfleet.publish.status.VerificationState`,
#: :class:`~onionfleet.node.health.HealthState`, :class:`~onionfleet.publish.mode.Mode`.
VERIFICATION_STATES: Final[tuple[str, ...]] = tuple(s.value for s in VerificationState)
HEALTH_STATES: Final[tuple[str, ...]] = tuple(s.value for s in HealthState)
MODES: Final[tuple[str, ...]] = tuple(m.value for m in Mode)

#: Probe latency buckets: a probe through tor takes from ~0.1 s to tens of seconds.
PROBE_LATENCY_BUCKETS_S: Final[tuple[float, ...]] = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, math.inf,
)  # fmt: skip

_PROXY_ERROR_KINDS: Final[tuple[tuple[str, str], ...]] = (
    ("refused_overload", "refused_overload_total"),
    ("no_target", "no_target_total"),
    ("header_error", "header_errors_total"),
    ("idle_timeout", "idle_timeouts_total"),
    ("client_reset", "client_resets_total"),
    ("accept_error", "accept_errors_total"),
)


def normalise_upload_reason(reason: str | None) -> str:
    """The bounded label value for a failure reason: tor's name, or ``other``."""
    if reason is None:
        return "other"
    name = reason.strip().upper().removeprefix("REASON=")
    return name if name in UPLOAD_FAILURE_REASONS else "other"


def _check_descriptor(descriptor: str) -> str:
    if descriptor not in DESCRIPTOR_LABELS:
        raise ValueError(f"descriptor label must be 'first' or 'second', got {descriptor!r}")
    return descriptor


def _check_choice(value: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise ValueError(f"{what} must be one of {', '.join(choices)}; got {value!r}")
    return value


def _label(value: str) -> str:
    """A free-form label value (node id, target name) with onion addresses redacted."""
    return redact_onion_addresses(value)


class _ProxyCollector(Collector):
    """Reads the live proxy counters at scrape time (no copy, no double counting)."""

    def __init__(self) -> None:
        self.source: Callable[[], ProxyStatsSnapshot] | None = None

    def describe(self) -> Iterable[Metric]:
        return self._families(None)

    def collect(self) -> Iterable[Metric]:
        if self.source is None:
            return []
        return self._families(self.source())

    @staticmethod
    def _families(snap: ProxyStatsSnapshot | None) -> list[Metric]:
        active = GaugeMetricFamily(
            "onion_service_proxy_connections_active",
            "Client streams the reverse proxy is relaying now.",
        )
        accepted = CounterMetricFamily(
            "onion_service_proxy_connections",
            "Client streams accepted by the reverse proxy.",
        )
        completed = CounterMetricFamily(
            "onion_service_proxy_connections_completed",
            "Client streams relayed to a target and closed normally.",
        )
        errors = CounterMetricFamily(
            "onion_service_proxy_errors",
            "Client streams that ended in an error, by kind.",
            labels=["kind"],
        )
        proxy_bytes = CounterMetricFamily(
            "onion_service_proxy_bytes",
            "Bytes relayed by the reverse proxy, by direction.",
            labels=["direction"],
        )
        t_active = GaugeMetricFamily(
            "onion_service_target_connections_active",
            "Streams open to each target now.",
            labels=["target"],
        )
        t_total = CounterMetricFamily(
            "onion_service_target_connections",
            "Streams opened to each target.",
            labels=["target"],
        )
        t_fail = CounterMetricFamily(
            "onion_service_target_connect_failures",
            "Failed attempts to connect to each target.",
            labels=["target"],
        )
        t_bytes = CounterMetricFamily(
            "onion_service_target_bytes",
            "Bytes relayed to and from each target, by direction.",
            labels=["target", "direction"],
        )
        if snap is not None:
            active.add_metric([], snap.active)
            accepted.add_metric([], snap.accepted_total)
            completed.add_metric([], snap.completed_total)
            for kind, attr in _PROXY_ERROR_KINDS:
                errors.add_metric([kind], getattr(snap, attr))
            proxy_bytes.add_metric(["to_target"], snap.bytes_client_to_target)
            proxy_bytes.add_metric(["to_client"], snap.bytes_target_to_client)
            for t in snap.targets:
                name = _label(t.target)
                t_active.add_metric([name], t.active)
                t_total.add_metric([name], t.connections_total)
                t_fail.add_metric([name], t.connect_failures_total)
                t_bytes.add_metric([name, "to_target"], t.bytes_to_target)
                t_bytes.add_metric([name, "from_target"], t.bytes_from_target)
        families: list[Metric] = [active, accepted, completed, errors, proxy_bytes]
        return [*families, t_active, t_total, t_fail, t_bytes]


class _RejectCollector(Collector):
    """Reads the cluster's reject counters (``RejectCounters.as_dict``) at scrape time."""

    def __init__(self) -> None:
        self.source: Callable[[], Mapping[str, int]] | None = None

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    def collect(self) -> Iterable[Metric]:
        if self.source is None:
            return []
        family = self._family()
        for reason, count in sorted(self.source().items()):
            family.add_metric([_label(str(reason))], count)
        return [family]

    @staticmethod
    def _family() -> CounterMetricFamily:
        return CounterMetricFamily(
            "onionfleet_peer_messages_rejected",
            "Peer frames refused, by reason (bad MAC, replay, clock skew, malformed …).",
            labels=["reason"],
        )


class Metrics:
    """Every metric family of one node, registered on ``registry`` (never the global one).

    ``clock.wall()`` is read at scrape time for ``onion_service_descriptor_age_seconds``.
    Update methods take plain values and may be called from the event loop at any time;
    ``ValueError`` for a label value outside its documented set (a programming error).
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        clock: Clock,
        node_id: str,
        version: str = __version__,
    ) -> None:
        self.registry = registry
        self._clock = clock
        r = registry

        def gauge(name: str, doc: str, labels: Iterable[str] = ()) -> Gauge:
            return Gauge(name, doc, labelnames=tuple(labels), registry=r)

        def counter(name: str, doc: str, labels: Iterable[str]) -> Counter:
            return Counter(name, doc, labelnames=tuple(labels), registry=r)

        # -- descriptors and uploads (the publisher's view) --------------------------------
        self._publish_total = counter(
            "onion_service_descriptor_publish_total",
            "Merged-descriptor publishes by this node, per descriptor and how they ended.",
            ("descriptor", "result"),
        )
        self._upload_total = counter(
            "onion_service_descriptor_hsdir_upload_total",
            "Outcomes of uploads to single HSDirs (HS_DESC UPLOADED/FAILED), with tor's reason.",
            ("descriptor", "result", "reason"),
        )
        self._hsdirs_uploaded = gauge(
            "onion_service_descriptor_hsdirs_uploaded",
            "Responsible HSDirs that accepted the last published descriptor.",
            ("descriptor",),
        )
        self._hsdirs_responsible = gauge(
            "onion_service_descriptor_hsdirs_responsible",
            "HSDirs responsible for the last published descriptor.",
            ("descriptor",),
        )
        self._verified = gauge(
            "onion_service_descriptor_verified",
            "1 if the HSDirs serve exactly the descriptor we published, 0 if not (last check).",
            ("descriptor",),
        )
        self._verified_at = gauge(
            "onion_service_descriptor_verification_timestamp_seconds",
            "Unix time of the last finished verification of the descriptor.",
            ("descriptor",),
        )
        self._verification_state = gauge(
            "onion_service_descriptor_verification_state",
            "1 for the descriptor's current verification state, 0 for the others.",
            ("descriptor", "state"),
        )
        self._published_at = gauge(
            "onion_service_descriptor_last_publish_timestamp_seconds",
            "Unix time this node last published the descriptor.",
            ("descriptor",),
        )
        self._age = gauge(
            "onion_service_descriptor_age_seconds",
            "Seconds since this node last published the descriptor (computed at scrape time).",
            ("descriptor",),
        )
        self._revision_counter = gauge(
            "onion_service_descriptor_revision_counter",
            "Revision counter of the last published descriptor.",
            ("descriptor",),
        )
        self._desc_intro_points = gauge(
            "onion_service_descriptor_introduction_points_number",
            "Introduction points in the last published merged descriptor.",
            ("descriptor",),
        )
        self._desc_size = gauge(
            "onion_service_descriptor_size_bytes",
            "Size of the last published descriptor (tor refuses 50000 bytes or more).",
            ("descriptor",),
        )
        self._desc_time_period = gauge(
            "onion_service_descriptor_time_period",
            "Time period number of the last published descriptor.",
            ("descriptor",),
        )
        self._node_intro_points = gauge(
            "onion_service_introduction_points_number",
            "Established introduction points per node, as this node knows them.",
            ("node",),
        )
        # -- targets ----------------------------------------------------------------------
        self._target_healthy = gauge(
            "onion_service_target_healthy",
            "1 if the target is healthy by its probes, 0 if unhealthy or not yet known.",
            ("target",),
        )
        self._target_state = gauge(
            "onion_service_target_state",
            "1 for the target's current health state (unknown, healthy, unhealthy).",
            ("target", "state"),
        )
        self._probes_total = counter(
            "onion_service_target_probes_total",
            "Health probes sent to each target, by result (ok, failed).",
            ("target", "result"),
        )
        self._probe_latency = Histogram(
            "onion_service_target_probe_latency_seconds",
            "Time from probe start to the checked response (or failure).",
            labelnames=("target",),
            buckets=PROBE_LATENCY_BUCKETS_S,
            registry=r,
        )
        # -- node and cluster --------------------------------------------------------------
        self._info = gauge(
            "onionfleet_info", "Always 1; labels name this node and version.", ("node", "version")
        )
        self._info.labels(node=_label(node_id), version=version).set(1)
        self._publisher = gauge(
            "onionfleet_publisher", "1 while this node is the elected publisher."
        )
        self._term = gauge("onionfleet_term", "Highest election term number this node knows.")
        self._publisher_known = gauge(
            "onionfleet_publisher_known",
            "1 if this node knows a live publisher (itself or a peer) in the current term.",
        )
        self._mode = gauge(
            "onionfleet_mode",
            "1 for the current mode: single (tor publishes) or multi (merged descriptor).",
            ("mode",),
        )
        self._draining = gauge("onionfleet_draining", "1 while this node is draining.")
        self._quiesce_closed = Counter(
            "onionfleet_quiesce_intro_circuits_closed_total",
            "Intro circuits this node closed while leaving, so clients introduce elsewhere.",
            registry=r,
        )
        self._quiesce_served = Counter(
            "onionfleet_quiesce_streams_served_total",
            "Streams that arrived and were served while this node quiesced before leaving.",
            registry=r,
        )
        self._serving = gauge(
            "onionfleet_node_serving",
            "1 if this node is fit to serve (tor bootstrapped, intro points, a healthy target).",
        )
        self._peers_alive = gauge("onionfleet_peers_alive", "Peers currently alive (not self).")
        self._peers_known = gauge("onionfleet_peers_known", "Peers known in any state (not self).")
        self._bootstrap = gauge(
            "onionfleet_tor_bootstrap_percent", "tor's bootstrap progress (0..100)."
        )
        self._tor_connected = gauge(
            "onionfleet_tor_control_connected", "1 while the control connection to tor is up."
        )
        self._intro_nodes: set[str] = set()
        self._wg_handshake_age = gauge(
            "onionfleet_wireguard_handshake_age_seconds",
            "Seconds since the last WireGuard handshake with each peer ([wireguard] manage); "
            "+Inf if there never was one.",
            ("peer",),
        )
        self._wg_peers: set[str] = set()
        self._proxy_collector = _ProxyCollector()
        registry.register(self._proxy_collector)
        self._reject_collector = _RejectCollector()
        registry.register(self._reject_collector)
        for descriptor in DESCRIPTOR_LABELS:
            self._upload_total.labels(descriptor, "uploaded", "none")
            for result in PUBLISH_RESULTS:
                self._publish_total.labels(descriptor, result)

    # -- live sources -----------------------------------------------------------------------

    def watch_proxy(self, snapshot: Callable[[], ProxyStatsSnapshot] | None) -> None:
        """Read proxy counters from ``snapshot()`` (e.g. ``ProxyStats.snapshot``) at each scrape."""
        self._proxy_collector.source = snapshot

    def watch_peer_rejects(self, counts: Callable[[], Mapping[str, int]] | None) -> None:
        """Read rejected-frame counts by reason (``RejectCounters.as_dict``) at each scrape."""
        self._reject_collector.source = counts

    # -- publisher ----------------------------------------------------------------------------

    def descriptor_published(
        self,
        descriptor: DescriptorLabel | str,
        *,
        published_at_wall: float,
        revision_counter: int,
        time_period: int,
        intro_points: int,
        size_bytes: int,
        hsdirs_responsible: int,
    ) -> None:
        """A descriptor was built and its uploads started (one call per descriptor)."""
        d = _check_descriptor(descriptor)
        self._published_at.labels(d).set(published_at_wall)
        self._age.labels(d).set_function(lambda: max(0.0, self._clock.wall() - published_at_wall))
        self._revision_counter.labels(d).set(revision_counter)
        self._desc_time_period.labels(d).set(time_period)
        self._desc_intro_points.labels(d).set(intro_points)
        self._desc_size.labels(d).set(size_bytes)
        self._hsdirs_responsible.labels(d).set(hsdirs_responsible)
        self._hsdirs_uploaded.labels(d).set(0)

    def hsdir_upload(
        self, descriptor: DescriptorLabel | str, *, uploaded: bool, reason: str | None = None
    ) -> None:
        """One HSDir's outcome for one upload attempt (tor's HS_DESC UPLOADED/FAILED)."""
        d = _check_descriptor(descriptor)
        if uploaded:
            self._upload_total.labels(d, "uploaded", "none").inc()
        else:
            self._upload_total.labels(d, "failed", normalise_upload_reason(reason)).inc()

    def set_upload_progress(
        self, descriptor: DescriptorLabel | str, *, uploaded: int, responsible: int
    ) -> None:
        """How many of the responsible HSDirs hold the current descriptor."""
        d = _check_descriptor(descriptor)
        self._hsdirs_uploaded.labels(d).set(uploaded)
        self._hsdirs_responsible.labels(d).set(responsible)

    def publish_finished(self, descriptor: DescriptorLabel | str, result: str) -> None:
        """A descriptor's publish settled; ``result`` is one of :data:`PUBLISH_RESULTS`."""
        d = _check_descriptor(descriptor)
        checked = _check_choice(result, PUBLISH_RESULTS, "publish result")
        self._publish_total.labels(d, checked).inc()

    def set_verification(
        self, descriptor: DescriptorLabel | str, state: str, *, finished_at_wall: float | None
    ) -> None:
        """The descriptor's verification state (:data:`VERIFICATION_STATES`).

        ``verified`` sets ``onion_service_descriptor_verified`` to 1, ``mismatch`` and
        ``incomplete`` to 0; the other states (not yet checked) leave the last result alone.
        ``finished_at_wall`` is when the check finished (for verified/mismatch/incomplete).
        """
        d = _check_descriptor(descriptor)
        _check_choice(state, VERIFICATION_STATES, "verification state")
        for s in VERIFICATION_STATES:
            self._verification_state.labels(d, s).set(1 if s == state else 0)
        if state in ("verified", "mismatch", "incomplete"):
            self._verified.labels(d).set(1 if state == "verified" else 0)
            if finished_at_wall is not None:
                self._verified_at.labels(d).set(finished_at_wall)

    def set_intro_points(self, per_node: Mapping[str, int]) -> None:
        """Established intro points per node; nodes missing from ``per_node`` are dropped."""
        wanted = {_label(node): count for node, count in per_node.items()}
        for node in self._intro_nodes - wanted.keys():
            self._node_intro_points.remove(node)
        for node, count in wanted.items():
            self._node_intro_points.labels(node).set(count)
        self._intro_nodes = set(wanted)

    # -- node and cluster -------------------------------------------------------------------

    def set_election(self, *, is_publisher: bool, term: int, publisher_known: bool) -> None:
        self._publisher.set(1 if is_publisher else 0)
        self._term.set(term)
        self._publisher_known.set(1 if publisher_known or is_publisher else 0)

    def set_mode(self, mode: str) -> None:
        """``single`` or ``multi`` (:class:`onionfleet.publish.mode.Mode` values)."""
        _check_choice(mode, MODES, "mode")
        for m in MODES:
            self._mode.labels(m).set(1 if m == mode else 0)

    def set_draining(self, draining: bool) -> None:
        self._draining.set(1 if draining else 0)

    def set_wireguard_handshake_ages(self, ages: Mapping[str, float | None]) -> None:
        """Handshake age per peer node id (``None``: never); peers missing are dropped."""
        wanted = {_label(peer): age for peer, age in ages.items()}
        for peer in self._wg_peers - wanted.keys():
            self._wg_handshake_age.remove(peer)
        for peer, age in wanted.items():
            self._wg_handshake_age.labels(peer).set(math.inf if age is None else age)
        self._wg_peers = set(wanted)

    def observe_quiesce(self, *, closed: int, served: int) -> None:
        """A finished quiescing (node/quiesce.py): intro circuits closed, streams served."""
        self._quiesce_closed.inc(closed)
        self._quiesce_served.inc(served)

    def set_serving(self, serving: bool) -> None:
        self._serving.set(1 if serving else 0)

    def set_peers(self, *, alive: int, known: int) -> None:
        self._peers_alive.set(alive)
        self._peers_known.set(known)

    def set_tor_bootstrap(self, percent: int) -> None:
        if not 0 <= percent <= 100:
            raise ValueError(f"bootstrap percent must be 0..100, got {percent}")
        self._bootstrap.set(percent)

    def set_tor_connected(self, connected: bool) -> None:
        self._tor_connected.set(1 if connected else 0)

    # -- targets ----------------------------------------------------------------------------

    def set_target_health(self, target: str, state: str) -> None:
        """``state`` is a :class:`~onionfleet.node.health.HealthState` value; ``target`` its
        redacted display name."""
        _check_choice(state, HEALTH_STATES, "health state")
        name = _label(target)
        self._target_healthy.labels(name).set(1 if state == "healthy" else 0)
        for s in HEALTH_STATES:
            self._target_state.labels(name, s).set(1 if s == state else 0)

    def observe_probe(self, target: str, *, ok: bool, latency_s: float) -> None:
        """One health probe's outcome and duration."""
        name = _label(target)
        self._probes_total.labels(name, "ok" if ok else "failed").inc()
        self._probe_latency.labels(name).observe(max(0.0, latency_s))
