"""A tor process onionfleet runs itself ("managed"), or one an operator runs ("attached").

:func:`render_torrc` turns a frozen :class:`ManagedTorSettings` into torrc text (pure).
:class:`ManagedTor` is the adapter: ``run(ready)`` writes the torrc and ``ob_config``, starts tor as
a child, sets ``ready`` once tor's control socket exists, restarts tor with exponential backoff when
it dies, and on cancellation or :meth:`ManagedTor.stop` stops it cleanly (SIGTERM, then SIGKILL).

The child is made to die with us three ways: ``__OwningControllerProcess <our pid>`` in the torrc
(tor polls the pid), ``PR_SET_PDEATHSIG`` (Linux ``prctl(2)``), and :meth:`ManagedTor.stop`. Signal
dispositions are reset before ``exec``: a tor started from a process that ignores SIGINT inherits
SIG_IGN (DESIGN.md §2 "Process pitfall").

Bootstrap progress comes from the control port: :func:`wait_for_bootstrap` reads ``GETINFO
status/bootstrap-phase`` and ``STATUS_CLIENT … BOOTSTRAP`` events (control-spec §4.1.10).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import re
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from onionfleet._child import load_libc, make_child_preexec
from onionfleet.tor.controller import (
    ControlAuth,
    ControlEndpoint,
    ControllerSettings,
    TorController,
)
from onionfleet.tor.errors import ControlConnectionLost, ControlTimeout, ManagedTorError
from onionfleet.tor.events import BootstrapStatus, StatusEvent

__all__ = [
    "AttachedTorSettings",
    "HiddenServicePort",
    "IntroDosSettings",
    "ManagedTor",
    "ManagedTorSettings",
    "PowSettings",
    "ob_config_text",
    "render_torrc",
    "wait_for_bootstrap",
]

log = logging.getLogger(__name__)

_ONION_ADDRESS = re.compile(r"[a-z2-7]{56}")
_TARGET = re.compile(r"(unix:/\S+|[0-9A-Za-z.\-\[\]:]+:\d{1,5}|\d{1,5})")
#: The kernel limit on a unix socket path (sun_path, including the NUL).
_UNIX_PATH_MAX = 107


def _torrc_value(value: str, what: str) -> str:
    if any(ch in value for ch in "\r\n\0"):
        raise ManagedTorError(f"{what} contains a line break or NUL: {value[:60]!r}")
    return value


@dataclass(frozen=True, slots=True)
class HiddenServicePort:
    """``HiddenServicePort VIRTPORT TARGET`` (tor manual): TARGET is ``addr:port``, ``port`` or
    ``unix:/path`` — the node's reverse proxy."""

    virtual_port: int
    target: str

    def __post_init__(self) -> None:
        if not 0 < self.virtual_port < 65536:
            raise ManagedTorError(f"HiddenServicePort virtual port {self.virtual_port} is invalid")
        if _TARGET.fullmatch(self.target) is None:
            raise ManagedTorError(
                f"HiddenServicePort target {self.target!r} is not addr:port, port or unix:/path"
            )


@dataclass(frozen=True, slots=True)
class PowSettings:
    """Proof-of-work defences (prop 327; tor manual ``HiddenServicePoWDefensesEnabled``,
    ``HiddenServicePoWQueueRate``, ``HiddenServicePoWQueueBurst``). Per node only: PoW cannot span
    nodes (DESIGN.md §2)."""

    queue_rate: int | None = None
    queue_burst: int | None = None


@dataclass(frozen=True, slots=True)
class IntroDosSettings:
    """Intro-point DoS defence (tor manual ``HiddenServiceEnableIntroDoSDefense``,
    ``HiddenServiceEnableIntroDoSRatePerSec``, ``HiddenServiceEnableIntroDoSBurstPerSec``)."""

    rate_per_sec: int | None = None
    burst_per_sec: int | None = None


