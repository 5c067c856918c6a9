"""What ``onionfleet demo`` shows and checks, without the I/O.

:mod:`onionfleet.cli.demo` runs the demo (private Tor network, a cluster of real node processes,
a client fetching through the master address, ``kill -9`` of the publisher). This module turns
what it observes into values and text, and judges the ``--check`` criteria:

* :func:`cluster_view` reads the nodes' status documents (docs/metrics.md, "Status document")
  and the per-node request counts into a :class:`ClusterView`;
* :func:`render_table` (a terminal that refreshes in place) and :func:`render_line` (one line per
  update, for logs and pipes) draw it;
* :func:`merged_publish_done` and :func:`failover_publish` say when a publish reached every
  responsible HSDir (both descriptors, rend-spec-v3 [WHEN-HSDESC]);
* :func:`summarize` judges a run against :data:`CRITERIA` and :func:`render_summary` prints it.

Times are plain numbers handed in by the caller: ``*_s`` are seconds since the demo started
(monotonic), ``*_wall`` Unix seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from onionfleet.observability.errors import StatusDocumentError
from onionfleet.observability.status import StatusDocument

__all__ = [
    "CRITERIA",
    "DESCRIPTOR_LABELS",
    "MAX_FAILOVER_S",
    "MIN_SUCCESS_RATIO",
    "CheckResult",
    "ClusterView",
    "DemoSummary",
    "DescriptorView",
    "FetchRecord",
    "NodeRow",
    "cluster_view",
    "count_requests",
    "failover_publish",
    "merged_publish_done",
    "node_phase",
    "parse_statuses",
    "publish_phase",
    "publisher_of",
    "render_line",
    "render_summary",
    "render_table",
    "summarize",
]

MAX_FAILOVER_S: Final = 10.0
MIN_SUCCESS_RATIO: Final = 0.95
# The descriptors for the current and the next time period (rend-spec-v3 [WHEN-HSDESC]).
DESCRIPTOR_LABELS: Final = ("first", "second")

# (name, what it means) of every --check criterion, in the order they are judged.
CRITERIA: Final[tuple[tuple[str, str], ...]] = (
    ("boot", "the network, the target onion, the client and every node came up and serve"),
    ("publisher", "the nodes elected one publisher"),
    (
        "merged_publish",
        "its merged descriptor (intro points of every node) reached every responsible HSDir, "
        "both descriptors (first and second)",
    ),
    ("every_node_served", "every node served at least one request before the failover"),
    (
        "failover",
        f"after kill -9 of the publisher, another node uploaded both descriptors to every "
        f"responsible HSDir within {MAX_FAILOVER_S:g} s",
    ),
    ("fetch_success", f"at least {MIN_SUCCESS_RATIO:.0%} of all fetches succeeded"),
)


@dataclass(frozen=True, slots=True)
class FetchRecord:
    """One GET of the master address on a fresh circuit (``started_s`` since the demo start)."""

    started_s: float
    seconds: float
    ok: bool
    node: str | None
    error: str | None = None

    @property
    def ended_s(self) -> float:
        return self.started_s + self.seconds


@dataclass(frozen=True, slots=True)
class DescriptorView:
    """One descriptor of the last publish: HSDirs that took it, and the verification state."""

    label: str
    uploaded: int
    responsible: int
    verification: str

    @property
    def complete(self) -> bool:
        return self.responsible > 0 and self.uploaded >= self.responsible


@dataclass(frozen=True, slots=True)
class NodeRow:
    """One node as the table shows it. ``state``: ``up``, ``starting``, ``killed`` or ``down``."""

    name: str
    state: str
    role: str
    mode: str
    term: int | None
    serving: bool
    intro_points: int | None
    requests: int


@dataclass(frozen=True, slots=True)
class ClusterView:
    """Everything one refresh of the live table shows."""

    rows: tuple[NodeRow, ...]
    publisher: str | None
    term: int | None
    publishes: int
    last_publish_wall: float | None
    descriptors: tuple[DescriptorView, ...]
    intro_points_per_node: Mapping[str, int]
    fetch_ok: int
    fetch_failed: int
    unattributed: int


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One ``--check`` criterion: passed or not, and the measured detail."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """The end of a run: timings (seconds since the start), requests, failover, checks."""

    ok: bool
    checks: tuple[CheckResult, ...]
    total_s: float
    network_ready_s: float | None = None
    nodes_serving_s: float | None = None
    first_merged_publish_s: float | None = None
    requests_per_node: Mapping[str, int] = field(default_factory=dict)
    requests_unattributed: int = 0
    fetches: int = 0
    fetches_failed: int = 0
    success_ratio: float | None = None
    median_fetch_s: float | None = None
    killed: str | None = None
    new_publisher: str | None = None
    failover_elected_s: float | None = None
    failover_upload_s: float | None = None
    failover_fetches: int = 0
    failover_fetches_failed: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``--json`` prints)."""
        return {
            "ok": self.ok,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
            "total_s": _r(self.total_s),
            "network_ready_s": _r(self.network_ready_s),
            "nodes_serving_s": _r(self.nodes_serving_s),
            "first_merged_publish_s": _r(self.first_merged_publish_s),
            "requests_per_node": dict(self.requests_per_node),
            "requests_unattributed": self.requests_unattributed,
            "fetches": self.fetches,
            "fetches_failed": self.fetches_failed,
            "success_ratio": _r(self.success_ratio, 4),
            "median_fetch_s": _r(self.median_fetch_s),
            "killed": self.killed,
            "new_publisher": self.new_publisher,
            "failover_elected_s": _r(self.failover_elected_s),
            "failover_upload_s": _r(self.failover_upload_s),
            "failover_fetches": self.failover_fetches,
            "failover_fetches_failed": self.failover_fetches_failed,
            "error": self.error,
        }


