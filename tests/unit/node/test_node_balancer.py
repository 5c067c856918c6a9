from __future__ import annotations

from collections import Counter

import pytest

from onionfleet.node.balancer import Balancer
from onionfleet.node.errors import NodeConfigError
from onionfleet.node.health import HealthState
from onionfleet.node.targets import TcpTarget

A = TcpTarget("10.0.0.1", 80, name="a")
B = TcpTarget("10.0.0.2", 80, name="b")
C = TcpTarget("10.0.0.3", 80, name="c", weight=3)


def test_needs_targets_and_unique_names() -> None:
    with pytest.raises(NodeConfigError, match="no target"):
        Balancer([])
    with pytest.raises(NodeConfigError, match="distinct"):
        Balancer([A, TcpTarget("10.9.9.9", 1, name="a")])


def test_least_connections_first() -> None:
    bal = Balancer([A, B])
    bal.acquire(A)
    bal.acquire(A)
    bal.acquire(B)
    assert bal.candidates() == [B, A]
    bal.release(A)
    bal.release(A)
    assert bal.candidates()[0] == A


def test_sequential_streams_follow_weights() -> None:
    bal = Balancer([A, B, C])
    picks: Counter[str] = Counter()
    for _ in range(500):
        target = bal.candidates()[0]
        picks[target.display] += 1
        bal.acquire(target)
        bal.release(target)
    assert picks["a"] == 100
    assert picks["b"] == 100
    assert picks["c"] == 300


def test_concurrent_streams_weighted_least_connections() -> None:
    bal = Balancer([A, C])
    for _ in range(8):
        bal.acquire(bal.candidates()[0])
    loads = {load.target.display: load.active for load in bal.loads()}
    assert loads == {"a": 2, "c": 6}


def test_health_tiers() -> None:
    bal = Balancer([A, B, C])
    bal.set_health("c", HealthState.UNHEALTHY)
    bal.set_health("b", HealthState.HEALTHY)
    assert bal.candidates() == [B, A, C]  # healthy, unknown, unhealthy last (fail-open)
    assert bal.healthy_count == 1
    strict = Balancer([A, B], fail_open=False)
    strict.set_health("a", HealthState.UNHEALTHY)
    strict.set_health("b", HealthState.UNHEALTHY)
    assert strict.candidates() == []


def test_returning_target_does_not_get_a_burst() -> None:
    bal = Balancer([A, B])
    bal.set_health("a", HealthState.HEALTHY)
    bal.set_health("b", HealthState.UNHEALTHY)
    for _ in range(100):
        t = bal.candidates()[0]
        bal.acquire(t)
        bal.release(t)
    bal.set_health("b", HealthState.HEALTHY)
    picks: Counter[str] = Counter()
    for _ in range(10):
        t = bal.candidates()[0]
        picks[t.display] += 1
        bal.acquire(t)
        bal.release(t)
    assert picks == Counter({"a": 5, "b": 5})


def test_release_never_negative() -> None:
    bal = Balancer([A])
    bal.release(A)
    assert bal.loads()[0].active == 0


def test_dead_target_is_not_tried_first_every_time() -> None:
    bal = Balancer([A, B])  # both UNKNOWN (no probe yet); "a" is dead
    tried_a = 0
    for _ in range(200):
        for t in bal.candidates():
            bal.acquire(t)
            if t is A:
                tried_a += 1
                bal.release(t)
                bal.report_connect_failure(t)
                continue
            bal.report_connect_success(t)
            break  # served by b; the stream stays open (least-connections sees it)
    # 8, 16, 32, 64, 128 picks of penalty: a handful of retries, not 200.
    assert 3 <= tried_a <= 7


def test_penalty_cleared_by_success_or_probe() -> None:
    bal = Balancer([A, B])
    bal.report_connect_failure(A)
    assert bal.candidates() == [B, A]
    bal.report_connect_success(A)
    assert bal.candidates() == [A, B]
    bal.report_connect_failure(A)
    bal.set_health("a", HealthState.HEALTHY)
    bal.set_health("b", HealthState.HEALTHY)
    assert bal.candidates() == [A, B]
