"""A deterministic cluster simulator (sans-IO; virtual clock; seeded ``random.Random``).

Runs 3–50 :class:`~onionfleet.cluster.node.ClusterNode` instances on a simulated network with
latency and jitter (so messages reorder), loss, duplication, partitions and heals, wall-clock skew
(inside and beyond ``max_clock_skew_s``), crashes and restarts (a new boot id; the last claimed
term number and the known peer addresses survive, as the daemon persists them), drains, health
flips and intro-point changes.
Every message goes through the real codec and MAC (sealed bytes in, :meth:`ClusterNode.receive`
out), so the simulator exercises the wire format too. Each node's monotonic clock has its own
origin, so nothing can compare monotonic times across nodes by accident.

Invariants, checked after every event (``Simulation.run`` raises :class:`InvariantViolated`
naming the seed):

1. **Unique terms.** No term is ever claimed twice (by any node, in any run of it).
2. **Convergence.** When no fault is active and ``settle_s`` has passed since the last fault
   ended (``3 * heartbeat_interval_s + lease_grace_s + 2 * max message delay``: message delay is
   not a fault), exactly one running node is publisher (none if no running node is eligible).
   That publisher is the best eligible node (lowest priority, then node id): hand-overs finish
   within the same bound.
3. **Stability.** During such a calm period the publisher (node and term) never changes; the
   network still has ``jitter_s`` >= 30 % of the heartbeat interval.
4. **Full mesh.** At the first calm step and at the end: every running node knows every other
   running node as alive, and holds each one's current intro-point set.

``bench/cluster.py``, ``tests/property/test_cluster_sim.py`` and later ``onionfleet demo`` use it.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from onionfleet.cluster.actions import Action, BecomePublisher, SendTo, StepDown
from onionfleet.cluster.auth import ClusterToken, MacKey, RejectCounters
from onionfleet.cluster.errors import InvariantViolated, RejectReason
from onionfleet.cluster.messages import IntroPointSet, Term
from onionfleet.cluster.node import ClusterNode
from onionfleet.cluster.settings import ClusterSettings

__all__ = [
    "Crash",
    "Drain",
    "Duplicate",
    "Fault",
    "IntroChange",
    "Loss",
    "Partition",
    "Restart",
    "Scenario",
    "SimReport",
    "Simulation",
    "Skew",
    "Unhealthy",
    "random_scenario",
]

_START_WALL = 1_700_000_000.0


@dataclass(frozen=True, slots=True)
class Crash:
    """Node ``node`` stops at ``at`` (kill -9: no Leave, in-flight messages to it are lost)."""

    at: float
    node: int


@dataclass(frozen=True, slots=True)
class Restart:
    """Node ``node`` starts again at ``at`` with a new boot id."""

    at: float
    node: int


@dataclass(frozen=True, slots=True)
class Partition:
    """From ``at`` to ``until`` only nodes in the same group can talk (nodes in no group: alone)."""

    at: float
    until: float
    groups: tuple[frozenset[int], ...]


@dataclass(frozen=True, slots=True)
class Loss:
    """From ``at`` to ``until`` each message is lost with probability ``rate``."""

    at: float
    until: float
    rate: float


@dataclass(frozen=True, slots=True)
class Duplicate:
    """From ``at`` to ``until`` each message is delivered twice with probability ``rate``."""

    at: float
    until: float
    rate: float


@dataclass(frozen=True, slots=True)
class Skew:
    """From ``at`` to ``until`` node ``node``'s wall clock is off by ``skew_s``."""

    at: float
    until: float
    node: int
    skew_s: float


@dataclass(frozen=True, slots=True)
class Drain:
    """From ``at`` to ``until`` node ``node`` drains."""

    at: float
    until: float
    node: int


@dataclass(frozen=True, slots=True)
class Unhealthy:
    """From ``at`` to ``until`` node ``node``'s health verdict is "not serving"."""

    at: float
    until: float
    node: int


@dataclass(frozen=True, slots=True)
class IntroChange:
    """At ``at`` node ``node`` gets a new intro-point set (not a fault)."""

    at: float
    node: int


Fault = Crash | Restart | Partition | Loss | Duplicate | Skew | Drain | Unhealthy | IntroChange


