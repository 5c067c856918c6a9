"""Descriptors made by real C-tor 0.4.9 on the private test network decode, verify and decrypt
(see tests/vectors/hs/README.md for how they were recorded)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from onionfleet.hs.blinding import blind_public_key
from onionfleet.hs.client_auth import parse_auth_private
from onionfleet.hs.descriptor import (
    FlowControl,
    build_descriptor,
    parse_descriptor,
    parse_descriptor_unpinned,
)
from onionfleet.hs.errors import DescriptorDecryptionError
from onionfleet.hs.intro_point import LS_ED25519_ID, LS_IPV4, LS_LEGACY_ID
from onionfleet.hs.keys import OnionAddress, parse_public_key_file, parse_secret_key_file
from onionfleet.hs.timeperiod import TimePeriod

REAL = Path(__file__).parents[2] / "vectors" / "hs" / "real_tor"


def _load(name: str) -> tuple[dict[str, Any], OnionAddress, str]:
    d = REAL / name
    meta = json.loads((d / "meta.json").read_text())
    return meta, OnionAddress.parse(meta["address"]), (d / "descriptor.txt").read_text()


@pytest.mark.parametrize("name", ["svcplain", "svcauth", "svcpow"])
def test_tor_key_files_match_address(name: str) -> None:
    meta, addr, _ = _load(name)
    sk = parse_secret_key_file((REAL / name / "hs_ed25519_secret_key").read_bytes())
    pk = parse_public_key_file((REAL / name / "hs_ed25519_public_key").read_bytes())
    assert sk.public_key() == pk == addr.public_key
    assert (REAL / name / "hostname").read_text().strip() == meta["address"]


def test_plain_service_descriptor() -> None:
    meta, addr, text = _load("svcplain")
    now = meta["recorded_at_unix"]
    d = parse_descriptor_unpinned(text).verify(now=now).decrypt(addr, now=now)
    assert d.lifetime_min == 180
    assert d.flow_control == FlowControl("1-2", 31)
    assert d.pow_params is None and not d.single_onion_service and not d.client_auth_used
    assert d.auth_client_count == 16
    assert d.create2_formats == (2,)
    assert 1 <= len(d.intro_points) <= 20
    for ip in d.intro_points:
        assert [ls.ls_type for ls in ip.link_specifiers] == [LS_IPV4, LS_LEGACY_ID, LS_ED25519_ID]
        assert ip.link_specifiers[0].describe().startswith("ipv4 127.0.0.1:")
        assert not ip.has_legacy_key
        assert (
            ip.auth_key_cert is not None and ip.auth_key_cert.signing_key == d.verified.signing_key
        )
    # C-tor pads the superencrypted plaintext to a multiple of 10,000 bytes
    assert (d.superencrypted_blob_size - 48) % 10_000 == 0
    assert d.size_bytes == len(text)


def test_client_auth_service_descriptor() -> None:
    meta, addr, text = _load("svcauth")
    now = meta["recorded_at_unix"]
    key = parse_auth_private((REAL / "svcauth" / "client.auth_private").read_text(), addr)
    verified = parse_descriptor_unpinned(text).verify(now=now)
    d = verified.decrypt(addr, now=now, client_key=key)
    assert d.client_auth_used
    assert len(d.intro_points) >= 1
    assert d.flow_control == FlowControl("1-2", 31)
    with pytest.raises(DescriptorDecryptionError):
        verified.decrypt(addr, now=now)


def test_our_rebuild_of_tor_intro_points_decodes() -> None:
    """The publisher's path: decrypted node IPs + master key + TP + counter -> new descriptor."""
    meta, addr, text = _load("svcplain")
    now = meta["recorded_at_unix"]
    node = parse_descriptor_unpinned(text).verify(now=now).decrypt(addr, now=now)
    sk = parse_secret_key_file((REAL / "svcplain" / "hs_ed25519_secret_key").read_bytes())
    tp = TimePeriod(int(now // 60 - 2) // 4, 4)
    built = build_descriptor(
        master_key=sk,
        time_period=tp,
        revision_counter=node.revision_counter + 1,
        intro_points=node.intro_points,
        now=now,
        token_bytes=random.Random(1).randbytes,
        flow_control=node.flow_control,
    )
    again = (
        parse_descriptor(built.text, blind_public_key(addr.public_key, tp))
        .verify(now=now)
        .decrypt(addr, now=now)
    )
    assert [ip.link_specifiers for ip in again.intro_points] == [
        ip.link_specifiers for ip in node.intro_points
    ]
    assert [ip.onion_key for ip in again.intro_points] == [ip.onion_key for ip in node.intro_points]
    assert abs(built.size_bytes - len(text)) < 16  # same padding and layout as C-tor


def test_pow_service_descriptor_and_single_owner_rebuild() -> None:
    meta, addr, text = _load("svcpow")
    now = meta["recorded_at_unix"]
    node = parse_descriptor_unpinned(text).verify(now=now).decrypt(addr, now=now)
    pow_params = node.pow_params
    assert pow_params is not None
    assert pow_params.pow_type == "v1" and len(pow_params.seed) == 32
    assert abs(pow_params.expires_at() - now) < 4 * 3600
    sk = parse_secret_key_file((REAL / "svcpow" / "hs_ed25519_secret_key").read_bytes())
    tp = TimePeriod(int(now // 60 - 2) // 4, 4)
    common = {
        "master_key": sk,
        "time_period": tp,
        "revision_counter": node.revision_counter + 1,
        "intro_points": node.intro_points,
        "now": now,
        "flow_control": node.flow_control,
    }
    merged = build_descriptor(token_bytes=random.Random(2).randbytes, **common)  # type: ignore[arg-type]
    single_owner = build_descriptor(
        token_bytes=random.Random(3).randbytes,
        single_owner_pow_params=pow_params,
        **common,  # type: ignore[arg-type]
    )
    blinded = blind_public_key(addr.public_key, tp)
    decoded = [
        parse_descriptor(b.text, blinded).verify(now=now).decrypt(addr, now=now)
        for b in (merged, single_owner)
    ]
    assert decoded[0].pow_params is None  # never carried over unless asked for explicitly
    assert decoded[1].pow_params == pow_params


@pytest.mark.parametrize("name", ["svcplain", "svcauth", "svcpow"])
def test_tor_revision_counter_is_our_ope_of_a_plausible_age(name: str) -> None:
    """C-tor's counter = OPE(seconds since the SRV run start + 1) keyed by the blinded secret key
    (cross-check of hs.revision_counter against real tor): invert our OPE by its cumulative
    keystream and check the age fits the testnet's SRV schedule (run = 24 x 10 s = 240 s; a
    desc_current uses the previous run, so the age is below two runs plus a rebuild delay)."""
    from onionfleet.hs.blinding import blind_secret_key
    from onionfleet.hs.revision_counter import ope_encrypt, ope_key

    meta, _, text = _load(name)
    parsed = parse_descriptor_unpinned(text)
    sk = parse_secret_key_file((REAL / name / "hs_ed25519_secret_key").read_bytes())
    tp_len = 24 * meta["voting_interval_s"] // 60
    minutes = int(meta["recorded_at_unix"] // 60)
    tp_now = (minutes - tp_len // 2) // tp_len
    bsk = next(
        b
        for n in (tp_now - 1, tp_now, tp_now + 1)
        if (b := blind_secret_key(sk, TimePeriod(n, tp_len))).public == parsed.blinded_key
    )
    key = ope_key(bsk)
    lo, hi = 1, 4096  # OPE is strictly increasing: bisect for the plaintext
    while lo < hi:
        mid = (lo + hi) // 2
        if ope_encrypt(key, mid) < parsed.revision_counter:
            lo = mid + 1
        else:
            hi = mid
    assert ope_encrypt(key, lo) == parsed.revision_counter
    age_s = lo - 1  # = build time - SRV run start
    assert 0 <= age_s < 2 * 24 * meta["voting_interval_s"] + 120
