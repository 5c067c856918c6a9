"""Directory-authority keys: ``tor-gencert`` certificates and relay identity fingerprints.

Procedure from shared/research/testnet.md (and chutney's ``_genAuthorityKey``/``_genRouterKey``):
``tor-gencert --create-identity-key`` writes ``keys/authority_*``; the certificate's
``fingerprint`` line is the v3ident. ``tor --list-fingerprint`` with a dummy ``DirAuthority``
(there are no real fingerprints yet) makes the RSA identity key and prints its fingerprint.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from onionfleet.testnet.errors import TestnetError

__all__ = [
    "AuthorityKeys",
    "generate_authority_keys",
    "parse_cert_fingerprint",
    "parse_fingerprint_file",
]

_DUMMY_AUTHORITY = "xyzzy 127.0.0.1:1 " + "F" * 40
_HEX40 = re.compile(r"[0-9A-Fa-f]{40}")


@dataclass(frozen=True, slots=True)
class AuthorityKeys:
    """The two fingerprints a ``DirAuthority`` line needs."""

    v3ident_hex: str
    fingerprint_hex: str


def parse_cert_fingerprint(cert_text: str) -> str:
    """The ``fingerprint`` line of a dir-spec v3 key certificate (the authority's v3ident)."""
    for line in cert_text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "fingerprint" and _HEX40.fullmatch(parts[1]):
            return parts[1].upper()
    raise TestnetError("tor-gencert wrote an authority certificate without a fingerprint line")


def parse_fingerprint_file(text: str) -> str:
    """``<DataDirectory>/fingerprint``: ``nickname FINGERPRINT`` (40 hex, maybe in groups of 4)."""
    parts = text.split()
    hex_fp = "".join(parts[1:])
    if len(parts) < 2 or not _HEX40.fullmatch(hex_fp):
        raise TestnetError(f"tor wrote a malformed fingerprint file: {text.strip()[:120]!r}")
    return hex_fp.upper()


def _run_all(commands: Sequence[tuple[list[str], bytes, str]], timeout_s: float) -> None:
    """Run commands in parallel (each ``argv, stdin, label``); raise on the first failure."""
    procs: list[tuple[subprocess.Popen[bytes], bytes, str]] = []
    try:
        for argv, stdin, label in commands:
            try:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                )
            except FileNotFoundError as exc:
                raise TestnetError(
                    f"{label}: cannot run {argv[0]!r}: not found; install tor "
                    "(Debian: apt-get install tor, which also ships tor-gencert)"
                ) from exc
            procs.append((proc, stdin, label))
        for proc, stdin, label in procs:
            try:
                out, _ = proc.communicate(stdin, timeout=timeout_s)
            except subprocess.TimeoutExpired as exc:
                raise TestnetError(f"{label}: no result after {timeout_s} s") from exc
            if proc.returncode != 0:
                tail = "\n".join(out.decode(errors="replace").splitlines()[-15:])
                raise TestnetError(f"{label} failed with exit code {proc.returncode}:\n{tail}")
    finally:
        for proc, _, _ in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def generate_authority_keys(
    data_dirs: Sequence[Path],
    dir_ports: Sequence[int],
    *,
    tor_binary: str,
    gencert_binary: str,
    empty_file: Path,
    timeout_s: float = 60.0,
) -> list[AuthorityKeys]:
    """Make identity/signing keys and certificates for each authority data directory."""
    gencert: list[tuple[list[str], bytes, str]] = []
    listfp: list[tuple[list[str], bytes, str]] = []
    for data_dir, dir_port in zip(data_dirs, dir_ports, strict=True):
        keys = data_dir / "keys"
        keys.mkdir(parents=True, exist_ok=True, mode=0o700)
        gencert.append(
            (
                [
                    gencert_binary,
                    "--create-identity-key",
                    "-m",
                    "12",
                    "-a",
                    f"127.0.0.1:{dir_port}",
                    "-i",
                    str(keys / "authority_identity_key"),
                    "-s",
                    str(keys / "authority_signing_key"),
                    "-c",
                    str(keys / "authority_certificate"),
                    "--passphrase-fd",
                    "0",
                ],
                b"\n",
                f"tor-gencert for {data_dir.name}",
            )
        )
        listfp.append(
            (
                [
                    tor_binary,
                    "--list-fingerprint",
                    "-f",
                    str(empty_file),
                    "--defaults-torrc",
                    str(empty_file),
                    "--DataDirectory",
                    str(data_dir),
                    "--ORPort",
                    "1",
                    "--DirAuthority",
                    _DUMMY_AUTHORITY,
                    "--GeoIPFile",
                    str(empty_file),
                    "--GeoIPv6File",
                    str(empty_file),
                    "--Log",
                    "err stdout",
                ],
                b"",
                f"tor --list-fingerprint for {data_dir.name}",
            )
        )
    _run_all(gencert + listfp, timeout_s)
    result: list[AuthorityKeys] = []
    for data_dir in data_dirs:
        try:
            cert = (data_dir / "keys" / "authority_certificate").read_text()
            fp_text = (data_dir / "fingerprint").read_text()
        except OSError as exc:
            raise TestnetError(f"authority keys for {data_dir.name} are missing: {exc}") from exc
        result.append(
            AuthorityKeys(
                v3ident_hex=parse_cert_fingerprint(cert),
                fingerprint_hex=parse_fingerprint_file(fp_text),
            )
        )
    return result
