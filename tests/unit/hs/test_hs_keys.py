from __future__ import annotations

import base64
import os
import random
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from onionfleet.hs.errors import AddressError, HsError, KeyFileError, KeyFilePermissionError
from onionfleet.hs.keys import (
    BlindedPublicKey,
    BlindedSecretKey,
    DescSigningKeypair,
    HsIdPublicKey,
    OnionAddress,
    encode_public_key_file,
    encode_secret_key_file,
    generate_master_key,
    load_public_key_file,
    load_secret_key_file,
    master_key_from_seed,
    parse_public_key_file,
    parse_secret_key_file,
    save_public_key_file,
    save_secret_key_file,
)

SEED = bytes(range(32))


def _crypto_pub(seed: bytes) -> bytes:
    priv = Ed25519PrivateKey.from_private_bytes(seed)
    return priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def test_expanded_key_matches_rfc8032_key_from_same_seed() -> None:
    sk = master_key_from_seed(SEED)
    assert sk.public_key().raw == _crypto_pub(SEED)
    msg = b"onionfleet"
    assert sk.sign(msg) == Ed25519PrivateKey.from_private_bytes(SEED).sign(msg)


def test_generate_uses_injected_randomness() -> None:
    a = generate_master_key(random.Random(1).randbytes)
    b = generate_master_key(random.Random(1).randbytes)
    assert a == b
    assert a.public_key() != generate_master_key(random.Random(2).randbytes).public_key()


def test_secret_reprs_hide_bytes() -> None:
    sk = master_key_from_seed(SEED)
    assert sk.raw.hex() not in repr(sk)
    assert "secret" in repr(sk)
    kp = DescSigningKeypair.from_seed(SEED)
    assert "secret" in repr(kp)
    blinded = BlindedSecretKey(b"\x11" * 64, BlindedPublicKey(bytes(32)))
    assert "11" * 8 not in repr(blinded) and "\\x11" not in repr(blinded)


def test_address_round_trip_and_forms() -> None:
    pub = master_key_from_seed(SEED).public_key()
    addr = OnionAddress(pub)
    text = str(addr)
    assert text.endswith(".onion") and len(text) == 62
    assert OnionAddress.parse(text) == addr
    assert OnionAddress.parse(text.upper()) == addr
    assert OnionAddress.parse(addr.without_suffix()) == addr
    assert OnionAddress.parse("www." + text) == addr
    assert addr.redacted() == "???" + text[-9:]
    assert pub.b64() == base64.b64encode(pub.raw).decode().rstrip("=")


def _addr_bytes(pub: bytes, checksum: bytes, version: int) -> str:
    return base64.b32encode(pub + checksum + bytes([version])).decode().lower() + ".onion"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("example.com", "not a v3 onion address"),
        ("abc.onion", "not a v3 onion address"),
        ("1" * 56 + ".onion", "outside base32"),
    ],
)
def test_address_not_onion(text: str, needle: str) -> None:
    with pytest.raises(AddressError, match=needle):
        OnionAddress.parse(text)


def test_address_version_checked_before_checksum() -> None:
    pub = master_key_from_seed(SEED).public_key().raw
    with pytest.raises(AddressError, match="unsupported onion address version 2"):
        OnionAddress.parse(_addr_bytes(pub, b"\x00\x00", 2))
    with pytest.raises(AddressError, match="wrong checksum"):
        OnionAddress.parse(_addr_bytes(pub, b"\x00\x00", 3))


def test_key_files_round_trip_and_modes(tmp_path: Path) -> None:
    sk = master_key_from_seed(SEED)
    d = tmp_path / "hs"
    save_secret_key_file(d / "hs_ed25519_secret_key", sk)
    save_public_key_file(d / "hs_ed25519_public_key", sk.public_key())
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert stat.S_IMODE((d / "hs_ed25519_secret_key").stat().st_mode) == 0o600
    assert load_secret_key_file(d / "hs_ed25519_secret_key") == sk
    assert load_public_key_file(d / "hs_ed25519_public_key") == sk.public_key()
    raw = (d / "hs_ed25519_secret_key").read_bytes()
    assert raw[:32] == b"== ed25519v1-secret: type0 ==\x00\x00\x00" and len(raw) == 96
    assert encode_secret_key_file(sk) == raw
    assert encode_public_key_file(sk.public_key())[:29] == b"== ed25519v1-public: type0 =="


def test_secret_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hs_ed25519_secret_key"
    save_secret_key_file(path, master_key_from_seed(SEED))
    os.chmod(path, 0o644)
    with pytest.raises(KeyFilePermissionError) as err:
        load_secret_key_file(path)
    assert str(path) in str(err.value)
    assert f"chmod 600 {path}" in str(err.value)


def test_key_file_errors(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot read"):
        load_secret_key_file(tmp_path / "missing")
    good = encode_secret_key_file(master_key_from_seed(SEED))
    with pytest.raises(KeyFileError, match="wrong size"):
        parse_secret_key_file(good[:-1])
    with pytest.raises(KeyFileError, match="header"):
        parse_secret_key_file(b"== ed25519v1-public: type0 ==\x00\x00\x00" + good[32:])
    unclamped = bytearray(good)
    unclamped[32] |= 7
    with pytest.raises(KeyFileError, match="clamped"):
        parse_secret_key_file(bytes(unclamped))
    with pytest.raises(KeyFileError, match="wrong size"):
        parse_public_key_file(b"== ed25519v1-public: type0 ==\x00\x00\x00" + bytes(31))
    assert issubclass(KeyFileError, HsError)


def test_public_key_type_checks_length() -> None:
    with pytest.raises(ValueError):
        HsIdPublicKey(b"short")
