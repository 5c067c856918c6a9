"""PROXY protocol v1 (text) and v2 (binary): pure encode and parse, no I/O.

Reference: HAProxy's "The PROXY protocol, Versions 1 & 2" (doc/proxy-protocol.txt), §2.1 (v1,
at most 107 bytes including CRLF) and §2.2 (v2: 12-byte signature, version/command byte, family
byte, 16-bit length, addresses, TLVs).

tor speaks v1 when a service has ``HiddenServiceExportCircuitID haproxy`` (tor.1; tor's
``export_hs_client_circuit_id()`` in src/core/or/connection_edge.c). For every stream it sends::

    "PROXY TCP6 %s:%x:%x %s %d %d\\r\\n" with
    "fc00:dead:beef:4dad:", gid >> 16, gid & 0xffff, "::1", gid & 0xffff, <virtual port>

where ``gid`` is the rendezvous circuit's 32-bit global identifier, so the low 32 bits of the
source address are the circuit id (:func:`circuit_id_of`). Note tor's address is not in canonical
IPv6 form (``::0:29a``); it is parsed by value.

:func:`parse_proxy_header` takes the bytes received so far and returns ``None`` (need more),
``(header, consumed)``, or raises :class:`~onionfleet.node.errors.ProxyHeaderError` — never any
other exception, whatever the input (fuzzed in tests/property/test_proxy_protocol.py).
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass

from onionfleet.node.errors import ProxyHeaderEncodeError, ProxyHeaderError

__all__ = [
    "MAX_V1_LENGTH",
    "TOR_CIRCUIT_NETWORK",
    "V2_SIGNATURE",
    "ProxyCommand",
    "ProxyFamily",
    "ProxyHeader",
    "circuit_id_of",
    "encode_proxy_header",
    "encode_v1",
    "encode_v2",
    "parse_proxy_header",
    "tor_circuit_header",
]

MAX_V1_LENGTH = 107
"""proxy-protocol.txt §2.1: a v1 line is at most 107 bytes, CRLF included."""

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
"""proxy-protocol.txt §2.2: the 12-byte v2 signature."""

_V1_PREFIX = b"PROXY "
_V2_HEAD_LEN = 16
_UNIX_ADDR_LEN = 108
DEFAULT_MAX_V2_LENGTH = 4096
"""Largest v2 payload (addresses + TLVs) accepted by default; the protocol allows 65535."""

TOR_CIRCUIT_NETWORK = ipaddress.IPv6Network("fc00:dead:beef:4dad::/64")
"""tor's ``src_ipv6_prefix`` in ``export_hs_client_circuit_id()`` (connection_edge.c)."""

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ProxyCommand(enum.Enum):
    """v2 command (low nibble of byte 13). v1 has only PROXY (``UNKNOWN`` maps to LOCAL-like)."""

    LOCAL = 0x0
    PROXY = 0x1


class ProxyFamily(enum.Enum):
    """Address family and transport (v2 byte 14; v1 ``TCP4``/``TCP6``/``UNKNOWN``)."""

    UNSPEC = 0x00
    TCP4 = 0x11
    UDP4 = 0x12
    TCP6 = 0x21
    UDP6 = 0x22
    UNIX_STREAM = 0x31
    UNIX_DGRAM = 0x32


_IPV4_FAMILIES = (ProxyFamily.TCP4, ProxyFamily.UDP4)
_IPV6_FAMILIES = (ProxyFamily.TCP6, ProxyFamily.UDP6)
_UNIX_FAMILIES = (ProxyFamily.UNIX_STREAM, ProxyFamily.UNIX_DGRAM)


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """One PROXY header, v1 or v2 (proxy-protocol.txt §2).

    ``src_addr``/``dst_addr`` are IP addresses for the INET families, raw paths (``bytes``, at most
    108, without the NUL padding) for UNIX, ``None`` for UNSPEC/LOCAL/UNKNOWN (ports then 0).
    ``tlvs`` are v2 type-length-value extensions, kept raw and in order.
    """

    version: int
    command: ProxyCommand
    family: ProxyFamily
    src_addr: IpAddress | bytes | None = None
    dst_addr: IpAddress | bytes | None = None
    src_port: int = 0
    dst_port: int = 0
    tlvs: tuple[tuple[int, bytes], ...] = ()


