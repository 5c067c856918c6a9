"""PROTOCOLINFO parsing, method choice and SAFECOOKIE math (control-spec §3.21, §3.24)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from onionfleet.tor.auth import (
    AuthChallenge,
    AuthMethod,
    check_cookie,
    choose_auth_method,
    parse_authchallenge,
    parse_protocolinfo,
    safecookie_client_hash,
    safecookie_server_hash,
    verify_server_hash,
)
from onionfleet.tor.codec import ControlCodec
from onionfleet.tor.errors import ControlAuthError, RemoteProtocolError, TorCommandError
from onionfleet.tor.messages import Reply

COOKIE = bytes(range(32))
CLIENT_NONCE = b"\x11" * 32
SERVER_NONCE = b"\x22" * 32


def _reply(raw: bytes) -> Reply:
    (reply,) = ControlCodec().feed(raw)
    assert isinstance(reply, Reply)
    return reply


def test_parse_protocolinfo_real_tor_shape() -> None:
    info = parse_protocolinfo(
        _reply(
            b"250-PROTOCOLINFO 1\r\n"
            b'250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/var/lib/tor/control_auth_cookie"\r\n'
            b'250-VERSION Tor="0.4.9.11"\r\n'
            b"250 OK\r\n"
        )
    )
    assert info.protocol_version == 1
    assert info.auth_methods == frozenset({"COOKIE", "SAFECOOKIE"})
    assert info.cookie_file == "/var/lib/tor/control_auth_cookie"
    assert info.tor_version == "0.4.9.11"


def test_parse_protocolinfo_errors() -> None:
    with pytest.raises(RemoteProtocolError):
        parse_protocolinfo(_reply(b"250-PROTOCOLINFO 1\r\n250 OK\r\n"))
    with pytest.raises(TorCommandError):
        parse_protocolinfo(_reply(b"514 Authentication required.\r\n"))


@pytest.mark.parametrize(
    ("methods", "password", "cookie", "expected"),
    [
        ({"NULL"}, False, False, AuthMethod.NULL),
        ({"HASHEDPASSWORD", "SAFECOOKIE"}, True, True, AuthMethod.HASHEDPASSWORD),
        ({"HASHEDPASSWORD", "SAFECOOKIE", "COOKIE"}, False, True, AuthMethod.SAFECOOKIE),
        ({"COOKIE"}, False, True, AuthMethod.COOKIE),
    ],
)
def test_choose_auth_method(
    methods: set[str], password: bool, cookie: bool, expected: AuthMethod
) -> None:
    info = parse_protocolinfo(
        _reply(
            b"250-PROTOCOLINFO 1\r\n250-AUTH METHODS="
            + ",".join(sorted(methods)).encode()
            + b"\r\n250 OK\r\n"
        )
    )
    assert choose_auth_method(info, have_password=password, have_cookie=cookie) is expected


def test_no_usable_method() -> None:
    info = parse_protocolinfo(
        _reply(b"250-PROTOCOLINFO 1\r\n250-AUTH METHODS=HASHEDPASSWORD\r\n250 OK\r\n")
    )
    with pytest.raises(ControlAuthError, match="no usable"):
        choose_auth_method(info, have_password=False, have_cookie=True)


def test_safecookie_hashes_follow_the_spec_formula() -> None:
    msg = COOKIE + CLIENT_NONCE + SERVER_NONCE
    server = hmac.new(
        b"Tor safe cookie authentication server-to-controller hash", msg, hashlib.sha256
    ).digest()
    client = hmac.new(
        b"Tor safe cookie authentication controller-to-server hash", msg, hashlib.sha256
    ).digest()
    assert safecookie_server_hash(COOKIE, CLIENT_NONCE, SERVER_NONCE) == server
    assert safecookie_client_hash(COOKIE, CLIENT_NONCE, SERVER_NONCE) == client
    challenge = AuthChallenge(server, SERVER_NONCE)
    assert verify_server_hash(COOKIE, CLIENT_NONCE, challenge) == client


def test_wrong_server_hash_is_rejected_without_leaking_the_cookie() -> None:
    good = safecookie_server_hash(COOKIE, CLIENT_NONCE, SERVER_NONCE)
    bad = bytes([good[0] ^ 1]) + good[1:]
    with pytest.raises(ControlAuthError, match="SERVERHASH is wrong") as info:
        verify_server_hash(COOKIE, CLIENT_NONCE, AuthChallenge(bad, SERVER_NONCE))
    assert COOKIE.hex() not in str(info.value)


def test_parse_authchallenge() -> None:
    raw = f"250 AUTHCHALLENGE SERVERHASH={'AB' * 32} SERVERNONCE={'cd' * 32}\r\n".encode()
    challenge = parse_authchallenge(_reply(raw))
    assert challenge.server_hash == b"\xab" * 32
    assert challenge.server_nonce == b"\xcd" * 32
    with pytest.raises(RemoteProtocolError):
        parse_authchallenge(_reply(b"250 AUTHCHALLENGE SERVERHASH=00\r\n"))


def test_check_cookie_length() -> None:
    assert check_cookie(COOKIE, "/x") == COOKIE
    with pytest.raises(ControlAuthError) as info:
        check_cookie(b"short", "/x")
    assert "short" not in str(info.value)