@dataclass(frozen=True, slots=True)
class Scenario:
    """Everything a run depends on; the same scenario always gives the same run."""

    seed: int
    n_nodes: int
    duration_s: float
    priorities: tuple[int, ...]
    seeds_of: tuple[tuple[int, ...], ...]  # node i greets the addresses of these nodes
    start_at: tuple[float, ...]
    faults: tuple[Fault, ...] = ()
    heartbeat_interval_s: float = 2.0
    dead_after: int = 3
    lease_grace_s: float = 2.0
    max_clock_skew_s: float = 30.0
    latency_s: float = 0.02
    jitter_s: float = 0.6
    intro_entries: int = 3
    intro_entry_bytes: int = 200

    @property
    def max_delay_s(self) -> float:
        return self.latency_s + self.jitter_s

    @property
    def settle_s(self) -> float:
        return 3 * self.heartbeat_interval_s + self.lease_grace_s + 2 * self.max_delay_s

    def settings_for(self, i: int) -> ClusterSettings:
        return ClusterSettings(
            node_id=node_name(i),
            address=node_address(i),
            priority=self.priorities[i],
            heartbeat_interval_s=self.heartbeat_interval_s,
            dead_after=self.dead_after,
            lease_grace_s=self.lease_grace_s,
            max_clock_skew_s=self.max_clock_skew_s,
            seeds=tuple(node_address(j) for j in self.seeds_of[i]),
        )


def node_name(i: int) -> str:
    return f"n{i:02d}"


def node_address(i: int) -> str:
    """A label only: the simulator never opens a socket (loopback-shaped, like the real tests)."""
    return f"127.0.0.1:{17800 + i}"


@dataclass(slots=True)
class SimReport:
    """What a run measured."""

    scenario: Scenario
    steps: int = 0
    frames_delivered: int = 0
    bytes_sent: list[int] = field(default_factory=list)
    frames_sent: list[int] = field(default_factory=list)
    rejects: dict[str, int] = field(default_factory=dict)
    claims: list[tuple[float, int, Term]] = field(default_factory=list)
    last_delivery: dict[tuple[int, int], float] = field(default_factory=dict)  # (from, to)
    calm_checks: int = 0
    # Longest time from the end of the last fault (a node start counts) to the last claim, over
    # the calm periods reached: how long convergence took.
    max_settle_s: float = 0.0
    final_publisher: int | None = None


class _NodeClock:
    __slots__ = ("_sim", "mono_offset", "skew_s")

    def __init__(self, sim: Simulation, mono_offset: float) -> None:
        self._sim = sim
        self.mono_offset = mono_offset
        self.skew_s = 0.0

    def monotonic(self) -> float:
        return self._sim.now + self.mono_offset

    def wall(self) -> float:
        return _START_WALL + self._sim.now + self.skew_s


_WAKE, _DELIVER, _FAULT_START, _FAULT_END = 0, 1, 2, 3


