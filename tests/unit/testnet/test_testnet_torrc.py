"""torrc rendering of the private Tor network (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from onionfleet.testnet import TestnetError
from onionfleet.testnet._torrc import (
    AuthorityEntry,
    InstancePaths,
    authority_lines,
    base_lines,
    client_lines,
    network_lines,
    onion_service_lines,
    relay_lines,
    render_torrc,
    validate_nickname,
)

V3 = "1B5BE27196666F9BFECE592B0E4EE9FE31A41B0C"
FP = "5A455A673433B9C024AC9CB8D9FACA454310ECF0"


def _auth(n: int = 1) -> AuthorityEntry:
    return AuthorityEntry(f"auth{n}", 5000 + n, 7000 + n, V3, FP)


def test_dir_authority_line() -> None:
    assert _auth().dir_authority_line() == (
        f"DirAuthority auth1 orport=5001 no-v2 v3ident={V3} 127.0.0.1:7001 {FP}"
    )


@pytest.mark.parametrize("bad", ["", "relay_1", "relay-1", "a b", "x" * 20, "réseau"])
def test_illegal_nicknames_are_refused(bad: str) -> None:
    with pytest.raises(TestnetError, match="nickname"):
        validate_nickname(bad)


def test_legal_nickname() -> None:
    assert validate_nickname("relay12") == "relay12"
    assert validate_nickname("A" * 19) == "A" * 19


@pytest.mark.parametrize(
    ("v3", "fp"), [("abc", FP), (V3, FP.lower()), (V3, FP[:-1] + "G"), (V3 + "00", FP)]
)
def test_authority_entry_checks_fingerprints(v3: str, fp: str) -> None:
    with pytest.raises(TestnetError):
        AuthorityEntry("auth1", 1, 2, v3, fp)


def test_network_lines_name_three_authorities_and_empty_geoip() -> None:
    lines = network_lines([_auth(1), _auth(2), _auth(3)], Path("/t/empty"))
    assert lines[0] == "TestingTorNetwork 1"
    assert sum(line.startswith("DirAuthority ") for line in lines) == 3
    assert "ClientUseIPv6 0" in lines
    assert "GeoIPFile /t/empty" in lines and "GeoIPv6File /t/empty" in lines


def test_base_lines() -> None:
    paths = InstancePaths(Path("/t/relay1"))
    lines = base_lines(nickname="relay1", paths=paths, control_port=9051, owner_pid=4242)
    assert "Nickname relay1" in lines
    assert "DataDirectory /t/relay1" in lines
    assert "Log notice file /t/relay1/notice.log" in lines
    assert "ControlPort 127.0.0.1:9051" in lines
    assert "CookieAuthentication 1" in lines
    assert "__OwningControllerProcess 4242" in lines
    for option in ("Sandbox 0", "ShutdownWaitLength 0", "RunAsDaemon 0", "SafeLogging 0"):
        assert option in lines
    assert paths.cookie == Path("/t/relay1/control_auth_cookie")
    assert paths.rend_log == Path("/t/relay1/rend-info.log")


def test_relay_lines_bind_loopback_and_exit_to_loopback_only() -> None:
    lines = relay_lines(or_port=1, dir_port=2, resolv_conf=Path("/t/resolv"), exit_relay=True)
    assert "ORPort 127.0.0.1:1" in lines and "DirPort 127.0.0.1:2" in lines
    assert "Address 127.0.0.1" in lines and "AssumeReachable 1" in lines
    policies = [line for line in lines if line.startswith("ExitPolicy ")]
    assert policies == ["ExitPolicy accept 127.0.0.0/8:*", "ExitPolicy reject *:*"]
    non_exit = relay_lines(or_port=1, dir_port=2, resolv_conf=Path("/r"), exit_relay=False)
    assert [line for line in non_exit if line.startswith("ExitPolicy ")] == [
        "ExitPolicy reject *:*"
    ]
    assert "ExitRelay 0" in non_exit


def test_authority_lines_follow_the_voting_interval() -> None:
    lines = authority_lines(voting_interval_s=20)
    assert "V3AuthVotingInterval 20" in lines
    assert "TestingV3AuthInitialVotingInterval 20" in lines
    for flag in ("Guard", "Exit", "HSDir"):
        assert f"TestingDirAuthVote{flag} *" in lines
    with pytest.raises(TestnetError, match="minimum"):
        authority_lines(voting_interval_s=5)


def test_client_and_onion_service_lines() -> None:
    assert client_lines(socks_port=9050) == [
        "SocksPort 127.0.0.1:9050 ExtendedErrors IsolateSOCKSAuth"
    ]
    lines = onion_service_lines(
        hs_dir=Path("/t/web/hs"), virtual_port=80, target_port=8080, rend_log=Path("/t/r.log")
    )
    assert lines == [
        "HiddenServiceDir /t/web/hs",
        "HiddenServicePort 80 127.0.0.1:8080",
        "Log [rend]info file /t/r.log",
    ]
    with pytest.raises(TestnetError, match="target_port"):
        onion_service_lines(hs_dir=Path("/h"), virtual_port=80, target_port=0, rend_log=Path("/r"))


def test_render_torrc() -> None:
    assert render_torrc(["A 1", "B 2"]) == "A 1\nB 2\n"
    with pytest.raises(TestnetError, match="line break"):
        render_torrc(["HiddenServicePort 80 127.0.0.1:1\nControlPort 0.0.0.0:9051"])
