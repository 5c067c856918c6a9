"""The ``onionfleet`` command line.

Each sub-command lives in its own module of this package and exposes
``register(subparsers: argparse._SubParsersAction) -> None``, which adds a parser whose
``func`` default is a handler ``(args: argparse.Namespace) -> int``. This package is the only
place that prints and the only place that turns errors into exit codes:

* 0 success, 1 the command ran and reports a failure (a check failed),
* 2 bad input or an operator-facing error (:class:`~onionfleet.errors.OnionfleetError`),
* 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from onionfleet import __version__
from onionfleet.errors import OnionfleetError

__all__ = ["main"]

# Sub-command modules, in the order `--help` lists them.
_COMMAND_MODULES: tuple[str, ...] = (
    "demo",
    "init",
    "join",
    "run",
    "status",
    "config",
    "keys",
    "descriptor",
    "testnet",
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="onionfleet",
        description="Multi-node load balancing and failover for Tor v3 onion services.",
    )
    parser.add_argument("--version", action="version", version=f"onionfleet {__version__}")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level for messages on stderr (default: INFO)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        module = importlib.import_module(f"onionfleet.cli.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        code: int = func(args)
    except OnionfleetError as exc:
        print(f"onionfleet: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("onionfleet: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
