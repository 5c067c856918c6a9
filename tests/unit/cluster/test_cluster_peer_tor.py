"""Tor transport helpers: the peer tor's torrc and the peer onion key (files only, no sockets)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from onionfleet.cluster.errors import ClusterError
from onionfleet.cluster.tor_transport import ensure_peer_onion_key, peer_tor_settings
from onionfleet.tor.process import render_torrc


def counter_bytes() -> object:
    state = {"n": 0}

    def token_bytes(n: int) -> bytes:
        state["n"] += 1
        return bytes([state["n"]]) * n

    return token_bytes


def test_peer_tor_publishes_its_own_onion_service_to_the_peer_listener(tmp_path: Path) -> None:
    settings = peer_tor_settings(tmp_path, listen_port=7420, socks_port=9151,
                                 extra_lines=("TestingTorNetwork 1",))
    torrc = render_torrc(settings, owner_pid=1)
    assert f"HiddenServiceDir {tmp_path / 'peer-tor' / 'peer-onion'}" in torrc
    assert "HiddenServicePort 7420 127.0.0.1:7420" in torrc
    assert "SocksPort 127.0.0.1:9151" in torrc
    # Unlike the node's tor (multi-node mode: 0), the peer tor uploads its own descriptor.
    assert "PublishHidServDescriptors 1" in torrc
    assert "HiddenServiceOnionBalanceInstance" not in torrc
    assert torrc.rstrip().endswith("TestingTorNetwork 1")


def test_peer_onion_key_is_made_once_and_kept(tmp_path: Path) -> None:
    settings = peer_tor_settings(tmp_path, listen_port=7420, socks_port=9151)
    token_bytes = counter_bytes()
    first = ensure_peer_onion_key(settings, token_bytes)  # type: ignore[arg-type]
    assert first.endswith(".onion") and len(first) == 62
    hs_dir = tmp_path / "peer-tor" / "peer-onion"
    assert stat.S_IMODE(hs_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((hs_dir / "hs_ed25519_secret_key").stat().st_mode) == 0o600
    assert ensure_peer_onion_key(settings, token_bytes) == first  # type: ignore[arg-type]


def test_a_corrupt_peer_key_is_a_typed_error(tmp_path: Path) -> None:
    settings = peer_tor_settings(tmp_path, listen_port=7420, socks_port=9151)
    hs_dir = tmp_path / "peer-tor" / "peer-onion"
    hs_dir.mkdir(parents=True)
    (hs_dir / "hs_ed25519_secret_key").write_bytes(b"not a key")
    with pytest.raises(ClusterError, match="peer onion key"):
        ensure_peer_onion_key(settings, counter_bytes())  # type: ignore[arg-type]
