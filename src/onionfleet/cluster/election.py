"""Lease election of the one publisher (sans-IO; time is the local monotonic ``now``).

Policy, in order of precedence:

1. **Who.** The publisher should be the best candidate among alive (ALIVE or SUSPECT), serving,
   non-draining nodes: lowest ``priority``, ties broken by the lower node id.
2. **Terms.** A claim creates ``Term(n + 1, me)`` where ``n`` is the highest term number this node
   has seen (or persisted, ``last_term_number``). Terms compare as ``(number, holder)``, so even two
   sides of a partition never share a term, and a node never reuses its own number.
3. **Lease.** The publisher renews its lease at every heartbeat; a follower keeps the lease of the
   term it heard *from its holder* valid until ``receive time + lease_s`` on its own monotonic clock
   (``lease_s = dead_after * heartbeat_interval_s``). Wall clocks are never compared. A term heard
   only through gossip is treated as already lapsed (we have not heard its holder), and so is the
   lease of a holder whose heartbeat says FOLLOWER (it stepped down or restarted). A node that
   just started treats the lease as held for ``lease_s`` (it listens before it claims).
4. **Take-over.** A follower claims only when it is eligible, is the best candidate in its own
   view, and the lease has been lapsed for ``lease_grace_s`` — or at once when the holder released
   the lease naming it as successor (the hand-over).
5. **Higher term.** A publisher that sees a higher term, in any heartbeat or release, steps down
   at once (no release: the other node holds the newer lease).
6. **Hand-over (no flapping).** A better candidate that appears (returns, heals, recovers) does not
   take over by itself: it waits. The incumbent, at a lease renewal, hands over when that
   candidate has been continuously alive, serving and not draining for ``handover_delay_s``
   (default one heartbeat interval): it steps down and sends ``LeaseRelease(term, successor)``;
   the successor claims the next term on receipt. If the release is lost, everyone sees the
   incumbent's FOLLOWER heartbeats and the normal grace rule applies.
7. **Losing eligibility.** A publisher that stops serving, drains or leaves steps down at once and
   releases the lease to the best other candidate.

Split-brain is possible only while nodes cannot hear each other (no quorum: availability first);
the two sides then hold different terms and the lower one steps down as soon as they meet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from onionfleet.cluster.actions import Action, BecomePublisher, LeaseRenewed, StepDown
from onionfleet.cluster.messages import NO_TERM, LeaseRelease, Role, Term
from onionfleet.cluster.settings import ClusterSettings

__all__ = ["Candidate", "Election"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """An eligible node as seen locally; ``eligible_since`` is a local monotonic time."""

    node_id: str
    priority: int
    eligible_since: float

    @property
    def rank(self) -> tuple[int, str]:
        return (self.priority, self.node_id)


class Election:
    """One node's view of the lease. See the module docstring for the policy."""

    __slots__ = (
        "_floor",
        "_released_to_me",
        "_settings",
        "highest",
        "lease_deadline",
        "lease_term",
        "role",
        "term",
    )

    def __init__(self, settings: ClusterSettings, now: float, last_term_number: int = 0) -> None:
        self._settings = settings
        self._floor = last_term_number
        self.role = Role.FOLLOWER
        self.term = NO_TERM  # our own term while publisher, else the last we held
        self.highest = NO_TERM
        self.lease_term = NO_TERM
        self.lease_deadline = now + settings.lease_s  # listen before claiming
        self._released_to_me: Term | None = None

    @property
    def is_publisher(self) -> bool:
        return self.role is Role.PUBLISHER

    def lease_held(self, now: float) -> bool:
        return now < self.lease_deadline + self._settings.lease_grace_s

    def observe(self, sender: str, term: Term, role: Role, lease_s: float, now: float
                ) -> list[Action]:
        """A heartbeat from ``sender`` carrying ``term`` (its highest) and ``role``."""
        actions: list[Action] = []
        self.highest = max(self.highest, term)
        if self.role is Role.PUBLISHER and term > self.term:
            actions += self._step_down(f"node {sender} reports the newer term {term}", None, now)
        if role is Role.PUBLISHER and term.holder == sender:
            if term >= self.lease_term:
                self.lease_term = term
                self.lease_deadline = now + lease_s
        elif term > self.lease_term:
            self.lease_term = term
            self.lease_deadline = min(self.lease_deadline, now)
        elif sender == self.lease_term.holder and role is Role.FOLLOWER:
            self.lease_deadline = min(self.lease_deadline, now)
        return actions

    def observe_release(self, sender: str, release: LeaseRelease, now: float) -> list[Action]:
        actions: list[Action] = []
        term = release.term
        if term.holder != sender:
            return actions  # only a holder releases its own lease
        self.highest = max(self.highest, term)
        if self.role is Role.PUBLISHER and term > self.term:
            actions += self._step_down(f"node {sender} released the newer term {term}", None, now)
        if term >= self.lease_term:
            self.lease_term = term
            self.lease_deadline = min(self.lease_deadline, now)
            if release.successor == self._settings.node_id:
                self._released_to_me = term
        return actions

    def holder_gone(self, node_id: str, now: float) -> None:
        """``node_id`` left or was forgotten: if it held the lease, the lease lapsed now."""
        if node_id == self.lease_term.holder:
            self.lease_deadline = min(self.lease_deadline, now)

    def evaluate(
        self, now: float, me_eligible: bool, my_priority: int,
        candidates: Callable[[], Iterable[Candidate]], renewing: bool,
    ) -> list[Action]:
        """Decide: claim, renew, hand over or step down.

        ``candidates`` lists the *other* eligible nodes; it is called only when the decision
        needs it (a follower that sees a valid lease never does).
        """
        me = self._settings.node_id
        my_rank = (my_priority, me)
        if self.role is Role.PUBLISHER:
            if not me_eligible:
                best_other = min(candidates(), key=lambda c: c.rank, default=None)
                return self._step_down("this node is not serving or is draining",
                                       best_other.node_id if best_other else None, now)
            if not renewing:
                return []
            best_other = min(candidates(), key=lambda c: c.rank, default=None)
            if (
                best_other is not None
                and best_other.rank < my_rank
                and now - best_other.eligible_since >= self._settings.handover_s
            ):
                return self._step_down(
                    f"handing over to better candidate {best_other.node_id}",
                    best_other.node_id, now,
                )
            self.lease_deadline = now + self._settings.lease_s
            return [LeaseRenewed(self.term, self.lease_deadline)]
        if not me_eligible:
            return []
        released = self._released_to_me
        if released is not None and released >= self.lease_term:
            return self._claim(now)
        if self.lease_held(now):
            return []
        best_other = min(candidates(), key=lambda c: c.rank, default=None)
        if best_other is not None and best_other.rank < my_rank:
            return []
        return self._claim(now)

    def _claim(self, now: float) -> list[Action]:
        number = max(self.highest.number, self.lease_term.number, self._floor) + 1
        term = Term(number, self._settings.node_id)
        self._floor = number
        self.role = Role.PUBLISHER
        self.term = self.highest = self.lease_term = term
        self.lease_deadline = now + self._settings.lease_s
        self._released_to_me = None
        return [BecomePublisher(term)]

    def _step_down(self, reason: str, successor: str | None, now: float) -> list[Action]:
        self.role = Role.FOLLOWER
        self._released_to_me = None
        if self.lease_term == self.term:
            self.lease_deadline = min(self.lease_deadline, now)
        return [StepDown(self.term, reason, successor)]
