"""What a node remembers across restarts: its highest election term and the peers it knew.

Persisting the term keeps terms growing after a restart (cluster/election.py), and remembered
peer addresses let a node rejoin when its configured seeds are gone. The file is small JSON in the
data directory, written atomically (write to a temporary file, fsync, rename) with mode 0600.
A damaged file is reported and ignored: it only speeds up rejoining, it never decides anything.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NodeState", "load_state", "save_state"]

log = logging.getLogger(__name__)

_VERSION = 1


@dataclass(frozen=True, slots=True)
class NodeState:
    last_term_number: int = 0
    known_peers: tuple[str, ...] = ()


def load_state(path: Path) -> NodeState:
    """The saved state, or an empty one if there is none or it cannot be read."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return NodeState()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        log.warning("ignoring unreadable node state %s: %s", path, exc)
        return NodeState()
    if not isinstance(raw, dict) or raw.get("version") != _VERSION:
        log.warning("ignoring node state %s: unknown format", path)
        return NodeState()
    term = raw.get("last_term_number", 0)
    peers = raw.get("known_peers", [])
    if not isinstance(term, int) or term < 0 or isinstance(term, bool):
        term = 0
    if not isinstance(peers, list) or not all(isinstance(p, str) for p in peers):
        peers = []
    return NodeState(term, tuple(peers[:256]))


def save_state(path: Path, state: NodeState) -> None:
    """Write ``state`` atomically with mode 0600."""
    body = json.dumps(
        {
            "version": _VERSION,
            "last_term_number": state.last_term_number,
            "known_peers": list(state.known_peers),
        },
        sort_keys=True,
    )
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
