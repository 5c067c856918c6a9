"""Picking a target for each incoming stream: weighted least-connections. Pure.

Order of candidates for one stream (the proxy tries them in this order until one connects):

1. targets whose probes say ``HEALTHY``, then those still ``UNKNOWN`` (no probe finished yet);
2. within a tier, the lowest ``active / weight`` first (weighted least-connections, as HAProxy's
   ``balance leastconn``); ties go to the lowest *virtual time*, which advances by ``1 / weight``
   on each pick, so sequential short streams are spread in proportion to the weights
   (a smooth weighted round-robin);
3. ``UNHEALTHY`` targets last, only if ``fail_open`` (a probe can be wrong; a stream that would
   otherwise fail may as well try them).

Passive health between probes: a target the proxy failed to connect to is tried after the others
of its tier for the next ``8 · 2^(failures-1)`` picks (at most 1024) — counted in picks, not time,
so this stays pure — then gets one more chance. Without this, least-connections would send every
stream first to a dead target (it always has the fewest connections). A successful connect, or
the probes calling it healthy, clears the penalty.

A target that comes back (``set_health`` to healthy) has its virtual time raised to the smallest of
the others', so it does not get every stream until it has "caught up".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from onionfleet.node.errors import NodeConfigError
from onionfleet.node.health import HealthState
from onionfleet.node.targets import Target

__all__ = ["Balancer", "TargetLoad"]

_PENALTY_BASE_PICKS = 8
_PENALTY_MAX_PICKS = 1024
_TIER = {HealthState.HEALTHY: 0, HealthState.UNKNOWN: 1, HealthState.UNHEALTHY: 2}


@dataclass(slots=True)
class _Slot:
    target: Target
    index: int
    active: int = 0
    vtime: float = 0.0
    health: HealthState = HealthState.UNKNOWN
    fail_streak: int = 0
    penalized_until: int = 0


@dataclass(frozen=True, slots=True)
class TargetLoad:
    """A snapshot of one target as the balancer sees it."""

    target: Target
    active: int
    health: HealthState


class Balancer:
    """Weighted least-connections over a fixed set of targets (see module docstring)."""

    def __init__(self, targets: Sequence[Target], *, fail_open: bool = True) -> None:
        if not targets:
            raise NodeConfigError("no target configured; add at least one onion or TCP target")
        self._slots: dict[str, _Slot] = {}
        for i, target in enumerate(targets):
            if target.display in self._slots:
                raise NodeConfigError(
                    f"two targets are both named {target.display!r}; give each a distinct name"
                )
            self._slots[target.display] = _Slot(target, i)
        self._fail_open = fail_open
        self._picks = 0

    @property
    def targets(self) -> tuple[Target, ...]:
        return tuple(s.target for s in self._slots.values())

    def set_health(self, target: str, state: HealthState) -> None:
        """Record what the probes say about ``target`` (its display name)."""
        slot = self._slots[target]
        if state is HealthState.HEALTHY and slot.health is not HealthState.HEALTHY:
            others = [s.vtime for s in self._slots.values() if s is not slot]
            if others:
                slot.vtime = max(slot.vtime, min(others))
        if state is HealthState.HEALTHY:
            slot.fail_streak = 0
            slot.penalized_until = 0
        slot.health = state

    def candidates(self) -> list[Target]:
        """Targets in the order to try them for the next stream (may be empty if none fit)."""
        slots = [
            s
            for s in self._slots.values()
            if self._fail_open or s.health is not HealthState.UNHEALTHY
        ]
        picks = self._picks
        slots.sort(
            key=lambda s: (
                _TIER[s.health],
                picks < s.penalized_until,
                s.active / s.target.weight,
                s.vtime,
                s.index,
            )
        )
        return [s.target for s in slots]

    def acquire(self, target: Target) -> None:
        """A stream starts using ``target`` (call :meth:`release` exactly once when it ends)."""
        slot = self._slots[target.display]
        slot.active += 1
        slot.vtime += 1.0 / slot.target.weight
        self._picks += 1

    def report_connect_failure(self, target: Target) -> None:
        """Connecting to ``target`` failed: try it after the others for a while (see above)."""
        slot = self._slots[target.display]
        slot.fail_streak += 1
        penalty = min(_PENALTY_BASE_PICKS << min(slot.fail_streak - 1, 16), _PENALTY_MAX_PICKS)
        slot.penalized_until = self._picks + penalty

    def report_connect_success(self, target: Target) -> None:
        """Connecting to ``target`` worked: clear any connect-failure penalty."""
        slot = self._slots[target.display]
        slot.fail_streak = 0
        slot.penalized_until = 0

    def release(self, target: Target) -> None:
        slot = self._slots[target.display]
        if slot.active > 0:
            slot.active -= 1

    def loads(self) -> list[TargetLoad]:
        return [TargetLoad(s.target, s.active, s.health) for s in self._slots.values()]

    @property
    def healthy_count(self) -> int:
        return sum(1 for s in self._slots.values() if s.health is HealthState.HEALTHY)
