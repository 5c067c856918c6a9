"""``onionfleet demo --check`` end to end, and the demo's pure rendering and judging.

The end-to-end test runs the command as a user would (a subprocess: its own private Tor network,
target onion, three ``onionfleet run`` nodes, a client, kill -9 of the publisher) and prints its
summary into the test output. The other tests feed :mod:`onionfleet.demo` hand-made status
documents: no tor, no sockets.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from typing import Any

import pytest

from onionfleet.demo import (
    CRITERIA,
    ClusterView,
    FetchRecord,
    cluster_view,
    failover_publish,
    merged_publish_done,
    node_phase,
    parse_statuses,
    publish_phase,
    publisher_of,
    render_line,
    render_summary,
    render_table,
    summarize,
)

NODES = ["node-a", "node-b", "node-c"]
CHECK_TIMEOUT_S = 360


# ------------------------------------------------------------------------------------------------
# End to end


@pytest.mark.testnet
def test_demo_check_passes(capsys: pytest.CaptureFixture[str]) -> None:
    missing = [name for name in ("tor", "tor-gencert") if shutil.which(name) is None]
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {' and '.join(missing)} not installed", pytrace=False)
        pytest.skip(f"{' and '.join(missing)} not installed (Debian: apt-get install tor)")
    start = time.monotonic()
    res = subprocess.run(
        [sys.executable, "-m", "onionfleet", "demo", "--check", "--json"],
        capture_output=True,
        text=True,
        timeout=CHECK_TIMEOUT_S,
        check=False,
    )
    took = time.monotonic() - start
    summary_text = res.stderr[res.stderr.rfind("── summary ──") :]
    with capsys.disabled():
        print(f"\n`onionfleet demo --check` took {took:.1f} s (exit {res.returncode})")
        print(summary_text if "── summary ──" in res.stderr else res.stderr[-6000:])
    assert res.returncode == 0, res.stderr[-8000:]
    summary = json.loads(res.stdout)
    assert summary["ok"] is True
    assert [c["name"] for c in summary["checks"]] == [name for name, _ in CRITERIA]
    assert all(c["ok"] for c in summary["checks"])
    assert all(summary["requests_per_node"][n] >= 1 for n in NODES)
    assert summary["failover_upload_s"] <= 10.0
    assert summary["killed"] != summary["new_publisher"]
    assert took < 300, f"demo --check took {took:.0f} s; the budget is 5 min"


# ------------------------------------------------------------------------------------------------
# Pure parts: status documents in, views and verdicts out


def _desc(label: str, uploaded: int, responsible: int = 8) -> dict[str, Any]:
    return {
        "label": label,
        "time_period": 100 if label == "first" else 101,
        "revision_counter": 7,
        "intro_points": 6,
        "size_bytes": 9000,
        "uploaded": uploaded,
        "responsible": responsible,
        "verification": "verified" if label == "first" else "waiting_for_time_period",
    }


def _doc(
    name: str,
    *,
    role: str = "follower",
    mode: str = "multi",
    term: int = 1,
    serving: bool = True,
    bootstrap: int = 100,
    publish_wall: float | None = None,
    uploaded: int = 8,
    per_node: dict[str, int] | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": 1,
        "generated_at_wall": 1000.0,
        "node": {
            "node_id": name,
            "version": "0",
            "role": role,
            "mode": mode,
            "term": term,
            "serving": serving,
            "verdict_reason": "serving" if serving else "not serving: no healthy target",
            "draining": False,
            "started_at_wall": 900.0,
            "tor": {
                "bootstrap_percent": bootstrap,
                "bootstrap_summary": "Done",
                "control_connected": True,
            },
        },
        "cluster": {
            "term": term,
            "publisher": None,
            "peers_alive": 2,
            "members": [
                {
                    "node_id": name,
                    "state": "self",
                    "role": role,
                    "serving": serving,
                    "draining": False,
                    "intro_points": 2,
                }
            ],
        },
    }
    if publish_wall is not None:
        doc["publisher"] = {
            "publishes": 3,
            "last_publish_wall": publish_wall,
            "intro_points_per_node": per_node if per_node is not None else dict.fromkeys(NODES, 2),
            "descriptors": [_desc("first", uploaded), _desc("second", uploaded)],
        }
    return doc


def test_publisher_and_merged_publish() -> None:
    docs = parse_statuses(
        {
            "node-a": _doc("node-a", role="publisher", publish_wall=990.0),
            "node-b": _doc("node-b"),
            "node-c": _doc("node-c"),
        }
    )
    assert publisher_of(docs) == "node-a"
    assert merged_publish_done(docs, NODES)
    assert "publish #3" in publish_phase(docs) and "first 8/8" in publish_phase(docs)
    # A node missing from the merged descriptor, or an HSDir still pending: not done.
    partial = parse_statuses(
        {"node-a": _doc("node-a", role="publisher", publish_wall=990.0, uploaded=7)}
    )
    assert not merged_publish_done(partial, ["node-a"])
    two = parse_statuses(
        {
            "node-a": _doc("node-a", role="publisher", publish_wall=990.0, per_node={"node-a": 3}),
            "node-b": _doc("node-b"),
        }
    )
    assert not merged_publish_done(two, ["node-a", "node-b"])
    # Two publishers (or one in single mode) is no publisher.
    assert (
        publisher_of(
            parse_statuses({"a": _doc("a", role="publisher"), "b": _doc("b", role="publisher")})
        )
        is None
    )
    assert publisher_of(parse_statuses({"a": _doc("a", role="publisher", mode="single")})) is None


def test_failover_publish_needs_a_new_upload_after_the_kill() -> None:
    killed_at = 1000.0
    before = parse_statuses(
        {"node-a": None, "node-b": _doc("node-b", role="publisher", publish_wall=999.0)}
    )
    assert failover_publish(before, killed="node-a", since_wall=killed_at) is None
    pending = parse_statuses(
        {
            "node-a": None,
            "node-b": _doc("node-b", role="publisher", publish_wall=1002.0, uploaded=3),
        }
    )
    assert failover_publish(pending, killed="node-a", since_wall=killed_at) is None
    done = parse_statuses(
        {"node-a": None, "node-b": _doc("node-b", role="publisher", publish_wall=1002.0)}
    )
    assert failover_publish(done, killed="node-a", since_wall=killed_at) == "node-b"


def test_node_phase_words() -> None:
    assert node_phase(None).startswith("starting")
    docs = parse_statuses({"a": _doc("a", bootstrap=45), "b": _doc("b", serving=False)})
    assert node_phase(docs["a"]) == "tor bootstrapping 45%"
    assert node_phase(docs["b"]) == "not serving: no healthy target"
    assert parse_statuses({"x": {"schema": 99}}) == {"x": None}


def test_table_and_line_show_requests_publisher_and_uploads() -> None:
    docs = parse_statuses(
        {
            "node-a": _doc("node-a", role="publisher", term=2, publish_wall=995.0),
            "node-b": _doc("node-b", term=2),
            "node-c": None,
        }
    )
    fetches = [
        FetchRecord(1.0, 0.4, True, "node-a"),
        FetchRecord(1.5, 0.4, True, "node-b"),
        FetchRecord(2.0, 0.4, True, "node-b"),
        FetchRecord(2.5, 20.0, False, None, "timeout"),
    ]
    view = cluster_view(docs, fetches, killed=frozenset({"node-c"}))
    assert [r.requests for r in view.rows] == [1, 2, 0]
    assert view.rows[2].state == "killed"
    table = render_table(view, elapsed_s=12.0, now_wall=1000.0)
    text = "\n".join(table)
    assert "node-b" in text and "killed" in text and "multi" in text
    assert "publisher: node-a, term 2, 3 publish(es), last 5.0 s ago" in text
    assert "first 8/8 HSDirs, verified" in text
    assert "second 8/8 HSDirs, waiting_for_time_period" in text
    assert "4 (3 ok, 1 failed)" in text
    line = render_line(view, elapsed_s=12.0, now_wall=1000.0)
    assert "\n" not in line and "node-a=1 node-b=2 node-c=0" in line and "down: node-c" in line
    # With no publish visible any more (publisher killed), the last known one stays.
    gone = parse_statuses({"node-a": None, "node-b": _doc("node-b", term=2)})
    kept = cluster_view(gone, fetches, killed=frozenset({"node-a"}), last=view)
    assert isinstance(kept, ClusterView) and kept.publishes == 3 and kept.publisher is None


def _summary(**overrides: Any) -> Any:
    fetches = [FetchRecord(float(i), 0.5, True, NODES[i % 3]) for i in range(30)]
    args: dict[str, Any] = {
        "nodes": NODES,
        "fetches": fetches,
        "total_s": 90.0,
        "network_ready_s": 20.0,
        "nodes_serving_s": 45.0,
        "publisher_elected": True,
        "first_merged_publish_s": 48.0,
        "killed": "node-a",
        "kill_s": 20.0,
        "new_publisher": "node-b",
        "failover_elected_s": 3.4,
        "failover_upload_s": 3.8,
    }
    args.update(overrides)
    return summarize(**args)


def test_summary_passes_and_renders() -> None:
    s = _summary()
    assert s.ok and all(c.ok for c in s.checks)
    assert s.failover_fetches == 4 and s.failover_fetches_failed == 0  # started 20..23 s
    text = "\n".join(render_summary(s))
    assert "demo check PASSED" in text and "3.8 s after the kill" in text
    assert s.to_dict()["requests_per_node"] == {"node-a": 10, "node-b": 10, "node-c": 10}
    assert json.loads(json.dumps(s.to_dict()))["ok"] is True


@pytest.mark.parametrize(
    ("overrides", "failed"),
    [
        ({"failover_upload_s": 10.5}, "failover"),
        ({"failover_upload_s": None, "new_publisher": None}, "failover"),
        ({"first_merged_publish_s": None}, "merged_publish"),
        ({"publisher_elected": False}, "publisher"),
        ({"nodes_serving_s": None}, "boot"),
        (
            {"fetches": [FetchRecord(float(i), 0.5, True, "node-a") for i in range(30)]},
            "every_node_served",
        ),
        (
            {"fetches": [FetchRecord(float(i), 0.5, i % 10 != 0, NODES[i % 3]) for i in range(30)]},
            "fetch_success",
        ),
    ],
)
def test_summary_fails_each_criterion(overrides: dict[str, Any], failed: str) -> None:
    s = _summary(**overrides)
    assert not s.ok
    assert [c.name for c in s.checks if not c.ok] == [failed]
    assert "demo check FAILED" in render_summary(s)


def test_an_error_fails_the_run() -> None:
    s = _summary(error="timed out waiting for every node serving")
    assert not s.ok and "stopped early" in "\n".join(render_summary(s))
