"""The master key directory: tor's HiddenServiceDir format, generated, imported or checked.

A key directory holds tor's files (tor ``hs_service.c``: ``service_key_on_disk``,
``write_address_to_file``)::

    hs_ed25519_secret_key   32-byte tag "== ed25519v1-secret: type0 ==" + 64-byte expanded key
    hs_ed25519_public_key   32-byte tag "== ed25519v1-public: type0 ==" + 32-byte public key
    hostname                "<56 base32 characters>.onion\\n"

The directory is 0700 and every file 0600, as tor makes them; tor refuses a HiddenServiceDir that
group or others may read (``check_private_dir``). The secret key never leaves this module except
as an :class:`~onionfleet.hs.keys.HsIdExpandedSecretKey`, whose repr hides it.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from onionfleet.hs.errors import AddressError, HsError
from onionfleet.hs.keys import (
    HsIdExpandedSecretKey,
    HsIdPublicKey,
    OnionAddress,
    encode_public_key_file,
    encode_secret_key_file,
    generate_master_key,
    parse_public_key_file,
    parse_secret_key_file,
)
from onionfleet.provision._files import ensure_private_dir, write_file
from onionfleet.provision.errors import (
    AlreadyExists,
    KeyDirError,
    MasterKeyMismatch,
    UnsafePermissions,
)
from onionfleet.provision.secrets_gen import TokenBytes

__all__ = [
    "HOSTNAME_FILE",
    "PUBLIC_KEY_FILE",
    "SECRET_KEY_FILE",
    "KeyDirCheck",
    "KeyDirReport",
    "generate_key_dir",
    "import_key_dir",
    "inspect_key_dir",
    "load_master_key_dir",
    "write_key_dir",
]

SECRET_KEY_FILE: Final = "hs_ed25519_secret_key"
PUBLIC_KEY_FILE: Final = "hs_ed25519_public_key"
HOSTNAME_FILE: Final = "hostname"
_KEY_FILES: Final = (SECRET_KEY_FILE, PUBLIC_KEY_FILE, HOSTNAME_FILE)
_MAX_HOSTNAME_BYTES: Final = 1024
_MAX_KEY_FILE_BYTES: Final = 4096


@dataclass(frozen=True, slots=True)
class KeyDirCheck:
    """One check of a key directory: what was checked, whether it passed, and the fix if not."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


