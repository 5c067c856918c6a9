"""Known answers from tor (src/test/test_hs_service.c test_export_client_circuit_id) and the
PROXY protocol spec (haproxy doc/proxy-protocol.txt)."""

from __future__ import annotations

import ipaddress

import pytest

from onionfleet.node.errors import ProxyHeaderEncodeError, ProxyHeaderError
from onionfleet.node.proxy_protocol import (
    V2_SIGNATURE,
    ProxyCommand,
    ProxyFamily,
    ProxyHeader,
    circuit_id_of,
    encode_proxy_header,
    encode_v1,
    encode_v2,
    parse_proxy_header,
    tor_circuit_header,
)

TOR_LINES = [
    (b"PROXY TCP6 fc00:dead:beef:4dad::0:29a ::1 666 42\r\n", 666, 666),
    (b"PROXY TCP6 fc00:dead:beef:4dad::ffff:ffff ::1 65535 42\r\n", 0xFFFFFFFF, 65535),
    (b"PROXY TCP6 fc00:dead:beef:4dad::1:6 ::1 6 42\r\n", 0x10006, 6),
]


@pytest.mark.parametrize(("line", "circuit", "src_port"), TOR_LINES)
def test_tor_lines(line: bytes, circuit: int, src_port: int) -> None:
    parsed = parse_proxy_header(line + b"GET /")
    assert parsed is not None
    header, used = parsed
    assert used == len(line)
    assert circuit_id_of(header) == circuit
    assert header.src_port == src_port
    assert header.dst_port == 42
    assert header.dst_addr == ipaddress.IPv6Address("::1")
    # Our own tor-style header carries the same values.
    assert tor_circuit_header(circuit, 42) == header


def test_incremental_parse_needs_more() -> None:
    line = TOR_LINES[0][0]
    for i in range(len(line)):
        assert parse_proxy_header(line[:i]) is None
    v2 = encode_v2(tor_circuit_header(7, 80, version=2))
    for i in range(len(v2)):
        assert parse_proxy_header(v2[:i]) is None
    parsed = parse_proxy_header(v2)
    assert parsed is not None
    assert circuit_id_of(parsed[0]) == 7


def test_v2_known_bytes() -> None:
    header = ProxyHeader(
        2,
        ProxyCommand.PROXY,
        ProxyFamily.TCP4,
        ipaddress.IPv4Address("1.2.3.4"),
        ipaddress.IPv4Address("5.6.7.8"),
        1000,
        80,
        ((0x04, b""),),
    )
    assert encode_v2(header) == (
        V2_SIGNATURE
        + b"\x21\x11\x00\x0f"
        + bytes([1, 2, 3, 4, 5, 6, 7, 8])
        + b"\x03\xe8\x00\x50"
        + b"\x04\x00\x00"
    )
    assert parse_proxy_header(encode_v2(header)) == (header, 31)


def test_local_and_unknown() -> None:
    local = ProxyHeader(2, ProxyCommand.LOCAL, ProxyFamily.UNSPEC)
    assert encode_v2(local) == V2_SIGNATURE + b"\x20\x00\x00\x00"
    assert encode_v1(local) == b"PROXY UNKNOWN\r\n"
    parsed = parse_proxy_header(b"PROXY UNKNOWN ffff::1 ::1 1 2\r\nrest")
    assert parsed is not None
    assert parsed[0].family is ProxyFamily.UNSPEC
    assert parsed[1] == 31
    assert circuit_id_of(parsed[0]) is None


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"GET / HTTP/1.1\r\n", "does not start with a PROXY header"),
        (b"PROXZ", "prefix"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "6 space-separated"),
        (b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "TCP4, TCP6"),
        (b"PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", "invalid address"),
        (b"PROXY TCP4 ::1 ::1 1 2\r\n", "invalid address"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "above 65535"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "decimal"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "CRLF"),
        (b"PROXY " + b"A" * 120, "CRLF"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 \xff\r\n", "ASCII"),
        (V2_SIGNATURE + b"\x11\x11\x00\x00", "version 1"),
        (V2_SIGNATURE + b"\x22\x11\x00\x00", "command"),
        (V2_SIGNATURE + b"\x21\x99\x00\x00", "family"),
        (V2_SIGNATURE + b"\x21\x11\x00\x04abcd", "shorter"),
        (V2_SIGNATURE + b"\x21\x11\xff\xff", "more than"),
        (V2_SIGNATURE + b"\x21\x11\x00\x0e" + bytes(12) + b"\x01\x00", "truncated"),
        (V2_SIGNATURE + b"\x21\x11\x00\x0f" + bytes(12) + b"\x01\x00\x05", "longer"),
        (b"\r\n\r\n\x00\r\nQUIX", "signature"),
    ],
)
def test_malformed(data: bytes, fragment: str) -> None:
    with pytest.raises(ProxyHeaderError, match=fragment):
        parse_proxy_header(data)


def test_encode_errors() -> None:
    v4 = ipaddress.IPv4Address("1.2.3.4")
    v6 = ipaddress.IPv6Address("::1")
    with pytest.raises(ProxyHeaderEncodeError, match="IPv6Address"):
        encode_v1(ProxyHeader(1, ProxyCommand.PROXY, ProxyFamily.TCP6, v4, v6, 1, 2))
    with pytest.raises(ProxyHeaderEncodeError, match="v1 cannot carry"):
        encode_v1(ProxyHeader(1, ProxyCommand.PROXY, ProxyFamily.UDP4, v4, v4, 1, 2))
    with pytest.raises(ProxyHeaderEncodeError, match="port"):
        encode_v2(ProxyHeader(2, ProxyCommand.PROXY, ProxyFamily.TCP4, v4, v4, 70000, 2))
    with pytest.raises(ProxyHeaderEncodeError, match="version 3"):
        encode_proxy_header(ProxyHeader(1, ProxyCommand.LOCAL, ProxyFamily.UNSPEC), 3)
    with pytest.raises(ProxyHeaderEncodeError, match="32 bits"):
        tor_circuit_header(1 << 32, 80)
