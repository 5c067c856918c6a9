"""``onionfleet run --config FILE``: run one node until SIGTERM/SIGINT (or a drain).

SIGHUP reloads the config file: the logging level and format apply at once; every other changed
setting is named in one log line as needing a restart (the process keeps running unchanged).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import secrets
import signal
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from onionfleet.clock import SystemClock
from onionfleet.config import NodeConfig, load_config
from onionfleet.daemon import Daemon
from onionfleet.errors import ConfigError, OnionfleetError
from onionfleet.observability.logs import SecretRedactor, setup_logging

__all__ = ["register"]

log = logging.getLogger("onionfleet.run")

_LIVE_SECTIONS = ("logging",)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run", help="run this node (tor, proxy, probes, cluster, publisher)"
    )
    parser.add_argument("--config", type=Path, required=True, help="the node's TOML config file")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    redactor = setup_logging(cfg.logging.level, cfg.logging.format, sys.stderr)
    if cfg.cluster.token is not None:
        redactor.add_secret(cfg.cluster.token.reveal())
    try:
        asyncio.run(_serve(cfg, args.config, redactor))
    except BaseExceptionGroup as group:
        errors = _flatten(group)
        if errors and all(isinstance(e, OnionfleetError) for e in errors):
            for exc in errors:
                print(f"onionfleet: error: {exc}", file=sys.stderr)
            return 2
        raise
    return 0


async def _serve(cfg: NodeConfig, path: Path, redactor: SecretRedactor) -> None:
    daemon = Daemon(
        cfg,
        clock=SystemClock(),
        rng=random.Random(secrets.randbits(64)),
        token_bytes=secrets.token_bytes,
        redactor=redactor,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, daemon.request_stop)
    loop.add_signal_handler(signal.SIGHUP, _reload, daemon, path, redactor)
    try:
        await daemon.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)


def _reload(daemon: Daemon, path: Path, redactor: SecretRedactor) -> None:
    """SIGHUP: apply what can change live, name what needs a restart."""
    try:
        new = load_config(path)
    except ConfigError as exc:
        log.error("reload refused, keeping the running config: %s", exc)
        return
    old = daemon.cfg
    setup_logging(new.logging.level, new.logging.format, sys.stderr, redactor=redactor)
    changed = [
        f.name
        for f in fields(NodeConfig)
        if f.name not in ("source", *_LIVE_SECTIONS)
        and getattr(old, f.name) != getattr(new, f.name)
    ]
    if changed:
        log.warning(
            "reload: applied [logging]; these sections changed and need a restart: %s",
            ", ".join(f"[{name}]" for name in changed),
        )
    else:
        log.info("reload: applied [logging]; nothing else changed")


def _flatten(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            out.extend(_flatten(exc))
        else:
            out.append(exc)
    return out
