"""The simulator itself: its faults do what they say and its checker bites."""

from __future__ import annotations

import logging

import pytest

from onionfleet.cluster.errors import InvariantViolated
from onionfleet.cluster.messages import Term
from onionfleet.cluster.sim import (
    Crash,
    Loss,
    Partition,
    Restart,
    Scenario,
    Simulation,
    Skew,
    node_name,
    random_scenario,
)


def scenario(n: int = 3, faults: tuple[object, ...] = (), duration_s: float = 40.0) -> Scenario:
    return Scenario(
        seed=1,
        n_nodes=n,
        duration_s=duration_s,
        priorities=tuple(range(n)),
        seeds_of=tuple(() if i == 0 else (i - 1,) for i in range(n)),
        start_at=tuple(0.1 * i for i in range(n)),
        faults=faults,  # type: ignore[arg-type]
    )


@pytest.fixture(autouse=True)
def _quiet() -> None:
    logging.getLogger("onionfleet.cluster").setLevel(logging.ERROR)


def test_quiet_cluster_elects_best_once() -> None:
    report = Simulation(scenario()).run()
    assert [(i, t) for _, i, t in report.claims] == [(0, Term(1, node_name(0)))]
    assert report.final_publisher == 0
    assert report.rejects["replay"] == 0
    assert report.calm_checks > 0


def test_crash_restart_keeps_terms_unique_and_hands_back() -> None:
    report = Simulation(scenario(faults=(Crash(15.0, 0), Restart(25.0, 0)), duration_s=50.0)).run()
    terms = [t for _, _, t in report.claims]
    assert len(set(terms)) == len(terms) == 3  # n00, then n01, then n00 again (hand-back)
    assert [i for _, i, _ in report.claims] == [0, 1, 0]
    assert report.final_publisher == 0


def test_partition_gives_each_side_a_publisher_then_heals() -> None:
    part = Partition(12.0, 30.0, (frozenset({0}), frozenset({1, 2})))
    report = Simulation(scenario(faults=(part,), duration_s=50.0)).run()
    during = [i for t, i, _ in report.claims if 12.0 < t < 30.0]
    assert during == [1]  # the majority side elects n01; n00 keeps its own term alone
    assert report.final_publisher == 0


def test_skew_beyond_limit_is_rejected_and_counted() -> None:
    report = Simulation(scenario(faults=(Skew(10.0, 20.0, 2, 45.0),), duration_s=40.0)).run()
    assert report.rejects["clock_skew"] > 0
    within = Simulation(scenario(faults=(Skew(10.0, 20.0, 2, 25.0),), duration_s=40.0)).run()
    assert within.rejects["clock_skew"] == 0


def test_total_loss_is_a_fault_and_recovers() -> None:
    report = Simulation(scenario(faults=(Loss(10.0, 20.0, 1.0),), duration_s=45.0)).run()
    assert report.final_publisher == 0


def test_checker_reports_seed_on_violation() -> None:
    sim = Simulation(random_scenario(5))
    sim.run_until(5.0)
    with pytest.raises(InvariantViolated, match="ONIONFLEET_SIM_SEED=5"):
        sim._fail("synthetic")


def test_random_scenarios_are_reproducible() -> None:
    assert random_scenario(99) == random_scenario(99)
    assert random_scenario(99) != random_scenario(100)
    big = random_scenario(3, n_nodes=50, duration_s=30.0)
    assert big.n_nodes == 50 and big.duration_s == 30.0
