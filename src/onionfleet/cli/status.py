"""``onionfleet status`` and ``onionfleet drain``: ask a running daemon over its status endpoint.

Where the endpoint is: ``--config FILE`` (its ``[status] listen``, default
``<[node] data_dir>/status.sock``; only those two keys are read, so an operator who may not read
the secret files can still ask), ``--socket PATH`` or ``--url http://127.0.0.1:PORT``.

``status`` prints a summary (this node, the cluster, the publisher's last publish with per-HSDir
results and verification, proxy, targets) or, with ``--json``, the document itself
(docs/metrics.md, "Status document"). ``drain`` asks the daemon to drain and prints its answer;
it exits 1 when the daemon reports ``"drained": false``.
"""

from __future__ import annotations

import argparse
import json
import time
import tomllib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from onionfleet.config import Endpoint, parse_endpoint
from onionfleet.errors import ConfigError
from onionfleet.observability.status import (
    ClusterStatus,
    DescriptorReport,
    PublisherReport,
    StatusDocument,
)
from onionfleet.observability.status_client import StatusClient, endpoint_from_url

__all__ = ["endpoint_from_args", "register", "render_status", "status_endpoint_from_config"]


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    status = subparsers.add_parser(
        "status",
        help="show this node and its cluster: roles, term, health, publishes, verification",
        description=(
            "Ask the running daemon for its status: this node (role, mode, term, health, tor), "
            "the cluster (nodes, roles, health, intro points, last seen), the last publish "
            "(per descriptor: time period, revision counter, per-HSDir upload results, "
            "verification), proxy traffic and targets."
        ),
    )
    _add_endpoint_args(status)
    status.add_argument("--json", action="store_true", help="print the status document as JSON")
    status.set_defaults(func=_status)

    drain = subparsers.add_parser(
        "drain",
        help="drain this node: leave the descriptor, finish open streams",
        description=(
            "Ask the running daemon to drain: it stops being eligible (its intro points leave "
            "the merged descriptor), hands over the publisher role, and waits for open streams."
        ),
    )
    _add_endpoint_args(drain)
    drain.add_argument("--json", action="store_true", help="print the daemon's answer as JSON")
    drain.set_defaults(func=_drain)


def _add_endpoint_args(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", type=Path, help="the node's config file ([status] listen)")
    where.add_argument("--socket", type=Path, help="the daemon's status unix socket")
    where.add_argument("--url", help="the daemon's status URL, e.g. http://127.0.0.1:9936")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="give up after this long (default: 10 s for status, 330 s for drain)",
    )


def status_endpoint_from_config(path: Path) -> Endpoint:
    """``[status] listen`` of a config file, or ``<[node] data_dir>/status.sock``."""
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file: {exc.strerror}", source=str(path), fix="check the path"
        ) from exc
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f"is not valid TOML: {exc}",
            source=str(path),
            fix=f"run onionfleet config check {path}",
        ) from exc
    status = table.get("status", {})
    listen = status.get("listen") if isinstance(status, dict) else None
    if listen is not None:
        endpoint = parse_endpoint(listen) if isinstance(listen, str) else None
        if endpoint is None:
            raise ConfigError(
                f"is not host:port or unix:/path; got {listen!r}",
                key_path="status.listen",
                source=str(path),
                fix=f"run onionfleet config check {path}",
            )
        return endpoint
    node = table.get("node", {})
    data_dir = node.get("data_dir") if isinstance(node, dict) else None
    if not isinstance(data_dir, str) or not data_dir:
        raise ConfigError(
            "neither [status] listen nor [node] data_dir is set",
            key_path="status.listen",
            source=str(path),
            fix="set [node] data_dir, or pass --socket PATH",
        )
    base = Path(data_dir).expanduser()
    if not base.is_absolute():
        base = path.parent / base
    return Endpoint(unix_path=base / "status.sock")


def endpoint_from_args(args: argparse.Namespace) -> Endpoint:
    if args.socket is not None:
        return Endpoint(unix_path=Path(args.socket).absolute())
    if args.url is not None:
        return endpoint_from_url(args.url)
    return status_endpoint_from_config(args.config)


def _status(args: argparse.Namespace) -> int:
    client = StatusClient(endpoint_from_args(args), timeout_s=args.timeout or 10.0)
    doc = client.get_status()
    if args.json:
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return 0
    print(render_status(StatusDocument.from_dict(doc), now_wall=time.time()), end="")
    return 0


def _drain(args: argparse.Namespace) -> int:
    client = StatusClient(endpoint_from_args(args))
    result = client.drain(timeout_s=args.timeout or 330.0)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        drained = result.get("drained")
        head = "drained" if drained is not False else "drain NOT complete"
        message = result.get("message")
        print(f"{head}: {message}" if message else head)
        for key, value in result.items():
            if key not in ("drained", "message"):
                print(f"  {key}: {_plain(value)}")
    return 1 if result.get("drained") is False else 0


# ------------------------------------------------------------------------------------------------
# Rendering


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s ago"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s ago"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min ago"


def _when(wall: float | None, now_wall: float) -> str:
    if wall is None:
        return "never"
    stamp = datetime.fromtimestamp(wall, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{_ago(now_wall - wall)} ({stamp})"


def _bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    out = []
    for row in (header, *rows):
        cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=True)]
        out.append((indent + "  ".join(cells)).rstrip())
    return out


