"""PROXY protocol v1/v2 and the probe's HTTP head parser: round trips and hostile input.

Round trips use hypothesis (modest example counts). The hostile-input fuzz is a seeded mutation
loop (>= 100k inputs per parser, fast): the parsers may raise only their typed errors, and what
they accept must re-encode to something that parses back to the same header.
"""

from __future__ import annotations

import contextlib
import ipaddress
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from onionfleet.node.errors import HttpResponseError, ProxyHeaderError
from onionfleet.node.httpcheck import parse_response_head, parse_status_line
from onionfleet.node.proxy_protocol import (
    V2_SIGNATURE,
    ProxyCommand,
    ProxyFamily,
    ProxyHeader,
    encode_proxy_header,
    encode_v1,
    encode_v2,
    parse_proxy_header,
    tor_circuit_header,
)

FUZZ_INPUTS = 100_000

ports = st.integers(0, 65535)
v4 = st.builds(ipaddress.IPv4Address, st.integers(0, 2**32 - 1))
v6 = st.builds(ipaddress.IPv6Address, st.integers(0, 2**128 - 1))
tlvs = st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=40)), max_size=4).map(tuple)
unix_path = st.binary(max_size=108).map(lambda b: b.rstrip(b"\0"))


@st.composite
def v1_headers(draw: st.DrawFn) -> ProxyHeader:
    family = draw(st.sampled_from([ProxyFamily.TCP4, ProxyFamily.TCP6, ProxyFamily.UNSPEC]))
    if family is ProxyFamily.UNSPEC:
        return ProxyHeader(1, ProxyCommand.LOCAL, ProxyFamily.UNSPEC)
    addrs = v4 if family is ProxyFamily.TCP4 else v6
    return ProxyHeader(
        1, ProxyCommand.PROXY, family, draw(addrs), draw(addrs), draw(ports), draw(ports)
    )


@st.composite
def v2_headers(draw: st.DrawFn) -> ProxyHeader:
    family = draw(st.sampled_from(list(ProxyFamily)))
    if family is ProxyFamily.UNSPEC or (draw(st.booleans()) and draw(st.booleans())):
        return ProxyHeader(2, ProxyCommand.LOCAL, ProxyFamily.UNSPEC)
    if family in (ProxyFamily.UNIX_STREAM, ProxyFamily.UNIX_DGRAM):
        src, dst = draw(unix_path), draw(unix_path)
        return ProxyHeader(2, ProxyCommand.PROXY, family, src, dst, 0, 0, draw(tlvs))
    addrs = v4 if family in (ProxyFamily.TCP4, ProxyFamily.UDP4) else v6
    return ProxyHeader(
        2,
        ProxyCommand.PROXY,
        family,
        draw(addrs),
        draw(addrs),
        draw(ports),
        draw(ports),
        draw(tlvs),
    )


@settings(max_examples=300, deadline=None)
@given(v1_headers(), st.binary(max_size=20))
def test_v1_round_trip(header: ProxyHeader, trailing: bytes) -> None:
    raw = encode_v1(header)
    assert len(raw) <= 107
    assert parse_proxy_header(raw + trailing) == (header, len(raw))


@settings(max_examples=300, deadline=None)
@given(v2_headers(), st.binary(max_size=20))
def test_v2_round_trip(header: ProxyHeader, trailing: bytes) -> None:
    raw = encode_v2(header)
    assert parse_proxy_header(raw + trailing) == (header, len(raw))
    assert parse_proxy_header(raw[: len(raw) - 1]) is None


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 65535), st.sampled_from([1, 2]))
def test_tor_circuit_header_round_trip(circuit: int, port: int, version: int) -> None:
    header = tor_circuit_header(circuit, port, version=version)
    parsed = parse_proxy_header(encode_proxy_header(header, version))
    assert parsed is not None
    assert parsed[0] == header


# ------------------------------------------------------------------------------ mutation fuzz