class Simulation:
    """Runs one :class:`Scenario`; ``observer(sim, node_index, actions)`` sees every action."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        check: bool = True,
        observer: Callable[[Simulation, int, list[Action]], None] | None = None,
    ) -> None:
        self.scenario = scenario
        self.check = check
        self.observer = observer
        self.rng = random.Random(scenario.seed)
        self.now = 0.0
        n = scenario.n_nodes
        self.mac_key: MacKey = ClusterToken(self.rng.randbytes(32)).derive_mac_key()
        self.nodes: list[ClusterNode | None] = [None] * n
        self.clocks = [_NodeClock(self, self.rng.uniform(0, 10_000)) for _ in range(n)]
        self.intro: list[IntroPointSet] = [self._new_intro() for _ in range(n)]
        self.intro_changed_at = [0.0] * n
        self.serving = [True] * n
        self.draining = [False] * n
        self.claimed_term_number = [0] * n
        self.remembered: list[tuple[str, ...]] = [()] * n  # what each node's disk holds
        self._by_address = {node_address(i): i for i in range(n)}
        self._queue: list[tuple[float, int, int, object]] = []
        self._order = 0
        self._wake_at: list[float | None] = [None] * n
        self.partition: tuple[frozenset[int], ...] | None = None
        self.loss_rate = 0.0
        self.dup_rate = 0.0
        self.publishers: dict[int, Term] = {}
        self._terms_seen: dict[Term, tuple[int, bytes]] = {}
        self._active_faults = 0
        self._last_fault_end = 0.0
        self._calm_publisher: tuple[int, Term] | None = None
        self._mesh_checked = False
        self.report = SimReport(scenario, bytes_sent=[0] * n, frames_sent=[0] * n)
        self._rejects = RejectCounters()
        self._scheduled = False

    # --- scheduling --------------------------------------------------------------------------

    def _push(self, at: float, kind: int, item: object) -> None:
        self._order += 1
        heapq.heappush(self._queue, (at, self._order, kind, item))

    def _new_intro(self) -> IntroPointSet:
        s = self.scenario
        return IntroPointSet(
            tuple(self.rng.randbytes(s.intro_entry_bytes) for _ in range(s.intro_entries)),
            "flow-control 1-2 31",
        )

    def _schedule_wake(self, i: int) -> None:
        node = self.nodes[i]
        if node is None:
            self._wake_at[i] = None
            return
        # (+1 ns: converting between clock origins must not land a hair before the due time)
        at = max(self.now, node.next_wakeup() - self.clocks[i].mono_offset + 1e-9)
        if self._wake_at[i] is None or at != self._wake_at[i]:
            self._wake_at[i] = at
            self._push(at, _WAKE, (i, at))

    # --- running -----------------------------------------------------------------------------

    def run(self) -> SimReport:
        """Run the whole scenario, then check the final state."""
        self.run_until(self.scenario.duration_s)
        self.now = self.scenario.duration_s
        if self.check and self._calm():
            self._check_mesh()
        return self.report

    def run_until(self, t: float) -> SimReport:
        """Process every event up to virtual time ``t`` (may be called repeatedly)."""
        if not self._scheduled:
            self._scheduled = True
            s = self.scenario
            for i in range(s.n_nodes):
                self._push(s.start_at[i], _FAULT_START, Restart(s.start_at[i], i))
            for fault in s.faults:
                self._push(fault.at, _FAULT_START, fault)
                until = getattr(fault, "until", None)
                if until is not None:
                    self._push(until, _FAULT_END, fault)
        queue = self._queue
        while queue and queue[0][0] <= t:
            at, _, kind, item = heapq.heappop(queue)
            self.now = at
            if kind == _WAKE:
                i, wake = cast(tuple[int, float], item)
                node = self.nodes[i]
                if self._wake_at[i] != wake or node is None:
                    continue
                self._wake_at[i] = None
                self._handle(i, node.tick())
            elif kind == _DELIVER:
                self._deliver(cast(tuple[int, int, bytes], item))
            elif kind == _FAULT_START:
                self._fault_start(cast(Fault, item))
            else:
                self._fault_end(cast(Fault, item))
            self.report.steps += 1
            if self.check:
                self._check_step()
        self.now = max(self.now, t)
        self.report.rejects = self._rejects.as_dict()
        self.report.final_publisher = (
            next(iter(self.publishers)) if len(self.publishers) == 1 else None
        )
        return self.report

    def _handle(self, i: int, actions: list[Action]) -> None:
        node = self.nodes[i]
        if node is None:
            return
        if self.observer is not None:
            self.observer(self, i, actions)
        for action in actions:
            if isinstance(action, SendTo):
                self._send(i, action)
            elif isinstance(action, BecomePublisher):
                self._on_claim(i, node, action.term)
            elif isinstance(action, StepDown):
                self.publishers.pop(i, None)
        if self.check and node.is_publisher != (i in self.publishers):
            self._fail(f"node {node_name(i)}: role and actions disagree")
        self._schedule_wake(i)

    def _on_claim(self, i: int, node: ClusterNode, term: Term) -> None:
        self.claimed_term_number[i] = max(self.claimed_term_number[i], term.number)
        self.report.claims.append((self.now, i, term))
        if self.check:
            if term in self._terms_seen:
                j, boot = self._terms_seen[term]
                self._fail(f"term {term} claimed twice: by {node_name(j)} (boot "
                           f"{boot.hex()[:8]}) and {node_name(i)} (boot {node.boot_id.hex()[:8]})")
            if self._calm_publisher is not None and self._calm_publisher != (i, term):
                self._fail(f"publisher changed while nothing failed: {node_name(i)} claimed "
                           f"{term}, calm publisher was {self._calm_publisher}")
        self._terms_seen[term] = (i, node.boot_id)
        self.publishers[i] = term

    def _send(self, i: int, action: SendTo) -> None:
        size = len(action.frame)
        self.report.bytes_sent[i] += size
        self.report.frames_sent[i] += 1
        j = self._by_address.get(action.address)
        if j is None or not self._connected(i, j):
            return
        if self.loss_rate and self.rng.random() < self.loss_rate:
            return
        s = self.scenario
        copies = 2 if self.dup_rate and self.rng.random() < self.dup_rate else 1
        for _ in range(copies):
            delay = s.latency_s + self.rng.uniform(0.0, s.jitter_s)
            self._push(self.now + delay, _DELIVER, (i, j, action.frame))

    def _connected(self, i: int, j: int) -> bool:
        if self.partition is None:
            return True
        return any(i in g and j in g for g in self.partition)

    def _deliver(self, item: tuple[int, int, bytes]) -> None:
        i, j, frame = item
        node = self.nodes[j]
        if node is None or not self._connected(i, j):
            return
        self.report.frames_delivered += 1
        self.report.last_delivery[(i, j)] = self.now
        before = node.rejects.total
        actions = node.receive(frame)
        if node.rejects.total != before:
            for action in actions:
                reason = getattr(action, "reason", None)
                if isinstance(reason, RejectReason):
                    self._rejects.record(reason)
        self._handle(j, actions)

    # --- faults ------------------------------------------------------------------------------

    def _is_fault(self, fault: Fault) -> bool:
        if isinstance(fault, IntroChange):
            return False
        if isinstance(fault, Skew):
            return abs(fault.skew_s) > self.scenario.max_clock_skew_s
        # Duplicates are absorbed by the replay window: not a failure.
        return not isinstance(fault, Duplicate)

    def _fault_start(self, fault: Fault) -> None:
        if self._is_fault(fault):
            if hasattr(fault, "until"):
                self._active_faults += 1
            else:
                self._last_fault_end = self.now
            self._calm_publisher = None
            self._mesh_checked = False
        if isinstance(fault, Crash):
            crashed = self.nodes[fault.node]
            if crashed is not None:
                self.remembered[fault.node] = crashed.known_addresses()
                self.nodes[fault.node] = None
                self._wake_at[fault.node] = None
                self.publishers.pop(fault.node, None)
        elif isinstance(fault, Restart):
            self._boot(fault.node)
        elif isinstance(fault, Partition):
            self.partition = fault.groups
        elif isinstance(fault, Loss):
            self.loss_rate = fault.rate
        elif isinstance(fault, Duplicate):
            self.dup_rate = fault.rate
        elif isinstance(fault, Skew):
            self.clocks[fault.node].skew_s = fault.skew_s
        elif isinstance(fault, Drain):
            self.draining[fault.node] = True
            self._local(fault.node, lambda n: n.set_draining(True, "operator drain"))
        elif isinstance(fault, Unhealthy):
            self.serving[fault.node] = False
            self._local(fault.node, lambda n: n.set_health(False, "target unreachable"))
        elif isinstance(fault, IntroChange):
            self.intro[fault.node] = self._new_intro()
            self.intro_changed_at[fault.node] = self.now
            intro = self.intro[fault.node]
            self._local(fault.node, lambda n: n.set_intro_points(intro))

    def _fault_end(self, fault: Fault) -> None:
        if self._is_fault(fault):
            self._active_faults -= 1
            self._last_fault_end = self.now
            self._calm_publisher = None
            self._mesh_checked = False
        if isinstance(fault, Partition):
            self.partition = None
        elif isinstance(fault, Loss):
            self.loss_rate = 0.0
        elif isinstance(fault, Duplicate):
            self.dup_rate = 0.0
        elif isinstance(fault, Skew):
            self.clocks[fault.node].skew_s = 0.0
        elif isinstance(fault, Drain):
            self.draining[fault.node] = False
            self._local(fault.node, lambda n: n.set_draining(False, "drain over"))
        elif isinstance(fault, Unhealthy):
            self.serving[fault.node] = True
            self._local(fault.node, lambda n: n.set_health(True, ""))

    def _local(self, i: int, call: Callable[[ClusterNode], list[Action]]) -> None:
        node = self.nodes[i]
        if node is not None:
            self._handle(i, call(node))

    def _boot(self, i: int) -> None:
        if self.nodes[i] is not None:
            return
        node = ClusterNode(
            self.scenario.settings_for(i),
            self.mac_key,
            self.clocks[i],
            boot_id=self.rng.randbytes(16),
            last_term_number=self.claimed_term_number[i],
            remembered_peers=self.remembered[i],
            serving=self.serving[i],
            health_reason="" if self.serving[i] else "target unreachable",
        )
        self.nodes[i] = node
        node.set_intro_points(self.intro[i])
        actions = node.start()
        if self.draining[i]:
            actions += node.set_draining(True, "operator drain")
        self._handle(i, actions)

    # --- invariants --------------------------------------------------------------------------

    def _calm(self) -> bool:
        return (
            self._active_faults == 0
            and self.now >= self._last_fault_end + self.scenario.settle_s
        )

    def _fail(self, message: str) -> None:
        raise InvariantViolated(
            f"t={self.now:.3f}s, {self.scenario.n_nodes} nodes: {message}",
            seed=self.scenario.seed,
        )

    def _check_step(self) -> None:
        if not self._calm():
            return
        running = [i for i, n in enumerate(self.nodes) if n is not None]
        eligible = [i for i in running if self.serving[i] and not self.draining[i]]
        want = 1 if eligible else 0
        if len(self.publishers) != want:
            names = {node_name(i): str(t) for i, t in self.publishers.items()}
            self._fail(f"{len(self.publishers)} publishers {names} "
                       f"{self.now - self._last_fault_end:.2f}s after the last fault ended "
                       f"(want {want} within {self.scenario.settle_s:.2f}s)")
        self.report.calm_checks += 1
        if want:
            current = next(iter(self.publishers.items()))
            best = min(eligible, key=lambda i: (self.scenario.priorities[i], node_name(i)))
            if current[0] != best:
                self._fail(f"publisher {node_name(current[0])} is not the best eligible node "
                           f"{node_name(best)} {self.now - self._last_fault_end:.2f}s after "
                           "the last fault ended")
            if self._calm_publisher is None:
                self._calm_publisher = current
                settle = self._settled_since()
                self.report.max_settle_s = max(self.report.max_settle_s, settle)
            elif self._calm_publisher != current:
                self._fail(f"publisher changed while nothing failed: {self._calm_publisher} -> "
                           f"{current}")
        if not self._mesh_checked:
            self._mesh_checked = True
            self._check_mesh()

    def _settled_since(self) -> float:
        last = 0.0
        for at, _, _ in self.report.claims:
            last = at
        return max(0.0, last - self._last_fault_end)

    def _check_mesh(self) -> None:
        running = {i for i, n in enumerate(self.nodes) if n is not None}
        names = {node_name(i): i for i in running}
        for i in running:
            node = self.nodes[i]
            assert node is not None
            live = {v.node_id for v in node.peers() if v.status.value in ("alive", "suspect")}
            want = set(names) - {node_name(i)}
            if live != want:
                self._fail(f"{node_name(i)} knows {sorted(live)} alive, want {sorted(want)}")
            sets = node.intro_point_sets(eligible_only=False)
            # A change travels at once, or via digest -> request -> reply within one interval.
            fresh = self.scenario.heartbeat_interval_s + 3 * self.scenario.max_delay_s
            for name, j in names.items():
                if self.now - self.intro_changed_at[j] < fresh:
                    continue
                if sets.get(name) != self.intro[j]:
                    self._fail(f"{node_name(i)} lacks the current intro points of {name}")


def random_scenario(seed: int, *, n_nodes: int | None = None,
                    duration_s: float | None = None) -> Scenario:
    """A random fault schedule, fully determined by ``seed``.

    Faults end at least ``settle_s`` + 6 s before the end, so every run also checks recovery.
    """
    rng = random.Random(seed)
    n = n_nodes if n_nodes is not None else rng.choice((3, 3, 4, 5, 5, 6, 7, 9))
    if n < 2:
        raise ValueError("a simulated cluster needs at least 2 nodes")
    interval = 2.0
    grace = rng.choice((1.0, 2.0, 2.0, 3.0))
    jitter = interval * rng.uniform(0.3, 0.45)
    base = Scenario(seed, n, 0.0, (), (), (), heartbeat_interval_s=interval,
                    lease_grace_s=grace, jitter_s=jitter)
    settle = base.settle_s
    fault_window = rng.uniform(15.0, 40.0)
    duration = duration_s if duration_s is not None else fault_window + settle + 8.0
    fault_window = min(fault_window, duration - settle - 6.0)
    spread = rng.choice((1, 3, 100))
    priorities = tuple(rng.randrange(spread) for _ in range(n))
    topology = rng.choice(("chain", "star", "random"))
    seeds_of: list[tuple[int, ...]] = []
    for i in range(n):
        if i == 0:
            seeds_of.append(())
        elif topology == "chain":
            seeds_of.append((i - 1,))
        elif topology == "star":
            seeds_of.append((0,))
        else:
            seeds_of.append((rng.randrange(i),))
    start_at = tuple(sorted(rng.uniform(0.0, 4.0) for _ in range(n)))
    faults: list[Fault] = []
    busy: dict[object, list[tuple[float, float]]] = {}
    down_for_good: set[int] = set()

    def claim(slot: object, start: float, end: float) -> bool:
        windows = busy.setdefault(slot, [])
        if any(start <= e and s <= end for s, e in windows):
            return False
        windows.append((start, end))
        return True

    for _ in range(rng.choice((0, 1, 2, 3, 4, 6))):
        at = rng.uniform(start_at[-1] + 1.0, max(start_at[-1] + 2.0, fault_window))
        until = min(at + rng.uniform(1.0, 15.0), fault_window)
        if until <= at:
            continue
        kind = rng.choice(("crash", "crash", "restart", "partition", "partition", "loss",
                           "dup", "skew", "skew", "drain", "unhealthy", "intro"))
        node = rng.randrange(n)
        if kind in ("crash", "restart"):
            permanent = kind == "crash" and rng.random() < 0.5
            if permanent and len(down_for_good) + 2 >= n:
                permanent = False
            if node in down_for_good or not claim(("life", node), at,
                                                  float("inf") if permanent else until):
                continue
            faults.append(Crash(at, node))
            if permanent:
                down_for_good.add(node)
            else:
                faults.append(Restart(until, node))
        elif kind == "partition":
            if claim("partition", at, until):
                members = list(range(n))
                rng.shuffle(members)
                cut = rng.randrange(1, n)
                faults.append(Partition(at, until,
                                        (frozenset(members[:cut]), frozenset(members[cut:]))))
        elif kind == "loss":
            if claim("loss", at, until):
                faults.append(Loss(at, until, rng.choice((0.1, 0.3, 0.6, 1.0))))
        elif kind == "dup":
            if claim("dup", at, until):
                faults.append(Duplicate(at, until, rng.uniform(0.1, 0.5)))
        elif kind == "skew":
            within = rng.uniform(-25.0, 25.0)
            beyond = rng.choice((-1, 1)) * rng.uniform(31.0, 90.0)
            if claim(("skew", node), at, until):
                faults.append(Skew(at, until, node, rng.choice((within, beyond))))
        elif kind == "drain":
            if claim(("drain", node), at, until):
                faults.append(Drain(at, until, node))
        elif kind == "unhealthy":
            if claim(("unhealthy", node), at, until):
                faults.append(Unhealthy(at, until, node))
        else:
            faults.append(IntroChange(at, node))
    return Scenario(
        seed=seed, n_nodes=n, duration_s=duration, priorities=priorities,
        seeds_of=tuple(seeds_of), start_at=start_at, faults=tuple(faults),
        heartbeat_interval_s=interval, lease_grace_s=grace, jitter_s=jitter,
    )

