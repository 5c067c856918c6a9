from __future__ import annotations

import pytest

from onionfleet.node.errors import HttpResponseError, NodeConfigError
from onionfleet.node.httpcheck import (
    build_get_request,
    parse_response_head,
    parse_status_line,
)


def test_status_lines() -> None:
    s = parse_status_line(b"HTTP/1.1 200 OK")
    assert (s.http_version, s.status, s.reason) == ("1.1", 200, "OK")
    assert parse_status_line(b"HTTP/1.0 503 Service Unavailable").status == 503
    assert parse_status_line(b"HTTP/1.1 204 ").reason == ""
    assert parse_status_line(b"HTTP/1.1 204").reason == ""  # lenient: no SP before empty reason


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"HTTP/1.1",
        b"HTTP/1.1 20 OK",
        b"HTTP/1.1 2x0 OK",
        b"HTTP/11 200 OK",
        b"HTTP/1.1 200OK",
        b"HTTP/1.1 099 X",
        b"http/1.1 200 OK",
        b"HTTP/1.1 200 O\x00K",
    ],
)
def test_bad_status_lines(line: bytes) -> None:
    with pytest.raises(HttpResponseError):
        parse_status_line(line)


def test_head_incremental() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  b \r\n\r\nhello"
    for i in range(len(raw) - 5 - 4 + 3):
        assert parse_response_head(raw[:i]) is None
    parsed = parse_response_head(raw)
    assert parsed is not None
    head, used = parsed
    assert raw[used:] == b"hello"
    assert head.content_length == 5
    assert head.headers == (("content-length", "5"), ("x-a", "b"))


def test_head_errors() -> None:
    with pytest.raises(HttpResponseError, match="HTTP/"):
        parse_response_head(b"SSH-2.0-OpenSSH")
    with pytest.raises(HttpResponseError, match="longer"):
        parse_response_head(b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 5000)
    with pytest.raises(HttpResponseError, match="folding"):
        parse_response_head(b"HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n")
    with pytest.raises(HttpResponseError, match="field name"):
        parse_response_head(b"HTTP/1.1 200 OK\r\nA b: c\r\n\r\n")
    parsed = parse_response_head(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"
    )
    assert parsed is not None
    with pytest.raises(HttpResponseError, match="Content-Length"):
        _ = parsed[0].content_length


def test_request() -> None:
    assert build_get_request("x.onion", "/health?a=1") == (
        b"GET /health?a=1 HTTP/1.0\r\nHost: x.onion\r\nUser-Agent: onionfleet-probe\r\n"
        b"Accept: */*\r\nConnection: close\r\n\r\n"
    )
    with pytest.raises(NodeConfigError):
        build_get_request("x", "/\r\nInjected: 1")
    with pytest.raises(NodeConfigError):
        build_get_request("a b", "/")
    with pytest.raises(NodeConfigError, match="ASCII"):
        build_get_request("x", "/é")
