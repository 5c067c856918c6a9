"""Descriptor revision counters exactly as tor makes them (rend-spec-v3 [DESC-OUTER]).

tor ``hs_service.c``: ``generate_ope_cipher_for_desc`` and ``set_descriptor_revision_counter``;
``crypto_ope.c``: ``crypto_ope_encrypt``.

- Key: ``k = SHA3-256("rev-counter-generation\\0" | KS_hs_blind_id)`` — the NUL is hashed too
  (tor uses ``sizeof`` of the string) and the 64-byte blinded secret ``a' ‖ prefix'`` is the input.
- Plaintext: ``now − srv_run_start + 1`` seconds, where ``srv_run_start`` is the start of the SRV
  protocol run whose SRV the descriptor uses (previous run for the first descriptor, current run for
  the second: :attr:`onionfleet.hs.timeperiod.DescriptorPeriod.srv_run_start_s`) and ``now`` is
  the publisher's wall clock when it builds the descriptor. Values above ``OPE_INPUT_MAX`` (2^18)
  are clamped to it, as tor does.
- OPE: AES-256-CTR keystream with an all-zero IV, read as 16-bit little-endian words ``w_i``;
  ``E(n) = Σ_{i<n} (w_i + 1)``. Strictly increasing in ``n``.

Every publisher with the master key derives the same counter for the same second, so a failover
never makes the counter go back (HSDirs keep a descriptor only if its counter is higher,
``hs_cache.c:cache_store_v3_as_dir``).
"""

from __future__ import annotations

import hashlib
import itertools
import sys
from array import array

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from onionfleet.hs import params
from onionfleet.hs.errors import HsError
from onionfleet.hs.keys import BlindedSecretKey

__all__ = [
    "RevisionCounterError",
    "RevisionCounterOpe",
    "ope_encrypt",
    "ope_key",
    "ope_plaintext",
    "revision_counter",
]

_ZERO_IV = bytes(16)


class RevisionCounterError(HsError):
    """A revision counter cannot be computed for the times given."""


def ope_key(blinded_secret_key: BlindedSecretKey) -> bytes:
    """The AES-256 key of tor's OPE for one blinded key (``generate_ope_cipher_for_desc``)."""
    return hashlib.sha3_256(params.HS_REV_COUNTER_KEY_PREFIX + blinded_secret_key.raw).digest()


def _words(key: bytes, count: int) -> array[int]:
    """The first ``count`` 16-bit little-endian keystream words (one AES-CTR call)."""
    encryptor = Cipher(algorithms.AES(key), modes.CTR(_ZERO_IV)).encryptor()
    words = array("H")
    words.frombytes(encryptor.update(bytes(2 * count)) + encryptor.finalize())
    if sys.byteorder == "big":
        words.byteswap()
    return words


def _check_plaintext(plaintext: int) -> None:
    if not 1 <= plaintext <= params.OPE_INPUT_MAX:
        raise ValueError(f"OPE input must be in 1..{params.OPE_INPUT_MAX}, got {plaintext}")


def ope_encrypt(key: bytes, plaintext: int) -> int:
    """tor ``crypto_ope_encrypt``: ``Σ_{i<plaintext} (w_i + 1)`` for ``plaintext`` in 1..2^18."""
    if len(key) != 32:
        raise ValueError(f"an OPE key is 32 bytes, got {len(key)}")
    _check_plaintext(plaintext)
    return sum(_words(key, plaintext)) + plaintext


def ope_plaintext(srv_run_start: int, now: int) -> int:
    """Seconds since the SRV run start, plus one, clamped to ``OPE_INPUT_MAX`` (tor's input).

    tor ``set_descriptor_revision_counter``. ``now`` before ``srv_run_start`` is refused: tor would
    encrypt an invalid input and publish ``CRYPTO_OPE_ERROR``.
    """
    if now < srv_run_start:
        raise RevisionCounterError(
            f"time {now} is before the start of its SRV run ({srv_run_start}); the clock or the "
            "consensus is wrong — check NTP and that the consensus is live"
        )
    return min(now - srv_run_start + 1, params.OPE_INPUT_MAX)


def revision_counter(blinded_secret_key: BlindedSecretKey, srv_run_start: int, now: int) -> int:
    """The revision counter tor would put in a descriptor built at ``now`` (unix seconds).

    ``srv_run_start``: :attr:`~onionfleet.hs.timeperiod.DescriptorPeriod.srv_run_start_s` of the
    descriptor. For many calls with one key, use :class:`RevisionCounterOpe`.
    """
    return ope_encrypt(ope_key(blinded_secret_key), ope_plaintext(srv_run_start, now))


class RevisionCounterOpe:
    """tor's OPE for one blinded key, with the running sums computed once (2^18 words, ~2 MiB).

    Hold one per descriptor (per blinded key); nothing is shared between instances.
    """

    __slots__ = ("_sums",)

    def __init__(self, blinded_secret_key: BlindedSecretKey) -> None:
        words = _words(ope_key(blinded_secret_key), params.OPE_INPUT_MAX)
        # _sums[n] = E(n) = Σ_{i<n} (w_i + 1); _sums[0] = 0.
        self._sums = array("Q", itertools.accumulate(words, lambda acc, w: acc + w + 1, initial=0))

    def __repr__(self) -> str:
        return "RevisionCounterOpe(<keyed>)"

    def encrypt(self, plaintext: int) -> int:
        """``crypto_ope_encrypt(plaintext)`` for ``plaintext`` in 1..2^18."""
        _check_plaintext(plaintext)
        return self._sums[plaintext]

    def counter(self, srv_run_start: int, now: int) -> int:
        """Same as :func:`revision_counter` for this instance's key."""
        return self._sums[ope_plaintext(srv_run_start, now)]
