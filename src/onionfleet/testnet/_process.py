"""Starting and stopping tor processes so that they never outlive the harness.

Three layers make sure of it:

* ``PR_SET_PDEATHSIG`` (Linux ``prctl(2)``): the kernel sends SIGKILL to the tor when the thread
  that forked it exits. The harness therefore forks every tor from one dedicated, long-lived
  thread (:class:`Spawner`) that ends only when the harness closes or the process dies.
* ``__OwningControllerProcess <pid>`` in each torrc: tor polls that pid and exits when it is gone.
* :meth:`TestNetwork.close` stops each tor by its own pid (SIGTERM, then SIGKILL).

Signal dispositions are reset in the child before ``exec``: a process whose SIGINT/SIGTERM is
ignored (a shell background job) would otherwise hand SIG_IGN to tor (shared/DESIGN.md §2).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from onionfleet._child import load_libc, make_child_preexec
from onionfleet.testnet.errors import TestnetError

__all__ = ["Spawner", "stop_process"]

_log = logging.getLogger(__name__)


class Spawner:
    """Forks tor processes from one dedicated thread (the PDEATHSIG anchor)."""

    def __init__(self) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="onionfleet-testnet-spawner"
        )
        self._libc = load_libc()
        if self._libc is None:
            _log.warning("libc not found: tors will rely on __OwningControllerProcess only")
        self._closed = False

    def spawn(
        self, argv: Sequence[str], *, cwd: Path, output: Path, timeout_s: float = 30.0
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` with stdout and stderr appended to ``output``."""
        if self._closed:
            raise TestnetError("the test network is closed; create a new one to start tors")
        parent_pid = os.getpid()

        def run() -> subprocess.Popen[bytes]:
            with output.open("ab") as out:
                return subprocess.Popen(
                    list(argv),
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=make_child_preexec(parent_pid, signal.SIGKILL, self._libc),  # noqa: PLW1509
                    close_fds=True,
                )

        try:
            return self._executor.submit(run).result(timeout=timeout_s)
        except FileNotFoundError as exc:
            raise TestnetError(
                f"cannot run {argv[0]!r}: not found; install tor (Debian: apt-get install tor)"
            ) from exc
        except OSError as exc:
            raise TestnetError(f"cannot start {argv[0]!r}: {exc}") from exc
        except concurrent.futures.TimeoutError as exc:
            raise TestnetError(f"starting {argv[0]!r} took longer than {timeout_s} s") from exc

    def close(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=True)


def stop_process(proc: subprocess.Popen[bytes], *, timeout_s: float, label: str = "tor") -> None:
    """SIGTERM, wait up to ``timeout_s``, then SIGKILL; always reaps the process."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
        return
    except subprocess.TimeoutExpired:
        _log.warning(
            "%s (pid %d) ignored SIGTERM for %.1f s; sending SIGKILL", label, proc.pid, timeout_s
        )
    kill_process(proc)


def kill_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL and reap."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.wait(timeout=30)
