"""Tracking one publish round: which HSDirs took which descriptor, retries with backoff.

tor reports each HSPOST upload per HSDir as ``650 HS_DESC UPLOADED <addr> UNKNOWN <hsdir>`` or
``650 HS_DESC FAILED <addr> UNKNOWN <hsdir> REASON=<reason>`` (control-spec "HS_DESC";
tor ``hs_control.c:hs_control_desc_event_uploaded/failed``). These events name the HSDir but not
the descriptor, so when one HSDir is responsible for both the first and the second descriptor, an
outcome settles the oldest upload still pending at that HSDir. ``UPLOAD_REJECTED`` usually means
the HSDir holds a descriptor with a revision counter at least as high (``hs_cache.c:
cache_store_v3_as_dir``); it is retried like any failure, and a later publish gets a higher counter.

Pure: outcomes and a monotonic ``now`` in, retries out.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["HsDirUpload", "UploadRound", "UploadState"]

DEFAULT_BACKOFF_S: tuple[float, ...] = (2.0, 4.0, 8.0, 16.0)


class UploadState(enum.Enum):
    PENDING = "pending"
    UPLOADED = "uploaded"
    RETRY_WAIT = "retry_wait"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class HsDirUpload:
    """The state of one descriptor at one HSDir."""

    descriptor: str
    hsdir_fingerprint: str
    state: UploadState
    attempts: int
    last_reason: str | None


@dataclass(slots=True)
class _Slot:
    descriptor: str
    hsdir: str
    state: UploadState
    attempts: int
    reason: str | None = None
    deadline: float = 0.0
    retry_at: float = 0.0


class UploadRound:
    """One publish: ``targets`` maps a descriptor label ("first", "second") to its HSDirs."""

    def __init__(
        self,
        targets: Mapping[str, Sequence[str]],
        now: float,
        *,
        timeout_s: float = 60.0,
        backoff_s: Sequence[float] = DEFAULT_BACKOFF_S,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self._timeout_s = timeout_s
        self._backoff = tuple(backoff_s)
        self._slots: list[_Slot] = []
        self._pending: dict[str, deque[_Slot]] = {}
        for label, hsdirs in targets.items():
            for fp in dict.fromkeys(_normal(h) for h in hsdirs):
                slot = _Slot(label, fp, UploadState.PENDING, 1, deadline=now + timeout_s)
                self._slots.append(slot)
                self._pending.setdefault(slot.hsdir, deque()).append(slot)

    # -- outcomes --------------------------------------------------------------------------

    def uploaded(self, hsdir_fingerprint: str) -> HsDirUpload | None:
        """An ``UPLOADED`` event for this HSDir; None if nothing of ours was pending there."""
        slot = self._take_pending(hsdir_fingerprint)
        if slot is None:
            return None
        slot.state = UploadState.UPLOADED
        slot.reason = None
        return _public(slot)

    def failed(
        self, hsdir_fingerprint: str, reason: str, now: float, *, descriptor: str | None = None
    ) -> HsDirUpload | None:
        """A ``FAILED`` event: schedule a retry, or give up after the last backoff step.

        ``descriptor``: the label, when the event said which descriptor failed (tor's FAILED
        event carries the blinded key, its UPLOADED event does not).
        """
        slot = self._take_pending(hsdir_fingerprint, descriptor)
        if slot is None:
            return None
        self._fail(slot, reason, now)
        return _public(slot)

    def expire(self, now: float) -> list[HsDirUpload]:
        """Uploads with no outcome by their deadline count as failed ("TIMEOUT")."""
        out = []
        for slot in self._slots:
            if slot.state is UploadState.PENDING and now >= slot.deadline:
                self._pending[slot.hsdir].remove(slot)
                self._fail(slot, "TIMEOUT", now)
                out.append(_public(slot))
        return out

    def due_retries(self, now: float) -> list[HsDirUpload]:
        """Uploads whose backoff has passed: the caller posts them again now."""
        out = []
        for slot in self._slots:
            if slot.state is UploadState.RETRY_WAIT and now >= slot.retry_at:
                slot.state = UploadState.PENDING
                slot.attempts += 1
                slot.deadline = now + self._timeout_s
                self._pending.setdefault(slot.hsdir, deque()).append(slot)
                out.append(_public(slot))
        return out

    # -- views ------------------------------------------------------------------------------

    def results(self) -> list[HsDirUpload]:
        return [_public(s) for s in self._slots]

    def counts(self, descriptor: str) -> tuple[int, int]:
        """(uploaded, total) for one descriptor label."""
        mine = [s for s in self._slots if s.descriptor == descriptor]
        return sum(s.state is UploadState.UPLOADED for s in mine), len(mine)

    @property
    def done(self) -> bool:
        """Every upload has settled: uploaded, or failed for good."""
        return all(s.state in (UploadState.UPLOADED, UploadState.FAILED) for s in self._slots)

    @property
    def all_uploaded(self) -> bool:
        return all(s.state is UploadState.UPLOADED for s in self._slots)

    def next_deadline(self) -> float | None:
        """The earliest time something happens without an event (a timeout or a retry)."""
        times = [s.deadline for s in self._slots if s.state is UploadState.PENDING]
        times += [s.retry_at for s in self._slots if s.state is UploadState.RETRY_WAIT]
        return min(times, default=None)

    # -- internals --------------------------------------------------------------------------

    def pending_at(self, hsdir_fingerprint: str) -> int:
        """How many of our uploads to this HSDir await an outcome."""
        return len(self._pending.get(_normal(hsdir_fingerprint), ()))

    def _take_pending(self, hsdir_fingerprint: str, descriptor: str | None = None) -> _Slot | None:
        queue = self._pending.get(_normal(hsdir_fingerprint))
        if not queue:
            return None
        if descriptor is not None:
            for slot in queue:
                if slot.descriptor == descriptor:
                    queue.remove(slot)
                    return slot
        return queue.popleft()

    def _fail(self, slot: _Slot, reason: str, now: float) -> None:
        slot.reason = reason
        if slot.attempts > len(self._backoff):
            slot.state = UploadState.FAILED
        else:
            slot.state = UploadState.RETRY_WAIT
            slot.retry_at = now + self._backoff[slot.attempts - 1]


def _normal(fingerprint: str) -> str:
    """Fingerprints compare as upper-case hex without tor's ``$`` prefix or ``~nickname``."""
    return fingerprint.lstrip("$").split("~", 1)[0].split("=", 1)[0].upper()


def _public(slot: _Slot) -> HsDirUpload:
    return HsDirUpload(slot.descriptor, slot.hsdir, slot.state, slot.attempts, slot.reason)