@dataclass(frozen=True, slots=True)
class KeyDirReport:
    """What :func:`inspect_key_dir` found. ``address`` comes from the secret key when present."""

    directory: Path
    address: OnionAddress | None
    has_secret_key: bool
    checks: tuple[KeyDirCheck, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def first_problem(self) -> KeyDirCheck | None:
        return next((c for c in self.checks if not c.ok), None)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _read_small(path: Path, limit: int) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(limit + 1)
    except OSError as exc:
        raise KeyDirError(f"cannot read {path}: {exc.strerror or exc}") from exc


def inspect_key_dir(directory: Path) -> KeyDirReport:
    """Check a key directory: file modes, tor headers and sizes, and that the secret key, the
    public key and ``hostname`` agree. Problems are listed, not raised; only a missing directory
    or one without any key file raises :class:`KeyDirError`."""
    if not directory.is_dir():
        raise KeyDirError(
            f"{directory} is not a directory; give the HiddenServiceDir that holds "
            f"{SECRET_KEY_FILE} (onionfleet keys generate --out DIR makes one)"
        )
    present = {name: (directory / name) for name in _KEY_FILES if (directory / name).exists()}
    if not present:
        raise KeyDirError(
            f"{directory} holds none of {', '.join(_KEY_FILES)}; is it a tor HiddenServiceDir?"
        )
    checks: list[KeyDirCheck] = []
    dir_mode = _mode(directory)
    dir_ok = not dir_mode & (stat.S_IRWXG | stat.S_IRWXO)
    checks.append(
        KeyDirCheck(
            "directory mode",
            dir_ok,
            f"{directory} has mode {dir_mode:03o}",
            "" if dir_ok else f"chmod 700 {directory}",
        )
    )
    secret: HsIdExpandedSecretKey | None = None
    public_from_secret: HsIdPublicKey | None = None
    if SECRET_KEY_FILE in present:
        path = present[SECRET_KEY_FILE]
        mode = _mode(path)
        mode_ok = stat.S_ISREG(path.lstat().st_mode) and not mode & (stat.S_IRWXG | stat.S_IRWXO)
        checks.append(
            KeyDirCheck(
                "secret key mode",
                mode_ok,
                f"{path} has mode {mode:03o}",
                ""
                if mode_ok
                else f"chmod 600 {path} (if others could read it, treat the key as leaked)",
            )
        )
        content = _read_small(path, _MAX_KEY_FILE_BYTES)
        try:
            secret = parse_secret_key_file(content, str(path))
            public_from_secret = secret.public_key()
            checks.append(KeyDirCheck("secret key format", True, "tor ed25519v1 expanded key"))
        except HsError as exc:
            checks.append(
                KeyDirCheck("secret key format", False, str(exc), "restore the file from a backup")
            )
    public: HsIdPublicKey | None = None
    if PUBLIC_KEY_FILE in present:
        path = present[PUBLIC_KEY_FILE]
        try:
            public = parse_public_key_file(_read_small(path, _MAX_KEY_FILE_BYTES), str(path))
            checks.append(KeyDirCheck("public key format", True, "tor ed25519v1 public key"))
        except HsError as exc:
            checks.append(
                KeyDirCheck(
                    "public key format",
                    False,
                    str(exc),
                    f"delete {path}; tor and onionfleet rewrite it from the secret key",
                )
            )
        if public is not None and public_from_secret is not None:
            same = public == public_from_secret
            checks.append(
                KeyDirCheck(
                    "public key matches secret key",
                    same,
                    "same key" if same else f"{PUBLIC_KEY_FILE} belongs to a different key",
                    "" if same else f"delete {path}; it is rewritten from the secret key",
                )
            )
    hostname: OnionAddress | None = None
    if HOSTNAME_FILE in present:
        path = present[HOSTNAME_FILE]
        raw = _read_small(path, _MAX_HOSTNAME_BYTES)
        try:
            hostname = OnionAddress.parse(raw.decode("ascii"))
            checks.append(KeyDirCheck("hostname format", True, str(hostname)))
        except (UnicodeDecodeError, AddressError) as exc:
            detail = str(exc) if isinstance(exc, AddressError) else "not ASCII text"
            checks.append(
                KeyDirCheck(
                    "hostname format",
                    False,
                    f"{path}: {detail}",
                    f"delete {path}; it is rewritten from the secret key",
                )
            )
        reference = public_from_secret or public
        if hostname is not None and reference is not None:
            same = hostname.public_key == reference
            checks.append(
                KeyDirCheck(
                    "hostname matches key",
                    same,
                    "same address" if same else f"{path} names a different onion address",
                    "" if same else f"delete {path}; it is rewritten from the secret key",
                )
            )
    if public_from_secret is not None:
        address: OnionAddress | None = public_from_secret.address()
    elif public is not None:
        address = public.address()
    else:
        address = hostname
    return KeyDirReport(directory, address, SECRET_KEY_FILE in present, tuple(checks))


def load_master_key_dir(directory: Path) -> tuple[HsIdExpandedSecretKey, OnionAddress]:
    """Read and fully check a key directory; raise on the first problem (with its fix)."""
    report = inspect_key_dir(directory)
    if not report.has_secret_key:
        raise KeyDirError(
            f"{directory} has no {SECRET_KEY_FILE}; copy the whole HiddenServiceDir, not only "
            "its public files"
        )
    problem = report.first_problem()
    if problem is not None:
        cls = UnsafePermissions if problem.name.endswith("mode") else KeyDirError
        raise cls(f"{directory}: {problem.name}: {problem.detail}. Fix: {problem.fix}")
    content = _read_small(directory / SECRET_KEY_FILE, _MAX_KEY_FILE_BYTES)
    try:
        secret = parse_secret_key_file(content, str(directory / SECRET_KEY_FILE))
    except HsError as exc:  # the file changed since inspect_key_dir read it
        raise KeyDirError(str(exc)) from exc
    return secret, secret.public_key().address()


def write_key_dir(directory: Path, key: HsIdExpandedSecretKey, *, force: bool) -> OnionAddress:
    """Write a tor key directory (0700, files 0600) for ``key``; refuse to overwrite without
    ``force``."""
    existing = [n for n in _KEY_FILES if (directory / n).exists()]
    if existing and not force:
        raise AlreadyExists(
            f"{directory} already holds {', '.join(existing)}; refusing to overwrite a master key "
            "(it is the onion address). Use another directory, or --force if you really mean it"
        )
    ensure_private_dir(directory)
    public = key.public_key()
    address = public.address()
    write_file(directory / SECRET_KEY_FILE, encode_secret_key_file(key), 0o600)
    write_file(directory / PUBLIC_KEY_FILE, encode_public_key_file(public), 0o600)
    write_file(directory / HOSTNAME_FILE, f"{address}\n".encode("ascii"), 0o600)
    return address


def generate_key_dir(directory: Path, token_bytes: TokenBytes, *, force: bool) -> OnionAddress:
    """A new master key written to ``directory``; returns its onion address."""
    return write_key_dir(directory, generate_master_key(token_bytes), force=force)


def import_key_dir(
    source: Path,
    directory: Path,
    *,
    force: bool,
    expected: OnionAddress | None = None,
) -> OnionAddress:
    """Check an existing HiddenServiceDir and copy its key into ``directory`` with tor's modes.

    With ``expected``, a key for another address raises :class:`MasterKeyMismatch`.
    """
    if source.resolve() == directory.resolve():
        raise KeyDirError(
            f"{source} is both the source and the destination; give a different --out directory"
        )
    key, address = load_master_key_dir(source)
    if expected is not None and address != expected:
        raise MasterKeyMismatch(
            f"the key in {source} is for {address}, but the cluster's master address "
            f"is {expected}; copy the master key directory from the first node "
            "(the one that ran onionfleet init)"
        )
    return write_key_dir(directory, key, force=force)
