"""WireGuard planning: gossip views -> ``wg set`` argument lists; ``wg show dump`` parsing."""

from __future__ import annotations

import pytest

from onionfleet.cluster.errors import WireGuardDumpError
from onionfleet.cluster.membership import PeerStatus, PeerView
from onionfleet.cluster.messages import Role, WireGuardIdentity
from onionfleet.cluster.wireguard import (
    PERSISTENT_KEEPALIVE_S,
    DesiredPeer,
    WgDump,
    WgPeerState,
    desired_peers,
    handshake_ages,
    parse_wg_dump,
    plan_peers,
    wg_key_b64,
)

KEY = {n: bytes([n]) * 32 for n in range(1, 9)}
B64 = {n: wg_key_b64(k) for n, k in KEY.items()}
OWN = WireGuardIdentity(KEY[1], "192.0.2.1:51820", "10.77.0.1")
PRIVATE = "SECRETSECRETSECRETSECRETSECRETSECRETSECRE="


def view(node_id: str, wg: WireGuardIdentity | None,
         status: PeerStatus = PeerStatus.ALIVE) -> PeerView:
    return PeerView(node_id, f"{node_id}:7420", status, 1, True, "", False, Role.FOLLOWER, 0.0,
                    False, wg)


def dump(*peers: WgPeerState) -> WgDump:
    return WgDump(B64[1], 51820, peers)


def state(n: int, endpoint: str | None = None, allowed: tuple[str, ...] = (),
          handshake: int = 0) -> WgPeerState:
    return WgPeerState(B64[n], endpoint, allowed, handshake, 10, 20, None)


def test_desired_peers_are_host_routes_inside_the_tunnel_network() -> None:
    views = [
        view("b", WireGuardIdentity(KEY[2], "192.0.2.2:51820", "10.77.0.2")),
        view("c", WireGuardIdentity(KEY[3], "", "10.77.0.3"), PeerStatus.JOINING),
        view("d", None),
        view("e", WireGuardIdentity(KEY[5], "", "10.99.0.5")),  # outside 10.77.0.0/24
        view("f", WireGuardIdentity(KEY[1], "", "10.77.0.6")),  # our own key
        view("g", WireGuardIdentity(KEY[7], "", "10.77.0.2")),  # b's address: b (lower id) wins
        view("h", WireGuardIdentity(KEY[8], "", "10.77.0.1")),  # our address
    ]
    desired, skipped = desired_peers(views, OWN, "10.77.0.1/24")
    assert desired == [
        DesiredPeer("b", B64[2], "192.0.2.2:51820", "10.77.0.2/32"),
        DesiredPeer("c", B64[3], None, "10.77.0.3/32"),
    ]
    assert len(skipped) == 4
    assert any("outside 10.77.0.0/24" in s for s in skipped)
    assert any("already node b's" in s for s in skipped)


def test_ipv6_tunnel_uses_a_128_host_route() -> None:
    own = WireGuardIdentity(KEY[1], "", "fd00::1")
    desired, _ = desired_peers([view("b", WireGuardIdentity(KEY[2], "", "fd00::2"))], own,
                               "fd00::1/64")
    assert desired[0].allowed_ip == "fd00::2/128"


def test_plan_adds_missing_peers_with_keepalive() -> None:
    desired = [DesiredPeer("b", B64[2], "192.0.2.2:51820", "10.77.0.2/32"),
               DesiredPeer("c", B64[3], None, "10.77.0.3/32")]
    plan = plan_peers("ofwg0", desired, dump(), frozenset())
    ka = str(PERSISTENT_KEEPALIVE_S)
    assert plan.commands == (
        ("set", "ofwg0", "peer", B64[2], "endpoint", "192.0.2.2:51820", "allowed-ips",
         "10.77.0.2/32", "persistent-keepalive", ka),
        ("set", "ofwg0", "peer", B64[3], "allowed-ips", "10.77.0.3/32",
         "persistent-keepalive", ka),
    )
    assert plan.managed == {B64[2], B64[3]}


def test_plan_is_idempotent_and_keeps_learned_endpoints() -> None:
    desired = [DesiredPeer("b", B64[2], "192.0.2.2:51820", "10.77.0.2/32")]
    current = dump(state(2, "198.51.100.9:4000", ("10.77.0.2/32",)))
    plan = plan_peers("ofwg0", desired, current, frozenset({B64[2]}))
    assert plan.commands == ()
    assert plan.managed == {B64[2]}


