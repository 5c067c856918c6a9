"""Revision counters: tor's OPE vectors, independent reimplementations, monotonicity."""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from onionfleet.hs.blinding import blind_secret_key
from onionfleet.hs.errors import HsError
from onionfleet.hs.keys import (
    BlindedPublicKey,
    BlindedSecretKey,
    HsIdExpandedSecretKey,
    master_key_from_seed,
)
from onionfleet.hs.revision_counter import (
    RevisionCounterError,
    RevisionCounterOpe,
    ope_encrypt,
    ope_key,
    ope_plaintext,
    revision_counter,
)
from onionfleet.hs.timeperiod import TimePeriod

VECTORS = Path(__file__).parents[2] / "vectors"
OPE_INPUT_MAX = 1 << 18
#: Captured from tor 0.4.9.11 (tests/vectors/README.md).
REAL_TOR_REV_VECTORS = ["revcounter_real_tor_testnet.json", "revcounter_real_tor_testnet_srv.json"]

MASTER = master_key_from_seed(hashlib.sha256(b"revision counter test master").digest())
BLINDED = blind_secret_key(MASTER, TimePeriod(7_120_000, 4))


def naive_ope(key: bytes, n: int) -> int:
    """Word by word from one CTR stream, as onionbalance's _get_ope_scheme_words reads it."""
    enc = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
    total = 0
    for _ in range(n):
        w = enc.update(b"\x00\x00")
        total += w[0] + 256 * w[1] + 1
    return total