# --------------------------------------------------------------------------------------- helpers


def circuit_id_of(header: ProxyHeader) -> int | None:
    """The tor circuit id carried by a header tor sent, or ``None`` if it carries none.

    ``export_hs_client_circuit_id()``: the source address is ``fc00:dead:beef:4dad::/64`` with the
    32-bit circuit global identifier in its low 32 bits.
    """
    src = header.src_addr
    if isinstance(src, ipaddress.IPv6Address) and src in TOR_CIRCUIT_NETWORK:
        return int(src) & 0xFFFFFFFF
    return None


def tor_circuit_header(circuit_id: int, virtual_port: int, *, version: int = 1) -> ProxyHeader:
    """The header tor itself would send for ``circuit_id`` on ``virtual_port`` (see module doc)."""
    if not 0 <= circuit_id <= 0xFFFFFFFF:
        raise ProxyHeaderEncodeError(f"circuit id {circuit_id} does not fit in 32 bits")
    src = ipaddress.IPv6Address(int(TOR_CIRCUIT_NETWORK.network_address) | circuit_id)
    return ProxyHeader(
        version=version,
        command=ProxyCommand.PROXY,
        family=ProxyFamily.TCP6,
        src_addr=src,
        dst_addr=ipaddress.IPv6Address("::1"),
        src_port=circuit_id & 0xFFFF,
        dst_port=virtual_port,
    )


# -------------------------------------------------------------------------------------- encoding


def _check_port(port: int) -> None:
    if not 0 <= port <= 0xFFFF:
        raise ProxyHeaderEncodeError(f"PROXY header port {port} is not in 0..65535")


def encode_v1(header: ProxyHeader) -> bytes:
    """Encode as a v1 text line (§2.1). LOCAL/UNSPEC become ``PROXY UNKNOWN\\r\\n``."""
    if header.command is ProxyCommand.LOCAL or header.family is ProxyFamily.UNSPEC:
        return b"PROXY UNKNOWN\r\n"
    if header.family is ProxyFamily.TCP4:
        kind: type[IpAddress] = ipaddress.IPv4Address
    elif header.family is ProxyFamily.TCP6:
        kind = ipaddress.IPv6Address
    else:
        raise ProxyHeaderEncodeError(
            f"PROXY v1 cannot carry family {header.family.name}; use v2 or TCP4/TCP6"
        )
    if not isinstance(header.src_addr, kind) or not isinstance(header.dst_addr, kind):
        raise ProxyHeaderEncodeError(
            f"PROXY v1 {header.family.name} header needs {kind.__name__} source and destination"
        )
    _check_port(header.src_port)
    _check_port(header.dst_port)
    line = (
        f"PROXY {header.family.name} {header.src_addr.compressed} {header.dst_addr.compressed} "
        f"{header.src_port} {header.dst_port}\r\n"
    )
    return line.encode("ascii")


def encode_v2(header: ProxyHeader) -> bytes:
    """Encode as a v2 binary header (§2.2), TLVs appended in order."""
    body = bytearray()
    if header.command is ProxyCommand.PROXY:
        family = header.family
        if family in _IPV4_FAMILIES or family in _IPV6_FAMILIES:
            kind: type[IpAddress] = (
                ipaddress.IPv4Address if family in _IPV4_FAMILIES else ipaddress.IPv6Address
            )
            if not isinstance(header.src_addr, kind) or not isinstance(header.dst_addr, kind):
                raise ProxyHeaderEncodeError(
                    f"PROXY v2 {family.name} header needs {kind.__name__} source and destination"
                )
            _check_port(header.src_port)
            _check_port(header.dst_port)
            body += header.src_addr.packed + header.dst_addr.packed
            body += header.src_port.to_bytes(2, "big") + header.dst_port.to_bytes(2, "big")
        elif family in _UNIX_FAMILIES:
            for path in (header.src_addr, header.dst_addr):
                if not isinstance(path, bytes) or len(path) > _UNIX_ADDR_LEN:
                    raise ProxyHeaderEncodeError(
                        "PROXY v2 UNIX header needs byte paths of at most 108 bytes"
                    )
                body += path.ljust(_UNIX_ADDR_LEN, b"\0")
        else:
            family = ProxyFamily.UNSPEC
    else:
        family = ProxyFamily.UNSPEC
    # A receiver ignores the TLVs of LOCAL/UNSPEC headers (§2.2), so they are not sent.
    tlvs = header.tlvs if family is not ProxyFamily.UNSPEC else ()
    for tlv_type, value in tlvs:
        if not 0 <= tlv_type <= 0xFF or len(value) > 0xFFFF:
            raise ProxyHeaderEncodeError("PROXY v2 TLV type or length out of range")
        body += bytes([tlv_type]) + len(value).to_bytes(2, "big") + value
    if len(body) > 0xFFFF:
        raise ProxyHeaderEncodeError(f"PROXY v2 header body of {len(body)} bytes exceeds 65535")
    return (
        V2_SIGNATURE
        + bytes([0x20 | header.command.value, family.value])
        + len(body).to_bytes(2, "big")
        + bytes(body)
    )


