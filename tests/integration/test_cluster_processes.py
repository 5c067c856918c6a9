"""Three real node processes on loopback (cluster-only: ClusterNode + TcpTransport, no tor).

* They elect one publisher; ``kill -9`` it → another takes over within
  ``dead_after × heartbeat_interval + grace`` (printed).
* SIGSTOP the publisher for longer than its lease, then SIGCONT (a partition that heals): at no
  point do two nodes claim the same term, and afterwards there is exactly one publisher.
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _cluster_procs import ProcCluster

INTERVAL_S = 0.4
DEAD_AFTER = 3
GRACE_S = 0.4
LEASE_S = DEAD_AFTER * INTERVAL_S
TAKEOVER_BOUND_S = LEASE_S + GRACE_S
# The helper checks its state at 20 Hz and stamps each line with CLOCK_MONOTONIC (shared by all
# processes): allow one poll period plus scheduling on top of the bound.
OBSERVE_SLACK_S = 0.1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ProcCluster]:
    c = ProcCluster(tmp_path)
    try:
        yield c
    finally:
        c.close()
        print(c.logs()[-4000:])


def test_three_processes_failover_and_sigstop_partition(cluster: ProcCluster) -> None:
    ports = {name: free_port() for name in ("n1", "n2", "n3")}
    seeds = [f"127.0.0.1:{ports['n1']}"]
    for i, name in enumerate(("n1", "n2", "n3")):
        cluster.start(name, {
            "node_id": name, "listen_host": "127.0.0.1", "listen_port": ports[name],
            "seeds": [] if name == "n1" else seeds, "priority": 10 + i,
            "heartbeat_interval_s": INTERVAL_S, "dead_after": DEAD_AFTER,
            "lease_grace_s": GRACE_S,
        })
    for node in cluster.nodes.values():
        assert node.ready.wait(15), f"{node.name} did not start: {cluster.logs()}"

    elected = cluster.wait("one agreed publisher", lambda: cluster.agreed_publisher() is not None,
                           20)
    first = cluster.agreed_publisher()
    assert first is not None
    # Nodes that start together may each claim Term(1, itself) before they hear each other
    # (distinct terms by design, election.py); from the agreed term on, numbers must be unique.
    with cluster.lock:
        baseline = cluster.nodes[first].state["term"]
    print(f"\nelected {first} in {elected:.2f} s")

    # kill -9 the publisher: another takes over within the bound.
    cluster.kill(first)
    killed_at = time.monotonic()
    cluster.wait("a new publisher", lambda: bool(cluster.publishers()), TAKEOVER_BOUND_S + 10)
    with cluster.lock:
        took = min(h["mono"] for n in cluster.nodes.values() if n.name != first
                   for h in n.history if h["role"] == "publisher" and h["mono"] > killed_at
                   ) - killed_at
    print(f"takeover after kill -9 of {first}: {took:.2f} s "
          f"(bound dead_after*interval+grace = {TAKEOVER_BOUND_S:.2f} s)")
    assert took <= TAKEOVER_BOUND_S + OBSERVE_SLACK_S
    cluster.wait("the survivors agree", lambda: cluster.agreed_publisher() is not None, 10)
    second = cluster.agreed_publisher()
    assert second is not None and second != first

    # SIGSTOP the new publisher for three leases, then SIGCONT.
    proc = cluster.nodes[second]
    proc.proc.send_signal(signal.SIGSTOP)
    proc.stopped = True
    third_took = cluster.wait("a publisher while one is stopped",
                              lambda: bool(cluster.publishers()), TAKEOVER_BOUND_S + 10)
    print(f"takeover while {second} is SIGSTOPped: {third_took:.2f} s")
    time.sleep(max(0.0, 3 * LEASE_S - third_took))
    proc.proc.send_signal(signal.SIGCONT)
    proc.stopped = False
    resumed = time.monotonic()
    settle = cluster.wait("exactly one publisher after SIGCONT",
                          lambda: cluster.agreed_publisher() is not None
                          and time.monotonic() - resumed > INTERVAL_S, 15)
    print(f"after SIGCONT: one publisher ({cluster.agreed_publisher()}) after {settle:.2f} s; "
          f"publisher claims by term: {dict(sorted(cluster.publisher_claims.items()))}")
    # Stays single for a few heartbeats.
    time.sleep(4 * INTERVAL_S)
    with cluster.lock:
        assert len(cluster.publishers()) == 1, cluster.describe()
        assert cluster.double_claims(after_term=baseline - 1) == {}
