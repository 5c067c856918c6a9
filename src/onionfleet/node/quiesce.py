"""Quiescing a leaving node: stop introductions, let every started connection finish (sans-IO).

Why: a client keeps using the descriptor it cached, so after the publisher has removed a
leaving node's intro points, clients still introduce themselves through them. If the node simply
exited, a client whose rendezvous was under way, or whose stream was open, would fail (SOCKS
0x01, a cut body). The clean way out, in tor's own terms:

1. Close the service's introduction circuits (``CLOSECIRCUIT``, control-spec §3.11). The intro
   point then has no circuit for that auth key and answers an INTRODUCE1 with INTRODUCE_ACK
   "unknown ID" (rend-spec-v3 §3.2.1 / tor ``hs_intropoint.c``), so the client marks that intro
   point failed and introduces itself through another one of its descriptor: no error reaches
   the application. tor relaunches a closed intro circuit to the same intro point up to
   ``MAX_INTRO_POINT_CIRCUIT_RETRIES`` (3) times before it drops it (``hs_service.c``
   ``should_remove_intro_point``), so the closing goes on until none is re-established.
2. Keep the proxy accepting: a client whose INTRODUCE2 reached us before the close still builds
   its rendezvous (our ``HS_SERVICE_REND`` circuit is ``HSSR_CONNECTING`` meanwhile) and opens its
   stream; it is served.
3. Done when, for ``quiet_s``, no intro circuit was established, no rendezvous was pending, no
   stream was open and none was accepted — which also gives tor time to flush the cells of the
   last answers before it stops. Bounded by ``timeout_s``.

This module decides; the daemon does the I/O (``GETINFO circuit-status``, ``CLOSECIRCUIT``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from onionfleet.tor.circuits import CircuitInfo

__all__ = ["Quiesce", "QuiesceObservation", "QuiesceStep", "observe_service_circuits"]

_INTRO = "HS_SERVICE_INTRO"
_REND = "HS_SERVICE_REND"
_INTRO_ESTABLISHED = "HSSI_ESTABLISHED"
_REND_PENDING = "HSSR_CONNECTING"
_GONE = frozenset({"FAILED", "CLOSED"})


@dataclass(frozen=True, slots=True)
class QuiesceObservation:
    """What the node sees at ``now``: its service's circuits (from tor) and its proxy's streams."""

    now: float
    intro_circuits: tuple[str, ...]
    established_intro: int
    pending_rendezvous: int
    active_streams: int
    accepted_total: int


@dataclass(frozen=True, slots=True)
class QuiesceStep:
    """What to do now: close these circuits; ``done`` ends the quiescing (``reason`` says why)."""

    close: tuple[str, ...]
    done: bool
    reason: str


def observe_service_circuits(
    circuits: Iterable[CircuitInfo], address: str
) -> tuple[tuple[str, ...], int, int]:
    """(ids of the intro circuits, how many are established, rendezvous still connecting) of the
    onion service ``address`` (no ``.onion``) — other services on the same tor are left alone."""
    intro: list[str] = []
    established = pending = 0
    for circ in circuits:
        if circ.rend_query != address or circ.status in _GONE:
            continue
        if circ.purpose == _INTRO:
            intro.append(circ.circuit_id)
            established += circ.hs_state == _INTRO_ESTABLISHED
        elif circ.purpose == _REND and circ.hs_state == _REND_PENDING:
            pending += 1
    return tuple(intro), established, pending


class Quiesce:
    """One quiescing, from ``started`` (monotonic seconds). Feed :meth:`step` each poll."""

    def __init__(self, *, started: float, quiet_s: float, timeout_s: float) -> None:
        if quiet_s <= 0 or timeout_s <= 0:
            raise ValueError("quiet_s and timeout_s must be positive")
        self._started = started
        self._quiet_s = quiet_s
        self._timeout_s = timeout_s
        self._last_activity = started
        self._accepted: int | None = None
        self.closed_total = 0
        self.served_while_quiescing = 0

    def step(self, obs: QuiesceObservation) -> QuiesceStep:
        """Close every intro circuit seen; report done once quiet (or out of time)."""
        if self._accepted is not None and obs.accepted_total > self._accepted:
            self.served_while_quiescing += obs.accepted_total - self._accepted
            self._last_activity = obs.now
        self._accepted = obs.accepted_total
        if obs.established_intro or obs.pending_rendezvous or obs.active_streams:
            self._last_activity = obs.now
        self.closed_total += len(obs.intro_circuits)
        elapsed = obs.now - self._started
        if obs.now - self._last_activity >= self._quiet_s:
            # Intro circuits still being built are closed too; they cannot take introductions.
            return QuiesceStep(
                obs.intro_circuits, True, f"quiet for {self._quiet_s:g} s after {elapsed:.1f} s"
            )
        if elapsed >= self._timeout_s:
            return QuiesceStep(
                obs.intro_circuits,
                True,
                f"not quiet within {self._timeout_s:g} s ({obs.active_streams} streams open, "
                f"{obs.pending_rendezvous} rendezvous pending)",
            )
        return QuiesceStep(obs.intro_circuits, False, "quiescing")
