"""``onionfleet testnet up``: run the private Tor network by hand.

Starts 3 directory authorities, the relays and a client on 127.0.0.1, prints how to reach the
client, and stays up until Ctrl-C (or SIGTERM). ``--demo`` also serves a page behind an onion
service and fetches it through the client.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from onionfleet.testnet import (
    StaticHttpServer,
    TestnetError,
    TestNetwork,
    TorInstance,
    http_get_with_retry,
)
from onionfleet.testnet.fetch_report import format_reports

__all__ = ["register"]

DEMO_BODY = b"Hello from onionfleet\n"


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "testnet",
        help="run a private Tor network on 127.0.0.1",
        description="A private Tor network (3 directory authorities + relays) on 127.0.0.1.",
    )
    actions = parser.add_subparsers(dest="testnet_action", metavar="ACTION", required=True)
    up = actions.add_parser(
        "up",
        help="start the network and a client; stay up until Ctrl-C",
        description=(
            "Start the network and a client tor, print the client's SOCKS and control ports, "
            "and stay up until Ctrl-C."
        ),
    )
    up.add_argument("--relays", type=int, default=5, help="number of relays (default: 5)")
    up.add_argument(
        "--voting-interval",
        type=int,
        default=10,
        metavar="S",
        help="authorities' voting interval in seconds, at least 10 (default: 10)",
    )
    up.add_argument(
        "--keep", action="store_true", help="keep the network's directory after stopping"
    )
    up.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="put the network in this (empty or new) directory instead of a temporary one",
    )
    up.add_argument(
        "--demo",
        action="store_true",
        help="also serve a page behind an onion service and fetch it through the client",
    )
    up.add_argument(
        "--exit-after-demo",
        action="store_true",
        help="with --demo: exit after the fetch (0 if it succeeded, 1 if not)",
    )
    up.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="S",
        help="give up if the network is not ready after S seconds (default: 120)",
    )
    up.add_argument("--tor", default="tor", help="tor binary (default: tor)")
    up.set_defaults(func=_cmd_up)
    report = actions.add_parser(
        "fetch-report",
        help="print the fetch reports (failed fetches and why) of end-to-end test runs",
        description=(
            "Print every e2e-fetches.json under DIR: fetches per fetcher, and each failed "
            "fetch with its circuits, streams and verdict (onionfleet, tor or unexplained)."
        ),
    )
    report.add_argument("dir", type=Path, metavar="DIR", help="an artifacts directory")
    report.set_defaults(func=_cmd_fetch_report)


def _cmd_fetch_report(args: argparse.Namespace) -> int:
    print(format_reports(args.dir))
    return 0


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP stop the network (handlers live only here).

    SIGINT is set explicitly: a process started as a shell background job inherits SIG_IGN
    for it, and Python then installs no KeyboardInterrupt handler (shared/DESIGN.md §2).
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


def _progress_printer(t0: float) -> Callable[[str], None]:
    def progress(message: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f} s] {message}", file=sys.stderr, flush=True)

    return progress


def _print_client(client: TorInstance, net: TestNetwork) -> None:
    print(f"client SOCKS port:   127.0.0.1:{client.socks_port}", flush=True)
    print(f"client control port: 127.0.0.1:{client.control_port}", flush=True)
    print(f"control cookie:      {client.cookie_path}", flush=True)
    print(f"client data dir:     {client.data_dir}", flush=True)
    print(f"network directory:   {net.root_dir}", flush=True)


def _run_demo(net: TestNetwork, client: TorInstance, server: StaticHttpServer, t0: float) -> bool:
    """Put ``server`` behind an onion service and fetch it via the client; True on success."""
    service = net.add_onion_service("demo", target_port=server.port)
    address = service.onion_address
    if client.socks_port is None or address is None:
        print("demo FAILED: the client has no SOCKS port or the service no address", flush=True)
        return False
    print(f"demo onion address:  {address}", flush=True)
    try:
        status, body = http_get_with_retry(client.socks_port, f"http://{address}/", timeout_s=60.0)
    except TestnetError as exc:
        print(f"demo fetch FAILED after {time.monotonic() - t0:.1f} s: {exc}", flush=True)
        return False
    elapsed = time.monotonic() - t0
    print(f"demo HTTP status:    {status}", flush=True)
    print(f"demo body:           {body.decode(errors='replace').strip()}", flush=True)
    print(f"launch to first onion fetch: {elapsed:.1f} s", flush=True)
    return status == 200 and body == DEMO_BODY


def _cmd_up(args: argparse.Namespace) -> int:
    if args.exit_after_demo and not args.demo:
        raise TestnetError("--exit-after-demo needs --demo")
    t0 = time.monotonic()
    progress = _progress_printer(t0)
    net = TestNetwork(
        args.dir,
        relays=args.relays,
        voting_interval_s=args.voting_interval,
        keep_dir=args.keep,
        tor_binary=args.tor,
        progress=progress,
    )
    with _terminate_as_interrupt(), ExitStack() as stack:
        stack.callback(net.close)
        net.start(timeout_s=args.timeout)
        client = net.add_client("client")
        _print_client(client, net)
        if args.demo:
            server = stack.enter_context(StaticHttpServer(DEMO_BODY))
            ok = _run_demo(net, client, server, t0)
            if args.exit_after_demo or not ok:
                return 0 if ok else 1
        print("test network is up; press Ctrl-C to stop it", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            progress("stopping")
        return 0
