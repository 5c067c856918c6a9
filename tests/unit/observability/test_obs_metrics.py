"""Metrics: every family, every update method, the scrape-time collectors. No sockets."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from onionfleet.clock import ManualClock
from onionfleet.cluster.auth import RejectCounters
from onionfleet.cluster.errors import RejectReason
from onionfleet.node.health import HealthState
from onionfleet.node.stats import ProxyStats
from onionfleet.observability.metrics import (
    HEALTH_STATES,
    MODES,
    VERIFICATION_STATES,
    Metrics,
    normalise_upload_reason,
)
from onionfleet.publish.mode import Mode
from onionfleet.publish.status import VerificationState

ONION = "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start_wall=1_800_000_000.0)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry, clock: ManualClock) -> Metrics:
    return Metrics(registry, clock=clock, node_id="node-a", version="9.9")


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_label_sets_match_the_component_enums() -> None:
    assert set(VERIFICATION_STATES) == {s.value for s in VerificationState}
    assert set(HEALTH_STATES) == {s.value for s in HealthState}
    assert set(MODES) == {m.value for m in Mode}


def test_info_and_defaults(metrics: Metrics, registry: CollectorRegistry) -> None:
    assert value(registry, "onionfleet_info", node="node-a", version="9.9") == 1
    assert value(registry, "onionfleet_publisher") == 0
    # pre-initialised so rate() works from the first scrape
    for d in ("first", "second"):
        assert (
            value(
                registry, "onion_service_descriptor_publish_total", descriptor=d, result="partial"
            )
            == 0
        )
    # no age before the first publish
    assert value(registry, "onion_service_descriptor_age_seconds", descriptor="first") is None


def test_no_global_registry(clock: ManualClock) -> None:
    # Two Metrics on two registries coexist; twice on one registry is a duplicate.
    r1, r2 = CollectorRegistry(), CollectorRegistry()
    Metrics(r1, clock=clock, node_id="a")
    Metrics(r2, clock=clock, node_id="b")
    with pytest.raises(ValueError, match="Duplicated"):
        Metrics(r1, clock=clock, node_id="a")


def test_descriptor_published_and_age_at_scrape_time(
    metrics: Metrics, registry: CollectorRegistry, clock: ManualClock
) -> None:
    published = clock.wall()
    metrics.descriptor_published(
        "first",
        published_at_wall=published,
        revision_counter=123456,
        time_period=20411,
        intro_points=9,
        size_bytes=23456,
        hsdirs_responsible=8,
    )
    d = {"descriptor": "first"}
    assert value(registry, "onion_service_descriptor_revision_counter", **d) == 123456
    assert value(registry, "onion_service_descriptor_time_period", **d) == 20411
    assert value(registry, "onion_service_descriptor_introduction_points_number", **d) == 9
    assert value(registry, "onion_service_descriptor_size_bytes", **d) == 23456
    assert value(registry, "onion_service_descriptor_hsdirs_responsible", **d) == 8
    assert value(registry, "onion_service_descriptor_hsdirs_uploaded", **d) == 0
    assert value(registry, "onion_service_descriptor_last_publish_timestamp_seconds", **d) == (
        published
    )
    assert value(registry, "onion_service_descriptor_age_seconds", **d) == 0
    clock.advance(4 * 3600)
    assert value(registry, "onion_service_descriptor_age_seconds", **d) == 4 * 3600
    # a newer publish resets the age
    metrics.descriptor_published(
        "first",
        published_at_wall=clock.wall(),
        revision_counter=123999,
        time_period=20411,
        intro_points=9,
        size_bytes=23456,
        hsdirs_responsible=8,
    )
    clock.advance(5)
    assert value(registry, "onion_service_descriptor_age_seconds", **d) == 5


def test_uploads_publish_results_and_reasons(metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.hsdir_upload("first", uploaded=True)
    metrics.hsdir_upload("first", uploaded=True)
    metrics.hsdir_upload("second", uploaded=False, reason="UPLOAD_REJECTED")
    metrics.hsdir_upload("second", uploaded=False, reason="some new reason $AAAA")
    metrics.hsdir_upload("second", uploaded=False, reason=None)
    name = "onion_service_descriptor_hsdir_upload_total"
    assert value(registry, name, descriptor="first", result="uploaded", reason="none") == 2
    assert (
        value(registry, name, descriptor="second", result="failed", reason="UPLOAD_REJECTED") == 1
    )
    assert value(registry, name, descriptor="second", result="failed", reason="other") == 2
    metrics.set_upload_progress("second", uploaded=7, responsible=8)
    assert value(registry, "onion_service_descriptor_hsdirs_uploaded", descriptor="second") == 7
    metrics.publish_finished("first", "all_uploaded")
    assert (
        value(
            registry,
            "onion_service_descriptor_publish_total",
            descriptor="first",
            result="all_uploaded",
        )
        == 1
    )
    with pytest.raises(ValueError):
        metrics.publish_finished("first", "great")
    with pytest.raises(ValueError):
        metrics.hsdir_upload("third", uploaded=True)


def test_upload_reason_labels_are_bounded() -> None:
    assert normalise_upload_reason("UPLOAD_REJECTED") == "UPLOAD_REJECTED"
    assert normalise_upload_reason("REASON=upload_rejected") == "UPLOAD_REJECTED"
    assert normalise_upload_reason("TIMEOUT") == "TIMEOUT"
    assert normalise_upload_reason("$" + "A" * 40) == "other"
    assert normalise_upload_reason(None) == "other"


def test_verification(metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.set_verification("first", "in_progress", finished_at_wall=None)
    assert value(registry, "onion_service_descriptor_verified", descriptor="first") is None
    assert (
        value(
            registry,
            "onion_service_descriptor_verification_state",
            descriptor="first",
            state="in_progress",
        )
        == 1
    )
    metrics.set_verification("first", "mismatch", finished_at_wall=1234.0)
    assert value(registry, "onion_service_descriptor_verified", descriptor="first") == 0
    assert (
        value(
            registry, "onion_service_descriptor_verification_timestamp_seconds", descriptor="first"
        )
        == 1234.0
    )
    metrics.set_verification("first", "verified", finished_at_wall=1300.0)
    assert value(registry, "onion_service_descriptor_verified", descriptor="first") == 1
    # a new round in progress keeps the last result visible
    metrics.set_verification("first", "in_progress", finished_at_wall=None)
    assert value(registry, "onion_service_descriptor_verified", descriptor="first") == 1
    states = [
        value(registry, "onion_service_descriptor_verification_state", descriptor="first", state=s)
        for s in VERIFICATION_STATES
    ]
    assert states.count(1) == 1 and states.count(0) == len(VERIFICATION_STATES) - 1
    with pytest.raises(ValueError):
        metrics.set_verification("first", "fine", finished_at_wall=None)


def test_intro_points_per_node_replaces_the_set(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    metrics.set_intro_points({"node-a": 3, "node-b": 2})
    assert value(registry, "onion_service_introduction_points_number", node="node-b") == 2
    metrics.set_intro_points({"node-a": 4})
    assert value(registry, "onion_service_introduction_points_number", node="node-a") == 4
    assert value(registry, "onion_service_introduction_points_number", node="node-b") is None


def test_wireguard_handshake_ages_replace_the_set(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    name = "onionfleet_wireguard_handshake_age_seconds"
    metrics.set_wireguard_handshake_ages({"node-b": 12.5, "node-c": None})
    assert value(registry, name, peer="node-b") == 12.5
    assert value(registry, name, peer="node-c") == float("inf")
    metrics.set_wireguard_handshake_ages({"node-c": 3.0})
    assert value(registry, name, peer="node-b") is None
    assert value(registry, name, peer="node-c") == 3.0


def test_cluster_and_node_gauges(metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.set_election(is_publisher=True, term=7, publisher_known=False)
    assert value(registry, "onionfleet_publisher") == 1
    assert value(registry, "onionfleet_term") == 7
    assert value(registry, "onionfleet_publisher_known") == 1
    metrics.set_election(is_publisher=False, term=8, publisher_known=False)
    assert value(registry, "onionfleet_publisher_known") == 0
    metrics.set_mode("multi")
    assert value(registry, "onionfleet_mode", mode="multi") == 1
    assert value(registry, "onionfleet_mode", mode="single") == 0
    with pytest.raises(ValueError):
        metrics.set_mode("chaos")
    metrics.set_draining(True)
    metrics.set_serving(True)
    metrics.set_peers(alive=2, known=3)
    metrics.set_tor_bootstrap(100)
    metrics.set_tor_connected(True)
    assert value(registry, "onionfleet_draining") == 1
    assert value(registry, "onionfleet_node_serving") == 1
    assert value(registry, "onionfleet_peers_alive") == 2
    assert value(registry, "onionfleet_peers_known") == 3
    assert value(registry, "onionfleet_tor_bootstrap_percent") == 100
    assert value(registry, "onionfleet_tor_control_connected") == 1
    with pytest.raises(ValueError):
        metrics.set_tor_bootstrap(101)


def test_peer_rejects_read_live_at_scrape(metrics: Metrics, registry: CollectorRegistry) -> None:
    name = "onionfleet_peer_messages_rejected_total"
    assert value(registry, name, reason="bad_mac") is None  # no source yet
    counters = RejectCounters()
    metrics.watch_peer_rejects(counters.as_dict)
    assert value(registry, name, reason="bad_mac") == 0
    counters.record(RejectReason.BAD_MAC)
    counters.record(RejectReason.BAD_MAC)
    counters.record(RejectReason.REPLAY)
    assert value(registry, name, reason="bad_mac") == 2
    assert value(registry, name, reason="replay") == 1
    assert value(registry, name, reason="bad_mac") == 2  # reading twice counts nothing twice


def test_proxy_counters_read_live_at_scrape(metrics: Metrics, registry: CollectorRegistry) -> None:
    stats = ProxyStats()
    metrics.watch_proxy(stats.snapshot)
    stats.active = 2
    stats.accepted_total = 10
    stats.completed_total = 7
    stats.idle_timeouts_total = 1
    stats.bytes_client_to_target = 100
    stats.bytes_target_to_client = 5000
    t = stats.target(f"???{ONION[53:56]}.onion:80")
    t.active = 2
    t.connections_total = 9
    t.connect_failures_total = 1
    t.bytes_to_target = 100
    t.bytes_from_target = 5000
    assert value(registry, "onion_service_proxy_connections_active") == 2
    assert value(registry, "onion_service_proxy_connections_total") == 10
    assert value(registry, "onion_service_proxy_connections_completed_total") == 7
    assert value(registry, "onion_service_proxy_errors_total", kind="idle_timeout") == 1
    assert value(registry, "onion_service_proxy_errors_total", kind="refused_overload") == 0
    assert value(registry, "onion_service_proxy_bytes_total", direction="to_client") == 5000
    target = "???ryd.onion:80"
    assert value(registry, "onion_service_target_connections_active", target=target) == 2
    assert value(registry, "onion_service_target_connections_total", target=target) == 9
    assert value(registry, "onion_service_target_connect_failures_total", target=target) == 1
    assert (
        value(registry, "onion_service_target_bytes_total", target=target, direction="from_target")
        == 5000
    )
    stats.accepted_total = 11
    assert value(registry, "onion_service_proxy_connections_total") == 11
    metrics.watch_proxy(None)
    assert value(registry, "onion_service_proxy_connections_total") is None


def test_targets_health_and_probe_latency(metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.set_target_health("web", "unknown")
    assert value(registry, "onion_service_target_healthy", target="web") == 0
    assert value(registry, "onion_service_target_state", target="web", state="unknown") == 1
    metrics.set_target_health("web", "healthy")
    assert value(registry, "onion_service_target_healthy", target="web") == 1
    assert value(registry, "onion_service_target_state", target="web", state="unknown") == 0
    metrics.observe_probe("web", ok=True, latency_s=0.7)
    metrics.observe_probe("web", ok=False, latency_s=30.0)
    assert value(registry, "onion_service_target_probes_total", target="web", result="ok") == 1
    assert value(registry, "onion_service_target_probes_total", target="web", result="failed") == 1
    assert value(registry, "onion_service_target_probe_latency_seconds_count", target="web") == 2
    assert (
        value(registry, "onion_service_target_probe_latency_seconds_bucket", target="web", le="1.0")
        == 1
    )
    with pytest.raises(ValueError):
        metrics.set_target_health("web", "sick")


def test_no_onion_address_in_any_label(metrics: Metrics, registry: CollectorRegistry) -> None:
    # an operator may name a target or node after an address; labels still show it redacted
    metrics.set_target_health(f"{ONION}:80", "healthy")
    metrics.observe_probe(f"{ONION}:80", ok=True, latency_s=0.1)
    metrics.set_intro_points({ONION: 1})
    stats = ProxyStats()
    stats.target(f"{ONION}:80").active = 1
    metrics.watch_proxy(stats.snapshot)
    text = generate_latest(registry).decode()
    assert ONION not in text
    assert ONION[:56] not in text
    assert "???ryd.onion:80" in text


def test_every_family_is_documented(metrics: Metrics, registry: CollectorRegistry) -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[3] / "docs" / "metrics.md").read_text()
    metrics.watch_proxy(ProxyStats().snapshot)
    metrics.watch_peer_rejects(RejectCounters().as_dict)
    for family in registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        assert f"`{name}`" in doc, f"{name} is not in docs/metrics.md"