@dataclass(frozen=True, slots=True)
class ManagedTorSettings:
    """Everything :func:`render_torrc` needs. Paths should be absolute.

    ``control_socket`` defaults to ``<data_dir>/control.sock`` (cookie auth); ``hidden_service_dir``
    holds the master key; with ``master_onion_address`` set, ``HiddenServiceOnionBalanceInstance 1``
    is enabled and ``<hidden_service_dir>/ob_config`` names the master (DESIGN.md §2: a node
    without it fails INTRODUCE2 across time periods). ``publish_descriptors`` defaults to False:
    in multi-node mode the elected publisher uploads merged descriptors with HSPOST.
    ``extra_lines`` are appended verbatim (e.g. ``TestNetwork.network_torrc_lines()``).
    """

    data_dir: Path
    tor_binary: str = "tor"
    socks_port: int | None = None
    socks_unix_path: Path | None = None
    control_socket: Path | None = None
    hidden_service_dir: Path | None = None
    hidden_service_ports: tuple[HiddenServicePort, ...] = ()
    master_onion_address: str | None = None
    publish_descriptors: bool = False
    num_intro_points: int | None = None
    export_circuit_id: bool = False
    pow: PowSettings | None = None
    intro_dos: IntroDosSettings | None = None
    extra_lines: tuple[str, ...] = ()
    log_file: Path | None = None
    restart_initial_s: float = 1.0
    restart_max_s: float = 30.0
    start_timeout_s: float = 30.0
    stop_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.master_onion_address is not None:
            address = self.master_onion_address.removesuffix(".onion")
            if _ONION_ADDRESS.fullmatch(address) is None:
                raise ManagedTorError(
                    f"master onion address {self.master_onion_address!r} is not a v3 address"
                )
        if self.hidden_service_dir is not None and not self.hidden_service_ports:
            raise ManagedTorError("a hidden service dir needs at least one HiddenServicePort")
        if self.hidden_service_dir is None and (
            self.hidden_service_ports or self.master_onion_address or self.pow or self.intro_dos
        ):
            raise ManagedTorError("onion service options need hidden_service_dir")
        if len(str(self.control_socket_path)) > _UNIX_PATH_MAX:
            raise ManagedTorError(
                f"control socket path {self.control_socket_path} is longer than "
                f"{_UNIX_PATH_MAX} bytes; use a shorter data_dir or control_socket"
            )
        if self.num_intro_points is not None and not 1 <= self.num_intro_points <= 20:
            raise ManagedTorError(
                f"HiddenServiceNumIntroductionPoints must be 1..20, got {self.num_intro_points}"
            )
        if self.restart_initial_s <= 0 or self.restart_max_s < self.restart_initial_s:
            raise ManagedTorError("restart backoff needs 0 < restart_initial_s <= restart_max_s")
        for line in self.extra_lines:
            _torrc_value(line, "an extra torrc line")

    @property
    def control_socket_path(self) -> Path:
        return self.control_socket or self.data_dir / "control.sock"

    @property
    def log_path(self) -> Path:
        return self.log_file or self.data_dir / "tor.log"

    @property
    def torrc_path(self) -> Path:
        return self.data_dir / "torrc"

    def controller_settings(
        self,
        *,
        command_timeout_s: float = 30.0,
        reconnect_initial_s: float = 0.2,
        reconnect_max_s: float = 10.0,
    ) -> ControllerSettings:
        """Settings for a :class:`TorController` on this tor's control socket (cookie auth)."""
        return ControllerSettings(
            ControlEndpoint.unix(self.control_socket_path),
            command_timeout_s=command_timeout_s,
            reconnect_initial_s=reconnect_initial_s,
            reconnect_max_s=reconnect_max_s,
        )


@dataclass(frozen=True, slots=True)
class AttachedTorSettings:
    """An operator-run tor: its control port or socket and a cookie path or password.

    ``password`` is never shown in repr or logs.
    """

    control_port: int | None = None
    control_host: str = "127.0.0.1"
    control_socket: Path | None = None
    cookie_path: Path | None = None
    password: str | None = field(default=None, repr=False)

    def controller_settings(
        self,
        *,
        command_timeout_s: float = 30.0,
        reconnect_initial_s: float = 0.2,
        reconnect_max_s: float = 10.0,
    ) -> ControllerSettings:
        """Settings for a :class:`TorController` on the operator's control port or socket."""
        if (self.control_port is None) == (self.control_socket is None):
            raise ManagedTorError(
                "attach mode needs exactly one of control_port and control_socket"
            )
        endpoint = (
            ControlEndpoint.unix(self.control_socket)
            if self.control_socket is not None
            else ControlEndpoint.tcp(self.control_port or 0, self.control_host)
        )
        auth = ControlAuth(password=self.password, cookie_path=self.cookie_path)
        return ControllerSettings(
            endpoint,
            auth,
            command_timeout_s=command_timeout_s,
            reconnect_initial_s=reconnect_initial_s,
            reconnect_max_s=reconnect_max_s,
        )


def ob_config_text(master_onion_address: str) -> str:
    """``<HiddenServiceDir>/ob_config``: ``MasterOnionAddress <addr>.onion`` (tor hs_ob.c
    ``hs_ob_parse_config_file``)."""
    address = master_onion_address.removesuffix(".onion")
    return f"MasterOnionAddress {address}.onion\n"


