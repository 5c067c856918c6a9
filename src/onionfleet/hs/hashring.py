"""The HSDir hash ring: which relays store (and serve) a descriptor (rend-spec-v3 [HASHRING]).

tor ``hs_common.c``: ``hs_build_hs_index``, ``hs_build_hsdir_index``, ``hs_get_responsible_hsdirs``,
``hs_get_hsdir_n_replicas`` / ``_spread_store`` / ``_spread_fetch``::

    hs_index(replica) = SHA3-256("store-at-idx" | A' | INT_8(replica) | INT_8(period_length)
                                 | INT_8(period_num))
    hsdir_index(node) = SHA3-256("node-idx" | node_ed25519_id | SRV | INT_8(period_num)
                                 | INT_8(period_length))

(note the opposite order of period length and number in the two formulas). For replica 1..n the
service stores at the first ``spread_store`` relays whose hsdir_index is at or after hs_index,
going clockwise and wrapping around the ring, skipping relays an earlier replica already took.

Which TP and SRV to use for the first and second descriptor comes from
:func:`onionfleet.hs.timeperiod.descriptor_periods`. Everything here is a pure function of its
arguments: the caller passes the relays of a live microdesc consensus that have the ``HSDir`` flag,
support ``HSDir=2`` and whose microdescriptor gave an ed25519 id (tor skips relays without one,
``node_has_hsdir_index``).
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from onionfleet.hs import params
from onionfleet.hs.errors import HsError
from onionfleet.hs.keys import BlindedPublicKey
from onionfleet.hs.timeperiod import TimePeriod

__all__ = [
    "HashRingError",
    "HsDirRelay",
    "fetch_hsdirs",
    "hs_index",
    "hsdir_index",
    "hsdir_params",
    "hsdir_spread_fetch",
    "responsible_hsdirs",
]

_FINGERPRINT_RE = re.compile(r"[0-9A-F]{40}")


class HashRingError(HsError):
    """The hash ring cannot be computed from the data given (no HSDirs, bad SRV, duplicate)."""


@dataclass(frozen=True, slots=True)
class HsDirRelay:
    """One relay on the ring: RSA identity fingerprint (40 uppercase hex) and ed25519 identity."""

    fingerprint_hex: str
    ed25519_id: bytes
    nickname: str | None = None

    def __post_init__(self) -> None:
        if not _FINGERPRINT_RE.fullmatch(self.fingerprint_hex):
            raise HashRingError(
                f"relay fingerprint {self.fingerprint_hex!r} is not 40 uppercase hex digits"
            )
        if len(self.ed25519_id) != 32:
            raise HashRingError(
                f"relay {self.fingerprint_hex}: ed25519 identity is {len(self.ed25519_id)} bytes, "
                "not 32; check its microdescriptor's id ed25519 line"
            )


def _blinded_raw(blinded_key: bytes | BlindedPublicKey) -> bytes:
    raw = blinded_key.raw if isinstance(blinded_key, BlindedPublicKey) else bytes(blinded_key)
    if len(raw) != 32:
        raise ValueError(f"a blinded public key is 32 bytes, got {len(raw)}")
    return raw


def hs_index(blinded_key: bytes | BlindedPublicKey, replica: int, period: TimePeriod) -> bytes:
    """The ring position of one replica of a descriptor (tor ``hs_build_hs_index``).

    ``SHA3-256("store-at-idx" | A' | INT_8(replica) | INT_8(period_length) | INT_8(period_num))``.
    """
    return hashlib.sha3_256(
        params.HS_INDEX_PREFIX
        + _blinded_raw(blinded_key)
        + replica.to_bytes(8, "big")
        + period.length_min.to_bytes(8, "big")
        + period.number.to_bytes(8, "big")
    ).digest()


def hsdir_index(ed25519_id: bytes, srv: bytes, period: TimePeriod) -> bytes:
    """A relay's ring position for one (SRV, TP) (tor ``hs_build_hsdir_index``).

    ``SHA3-256("node-idx" | ed25519_id | SRV | INT_8(period_num) | INT_8(period_length))``; tor
    reports it as ``HSDIR_INDEX=`` in ``HS_DESC UPLOAD`` events.
    """
    return hashlib.sha3_256(
        params.HSDIR_INDEX_PREFIX
        + ed25519_id
        + srv
        + period.number.to_bytes(8, "big")
        + period.length_min.to_bytes(8, "big")
    ).digest()


def _clamped(consensus_params: Mapping[str, int], name: str, default: int, lo: int, hi: int) -> int:
    value = consensus_params.get(name, default)
    return min(max(value, lo), hi)


def hsdir_params(consensus_params: Mapping[str, int]) -> tuple[int, int]:
    """``(hsdir_n_replicas, hsdir_spread_store)`` from a consensus' ``params`` line.

    Defaults 2 and 4 (rend-spec-v3 [HASHRING]); tor clamps replicas to 1..16 and spread to 1..128
    (``hs_get_hsdir_n_replicas``, ``hs_get_hsdir_spread_store`` via ``networkstatus_get_param``).
    """
    return (
        _clamped(
            consensus_params,
            params.HSDIR_N_REPLICAS_PARAM,
            params.HSDIR_N_REPLICAS_DEFAULT,
            params.HSDIR_N_REPLICAS_MIN,
            params.HSDIR_N_REPLICAS_MAX,
        ),
        _clamped(
            consensus_params,
            params.HSDIR_SPREAD_STORE_PARAM,
            params.HSDIR_SPREAD_STORE_DEFAULT,
            params.HSDIR_SPREAD_MIN,
            params.HSDIR_SPREAD_MAX,
        ),
    )


def hsdir_spread_fetch(consensus_params: Mapping[str, int]) -> int:
    """``hsdir_spread_fetch`` (default 3, clamped 1..128; tor ``hs_get_hsdir_spread_fetch``)."""
    return _clamped(
        consensus_params,
        params.HSDIR_SPREAD_FETCH_PARAM,
        params.HSDIR_SPREAD_FETCH_DEFAULT,
        params.HSDIR_SPREAD_MIN,
        params.HSDIR_SPREAD_MAX,
    )


def _walk_ring(
    relays: Sequence[HsDirRelay],
    *,
    blinded_key: bytes | BlindedPublicKey,
    period: TimePeriod,
    srv: bytes,
    n_replicas: int,
    per_replica: int,
) -> list[HsDirRelay]:
    if len(srv) != params.HS_SRV_LEN:
        raise HashRingError(
            f"the shared random value is {len(srv)} bytes, not {params.HS_SRV_LEN}; "
            "pass the SRV chosen by descriptor_periods()"
        )
    if n_replicas < 1 or per_replica < 1:
        raise ValueError(f"replicas and spread must be >= 1 (got {n_replicas}, {per_replica})")
    if not relays:
        raise HashRingError(
            "no HSDir relays to place the descriptor on; wait for a live consensus whose "
            "relays have the HSDir flag and known microdescriptors"
        )
    seen: set[str] = set()
    for relay in relays:
        if relay.fingerprint_hex in seen:
            raise HashRingError(f"relay {relay.fingerprint_hex} is listed twice in the HSDir set")
        seen.add(relay.fingerprint_hex)

    ring = sorted(((hsdir_index(r.ed25519_id, srv, period), r) for r in relays), key=lambda e: e[0])
    positions = [pos for pos, _ in ring]
    size = len(ring)
    chosen: list[HsDirRelay] = []
    taken: set[str] = set()
    for replica in range(1, n_replicas + 1):
        # tor: smartlist_bsearch_idx() gives the first node whose index is >= hs_index; past the
        # end it starts over at 0. It walks at most one full circle per replica.
        start = bisect.bisect_left(positions, hs_index(blinded_key, replica, period))
        if start == size:
            start = 0
        added = 0
        for step in range(size):
            relay = ring[(start + step) % size][1]
            if relay.fingerprint_hex in taken:
                continue
            chosen.append(relay)
            taken.add(relay.fingerprint_hex)
            added += 1
            if added == per_replica:
                break
    return chosen


def responsible_hsdirs(
    relays: Sequence[HsDirRelay],
    blinded_key: bytes | BlindedPublicKey,
    period: TimePeriod,
    srv: bytes,
    *,
    n_replicas: int,
    spread_store: int,
) -> list[HsDirRelay]:
    """The HSDirs a service uploads one descriptor to, in tor's order.

    tor ``hs_get_responsible_hsdirs``. ``period`` and ``srv`` are those of the descriptor
    (:class:`~onionfleet.hs.timeperiod.DescriptorPeriod`); ``n_replicas`` and ``spread_store``
    come from :func:`hsdir_params`. Returns up to ``n_replicas × spread_store``
    distinct relays (fewer only when the ring is smaller than that).
    """
    return _walk_ring(
        relays,
        blinded_key=blinded_key,
        period=period,
        srv=srv,
        n_replicas=n_replicas,
        per_replica=spread_store,
    )


def fetch_hsdirs(
    relays: Sequence[HsDirRelay],
    blinded_key: bytes | BlindedPublicKey,
    period: TimePeriod,
    srv: bytes,
    *,
    n_replicas: int,
    spread_fetch: int,
) -> list[HsDirRelay]:
    """The HSDirs a client may fetch from (``hs_get_responsible_hsdirs`` with ``for_fetching``).

    Use the period and SRV of :func:`onionfleet.hs.timeperiod.fetch_period`; a client picks one of
    these at random ([CLIENTFETCH]).
    """
    return _walk_ring(
        relays,
        blinded_key=blinded_key,
        period=period,
        srv=srv,
        n_replicas=n_replicas,
        per_replica=spread_fetch,
    )
