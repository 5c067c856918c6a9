"""Writing files with the right modes, atomically (write a temporary file, then rename).

Secret files are created 0600 from the start (never written first and chmod-ed later), and new
directories that hold secrets are 0700 (tor refuses a HiddenServiceDir that group or others can
read: tor ``check_private_dir``).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from onionfleet.provision.errors import ProvisionError, UnsafePermissions

__all__ = [
    "ensure_private_dir",
    "group_or_other_bits",
    "write_file",
]


def group_or_other_bits(path: Path) -> int:
    """The group/other permission bits of ``path`` (0 when only the owner has access)."""
    return stat.S_IMODE(path.stat().st_mode) & (stat.S_IRWXG | stat.S_IRWXO)


def ensure_private_dir(path: Path) -> bool:
    """Make ``path`` (and missing parents) with mode 0700; True if it was created.

    An existing directory that group or others may access is refused rather than silently
    chmod-ed: it may be a shared directory the operator did not mean to lock down.
    """
    if path.exists():
        if not path.is_dir():
            raise ProvisionError(f"{path} exists and is not a directory; choose another path")
        if group_or_other_bits(path):
            mode = stat.S_IMODE(path.stat().st_mode)
            raise UnsafePermissions(
                f"directory {path} is accessible by group or others (mode {mode:03o}); it will "
                f"hold secret keys. Fix: chmod 700 {path} (or choose a new directory)"
            )
        return False
    try:
        path.mkdir(mode=0o700, parents=True)
        path.chmod(0o700)  # mkdir's mode is filtered by the umask
    except OSError as exc:
        raise ProvisionError(f"cannot create directory {path}: {exc.strerror or exc}") from exc
    return True


def write_file(path: Path, content: bytes, mode: int) -> None:
    """Write ``content`` to ``path`` with ``mode``, atomically, replacing what was there."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            os.fchmod(fd, mode)
            view = memoryview(content)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise ProvisionError(f"cannot write {path}: {exc.strerror or exc}") from exc
