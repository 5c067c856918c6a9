"""``onionfleet demo``: a cluster, its clients and a failover, live, on a private Tor network.

Starts the private Tor network (3 directory authorities, 5 relays on 127.0.0.1), a target onion
service in front of a small web page, ``--nodes`` real ``onionfleet run`` node processes sharing
one master address, and a client tor. While it boots it prints each step with the seconds since
the start; then a fetcher thread GETs the master address on a fresh circuit again and again while
the main thread polls the nodes' ``/status`` and draws the live table (:mod:`onionfleet.demo`);
then it kills the publisher with SIGKILL and measures the failover; it ends with a summary and
the ``--check`` verdict. Everything it started stops with it (Ctrl-C too).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from types import FrameType
from typing import Any, TextIO

from onionfleet.clock import SystemClock
from onionfleet.demo import (
    CRITERIA,
    ClusterView,
    DemoSummary,
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
from onionfleet.errors import OnionfleetError
from onionfleet.observability.status import StatusDocument
from onionfleet.testnet import TestnetError, TestNetwork
from onionfleet.testnet.cluster import LocalCluster

__all__ = ["register"]

NETWORK_TIMEOUT_S = 150.0
SERVING_TIMEOUT_S = 180.0
PUBLISH_TIMEOUT_S = 150.0
FAILOVER_WAIT_S = 60.0
# A request in flight to the publisher when it is killed can get no answer at all (seen: the
# client's rendezvous circuit waits, tor gives up only after SocksTimeout, 120 s). The demo
# counts a request as failed after this long and goes on, as a user would reload.
FETCH_TIMEOUT_S = 10.0
# How long the demo fetches before the kill (at least until every node served) and after the
# new publisher's upload; the maximum extra wait for every node to serve once.
DURATION_S = 30.0
CHECK_DURATION_S = 10.0
AFTER_FAILOVER_S = 15.0
CHECK_AFTER_FAILOVER_S = 12.0
SPREAD_EXTRA_S = 90.0
# Requests before the kill, so that the one a kill -9 may cost weighs under 5 %.
MIN_FETCHES_BEFORE_KILL = 20


def _epilog() -> str:
    lines = ["--check passes when every one of these holds (else exit status 1):"]
    lines += [f"  {name}: {text}" for name, text in CRITERIA]
    lines += [
        "",
        f"--check schedule: fetch for {CHECK_DURATION_S:g} s (longer until every node served "
        f"and {MIN_FETCHES_BEFORE_KILL} requests were made), "
        f"kill -9 the publisher, fetch until {CHECK_AFTER_FAILOVER_S:g} s after the failover; "
        "about 1 to 2 minutes in all on a 2-core machine.",
        "Everything runs on 127.0.0.1 in a temporary directory, removed at the end unless --keep.",
    ]
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="see it work: a private Tor network, 3 nodes, a client, and a failover",
        description=(
            "Start a private Tor network on 127.0.0.1, a target onion with a small web page, "
            "a cluster of onionfleet nodes serving one master address, and a client; fetch "
            "continuously on fresh circuits and show a live table (requests per node, "
            "publisher, term, mode, last publish, per-descriptor HSDir uploads and "
            "verification); then kill -9 the publisher, show the failover and the fetches "
            "during it, and end with a summary."
        ),
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--nodes", type=int, default=3, metavar="N", help="cluster size, 2..8 (default: 3)"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="run unattended on a short fixed schedule; exit 1 if any criterion below fails",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="S",
        help=f"seconds of fetching before the publisher is killed (default: {DURATION_S:g}; "
        f"{CHECK_DURATION_S:g} with --check)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the network's directory (tor and node logs, configs) after the end",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the summary as JSON on stdout at the end (progress goes to stderr)",
    )
    parser.set_defaults(func=_cmd_demo)


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP become KeyboardInterrupt while the demo runs.

    SIGINT is set explicitly: a process started as a shell background job inherits SIG_IGN
    for it, and Python then installs no KeyboardInterrupt handler.
    """

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {
        sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class _Screen:
    """Permanent lines, plus a live block redrawn in place on a terminal (ANSI cursor moves).

    Not a terminal: the live block is written as one line per update instead.
    """

    def __init__(self, out: TextIO, *, tty: bool) -> None:
        self._out = out
        self.tty = tty
        self._live_lines = 0

    def line(self, text: str) -> None:
        self._clear_live()
        print(text, file=self._out, flush=True)

    def live(self, lines: list[str]) -> None:
        if not self.tty:
            for text in lines:
                print(text, file=self._out, flush=True)
            return
        width = max(20, shutil.get_terminal_size().columns - 1)
        self._clear_live()
        self._out.write("".join(text[:width] + "\n" for text in lines))
        self._out.flush()
        self._live_lines = len(lines)

    def _clear_live(self) -> None:
        if self.tty and self._live_lines:
            # Cursor to the start of the block's first line, then clear to the end of screen.
            self._out.write(f"\x1b[{self._live_lines}F\x1b[J")
            self._live_lines = 0


class _Fetcher(threading.Thread):
    """GETs the master address on a fresh circuit, one request at a time, until stopped."""

    def __init__(self, cluster: LocalCluster, since: Callable[[], float]) -> None:
        super().__init__(name="demo-fetcher", daemon=True)
        self._cluster = cluster
        self._since = since
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self._records: list[FetchRecord] = []

    def records(self) -> list[FetchRecord]:
        with self._lock:
            return list(self._records)

    def stop(self, timeout_s: float) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout=timeout_s)

    def run(self) -> None:
        while not self._halt.is_set():
            started = self._since()
            try:
                result = self._cluster.fetch(timeout_s=FETCH_TIMEOUT_S)
                record = FetchRecord(started, result.seconds, result.ok, result.node, result.error)
            except OnionfleetError as exc:
                record = FetchRecord(started, self._since() - started, False, None, str(exc))
            with self._lock:
                self._records.append(record)


class _Demo:
    def __init__(self, args: argparse.Namespace, out: TextIO) -> None:
        self.args = args
        self.clock = SystemClock()
        self.t0 = self.clock.monotonic()
        self.screen = _Screen(out, tty=out.isatty())
        self.check: bool = args.check
        self.duration_s: float = (
            args.duration
            if args.duration is not None
            else (CHECK_DURATION_S if self.check else DURATION_S)
        )
        self.after_s = CHECK_AFTER_FAILOVER_S if self.check else AFTER_FAILOVER_S
        self.names: list[str] = []
        self.fetcher: _Fetcher | None = None
        self.killed: str | None = None
        self.kill_s: float | None = None
        self.network_ready_s: float | None = None
        self.nodes_serving_s: float | None = None
        self.publisher_elected = False
        self.first_merged_publish_s: float | None = None
        self.new_publisher: str | None = None
        self.failover_elected_s: float | None = None
        self.failover_upload_s: float | None = None
        self._last_drawn = 0.0
        self._drawn_fetches = 0
        self._last_view: ClusterView | None = None
        self._interrupted = False

    def elapsed(self) -> float:
        return self.clock.monotonic() - self.t0

    def progress(self, message: str) -> None:
        self.screen.line(f"[{self.elapsed():6.1f} s] {message}")

    # -------------------------------------------------------------------------- the run

    def run(self) -> DemoSummary:
        error: str | None = None
        net = TestNetwork(relays=5, keep_dir=self.args.keep, progress=self.progress)
        # Every stop runs even if one fails: fetcher, then cluster, then network (LIFO).
        with ExitStack() as cleanup:
            cleanup.callback(net.close)
            try:
                self.progress("starting the private Tor network (3 authorities, 5 relays)")
                net.start(timeout_s=NETWORK_TIMEOUT_S)
                self.network_ready_s = self.elapsed()
                self.progress(f"network ready: {len(net.relay_names)} routers with HSDir flags")
                cluster = LocalCluster(
                    net, net.root_dir / "demo", nodes=self.args.nodes, progress=self.progress
                )
                cleanup.callback(cluster.close)
                self.names = [f"node-{chr(ord('a') + i)}" for i in range(self.args.nodes)]
                cluster.start(timeout_s=SERVING_TIMEOUT_S, wait_serving=False)
                self.names = [node.name for node in cluster.nodes]
                self.progress(f"master address {cluster.master_address}")
                self._boot(cluster)
                self.fetcher = _Fetcher(cluster, self.elapsed)
                cleanup.callback(self._stop_fetcher)
                self.fetcher.start()
                self.progress(
                    f"fetching http://{cluster.master_address[:12]}….onion/ on fresh circuits"
                )
                self._steady(cluster)
                self._failover(cluster)
            except TestnetError as exc:
                error = str(exc).splitlines()[0]
                self.progress(f"FAILED: {exc}")
            except KeyboardInterrupt:
                self._interrupted = True
                raise
            finally:
                self.progress("stopping the nodes, the client, the target and the network")
        return summarize(
            nodes=self.names,
            fetches=self.fetcher.records() if self.fetcher is not None else [],
            total_s=self.elapsed(),
            network_ready_s=self.network_ready_s,
            nodes_serving_s=self.nodes_serving_s,
            publisher_elected=self.publisher_elected,
            first_merged_publish_s=self.first_merged_publish_s,
            killed=self.killed,
            kill_s=self.kill_s,
            new_publisher=self.new_publisher,
            failover_elected_s=self.failover_elected_s,
            failover_upload_s=self.failover_upload_s,
            error=error,
        )

    def _stop_fetcher(self) -> None:
        # Let the request in flight finish and count (not on Ctrl-C).
        if self.fetcher is not None:
            self.fetcher.stop(timeout_s=0.0 if self._interrupted else FETCH_TIMEOUT_S + 5)

    def _docs(self, cluster: LocalCluster) -> dict[str, StatusDocument | None]:
        return parse_statuses(cluster.statuses())

    def _boot(self, cluster: LocalCluster) -> None:
        phases: dict[str, str] = {}

        def every_node_serving() -> bool:
            docs = self._docs(cluster)
            for name, doc in docs.items():
                phase = node_phase(doc)
                if phases.get(name) != phase:
                    phases[name] = phase
                    self.progress(f"{name}: {phase}")
            return all(d is not None and d.node.serving for d in docs.values())

        cluster.wait_for(
            every_node_serving,
            timeout_s=SERVING_TIMEOUT_S,
            what="every node serving (tor bootstrapped, intro points, healthy target)",
        )
        self.nodes_serving_s = self.elapsed()
        self.progress("every node is serving")
        last = [""]

        def merged_published() -> bool:
            docs = self._docs(cluster)
            if publisher_of(docs) is not None:
                self.publisher_elected = True
            phase = publish_phase(docs)
            if phase != last[0]:
                last[0] = phase
                self.progress(phase)
            return merged_publish_done(docs, self.names)

        cluster.wait_for(
            merged_published,
            timeout_s=PUBLISH_TIMEOUT_S,
            what="a merged publish with every node's intro points on every responsible HSDir",
        )
        self.first_merged_publish_s = self.elapsed()
        self.progress("first merged publish: both descriptors on every responsible HSDir")

    def _draw(self, cluster: LocalCluster, docs: dict[str, StatusDocument | None]) -> None:
        """Refresh the live view: in place on a terminal, else a line (at most one a second)."""
        records = self.fetcher.records() if self.fetcher is not None else []
        now = self.elapsed()
        if self.screen.tty:
            if now - self._last_drawn < 0.5:
                return
        elif len(records) == self._drawn_fetches or now - self._last_drawn < 1.0:
            return
        self._last_drawn = now
        self._drawn_fetches = len(records)
        killed = frozenset({self.killed}) if self.killed else frozenset()
        view = cluster_view(docs, records, killed=killed, last=self._last_view)
        self._last_view = view
        wall = self.clock.wall()
        if self.screen.tty:
            self.screen.live(render_table(view, elapsed_s=now, now_wall=wall))
        else:
            self.screen.live([render_line(view, elapsed_s=now, now_wall=wall)])

    def _steady(self, cluster: LocalCluster) -> None:
        start = self.elapsed()
        while True:
            docs = self._docs(cluster)
            self._draw(cluster, docs)
            records = self.fetcher.records() if self.fetcher is not None else []
            served = {r.node for r in records if r.ok and r.node is not None}
            spent = self.elapsed() - start
            if (
                spent >= self.duration_s
                and served >= set(self.names)
                and len(records) >= MIN_FETCHES_BEFORE_KILL
            ):
                return
            if spent >= self.duration_s + SPREAD_EXTRA_S:
                self.progress(
                    f"after {spent:.0f} s: {len(records)} requests, served by "
                    f"{', '.join(sorted(served)) or 'no node'}; going on with the failover"
                )
                return
            time.sleep(0.25)

    def _failover(self, cluster: LocalCluster) -> None:
        victim = None
        deadline = self.elapsed() + 30.0
        while victim is None:
            victim = publisher_of(self._docs(cluster))
            if victim is None:
                if self.elapsed() > deadline:
                    raise TestnetError("no unique publisher to kill after 30 s")
                time.sleep(0.25)
        node = cluster.node(victim)
        kill_wall = self.clock.wall()
        self.kill_s = self.elapsed()
        node.kill()
        self.killed = victim
        self.progress(f"kill -9 {victim} (pid {node.pid}), the publisher")
        while True:
            docs = self._docs(cluster)
            since = self.elapsed() - self.kill_s
            leader = publisher_of(docs)
            if leader is not None and leader != victim and self.failover_elected_s is None:
                self.failover_elected_s = since
                doc = docs.get(leader)
                term = doc.node.term if doc is not None else "-"
                self.progress(f"{leader} is the new publisher (term {term}), {since:.1f} s after")
            done = failover_publish(docs, killed=victim, since_wall=kill_wall)
            if done is not None:
                self.new_publisher = done
                self.failover_upload_s = since
                self.progress(
                    f"{done} uploaded both descriptors to every responsible HSDir, "
                    f"{since:.1f} s after the kill"
                )
                break
            if since > FAILOVER_WAIT_S:
                self.progress(f"no new publisher upload {FAILOVER_WAIT_S:g} s after the kill")
                return
            self._draw(cluster, docs)
            time.sleep(0.2)
        end = self.elapsed() + self.after_s
        while self.elapsed() < end:
            self._draw(cluster, self._docs(cluster))
            time.sleep(0.25)


def _cmd_demo(args: argparse.Namespace) -> int:
    if not 2 <= args.nodes <= 8:
        raise TestnetError(f"--nodes {args.nodes}: use 2 to 8 (a failover needs two nodes)")
    if args.duration is not None and not 0 <= args.duration <= 3600:
        raise TestnetError(f"--duration {args.duration:g}: use 0 to 3600 seconds")
    out = sys.stderr if args.json else sys.stdout
    demo = _Demo(args, out)
    with _terminate_as_interrupt():
        summary = demo.run()
    for line in render_summary(summary):
        print(line, file=out, flush=True)
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2), flush=True)
    return 0 if summary.ok else 1
