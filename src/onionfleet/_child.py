"""Children that die with us: the ``preexec_fn`` for every tor (and node) process we start.

In the forked child, before ``exec``: ``prctl(PR_SET_PDEATHSIG, sig)`` (Linux ``prctl(2)``: the
kernel sends ``sig`` to the child when the *thread* that forked it exits), signal dispositions
reset to the default and the signal mask cleared (a child of a process whose SIGINT is ignored,
e.g. a shell background job, would inherit SIG_IGN and ignore SIGINT: DESIGN.md §2 "Process
pitfall"), and an exit if the parent already died between fork and prctl. Only libc calls and
``os`` functions run in the child: no allocation-heavy Python, no locks.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
from collections.abc import Callable

__all__ = ["load_libc", "make_child_preexec"]

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_SIG_DFL = 0
_RESET_SIGNALS = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGPIPE,
    signal.SIGCHLD,
)


def load_libc() -> ctypes.CDLL | None:
    """The C library, or None where it cannot be found (then only the other safeguards apply)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None


def make_child_preexec(
    parent_pid: int, death_signal: signal.Signals, libc: ctypes.CDLL | None
) -> Callable[[], None]:
    """The function the forked child runs before ``exec`` (see the module docstring)."""

    def preexec() -> None:
        if libc is not None:
            libc.prctl(_PR_SET_PDEATHSIG, int(death_signal), 0, 0, 0)
            default = ctypes.c_void_p(_SIG_DFL)
            for sig in _RESET_SIGNALS:
                libc.signal(int(sig), default)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec
