"""torrc rendering for the private Tor network (pure: values in, lines out).

The option set follows shared/research/testnet.md (measured with tor 0.4.9.11) and chutney's
``torrc_templates`` (authority, relay, client, hs): ``TestingTorNetwork 1`` with three
``DirAuthority`` lines, everything bound to 127.0.0.1, GeoIP files pointed at an empty file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from onionfleet.testnet.errors import TestnetError

__all__ = [
    "LOOPBACK",
    "AuthorityEntry",
    "InstancePaths",
    "authority_lines",
    "base_lines",
    "client_lines",
    "network_lines",
    "onion_service_lines",
    "relay_lines",
    "render_torrc",
    "validate_nickname",
]

LOOPBACK = "127.0.0.1"

# tor: policies.c / router.c is_legal_nickname(): 1..19 characters of [A-Za-z0-9].
_NICKNAME_RE = re.compile(r"[A-Za-z0-9]{1,19}")
_HEX40_RE = re.compile(r"[0-9A-F]{40}")


def validate_nickname(nickname: str) -> str:
    """Return ``nickname`` if tor accepts it (tor ``is_legal_nickname``: 1-19 of [A-Za-z0-9])."""
    if not _NICKNAME_RE.fullmatch(nickname):
        raise TestnetError(
            f"tor instance name {nickname!r} is not a legal tor nickname: use 1-19 letters and "
            "digits only (no '_', '-' or spaces)"
        )
    return nickname


@dataclass(frozen=True, slots=True)
class AuthorityEntry:
    """One directory authority of the test network, as ``DirAuthority`` lines name it."""

    nickname: str
    or_port: int
    dir_port: int
    v3ident_hex: (
        str  # SHA-1 of the authority identity key (tor-gencert certificate ``fingerprint``)
    )
    fingerprint_hex: str  # SHA-1 of the relay RSA identity key (``tor --list-fingerprint``)

    def __post_init__(self) -> None:
        validate_nickname(self.nickname)
        for label, value in (("v3ident", self.v3ident_hex), ("fingerprint", self.fingerprint_hex)):
            if not _HEX40_RE.fullmatch(value):
                raise TestnetError(
                    f"authority {self.nickname}: {label} {value!r} is not 40 upper-case hex digits"
                )

    def dir_authority_line(self) -> str:
        """tor-manual ``DirAuthority [nickname] [flags] ipv4address:dirport fingerprint``."""
        return (
            f"DirAuthority {self.nickname} orport={self.or_port} no-v2 "
            f"v3ident={self.v3ident_hex} {LOOPBACK}:{self.dir_port} {self.fingerprint_hex}"
        )


@dataclass(frozen=True, slots=True)
class InstancePaths:
    """Where one tor keeps its files; everything lives in its data directory."""

    data_dir: Path

    @property
    def torrc(self) -> Path:
        return self.data_dir / "torrc"

    @property
    def notice_log(self) -> Path:
        return self.data_dir / "notice.log"

    @property
    def rend_log(self) -> Path:
        return self.data_dir / "rend-info.log"

    @property
    def circ_log(self) -> Path:
        """``[rend,circ,edge]`` at info: what a failed fetch's circuits did (docs/testing.md)."""
        return self.data_dir / "circ-info.log"

    @property
    def stdout_log(self) -> Path:
        return self.data_dir / "stdout.log"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "tor.pid"

    @property
    def cookie(self) -> Path:
        return self.data_dir / "control_auth_cookie"


def render_torrc(lines: Sequence[str]) -> str:
    """One option per line; a line break inside an option would smuggle in another option."""
    for line in lines:
        if "\n" in line or "\r" in line or "\0" in line:
            raise TestnetError(f"torrc option {line!r} contains a line break or NUL; remove it")
    return "".join(f"{line}\n" for line in lines)


def network_lines(authorities: Sequence[AuthorityEntry], geoip_path: Path) -> list[str]:
    """What any tor needs to join the test network (and nothing that makes it a relay)."""
    lines = ["TestingTorNetwork 1"]
    lines += [auth.dir_authority_line() for auth in authorities]
    lines += [
        "ClientUseIPv6 0",
        f"GeoIPFile {geoip_path}",
        f"GeoIPv6File {geoip_path}",
    ]
    return lines