def encode_proxy_header(header: ProxyHeader, version: int) -> bytes:
    """Encode ``header`` as PROXY ``version`` 1 or 2."""
    if version == 1:
        return encode_v1(header)
    if version == 2:
        return encode_v2(header)
    raise ProxyHeaderEncodeError(f"PROXY protocol version {version} does not exist; use 1 or 2")


# --------------------------------------------------------------------------------------- parsing


def parse_proxy_header(
    buf: bytes | bytearray, *, max_v2_length: int = DEFAULT_MAX_V2_LENGTH
) -> tuple[ProxyHeader, int] | None:
    """Parse a v1 or v2 header at the start of ``buf``.

    Returns ``None`` if more bytes are needed, else ``(header, bytes consumed)``; raises
    :class:`ProxyHeaderError` as soon as the bytes cannot start a valid header. The amount of input
    examined is bounded (107 bytes for v1, ``16 + max_v2_length`` for v2).
    """
    data = bytes(buf[: _V2_HEAD_LEN + max(0, max_v2_length)])
    if data[:1] == b"P":
        if not _V1_PREFIX.startswith(data[: len(_V1_PREFIX)]):
            raise ProxyHeaderError("stream does not start with a PROXY header (bad v1 prefix)")
        return _parse_v1(data)
    if data[:1] == b"\r":
        if not V2_SIGNATURE.startswith(data[: len(V2_SIGNATURE)]):
            raise ProxyHeaderError("stream does not start with a PROXY header (bad v2 signature)")
        return _parse_v2(data, max_v2_length)
    if not data:
        return None
    raise ProxyHeaderError(
        "stream does not start with a PROXY header; if tor is not configured with "
        "HiddenServiceExportCircuitID haproxy, turn off the proxy's tor PROXY header option"
    )


def _parse_v1(data: bytes) -> tuple[ProxyHeader, int] | None:
    end = data.find(b"\r\n", 0, MAX_V1_LENGTH)
    if end < 0:
        if len(data) >= MAX_V1_LENGTH or b"\n" in data[:MAX_V1_LENGTH]:
            raise ProxyHeaderError(f"PROXY v1 line has no CRLF within {MAX_V1_LENGTH} bytes")
        return None
    try:
        line = data[:end].decode("ascii")
    except UnicodeDecodeError as exc:
        raise ProxyHeaderError("PROXY v1 line is not ASCII") from exc
    consumed = end + 2
    parts = line.split(" ")
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        # §2.1: after UNKNOWN the receiver must ignore anything up to CRLF.
        return ProxyHeader(1, ProxyCommand.LOCAL, ProxyFamily.UNSPEC), consumed
    if len(parts) != 6 or parts[0] != "PROXY":
        raise ProxyHeaderError("PROXY v1 line does not have 6 space-separated fields")
    _, proto, src_text, dst_text, sport_text, dport_text = parts
    addr_type: type[IpAddress]
    if proto == "TCP4":
        family, addr_type = ProxyFamily.TCP4, ipaddress.IPv4Address
    elif proto == "TCP6":
        family, addr_type = ProxyFamily.TCP6, ipaddress.IPv6Address
    else:
        raise ProxyHeaderError("PROXY v1 protocol is not TCP4, TCP6 or UNKNOWN")
    try:
        src = addr_type(src_text)
        dst = addr_type(dst_text)
    except ValueError as exc:
        raise ProxyHeaderError(f"PROXY v1 {proto} header has an invalid address") from exc
    src_port = _parse_v1_port(sport_text)
    dst_port = _parse_v1_port(dport_text)
    header = ProxyHeader(1, ProxyCommand.PROXY, family, src, dst, src_port, dst_port)
    return header, consumed


