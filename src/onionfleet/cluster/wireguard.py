"""WireGuard peer planning (sans-IO): gossip → ``wg set`` argument lists; ``wg show dump`` parsing.

With ``[wireguard] manage = true`` every node announces its :class:`WireGuardIdentity` (public
key, UDP endpoint, tunnel address) in its heartbeats, and gossip passes it on (messages.py,
protocol version 2), so a node that knows one peer learns the keys of all the others. The
adapter (:mod:`onionfleet.cluster.wgsync`) reads ``wg show <iface> dump``, calls :func:`plan_peers`
and runs the returned ``wg`` argument lists. Rules:

* **Who becomes a peer.** Every known peer (any status: it may be unreachable *because* it is not
  a WireGuard peer yet) whose identity has another public key than ours and whose tunnel address
  lies inside our tunnel network (config ``wireguard.address``, e.g. ``10.77.0.1/24``). Its
  ``allowed-ips`` is that one host (``/32`` or ``/128``): a peer can never route a network through
  itself. Two nodes claiming one tunnel address: the lower node id wins, the other is skipped.
* **Add** a missing peer with ``endpoint`` (if it announced one), ``allowed-ips`` and
  ``persistent-keepalive`` (so the nodes behind NAT keep their mapping and WireGuard's roaming
  learns the real endpoint). **Update** a present peer only if its ``allowed-ips`` lacks the host
  route (added to what it has, never replacing an operator's routes) or it has no endpoint yet;
  an endpoint WireGuard already learned is left alone (it follows roaming better than gossip).
* **Remove** only peers this node added itself (``managed``) that are no longer wanted: forgotten
  by membership, left, or replaced by a new key. Peers the operator configured (the inviter's, and
  on the inviter the joiners' — ``onionfleet join`` prints those commands) are never removed.

The dump format is wireguard-tools' ``wg show <iface> dump`` (``src/show.c`` ``dump_print``): one
line for the interface ``private-key public-key listen-port fwmark`` and one per peer
``public-key preshared-key endpoint allowed-ips latest-handshake transfer-rx transfer-tx
persistent-keepalive``, tab-separated, ``(none)``/``off`` for absent values. The private key
field is skipped unread and never appears in an error or repr.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from onionfleet.cluster.errors import WireGuardDumpError
from onionfleet.cluster.membership import PeerView
from onionfleet.cluster.messages import WireGuardIdentity

__all__ = [
    "PERSISTENT_KEEPALIVE_S",
    "DesiredPeer",
    "WgDump",
    "WgPeerState",
    "WgPlan",
    "desired_peers",
    "handshake_ages",
    "parse_wg_dump",
    "plan_peers",
    "wg_key_b64",
]

# wg(8) recommends 25 s "for most NAT firewalls".
PERSISTENT_KEEPALIVE_S: Final = 25
_MAX_DUMP_PEERS: Final = 4096
_B64_KEY_CHARS: Final = 44


def wg_key_b64(raw: bytes) -> str:
    """A 32-byte key in ``wg``'s base64 form."""
    return base64.b64encode(raw).decode("ascii")


def _key_from_b64(text: str, where: str) -> str:
    if len(text) != _B64_KEY_CHARS:
        raise WireGuardDumpError(f"{where}: a WireGuard key is {_B64_KEY_CHARS} base64 characters")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise WireGuardDumpError(f"{where}: not base64") from exc
    if len(raw) != 32 or wg_key_b64(raw) != text:
        raise WireGuardDumpError(f"{where}: not a canonical 32-byte key")
    return text


@dataclass(frozen=True, slots=True)
class WgPeerState:
    """One peer line of ``wg show <iface> dump``. ``latest_handshake`` is a Unix time (wall
    clock, seconds; 0 = never)."""

    public_key_b64: str
    endpoint: str | None
    allowed_ips: tuple[str, ...]
    latest_handshake: int
    rx_bytes: int
    tx_bytes: int
    persistent_keepalive_s: int | None


@dataclass(frozen=True, slots=True)
class WgDump:
    """The interface line (public key, listen port) and the peers of ``wg show <iface> dump``."""

    public_key_b64: str
    listen_port: int
    peers: tuple[WgPeerState, ...]

    def peer(self, public_key_b64: str) -> WgPeerState | None:
        for p in self.peers:
            if p.public_key_b64 == public_key_b64:
                return p
        return None


def _int_field(text: str, where: str, high: int = (1 << 64) - 1) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 20 or int(text) > high:
        raise WireGuardDumpError(f"{where}: expected a number in [0, {high}]")
    return int(text)


