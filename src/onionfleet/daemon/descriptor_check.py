"""Fetch the master descriptor that clients get now and read its intro points (drain, fetch).

``HSFETCH <addr>`` makes the node's tor fetch the descriptor of the *current* time period from its
responsible HSDirs (control-spec HSFETCH; tor ``hs_client.c:directory_launch_v3_desc_fetch``); the
content arrives as ``HS_DESC_CONTENT`` events. We decode it with our own parser pinned to the
blinded key of the fetch period (rend-spec-v3 [CLIENTFETCH]).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from onionfleet.clock import Clock
from onionfleet.hs.blinding import blind_public_key
from onionfleet.hs.descriptor import DecryptedDescriptor, decode_descriptor
from onionfleet.hs.errors import HsError
from onionfleet.hs.keys import OnionAddress
from onionfleet.hs.timeperiod import fetch_period
from onionfleet.publish.plan import time_period_rules_for
from onionfleet.tor.consensus import ConsensusView
from onionfleet.tor.controller import TorController
from onionfleet.tor.events import HsDescContentEvent, HsDescEvent

__all__ = ["FetchedDescriptor", "fetch_current_descriptor"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FetchedDescriptor:
    """A descriptor fetched from one HSDir, decrypted (or why it could not be)."""

    hsdir: str | None
    descriptor: DecryptedDescriptor | None
    error: str | None


async def fetch_current_descriptor(
    controller: TorController,
    address: OnionAddress,
    view: ConsensusView,
    *,
    testing_tor_network: bool,
    clock: Clock,
    timeout_s: float,
    servers: tuple[str, ...] = (),
) -> FetchedDescriptor:
    """HSFETCH ``address`` and decode the first descriptor that arrives (within ``timeout_s``)."""
    rules = time_period_rules_for(view, testing_tor_network=testing_tor_network)
    period = fetch_period(
        view.valid_after,
        rules,
        view.srv_current.value if view.srv_current else None,
        view.srv_previous.value if view.srv_previous else None,
    )
    blinded = blind_public_key(address.public_key, period.time_period)
    bare = address.without_suffix()
    failures: list[str] = []
    async with controller.subscribe("HS_DESC", "HS_DESC_CONTENT") as sub:
        await controller.hs_fetch(str(address), servers=servers)
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    event = await sub.get()
                    if isinstance(event, HsDescEvent) and event.address == bare:
                        if event.action == "FAILED":
                            hsdir = event.hsdir.fingerprint_hex if event.hsdir else "?"
                            failures.append(f"{hsdir}: {event.reason or 'failed'}")
                        continue
                    if not isinstance(event, HsDescContentEvent) or event.address != bare:
                        continue
                    if not event.descriptor.strip():
                        continue  # an empty content event goes with a failed fetch
                    hsdir_fp = event.hsdir.fingerprint_hex if event.hsdir else None
                    try:
                        decrypted = decode_descriptor(
                            event.descriptor,
                            address,
                            expected_blinded_key=blinded,
                            now=clock.wall(),
                        )
                    except HsError as exc:
                        return FetchedDescriptor(hsdir_fp, None, str(exc))
                    return FetchedDescriptor(hsdir_fp, decrypted, None)
        except TimeoutError:
            detail = "; ".join(failures[-3:]) or "no answer"
            return FetchedDescriptor(None, None, f"no descriptor within {timeout_s:g} s ({detail})")
