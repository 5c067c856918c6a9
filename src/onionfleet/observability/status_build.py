"""Build status-document sections from the components' own snapshots.

The daemon composes a :class:`~onionfleet.observability.status.StatusDocument` in its status
provider callback; these functions turn each component's frozen snapshot into its section, so the
daemon only wires them together. Monotonic times in snapshots are turned into Unix times (or
"seconds ago") with the ``now_mono``/``now_wall`` pair the caller reads once from its clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from onionfleet.cluster.membership import PeerView
from onionfleet.cluster.messages import Role
from onionfleet.node.health import HealthState, ProbeResult
from onionfleet.node.stats import ProxyStatsSnapshot, TargetStatsSnapshot
from onionfleet.observability.redaction import redact_onion_addresses
from onionfleet.observability.status import (
    ClusterMember,
    ClusterStatus,
    DescriptorReport,
    HsDirCheck,
    HsDirUploadReport,
    ProxyReport,
    PublisherReport,
    TargetReport,
)
from onionfleet.publish.status import DescriptorStatus, PublisherStatus

__all__ = [
    "cluster_status",
    "member_from_peer",
    "proxy_report",
    "publisher_report",
    "role_name",
    "target_reports",
]


def _wall_of(mono: float | None, now_mono: float, now_wall: float) -> float | None:
    return None if mono is None else now_wall - (now_mono - mono)


def role_name(role: Role) -> str:
    """``publisher`` or ``follower``."""
    return "publisher" if role is Role.PUBLISHER else "follower"


def member_from_peer(view: PeerView, *, intro_points: int | None, now_mono: float) -> ClusterMember:
    """A peer's row; ``intro_points`` from the peer's intro-point set (``None``: not known)."""
    return ClusterMember(
        node_id=view.node_id,
        state=view.status.value,
        role=role_name(view.role),
        serving=view.serving,
        draining=view.draining,
        health_reason=view.health_reason,
        intro_points=intro_points,
        last_seen_s_ago=None if view.last_heard is None else max(0.0, now_mono - view.last_heard),
        address=redact_onion_addresses(view.address),
    )


def cluster_status(
    *,
    me: ClusterMember,
    peers: Iterable[PeerView],
    intro_points: Mapping[str, int],
    term: int,
    publisher: str | None,
    rejected: Mapping[str, int],
    now_mono: float,
) -> ClusterStatus:
    """The cluster section: this node's row ``me`` first, then each peer by node id.

    ``intro_points`` counts each node's known intro points (from
    ``ClusterNode.intro_point_sets(eligible_only=False)``: ``len(s.entries)``); ``rejected`` is
    ``RejectCounters.as_dict()``.
    """
    rows = [me]
    alive = 0
    for view in sorted(peers, key=lambda v: v.node_id):
        if view.status.value in ("alive", "suspect"):
            alive += 1
        rows.append(
            member_from_peer(view, intro_points=intro_points.get(view.node_id), now_mono=now_mono)
        )
    return ClusterStatus(
        term=term,
        publisher=publisher,
        peers_alive=alive,
        members=tuple(rows),
        rejected_messages=dict(rejected),
    )


def _descriptor_report(
    desc: DescriptorStatus, now_mono: float, now_wall: float
) -> DescriptorReport:
    return DescriptorReport(
        label=desc.label,
        time_period=desc.time_period,
        revision_counter=desc.revision_counter,
        intro_points=desc.intro_point_count,
        size_bytes=desc.size_bytes,
        uploaded=desc.uploaded_count,
        responsible=len(desc.uploads),
        verification=desc.verification.value,
        uploads=tuple(
            HsDirUploadReport(u.hsdir_fingerprint, u.state.value, u.attempts, u.last_reason)
            for u in desc.uploads
        ),
        verified_at_wall=_wall_of(desc.verified_at_mono, now_mono, now_wall),
        verification_results=tuple(
            HsDirCheck(r.hsdir_fingerprint, r.outcome.value, r.detail)
            for r in desc.verification_results
        ),
    )


def publisher_report(
    status: PublisherStatus, *, now_mono: float, now_wall: float
) -> PublisherReport:
    """The publisher section from ``Publisher.status()``."""
    last = status.last
    return PublisherReport(
        publishes=status.publishes,
        last_publish_wall=None if last is None else last.published_at_wall,
        last_publish_reasons=() if last is None else tuple(last.reasons),
        intro_points_per_node={} if last is None else dict(last.per_node),
        descriptors=()
        if last is None
        else tuple(_descriptor_report(d, now_mono, now_wall) for d in last.descriptors),
        waiting_for=status.waiting_for,
        last_error=status.last_error,
        next_periodic_in_s=status.next_periodic_in_s,
    )


def proxy_report(snap: ProxyStatsSnapshot) -> ProxyReport:
    """The proxy section from ``ProxyStats.snapshot()``."""
    return ProxyReport(
        active=snap.active,
        accepted_total=snap.accepted_total,
        completed_total=snap.completed_total,
        bytes_to_targets=snap.bytes_client_to_target,
        bytes_to_clients=snap.bytes_target_to_client,
        errors={
            "refused_overload": snap.refused_overload_total,
            "no_target": snap.no_target_total,
            "header_error": snap.header_errors_total,
            "idle_timeout": snap.idle_timeouts_total,
            "client_reset": snap.client_resets_total,
            "accept_error": snap.accept_errors_total,
        },
    )


def target_reports(
    health: Mapping[str, HealthState],
    *,
    last_probes: Mapping[str, ProbeResult | None],
    proxy: ProxyStatsSnapshot | None,
) -> tuple[TargetReport, ...]:
    """One row per target (keys: display names, e.g. ``HealthBoard.states()``)."""
    per_target: dict[str, TargetStatsSnapshot] = {}
    if proxy is not None:
        per_target = {t.target: t for t in proxy.targets}
    rows = []
    for name in sorted(health):
        probe = last_probes.get(name)
        counters = per_target.get(name)
        rows.append(
            TargetReport(
                target=redact_onion_addresses(name),
                health=health[name].value,
                last_probe_ok=None if probe is None else probe.ok,
                last_probe_reason=None if probe is None else redact_onion_addresses(probe.reason),
                last_probe_latency_s=None if probe is None else probe.latency_s,
                active=0 if counters is None else counters.active,
                connections_total=0 if counters is None else counters.connections_total,
                connect_failures_total=0 if counters is None else counters.connect_failures_total,
            )
        )
    return tuple(rows)
