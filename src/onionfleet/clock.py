"""Injected time.

Code below the adapters never reads the clock itself: it takes a :class:`Clock`. ``monotonic()`` is
for deadlines and leases (never compared across nodes), ``wall()`` is Unix time in seconds for
timestamps that travel (peer messages) and for descriptor certificates.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    """A source of time. ``monotonic`` never goes back; ``wall`` is Unix seconds."""

    def monotonic(self) -> float: ...

    def wall(self) -> float: ...


class SystemClock:
    """The real clocks of this machine."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to: simulations and tests.

    ``skew_s`` shifts the wall clock only, to model a node whose NTP is off.
    """

    def __init__(self, start_wall: float = 1_700_000_000.0, skew_s: float = 0.0) -> None:
        self._mono = 0.0
        self._wall0 = start_wall
        self.skew_s = skew_s

    def monotonic(self) -> float:
        return self._mono

    def wall(self) -> float:
        return self._wall0 + self._mono + self.skew_s

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock cannot go back ({seconds} s)")
        self._mono += seconds
