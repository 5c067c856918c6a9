"""Target health: probe specification, the rise/fall state machine and the node verdict. Pure.

The asyncio side (sending probes) is :mod:`onionfleet.node.prober`. Here, a :class:`ProbeResult`
goes in and a :class:`HealthChanged` event (or nothing) comes out; tests need no sockets and no
sleeps.

Rise/fall semantics (HAProxy's ``rise``/``fall``, ``check`` in haproxy's configuration manual):

* a target starts ``UNKNOWN``; the first successful probe makes it ``HEALTHY`` (at start-up one
  success is enough evidence), ``fall`` consecutive failures make it ``UNHEALTHY``;
* ``HEALTHY`` → ``UNHEALTHY`` after ``fall`` consecutive failures;
* ``UNHEALTHY`` → ``HEALTHY`` after ``rise`` consecutive successes.

A failure in between resets the success streak and vice versa, so one lost circuit (tor circuits
fail now and then: seeds/CHALLENGES.md item 5) does not flap a target when ``fall`` > 1.

The node verdict (:func:`node_verdict`): ``serving = tor bootstrapped ∧ ≥ 1 intro point
established ∧ ≥ 1 healthy target``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from onionfleet.node.errors import NodeConfigError
from onionfleet.node.httpcheck import build_get_request

__all__ = [
    "HealthBoard",
    "HealthChanged",
    "HealthState",
    "NodeVerdict",
    "ProbeResult",
    "ProbeSpec",
    "TargetHealth",
    "node_verdict",
]


class HealthState(enum.Enum):
    """What the probes currently say about one target."""

    UNKNOWN = "unknown"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    """How to probe targets (one spec for all targets of a node).

    ``expected_statuses``: HTTP status codes that count as healthy. ``body_regex``: if set, the
    first ``max_body_bytes`` of the body (decoded as UTF-8, errors replaced) must match it
    (``re.search``). ``new_circuit_per_probe``: give tor a fresh random SOCKS username/password for
    every probe (``IsolateSOCKSAuth``), so one bad circuit is not reused by every probe.
    ``tls``: send the request over TLS (HTTPS); ``tls_verify`` checks the certificate (onion
    targets usually have none that verifies: default off for them is the operator's choice).
    ``host_header``: the Host header; empty means the target's host (onion address or host).
    """

    path: str = "/"
    expected_statuses: frozenset[int] = frozenset({200})
    body_regex: str | None = None
    connect_timeout_s: float = 30.0
    read_timeout_s: float = 10.0
    interval_s: float = 10.0
    rise: int = 2
    fall: int = 3
    new_circuit_per_probe: bool = True
    tls: bool = False
    tls_verify: bool = True
    host_header: str = ""
    max_body_bytes: int = 64 * 1024
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        build_get_request(self.host_header or "probe.invalid", self.path)  # validates path/host
        if not self.expected_statuses or not all(
            isinstance(s, int) and 100 <= s <= 999 for s in self.expected_statuses
        ):
            raise NodeConfigError(
                f"probe expected_statuses {sorted(self.expected_statuses)!r} must be a non-empty "
                "set of HTTP status codes (100..999)"
            )
        for name in ("connect_timeout_s", "read_timeout_s", "interval_s"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0 < value < 86400:
                raise NodeConfigError(f"probe {name} {value!r} must be a number of seconds > 0")
        for name in ("rise", "fall"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 100:
                raise NodeConfigError(f"probe {name} {value!r} must be an integer in 1..100")
        if not 0 <= self.max_body_bytes <= 16 * 1024 * 1024:
            raise NodeConfigError("probe max_body_bytes must be in 0..16 MiB")
        pattern = None
        if self.body_regex is not None:
            try:
                pattern = re.compile(self.body_regex)
            except re.error as exc:
                raise NodeConfigError(
                    f"probe body_regex {self.body_regex!r} is not a valid regular expression: {exc}"
                ) from exc
        object.__setattr__(self, "_pattern", pattern)

    def body_matches(self, body: bytes) -> bool:
        """Whether the body satisfies ``body_regex`` (always true without one)."""
        if self._pattern is None:
            return True
        return self._pattern.search(body.decode("utf-8", errors="replace")) is not None


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """The outcome of one probe of one target (``target`` is the target's display name)."""

    target: str
    ok: bool
    reason: str
    at_s: float
    latency_s: float = 0.0
    status: int | None = None


@dataclass(frozen=True, slots=True)
class HealthChanged:
    """Event: a target's health state changed (``reason`` is the deciding probe's reason)."""

    target: str
    old: HealthState
    new: HealthState
    reason: str
    at_s: float


@dataclass(slots=True)
class TargetHealth:
    """The rise/fall state machine of one target (see module docstring)."""

    target: str
    rise: int
    fall: int
    state: HealthState = HealthState.UNKNOWN
    successes: int = 0
    failures: int = 0
    last: ProbeResult | None = None

    def observe(self, result: ProbeResult) -> HealthChanged | None:
        """Feed one probe result; return the state change it caused, if any."""
        self.last = result
        if result.ok:
            self.successes += 1
            self.failures = 0
        else:
            self.failures += 1
            self.successes = 0
        old = self.state
        new = old
        if old is HealthState.UNKNOWN:
            if self.successes >= 1:
                new = HealthState.HEALTHY
            elif self.failures >= self.fall:
                new = HealthState.UNHEALTHY
        elif old is HealthState.HEALTHY:
            if self.failures >= self.fall:
                new = HealthState.UNHEALTHY
        elif self.successes >= self.rise:
            new = HealthState.HEALTHY
        if new is old:
            return None
        self.state = new
        return HealthChanged(self.target, old, new, result.reason, result.at_s)


class HealthBoard:
    """The health of every target of a node (keyed by the targets' display names)."""

    def __init__(self, targets: Iterable[str], *, rise: int, fall: int) -> None:
        self._machines: dict[str, TargetHealth] = {}
        for name in targets:
            if name in self._machines:
                raise NodeConfigError(
                    f"two targets are both named {name!r}; give each target a distinct name"
                )
            self._machines[name] = TargetHealth(name, rise, fall)

    def observe(self, result: ProbeResult) -> HealthChanged | None:
        machine = self._machines.get(result.target)
        if machine is None:
            raise KeyError(result.target)
        return machine.observe(result)

    def state(self, target: str) -> HealthState:
        return self._machines[target].state

    def states(self) -> dict[str, HealthState]:
        return {name: m.state for name, m in self._machines.items()}

    def last_result(self, target: str) -> ProbeResult | None:
        return self._machines[target].last

    @property
    def healthy_count(self) -> int:
        return sum(1 for m in self._machines.values() if m.state is HealthState.HEALTHY)


@dataclass(frozen=True, slots=True)
class NodeVerdict:
    """Whether this node should be in the merged descriptor, and why (for logs and status)."""

    serving: bool
    reason: str


def node_verdict(
    *, tor_bootstrapped: bool, intro_points_established: int, healthy_targets: int
) -> NodeVerdict:
    """``serving = tor_bootstrapped ∧ intro_points_established ≥ 1 ∧ healthy_targets ≥ 1``."""
    problems = []
    if not tor_bootstrapped:
        problems.append("tor is not bootstrapped")
    if intro_points_established < 1:
        problems.append("no intro point established")
    if healthy_targets < 1:
        problems.append("no healthy target")
    if problems:
        return NodeVerdict(False, "not serving: " + "; ".join(problems))
    return NodeVerdict(
        True,
        f"serving: tor bootstrapped, {intro_points_established} intro point(s), "
        f"{healthy_targets} healthy target(s)",
    )
