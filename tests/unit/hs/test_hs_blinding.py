from __future__ import annotations

import json
from pathlib import Path

from hs_factory import master_key

from onionfleet.hs.blinding import (
    blind_public_key,
    blind_secret_key,
    blinding_factor,
    credential,
    subcredential,
    subcredential_for,
)
from onionfleet.hs.descriptor import parse_descriptor_unpinned
from onionfleet.hs.keys import OnionAddress, ed25519_verify
from onionfleet.hs.timeperiod import TimePeriod

REAL = Path(__file__).parents[2] / "vectors" / "hs" / "real_tor"


def test_blinded_secret_matches_blinded_public_and_signs() -> None:
    sk = master_key()
    for tp in (TimePeriod(20_000, 1440), TimePeriod(7_000_000, 4)):
        bs = blind_secret_key(sk, tp)
        assert bs.public == blind_public_key(sk.public_key(), tp)
        sig = bs.sign(b"message")
        assert ed25519_verify(bs.public.raw, sig, b"message")
        assert not ed25519_verify(bs.public.raw, sig, b"other")


def test_blinding_depends_on_number_and_length() -> None:
    pub = master_key().public_key()
    a = blind_public_key(pub, TimePeriod(100, 1440))
    assert a != blind_public_key(pub, TimePeriod(101, 1440))
    assert a != blind_public_key(pub, TimePeriod(100, 4))
    assert len(blinding_factor(pub, TimePeriod(100, 1440))) == 32


def test_subcredential_composition() -> None:
    pub = master_key().public_key()
    blinded = blind_public_key(pub, TimePeriod(5, 1440))
    assert subcredential_for(pub, blinded) == subcredential(credential(pub), blinded)
    assert "hidden" in repr(credential(pub))


def test_real_tor_blinded_key_is_reproduced() -> None:
    """C-tor's descriptor carries its blinded key in cert 08; our blinding of the service's
    public key for one of the TPs around the recording time (testnet: 4-minute TPs, length 4 in
    the blinding nonce) must give exactly that key."""
    for name in ("svcplain", "svcauth", "svcpow"):
        meta = json.loads((REAL / name / "meta.json").read_text())
        addr = OnionAddress.parse(meta["address"])
        parsed = parse_descriptor_unpinned((REAL / name / "descriptor.txt").read_text())
        tp_len = 24 * meta["voting_interval_s"] // 60
        minutes = int(meta["recorded_at_unix"] // 60)
        tp_now = (minutes - tp_len // 2) // tp_len
        candidates = {
            blind_public_key(addr.public_key, TimePeriod(n, tp_len))
            for n in (tp_now - 1, tp_now, tp_now + 1)
        }
        assert parsed.blinded_key in candidates
