"""Feed :class:`~onionfleet.observability.metrics.Metrics` from the publisher's snapshots.

The publisher (:class:`onionfleet.publish.publisher.Publisher`) exposes frozen snapshots
(:meth:`~onionfleet.publish.publisher.Publisher.history`, a tuple of
:class:`~onionfleet.publish.status.PublishRecord`) but no per-event hook.
:class:`PublisherMetricsFeed` turns successive snapshots into metric updates, counting every
event exactly once:

* each upload *attempt* outcome per (publish, descriptor, HSDir) — an :class:`HsDirUpload` with
  ``attempts = n`` has settled ``n`` attempts when ``UPLOADED`` (the last one succeeded),
  ``RETRY_WAIT`` or ``FAILED``, and ``n - 1`` when ``PENDING``. Attempts that failed *and* were
  retried between two snapshots are counted with the reason the snapshot still shows
  (``last_reason``), or ``other`` when the retry then succeeded (the reason is gone);
* each publish per descriptor once it settled (``all_uploaded``/``partial``/``none_uploaded``),
  or ``superseded`` when a newer publish appeared first;
* gauges (revision counter, publish time, HSDirs uploaded x/y, verification) from the newest
  publish.

Call :meth:`PublisherMetricsFeed.observe` whenever the publisher's status may have changed (e.g.
after ``Publisher.wait_for`` wakes, or once a second); calling it twice with the same snapshot
changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from onionfleet.observability.metrics import DESCRIPTOR_LABELS, Metrics
from onionfleet.publish.status import DescriptorStatus, PublishRecord, VerificationState
from onionfleet.publish.uploads import HsDirUpload, UploadState

__all__ = ["PublisherMetricsFeed"]

_FINISHED_VERIFICATION = frozenset(
    {VerificationState.VERIFIED, VerificationState.MISMATCH, VerificationState.INCOMPLETE}
)


@dataclass(slots=True)
class _DescriptorSeen:
    counted_attempts: dict[str, int]
    settled: bool = False


def _settled_attempts(upload: HsDirUpload) -> int:
    if upload.state is UploadState.PENDING:
        return max(0, upload.attempts - 1)
    return upload.attempts


def _publish_result(desc: DescriptorStatus) -> str | None:
    if not desc.uploads:
        return "none_uploaded"
    if any(u.state in (UploadState.PENDING, UploadState.RETRY_WAIT) for u in desc.uploads):
        return None
    uploaded = sum(u.state is UploadState.UPLOADED for u in desc.uploads)
    if uploaded == len(desc.uploads):
        return "all_uploaded"
    return "partial" if uploaded else "none_uploaded"


class PublisherMetricsFeed:
    """Diffs publisher snapshots into :class:`Metrics` updates (see the module docstring)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._seen: dict[tuple[int, str], _DescriptorSeen] = {}

    def observe(
        self, history: Sequence[PublishRecord], *, now_mono: float, now_wall: float
    ) -> None:
        """Apply the publisher's history (oldest first, as ``Publisher.history()`` returns it).

        ``now_mono``/``now_wall`` convert the snapshot's monotonic verification times to Unix
        time for ``onion_service_descriptor_verification_timestamp_seconds``.
        """
        if not history:
            return
        records = sorted(history, key=lambda r: r.number)
        newest = records[-1].number
        for record in records:
            for desc in record.descriptors:
                if desc.label not in DESCRIPTOR_LABELS:
                    continue
                self._observe_descriptor(record, desc, newest)
        for desc in records[-1].descriptors:
            if desc.label not in DESCRIPTOR_LABELS:
                continue
            self._metrics.set_upload_progress(
                desc.label, uploaded=desc.uploaded_count, responsible=len(desc.uploads)
            )
            finished = None
            if desc.verification in _FINISHED_VERIFICATION and desc.verified_at_mono is not None:
                finished = now_wall - (now_mono - desc.verified_at_mono)
            self._metrics.set_verification(
                desc.label, desc.verification.value, finished_at_wall=finished
            )
        oldest = records[0].number
        for key in [k for k in self._seen if k[0] < oldest]:
            del self._seen[key]

    def _observe_descriptor(
        self, record: PublishRecord, desc: DescriptorStatus, newest: int
    ) -> None:
        key = (record.number, desc.label)
        seen = self._seen.get(key)
        if seen is None:
            if any(k[0] > record.number and k[1] == desc.label for k in self._seen):
                return  # older than what we already track: it was superseded before we saw it
            seen = self._seen[key] = _DescriptorSeen({})
            if record.number == newest:
                self._metrics.descriptor_published(
                    desc.label,
                    published_at_wall=record.published_at_wall,
                    revision_counter=desc.revision_counter,
                    time_period=desc.time_period,
                    intro_points=desc.intro_point_count,
                    size_bytes=desc.size_bytes,
                    hsdirs_responsible=len(desc.uploads),
                )
        for upload in desc.uploads:
            done = seen.counted_attempts.get(upload.hsdir_fingerprint, 0)
            settled = _settled_attempts(upload)
            for attempt in range(done + 1, settled + 1):
                success = upload.state is UploadState.UPLOADED and attempt == upload.attempts
                self._metrics.hsdir_upload(
                    desc.label,
                    uploaded=success,
                    reason=None if success else upload.last_reason,
                )
            seen.counted_attempts[upload.hsdir_fingerprint] = max(done, settled)
        if seen.settled:
            return
        result = _publish_result(desc)
        if result is None and record.number < newest:
            result = "superseded"
        if result is not None:
            seen.settled = True
            self._metrics.publish_finished(desc.label, result)
