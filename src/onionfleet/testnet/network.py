"""The private Tor network: 3 directory authorities, N relays, and extra tors on demand.

Blocking API with bounded waits, so a pytest fixture or the CLI can drive it from anywhere.
Procedure and torrc options: shared/research/testnet.md (tor 0.4.9.11, 2 cores, loopback only).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType, TracebackType

from onionfleet.testnet import _dirstate, _torrc
from onionfleet.testnet._keygen import generate_authority_keys
from onionfleet.testnet._ports import PortAllocator
from onionfleet.testnet._process import Spawner, kill_process, stop_process
from onionfleet.testnet.errors import TestnetError

__all__ = ["Progress", "TestNetwork", "TorInstance"]

_log = logging.getLogger(__name__)

Progress = Callable[[str], None]

_POLL_S = 0.2
_NUDGE_EVERY_S = 4.0
_CLOSE_GRACE_S = 3.0
_HS_KEY_FILES = ("hs_ed25519_secret_key", "hs_ed25519_public_key", "hostname")
ROLE_AUTHORITY = "authority"
ROLE_RELAY = "relay"
ROLE_ONION_SERVICE = "onion-service"
ROLE_CLIENT = "client"
ROLE_BARE = "bare"


class _LogFollower:
    """Reads what a tor appended to one log file since the last call (tor opens logs O_APPEND)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""

    def skip_to_end(self) -> None:
        try:
            self._offset = self.path.stat().st_size
        except FileNotFoundError:
            self._offset = 0
        self._partial = b""

    def read_new(self) -> str:
        """Complete new lines since the last call."""
        try:
            with self.path.open("rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except FileNotFoundError:
            return ""
        self._offset += len(chunk)
        data = self._partial + chunk
        cut = data.rfind(b"\n") + 1
        self._partial = data[cut:]
        return data[:cut].decode(errors="replace")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except (FileNotFoundError, IsADirectoryError):
        return ""


class TorInstance:
    """One tor process of the test network: its files, ports and lifecycle."""

    __test__ = False

    def __init__(
        self,
        *,
        name: str,
        role: str,
        paths: _torrc.InstancePaths,
        torrc_lines: Sequence[str],
        control_port: int,
        socks_port: int | None,
        hs_dir: Path | None,
        tor_binary: str,
        empty_file: Path,
        spawner: Spawner,
        progress: Progress,
    ) -> None:
        self.name = name
        self.role = role
        self._paths = paths
        self.control_port = control_port
        self.socks_port = socks_port
        self.hs_dir = hs_dir
        self._tor_binary = tor_binary
        self._empty_file = empty_file
        self._spawner = spawner
        self._progress = progress
        self._proc: subprocess.Popen[bytes] | None = None
        self._notice = _LogFollower(paths.notice_log)
        self._rend = _LogFollower(paths.rend_log)
        self._bootstrap_pct: int | None = None
        self._uploads = 0
        paths.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        paths.data_dir.chmod(0o700)
        paths.torrc.write_text(_torrc.render_torrc(torrc_lines))

    def __repr__(self) -> str:
        return f"TorInstance(name={self.name!r}, role={self.role!r}, pid={self.pid})"

    # -- files ------------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self._paths.data_dir

    @property
    def torrc_path(self) -> Path:
        return self._paths.torrc

    @property
    def log_path(self) -> Path:
        return self._paths.notice_log

    @property
    def cookie_path(self) -> Path:
        return self._paths.cookie

    @property
    def onion_address(self) -> str | None:
        """``<56 base32>.onion`` from ``HiddenServiceDir/hostname`` once tor has written it."""
        if self.hs_dir is None:
            return None
        text = _read_text(self.hs_dir / "hostname").strip()
        return text if text.endswith(".onion") and len(text) == 62 else None

    @property
    def pid(self) -> int | None:
        if self._proc is None or self._proc.poll() is not None:
            return None
        return self._proc.pid

    # -- lifecycle --------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Launch tor (returns at once; see :meth:`wait_bootstrapped`)."""
        if self.is_running():
            raise TestnetError(f"tor {self.name} is already running (pid {self.pid})")
        if self._proc is not None:
            self._proc.wait()
        self._notice.skip_to_end()
        self._rend.skip_to_end()
        self._bootstrap_pct = None
        self._uploads = 0
        self._proc = self._spawner.spawn(
            [
                self._tor_binary,
                "-f",
                str(self._paths.torrc),
                "--defaults-torrc",
                str(self._empty_file),
            ],
            cwd=self._paths.data_dir,
            output=self._paths.stdout_log,
        )
        _log.debug("started tor %s (pid %d)", self.name, self._proc.pid)

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout_s``; no-op if not running."""
        if self._proc is not None:
            stop_process(self._proc, timeout_s=timeout_s, label=f"tor {self.name}")

    def kill(self) -> None:
        """SIGKILL (as ``kill -9``) and reap."""
        if self._proc is not None:
            kill_process(self._proc)

    def reload(self) -> None:
        """SIGHUP: tor re-reads its torrc and retries directory downloads at once.

        tor ``main.c:do_hup()`` calls ``router_reset_status_download_failures()`` and
        ``update_networkstatus_downloads()``: the way to cut short a relay's exponential
        back-off after it asked for a consensus before the first one existed.
        """
        self.check_alive()
        if self._proc is not None:
            self._proc.send_signal(signal.SIGHUP)

    def restart(self, wait: bool = True) -> None:
        """Stop (if running) and start again with the same torrc, keys and ports."""
        self.stop()
        self.start()
        if wait:
            self.wait_ready()

    # -- waiting ----------------------------------------------------------------------------
    def _poll(self) -> None:
        for line in self._notice.read_new().splitlines():
            pct = _dirstate.bootstrap_percent(line)
            if pct is not None and pct != self._bootstrap_pct:
                previous = self._bootstrap_pct
                self._bootstrap_pct = pct
                if previous is None or pct == 100 or pct // 25 != previous // 25:
                    self._progress(f"{self.name} bootstrapped {pct}%")
        new_uploads = _dirstate.count_descriptor_uploads(self._rend.read_new())
        if new_uploads:
            self._uploads += new_uploads
            self._progress(f"{self.name} uploaded its descriptor to {self._uploads} HSDirs")

    @property
    def bootstrap_percent(self) -> int | None:
        """Last ``Bootstrapped N%`` this run logged (None before the first)."""
        self._poll()
        return self._bootstrap_pct

    @property
    def descriptor_uploads(self) -> int:
        """Descriptor uploads the HSDirs accepted (HTTP 200) since this run started."""
        self._poll()
        return self._uploads

    def check_alive(self) -> None:
        """Raise :class:`TestnetError` quoting the log if this tor has exited."""
        if self._proc is None:
            raise TestnetError(f"tor {self.name} was never started; call start() first")
        code = self._proc.poll()
        if code is not None:
            raise self.error(f"tor {self.name} exited with code {code}")

    def error(self, message: str) -> TestnetError:
        """A :class:`TestnetError` that quotes the last lines of this tor's logs."""
        return TestnetError(
            f"{message}\n--- last lines of {self.log_path} ---\n{self.log_tail(25)}"
        )

    def _wait(self, what: str, done: Callable[[], bool], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            self._poll()
            if done():
                return
            self.check_alive()
            if time.monotonic() >= deadline:
                raise self.error(f"tor {self.name}: {what} not reached within {timeout_s:.0f} s")
            time.sleep(_POLL_S)

    def wait_bootstrapped(self, timeout_s: float = 60.0) -> None:
        """Wait for ``Bootstrapped 100%`` in this run's notice log."""
        self._wait("Bootstrapped 100%", lambda: self._bootstrap_pct == 100, timeout_s)

    def wait_published(self, min_uploads: int = 6, timeout_s: float = 60.0) -> None:
        """Onion service only: wait for ``hostname`` and ``min_uploads`` accepted uploads."""
        if self.hs_dir is None:
            raise TestnetError(f"tor {self.name} is not an onion service; nothing is published")
        self._wait(
            f"descriptor accepted by {min_uploads} HSDirs",
            lambda: self.onion_address is not None and self._uploads >= min_uploads,
            timeout_s,
        )

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Bootstrapped, and for an onion service also published."""
        deadline = time.monotonic() + timeout_s
        self.wait_bootstrapped(timeout_s)
        if self.hs_dir is not None:
            self.wait_published(timeout_s=max(1.0, deadline - time.monotonic()))

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` of the notice log (or tor's stdout if it died before logging)."""
        text = _dirstate.tail_lines(_read_text(self._paths.notice_log), lines)
        out = _dirstate.tail_lines(_read_text(self._paths.stdout_log), lines)
        if out and (not text or not self.is_running()):
            text = f"{text}\n--- stdout ---\n{out}" if text else out
        return text or "(no log output)"


class TestNetwork:
    """A private Tor network on 127.0.0.1: ``with TestNetwork() as net: ...``."""

    __test__ = False

    def __init__(
        self,
        root_dir: Path | None = None,
        *,
        relays: int = 5,
        voting_interval_s: int = 10,
        keep_dir: bool = False,
        tor_binary: str = "tor",
        gencert_binary: str = "tor-gencert",
        progress: Progress | None = None,
    ) -> None:
        if relays < 1:
            raise TestnetError(f"a test network needs at least 1 relay, got {relays}")
        if voting_interval_s < 10:
            raise TestnetError(f"voting interval must be at least 10 s, got {voting_interval_s}")
        self._root_given = root_dir is not None
        self.root_dir = (
            Path(root_dir).resolve()  # tor runs in its data dir: relative paths would double
            if root_dir is not None
            else Path(tempfile.mkdtemp(prefix="onionfleet-testnet-"))
        )
        self._n_relays = relays
        self.voting_interval_s = voting_interval_s
        self.keep_dir = keep_dir
        self.tor_binary = tor_binary
        self.gencert_binary = gencert_binary
        self._progress: Progress = progress or (lambda msg: _log.info("testnet: %s", msg))
        self._ports = PortAllocator()
        self._spawner: Spawner | None = None
        self._instances: dict[str, TorInstance] = {}
        self._authorities: list[_torrc.AuthorityEntry] = []
        self._started = False
        self._closed = False
        self.start_duration_s: float | None = None  # seconds start() took, once it returned
        self._owner_pid = os.getpid()
        self.empty_file = self.root_dir / "empty"
        self.resolv_conf = self.root_dir / "resolv.conf"

    # -- context manager --------------------------------------------------------------------
    def __enter__(self) -> TestNetwork:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- public -----------------------------------------------------------------------------
    @property
    def instances(self) -> Mapping[str, TorInstance]:
        return MappingProxyType(self._instances)

    @property
    def relay_names(self) -> list[str]:
        """Nicknames of the authorities and relays (every router the consensus must list)."""
        return [i.name for i in self._instances.values() if i.role in (ROLE_AUTHORITY, ROLE_RELAY)]

    def network_torrc_lines(self) -> list[str]:
        """torrc lines any further tor needs to join this network."""
        if not self._authorities:
            raise TestnetError("the test network has no authorities yet; call start() first")
        return _torrc.network_lines(self._authorities, self.empty_file)

    def start(self, timeout_s: float = 120.0) -> None:
        """Start 3 authorities and the relays; return once the network is usable by clients.

        Usable = an authority's consensus lists every router as Running with the HSDir flag,
        and every dir cache holds a microdesc consensus listing all of them plus their
        microdescriptors (shared/research/testnet.md, pitfalls 2 and 3).
        """
        if self._closed:
            raise TestnetError("this test network was closed; create a new one")
        if self._started:
            raise TestnetError("the test network is already started")
        self._started = True
        t0 = time.monotonic()
        deadline = t0 + timeout_s
        self.root_dir.mkdir(parents=True, exist_ok=True)
        if any(self.root_dir.iterdir()):
            raise TestnetError(
                f"test network directory {self.root_dir} is not empty; pass an empty or new "
                "directory (or none, for a fresh temporary one)"
            )
        self.empty_file.write_text("")
        self.resolv_conf.write_text("nameserver 127.0.0.1\n")
        self._spawner = Spawner()

        self._progress("generating directory authority keys")
        auth_names = [f"auth{i}" for i in range(1, 4)]
        auth_dirs = [self.root_dir / n for n in auth_names]
        auth_ports = [(self._ports.take(), self._ports.take()) for _ in auth_names]
        keys = generate_authority_keys(
            auth_dirs,
            [dir_port for _, dir_port in auth_ports],
            tor_binary=self.tor_binary,
            gencert_binary=self.gencert_binary,
            empty_file=self.empty_file,
        )
        self._authorities = [
            _torrc.AuthorityEntry(name, or_port, dir_port, k.v3ident_hex, k.fingerprint_hex)
            for name, (or_port, dir_port), k in zip(auth_names, auth_ports, keys, strict=True)
        ]
        for auth in self._authorities:
            self._new_instance(
                auth.nickname,
                ROLE_AUTHORITY,
                _torrc.relay_lines(
                    or_port=auth.or_port,
                    dir_port=auth.dir_port,
                    resolv_conf=self.resolv_conf,
                    exit_relay=False,
                )
                + _torrc.authority_lines(voting_interval_s=self.voting_interval_s),
            )
        for i in range(1, self._n_relays + 1):
            self._new_instance(
                f"relay{i}",
                ROLE_RELAY,
                _torrc.relay_lines(
                    or_port=self._ports.take(),
                    dir_port=self._ports.take(),
                    resolv_conf=self.resolv_conf,
                    exit_relay=True,
                ),
            )
        self._progress(f"launching 3 authorities and {self._n_relays} relays")
        for inst in self._instances.values():
            inst.start()
        self._wait_consensus(deadline, timeout_s)
        self._wait_caches(deadline, timeout_s)
        self.start_duration_s = time.monotonic() - t0
        self._progress(f"network ready after {self.start_duration_s:.1f} s")

    def add_onion_service(
        self,
        name: str,
        *,
        target_port: int,
        virtual_port: int = 80,
        key_dir: Path | None = None,
        extra_torrc: Sequence[str] = (),
        wait: bool = True,
    ) -> TorInstance:
        """A tor with a file-based v3 ``HiddenServiceDir`` forwarding to ``127.0.0.1:target_port``.

        With ``key_dir``, its ``hs_ed25519_secret_key``/``hs_ed25519_public_key``/``hostname``
        are copied in (dir 0700, files 0600); otherwise tor generates a key. ``wait`` waits for
        bootstrap and for the descriptor to be accepted by several HSDirs.
        """
        data_dir = self.root_dir / name
        hs_dir = data_dir / "hs"
        paths = _torrc.InstancePaths(data_dir)
        self._check_new_name(name)
        hs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        data_dir.chmod(0o700)
        hs_dir.chmod(0o700)
        if key_dir is not None:
            copied = 0
            for fname in _HS_KEY_FILES:
                src = Path(key_dir) / fname
                if src.exists():
                    shutil.copyfile(src, hs_dir / fname)
                    (hs_dir / fname).chmod(0o600)
                    copied += 1
            if not (hs_dir / "hs_ed25519_secret_key").exists():
                raise TestnetError(
                    f"onion service {name}: key_dir {key_dir} has no hs_ed25519_secret_key; "
                    "point it at a tor HiddenServiceDir"
                )
        lines = [
            *_torrc.onion_service_lines(
                hs_dir=hs_dir,
                virtual_port=virtual_port,
                target_port=target_port,
                rend_log=paths.rend_log,
            ),
            "SocksPort 0",
        ]
        inst = self._new_instance(
            name, ROLE_ONION_SERVICE, lines + list(extra_torrc), hs_dir=hs_dir
        )
        return self._launch(inst, wait)

    def add_client(
        self, name: str, *, extra_torrc: Sequence[str] = (), wait: bool = True
    ) -> TorInstance:
        """A client tor with a SOCKS port (ExtendedErrors, IsolateSOCKSAuth) and a control port."""
        return self._add_socks_tor(name, ROLE_CLIENT, extra_torrc, wait)

    def add_tor(
        self, name: str, *, extra_torrc: Sequence[str] = (), wait: bool = True
    ) -> TorInstance:
        """A bare tor on this network (SOCKS + control ports) for callers to configure."""
        return self._add_socks_tor(name, ROLE_BARE, extra_torrc, wait)

    def close(self) -> None:
        """Stop every tor (SIGTERM, then SIGKILL) and remove ``root_dir`` unless ``keep_dir``."""
        if self._closed:
            return
        self._closed = True
        instances = list(self._instances.values())
        for inst in reversed(instances):  # SIGTERM everyone first, then reap: fast shutdown
            proc = inst._proc
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
        # Relays that got a SIGHUP (see _wait_caches) sometimes log "exiting cleanly" and then
        # hang in tor's shutdown (tor 0.4.9.11); the network is going away, so be brief.
        grace_deadline = time.monotonic() + _CLOSE_GRACE_S
        for inst in reversed(instances):
            proc = inst._proc
            if proc is None:
                continue
            try:
                proc.wait(timeout=max(0.0, grace_deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _log.debug("tor %s still running %.0f s after SIGTERM", inst.name, _CLOSE_GRACE_S)
            inst.kill()
        if self._spawner is not None:
            self._spawner.close()
        if self.keep_dir:
            self._progress(f"kept the test network's files in {self.root_dir}")
        else:
            shutil.rmtree(self.root_dir, ignore_errors=True)

    # -- internals --------------------------------------------------------------------------
    def _add_socks_tor(
        self, name: str, role: str, extra_torrc: Sequence[str], wait: bool
    ) -> TorInstance:
        self._check_new_name(name)
        socks_port = self._ports.take()
        inst = self._new_instance(
            name,
            role,
            _torrc.client_lines(socks_port=socks_port) + list(extra_torrc),
            socks_port=socks_port,
        )
        return self._launch(inst, wait)

    def _check_new_name(self, name: str) -> None:
        _torrc.validate_nickname(name)
        if name in self._instances:
            raise TestnetError(f"a tor named {name!r} already exists in this test network")
        if not self._started or self._closed or not self._authorities:
            raise TestnetError("start the test network before adding tors to it")

    def _new_instance(
        self,
        name: str,
        role: str,
        role_lines: Sequence[str],
        *,
        socks_port: int | None = None,
        hs_dir: Path | None = None,
    ) -> TorInstance:
        if name in self._instances:
            raise TestnetError(f"a tor named {name!r} already exists in this test network")
        if self._spawner is None:
            raise TestnetError("start the test network before adding tors to it")
        paths = _torrc.InstancePaths(self.root_dir / name)
        control_port = self._ports.take()
        lines = (
            _torrc.base_lines(
                nickname=name, paths=paths, control_port=control_port, owner_pid=self._owner_pid
            )
            + _torrc.network_lines(self._authorities, self.empty_file)
            + list(role_lines)
        )
        inst = TorInstance(
            name=name,
            role=role,
            paths=paths,
            torrc_lines=lines,
            control_port=control_port,
            socks_port=socks_port,
            hs_dir=hs_dir,
            tor_binary=self.tor_binary,
            empty_file=self.empty_file,
            spawner=self._spawner,
            progress=self._progress,
        )
        self._instances[name] = inst
        return inst

    def _launch(self, inst: TorInstance, wait: bool) -> TorInstance:
        inst.start()
        if wait:
            inst.wait_ready(timeout_s=90.0)
        return inst

    def _routers(self) -> list[TorInstance]:
        return [i for i in self._instances.values() if i.role in (ROLE_AUTHORITY, ROLE_RELAY)]

    def _check_routers_alive(self) -> None:
        for inst in self._routers():
            inst._poll()
            inst.check_alive()

    def _timeout(self, what: str, timeout_s: float, culprit: TorInstance) -> TestnetError:
        return culprit.error(f"test network: {what} not reached within {timeout_s:.0f} s")

    def _wait_consensus(self, deadline: float, timeout_s: float) -> None:
        names = set(self.relay_names)
        auths = [i for i in self._instances.values() if i.role == ROLE_AUTHORITY]
        last_count = -1
        while True:
            self._check_routers_alive()
            best = 0
            for auth in auths:
                routers = _dirstate.parse_consensus(_read_text(auth.data_dir / "cached-consensus"))
                ok = {
                    n for n, r in routers.items() if n in names and {"Running", "HSDir"} <= r.flags
                }
                best = max(best, len(ok))
            if best != last_count:
                last_count = best
                self._progress(f"consensus lists {best}/{len(names)} relays")
            if best == len(names):
                return
            if time.monotonic() >= deadline:
                raise self._timeout(
                    f"a consensus listing all {len(names)} relays", timeout_s, auths[0]
                )
            time.sleep(_POLL_S)

    def _cache_ready(self, inst: TorInstance, names: set[str]) -> bool:
        routers = _dirstate.parse_consensus(
            _read_text(inst.data_dir / "cached-microdesc-consensus")
        )
        if not names <= routers.keys():
            return False
        wanted = {routers[n].microdesc_digest for n in names}
        if None in wanted:
            return False
        have = _dirstate.microdesc_digests(
            _read_text(inst.data_dir / "cached-microdescs")
        ) | _dirstate.microdesc_digests(_read_text(inst.data_dir / "cached-microdescs.new"))
        return wanted <= have

    def _wait_caches(self, deadline: float, timeout_s: float) -> None:
        names = set(self.relay_names)
        caches = self._routers()
        last_count = -1
        nudged_at: dict[str, float] = {}
        while True:
            self._check_routers_alive()
            pending = [c for c in caches if not self._cache_ready(c, names)]
            now = time.monotonic()
            for cache in pending:
                # A relay that asked before the first consensus existed got 404s and backs off
                # exponentially (tens of seconds); SIGHUP makes it retry now.
                if now - nudged_at.get(cache.name, -_NUDGE_EVERY_S) >= _NUDGE_EVERY_S:
                    nudged_at[cache.name] = now
                    cache.reload()
            ready = len(caches) - len(pending)
            if ready != last_count:
                last_count = ready
                waiting = ", ".join(c.name for c in pending)
                self._progress(
                    f"{ready}/{len(caches)} dir caches serve the microdesc consensus"
                    + (f" (waiting for {waiting})" if waiting else "")
                )
            if not pending:
                return
            if time.monotonic() >= deadline:
                raise self._timeout(
                    "every dir cache holding the microdesc consensus", timeout_s, pending[0]
                )
            time.sleep(_POLL_S)
