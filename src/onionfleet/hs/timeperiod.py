"""Time periods (rend-spec-v3 [TIME-PERIODS]) as tor computes them.

tor: ``hs_common.c:hs_get_time_period_num()``, ``get_time_period_length()``.
A time period is ``number`` periods of ``length_min`` minutes since the epoch, shifted by the
rotation offset (12 voting intervals, i.e. the SRV phase duration: 720 min on the real network).
Blinding and the hash ring use both the number *and* the length, so they travel together.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TimePeriod"]


@dataclass(frozen=True, slots=True)
class TimePeriod:
    """One time period: ``number`` in units of ``length_min`` minutes (rend-spec-v3 [TIME-PERIODS])."""

    number: int
    length_min: int

    def __post_init__(self) -> None:
        if self.number < 0 or self.number >= 1 << 64:
            raise ValueError(f"time period number out of range: {self.number}")
        if not 0 < self.length_min < 1 << 64:
            raise ValueError(f"time period length out of range: {self.length_min} min")

    def next(self) -> TimePeriod:
        return TimePeriod(self.number + 1, self.length_min)

    def previous(self) -> TimePeriod:
        return TimePeriod(self.number - 1, self.length_min)
