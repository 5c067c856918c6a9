"""Harness for the multi-process cluster tests: starts ``cluster_node_proc.py`` processes and
follows their status lines (one JSON line per change, see that script)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HELPER = Path(__file__).with_name("cluster_node_proc.py")
TOKEN = "cluster-process-test-token-0123456789abcdef"


@dataclass
class NodeProc:
    name: str
    proc: subprocess.Popen[str]
    log_path: Path
    state: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    stopped: bool = False  # SIGSTOPped or killed: its last state is stale

    @property
    def is_publisher(self) -> bool:
        return not self.stopped and self.state.get("role") == "publisher"


class ProcCluster:
    """Starts helper processes (optionally inside ``ip netns exec NS``) and records every state
    line; ``publisher_claims`` maps each term number to the set of nodes that claimed it."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.nodes: dict[str, NodeProc] = {}
        self.lock = threading.Lock()
        self.publisher_claims: dict[int, set[str]] = {}

    def start(self, name: str, cfg: dict[str, Any], netns: str | None = None) -> NodeProc:
        cfg_path = self.workdir / f"{name}.json"
        cfg_path.write_text(json.dumps({"token": TOKEN, **cfg}))
        log_path = self.workdir / f"{name}.log"
        prefix: Sequence[str] = ("ip", "netns", "exec", netns) if netns else ()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        with log_path.open("w") as log:
            proc = subprocess.Popen(
                [*prefix, sys.executable, str(HELPER), str(cfg_path)],
                stdout=subprocess.PIPE, stderr=log, text=True, env=env,
            )
        node = NodeProc(name, proc, log_path)
        self.nodes[name] = node
        threading.Thread(target=self._follow, args=(node,), daemon=True).start()
        return node

    def _follow(self, node: NodeProc) -> None:
        assert node.proc.stdout is not None
        for line in node.proc.stdout:
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                if obj.get("ready"):
                    node.ready.set()
                    continue
                obj["seen"] = time.monotonic()
                node.state = obj
                node.history.append(obj)
                if obj.get("role") == "publisher":
                    self.publisher_claims.setdefault(obj["term"], set()).add(node.name)

    def wait(self, what: str, cond: Callable[[], bool], timeout_s: float) -> float:
        """Wait until ``cond()`` (checked at 20 Hz); returns the seconds it took."""
        start = time.monotonic()
        while time.monotonic() - start < timeout_s:
            with self.lock:
                if cond():
                    return time.monotonic() - start
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}; "
                             f"states: {self.describe()}")

    def publishers(self) -> list[str]:
        return [n.name for n in self.nodes.values() if n.is_publisher]

    def agreed_publisher(self) -> str | None:
        """The one publisher every running node names as holder of the highest term, if any."""
        live = [n for n in self.nodes.values() if not n.stopped]
        pubs = [n for n in live if n.is_publisher]
        if len(pubs) != 1:
            return None
        pub = pubs[0]
        term = pub.state["term"]
        if all(n.state.get("term") == term and n.state.get("holder") == pub.name for n in live):
            return pub.name
        return None

    def double_claims(self, after_term: int = 0) -> dict[int, set[str]]:
        """Term numbers above ``after_term`` that more than one node claimed."""
        return {t: s for t, s in self.publisher_claims.items() if len(s) > 1 and t > after_term}

    def describe(self) -> str:
        return "; ".join(
            f"{n.name}: {n.state.get('role')} term {n.state.get('term')}/{n.state.get('holder')}"
            f" peers {n.state.get('peers')}" + (" [stopped]" if n.stopped else "")
            for n in self.nodes.values()
        )

    def kill(self, name: str) -> None:
        node = self.nodes[name]
        node.stopped = True
        node.proc.send_signal(signal.SIGKILL)

    def close(self) -> None:
        for node in self.nodes.values():
            if node.proc.poll() is None:
                node.proc.send_signal(signal.SIGCONT)
                node.proc.terminate()
        deadline = time.monotonic() + 5
        for node in self.nodes.values():
            try:
                node.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait(5)

    def logs(self) -> str:
        return "\n".join(f"--- {n.name}\n{n.log_path.read_text()[-3000:]}"
                         for n in self.nodes.values() if n.log_path.exists())