def parse_wg_dump(text: str) -> WgDump:
    """Parse ``wg show <iface> dump``; raises only :class:`WireGuardDumpError`."""
    if not isinstance(text, str):
        raise WireGuardDumpError("wg dump output must be text")
    lines = [line for line in text.split("\n") if line != ""]
    if not lines:
        raise WireGuardDumpError("wg dump is empty: expected the interface line")
    if len(lines) > _MAX_DUMP_PEERS + 1:
        raise WireGuardDumpError(f"wg dump lists more than {_MAX_DUMP_PEERS} peers")
    head = lines[0].split("\t")
    if len(head) != 4:
        raise WireGuardDumpError(
            f"wg dump line 1 has {len(head)} fields; the interface line has 4"
        )
    # head[0] is the private key: never parsed, kept or shown.
    public = _key_from_b64(head[1], "wg dump line 1 public key") if head[1] != "(none)" else ""
    port = _int_field(head[2], "wg dump line 1 listen port", 65535)
    peers: list[WgPeerState] = []
    seen: set[str] = set()
    for n, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        where = f"wg dump line {n}"
        if len(fields) != 8:
            raise WireGuardDumpError(f"{where} has {len(fields)} fields; a peer line has 8")
        key = _key_from_b64(fields[0], f"{where} public key")
        if key in seen:
            raise WireGuardDumpError(f"{where}: peer {key} is listed twice")
        seen.add(key)
        endpoint = None if fields[2] == "(none)" else fields[2]
        if endpoint is not None and (":" not in endpoint or not endpoint.isprintable()):
            raise WireGuardDumpError(f"{where}: endpoint is not host:port")
        allowed: tuple[str, ...] = ()
        if fields[3] != "(none)":
            nets = []
            for item in fields[3].split(","):
                try:
                    nets.append(str(ipaddress.ip_network(item, strict=False)))
                except ValueError as exc:
                    raise WireGuardDumpError(
                        f"{where}: allowed-ips entry is not a network"
                    ) from exc
            allowed = tuple(nets)
        keepalive = None if fields[7] == "off" else _int_field(
            fields[7], f"{where} persistent keepalive", 65535
        )
        peers.append(WgPeerState(
            key, endpoint, allowed,
            _int_field(fields[4], f"{where} latest handshake"),
            _int_field(fields[5], f"{where} rx bytes"),
            _int_field(fields[6], f"{where} tx bytes"),
            keepalive,
        ))
    return WgDump(public, port, tuple(peers))


@dataclass(frozen=True, slots=True)
class DesiredPeer:
    """A WireGuard peer this node wants: a cluster member's identity, as ``wg`` spells it."""

    node_id: str
    public_key_b64: str
    endpoint: str | None
    allowed_ip: str  # the host route, e.g. "10.77.0.2/32"


def desired_peers(
    views: Iterable[PeerView], own: WireGuardIdentity, tunnel_network: str
) -> tuple[list[DesiredPeer], list[str]]:
    """The peers to configure, and one human-readable line per announced identity skipped."""
    network = ipaddress.ip_interface(tunnel_network).network
    chosen: dict[str, DesiredPeer] = {}  # by tunnel address
    skipped: list[str] = []
    own_key = wg_key_b64(own.public_key)
    for view in sorted(views, key=lambda v: v.node_id):
        wg = view.wireguard
        if wg is None:
            continue
        key = wg_key_b64(wg.public_key)
        ip = ipaddress.ip_address(wg.tunnel_address)
        if key == own_key:
            skipped.append(f"node {view.node_id} announces this node's WireGuard key")
            continue
        if ip not in network or ip == ipaddress.ip_address(own.tunnel_address):
            skipped.append(
                f"node {view.node_id} announces tunnel address {ip}, outside {network} or ours"
            )
            continue
        host = f"{ip}/{ip.max_prefixlen}"
        if host in chosen:
            skipped.append(
                f"node {view.node_id} announces tunnel address {ip}, already node "
                f"{chosen[host].node_id}'s"
            )
            continue
        chosen[host] = DesiredPeer(view.node_id, key, wg.endpoint or None, host)
    return list(chosen.values()), skipped


@dataclass(frozen=True, slots=True)
class WgPlan:
    """``commands``: argument lists for ``wg`` in order; ``managed``: the keys this node added
    and still wants (pass it back next time)."""

    commands: tuple[tuple[str, ...], ...]
    managed: frozenset[str]


def plan_peers(
    interface: str, desired: Iterable[DesiredPeer], current: WgDump, managed: frozenset[str]
) -> WgPlan:
    """The ``wg set`` commands that turn ``current`` into ``desired`` (see the module rules)."""
    commands: list[tuple[str, ...]] = []
    wanted: dict[str, DesiredPeer] = {}
    for peer in desired:
        wanted.setdefault(peer.public_key_b64, peer)
    now_managed = set(managed)
    for key, peer in sorted(wanted.items()):
        state = current.peer(key)
        if state is None:
            cmd = ["set", interface, "peer", key]
            if peer.endpoint is not None:
                cmd += ["endpoint", peer.endpoint]
            cmd += ["allowed-ips", peer.allowed_ip,
                    "persistent-keepalive", str(PERSISTENT_KEEPALIVE_S)]
            commands.append(tuple(cmd))
            now_managed.add(key)
            continue
        update: list[str] = []
        if state.endpoint is None and peer.endpoint is not None:
            update += ["endpoint", peer.endpoint]
        if peer.allowed_ip not in state.allowed_ips:
            update += ["allowed-ips", ",".join((*state.allowed_ips, peer.allowed_ip))]
        if update:
            commands.append(("set", interface, "peer", key, *update))
    for key in sorted(now_managed - set(wanted)):
        if current.peer(key) is not None:
            commands.append(("set", interface, "peer", key, "remove"))
    return WgPlan(tuple(commands), frozenset(k for k in now_managed if k in wanted))


def handshake_ages(
    desired: Iterable[DesiredPeer], current: WgDump, now_wall: float
) -> dict[str, float | None]:
    """Seconds since the last WireGuard handshake with each wanted peer, by node id (None: never
    or not configured). Both times are wall clock: WireGuard reports a Unix time."""
    ages: dict[str, float | None] = {}
    for peer in desired:
        state = current.peer(peer.public_key_b64)
        if state is None or state.latest_handshake == 0:
            ages[peer.node_id] = None
        else:
            ages[peer.node_id] = max(0.0, now_wall - state.latest_handshake)
    return ages
