"""Seeded cluster simulations: >= 1,000 random fault schedules, invariants checked every step.

A failure names its seed. Replay one seed (with a longer, verbose run) with
``ONIONFLEET_SIM_SEED=<seed> pytest tests/property/test_cluster_sim.py -s``; set
``ONIONFLEET_SIM_NODES`` to replay a seed that was run with a fixed node count (the 50-node runs).
"""

from __future__ import annotations

import logging
import os
import time

import pytest

from onionfleet.cluster.errors import InvariantViolated
from onionfleet.cluster.sim import Simulation, random_scenario

SCENARIOS = 1000
CHUNKS = 10
BIG_SEEDS = (1_000_001, 1_000_002)  # 50-node runs
BIG_NODES = 50
BIG_DURATION_S = 30.0


@pytest.fixture(autouse=True)
def _quiet_cluster_logs() -> None:
    # Skew rejections log warnings by design; thousands of runs need not capture them all.
    logging.getLogger("onionfleet.cluster").setLevel(logging.ERROR)


def _replay_seed() -> int | None:
    text = os.environ.get("ONIONFLEET_SIM_SEED")
    return int(text) if text else None


def _run(seed: int, n_nodes: int | None = None, duration_s: float | None = None) -> None:
    scenario = random_scenario(seed, n_nodes=n_nodes, duration_s=duration_s)
    try:
        Simulation(scenario).run()
    except InvariantViolated:
        print(
            f"\nFAILING SEED {seed} (n_nodes={scenario.n_nodes}); replay with "
            f"ONIONFLEET_SIM_SEED={seed}" + (f" ONIONFLEET_SIM_NODES={n_nodes}" if n_nodes else "")
        )
        print(f"scenario: {scenario}")
        raise


@pytest.mark.skipif(_replay_seed() is None, reason="set ONIONFLEET_SIM_SEED to replay a seed")
def test_replay_one_seed() -> None:
    seed = _replay_seed()
    assert seed is not None
    nodes = os.environ.get("ONIONFLEET_SIM_NODES")
    n_nodes = int(nodes) if nodes else None
    _run(seed, n_nodes, BIG_DURATION_S if n_nodes == BIG_NODES else None)


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_random_fault_schedules(chunk: int) -> None:
    per_chunk = SCENARIOS // CHUNKS
    start = time.perf_counter()
    for seed in range(chunk * per_chunk, (chunk + 1) * per_chunk):
        _run(seed)
    print(
        f"\nseeds {chunk * per_chunk}..{(chunk + 1) * per_chunk - 1}: "
        f"{time.perf_counter() - start:.1f}s"
    )


@pytest.mark.parametrize("seed", BIG_SEEDS)
def test_fifty_nodes(seed: int) -> None:
    _run(seed, BIG_NODES, BIG_DURATION_S)


def test_scenarios_are_deterministic() -> None:
    a = Simulation(random_scenario(7)).run()
    b = Simulation(random_scenario(7)).run()
    assert (a.steps, a.bytes_sent, a.claims, a.rejects) == (
        b.steps,
        b.bytes_sent,
        b.claims,
        b.rejects,
    )


def test_checker_catches_a_broken_election(monkeypatch: pytest.MonkeyPatch) -> None:
    """The invariants have teeth: without hand-overs some seeds must fail."""
    from onionfleet.cluster.settings import ClusterSettings

    monkeypatch.setattr(ClusterSettings, "handover_s", property(lambda self: 1e9))
    failures = 0
    for seed in range(40):
        try:
            Simulation(random_scenario(seed)).run()
        except InvariantViolated as exc:
            assert f"ONIONFLEET_SIM_SEED={seed}" in str(exc)
            failures += 1
    assert failures > 0
