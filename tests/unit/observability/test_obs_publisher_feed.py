"""PublisherMetricsFeed: snapshots in, each upload outcome and publish counted exactly once."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from onionfleet.clock import ManualClock
from onionfleet.observability.metrics import Metrics
from onionfleet.observability.publisher_feed import PublisherMetricsFeed
from onionfleet.publish.status import DescriptorStatus, PublishRecord, VerificationState
from onionfleet.publish.uploads import HsDirUpload, UploadState

HSDIRS = [f"{i:040X}" for i in range(1, 5)]


def desc(
    label: str,
    uploads: list[tuple[str, UploadState, int, str | None]],
    *,
    verification: VerificationState = VerificationState.NOT_STARTED,
    verified_at_mono: float | None = None,
    revision: int = 100,
) -> DescriptorStatus:
    ups = tuple(HsDirUpload(label, fp, st, n, reason) for fp, st, n, reason in uploads)
    return DescriptorStatus(
        label=label,
        time_period=20411,
        time_period_length_min=1440,
        srv_is_disaster=False,
        blinded_key_b64="AAAA",
        revision_counter=revision,
        size_bytes=20000,
        intro_point_count=6,
        hsdirs=tuple(u.hsdir_fingerprint for u in ups),
        uploads=ups,
        uploaded_count=sum(u.state is UploadState.UPLOADED for u in ups),
        first_uploaded_at_mono=None,
        all_uploaded_at_mono=None,
        verification=verification,
        verification_results=(),
        verified_at_mono=verified_at_mono,
    )


def record(number: int, *descriptors: DescriptorStatus, wall: float = 1000.0) -> PublishRecord:
    return PublishRecord(
        number=number,
        reasons=("first publish",),
        published_at_wall=wall,
        published_at_mono=0.0,
        per_node={"node-a": 3, "node-b": 3},
        intro_point_auth_keys_b64=frozenset(),
        descriptors=descriptors,
    )


def setup() -> tuple[CollectorRegistry, PublisherMetricsFeed, ManualClock]:
    registry = CollectorRegistry()
    clock = ManualClock(start_wall=2000.0)
    return registry, PublisherMetricsFeed(Metrics(registry, clock=clock, node_id="a")), clock


def uploads(registry: CollectorRegistry, d: str, result: str, reason: str) -> float:
    v = registry.get_sample_value(
        "onion_service_descriptor_hsdir_upload_total",
        {"descriptor": d, "result": result, "reason": reason},
    )
    return v or 0.0


def publishes(registry: CollectorRegistry, d: str, result: str) -> float:
    v = registry.get_sample_value(
        "onion_service_descriptor_publish_total", {"descriptor": d, "result": result}
    )
    return v or 0.0


P, U, R, F = UploadState.PENDING, UploadState.UPLOADED, UploadState.RETRY_WAIT, UploadState.FAILED


def test_each_attempt_counted_once_across_snapshots() -> None:
    registry, feed, _ = setup()
    a, b, c, d = HSDIRS
    snaps = [
        record(1, desc("first", [(a, P, 1, None), (b, P, 1, None), (c, P, 1, None)])),
        record(1, desc("first", [(a, U, 1, None), (b, R, 1, "UPLOAD_REJECTED"), (c, P, 1, None)])),
        # b retried (attempt 2 pending) and c failed + retried between snapshots
        record(
            1, desc("first", [(a, U, 1, None), (b, P, 2, "UPLOAD_REJECTED"), (c, P, 2, "TIMEOUT")])
        ),
        record(1, desc("first", [(a, U, 1, None), (b, U, 2, None), (c, F, 5, "TIMEOUT")])),
    ]
    for snap in snaps:
        feed.observe([snap], now_mono=0.0, now_wall=2000.0)
        feed.observe([snap], now_mono=0.0, now_wall=2000.0)  # idempotent
    assert uploads(registry, "first", "uploaded", "none") == 2  # a#1, b#2
    assert uploads(registry, "first", "failed", "UPLOAD_REJECTED") == 1  # b#1
    assert uploads(registry, "first", "failed", "TIMEOUT") == 5  # c#1..5
    assert publishes(registry, "first", "partial") == 1
    assert publishes(registry, "first", "all_uploaded") == 0
    g = registry.get_sample_value
    assert g("onion_service_descriptor_hsdirs_uploaded", {"descriptor": "first"}) == 2
    assert g("onion_service_descriptor_hsdirs_responsible", {"descriptor": "first"}) == 3
    assert g("onion_service_descriptor_revision_counter", {"descriptor": "first"}) == 100
    del d


def test_publish_results_and_superseded() -> None:
    registry, feed, clock = setup()
    a, b = HSDIRS[:2]
    one = record(1, desc("first", [(a, P, 1, None)]), desc("second", [(b, U, 1, None)]))
    feed.observe([one], now_mono=0.0, now_wall=2000.0)
    assert publishes(registry, "second", "all_uploaded") == 1
    two = record(
        2,
        desc("first", [(a, U, 1, None)], revision=200),
        desc("second", [(b, F, 5, "UPLOAD_REJECTED")], revision=201),
        wall=2500.0,
    )
    feed.observe([one, two], now_mono=0.0, now_wall=2600.0)
    assert publishes(registry, "first", "superseded") == 1
    assert publishes(registry, "first", "all_uploaded") == 1
    assert publishes(registry, "second", "none_uploaded") == 1
    assert uploads(registry, "second", "failed", "UPLOAD_REJECTED") == 5
    g = registry.get_sample_value
    assert g("onion_service_descriptor_revision_counter", {"descriptor": "first"}) == 200
    assert g(
        "onion_service_descriptor_last_publish_timestamp_seconds", {"descriptor": "first"}
    ) == (2500.0)
    clock.advance(100)  # wall 2100 … the age is computed from the clock at scrape time
    assert g("onion_service_descriptor_age_seconds", {"descriptor": "first"}) == 0.0
    clock.advance(500)
    assert g("onion_service_descriptor_age_seconds", {"descriptor": "first"}) == 100.0
    # the old record dropping out of history changes nothing
    feed.observe([two], now_mono=0.0, now_wall=2600.0)
    assert publishes(registry, "first", "superseded") == 1


def test_verification_time_is_converted_to_wall_time() -> None:
    registry, feed, _ = setup()
    a = HSDIRS[0]
    snap = record(
        1,
        desc(
            "first",
            [(a, U, 1, None)],
            verification=VerificationState.VERIFIED,
            verified_at_mono=90.0,
        ),
    )
    feed.observe([snap], now_mono=100.0, now_wall=5000.0)
    g = registry.get_sample_value
    assert g("onion_service_descriptor_verified", {"descriptor": "first"}) == 1
    assert g(
        "onion_service_descriptor_verification_timestamp_seconds", {"descriptor": "first"}
    ) == (4990.0)
    assert (
        g(
            "onion_service_descriptor_verification_state",
            {"descriptor": "first", "state": "verified"},
        )
        == 1
    )


def test_empty_history_is_a_no_op() -> None:
    registry, feed, _ = setup()
    feed.observe([], now_mono=0.0, now_wall=0.0)
    assert (
        registry.get_sample_value("onion_service_descriptor_verified", {"descriptor": "first"})
        is None
    )
