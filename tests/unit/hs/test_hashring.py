"""HSDir hash ring: tor's index vectors, an independent sort-based reimplementation, wrap-around."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onionfleet.hs.blinding import blind_public_key
from onionfleet.hs.hashring import (
    HashRingError,
    HsDirRelay,
    fetch_hsdirs,
    hs_index,
    hsdir_index,
    hsdir_params,
    hsdir_spread_fetch,
    responsible_hsdirs,
)
from onionfleet.hs.keys import BlindedPublicKey, OnionAddress
from onionfleet.hs.timeperiod import (
    DescriptorSlot,
    TimePeriod,
    descriptor_periods,
    fetch_period,
    time_period_rules,
)

VECTORS = Path(__file__).parents[2] / "vectors"
TP = TimePeriod(20_000, 1440)
SRV = hashlib.sha3_256(b"test srv").digest()
#: Captured from tor 0.4.9.11 (tests/vectors/README.md): without SRVs (disaster) and with both.
REAL_TOR_RING_VECTORS = ["ring_real_tor_testnet.json", "ring_real_tor_testnet_srv.json"]


def relay(i: int) -> HsDirRelay:
    return HsDirRelay(
        fingerprint_hex=hashlib.sha1(b"fp%d" % i).hexdigest().upper(),
        ed25519_id=hashlib.sha256(b"ed%d" % i).digest(),
        nickname=f"relay{i}",
    )


RELAYS = [relay(i) for i in range(250)]


def reference_ring(
    relays: list[HsDirRelay],
    blinded: bytes,
    tp: TimePeriod,
    srv: bytes,
    n_replicas: int,
    spread: int,
) -> list[str]:
    """A deliberately different, straightforward reading of rend-spec-v3 [HASHRING]:
    sort once, then for each replica rotate the whole ring so it starts at the first node whose
    index is >= hs_index, and take the first ``spread`` nodes not taken by an earlier replica."""

    def node_idx(r: HsDirRelay) -> bytes:
        h = hashlib.sha3_256()
        h.update(b"node-idx")
        h.update(r.ed25519_id)
        h.update(srv)
        h.update(tp.number.to_bytes(8, "big"))
        h.update(tp.length_min.to_bytes(8, "big"))
        return h.digest()

    ring = sorted(relays, key=node_idx)
    out: list[str] = []
    for replica in range(1, n_replicas + 1):
        h = hashlib.sha3_256()
        for part in (b"store-at-idx", blinded, replica.to_bytes(8, "big")):
            h.update(part)
        h.update(tp.length_min.to_bytes(8, "big") + tp.number.to_bytes(8, "big"))
        target = h.digest()
        first = next((i for i, r in enumerate(ring) if node_idx(r) >= target), 0)
        rotated = ring[first:] + ring[:first]
        fresh = [r.fingerprint_hex for r in rotated if r.fingerprint_hex not in out]
        out.extend(fresh[:spread])
    return out


def fps(relays: list[HsDirRelay]) -> list[str]:
    return [r.fingerprint_hex for r in relays]


# --- index vectors from tor's test suite ---


def test_tor_index_vectors() -> None:
    data = json.loads((VECTORS / "ring_tor_indexes.json").read_text())
    v = data["hs_index"]
    tp = TimePeriod(v["period_num"], v["period_length"])
    assert (
        hs_index(bytes.fromhex(v["blinded_key_hex"]), v["replica"], tp).hex() == v["expected_hex"]
    )
    v = data["hsdir_index"]
    tp = TimePeriod(v["period_num"], v["period_length"])
    got = hsdir_index(bytes.fromhex(v["ed25519_id_hex"]), bytes.fromhex(v["srv_hex"]), tp)
    assert got.hex() == v["expected_hex"]


# --- the ring ---


def test_default_ring_has_8_distinct_relays_and_matches_reference() -> None:
    blinded = hashlib.sha256(b"blinded").digest()
    got = responsible_hsdirs(RELAYS, blinded, TP, SRV, n_replicas=2, spread_store=4)
    assert len(got) == 8
    assert len(set(fps(got))) == 8
    assert fps(got) == reference_ring(RELAYS, blinded, TP, SRV, 2, 4)


def test_known_answer_vector() -> None:
    data = json.loads((VECTORS / "ring_known_answer.json").read_text())
    relays = [
        HsDirRelay(r["fingerprint_hex"], bytes.fromhex(r["ed25519_id_hex"])) for r in data["relays"]
    ]
    tp = TimePeriod(data["period_num"], data["period_length"])
    srv = bytes.fromhex(data["srv_hex"])
    blinded = bytes.fromhex(data["blinded_key_hex"])
    got = responsible_hsdirs(
        relays, blinded, tp, srv, n_replicas=data["n_replicas"], spread_store=data["spread_store"]
    )
    assert fps(got) == data["expected_fingerprints"]
    assert (
        reference_ring(relays, blinded, tp, srv, data["n_replicas"], data["spread_store"])
        == (data["expected_fingerprints"])
    )


@settings(max_examples=150, deadline=None)
@given(
    st.binary(min_size=32, max_size=32),
    st.integers(min_value=1, max_value=40),
    st.integers(min_value=1, max_value=4),
    st.integers(min_value=1, max_value=8),
    st.integers(min_value=0, max_value=2**40),
)
def test_matches_reference_on_random_rings(
    blinded: bytes, n_relays: int, n_replicas: int, spread: int, tp_num: int
) -> None:
    tp = TimePeriod(tp_num, 4)
    relays = RELAYS[:n_relays]
    got = responsible_hsdirs(relays, blinded, tp, SRV, n_replicas=n_replicas, spread_store=spread)
    assert fps(got) == reference_ring(relays, blinded, tp, SRV, n_replicas, spread)
    assert len(got) == min(n_relays, n_replicas * spread)
    assert len(set(fps(got))) == len(got)


def test_replica_that_wraps_still_gets_spread_store_relays() -> None:
    """Onionbalance's get_responsible_hsdirs stops a replica short when it wraps past the end of the
    sorted ring; tor (and we) keep walking from the start."""
    relays = RELAYS[:12]
    ring = sorted(hsdir_index(r.ed25519_id, SRV, TP) for r in relays)
    found = 0
    for i in range(5000):
        blinded = hashlib.sha256(b"wrap%d" % i).digest()
        pos = [hs_index(blinded, rep, TP) for rep in (1, 2)]
        # positions after the 3rd-from-last node: a 4-node walk must wrap
        if not any(p > ring[-3] for p in pos):
            continue
        found += 1
        got = responsible_hsdirs(relays, blinded, TP, SRV, n_replicas=2, spread_store=4)
        assert len(got) == 8
        assert fps(got) == reference_ring(relays, blinded, TP, SRV, 2, 4)
        for rep in (0, 1):
            if pos[rep] > ring[-3]:
                part = got[rep * 4 : rep * 4 + 4]
                # this replica went past the end of the ring and on from its start
                assert any(hsdir_index(r.ed25519_id, SRV, TP) < pos[rep] for r in part)
        if found >= 20:
            break
    assert found >= 20


def test_position_past_the_last_node_starts_at_the_first() -> None:
    relays = RELAYS[:5]
    ring = sorted(relays, key=lambda r: hsdir_index(r.ed25519_id, SRV, TP))
    last = hsdir_index(ring[-1].ed25519_id, SRV, TP)
    for i in range(20000):
        blinded = hashlib.sha256(b"end%d" % i).digest()
        if hs_index(blinded, 1, TP) > last:
            break
    else:  # pragma: no cover - astronomically unlikely
        pytest.fail("no blinded key past the last node")
    got = responsible_hsdirs(relays, blinded, TP, SRV, n_replicas=1, spread_store=3)
    assert fps(got) == fps(ring[:3])


def test_small_rings_return_every_relay_once() -> None:
    # tor test_desc_reupload_logic: a 6-HSDir ring gives 6 HSDirs, not 8.
    got = responsible_hsdirs(RELAYS[:6], b"\x01" * 32, TP, SRV, n_replicas=2, spread_store=4)
    assert sorted(fps(got)) == sorted(fps(RELAYS[:6]))
    # tor test_responsible_hsdirs: 2 HSDirs → 2.
    assert (
        len(responsible_hsdirs(RELAYS[:2], b"\x2a" * 32, TP, SRV, n_replicas=2, spread_store=4))
        == 2
    )
    assert (
        len(responsible_hsdirs(RELAYS[:1], b"\x2a" * 32, TP, SRV, n_replicas=2, spread_store=4))
        == 1
    )


def test_later_replicas_skip_relays_already_chosen() -> None:
    # With spread 4 on 5 relays, replica 2 can only add the one relay replica 1 did not take.
    got = responsible_hsdirs(RELAYS[:5], b"\x07" * 32, TP, SRV, n_replicas=2, spread_store=4)
    assert len(got) == 5
    assert len(set(fps(got))) == 5


def test_blinded_key_object_and_bytes_agree() -> None:
    raw = hashlib.sha256(b"k").digest()
    a = responsible_hsdirs(RELAYS, raw, TP, SRV, n_replicas=2, spread_store=4)
    b = responsible_hsdirs(RELAYS, BlindedPublicKey(raw), TP, SRV, n_replicas=2, spread_store=4)
    assert a == b


def test_order_of_input_relays_does_not_matter() -> None:
    raw = hashlib.sha256(b"order").digest()
    a = responsible_hsdirs(RELAYS, raw, TP, SRV, n_replicas=2, spread_store=4)
    b = responsible_hsdirs(list(reversed(RELAYS)), raw, TP, SRV, n_replicas=2, spread_store=4)
    assert a == b


def test_srv_and_tp_change_the_ring() -> None:
    raw = hashlib.sha256(b"x").digest()
    base = fps(responsible_hsdirs(RELAYS, raw, TP, SRV, n_replicas=2, spread_store=4))
    other_srv = fps(responsible_hsdirs(RELAYS, raw, TP, b"\x00" * 32, n_replicas=2, spread_store=4))
    other_tp = fps(responsible_hsdirs(RELAYS, raw, TP.next(), SRV, n_replicas=2, spread_store=4))
    assert base != other_srv
    assert base != other_tp


# --- client/service agreement (tor test_reachability, test_client_service_hsdir_set_sync) ---


@pytest.mark.parametrize(
    "valid_after",
    [1_600_000_000 + k * 3600 for k in range(0, 48, 5)],
)
def test_client_fetch_set_is_inside_the_service_store_set(valid_after: int) -> None:
    rules = time_period_rules(3600, testing_tor_network=False, hsdir_interval_min=None)
    cur, prev = b"\x00" * 32, b"\x01" * 32
    blinded = hashlib.sha256(b"svc").digest()
    stored = {
        p.which: set(
            fps(
                responsible_hsdirs(
                    RELAYS, blinded, p.time_period, p.srv, n_replicas=2, spread_store=4
                )
            )
        )
        for p in descriptor_periods(valid_after, rules, cur, prev)
    }
    fp = fetch_period(valid_after, rules, cur, prev)
    fetched = fetch_hsdirs(RELAYS, blinded, fp.time_period, fp.srv, n_replicas=2, spread_fetch=3)
    assert len(fetched) == 6
    assert set(fps(fetched)) <= stored[fp.which]


def test_service_before_srv_client_after_srv_agree() -> None:
    # tor reachability scenario 2: service at 23:00 (current SRV = A), client at 01:00 next day
    # (current = B, previous = A): the client's fetch set is inside the service's second descriptor.
    rules = time_period_rules(3600, testing_tor_network=False, hsdir_interval_min=None)
    a, b = b"\xaa" * 32, b"\xbb" * 32
    blinded = hashlib.sha256(b"svc2").digest()
    svc_va = 1_600_000_000 - 1_600_000_000 % 86400 + 23 * 3600
    cli_va = svc_va + 2 * 3600
    second = descriptor_periods(svc_va, rules, a, b"\x01" * 32)[1]
    fp = fetch_period(cli_va, rules, b, a)
    assert fp.time_period == second.time_period
    stored = set(
        fps(
            responsible_hsdirs(
                RELAYS, blinded, second.time_period, second.srv, n_replicas=2, spread_store=4
            )
        )
    )
    fetched = fetch_hsdirs(RELAYS, blinded, fp.time_period, fp.srv, n_replicas=2, spread_fetch=3)
    assert set(fps(fetched)) <= stored


# --- consensus params ---


def test_hsdir_params_defaults_and_clamps() -> None:
    assert hsdir_params({}) == (2, 4)
    assert hsdir_params({"hsdir_n_replicas": 3, "hsdir_spread_store": 5}) == (3, 5)
    assert hsdir_params({"hsdir_n_replicas": 0, "hsdir_spread_store": 0}) == (1, 1)
    assert hsdir_params({"hsdir_n_replicas": 99, "hsdir_spread_store": 999}) == (16, 128)
    assert hsdir_spread_fetch({}) == 3
    assert hsdir_spread_fetch({"hsdir_spread_fetch": 500}) == 128
    assert hsdir_spread_fetch({"hsdir_spread_fetch": -1}) == 1


# --- bad input ---


def test_empty_ring_is_a_typed_error() -> None:
    with pytest.raises(HashRingError, match="no HSDir relays"):
        responsible_hsdirs([], b"\x00" * 32, TP, SRV, n_replicas=2, spread_store=4)


def test_duplicate_relay_is_a_typed_error() -> None:
    with pytest.raises(HashRingError, match="twice"):
        responsible_hsdirs(
            [RELAYS[0], RELAYS[0]], b"\x00" * 32, TP, SRV, n_replicas=2, spread_store=4
        )


def test_bad_srv_is_a_typed_error() -> None:
    with pytest.raises(HashRingError, match="31 bytes"):
        responsible_hsdirs(RELAYS, b"\x00" * 32, TP, b"\x00" * 31, n_replicas=2, spread_store=4)


@pytest.mark.parametrize(
    ("fp", "ed"),
    [
        ("ab" * 20, b"\x00" * 32),
        ("AB" * 19, b"\x00" * 32),
        ("ZZ" * 20, b"\x00" * 32),
        ("AB" * 20, b"\x00" * 31),
    ],
)
def test_bad_relay_is_a_typed_error(fp: str, ed: bytes) -> None:
    with pytest.raises(HashRingError):
        HsDirRelay(fp, ed)


def test_bad_blinded_key_length() -> None:
    with pytest.raises(ValueError):
        hs_index(b"\x00" * 31, 1, TP)


# --- real tor: what a self-publishing tor uploaded to on the private network ----------------------


@pytest.mark.parametrize("name", REAL_TOR_RING_VECTORS)
def test_real_tor_uploads_follow_our_ring(name: str) -> None:
    data = json.loads((VECTORS / name).read_text())
    rules = time_period_rules(
        data["fresh_until"] - data["valid_after"],
        testing_tor_network=data["testing_tor_network"],
        hsdir_interval_min=data["params"].get("hsdir_interval"),
    )
    srv_cur = bytes.fromhex(data["srv_current_hex"]) if data["srv_current_hex"] else None
    srv_prev = bytes.fromhex(data["srv_previous_hex"]) if data["srv_previous_hex"] else None
    periods = descriptor_periods(data["valid_after"], rules, srv_cur, srv_prev)
    pub = OnionAddress.parse(data["onion_address"]).public_key
    relays = [
        HsDirRelay(r["fingerprint_hex"], bytes.fromhex(r["ed25519_id_hex"])) for r in data["hsdirs"]
    ]
    n_replicas, spread_store = hsdir_params(data["params"])
    seen = set()
    for upload in data["uploads"]:
        (period,) = [
            p
            for p in periods
            if blind_public_key(pub, p.time_period).b64() == upload["blinded_key_b64"]
        ]
        seen.add(period.which)
        ours = responsible_hsdirs(
            relays,
            blind_public_key(pub, period.time_period),
            period.time_period,
            period.srv,
            n_replicas=n_replicas,
            spread_store=spread_store,
        )
        assert fps(ours) == upload["hsdirs_in_upload_order"]
        assert [
            hsdir_index(r.ed25519_id, period.srv, period.time_period).hex().upper() for r in ours
        ] == [i.upper() for i in upload["hsdir_index_hex"]]
    assert seen == {DescriptorSlot.FIRST, DescriptorSlot.SECOND}
