"""Fetch the master descriptor clients get now, from tor's choice of HSDir or from each HSDir.

``HSFETCH <addr> [SERVER=fp…]`` makes tor fetch the descriptor of the *current* time period
(control-spec HSFETCH; tor ``hs_client.c:directory_launch_v3_desc_fetch``), from each listed HSDir
or from one of its choice; the outcome per HSDir arrives as ``HS_DESC RECEIVED|FAILED`` events and
the text as ``HS_DESC_CONTENT`` (control-spec "HS_DESC", "HS_DESC_CONTENT"). We decode it with our
own parser pinned to the blinded key of the fetch period (rend-spec-v3 [CLIENTFETCH]).

Used by the daemon's drain (is the descriptor on the HSDirs free of this node's intro points?) and
by ``onionfleet descriptor fetch`` (did the upload reach every HSDir, is the signature valid, are
the certs and times right?).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from onionfleet.clock import Clock
from onionfleet.hs.blinding import blind_public_key
from onionfleet.hs.client_auth import ClientAuthPrivateKey
from onionfleet.hs.descriptor import DecryptedDescriptor, decode_descriptor
from onionfleet.hs.errors import HsError
from onionfleet.hs.hashring import HsDirRelay, fetch_hsdirs, hsdir_params, hsdir_spread_fetch
from onionfleet.hs.keys import BlindedPublicKey, OnionAddress
from onionfleet.hs.timeperiod import DescriptorPeriod, fetch_period
from onionfleet.publish.plan import time_period_rules_for
from onionfleet.tor.consensus import ConsensusView
from onionfleet.tor.controller import TorController
from onionfleet.tor.events import HsDescContentEvent, HsDescEvent

__all__ = [
    "FetchPlan",
    "FetchedDescriptor",
    "HsDirAnswer",
    "fetch_current_descriptor",
    "fetch_from_hsdirs",
    "plan_fetch",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FetchPlan:
    """What clients fetch now: the period, its blinded key and the HSDirs a client may ask."""

    period: DescriptorPeriod
    blinded_key: BlindedPublicKey
    hsdirs: tuple[HsDirRelay, ...]


@dataclass(frozen=True, slots=True)
class HsDirAnswer:
    """One HSDir's answer to HSFETCH: the descriptor text, or tor's reason it got none."""

    hsdir: str | None
    text: str | None
    failure: str | None


@dataclass(frozen=True, slots=True)
class FetchedDescriptor:
    """A descriptor fetched from one HSDir, decrypted (or why it could not be)."""

    hsdir: str | None
    descriptor: DecryptedDescriptor | None
    error: str | None


def plan_fetch(
    address: OnionAddress, view: ConsensusView, *, testing_tor_network: bool
) -> FetchPlan:
    """The fetch period, blinded key and responsible HSDirs for ``address`` (pure)."""
    rules = time_period_rules_for(view, testing_tor_network=testing_tor_network)
    period = fetch_period(
        view.valid_after,
        rules,
        view.srv_current.value if view.srv_current else None,
        view.srv_previous.value if view.srv_previous else None,
    )
    blinded = blind_public_key(address.public_key, period.time_period)
    relays = [HsDirRelay(fp, ed) for fp, ed in view.hsdirs()]
    n_replicas, _ = hsdir_params(view.params)
    hsdirs = fetch_hsdirs(
        relays,
        blinded,
        period.time_period,
        period.srv,
        n_replicas=n_replicas,
        spread_fetch=hsdir_spread_fetch(view.params),
    )
    return FetchPlan(period, blinded, tuple(hsdirs))


async def fetch_from_hsdirs(
    controller: TorController,
    address: OnionAddress,
    *,
    servers: Sequence[str],
    timeout_s: float,
) -> list[HsDirAnswer]:
    """HSFETCH ``address`` from each of ``servers`` (fingerprints), or from tor's choice if none.

    Returns one answer per server (in ``servers`` order; a silent one says so), or the first
    answer when no server was named. Never raises for a failed fetch: the answer says why.
    """
    bare = address.without_suffix()
    wanted = [fp.upper().lstrip("$") for fp in servers]
    answers: dict[str, HsDirAnswer] = {}
    first: HsDirAnswer | None = None

    def done() -> bool:
        return first is not None if not wanted else len(answers) == len(wanted)

    async with controller.subscribe("HS_DESC", "HS_DESC_CONTENT") as sub:
        await controller.hs_fetch(str(address), servers=wanted)
        try:
            async with asyncio.timeout(timeout_s):
                while not done():
                    event = await sub.get()
                    answer = _answer_of(event, bare)
                    if answer is None:
                        continue
                    if not wanted:
                        if answer.text is not None:
                            first = answer
                        continue
                    if answer.hsdir in wanted and (
                        answer.hsdir not in answers or answer.text is not None
                    ):
                        answers[answer.hsdir] = answer
        except TimeoutError:
            pass
    if not wanted:
        silent = HsDirAnswer(None, None, f"no descriptor within {timeout_s:g} s")
        return [first or silent]
    return [
        answers.get(fp, HsDirAnswer(fp, None, f"no answer within {timeout_s:g} s")) for fp in wanted
    ]


def _answer_of(event: object, bare_address: str) -> HsDirAnswer | None:
    if isinstance(event, HsDescContentEvent) and event.address == bare_address:
        hsdir = event.hsdir.fingerprint_hex.upper() if event.hsdir else None
        if event.descriptor.strip():
            return HsDirAnswer(hsdir, event.descriptor, None)
        return None  # an empty content event comes with a FAILED event
    if (
        isinstance(event, HsDescEvent)
        and event.address == bare_address
        and event.action == "FAILED"
        and event.hsdir is not None
    ):
        return HsDirAnswer(event.hsdir.fingerprint_hex.upper(), None, event.reason or "FAILED")
    return None


def decode_answer(
    answer: HsDirAnswer,
    address: OnionAddress,
    blinded_key: BlindedPublicKey,
    *,
    now: float,
    client_key: ClientAuthPrivateKey | None = None,
) -> FetchedDescriptor:
    """Verify and decrypt one answer with our parser (signature, certs, times, layers)."""
    if answer.text is None:
        return FetchedDescriptor(answer.hsdir, None, answer.failure or "no descriptor")
    try:
        decrypted = decode_descriptor(
            answer.text, address, expected_blinded_key=blinded_key, now=now, client_key=client_key
        )
    except HsError as exc:
        return FetchedDescriptor(answer.hsdir, None, str(exc))
    return FetchedDescriptor(answer.hsdir, decrypted, None)


async def fetch_current_descriptor(
    controller: TorController,
    address: OnionAddress,
    view: ConsensusView,
    *,
    testing_tor_network: bool,
    clock: Clock,
    timeout_s: float,
) -> FetchedDescriptor:
    """HSFETCH ``address`` from tor's choice of HSDir and decode what arrives first."""
    plan = plan_fetch(address, view, testing_tor_network=testing_tor_network)
    (answer,) = await fetch_from_hsdirs(controller, address, servers=(), timeout_s=timeout_s)
    return decode_answer(answer, address, plan.blinded_key, now=clock.wall())
