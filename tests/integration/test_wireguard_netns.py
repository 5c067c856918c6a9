"""WireGuard management end to end: three nodes in their own network namespaces.

Topology (all addresses exist only inside namespaces this test creates and deletes):

* a hub namespace with a bridge; each node namespace has a veth into it, underlay
  ``10.203.0.N/24``, and a wireguard-go interface with tunnel address ``10.77.0.N/24`` listening
  on UDP 51820 (a name unique to the run: wireguard-go's control sockets in /var/run/wireguard are
  not per namespace);
* the operator steps ``onionfleet join`` prints are run for n2 and n3 (each knows only n1, the
  inviter: n1's key/endpoint on the joiner, the joiner's key on n1). n1's own configuration
  names no peer. Nothing connects n2 and n3;
* each namespace runs ``cluster_node_proc.py`` (ClusterNode + TcpTransport + WireGuardSync),
  listening on its tunnel address only.

Gossip through n1 carries n3's WireGuard identity to n2 and n2's to n3; their WireGuardSync adds
the n2 ↔ n3 peers with ``wg set``, the tunnel comes up (handshake, bytes both ways), the two
exchange frames directly over it and one publisher is elected.

Needs root, ``ip netns``, wireguard-go and wg; skipped without them, a failure under CI=true.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _cluster_procs import ProcCluster

from onionfleet.cluster.wireguard import parse_wg_dump
from onionfleet.provision.secrets_gen import wireguard_keypair_from_private

NODES = ("n1", "n2", "n3")
PORT = 7420
WG_PORT = 51820
INTERVAL_S = 0.5


def _require_tools() -> None:
    problems = [f"{t} not installed" for t in ("ip", "wg", "wireguard-go")
                if shutil.which(t) is None]
    if os.geteuid() != 0:
        problems.append("needs root (network namespaces)")
    if not os.path.exists("/dev/net/tun"):
        problems.append("no /dev/net/tun for wireguard-go")
    if not problems:
        return
    message = "; ".join(problems)
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {message}", pytrace=False)
    pytest.skip(message)


def sh(*args: str, ns: str | None = None, check: bool = True) -> str:
    prefix = ["ip", "netns", "exec", ns] if ns else []
    done = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=10,
                          check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} (netns {ns}) failed: {done.stderr.strip()}")
    return done.stdout


class Netns:
    """Creates the namespaces, veths, bridge and wireguard-go interfaces; removes all of it."""

    def __init__(self, workdir: Path) -> None:
        tag = secrets.token_hex(3)
        self.hub = f"ofwgt-{tag}-hub"
        self.ns = {n: f"ofwgt-{tag}-{n}" for n in NODES}
        self.workdir = workdir
        self.wg_procs: list[subprocess.Popen[bytes]] = []
        self.public: dict[str, str] = {}
        self.keyfile: dict[str, Path] = {}
        self.iface = {n: f"ofw{tag}{i}" for i, n in enumerate(NODES, start=1)}

    def underlay(self, n: str) -> str:
        return f"10.203.0.{NODES.index(n) + 1}"

    def tunnel(self, n: str) -> str:
        return f"10.77.0.{NODES.index(n) + 1}"

    def up(self) -> None:
        sh("ip", "netns", "add", self.hub)
        sh("ip", "link", "add", "br0", "type", "bridge", ns=self.hub)
        sh("ip", "link", "set", "br0", "up", ns=self.hub)
        for i, n in enumerate(NODES, start=1):
            ns = self.ns[n]
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
            # veth created inside the hub, one end moved into the node namespace.
            sh("ip", "link", "add", f"h{i}", "type", "veth", "peer", "name", "eth0", ns=self.hub)
            sh("ip", "link", "set", "eth0", "netns", ns, ns=self.hub)
            sh("ip", "link", "set", f"h{i}", "master", "br0", ns=self.hub)
            sh("ip", "link", "set", f"h{i}", "up", ns=self.hub)
            sh("ip", "addr", "add", f"{self.underlay(n)}/24", "dev", "eth0", ns=ns)
            sh("ip", "link", "set", "eth0", "up", ns=ns)
            # The operator's part: the interface, its key, port and tunnel address.
            keypair = wireguard_keypair_from_private(secrets.token_bytes(32))
            keyfile = self.workdir / f"{n}-wireguard.key"
            keyfile.write_text(keypair.private_b64 + "\n")
            keyfile.chmod(0o600)
            self.keyfile[n] = keyfile
            self.public[n] = keypair.public_b64
            self.wg_procs.append(subprocess.Popen(
                ["ip", "netns", "exec", ns, "wireguard-go", "-f", self.iface[n]],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
            deadline = time.monotonic() + 10
            iface = self.iface[n]
            while sh("ip", "link", "show", iface, ns=ns, check=False) == "":
                if time.monotonic() > deadline:
                    raise AssertionError(f"wireguard-go did not create {iface} in {ns}")
                time.sleep(0.05)
            sh("wg", "set", iface, "private-key", str(keyfile), "listen-port", str(WG_PORT),
               ns=ns)
            sh("ip", "addr", "add", f"{self.tunnel(n)}/24", "dev", iface, ns=ns)
            sh("ip", "link", "set", iface, "up", ns=ns)

    def join_steps(self, joiner: str, inviter: str = "n1") -> None:
        """What ``onionfleet join`` prints for the operator (cli/join.py)."""
        sh("wg", "set", self.iface[joiner], "peer", self.public[inviter], "endpoint",
           f"{self.underlay(inviter)}:{WG_PORT}", "allowed-ips", f"{self.tunnel(inviter)}/32",
           "persistent-keepalive", "25", ns=self.ns[joiner])
        sh("wg", "set", self.iface[inviter], "peer", self.public[joiner], "allowed-ips",
           f"{self.tunnel(joiner)}/32", ns=self.ns[inviter])

    def down(self) -> None:
        for proc in self.wg_procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.wg_procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for ns in (*self.ns.values(), self.hub):
            sh("ip", "netns", "del", ns, check=False)


@pytest.fixture
def netns(tmp_path: Path) -> Iterator[Netns]:
    _require_tools()
    net = Netns(tmp_path)
    try:
        net.up()
        yield net
    finally:
        net.down()
        leftover = set(sh("ip", "netns", "list").split()) & {*net.ns.values(), net.hub}
        assert not leftover, f"namespaces left behind: {leftover}"


def test_gossip_adds_wireguard_peers_and_frames_flow_over_the_tunnel(
    netns: Netns, tmp_path: Path
) -> None:
    started = time.monotonic()
    netns.join_steps("n2")
    netns.join_steps("n3")
    cluster = ProcCluster(tmp_path)
    try:
        for i, n in enumerate(NODES):
            cluster.start(n, {
                "node_id": n, "listen_host": netns.tunnel(n), "listen_port": PORT,
                "seeds": [] if n == "n1" else [f"{netns.tunnel('n1')}:{PORT}"],
                "priority": 10 + i, "heartbeat_interval_s": INTERVAL_S, "dead_after": 3,
                "lease_grace_s": INTERVAL_S,
                "wireguard": {"interface": netns.iface[n], "address": f"{netns.tunnel(n)}/24",
                              "endpoint": f"{netns.underlay(n)}:{WG_PORT}",
                              "private_key_file": str(netns.keyfile[n])},
            }, netns=netns.ns[n])
        for node in cluster.nodes.values():
            assert node.ready.wait(20), f"{node.name} did not start:\n{cluster.logs()}"

        def mesh() -> bool:
            for n in NODES:
                peers = cluster.nodes[n].state.get("peers", {})
                others = [m for m in NODES if m != n]
                if any(peers.get(m, ["?"])[0] != "alive" for m in others):
                    return False
            n2_wg = cluster.nodes["n2"].state.get("wg", {})
            n3_wg = cluster.nodes["n3"].state.get("wg", {})
            return bool(n2_wg.get("n3")) and bool(n3_wg.get("n2"))

        took = cluster.wait("n2 and n3 alive to each other with a WireGuard handshake", mesh, 45)
        print(f"\nfull mesh with n2<->n3 WireGuard handshake after {took:.2f} s")
        elected = cluster.wait("one agreed publisher",
                               lambda: cluster.agreed_publisher() is not None, 20)
        print(f"publisher {cluster.agreed_publisher()} agreed (+{elected:.2f} s)")

        # The n2 <-> n3 peers were added by WireGuardSync: never configured by the "operator".
        for me, other in (("n2", "n3"), ("n3", "n2")):
            dump = parse_wg_dump(sh("wg", "show", netns.iface[me], "dump", ns=netns.ns[me]))
            peer = dump.peer(netns.public[other])
            assert peer is not None, f"{me} has no WireGuard peer for {other}"
            assert peer.allowed_ips == (f"{netns.tunnel(other)}/32",)
            assert peer.latest_handshake > 0 and peer.rx_bytes > 0 and peer.tx_bytes > 0
            print(f"{me}: wg peer {other} endpoint {peer.endpoint} rx {peer.rx_bytes} "
                  f"tx {peer.tx_bytes}")
            # Peer frames between them travel over the tunnel addresses.
            conns = sh("ss", "-Htn", "state", "established", ns=netns.ns[me])
            assert f"{netns.tunnel(other)}:" in conns, conns
            assert cluster.nodes[me].state["peers"][other][1] == f"{netns.tunnel(other)}:{PORT}"
        # n1 added nothing (its peers came from the operator's join steps) and removed nothing.
        n1_dump = parse_wg_dump(sh("wg", "show", netns.iface["n1"], "dump", ns=netns.ns["n1"]))
        assert {p.public_key_b64 for p in n1_dump.peers} == {netns.public["n2"],
                                                             netns.public["n3"]}
        # Until the tunnels were up the nodes could not hear each other, so each may have claimed
        # Term(1, itself) — distinct terms by design (election.py); now there is one publisher.
        print(f"publisher claims by term number: {cluster.publisher_claims}")
        assert len(cluster.publishers()) == 1
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.close()
    assert time.monotonic() - started < 90
