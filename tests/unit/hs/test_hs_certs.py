from __future__ import annotations

import struct

import pytest

from onionfleet.hs.certs import cert_from_pem_body, cert_to_pem, create_cert, decode_cert
from onionfleet.hs.errors import (
    CertificateError,
    CertificateExpired,
    CertificateSignatureError,
)
from onionfleet.hs.keys import DescSigningKeypair
from onionfleet.hs.params import (
    CERT_TYPE_HS_BLINDED_ID_V_SIGNING,
    CERT_TYPE_HS_IP_CC_SIGNING,
    CERT_TYPE_HS_IP_V_SIGNING,
)

SIGNER = DescSigningKeypair.from_seed(b"\x01" * 32)
CERTIFIED = DescSigningKeypair.from_seed(b"\x02" * 32).public_raw
NOW = 1_790_000_000
EXP_H = NOW // 3600 + 54


def _cert(cert_type: int = CERT_TYPE_HS_IP_V_SIGNING, exp_h: int = EXP_H) -> bytes:
    return create_cert(cert_type, CERTIFIED, SIGNER.public_raw, SIGNER.sign, exp_h)


@pytest.mark.parametrize(
    "cert_type",
    [CERT_TYPE_HS_BLINDED_ID_V_SIGNING, CERT_TYPE_HS_IP_V_SIGNING, CERT_TYPE_HS_IP_CC_SIGNING],
)
def test_round_trip_and_check(cert_type: int) -> None:
    raw = _cert(cert_type)
    assert len(raw) == 1 + 1 + 4 + 1 + 32 + 1 + 4 + 32 + 64
    cert = decode_cert(raw)
    assert cert.cert_type == cert_type
    assert cert.signing_key == SIGNER.public_raw
    assert cert.expires_at == EXP_H * 3600
    checked = cert.check(cert_type, now=NOW, signing_key=SIGNER.public_raw)
    assert checked.certified_key == CERTIFIED
    assert checked.encoded == raw


def test_pem_round_trip() -> None:
    raw = _cert()
    pem = cert_to_pem(raw)
    lines = pem.split("\n")
    assert lines[0] == "-----BEGIN ED25519 CERT-----" and lines[-1] == "-----END ED25519 CERT-----"
    assert all(len(line) <= 64 for line in lines[1:-1])
    assert cert_from_pem_body("\n".join(lines[1:-1])) == raw
    with pytest.raises(CertificateError):
        cert_from_pem_body("!!!!")


def test_check_failures() -> None:
    cert = decode_cert(_cert())
    with pytest.raises(CertificateError, match="wrong cert type"):
        cert.check(CERT_TYPE_HS_IP_CC_SIGNING, now=NOW)
    with pytest.raises(CertificateSignatureError, match="signed by"):
        cert.check(CERT_TYPE_HS_IP_V_SIGNING, now=NOW, signing_key=CERTIFIED)
    with pytest.raises(CertificateExpired):
        cert.check(CERT_TYPE_HS_IP_V_SIGNING, now=EXP_H * 3600 + 1)
    assert cert.check(
        CERT_TYPE_HS_IP_V_SIGNING, now=EXP_H * 3600 + 1, dangerously_assume_timely=True
    )
    bad = bytearray(_cert())
    bad[10] ^= 1  # inside the certified key
    with pytest.raises(CertificateSignatureError, match="does not verify"):
        decode_cert(bytes(bad)).check(CERT_TYPE_HS_IP_V_SIGNING, now=NOW)


def _with_extensions(exts: bytes, n: int) -> bytes:
    body = (
        struct.pack(">BBIB", 1, CERT_TYPE_HS_IP_V_SIGNING, EXP_H, 1) + CERTIFIED + bytes([n]) + exts
    )
    return body + SIGNER.sign(body)


def test_extensions() -> None:
    ext04 = struct.pack(">HBB", 32, 4, 0) + SIGNER.public_raw
    unknown_ok = struct.pack(">HBB", 3, 0x42, 0) + b"abc"
    cert = decode_cert(_with_extensions(ext04 + unknown_ok, 2))
    assert [e.ext_type for e in cert.extensions] == [4, 0x42]
    assert cert.check(CERT_TYPE_HS_IP_V_SIGNING, now=NOW)
    unknown_crit = struct.pack(">HBB", 3, 0x42, 1) + b"abc"
    with pytest.raises(CertificateError, match="affecting validation"):
        decode_cert(_with_extensions(ext04 + unknown_crit, 2))
    with pytest.raises(CertificateError, match="not 32 bytes"):
        decode_cert(_with_extensions(struct.pack(">HBB", 31, 4, 0) + bytes(31), 1))
    with pytest.raises(CertificateError, match="appears twice"):
        decode_cert(_with_extensions(ext04 + ext04, 2))
    no_signer = decode_cert(_with_extensions(b"", 0))
    with pytest.raises(CertificateError, match="missing"):
        no_signer.check(CERT_TYPE_HS_IP_V_SIGNING, now=NOW)


def test_structure_errors() -> None:
    raw = _cert()
    with pytest.raises(CertificateError, match="truncated"):
        decode_cert(raw[:50])
    with pytest.raises(CertificateError, match="trailing"):
        decode_cert(raw[:-64] + b"\x00" + raw[-64:])
    with pytest.raises(CertificateError, match="version"):
        decode_cert(b"\x02" + raw[1:])
    with pytest.raises(CertificateError, match="key type"):
        decode_cert(raw[:6] + b"\x02" + raw[7:])
    with pytest.raises(CertificateError, match="overruns"):
        decode_cert(raw[:40] + b"\x00\xff" + raw[42:])
    with pytest.raises(CertificateError, match="truncated extension"):
        decode_cert(raw[:39] + b"\x02" + raw[40:])
