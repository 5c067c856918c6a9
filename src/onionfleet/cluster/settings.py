"""Cluster timing and identity settings for one node (mirrors config ``[node]``/``[cluster]``)."""

from __future__ import annotations

from dataclasses import dataclass

from onionfleet.cluster.errors import LocalPeerProtocolError
from onionfleet.cluster.messages import (
    MAX_ADDRESS_BYTES,
    MAX_PRIORITY,
    WireGuardIdentity,
    check_node_id,
)
from onionfleet.errors import ConfigError

__all__ = ["ClusterSettings"]


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """One node's identity and timers.

    * A peer is *suspect* after ``suspect_after`` missed heartbeat intervals, *dead* after
      ``dead_after`` (config ``cluster.dead_after``), forgotten ``forget_after_s`` after it was last
      heard. The publisher's lease lasts ``lease_s = dead_after * heartbeat_interval_s`` from the
      moment a follower receives its heartbeat (a local monotonic deadline), so the lease lapses
      exactly when its holder is declared dead.
    * A follower takes over only ``lease_grace_s`` (config ``cluster.lease_grace_s``) after the
      lease lapsed. ``handover_delay_s`` (default: one heartbeat interval) is how long a better
      candidate must have been alive, serving and not draining before the incumbent hands over.
    * ``seeds`` are peer addresses to say Hello to until a live peer is known there (join).
    * ``wireguard`` is this node's WireGuard identity, sent in every heartbeat (config
      ``[wireguard]`` with ``manage = true``); None: the node announces none.
    """

    node_id: str
    address: str
    priority: int = 100
    heartbeat_interval_s: float = 2.0
    suspect_after: int = 2
    dead_after: int = 3
    lease_grace_s: float = 2.0
    handover_delay_s: float | None = None
    forget_after_s: float = 60.0
    max_clock_skew_s: float = 30.0
    seeds: tuple[str, ...] = ()
    wireguard: WireGuardIdentity | None = None

    def __post_init__(self) -> None:
        try:
            check_node_id(self.node_id)
        except LocalPeerProtocolError as exc:
            raise ConfigError(str(exc), key_path="node.id") from exc
        if not self.address or len(self.address.encode()) > MAX_ADDRESS_BYTES:
            raise ConfigError("the advertised peer address is empty or too long",
                              key_path="cluster.advertise")
        if not 0 <= self.priority <= MAX_PRIORITY:
            raise ConfigError(f"priority {self.priority} out of range", key_path="node.priority")
        if not 0 < self.heartbeat_interval_s <= 600:
            raise ConfigError("must be in (0, 600] s", key_path="cluster.heartbeat_interval_s")
        if not 1 <= self.suspect_after < self.dead_after:
            raise ConfigError(
                f"suspect_after ({self.suspect_after}) must be >= 1 and below dead_after "
                f"({self.dead_after})",
                key_path="cluster.dead_after",
            )
        if self.lease_grace_s < 0:
            raise ConfigError("must be >= 0 s", key_path="cluster.lease_grace_s")
        if self.handover_delay_s is not None and self.handover_delay_s < 0:
            raise ConfigError("must be >= 0 s", key_path="cluster.handover_delay_s")
        if self.forget_after_s <= self.dead_after * self.heartbeat_interval_s:
            raise ConfigError("must exceed dead_after heartbeat intervals",
                              key_path="cluster.forget_after_s")
        if self.forget_after_s <= self.max_clock_skew_s:
            # A forgotten sender's replay window is dropped; its old frames must be too old by then.
            raise ConfigError("must exceed max_clock_skew_s", key_path="cluster.forget_after_s")
        if not self.max_clock_skew_s > 0:
            raise ConfigError("must be > 0 s", key_path="cluster.max_clock_skew_s")

    @property
    def lease_s(self) -> float:
        return self.dead_after * self.heartbeat_interval_s

    @property
    def suspect_s(self) -> float:
        return self.suspect_after * self.heartbeat_interval_s

    @property
    def handover_s(self) -> float:
        if self.handover_delay_s is None:
            return self.heartbeat_interval_s
        return self.handover_delay_s