def render_torrc(settings: ManagedTorSettings, *, owner_pid: int) -> str:
    """The torrc of a managed tor (tor manual options; one option per line)."""
    s = settings
    lines = [
        f"DataDirectory {_torrc_value(str(s.data_dir), 'data_dir')}",
        "RunAsDaemon 0",
        f"__OwningControllerProcess {owner_pid}",
        f"ControlSocket {_torrc_value(str(s.control_socket_path), 'control_socket')}",
        "ControlPort 0",
        "CookieAuthentication 1",
        f"Log notice file {_torrc_value(str(s.log_path), 'log_file')}",
    ]
    socks = []
    if s.socks_port is not None:
        socks.append(f"SocksPort 127.0.0.1:{s.socks_port}")
    if s.socks_unix_path is not None:
        socks.append(f"SocksPort unix:{_torrc_value(str(s.socks_unix_path), 'socks_unix_path')}")
    lines.extend(socks or ["SocksPort 0"])
    if s.hidden_service_dir is not None:
        lines.append(f"HiddenServiceDir {_torrc_value(str(s.hidden_service_dir), 'hs dir')}")
        lines.extend(
            f"HiddenServicePort {p.virtual_port} {p.target}" for p in s.hidden_service_ports
        )
        if s.master_onion_address is not None:
            lines.append("HiddenServiceOnionBalanceInstance 1")
        if s.num_intro_points is not None:
            lines.append(f"HiddenServiceNumIntroductionPoints {s.num_intro_points}")
        if s.export_circuit_id:
            # tor sends a PROXY v1 header carrying the circuit id on every stream (tor manual)
            lines.append("HiddenServiceExportCircuitID haproxy")
        if s.pow is not None:
            lines.append("HiddenServicePoWDefensesEnabled 1")
            if s.pow.queue_rate is not None:
                lines.append(f"HiddenServicePoWQueueRate {s.pow.queue_rate}")
            if s.pow.queue_burst is not None:
                lines.append(f"HiddenServicePoWQueueBurst {s.pow.queue_burst}")
        if s.intro_dos is not None:
            lines.append("HiddenServiceEnableIntroDoSDefense 1")
            if s.intro_dos.rate_per_sec is not None:
                lines.append(f"HiddenServiceEnableIntroDoSRatePerSec {s.intro_dos.rate_per_sec}")
            if s.intro_dos.burst_per_sec is not None:
                lines.append(f"HiddenServiceEnableIntroDoSBurstPerSec {s.intro_dos.burst_per_sec}")
    lines.append(f"PublishHidServDescriptors {1 if s.publish_descriptors else 0}")
    lines.extend(s.extra_lines)
    return "\n".join(lines) + "\n"


def _set_ready(ready: asyncio.Future[None] | None) -> None:
    if ready is not None and not ready.done():
        ready.set_result(None)