def _nonzero(counts: dict[str, int]) -> str:
    shown = [f"{k}={v}" for k, v in sorted(counts.items()) if v]
    return " ".join(shown) if shown else "none"


def _render_cluster(cluster: ClusterStatus) -> list[str]:
    lines = [
        f"cluster: term {cluster.term}, publisher {cluster.publisher or '(none)'}, "
        f"{cluster.peers_alive} peer(s) alive"
    ]
    rows = []
    for m in cluster.members:
        health = "draining" if m.draining else ("serving" if m.serving else "not serving")
        rows.append(
            [
                m.node_id,
                m.state,
                m.role,
                health,
                "-" if m.intro_points is None else str(m.intro_points),
                "-" if m.state == "self" else _ago(m.last_seen_s_ago),
                m.health_reason if not m.serving else "",
            ]
        )
    lines += _table(["NODE", "STATE", "ROLE", "HEALTH", "INTRO", "LAST SEEN", "WHY"], rows)
    lines.append(f"  rejected peer messages: {_nonzero(cluster.rejected_messages)}")
    return lines


def _render_descriptor(d: DescriptorReport, now_wall: float) -> list[str]:
    verified = d.verification
    if d.verified_at_wall is not None:
        verified += f" ({_ago(now_wall - d.verified_at_wall)})"
    lines = [
        f"  {d.label:<6} TP {d.time_period}  revision {d.revision_counter}  "
        f"{d.intro_points} intro points  {d.size_bytes} B  "
        f"uploaded {d.uploaded}/{d.responsible}  verification: {verified}"
    ]
    for u in d.uploads:
        if u.state != "uploaded":
            reason = f" {u.reason}" if u.reason else ""
            lines.append(f"      HSDir {u.hsdir}: {u.state}{reason} (attempts {u.attempts})")
    for check in d.verification_results:
        if check.outcome != "match":
            detail = f": {check.detail}" if check.detail else ""
            lines.append(f"      fetch from {check.hsdir}: {check.outcome}{detail}")
    return lines


def _render_publisher(p: PublisherReport, now_wall: float) -> list[str]:
    reasons = "; ".join(p.last_publish_reasons) or "-"
    lines = [
        f"publisher: {p.publishes} publish(es), last {_when(p.last_publish_wall, now_wall)}",
        f"  reasons: {reasons}",
    ]
    if p.intro_points_per_node:
        per_node = " ".join(f"{k}={v}" for k, v in sorted(p.intro_points_per_node.items()))
        lines.append(f"  intro points per node: {per_node}")
    for d in p.descriptors:
        lines += _render_descriptor(d, now_wall)
    if p.next_periodic_in_s is not None:
        lines.append(f"  next periodic republish in {p.next_periodic_in_s:.0f} s")
    if p.waiting_for:
        lines.append(f"  waiting for: {p.waiting_for}")
    if p.last_error:
        lines.append(f"  last error: {p.last_error}")
    return lines


def render_status(doc: StatusDocument, *, now_wall: float) -> str:
    """The human-readable summary ``onionfleet status`` prints (ends with a newline)."""
    n = doc.node
    holder = f" (held by {n.term_holder})" if n.term_holder else ""
    lines = [
        f"node {n.node_id} (onionfleet {n.version}): {n.role}, mode {n.mode}, "
        f"term {n.term}{holder}",
        f"  health: {'serving' if n.serving else 'NOT serving'} — {n.verdict_reason}",
    ]
    if n.tor is not None:
        connected = "connected" if n.tor.control_connected else "DISCONNECTED"
        lines.append(
            f"  tor: bootstrap {n.tor.bootstrap_percent}% ({n.tor.bootstrap_summary}), "
            f"control {connected}"
        )
    lines.append(f"  draining: {'yes' if n.draining else 'no'}")
    lines.append(f"  up since {_when(n.started_at_wall, now_wall)}")
    lines.append("")
    if doc.cluster is not None:
        lines += [*_render_cluster(doc.cluster), ""]
    else:
        lines += ["cluster: none (single node)", ""]
    if doc.publisher is not None:
        lines += [*_render_publisher(doc.publisher, now_wall), ""]
    if doc.proxy is not None:
        p = doc.proxy
        lines += [
            f"proxy: {p.active} active, {p.accepted_total} accepted, "
            f"{p.completed_total} completed, {_bytes(p.bytes_to_targets)} to targets, "
            f"{_bytes(p.bytes_to_clients)} to clients",
            f"  errors: {_nonzero(p.errors)}",
            "",
        ]
    if doc.targets:
        rows = [
            [
                t.target,
                t.health,
                "-" if t.last_probe_latency_s is None else f"{t.last_probe_latency_s:.2f} s",
                t.last_probe_reason or "-",
                str(t.active),
                str(t.connections_total),
                str(t.connect_failures_total),
            ]
            for t in doc.targets
        ]
        lines.append("targets:")
        lines += _table(
            ["TARGET", "HEALTH", "LATENCY", "LAST PROBE", "ACTIVE", "TOTAL", "FAILED"], rows
        )
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"