def _mutate(rng: random.Random, data: bytes, corpus: list[bytes]) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(8)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:  # flip a bit
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1:  # insert random bytes
            buf[pos:pos] = rng.randbytes(rng.randint(1, 8))
        elif op == 2 and buf:  # delete a range
            del buf[pos : pos + rng.randint(1, 8)]
        elif op == 3:  # truncate
            del buf[pos:]
        elif op == 4 and buf:  # interesting byte
            buf[rng.randrange(len(buf))] = rng.choice(b"\x00\xff\r\n :.%0123456789abcdefxX-")
        elif op == 5:  # splice with another corpus entry
            other = rng.choice(corpus)
            cut = rng.randrange(len(other) + 1)
            buf[pos:] = other[cut:]
        elif op == 6 and len(buf) >= 16:  # v2 length field: random
            buf[14:16] = rng.randbytes(2)
        else:  # repeat a chunk
            buf[pos:pos] = buf[pos : pos + rng.randint(1, 30)] * rng.randint(1, 10)
    return bytes(buf)


def _proxy_corpus() -> list[bytes]:
    v6a = ipaddress.IPv6Address("2001:db8::1")
    v4a = ipaddress.IPv4Address("192.0.2.1")
    corpus = [
        b"PROXY TCP6 fc00:dead:beef:4dad::0:29a ::1 666 42\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET /",
        b"PROXY UNKNOWN\r\n",
        b"PROXY TCP6 fe80::1%eth0 ::ffff:1.2.3.4 1 2\r\n",
        V2_SIGNATURE + b"\x20\x00\x00\x00",
    ]
    for version in (1, 2):
        corpus.append(encode_proxy_header(tor_circuit_header(0xDEADBEEF, 80), version))
    for family, a in ((ProxyFamily.TCP4, v4a), (ProxyFamily.UDP6, v6a)):
        corpus.append(
            encode_v2(ProxyHeader(2, ProxyCommand.PROXY, family, a, a, 1, 2, ((1, b"h2"),)))
        )
    corpus.append(
        encode_v2(ProxyHeader(2, ProxyCommand.PROXY, ProxyFamily.UNIX_STREAM, b"/a", b"/b"))
    )
    return corpus


def test_fuzz_proxy_parser_only_typed_errors() -> None:
    rng = random.Random(20261122)
    corpus = _proxy_corpus()
    accepted = rejected = incomplete = 0
    for i in range(FUZZ_INPUTS):
        data = (
            rng.randbytes(rng.randint(0, 64))
            if i % 10 == 0
            else _mutate(rng, rng.choice(corpus), corpus)
        )
        max_len = 4096 if i % 3 else rng.randint(0, 300)
        try:
            parsed = parse_proxy_header(data, max_v2_length=max_len)
        except ProxyHeaderError:
            rejected += 1
            continue
        if parsed is None:
            incomplete += 1
            continue
        accepted += 1
        header, used = parsed
        assert 0 < used <= len(data)
        again = parse_proxy_header(encode_proxy_header(header, header.version), max_v2_length=65535)
        assert again is not None
        assert again[0] == header
        if len(corpus) < 200 and rng.random() < 0.01:
            corpus.append(data)
    assert accepted > 1000 and rejected > 1000 and incomplete > 100


def test_fuzz_http_parser_only_typed_errors() -> None:
    rng = random.Random(7)
    corpus = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello",
        b"HTTP/1.0 503 Service Unavailable\r\n\r\n",
        b"HTTP/1.1 204 \r\nX-A: b\tc\r\n\r\n",
        b"HTTP/1.1 301 Moved\r\nLocation: /a\r\nContent-Length: 0\r\n\r\n",
    ]
    accepted = 0
    for i in range(FUZZ_INPUTS):
        data = (
            rng.randbytes(rng.randint(0, 64))
            if i % 10 == 0
            else _mutate(rng, rng.choice(corpus), corpus)
        )
        with contextlib.suppress(HttpResponseError):
            parse_status_line(data.split(b"\r\n", 1)[0])
        try:
            parsed = parse_response_head(data, max_head_bytes=rng.choice([16, 64, 16384]))
            if parsed is not None:
                accepted += 1
                head, used = parsed
                assert 0 < used <= len(data)
                assert 100 <= head.status_line.status <= 999
                _ = head.content_length
        except HttpResponseError:
            pass
    assert accepted > 1000
