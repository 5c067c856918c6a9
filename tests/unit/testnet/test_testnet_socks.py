"""SOCKS5 and HTTP/1.0 codec of the test client (pure)."""

from __future__ import annotations

import pytest

from onionfleet.testnet import SOCKS5_REPLY_MEANINGS, SocksReplyError, TestnetError
from onionfleet.testnet._socks import (
    connect_request,
    explain_reply,
    greeting,
    parse_auth_reply,
    parse_connect_reply_header,
    parse_http_response,
    parse_method_choice,
    parse_url,
    userpass_request,
)

ONION = "a" * 56 + ".onion"


def test_greeting_offers_one_method() -> None:
    assert greeting(userpass=False) == b"\x05\x01\x00"
    assert greeting(userpass=True) == b"\x05\x01\x02"


def test_method_choice() -> None:
    parse_method_choice(b"\x05\x02", userpass=True)
    parse_method_choice(b"\x05\x00", userpass=False)
    with pytest.raises(TestnetError, match="refused"):
        parse_method_choice(b"\x05\xff", userpass=True)
    with pytest.raises(TestnetError, match="malformed"):
        parse_method_choice(b"\x04\x00", userpass=False)


def test_userpass_request_and_reply() -> None:
    assert userpass_request("iso", "iso") == b"\x01\x03iso\x03iso"
    parse_auth_reply(b"\x01\x00")
    with pytest.raises(TestnetError, match="rejected"):
        parse_auth_reply(b"\x01\x01")
    with pytest.raises(TestnetError, match="1-255"):
        userpass_request("", "x")


def test_connect_request_sends_the_name_for_tor_to_resolve() -> None:
    req = connect_request(ONION, 80)
    assert req[:5] == bytes([5, 1, 0, 3, 62])
    assert req[5:-2] == ONION.encode()
    assert req[-2:] == b"\x00\x50"
    with pytest.raises(TestnetError):
        connect_request("x" * 256, 80)
    with pytest.raises(TestnetError):
        connect_request("exämple.onion", 80)
    with pytest.raises(TestnetError):
        connect_request(ONION, 0)


def test_connect_reply_success_lengths() -> None:
    assert parse_connect_reply_header(b"\x05\x00\x00\x01\x00") == 5  # 3 more IPv4 bytes + port
    assert parse_connect_reply_header(b"\x05\x00\x00\x04\x00") == 17
    assert parse_connect_reply_header(b"\x05\x00\x00\x03\x07") == 9


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (0xF0, "descriptor can not be found"),
        (0xF2, "introduction failed"),
        (0xF7, "introduction timed out"),
        (0x05, "refused"),
    ],
)
def test_connect_reply_failure_explains_tor_codes(code: int, words: str) -> None:
    with pytest.raises(SocksReplyError, match=words) as info:
        parse_connect_reply_header(bytes([5, code, 0, 1, 0]))
    assert info.value.reply_code == code
    assert f"0x{code:02X}" in str(info.value)


def test_every_extended_code_is_explained() -> None:
    assert set(range(0xF0, 0xF8)) <= SOCKS5_REPLY_MEANINGS.keys()
    assert "unknown" in explain_reply(0x99)


def test_connect_reply_malformed() -> None:
    with pytest.raises(TestnetError, match="malformed"):
        parse_connect_reply_header(b"\x04\x00\x00\x01\x00")
    with pytest.raises(TestnetError, match="address type"):
        parse_connect_reply_header(b"\x05\x00\x00\x09\x00")


def test_parse_url() -> None:
    url = parse_url(f"http://{ONION}/a/b?c=1")
    assert (url.host, url.port, url.path) == (ONION, 80, "/a/b?c=1")
    assert parse_url(f"http://{ONION}:8080").port == 8080
    assert parse_url(f"http://{ONION}").path == "/"
    for bad in ("https://x/", "ftp://x", "http:///x", "http://x:99999/"):
        with pytest.raises(TestnetError):
            parse_url(bad)


def test_parse_http_response() -> None:
    raw = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi"
    assert parse_http_response(raw) == (200, b"hi")
    assert parse_http_response(b"HTTP/1.1 404\r\n\r\n") == (404, b"")
    with pytest.raises(TestnetError, match="end of headers"):
        parse_http_response(b"HTTP/1.0 200 OK\r\n")
    with pytest.raises(TestnetError, match="status line"):
        parse_http_response(b"SSH-2.0-OpenSSH\r\n\r\n")
