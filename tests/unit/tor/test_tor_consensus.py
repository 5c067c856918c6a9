"""Consensus view: relays, ed25519 ids, SRVs, params, times — and the md/all newline pitfall."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from onionfleet.tor.consensus import (
    build_consensus_view,
    parse_microdesc_consensus,
    parse_microdescriptors,
    split_microdescriptors,
)
from onionfleet.tor.errors import ConsensusError

DATA = Path(__file__).parent / "data"
CONSENSUS = (DATA / "testnet-consensus-microdesc.txt").read_text()
MD_ALL = (DATA / "testnet-md-all.txt").read_text()

SRV_CUR = bytes(range(32))
SRV_PREV = bytes(range(32, 64))


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def _md(ed: bytes) -> str:
    return (
        "onion-key\n-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n"
        f"ntor-onion-key {_b64(b'n' * 32)}\nid ed25519 {_b64(ed)}\n"
    )


def _digest(md: str) -> str:
    return _b64(hashlib.sha256(md.encode()).digest())


def _synthetic(n: int = 3) -> tuple[str, str, list[bytes]]:
    eds = [bytes([i + 1]) * 32 for i in range(n)]
    mds = [_md(ed) for ed in eds]
    entries = []
    for i, md in enumerate(mds):
        flags = "Fast HSDir Running Valid" if i != 1 else "Fast Running Valid"
        entries.append(
            f"r relay{i} {_b64(bytes([i]) * 20)} 2038-01-01 00:00:00 127.0.0.1 {9000 + i} 0\n"
            f"m {_digest(md)}\ns {flags}\nv Tor 0.4.9.11\nw Bandwidth=1\n"
        )
    consensus = (
        "network-status-version 3 microdesc\nvote-status consensus\n"
        "valid-after 2026-11-22 12:00:00\nfresh-until 2026-11-22 13:00:00\n"
        "valid-until 2026-11-22 15:00:00\n"
        "params hsdir_n_replicas=2 hsdir_spread_store=4 Neg=-3\n"
        f"shared-rand-previous-value 9 {base64.b64encode(SRV_PREV).decode()}\n"
        f"shared-rand-current-value 8 {base64.b64encode(SRV_CUR).decode()}\n"
        + "".join(entries)
        + "directory-footer\nbandwidth-weights Wbd=0\n"
    )
    # md/all as the control port delivers it: concatenated, the last newline lost.
    md_all = "".join(mds).removesuffix("\n")
    return consensus, md_all, eds


def test_synthetic_consensus_fields() -> None:
    consensus, md_all, eds = _synthetic()
    view = build_consensus_view(consensus, md_all)
    assert view.valid_after == 1795348800  # 2026-11-22 12:00:00 UTC
    assert view.fresh_until - view.valid_after == 3600 == view.voting_interval_s
    assert view.valid_until == view.valid_after + 3 * 3600
    assert dict(view.params) == {"hsdir_n_replicas": 2, "hsdir_spread_store": 4, "Neg": -3}
    assert view.param("hsdir_spread_fetch", 3) == 3
    assert view.srv_current is not None and view.srv_current.value == SRV_CUR
    assert view.srv_current.num_reveals == 8
    assert view.srv_previous is not None and view.srv_previous.value == SRV_PREV
    assert [r.nickname for r in view.relays] == ["relay0", "relay1", "relay2"]
    assert view.relays[2].fingerprint_hex == "02" * 20
    assert view.hsdirs() == [("00" * 20, eds[0]), ("02" * 20, eds[2])]
    assert view.relay("02" * 20) is view.relays[2]


def test_last_microdescriptor_without_newline_still_matches() -> None:
    """The md/all pitfall (DESIGN.md §2): the LAST relay must keep its ed25519 id."""
    consensus, md_all, eds = _synthetic()
    assert not md_all.endswith("\n")
    view = build_consensus_view(consensus, md_all)
    assert view.relays_missing_ed25519() == []
    assert view.relays[-1].ed25519_id == eds[-1]


def test_naive_hashing_would_lose_the_last_relay() -> None:
    """Shows the bug the fix prevents: hashing the last entry as delivered gives a digest that
    matches no 'm' line."""
    consensus, md_all, _ = _synthetic()
    parsed = parse_microdesc_consensus(consensus)
    wanted = {r.microdesc_digest_b64 for r in parsed.relays}
    entries = split_microdescriptors(md_all)
    naive = [*entries[:-1], entries[-1].removesuffix("\n")]  # the last one as delivered
    naive_digests = {_digest(md) for md in naive}
    assert len(wanted - naive_digests) == 1
    assert set(parse_microdescriptors(md_all)) == wanted


def test_real_testnet_capture_every_relay_has_ed25519() -> None:
    assert not MD_ALL.endswith("\n")  # as tor delivered it
    view = build_consensus_view(CONSENSUS, MD_ALL)
    assert len(view.relays) == 8
    assert view.relays_missing_ed25519() == []
    assert len(view.hsdirs()) == 8
    assert all(len(ed) == 32 for _, ed in view.hsdirs())
    assert view.voting_interval_s == 10
    assert {r.nickname for r in view.relays if "Authority" in r.flags} == {
        "auth1",
        "auth2",
        "auth3",
    }
    assert view.srv_current is not None and view.srv_previous is not None
    assert view.srv_current.num_reveals == 3
    assert view.srv_current.value.hex().startswith("1b66c055a56317dc")
    assert view.srv_previous.value.hex().startswith("a1c271a4df448abc")
    assert view.valid_after == 1795348080


def test_split_skips_annotations_and_adds_newlines() -> None:
    text = "@last-listed 2026-01-01 00:00:00\nonion-key\nA\nonion-key\nB"
    assert split_microdescriptors(text) == ["onion-key\nA\n", "onion-key\nB\n"]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("valid-after 2026-11-22 12:00:00", "valid-after 2026-13-22 12:00:00"),
        ("valid-until 2026-11-22 15:00:00\n", ""),
        ("Neg=-3", "Neg=x"),
        ("shared-rand-current-value 8 ", "shared-rand-current-value 8 AAAA"),
        ("network-status-version 3", "network-status-version 2"),
    ],
)
def test_malformed_consensus_raises_consensus_error(old: str, new: str) -> None:
    consensus, md_all, _ = _synthetic()
    assert old in consensus
    with pytest.raises(ConsensusError):
        build_consensus_view(consensus.replace(old, new), md_all)


def test_bad_ed25519_in_microdescriptor() -> None:
    with pytest.raises(ConsensusError):
        parse_microdescriptors("onion-key\nid ed25519 AAAA\n")
