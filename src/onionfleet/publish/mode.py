"""Single-node and multi-node mode (issue: publisher modes).

* **single**: the node is alone. Its own tor publishes its own descriptor
  (``PublishHidServDescriptors 1``); onionfleet uploads nothing. This is tor's normal, proven path,
  so a lone node needs nothing from us to stay reachable.
* **multi**: the node has at least one alive peer. Every node turns its own tor's publishing off
  (``PublishHidServDescriptors 0``; intro points are still built and kept, tor only skips the
  upload — tor ``hs_service.c:upload_descriptor_to_hsdir``), and the elected publisher uploads the
  merged descriptor.

Peers appearing switches to multi at once: two nodes self-publishing under the same blinded key
overwrite each other at the HSDirs and every client sticks to one node (DESIGN §2). Being alone
again switches back to single only after ``single_node_grace_s``, so a peer that blips does not
make the nodes flap between tor's descriptor and the merged one.

Both descriptors carry tor's OPE revision counter taken at upload time
(``hs_service.c:set_descriptor_revision_counter``), so whichever uploads later wins at the HSDirs:
the merged descriptor takes over from tor's, and tor's takes over again when tor uploads after the
switch back.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Mode", "ModeChange", "ModeMachine"]


class Mode(enum.Enum):
    SINGLE = "single"
    MULTI = "multi"


@dataclass(frozen=True, slots=True)
class ModeChange:
    """The node switched mode: set tor's ``PublishHidServDescriptors`` to ``tor_publishes``."""

    mode: Mode
    tor_publishes: bool
    reason: str


class ModeMachine:
    """Decides the mode from the number of alive peers over time (monotonic seconds)."""

    def __init__(self, *, single_node_grace_s: float, now: float) -> None:
        if single_node_grace_s < 0:
            raise ValueError(f"single_node_grace_s must be >= 0, got {single_node_grace_s}")
        self._grace_s = single_node_grace_s
        self._mode = Mode.SINGLE
        self._alone_since: float | None = now

    @property
    def mode(self) -> Mode:
        return self._mode

    def initial(self) -> ModeChange:
        """What to tell tor at start: a node starts alone, so tor publishes."""
        return ModeChange(Mode.SINGLE, True, "starting alone: tor publishes its own descriptor")

    def observe(self, alive_peers: int, now: float) -> ModeChange | None:
        """Feed the current number of alive peers (not counting this node); maybe switch."""
        if alive_peers < 0:
            raise ValueError(f"alive_peers must be >= 0, got {alive_peers}")
        if alive_peers > 0:
            self._alone_since = None
            if self._mode is Mode.SINGLE:
                self._mode = Mode.MULTI
                return ModeChange(
                    Mode.MULTI,
                    False,
                    f"{alive_peers} peer(s) alive: tor stops publishing, the merged descriptor "
                    "takes over",
                )
            return None
        if self._alone_since is None:
            self._alone_since = now
        if self._mode is Mode.MULTI and now - self._alone_since >= self._grace_s:
            self._mode = Mode.SINGLE
            return ModeChange(
                Mode.SINGLE,
                True,
                f"alone for {now - self._alone_since:.0f} s (grace {self._grace_s:g} s): "
                "tor publishes its own descriptor again",
            )
        return None

    def seconds_until_single(self, now: float) -> float | None:
        """How long until a lone node in multi mode goes back to single (None: not pending)."""
        if self._mode is Mode.SINGLE or self._alone_since is None:
            return None
        return max(0.0, self._grace_s - (now - self._alone_since))
