"""Helpers for the tor-controller integration tests: a standalone offline tor, and the testnet."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def require_tor() -> str:
    tor = shutil.which("tor")
    if tor is None:
        if os.environ.get("CI") == "true":
            pytest.fail("tor is not installed (CI=true: a missing tor is a failure)")
        pytest.skip("tor is not installed")
    return tor


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class OfflineTor:
    """A real tor with ``DisableNetwork 1``: control port + control socket, cookie auth."""

    def __init__(self, root: Path) -> None:
        self.tor = require_tor()
        self.data_dir = root / "tor"
        self.data_dir.mkdir(mode=0o700)
        self.control_port = free_port()
        self.control_socket = self.data_dir / "control.sock"
        self.cookie_path = self.data_dir / "control_auth_cookie"
        self.log_path = self.data_dir / "tor.log"
        torrc = root / "torrc"
        torrc.write_text(
            f"DataDirectory {self.data_dir}\nDisableNetwork 1\nSocksPort 0\n"
            f"ControlPort 127.0.0.1:{self.control_port}\nControlSocket {self.control_socket}\n"
            f"CookieAuthentication 1\n__OwningControllerProcess {os.getpid()}\n"
            f"Log notice file {self.log_path}\nRunAsDaemon 0\n"
        )
        (root / "defaults").write_text("")
        self.torrc = torrc
        self.defaults = root / "defaults"
        self.start()

    def start(self) -> None:
        """(Re)start tor on the same data dir and socket; wait for the socket and cookie."""
        self.control_socket.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [self.tor, "-f", str(self.torrc), "--defaults-torrc", str(self.defaults)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not (self.control_socket.exists() and self.cookie_path.exists()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"offline tor did not start: {self.log_path.read_text()}")
            time.sleep(0.05)

    def hash_password(self, password: str) -> str:
        out = subprocess.run(
            [self.tor, "--quiet", "--hash-password", password],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip().splitlines()[-1]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def offline_tor_fixture(tmp_path: Path) -> Iterator[OfflineTor]:
    tor = OfflineTor(tmp_path)
    try:
        yield tor
    finally:
        tor.stop()