def tor_sampled_ope(key: bytes, n: int) -> int:
    """tor crypto_ope.c's own shape: samples every 1024 words, then a cipher whose IV starts at
    block ``starting_iv * 2 / 16`` (``ope_get_cipher``) for the remainder."""
    sample_interval = 1024

    def cipher_at(byte_idx: int) -> object:
        iv = (byte_idx >> 4).to_bytes(16, "big")
        return Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()

    def sum_words(enc: object, count: int) -> int:
        data = enc.update(bytes(2 * count))  # type: ignore[attr-defined]
        return sum(int.from_bytes(data[i : i + 2], "little") + 1 for i in range(0, len(data), 2))

    enc0 = cipher_at(0)
    samples = []
    v = 0
    for _ in range(OPE_INPUT_MAX // sample_interval):
        v += sum_words(enc0, sample_interval)
        samples.append(v)
    idx = n // sample_interval
    start = idx * sample_interval
    base = samples[idx - 1] if idx else 0
    return base + sum_words(cipher_at(start * 2), n - start)


# --- tor's vectors ---


def test_tor_ope_vectors() -> None:
    data = json.loads((VECTORS / "revcounter_tor_ope.json").read_text())
    key = bytes.fromhex(data["key_hex"])
    other = bytearray(key)
    other[8] += 1
    for plaintext, expected in data["vectors"]:
        assert ope_encrypt(key, plaintext) == expected
        assert ope_encrypt(bytes(other), plaintext) != expected  # as tor's test checks


@pytest.mark.parametrize("n", [1, 5, 500, 1023, 1024, 1025, 2046, 2047, 2048, 2049, 10000])
def test_matches_naive_and_tor_sampled_implementations(n: int) -> None:
    key = b"A fixed key, chosen arbitrarily."  # tor test_crypto_ope_consistency's key
    assert ope_encrypt(key, n) == naive_ope(key, n) == tor_sampled_ope(key, n)


def test_max_input_matches_tor_sampled() -> None:
    key = b"A fixed key, chosen arbitrarily."
    assert ope_encrypt(key, OPE_INPUT_MAX) == tor_sampled_ope(key, OPE_INPUT_MAX)


@pytest.mark.parametrize("bad", [0, -1, OPE_INPUT_MAX + 1])
def test_out_of_range_input(bad: int) -> None:
    with pytest.raises(ValueError):
        ope_encrypt(b"k" * 32, bad)


# --- key derivation and the counter ---


def test_key_hashes_the_nul_and_the_64_byte_blinded_secret() -> None:
    expected = hashlib.sha3_256(b"rev-counter-generation\x00" + BLINDED.raw).digest()
    assert ope_key(BLINDED) == expected
    assert len(BLINDED.raw) == 64
    assert ope_key(BLINDED) != hashlib.sha3_256(b"rev-counter-generation" + BLINDED.raw).digest()


def test_counter_is_ope_of_seconds_since_run_start_plus_one() -> None:
    start = 1_800_000_000
    key = ope_key(BLINDED)
    assert revision_counter(BLINDED, start, start) == ope_encrypt(key, 1)
    assert revision_counter(BLINDED, start, start + 99) == ope_encrypt(key, 100)
    assert ope_plaintext(start, start + 99) == 100


def test_cached_cipher_matches_one_shot() -> None:
    ope = RevisionCounterOpe(BLINDED)
    start = 1_800_000_000
    for dt in (0, 1, 2, 1023, 1024, 86_399, 86_400, 172_799, OPE_INPUT_MAX - 1):
        assert ope.counter(start, start + dt) == revision_counter(BLINDED, start, start + dt)
    assert ope.encrypt(OPE_INPUT_MAX) == ope_encrypt(ope_key(BLINDED), OPE_INPUT_MAX)


def test_strictly_increasing_in_now() -> None:
    ope = RevisionCounterOpe(BLINDED)
    start = 1_800_000_000
    values = [ope.counter(start, start + dt) for dt in range(0, OPE_INPUT_MAX, 97)]
    assert all(b > a for a, b in itertools.pairwise(values))


@settings(max_examples=50, deadline=None)
@given(
    st.integers(min_value=0, max_value=OPE_INPUT_MAX - 2), st.integers(min_value=1, max_value=5000)
)
def test_monotonic_property(dt: int, step: int) -> None:
    start = 1_700_000_000
    a = revision_counter(BLINDED, start, start + dt)
    b = revision_counter(BLINDED, start, start + min(dt + step, OPE_INPUT_MAX - 1))
    assert b > a


def test_two_publishers_with_the_same_key_agree() -> None:
    # Two nodes load the same master key and blind it for the same TP independently.
    node_a = blind_secret_key(
        master_key_from_seed(hashlib.sha256(b"shared").digest()), TimePeriod(9, 4)
    )
    node_b = blind_secret_key(
        master_key_from_seed(hashlib.sha256(b"shared").digest()), TimePeriod(9, 4)
    )
    start = 1_800_000_000
    for dt in (0, 10, 1000, 100_000):
        assert revision_counter(node_a, start, start + dt) == RevisionCounterOpe(node_b).counter(
            start, start + dt
        )


def test_different_time_periods_give_different_counters() -> None:
    other = blind_secret_key(MASTER, TimePeriod(7_120_001, 4))
    start = 1_800_000_000
    assert revision_counter(BLINDED, start, start + 50) != revision_counter(
        other, start, start + 50
    )


def test_clamped_to_ope_input_max_like_tor() -> None:
    start = 1_800_000_000
    top = revision_counter(BLINDED, start, start + OPE_INPUT_MAX - 1)
    assert revision_counter(BLINDED, start, start + OPE_INPUT_MAX + 5000) == top


def test_now_before_run_start_is_a_typed_error() -> None:
    with pytest.raises(RevisionCounterError, match="before the start"):
        revision_counter(BLINDED, 1_800_000_000, 1_799_999_999)
    assert issubclass(RevisionCounterError, HsError)


def test_repr_hides_key_material() -> None:
    ope = RevisionCounterOpe(BLINDED)
    assert BLINDED.raw.hex() not in repr(ope)
    assert repr(ope) == "RevisionCounterOpe(<keyed>)"


def test_any_64_byte_blinded_secret_is_accepted() -> None:
    key = BlindedSecretKey(bytes(range(64)), BlindedPublicKey(bytes(32)))
    assert revision_counter(key, 0, 0) == ope_encrypt(ope_key(key), 1)


# --- real tor: counters a tor service computed on the private network ---


@pytest.mark.parametrize("name", REAL_TOR_REV_VECTORS)
def test_counters_logged_by_real_tor(name: str) -> None:
    data = json.loads((VECTORS / name).read_text())
    master = HsIdExpandedSecretKey(bytes.fromhex(data["master_expanded_secret_key_hex"]))
    assert {e["which"] for e in data["logged"]} == {"current", "next"}
    for entry in data["logged"]:
        blinded = blind_secret_key(master, TimePeriod(entry["tp"], data["time_period_length_min"]))
        assert ope_plaintext(entry["srv_start"], entry["now"]) == entry["plaintext"]
        assert (
            revision_counter(blinded, entry["srv_start"], entry["now"]) == entry["revision_counter"]
        )
    served = data["getinfo_descriptor_revision_counter"]
    assert served in {e["revision_counter"] for e in data["logged"] if e["which"] == "current"}
