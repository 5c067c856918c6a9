"""When to republish the merged descriptors.

rend-spec-v3 [WHEN-HSDESC] and tor (``hs_service.c:should_service_upload_descriptor``,
``service_desc_schedule_upload``) republish when the intro points change, when the set of
responsible HSDirs changes, at descriptor rotation, and periodically (tor: every 60–120 min,
``HS_SERVICE_NEXT_UPLOAD_TIME_MIN/MAX``). We follow the same rules for the merged descriptor, plus:
a failed verification (the HSDirs hold something other than what we published) republishes too.

Pure: the caller passes what it observes and a monotonic ``now``; randomness is injected.
"""

from __future__ import annotations

import random
from collections.abc import Hashable
from dataclasses import dataclass

__all__ = ["VERIFICATION_FAILED_REASON", "PublishInputs", "RepublishSchedule"]

VERIFICATION_FAILED_REASON = "verification found a different descriptor on the HSDirs"


@dataclass(frozen=True, slots=True)
class PublishInputs:
    """What a publish depends on. Any change of these is a reason to publish again.

    ``intro_points`` is the selected set; ``periods`` names the time periods and SRVs of the first
    and second descriptor (e.g. ``((tp1, srv1), (tp2, srv2))``); ``hsdirs`` the responsible HSDir
    fingerprints of each descriptor.
    """

    intro_points: frozenset[Hashable]
    periods: tuple[Hashable, ...]
    hsdirs: tuple[frozenset[str], ...]


class RepublishSchedule:
    """Tracks the last publish and says why (if at all) to publish now."""

    def __init__(
        self, *, republish_min_s: float, republish_max_s: float, rng: random.Random
    ) -> None:
        if not 0 < republish_min_s <= republish_max_s:
            raise ValueError(
                f"need 0 < republish_min_s <= republish_max_s, got {republish_min_s}, "
                f"{republish_max_s}"
            )
        self._min_s = republish_min_s
        self._max_s = republish_max_s
        self._rng = rng
        self._published: PublishInputs | None = None
        self._next_periodic: float | None = None
        self._verification_failed = False

    @property
    def last_published(self) -> PublishInputs | None:
        return self._published

    def reasons(self, current: PublishInputs, now: float) -> list[str]:
        """Why to publish now: an empty list means nothing to do."""
        last = self._published
        if last is None:
            return ["first publish"]
        out: list[str] = []
        if current.intro_points != last.intro_points:
            added = len(current.intro_points - last.intro_points)
            removed = len(last.intro_points - current.intro_points)
            out.append(f"intro points changed (+{added} -{removed})")
        if current.periods != last.periods:
            out.append("time period or SRV rotated")
        if current.hsdirs != last.hsdirs:
            out.append("responsible HSDirs changed")
        if self._verification_failed:
            out.append(VERIFICATION_FAILED_REASON)
        if self._next_periodic is not None and now >= self._next_periodic:
            out.append("periodic republish")
        return out

    def published(self, inputs: PublishInputs, now: float) -> None:
        """Record a publish of ``inputs`` at ``now``; schedule the next periodic one."""
        self._published = inputs
        self._verification_failed = False
        self._next_periodic = now + self._rng.uniform(self._min_s, self._max_s)

    def verification_failed(self) -> None:
        self._verification_failed = True

    def seconds_until_periodic(self, now: float) -> float | None:
        if self._next_periodic is None:
            return None
        return max(0.0, self._next_periodic - now)
