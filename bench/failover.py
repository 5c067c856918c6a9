"""Publisher failover on the private Tor network: kill -9 the publisher, time the takeover.

Starts its own loopback test network (3 authorities + 5 relays), a target onion service, a client
and 3 real ``onionfleet run`` nodes. Each trial: wait for a publish with every node's intro points
UPLOADED on all its HSDirs, SIGKILL the publisher process, and measure the seconds until a *new*
publisher's merged descriptor (without the dead node) is UPLOADED on every responsible HSDir
(polled every 0.2 s from the nodes' ``/status``); then restart the killed node for the next trial.

Baselines: Onionbalance 0.2.4 has no standby at all — after its process dies nothing ever
republishes, and the onion goes down at the next intro-point change
(shared/research/onionbalance-baseline.md); and the theoretical floor of our election policy,
``dead_after × heartbeat_interval + lease_grace`` (the survivors must first declare the publisher
dead and wait out its lease), measured here against that.

Usage: ``python bench/failover.py [--trials N]``. Prints the key figure last. Bounded < 5 min.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from onionfleet.testnet import TestNetwork
from onionfleet.testnet.cluster import LocalCluster

HEARTBEAT_S = 1.0
DEAD_AFTER = 3
LEASE_GRACE_S = 1.0
BUDGET_S = 270.0


def _say(message: str) -> None:
    print(f"[failover {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    began = time.monotonic()
    theory = DEAD_AFTER * HEARTBEAT_S + LEASE_GRACE_S
    samples: list[float] = []
    with TestNetwork(relays=5) as net, tempfile.TemporaryDirectory() as tmp:
        _say(f"test network up in {net.start_duration_s:.1f} s")
        cluster = LocalCluster(
            net,
            Path(tmp),
            nodes=3,
            prefix="fo",
            heartbeat_interval_s=HEARTBEAT_S,
            dead_after=DEAD_AFTER,
            lease_grace_s=LEASE_GRACE_S,
            progress=_say,
        )
        try:
            cluster.start()
            names = {n.name for n in cluster.nodes}
            for trial in range(1, args.trials + 1):
                if time.monotonic() - began > BUDGET_S - 60:
                    _say(f"time budget reached after {trial - 1} trials")
                    break
                cluster.wait_for(
                    lambda: all(n.status() is not None for n in cluster.nodes),
                    timeout_s=90,
                    what="every node answering",
                )
                cluster.wait_uploaded(
                    since_wall=0.0,
                    check=lambda s: set(s.per_node) == names,
                    timeout_s=90,
                    what="a descriptor with every node UPLOADED on all HSDirs",
                )
                old = cluster.publisher()
                if old is None:
                    _say("no single publisher right now; waiting")
                    cluster.wait_for(
                        lambda: cluster.publisher() is not None, timeout_s=30, what="a publisher"
                    )
                    old = cluster.publisher()
                assert old is not None
                killed_at = time.time()
                cluster.node(old).kill()
                snap, seen = cluster.wait_uploaded(
                    since_wall=killed_at,
                    check=lambda s, dead=old: s.publisher != dead and dead not in s.per_node,
                    timeout_s=60,
                    what="a new publisher's descriptor UPLOADED on all HSDirs",
                )
                samples.append(seen - killed_at)
                _say(
                    f"trial {trial}: killed {old}; {snap.publisher} published, UPLOADED "
                    f"{[(d['uploaded'], d['responsible']) for d in snap.descriptors]} after "
                    f"{samples[-1]:.1f} s"
                )
                cluster.node(old).start()
        finally:
            cluster.close()
    if not samples:
        print("no trial completed")
        return 1
    print(f"trials: {len(samples)}: " + ", ".join(f"{s:.1f} s" for s in samples))
    print(
        f"theoretical: dead_after x heartbeat + grace = {DEAD_AFTER} x {HEARTBEAT_S:g} s + "
        f"{LEASE_GRACE_S:g} s = {theory:.1f} s after the dead publisher's LAST heartbeat, i.e. "
        f"{theory - HEARTBEAT_S:.1f}-{theory:.1f} s after the kill, plus the publish itself; "
        "Onionbalance 0.2.4: no failover at all (nothing republishes after its process dies)"
    )
    median = statistics.median(samples)
    print(
        f"publisher kill -9 -> new publisher's descriptor UPLOADED on all HSDirs: median "
        f"{median:.1f} s, max {max(samples):.1f} s over {len(samples)} trials "
        f"({median / theory:.2f}x the {theory:.1f} s floor; Onionbalance: never)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
