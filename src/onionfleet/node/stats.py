"""Counters of the reverse proxy, read by the metrics layer.

:class:`ProxyStats` is the live, mutable counter object the proxy updates (only from the event
loop thread); :meth:`ProxyStats.snapshot` returns frozen values for a metrics scrape or a status
line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ProxyStats", "ProxyStatsSnapshot", "TargetStats", "TargetStatsSnapshot"]


@dataclass(frozen=True, slots=True)
class TargetStatsSnapshot:
    """Counters of one target (by display name)."""

    target: str
    active: int
    connections_total: int
    connect_failures_total: int
    bytes_to_target: int
    bytes_from_target: int


@dataclass(slots=True)
class TargetStats:
    """Live counters of one target."""

    active: int = 0
    connections_total: int = 0
    connect_failures_total: int = 0
    bytes_to_target: int = 0
    bytes_from_target: int = 0


@dataclass(frozen=True, slots=True)
class ProxyStatsSnapshot:
    """All proxy counters at one instant. ``*_total`` only grow; ``active`` is a gauge."""

    active: int
    accepted_total: int
    refused_overload_total: int
    completed_total: int
    no_target_total: int
    header_errors_total: int
    idle_timeouts_total: int
    client_resets_total: int
    accept_errors_total: int
    bytes_client_to_target: int
    bytes_target_to_client: int
    targets: tuple[TargetStatsSnapshot, ...]


@dataclass(slots=True)
class ProxyStats:
    """Live proxy counters (see :class:`ProxyStatsSnapshot` for their meaning)."""

    active: int = 0
    accepted_total: int = 0
    refused_overload_total: int = 0
    completed_total: int = 0
    no_target_total: int = 0
    header_errors_total: int = 0
    idle_timeouts_total: int = 0
    client_resets_total: int = 0
    accept_errors_total: int = 0
    bytes_client_to_target: int = 0
    bytes_target_to_client: int = 0
    targets: dict[str, TargetStats] = field(default_factory=dict)

    def target(self, name: str) -> TargetStats:
        stats = self.targets.get(name)
        if stats is None:
            stats = self.targets[name] = TargetStats()
        return stats

    def snapshot(self) -> ProxyStatsSnapshot:
        return ProxyStatsSnapshot(
            active=self.active,
            accepted_total=self.accepted_total,
            refused_overload_total=self.refused_overload_total,
            completed_total=self.completed_total,
            no_target_total=self.no_target_total,
            header_errors_total=self.header_errors_total,
            idle_timeouts_total=self.idle_timeouts_total,
            client_resets_total=self.client_resets_total,
            accept_errors_total=self.accept_errors_total,
            bytes_client_to_target=self.bytes_client_to_target,
            bytes_target_to_client=self.bytes_target_to_client,
            targets=tuple(
                TargetStatsSnapshot(
                    target=name,
                    active=t.active,
                    connections_total=t.connections_total,
                    connect_failures_total=t.connect_failures_total,
                    bytes_to_target=t.bytes_to_target,
                    bytes_from_target=t.bytes_from_target,
                )
                for name, t in sorted(self.targets.items())
            ),
        )
