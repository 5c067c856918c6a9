"""Keeps a WireGuard interface's peers in line with the cluster's gossip (asyncio adapter).

:class:`WireGuardSync` runs ``wg`` as a subprocess: every ``interval_s`` (and at once after
:meth:`nudge`) it reads ``wg show <iface> dump``, asks
:func:`~onionfleet.cluster.wireguard.plan_peers` what to change for the node's current
:meth:`~onionfleet.cluster.node.ClusterNode.peers` and runs the resulting ``wg set`` commands.
It needs CAP_NET_ADMIN (deploy/ ships the systemd drop-in).

The interface itself belongs to the operator: create it (kernel ``ip link add … type wireguard``
or ``wireguard-go``), give it the private key, listen port and tunnel address, and bring it up —
docs/cluster-setup.md shows the commands ``onionfleet init``/``join`` print. onionfleet never
creates, configures or deletes the interface and never touches its private key; a missing
interface fails readiness with a message naming it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import ipaddress
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from onionfleet.clock import Clock
from onionfleet.cluster.errors import WireGuardCommandError, WireGuardError
from onionfleet.cluster.membership import PeerView
from onionfleet.cluster.messages import WireGuardIdentity
from onionfleet.cluster.wireguard import (
    DesiredPeer,
    WgDump,
    desired_peers,
    handshake_ages,
    parse_wg_dump,
    plan_peers,
)

__all__ = ["STALE_HANDSHAKE_S", "WireGuardSync", "own_wireguard_identity"]

log = logging.getLogger(__name__)

_MAX_OUTPUT_BYTES = 4 * 1024 * 1024
# WireGuard rekeys every 120 s while traffic flows (REJECT_AFTER_TIME is 180 s, whitepaper §6.1);
# a handshake older than this with a peer we talk to every heartbeat means the tunnel is down.
STALE_HANDSHAKE_S = 180.0


def own_wireguard_identity(private_key_file: Path, address: str, endpoint: str | None
                           ) -> WireGuardIdentity:
    """This node's identity from config ``[wireguard]``: the public key of ``private_key_file``
    (``wg genkey`` format; read here, never kept or logged), the tunnel IP of ``address``
    (``10.77.0.1/24``) and ``endpoint`` (None: announce none)."""
    try:
        text = private_key_file.read_text(encoding="ascii").strip()
        raw = base64.b64decode(text, validate=True)
    except (OSError, UnicodeDecodeError, binascii.Error, ValueError) as exc:
        raise WireGuardError(
            f"cannot read the WireGuard private key {private_key_file}: not a readable "
            "'wg genkey' file; regenerate it with 'wg genkey' (mode 0600)"
        ) from exc
    if len(raw) != 32:
        raise WireGuardError(f"{private_key_file} does not hold a 32-byte WireGuard key")
    public = X25519PrivateKey.from_private_bytes(raw).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    tunnel = str(ipaddress.ip_interface(address).ip)
    return WireGuardIdentity(public, endpoint or "", tunnel)


class WireGuardSync:
    """Adds and removes the ``wg`` peers of ``interface`` as ``peers()`` announces them."""

    def __init__(
        self,
        *,
        interface: str,
        own: WireGuardIdentity,
        tunnel_network: str,
        peers: Callable[[], Sequence[PeerView]],
        clock: Clock,
        interval_s: float = 1.0,
        wg_binary: str = "wg",
        command_timeout_s: float = 10.0,
    ) -> None:
        self._iface = interface
        self._own = own
        self._network = tunnel_network
        self._peers = peers
        self._clock = clock
        self._interval_s = interval_s
        self._wg = wg_binary
        self._timeout_s = command_timeout_s
        self._managed: frozenset[str] = frozenset()
        self._desired: list[DesiredPeer] = []
        self._dump: WgDump | None = None
        self._skipped_logged: set[str] = set()
        self._stale: set[str] = set()
        self._wake = asyncio.Event()
        self.commands_run = 0

    # --- public ------------------------------------------------------------------------------

    def nudge(self) -> None:
        """Reconcile now (a peer was announced or forgotten)."""
        self._wake.set()

    def handshake_ages(self) -> dict[str, float | None]:
        """Seconds since the last handshake with each wanted peer, by node id (None: never)."""
        if self._dump is None:
            return {}
        return handshake_ages(self._desired, self._dump, self._clock.wall())

    def transfer(self) -> dict[str, tuple[int, int]]:
        """(rx bytes, tx bytes) per wanted peer, by node id, as of the last reconcile."""
        out: dict[str, tuple[int, int]] = {}
        if self._dump is not None:
            for peer in self._desired:
                state = self._dump.peer(peer.public_key_b64)
                if state is not None:
                    out[peer.node_id] = (state.rx_bytes, state.tx_bytes)
        return out

    async def run(self, ready: asyncio.Future[None] | None = None) -> None:
        """Reconcile every ``interval_s`` until cancelled; ``ready`` resolves after the first
        successful reconcile (or fails with the WireGuardError that prevented it)."""
        try:
            await self.reconcile()
        except WireGuardError as exc:
            if ready is not None and not ready.done():
                ready.set_exception(exc)
            raise
        if ready is not None and not ready.done():
            ready.set_result(None)
        while True:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval_s):
                    await self._wake.wait()
            try:
                await self.reconcile()
            except WireGuardError as exc:
                log.warning("WireGuard peer sync on %s failed (retrying): %s", self._iface, exc)

    async def reconcile(self) -> None:
        """One round: read the interface, plan, run the commands, read it again."""
        dump = parse_wg_dump(await self._run_wg("show", self._iface, "dump"))
        desired, skipped = desired_peers(self._peers(), self._own, self._network)
        for line in skipped:
            if line not in self._skipped_logged:
                self._skipped_logged.add(line)
                log.warning("not adding a WireGuard peer: %s", line)
        plan = plan_peers(self._iface, desired, dump, self._managed)
        for command in plan.commands:
            await self._run_wg(*command)
            self.commands_run += 1
            log.info("wg %s", " ".join(command))
        self._managed = plan.managed
        self._desired = desired
        if plan.commands:
            dump = parse_wg_dump(await self._run_wg("show", self._iface, "dump"))
        self._dump = dump
        self._log_stale()

    def _log_stale(self) -> None:
        """Log once when a peer's handshake goes stale and once when it recovers."""
        live = {v.node_id for v in self._peers() if v.status.value in ("alive", "suspect")}
        for node_id, age in self.handshake_ages().items():
            stale = age is not None and age > STALE_HANDSHAKE_S and node_id in live
            if stale and node_id not in self._stale:
                self._stale.add(node_id)
                log.warning("no WireGuard handshake with node %s for %.0f s on %s", node_id,
                            age, self._iface)
            elif not stale and node_id in self._stale:
                self._stale.discard(node_id)
                log.info("WireGuard handshakes with node %s resumed", node_id)

    # --- internals ---------------------------------------------------------------------------

    async def _run_wg(self, *args: str) -> str:
        what = f"wg {' '.join(args[:3])}"
        try:
            proc = await asyncio.create_subprocess_exec(
                self._wg, *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise WireGuardCommandError(
                f"cannot run {self._wg!r} ({exc}); install wireguard-tools"
            ) from exc
        try:
            async with asyncio.timeout(self._timeout_s):
                out, err = await proc.communicate()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise WireGuardCommandError(
                f"{what} did not finish within {self._timeout_s:g} s"
            ) from None
        if proc.returncode != 0:
            reason = err.decode("utf-8", "replace").strip()[:300]
            hint = ""
            if "No such device" in reason or "Unable to access interface" in reason:
                hint = (f"; create interface {self._iface} first "
                        "(docs/cluster-setup.md, 'WireGuard')")
            elif "Operation not permitted" in reason:
                hint = "; onionfleet needs CAP_NET_ADMIN to manage WireGuard peers"
            raise WireGuardCommandError(
                f"{what} exited with {proc.returncode}: {reason}{hint}"
            )
        if len(out) > _MAX_OUTPUT_BYTES:
            raise WireGuardCommandError(f"{what} printed more than {_MAX_OUTPUT_BYTES} bytes")
        return out.decode("utf-8", "replace")
