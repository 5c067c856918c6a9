"""The status document: JSON round trip, strict reading, builders from snapshots, rendering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from onionfleet.cli.status import render_status, status_endpoint_from_config
from onionfleet.cluster.membership import PeerStatus, PeerView
from onionfleet.cluster.messages import Role
from onionfleet.config import Endpoint
from onionfleet.errors import ConfigError
from onionfleet.node.health import HealthState, ProbeResult
from onionfleet.node.stats import ProxyStats
from onionfleet.observability.errors import StatusDocumentError
from onionfleet.observability.status import (
    ClusterMember,
    NodeStatus,
    StatusDocument,
    TorStatus,
)
from onionfleet.observability.status_build import (
    cluster_status,
    proxy_report,
    publisher_report,
    target_reports,
)
from onionfleet.publish.status import (
    DescriptorStatus,
    FetchOutcome,
    HsDirFetchResult,
    PublisherStatus,
    PublishRecord,
    VerificationState,
)
from onionfleet.publish.uploads import HsDirUpload, UploadState

NOW_WALL = 1_800_000_000.0
NOW_MONO = 5000.0
ONION = "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion"
FP = [f"{i:040X}" for i in range(1, 9)]


def sample_publisher_status() -> PublisherStatus:
    def desc(label: str, failed: int, verification: VerificationState) -> DescriptorStatus:
        ups = tuple(
            HsDirUpload(
                label,
                fp,
                UploadState.FAILED if i < failed else UploadState.UPLOADED,
                5 if i < failed else 1,
                "UPLOAD_REJECTED" if i < failed else None,
            )
            for i, fp in enumerate(FP)
        )
        return DescriptorStatus(
            label=label,
            time_period=20411 if label == "first" else 20412,
            time_period_length_min=1440,
            srv_is_disaster=False,
            blinded_key_b64="AAAA",
            revision_counter=1234567,
            size_bytes=21000,
            intro_point_count=6,
            hsdirs=FP,
            uploads=ups,
            uploaded_count=8 - failed,
            first_uploaded_at_mono=NOW_MONO - 100,
            all_uploaded_at_mono=None,
            verification=verification,
            verification_results=(
                HsDirFetchResult(FP[0], FetchOutcome.MATCH),
                HsDirFetchResult(FP[1], FetchOutcome.MISMATCH, missing=1, detail="1 missing"),
            ),
            verified_at_mono=NOW_MONO - 60,
        )

    last = PublishRecord(
        number=4,
        reasons=("intro points changed (+1 -1)",),
        published_at_wall=NOW_WALL - 192,
        published_at_mono=NOW_MONO - 192,
        per_node={"node-a": 3, "node-b": 3},
        intro_point_auth_keys_b64=frozenset(),
        descriptors=(
            desc("first", 0, VerificationState.VERIFIED),
            desc("second", 1, VerificationState.MISMATCH),
        ),
    )
    return PublisherStatus(
        last=last,
        publishes=4,
        selected_per_node={},
        nodes_without_intro_points=(),
        left_out_intro_points=0,
        flow_control="31 2",
        next_periodic_in_s=3000.0,
        waiting_for=None,
        last_error=None,
    )


def sample_document() -> StatusDocument:
    stats = ProxyStats(active=2, accepted_total=100, completed_total=97, idle_timeouts_total=1)
    stats.bytes_client_to_target = 2048
    stats.bytes_target_to_client = 5 * 1024 * 1024
    target = f"???{ONION[53:56]}.onion:80"
    t = stats.target(target)
    t.active, t.connections_total, t.connect_failures_total = 2, 99, 1
    peers = [
        PeerView(
            "node-b",
            "10.77.0.2:7420",
            PeerStatus.ALIVE,
            100,
            True,
            "",
            False,
            Role.FOLLOWER,
            NOW_MONO - 1.5,
            True,
        ),
        PeerView(
            "node-c",
            f"{ONION}:7420",
            PeerStatus.DEAD,
            100,
            False,
            "no healthy target",
            False,
            Role.FOLLOWER,
            NOW_MONO - 400,
            False,
        ),
    ]
    me = ClusterMember("node-a", "self", "publisher", True, False, intro_points=3)
    return StatusDocument(
        generated_at_wall=NOW_WALL,
        node=NodeStatus(
            node_id="node-a",
            version="0.1.0",
            role="publisher",
            mode="multi",
            term=7,
            serving=True,
            verdict_reason="serving: tor bootstrapped, 3 intro point(s), 1 healthy target(s)",
            draining=False,
            started_at_wall=NOW_WALL - 7200,
            term_holder="node-a",
            tor=TorStatus(100, "Done", True),
        ),
        cluster=cluster_status(
            me=me,
            peers=peers,
            intro_points={"node-b": 3},
            term=7,
            publisher="node-a",
            rejected={"bad_mac": 2, "replay": 0},
            now_mono=NOW_MONO,
        ),
        publisher=publisher_report(sample_publisher_status(), now_mono=NOW_MONO, now_wall=NOW_WALL),
        proxy=proxy_report(stats.snapshot()),
        targets=target_reports(
            {target: HealthState.HEALTHY},
            last_probes={target: ProbeResult(target, True, "HTTP 200", NOW_MONO, 0.84, 200)},
            proxy=stats.snapshot(),
        ),
    )


def test_round_trip_through_json() -> None:
    doc = sample_document()
    text = json.dumps(doc.to_dict())
    again = StatusDocument.from_dict(json.loads(text))
    assert again == doc
    assert ONION not in text  # the peer reached over tor shows redacted


def test_builders() -> None:
    doc = sample_document()
    assert doc.cluster is not None
    rows = {m.node_id: m for m in doc.cluster.members}
    assert list(rows) == ["node-a", "node-b", "node-c"]
    assert doc.cluster.peers_alive == 1
    assert rows["node-b"].last_seen_s_ago == pytest.approx(1.5)
    assert rows["node-b"].intro_points == 3 and rows["node-c"].intro_points is None
    assert rows["node-c"].address == "???ryd.onion:7420"
    assert doc.publisher is not None
    first, second = doc.publisher.descriptors
    assert (first.uploaded, first.responsible) == (8, 8)
    assert (second.uploaded, second.responsible) == (7, 8)
    assert first.verified_at_wall == NOW_WALL - 60
    assert second.uploads[0].reason == "UPLOAD_REJECTED"
    assert second.verification_results[1].outcome == "mismatch"
    assert doc.proxy is not None and doc.proxy.errors["idle_timeout"] == 1
    assert doc.targets[0].last_probe_latency_s == 0.84
    assert doc.targets[0].connections_total == 99


def test_minimal_document_single_node() -> None:
    node = NodeStatus("solo", "0.1.0", "follower", "single", 0, False, "not serving: x", False, 0.0)
    doc = StatusDocument(generated_at_wall=1.0, node=node)
    back = StatusDocument.from_dict(json.loads(json.dumps(doc.to_dict())))
    assert back == doc
    text = render_status(doc, now_wall=10.0)
    assert "cluster: none (single node)" in text
    assert "NOT serving — not serving: x" in text


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("node"), "status.node is missing"),
        (lambda d: d["node"].__setitem__("term", "7"), "status.node.term must be a whole number"),
        (
            lambda d: d["node"].__setitem__("serving", 1),
            "status.node.serving must be true or false",
        ),
        (lambda d: d.__setitem__("schema", 99), "schema 99"),
        (
            lambda d: d["cluster"].__setitem__("members", {}),
            "status.cluster.members must be a list",
        ),
        (
            lambda d: d["cluster"]["members"][0].__setitem__("node_id", None),
            "status.cluster.members[0].node_id must be a string",
        ),
        (lambda d: d.__setitem__("proxy", []), "status.proxy must be a JSON object"),
    ],
)
def test_from_dict_names_the_bad_field(mutate, message) -> None:  # type: ignore[no-untyped-def]
    raw = sample_document().to_dict()
    mutate(raw)
    with pytest.raises(StatusDocumentError, match=message.replace("[", r"\[").replace("]", r"\]")):
        StatusDocument.from_dict(raw)


def test_unknown_keys_are_ignored() -> None:
    raw = sample_document().to_dict()
    raw["future_section"] = {"x": 1}
    raw["node"]["future_field"] = True
    assert StatusDocument.from_dict(raw) == sample_document()


def test_render_summary() -> None:
    text = render_status(sample_document(), now_wall=NOW_WALL)
    assert text.endswith("\n")
    assert "node node-a (onionfleet 0.1.0): publisher, mode multi, term 7 (held by node-a)" in text
    assert "tor: bootstrap 100% (Done), control connected" in text
    assert "cluster: term 7, publisher node-a, 1 peer(s) alive" in text
    lines = text.splitlines()
    header = next(line for line in lines if "NODE" in line and "LAST SEEN" in line)
    assert header.split() == ["NODE", "STATE", "ROLE", "HEALTH", "INTRO", "LAST", "SEEN", "WHY"]
    assert any("node-b" in line and "1.5 s ago" in line for line in lines)
    assert any(
        "node-c" in line and "dead" in line and "no healthy target" in line for line in lines
    )
    assert "rejected peer messages: bad_mac=2" in text
    assert "publisher: 4 publish(es), last 3 min 12 s ago" in text
    assert "intro points per node: node-a=3 node-b=3" in text
    assert "first  TP 20411  revision 1234567" in text
    assert "uploaded 8/8  verification: verified (1 min 0 s ago)" in text
    assert "uploaded 7/8  verification: mismatch" in text
    assert f"HSDir {FP[0]}: failed UPLOAD_REJECTED (attempts 5)" in text
    assert f"fetch from {FP[1]}: mismatch: 1 missing" in text
    assert "proxy: 2 active, 100 accepted, 97 completed, 2.0 KiB to targets, 5.0 MiB" in text
    assert "errors: idle_timeout=1" in text
    assert any(
        "???ryd.onion:80" in line and "0.84 s" in line and "HTTP 200" in line for line in lines
    )
    assert ONION not in text


def test_endpoint_from_config(tmp_path: Path) -> None:
    cfg = tmp_path / "node.toml"
    cfg.write_text('[node]\ndata_dir = "state"\n[status]\nlisten = "127.0.0.1:9936"\n')
    assert status_endpoint_from_config(cfg) == Endpoint(host="127.0.0.1", port=9936)
    cfg.write_text('[node]\ndata_dir = "state"\n')
    assert status_endpoint_from_config(cfg) == Endpoint(unix_path=tmp_path / "state/status.sock")
    cfg.write_text('[status]\nlisten = "unix:/run/of/status.sock"\n')
    assert status_endpoint_from_config(cfg) == Endpoint(unix_path=Path("/run/of/status.sock"))
    cfg.write_text('[status]\nlisten = "nowhere"\n')
    with pytest.raises(ConfigError, match=r"status\.listen"):
        status_endpoint_from_config(cfg)
    cfg.write_text("[node]\n")
    with pytest.raises(ConfigError, match="--socket"):
        status_endpoint_from_config(cfg)
    cfg.write_text("[node\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        status_endpoint_from_config(cfg)
    with pytest.raises(ConfigError, match="cannot read"):
        status_endpoint_from_config(tmp_path / "missing.toml")