def _parse_v1_port(text: str) -> int:
    if not 1 <= len(text) <= 5 or not all("0" <= c <= "9" for c in text):
        raise ProxyHeaderError("PROXY v1 port is not a decimal number")
    port = int(text)
    if port > 0xFFFF:
        raise ProxyHeaderError("PROXY v1 port is above 65535")
    return port


def _parse_v2(data: bytes, max_v2_length: int) -> tuple[ProxyHeader, int] | None:
    if len(data) < _V2_HEAD_LEN:
        return None
    ver_cmd, fam_byte = data[12], data[13]
    if ver_cmd >> 4 != 2:
        raise ProxyHeaderError(f"PROXY v2 header has version {ver_cmd >> 4}, expected 2")
    try:
        command = ProxyCommand(ver_cmd & 0x0F)
    except ValueError as exc:
        raise ProxyHeaderError(f"PROXY v2 header has unknown command {ver_cmd & 0x0F}") from exc
    try:
        family = ProxyFamily(fam_byte)
    except ValueError as exc:
        raise ProxyHeaderError(f"PROXY v2 header has unknown family 0x{fam_byte:02x}") from exc
    length = int.from_bytes(data[14:16], "big")
    if length > max_v2_length:
        raise ProxyHeaderError(
            f"PROXY v2 header announces {length} bytes, more than the {max_v2_length} accepted"
        )
    total = _V2_HEAD_LEN + length
    if len(data) < total:
        return None
    body = data[_V2_HEAD_LEN:total]
    src: IpAddress | bytes | None = None
    dst: IpAddress | bytes | None = None
    src_port = dst_port = 0
    offset = 0
    if family in _IPV4_FAMILIES or family in _IPV6_FAMILIES:
        size = 4 if family in _IPV4_FAMILIES else 16
        need = 2 * size + 4
        if len(body) < need:
            raise ProxyHeaderError(f"PROXY v2 {family.name} header is shorter than its addresses")
        if family in _IPV4_FAMILIES:
            src = ipaddress.IPv4Address(body[0:4])
            dst = ipaddress.IPv4Address(body[4:8])
        else:
            src = ipaddress.IPv6Address(body[0:16])
            dst = ipaddress.IPv6Address(body[16:32])
        src_port = int.from_bytes(body[2 * size : 2 * size + 2], "big")
        dst_port = int.from_bytes(body[2 * size + 2 : need], "big")
        offset = need
    elif family in _UNIX_FAMILIES:
        need = 2 * _UNIX_ADDR_LEN
        if len(body) < need:
            raise ProxyHeaderError("PROXY v2 UNIX header is shorter than its addresses")
        src = body[:_UNIX_ADDR_LEN].rstrip(b"\0")
        dst = body[_UNIX_ADDR_LEN:need].rstrip(b"\0")
        offset = need
    if command is ProxyCommand.LOCAL or family is ProxyFamily.UNSPEC:
        # §2.2: with LOCAL, or with AF_UNSPEC, the receiver must ignore the address block.
        family, src, dst, src_port, dst_port = ProxyFamily.UNSPEC, None, None, 0, 0
        tlvs: tuple[tuple[int, bytes], ...] = ()
    else:
        tlvs = _parse_tlvs(body[offset:])
    header = ProxyHeader(2, command, family, src, dst, src_port, dst_port, tlvs)
    return header, total


def _parse_tlvs(rest: bytes) -> tuple[tuple[int, bytes], ...]:
    out: list[tuple[int, bytes]] = []
    i = 0
    while i < len(rest):
        if len(rest) - i < 3:
            raise ProxyHeaderError("PROXY v2 TLV is truncated (fewer than 3 bytes)")
        tlv_type = rest[i]
        tlv_len = int.from_bytes(rest[i + 1 : i + 3], "big")
        if i + 3 + tlv_len > len(rest):
            raise ProxyHeaderError(f"PROXY v2 TLV 0x{tlv_type:02x} is longer than the header")
        out.append((tlv_type, rest[i + 3 : i + 3 + tlv_len]))
        i += 3 + tlv_len
    return tuple(out)
