"""The failure attribution can blame onionfleet (issue 19): an injected product fault is
reported as onionfleet's, not tor's.

One real ``onionfleet run`` node (alone: tor publishes its own descriptor) in front of a target
that answers after 3 s, with the node's ``[proxy] idle_timeout_s = 1``: the node's proxy accepts
every stream and closes it after 1 s without data, before the answer. Every fetch through the
master address fails with an empty answer after SOCKS success; the tracer's events must put it
on onionfleet, naming the node. The control (the same target fetched directly) succeeds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from onionfleet.testnet import TestNetwork
from onionfleet.testnet.cluster import LocalCluster, describe_failures
from onionfleet.testnet.explain import VERDICT_ONIONFLEET

pytestmark = pytest.mark.testnet


@pytest.fixture(scope="module")
def faulty(
    testnet: TestNetwork, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    root: Path = tmp_path_factory.mktemp("attribution")
    cluster = LocalCluster(
        testnet,
        root,
        nodes=1,
        prefix="attr",
        trace=True,
        target_delay_s=3.0,
        proxy_idle_timeout_s=1.0,
    )
    try:
        cluster.start(timeout_s=180)
        yield cluster
    finally:
        cluster.close()


def _wait_single_mode_published(cluster: LocalCluster) -> None:
    node = cluster.nodes[0]

    def published() -> bool:
        doc = node.status()
        return doc is not None and doc["node"]["mode"] == "single"

    cluster.wait_for(published, timeout_s=60, what=f"{node.name} in single mode")
    # the node's tor uploads its own descriptor; the first fetch may still race it
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        r = cluster.fetch(timeout_s=30)
        if r.reply_code != 0xF0:
            return
        time.sleep(2)
    raise AssertionError("the node's descriptor was not found on the HSDirs for 90 s")


def test_injected_proxy_fault_is_blamed_on_onionfleet(faulty: LocalCluster) -> None:
    _wait_single_mode_published(faulty)
    results = [faulty.fetch(timeout_s=30) for _ in range(3)]
    explained = faulty.explain_all(results)
    report = describe_failures(explained)
    print(f"\n{report}")
    assert all(not r.ok for r in explained), "the injected fault did not fail the fetches"
    for r in explained:
        assert r.verdict == VERDICT_ONIONFLEET, report
        assert r.explanation is not None
        assert "SOCKS success" in r.explanation, report
        assert faulty.nodes[0].name in r.explanation, report  # the rendezvous is placed


def test_control_through_the_same_client_succeeds(faulty: LocalCluster) -> None:
    """The target itself is fine (only slow): the fault is the node's, not tor's."""
    result = faulty.fetch_control(timeout_s=30)
    assert result.ok, result.error
    assert result.seconds >= 3.0
