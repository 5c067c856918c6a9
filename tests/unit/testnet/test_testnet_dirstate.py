"""Reading tor's directory files and logs (pure)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from onionfleet.testnet import TestnetError
from onionfleet.testnet._dirstate import (
    bootstrap_percent,
    count_descriptor_uploads,
    microdesc_digests,
    parse_consensus,
    tail_lines,
)
from onionfleet.testnet._keygen import parse_cert_fingerprint, parse_fingerprint_file

MD1 = "onion-key\nntor-onion-key AAAA\nid ed25519 BBBB\n"
MD2 = "onion-key\nntor-onion-key CCCC\nid ed25519 DDDD\n"


def _digest(md: str) -> str:
    return base64.b64encode(hashlib.sha256(md.encode()).digest()).decode().rstrip("=")


CONSENSUS = f"""network-status-version 3 microdesc
vote-status consensus
r relay1 AAAA 2026-11-22 11:36:51 127.0.0.1 5001 7001
m {_digest(MD1)}
s Exit Fast Guard HSDir Running Stable V2Dir Valid
v Tor 0.4.9.11
r relay2 BBBB 2026-11-22 11:36:51 127.0.0.1 5002 7002
m {_digest(MD2)}
s Fast Running Valid
directory-footer
bandwidth-weights Wbd=0
directory-signature sha256 AAAA BBBB
"""


def test_parse_consensus() -> None:
    routers = parse_consensus(CONSENSUS)
    assert set(routers) == {"relay1", "relay2"}
    assert {"Running", "HSDir", "Guard", "Exit"} <= routers["relay1"].flags
    assert "HSDir" not in routers["relay2"].flags
    assert routers["relay1"].microdesc_digest == _digest(MD1)
    assert parse_consensus("") == {}


def test_microdesc_digests_match_the_consensus() -> None:
    cache = f"@last-listed 2026-11-22 11:36:51\n{MD1}@last-listed 2026-11-22 11:36:51\n{MD2}"
    digests = microdesc_digests(cache)
    routers = parse_consensus(CONSENSUS)
    assert {r.microdesc_digest for r in routers.values()} == digests
    assert microdesc_digests("") == set()


def test_bootstrap_percent_is_the_last_one() -> None:
    log = (
        "[notice] Bootstrapped 0% (starting): Starting\n"
        "[notice] Bootstrapped 75% (enough_dirinfo): Loaded enough\n"
        "[notice] Bootstrapped 100% (done): Done\n"
    )
    assert bootstrap_percent(log) == 100
    assert bootstrap_percent("nothing") is None


def test_count_descriptor_uploads() -> None:
    ok = (
        "[info] handle_response_upload_hsdesc(): Uploading hidden service descriptor: "
        'finished with status 200 ("HS descriptor stored successfully.")\n'
    )
    bad = "[info] Uploading hidden service descriptor: http status 400 (Bad request) response\n"
    assert count_descriptor_uploads(ok * 3 + bad) == 3


def test_tail_lines() -> None:
    assert tail_lines("a\nb\nc\n", 2) == "b\nc"
    assert tail_lines("a\n", 0) == ""


def test_cert_and_fingerprint_files() -> None:
    cert = "dir-key-certificate-version 3\nfingerprint 1b5be27196666f9bfece592b0e4ee9fe31a41b0c\n"
    assert parse_cert_fingerprint(cert) == "1B5BE27196666F9BFECE592B0E4EE9FE31A41B0C"
    fp = "auth1 5A45 5A67 3433 B9C0 24AC 9CB8 D9FA CA45 4310 ECF0\n"
    assert parse_fingerprint_file(fp) == "5A455A673433B9C024AC9CB8D9FACA454310ECF0"
    assert parse_fingerprint_file("x 5A455A673433B9C024AC9CB8D9FACA454310ECF0") == (
        "5A455A673433B9C024AC9CB8D9FACA454310ECF0"
    )
    with pytest.raises(TestnetError, match="malformed"):
        parse_fingerprint_file("auth1 XYZ")
    with pytest.raises(TestnetError, match="fingerprint line"):
        parse_cert_fingerprint("dir-key-certificate-version 3\n")