def _r(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


# ------------------------------------------------------------------------------------------------
# Reading status documents


def parse_statuses(
    raw: Mapping[str, Mapping[str, Any] | None],
) -> dict[str, StatusDocument | None]:
    """The nodes' ``/status`` JSON as typed documents (None: no answer, or not a document)."""
    out: dict[str, StatusDocument | None] = {}
    for name, doc in raw.items():
        try:
            out[name] = None if doc is None else StatusDocument.from_dict(doc)
        except StatusDocumentError:
            out[name] = None
    return out


def publisher_of(docs: Mapping[str, StatusDocument | None]) -> str | None:
    """The one node that says it is publisher in multi-node mode (None if none or several)."""
    found = [
        name
        for name, doc in docs.items()
        if doc is not None and doc.node.role == "publisher" and doc.node.mode == "multi"
    ]
    return found[0] if len(found) == 1 else None


def _descriptor_views(doc: StatusDocument | None) -> tuple[DescriptorView, ...]:
    if doc is None or doc.publisher is None:
        return ()
    return tuple(
        DescriptorView(d.label, d.uploaded, d.responsible, d.verification)
        for d in doc.publisher.descriptors
    )


def _both_complete(doc: StatusDocument | None) -> bool:
    views = {d.label: d for d in _descriptor_views(doc)}
    return all(label in views and views[label].complete for label in DESCRIPTOR_LABELS)


def merged_publish_done(docs: Mapping[str, StatusDocument | None], nodes: Sequence[str]) -> bool:
    """A publisher's last publish holds intro points of every node in ``nodes`` and both
    descriptors reached every responsible HSDir."""
    name = publisher_of(docs)
    doc = docs.get(name) if name is not None else None
    if doc is None or doc.publisher is None:
        return False
    per_node = doc.publisher.intro_points_per_node
    return all(per_node.get(n, 0) > 0 for n in nodes) and _both_complete(doc)


def failover_publish(
    docs: Mapping[str, StatusDocument | None], *, killed: str, since_wall: float
) -> str | None:
    """The node that took over from ``killed``: publisher now, published at or after
    ``since_wall``, both descriptors on every responsible HSDir. None until then."""
    name = publisher_of(docs)
    if name is None or name == killed:
        return None
    doc = docs.get(name)
    if doc is None or doc.publisher is None or doc.publisher.last_publish_wall is None:
        return None
    if doc.publisher.last_publish_wall < since_wall:
        return None
    return name if _both_complete(doc) else None


def node_phase(doc: StatusDocument | None) -> str:
    """How far one node got while booting, in a few words."""
    if doc is None:
        return "starting (no status yet)"
    tor = doc.node.tor
    if tor is not None and tor.bootstrap_percent < 100:
        return f"tor bootstrapping {tor.bootstrap_percent}%"
    if not doc.node.serving:
        return doc.node.verdict_reason
    return "serving"


def publish_phase(docs: Mapping[str, StatusDocument | None]) -> str:
    """Who publishes and how far the last publish got, in one line."""
    name = publisher_of(docs)
    if name is None:
        modes = sorted({d.node.mode for d in docs.values() if d is not None})
        return f"no publisher yet (modes: {', '.join(modes) or '-'})"
    doc = docs[name]
    if doc is None or doc.publisher is None or not doc.publisher.descriptors:
        term = doc.node.term if doc is not None else "-"
        return f"publisher {name} (term {term}), preparing its first publish"
    per_node = " ".join(f"{k}={v}" for k, v in sorted(doc.publisher.intro_points_per_node.items()))
    descs = ", ".join(f"{d.label} {d.uploaded}/{d.responsible}" for d in _descriptor_views(doc))
    return (
        f"publisher {name} (term {doc.node.term}), publish #{doc.publisher.publishes}: "
        f"HSDirs {descs}; intro points {per_node or '-'}"
    )


def count_requests(fetches: Sequence[FetchRecord], nodes: Sequence[str]) -> dict[str, int]:
    """Successful requests per node (every node listed, zero included)."""
    counts = dict.fromkeys(nodes, 0)
    for f in fetches:
        if f.ok and f.node is not None:
            counts[f.node] = counts.get(f.node, 0) + 1
    return counts


def cluster_view(
    docs: Mapping[str, StatusDocument | None],
    fetches: Sequence[FetchRecord],
    *,
    killed: frozenset[str] = frozenset(),
    last: ClusterView | None = None,
) -> ClusterView:
    """One refresh of the table from the latest status documents and the fetches so far.

    While no live node has a publish to show (the publisher was just killed), the publish
    facts of ``last`` (the previous view) stay on screen.
    """
    names = list(docs)
    requests = count_requests(fetches, names)
    rows = []
    for name in names:
        doc = docs[name]
        if doc is None:
            state = "killed" if name in killed else "starting"
            rows.append(NodeRow(name, state, "-", "-", None, False, None, requests[name]))
            continue
        own = None
        if doc.cluster is not None:
            own = next((m.intro_points for m in doc.cluster.members if m.state == "self"), None)
        rows.append(
            NodeRow(
                name,
                "up",
                doc.node.role,
                doc.node.mode,
                doc.node.term,
                doc.node.serving,
                own,
                requests[name],
            )
        )
    publisher = publisher_of(docs)
    # The current publisher's report; with none, the most recent publish anyone knows of.
    source = docs.get(publisher) if publisher is not None else None
    if source is None or source.publisher is None:
        reports = [d for d in docs.values() if d is not None and d.publisher is not None]
        reports.sort(key=lambda d: (d.publisher.last_publish_wall or 0.0) if d.publisher else 0.0)
        source = reports[-1] if reports else None
    report = source.publisher if source is not None else None
    terms = [d.node.term for d in docs.values() if d is not None]
    if report is None and last is not None:
        return ClusterView(
            rows=tuple(rows),
            publisher=publisher,
            term=max(terms) if terms else last.term,
            publishes=last.publishes,
            last_publish_wall=last.last_publish_wall,
            descriptors=last.descriptors,
            intro_points_per_node=last.intro_points_per_node,
            fetch_ok=sum(1 for f in fetches if f.ok),
            fetch_failed=sum(1 for f in fetches if not f.ok),
            unattributed=sum(1 for f in fetches if f.ok and f.node is None),
        )
    return ClusterView(
        rows=tuple(rows),
        publisher=publisher,
        term=max(terms) if terms else None,
        publishes=report.publishes if report is not None else 0,
        last_publish_wall=report.last_publish_wall if report is not None else None,
        descriptors=_descriptor_views(source),
        intro_points_per_node=dict(report.intro_points_per_node) if report is not None else {},
        fetch_ok=sum(1 for f in fetches if f.ok),
        fetch_failed=sum(1 for f in fetches if not f.ok),
        unattributed=sum(1 for f in fetches if f.ok and f.node is None),
    )


# ------------------------------------------------------------------------------------------------
# Rendering


def _ago(now_wall: float, wall: float | None) -> str:
    if wall is None:
        return "never"
    return f"{max(0.0, now_wall - wall):.1f} s ago"


def _descriptor_text(d: DescriptorView) -> str:
    return f"{d.label} {d.uploaded}/{d.responsible} HSDirs, {d.verification}"


def render_table(view: ClusterView, *, elapsed_s: float, now_wall: float) -> list[str]:
    """The live table (a fixed number of lines for a given cluster size)."""
    header = ("NODE", "STATE", "ROLE", "MODE", "TERM", "SERVING", "INTRO", "REQUESTS")
    cells = [
        (
            r.name,
            r.state,
            r.role,
            r.mode,
            "-" if r.term is None else str(r.term),
            "yes" if r.serving else "no",
            "-" if r.intro_points is None else str(r.intro_points),
            str(r.requests),
        )
        for r in view.rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    lines = [f"── onionfleet demo, {elapsed_s:6.1f} s ──"]
    for row in (header, *cells):
        padded = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
        lines.append(("  " + padded).rstrip())
    total = view.fetch_ok + view.fetch_failed
    lines.append(
        f"  fetches: {total} ({view.fetch_ok} ok, {view.fetch_failed} failed"
        + (f", {view.unattributed} not attributed" if view.unattributed else "")
        + ")"
    )
    lines.append(
        f"  publisher: {view.publisher or '(none)'}, term {'-' if view.term is None else view.term}"
        f", {view.publishes} publish(es), last {_ago(now_wall, view.last_publish_wall)}"
    )
    per_node = " ".join(f"{k}={v}" for k, v in sorted(view.intro_points_per_node.items()))
    lines.append(f"  intro points in the descriptor: {per_node or '-'}")
    by_label = {d.label: d for d in view.descriptors}
    for label in DESCRIPTOR_LABELS:
        d = by_label.get(label)
        lines.append("  " + (_descriptor_text(d) if d is not None else f"{label} -"))
    return lines


def render_line(view: ClusterView, *, elapsed_s: float, now_wall: float) -> str:
    """The same facts on one line (stdout is not a terminal)."""
    requests = " ".join(f"{r.name}={r.requests}" for r in view.rows)
    down = [r.name for r in view.rows if r.state != "up"]
    descs = "; ".join(_descriptor_text(d) for d in view.descriptors) or "no publish yet"
    return (
        f"[{elapsed_s:6.1f} s] requests {requests} (ok {view.fetch_ok}, failed "
        f"{view.fetch_failed}) | publisher {view.publisher or '-'} term "
        f"{'-' if view.term is None else view.term}"
        + (f" | down: {','.join(down)}" if down else "")
        + f" | last publish {_ago(now_wall, view.last_publish_wall)} | {descs}"
    )


# ------------------------------------------------------------------------------------------------
# Judging a run


def _median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def summarize(
    *,
    nodes: Sequence[str],
    fetches: Sequence[FetchRecord],
    total_s: float,
    network_ready_s: float | None,
    nodes_serving_s: float | None,
    publisher_elected: bool,
    first_merged_publish_s: float | None,
    killed: str | None,
    kill_s: float | None,
    new_publisher: str | None,
    failover_elected_s: float | None,
    failover_upload_s: float | None,
    error: str | None = None,
) -> DemoSummary:
    """Judge a run against :data:`CRITERIA` (``failover_*_s`` are seconds after the kill).

    A criterion whose step was never reached (the run stopped earlier) fails.
    """
    before_kill = [f for f in fetches if kill_s is None or f.started_s < kill_s]
    served = count_requests(before_kill, nodes)
    idle = [n for n in nodes if served.get(n, 0) == 0]
    failed = [f for f in fetches if not f.ok]
    ratio = (len(fetches) - len(failed)) / len(fetches) if fetches else None
    # Fetches that overlap the failover: from the kill until the new publisher's upload.
    window_end = None if kill_s is None or failover_upload_s is None else kill_s + failover_upload_s
    during = [
        f
        for f in fetches
        if kill_s is not None
        and f.ended_s >= kill_s
        and (window_end is None or f.started_s <= window_end)
    ]
    boot_ok = nodes_serving_s is not None
    checks = (
        CheckResult(
            "boot",
            boot_ok,
            f"network ready at {network_ready_s:.1f} s, every node serving at "
            f"{nodes_serving_s:.1f} s"
            if network_ready_s is not None and nodes_serving_s is not None
            else "did not come up",
        ),
        CheckResult(
            "publisher", publisher_elected, "elected" if publisher_elected else "none elected"
        ),
        CheckResult(
            "merged_publish",
            first_merged_publish_s is not None,
            f"at {first_merged_publish_s:.1f} s"
            if first_merged_publish_s is not None
            else "never complete",
        ),
        CheckResult(
            "every_node_served",
            bool(before_kill) and not idle,
            " ".join(f"{n}={served.get(n, 0)}" for n in nodes)
            + (f" (never served: {', '.join(idle)})" if idle else ""),
        ),
        CheckResult(
            "failover",
            failover_upload_s is not None and failover_upload_s <= MAX_FAILOVER_S,
            (
                f"{new_publisher} uploaded {failover_upload_s:.1f} s after kill -9 of {killed}"
                if failover_upload_s is not None
                else f"no new publisher uploaded after kill -9 of {killed}"
                if killed is not None
                else "publisher never killed"
            ),
        ),
        CheckResult(
            "fetch_success",
            ratio is not None and ratio >= MIN_SUCCESS_RATIO,
            f"{len(fetches) - len(failed)}/{len(fetches)} ok" if fetches else "no fetches",
        ),
    )
    return DemoSummary(
        ok=error is None and all(c.ok for c in checks),
        checks=checks,
        total_s=total_s,
        network_ready_s=network_ready_s,
        nodes_serving_s=nodes_serving_s,
        first_merged_publish_s=first_merged_publish_s,
        requests_per_node=count_requests(fetches, nodes),
        requests_unattributed=sum(1 for f in fetches if f.ok and f.node is None),
        fetches=len(fetches),
        fetches_failed=len(failed),
        success_ratio=ratio,
        median_fetch_s=_median([f.seconds for f in fetches if f.ok]),
        killed=killed,
        new_publisher=new_publisher,
        failover_elected_s=failover_elected_s,
        failover_upload_s=failover_upload_s,
        failover_fetches=len(during),
        failover_fetches_failed=sum(1 for f in during if not f.ok),
        error=error,
    )


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def render_summary(summary: DemoSummary) -> list[str]:
    """The closing summary, then one PASS/FAIL line per criterion."""
    per_node = " ".join(f"{k}={v}" for k, v in summary.requests_per_node.items())
    if summary.requests_unattributed:
        per_node += f" (not attributed: {summary.requests_unattributed})"
    lines = [
        "── summary ──",
        f"  private Tor network ready    {_s(summary.network_ready_s)}",
        f"  every node serving           {_s(summary.nodes_serving_s)}",
        f"  first merged publish         {_s(summary.first_merged_publish_s)}"
        "  (every node's intro points, both descriptors on every responsible HSDir)",
        f"  requests per node            {per_node or '-'}",
        f"  fetches                      {summary.fetches}, failed {summary.fetches_failed}"
        + (f", median {summary.median_fetch_s:.2f} s" if summary.median_fetch_s else ""),
    ]
    if summary.killed is not None:
        lines += [
            f"  kill -9                      {summary.killed} (the publisher)",
            f"  new publisher                {summary.new_publisher or '(none)'}, elected "
            f"{_s(summary.failover_elected_s)} after the kill",
            f"  failover upload              {_s(summary.failover_upload_s)} after the kill "
            "(both descriptors on every responsible HSDir)",
            f"  fetches during the failover  {summary.failover_fetches}, failed "
            f"{summary.failover_fetches_failed}",
        ]
        if summary.failover_fetches_failed:
            lines.append(
                "    (a request in flight to the killed node when it died gets no answer; "
                "a client retries, on another intro point)"
            )
    lines.append(f"  total                        {_s(summary.total_s)}")
    if summary.error:
        lines.append(f"  stopped early: {summary.error}")
    for check in summary.checks:
        lines.append(f"  {'PASS' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
    lines.append("demo check PASSED" if summary.ok else "demo check FAILED")
    return lines