class ManagedTor:
    """The tor child process of one node. See the module docstring.

    ``starts`` counts process starts (1 after the first); ``pid`` is the current child's pid.
    """

    def __init__(self, settings: ManagedTorSettings) -> None:
        self.settings = settings
        self._proc: asyncio.subprocess.Process | None = None
        self._stopping = False
        self.starts = 0

    @property
    def stopping(self) -> bool:
        return self._stopping

    def _stop_requested(self) -> bool:
        return self._stopping

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.settings.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _prepare(self) -> None:
        s = self.settings
        s.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        s.data_dir.chmod(0o700)
        if s.hidden_service_dir is not None:
            s.hidden_service_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            s.hidden_service_dir.chmod(0o700)
            ob_config = s.hidden_service_dir / "ob_config"
            if s.master_onion_address is not None:
                ob_config.write_text(ob_config_text(s.master_onion_address))
            else:
                ob_config.unlink(missing_ok=True)
        (s.data_dir / "torrc-defaults").write_text("")

    def set_publish_descriptors(self, publish: bool) -> None:
        """``PublishHidServDescriptors`` for the next (re)start: the torrc is written anew at
        every start, so a tor that crashes in multi-node mode comes back not publishing (the
        running tor is switched with SETCONF by the caller)."""
        self.settings = dataclasses.replace(self.settings, publish_descriptors=publish)

    async def _start(self) -> asyncio.subprocess.Process:
        s = self.settings
        with contextlib.suppress(FileNotFoundError):
            s.control_socket_path.unlink()
        try:
            s.torrc_path.write_text(render_torrc(s, owner_pid=os.getpid()))
        except OSError as exc:
            raise ManagedTorError(f"cannot write tor's torrc {s.torrc_path}: {exc}") from exc
        argv = [
            s.tor_binary,
            "-f",
            str(s.torrc_path),
            "--defaults-torrc",
            str(s.data_dir / "torrc-defaults"),
        ]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                cwd=str(s.data_dir),
                preexec_fn=make_child_preexec(os.getpid(), signal.SIGTERM, load_libc()),
            )
        except OSError as exc:
            raise ManagedTorError(
                f"cannot start tor ({s.tor_binary!r}): {exc}; is tor installed and on PATH?"
            ) from exc
        self.starts += 1
        log.info("started tor pid %d (data dir %s)", proc.pid, s.data_dir)
        deadline = asyncio.get_running_loop().time() + s.start_timeout_s
        while not s.control_socket_path.exists():
            if proc.returncode is not None:
                raise ManagedTorError(
                    f"tor exited with status {proc.returncode} during start-up; "
                    f"its log ({s.log_path}) ends with:\n{self.log_tail()}"
                )
            if asyncio.get_running_loop().time() > deadline:
                await self._terminate(proc)
                raise ManagedTorError(
                    f"tor did not open its control socket {s.control_socket_path} within "
                    f"{s.start_timeout_s:g} s; its log ends with:\n{self.log_tail()}"
                )
            await asyncio.sleep(0.05)
        return proc

    async def run(self, ready: asyncio.Future[None] | None = None) -> None:
        """Start tor; set ``ready`` when its control socket exists; restart it when it dies.

        A start-up failure of the *first* start is raised (bad torrc, no tor binary); later
        crashes are retried with exponential backoff. Cancelling ``run`` stops tor.
        """
        self._stopping = False
        delay = self.settings.restart_initial_s
        try:
            self._prepare()
            while not self.stopping:
                try:
                    proc = await self._start()
                except ManagedTorError as exc:
                    if self.starts <= 1 and ready is not None and not ready.done():
                        raise
                    log.error("restarting tor failed: %s; retrying in %.1f s", exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.settings.restart_max_s)
                    continue
                self._proc = proc
                _set_ready(ready)
                started = asyncio.get_running_loop().time()
                status = await proc.wait()
                if self._stop_requested():
                    break
                if asyncio.get_running_loop().time() - started > 60:
                    delay = self.settings.restart_initial_s
                log.warning(
                    "tor pid %d exited with status %s; restarting in %.1f s",
                    proc.pid,
                    status,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.restart_max_s)
        except BaseException as exc:
            if ready is not None and not ready.done():
                if isinstance(exc, Exception):
                    ready.set_exception(exc)
                else:
                    ready.cancel()
            raise
        finally:
            self._stopping = True
            if self._proc is not None:
                await asyncio.shield(self._terminate(self._proc))

    async def stop(self) -> None:
        """Stop tor (SIGTERM, then SIGKILL after ``stop_timeout_s``); ``run`` then returns."""
        self._stopping = True
        if self._proc is not None:
            await self._terminate(self._proc)

    async def _terminate(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(self.settings.stop_timeout_s):
                await proc.wait()
        except TimeoutError:
            log.warning(
                "tor pid %d ignored SIGTERM for %g s; killing it",
                proc.pid,
                self.settings.stop_timeout_s,
            )
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


async def wait_for_bootstrap(
    controller: TorController,
    *,
    timeout_s: float,
    on_progress: Callable[[BootstrapStatus], None] | None = None,
    poll_s: float = 1.0,
) -> BootstrapStatus:
    """Wait until tor reports ``PROGRESS=100``; call ``on_progress`` on every step forward.

    Uses ``STATUS_CLIENT BOOTSTRAP`` events and polls ``GETINFO status/bootstrap-phase`` (events can
    be missed across a reconnection). On timeout: :class:`ManagedTorError` with the last phase.
    """
    seen: list[BootstrapStatus] = []

    def note(status: BootstrapStatus) -> bool:
        # Poll replies and queued events interleave, so only forward progress is reported.
        if not seen or status.progress > seen[-1].progress:
            seen.append(status)
            log.info("tor bootstrap %d%% (%s)", status.progress, status.summary)
            if on_progress is not None:
                on_progress(status)
        return status.done

    try:
        async with asyncio.timeout(timeout_s), controller.subscribe("STATUS_CLIENT") as sub:
            while True:
                with contextlib.suppress(ControlConnectionLost, ControlTimeout):
                    if note(await controller.bootstrap_status(timeout_s=max(poll_s, 5.0))):
                        return seen[-1]
                with contextlib.suppress(TimeoutError):
                    event = await sub.get(poll_s)
                    progress = (
                        event.argument("PROGRESS") if isinstance(event, StatusEvent) else None
                    )
                    if (
                        isinstance(event, StatusEvent)
                        and event.action == "BOOTSTRAP"
                        and progress is not None
                        and progress.isdigit()
                    ):
                        status = BootstrapStatus(
                            int(progress),
                            event.argument("TAG") or "",
                            event.argument("SUMMARY") or "",
                            event.argument("WARNING"),
                        )
                        if note(status):
                            return status
    except TimeoutError:
        phase = f"{seen[-1].progress}% ({seen[-1].summary})" if seen else "unknown"
        raise ManagedTorError(
            f"tor did not finish bootstrapping within {timeout_s:g} s (last phase: {phase}); "
            "check its network settings and log"
        ) from None
