from __future__ import annotations

import base64
import hashlib

import pytest

from onionfleet.node.errors import NodeConfigError
from onionfleet.node.targets import OnionTarget, SocksEndpoint, TcpTarget, parse_onion_address


def make_onion(pubkey: bytes = bytes(range(32))) -> str:
    """rend-spec-v3 [ONIONADDRESS], built independently of the code under test."""
    checksum = hashlib.sha3_256(b".onion checksum" + pubkey + b"\x03").digest()[:2]
    return base64.b32encode(pubkey + checksum + b"\x03").decode().lower() + ".onion"


def test_valid_onion_address_is_normalised() -> None:
    addr = make_onion()
    assert parse_onion_address(addr.upper().removesuffix(".ONION")) == addr
    target = OnionTarget(addr.upper(), 80)
    assert target.onion_address == addr
    assert target.host == addr
    assert target.via_tor


def test_onion_display_is_redacted() -> None:
    addr = make_onion()
    target = OnionTarget(addr, 8080)
    assert target.display == f"???{addr[-9:-6]}.onion:8080"
    assert addr[:10] not in target.display
    assert OnionTarget(addr, 80, name="web").display == "web"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("abc.onion", "56"),
        ("1" * 56 + ".onion", "base32"),
        ("b" + make_onion()[1:], "checksum"),
    ],
)
def test_bad_onion_address(text: str, fragment: str) -> None:
    with pytest.raises(NodeConfigError, match=fragment):
        parse_onion_address(text)


def test_wrong_version_rejected() -> None:
    pubkey = bytes(32)
    checksum = hashlib.sha3_256(b".onion checksum" + pubkey + b"\x02").digest()[:2]
    addr = base64.b32encode(pubkey + checksum + b"\x02").decode().lower()
    with pytest.raises(NodeConfigError, match="version 2"):
        parse_onion_address(addr)


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_bad_ports(port: int) -> None:
    with pytest.raises(NodeConfigError, match="port"):
        TcpTarget("10.0.0.1", port)
    with pytest.raises(NodeConfigError, match="port"):
        OnionTarget(make_onion(), port)
    with pytest.raises(NodeConfigError, match="port"):
        SocksEndpoint(port)


@pytest.mark.parametrize("weight", [0, -3, 1001])
def test_bad_weights(weight: int) -> None:
    with pytest.raises(NodeConfigError, match="weight"):
        TcpTarget("10.0.0.1", 80, weight=weight)


def test_tcp_target() -> None:
    t = TcpTarget("10.8.0.2", 8080, weight=3)
    assert t.display == "10.8.0.2:8080"
    assert not t.via_tor
    with pytest.raises(NodeConfigError, match="onion target"):
        TcpTarget(make_onion(), 80)
    with pytest.raises(NodeConfigError, match="empty"):
        TcpTarget("", 80)