def test_plan_completes_operator_peers_without_replacing_their_routes() -> None:
    desired = [DesiredPeer("b", B64[2], "192.0.2.2:51820", "10.77.0.2/32")]
    current = dump(state(2, None, ("10.8.0.0/24",)))
    plan = plan_peers("ofwg0", desired, current, frozenset())
    assert plan.commands == (
        ("set", "ofwg0", "peer", B64[2], "endpoint", "192.0.2.2:51820",
         "allowed-ips", "10.8.0.0/24,10.77.0.2/32"),
    )
    assert plan.managed == frozenset()  # adopted, not ours: never removed


def test_plan_removes_only_peers_it_added() -> None:
    current = dump(state(2, None, ("10.77.0.2/32",)), state(3, None, ("10.77.0.3/32",)))
    plan = plan_peers("ofwg0", [], current, frozenset({B64[2], B64[4]}))
    assert plan.commands == (("set", "ofwg0", "peer", B64[2], "remove"),)
    assert plan.managed == frozenset()


def test_a_new_key_for_a_node_replaces_the_old_peer() -> None:
    current = dump(state(2, None, ("10.77.0.2/32",)))
    desired = [DesiredPeer("b", B64[5], None, "10.77.0.2/32")]
    plan = plan_peers("ofwg0", desired, current, frozenset({B64[2]}))
    assert plan.commands[0][:4] == ("set", "ofwg0", "peer", B64[5])
    assert plan.commands[1] == ("set", "ofwg0", "peer", B64[2], "remove")
    assert plan.managed == {B64[5]}


def test_handshake_ages() -> None:
    desired = [DesiredPeer("b", B64[2], None, "10.77.0.2/32"),
               DesiredPeer("c", B64[3], None, "10.77.0.3/32"),
               DesiredPeer("d", B64[4], None, "10.77.0.4/32")]
    current = dump(state(2, handshake=1_700_000_000), state(3))
    assert handshake_ages(desired, current, 1_700_000_012.5) == {"b": 12.5, "c": None, "d": None}


def _dump_text(*peer_lines: str) -> str:
    return "\n".join((f"{PRIVATE}\t{B64[1]}\t51820\toff", *peer_lines)) + "\n"


def test_parse_wg_dump() -> None:
    text = _dump_text(
        f"{B64[2]}\t(none)\t10.203.0.2:51820\t10.77.0.2/32,10.8.0.0/24\t1700000000\t1234\t5678\t25",
        f"{B64[3]}\t(none)\t(none)\t(none)\t0\t0\t0\toff",
    )
    parsed = parse_wg_dump(text)
    assert parsed.public_key_b64 == B64[1] and parsed.listen_port == 51820
    assert parsed.peers == (
        WgPeerState(B64[2], "10.203.0.2:51820", ("10.77.0.2/32", "10.8.0.0/24"), 1_700_000_000,
                    1234, 5678, 25),
        WgPeerState(B64[3], None, (), 0, 0, 0, None),
    )
    assert PRIVATE not in repr(parsed)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a\tb\n",
        f"{PRIVATE}\tnot-a-key\t51820\toff\n",
        f"{PRIVATE}\t{B64[1]}\t70000\toff\n",
        _dump_text(f"{B64[2]}\t(none)\t(none)\t(none)\t0\t0\t0"),
        _dump_text(f"{B64[2]}\t(none)\tnoport\t(none)\t0\t0\t0\toff"),
        _dump_text(f"{B64[2]}\t(none)\t(none)\t10.0.0.300/32\t0\t0\t0\toff"),
        _dump_text(f"{B64[2]}\t(none)\t(none)\t(none)\t-1\t0\t0\toff"),
        _dump_text(f"{B64[2]}\t(none)\t(none)\t(none)\t0\t0\t0\toff",
                   f"{B64[2]}\t(none)\t(none)\t(none)\t0\t0\t0\toff"),
    ],
)
def test_parse_wg_dump_refuses_bad_output_without_showing_the_private_key(text: str) -> None:
    with pytest.raises(WireGuardDumpError) as info:
        parse_wg_dump(text)
    assert PRIVATE not in str(info.value)