def base_lines(
    *,
    nickname: str,
    paths: InstancePaths,
    control_port: int,
    owner_pid: int,
) -> list[str]:
    """Options every harness tor gets: its files, a cookie-authenticated control port, no daemon."""
    validate_nickname(nickname)
    return [
        f"Nickname {nickname}",
        f"DataDirectory {paths.data_dir}",
        f"PidFile {paths.pid_file}",
        f"Log notice file {paths.notice_log}",
        f"Log [rend,circ,edge]info file {paths.circ_log}",
        "RunAsDaemon 0",
        "Sandbox 0",
        "SafeLogging 0",
        "ShutdownWaitLength 0",
        f"ControlPort {LOOPBACK}:{control_port}",
        "CookieAuthentication 1",
        f"__OwningControllerProcess {owner_pid}",
    ]


def relay_lines(*, or_port: int, dir_port: int, resolv_conf: Path, exit_relay: bool) -> list[str]:
    """A relay (and dir cache) on loopback whose exit policy reaches 127.0.0.0/8 only."""
    lines = [
        f"Address {LOOPBACK}",
        f"ORPort {LOOPBACK}:{or_port}",
        f"DirPort {LOOPBACK}:{dir_port}",
        "AssumeReachable 1",
        "FetchDirInfoEarly 1",
        "FetchDirInfoExtraEarly 1",
        "SocksPort 0",
        f"ServerDNSResolvConfFile {resolv_conf}",
        "ServerDNSDetectHijacking 0",
        "ServerDNSAllowBrokenConfig 1",
        "ExitPolicyRejectPrivate 0",
        "ExitPolicyRejectLocalInterfaces 0",
    ]
    if exit_relay:
        lines += ["ExitRelay 1", "ExitPolicy accept 127.0.0.0/8:*", "ExitPolicy reject *:*"]
    else:
        lines += ["ExitRelay 0", "ExitPolicy reject *:*"]
    return lines


def authority_lines(*, voting_interval_s: int) -> list[str]:
    """A v3 directory authority voting every ``voting_interval_s`` s (10 s = tor's minimum)."""
    if voting_interval_s < 10:
        raise TestnetError(
            f"voting interval {voting_interval_s} s is below tor's minimum of 10 s in a "
            "TestingTorNetwork; use 10 or more"
        )
    delay_s = 2 if voting_interval_s < 60 else 5
    return [
        "AuthoritativeDirectory 1",
        "V3AuthoritativeDirectory 1",
        f"TestingV3AuthInitialVotingInterval {voting_interval_s}",
        f"TestingV3AuthInitialVoteDelay {delay_s}",
        f"TestingV3AuthInitialDistDelay {delay_s}",
        f"V3AuthVotingInterval {voting_interval_s}",
        f"V3AuthVoteDelay {delay_s}",
        f"V3AuthDistDelay {delay_s}",
        "TestingDirAuthVoteGuard *",
        "TestingDirAuthVoteExit *",
        "TestingDirAuthVoteHSDir *",
        "TestingMinExitFlagThreshold 0",
        "TestingMinFastFlagThreshold 0",
        "AuthDirMaxServersPerAddr 0",
    ]


def client_lines(*, socks_port: int) -> list[str]:
    """A client SOCKS port: extended 0xF0-0xF7 errors, a new circuit per SOCKS username/password."""
    return [f"SocksPort {LOOPBACK}:{socks_port} ExtendedErrors IsolateSOCKSAuth"]


def onion_service_lines(
    *, hs_dir: Path, virtual_port: int, target_port: int, rend_log: Path
) -> list[str]:
    """A file-based v3 onion service; the ``rend`` info log records each descriptor upload."""
    for label, port in (("virtual_port", virtual_port), ("target_port", target_port)):
        if not 1 <= port <= 65535:
            raise TestnetError(f"onion service {label} {port} is not a TCP port (1-65535)")
    return [
        f"HiddenServiceDir {hs_dir}",
        f"HiddenServicePort {virtual_port} {LOOPBACK}:{target_port}",
        f"Log [rend]info file {rend_log}",
    ]
