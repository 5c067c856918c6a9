"""Cluster benchmark on the deterministic simulator (virtual time; the real codec and MAC).

50 nodes join in a chain (node i knows only node i-1), elect a publisher, run steady, and then
the publisher is killed (kill -9: no Leave) at a random phase of its heartbeat cycle. Measured:

* re-election time after publisher loss, in heartbeat intervals, from the kill and from the last
  heartbeat the dead publisher delivered to the node that took over; baseline: the theoretical
  minimum of this policy, ``dead_after + lease_grace_s / heartbeat_interval_s`` intervals after
  that last heartbeat;
* bytes/s sent per node in steady state, from the actual encoded frames; baseline: the same
  figure for a 3-node cluster run in the same process (heartbeats carry the peer list, so the
  per-node rate grows with the cluster size);
* time for the chain join to become a full mesh.

Usage: ``python bench/cluster.py [--trials N] [--nodes N]``. Prints the two headline figures last.
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import time

from onionfleet.cluster.membership import PeerStatus
from onionfleet.cluster.sim import Crash, Scenario, Simulation, node_name

INTERVAL_S = 2.0
DEAD_AFTER = 3
GRACE_S = 2.0
STEADY_FROM_S = 20.0
STEADY_TO_S = 30.0


def _scenario(seed: int, n: int, crash_at: float | None, duration_s: float) -> Scenario:
    rng = random.Random(seed)
    return Scenario(
        seed=seed,
        n_nodes=n,
        duration_s=duration_s,
        priorities=tuple(range(n)),
        seeds_of=tuple(() if i == 0 else (i - 1,) for i in range(n)),
        start_at=tuple(sorted(rng.uniform(0.0, 4.0) for _ in range(n))),
        faults=(Crash(crash_at, 0),) if crash_at is not None else (),
        heartbeat_interval_s=INTERVAL_S,
        dead_after=DEAD_AFTER,
        lease_grace_s=GRACE_S,
        jitter_s=0.3 * INTERVAL_S,
        intro_entries=3,
        intro_entry_bytes=1200,  # about the size of a real intro point section with its certs
    )


def _mesh_time(sim: Simulation, n: int, limit_s: float) -> float | None:
    t = 0.0
    while t < limit_s:
        t += 0.25
        sim.run_until(t)
        if all(
            node is not None and sum(p.status is PeerStatus.ALIVE for p in node.peers()) == n - 1
            for node in sim.nodes
        ):
            return t
    return None


def steady_bytes_per_node(seed: int, n: int) -> tuple[float, float, float]:
    """(bytes/s per node, frames/s per node, mean heartbeat frame bytes) in steady state."""
    sim = Simulation(_scenario(seed, n, None, STEADY_TO_S))
    sim.run_until(STEADY_FROM_S)
    bytes0, frames0 = sum(sim.report.bytes_sent), sum(sim.report.frames_sent)
    sim.run()
    span = (STEADY_TO_S - STEADY_FROM_S) * n
    b = (sum(sim.report.bytes_sent) - bytes0) / span
    f = (sum(sim.report.frames_sent) - frames0) / span
    return b, f, b / f if f else 0.0


def trial(seed: int, n: int) -> dict[str, float]:
    rng = random.Random(seed ^ 0x5EED)
    crash_at = STEADY_TO_S + rng.uniform(0.0, INTERVAL_S)
    sim = Simulation(_scenario(seed, n, crash_at, crash_at + 20.0))
    mesh_s = _mesh_time(sim, n, STEADY_FROM_S)
    sim.run_until(crash_at - 1e-6)
    if sim.report.final_publisher != 0:
        raise SystemExit(f"seed {seed}: expected {node_name(0)} to publish before the crash")
    report = sim.run()
    claims = [(t, i) for t, i, _ in report.claims if t > crash_at]
    if not claims:
        raise SystemExit(f"seed {seed}: nobody took over")
    first_t, first_i = claims[0]
    last_heard = report.last_delivery.get((0, first_i), 0.0)  # the claimant's last from n00
    return {
        "mesh_s": mesh_s if mesh_s is not None else float("nan"),
        "from_kill": (first_t - crash_at) / INTERVAL_S,
        "from_last_hb": (first_t - last_heard) / INTERVAL_S,
        "extra_claims": float(len(claims) - 1),
        "successor_ok": float(first_i == 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--nodes", type=int, default=50)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    n = args.nodes
    wall0 = time.perf_counter()
    results = [trial(1000 + k, n) for k in range(args.trials)]
    theory = DEAD_AFTER + GRACE_S / INTERVAL_S
    from_kill = [r["from_kill"] for r in results]
    from_hb = [r["from_last_hb"] for r in results]
    mesh = [r["mesh_s"] for r in results]
    print(
        f"{n} nodes, chain join, heartbeat {INTERVAL_S:g} s, dead_after {DEAD_AFTER}, "
        f"grace {GRACE_S:g} s, jitter 30 %, {args.trials} trials"
    )
    print(f"chain join -> full mesh: mean {statistics.mean(mesh):.2f} s, max {max(mesh):.2f} s")
    print(
        f"successor was the next-best node in {sum(r['successor_ok'] for r in results):.0f}/"
        f"{len(results)} trials; extra claims after the first: "
        f"{sum(r['extra_claims'] for r in results):.0f}"
    )
    print(
        f"re-election from the kill: mean {statistics.mean(from_kill):.2f}, "
        f"max {max(from_kill):.2f} heartbeats"
    )
    print(
        f"re-election from the claimant's last heartbeat of the dead publisher: mean "
        f"{statistics.mean(from_hb):.2f}, max {max(from_hb):.2f} heartbeats; baseline "
        f"(theoretical minimum dead_after + grace) {theory:.2f} -> ratio "
        f"{statistics.mean(from_hb) / theory:.3f}"
    )
    small_b, _, _ = steady_bytes_per_node(7, 3)
    big_b, big_f, frame_b = steady_bytes_per_node(7, n)
    print(f"steady state, {n} nodes: {big_f:.1f} frames/s per node, mean frame {frame_b:.0f} B")
    print(
        f"baseline 3 nodes: {small_b:.0f} B/s per node -> {n} nodes is "
        f"{big_b / small_b:.1f}x per node"
    )
    print(f"(simulation wall time {time.perf_counter() - wall0:.1f} s)")
    print(
        f"RE-ELECTION after publisher loss ({n} nodes): {statistics.mean(from_kill):.2f} "
        f"heartbeats (mean from kill; max {max(from_kill):.2f})"
    )
    print(f"BYTES/S PER NODE ({n} nodes, steady state): {big_b:.0f}")


if __name__ == "__main__":
    main()
