"""Our time periods, HSDir ring and revision counters against a real, self-publishing tor.

A file-based onion service on the private network uploads both of its descriptors itself. We
check, from the same tor's consensus view:

- every ``HS_DESC UPLOAD`` batch (one per descriptor) goes to exactly the HSDirs
  :func:`responsible_hsdirs` computes, *in tor's order* (replica 1 then replica 2), and each
  ``HSDIR_INDEX=`` equals our :func:`hsdir_index` for that descriptor's TP and SRV — for the first
  and the second descriptor;
- every revision counter tor logs (``set_descriptor_revision_counter`` in its ``[rend]info`` log:
  TP, SRV run start, ``now``, result) equals our OPE, and the SRV run start equals ours;
- the revision counter in ``GETINFO hs/service/desc/id/<addr>`` is our OPE of a second inside
  the window in which tor built it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from onionfleet.hs.blinding import blind_public_key, blind_secret_key
from onionfleet.hs.descriptor import parse_descriptor_unpinned
from onionfleet.hs.hashring import HsDirRelay, hsdir_index, hsdir_params, responsible_hsdirs
from onionfleet.hs.keys import (
    HsIdExpandedSecretKey,
    HsIdPublicKey,
    OnionAddress,
    load_secret_key_file,
)
from onionfleet.hs.revision_counter import RevisionCounterOpe, ope_plaintext, revision_counter
from onionfleet.hs.timeperiod import (
    DescriptorPeriod,
    DescriptorSlot,
    TimePeriod,
    TimePeriodRules,
    descriptor_periods,
    time_period_rules,
)
from onionfleet.testnet import TestNetwork, TorInstance
from onionfleet.tor.consensus import ConsensusView
from onionfleet.tor.controller import (
    ControlAuth,
    ControlEndpoint,
    ControllerSettings,
    EventSubscription,
    TorController,
    open_controller,
)
from onionfleet.tor.errors import TorCommandError
from onionfleet.tor.events import HsDescEvent

pytestmark = pytest.mark.testnet
log = logging.getLogger(__name__)

#: tor hs_service.c set_descriptor_revision_counter() log lines ([rend]info).
_SET_RE = re.compile(
    r"Setting rev counter for TP #(\d+): SRV started at (\d+), now (\d+) \((current|next)\)"
)
_ENC_RE = re.compile(r"Encrypted revision counter (\d+) to (\d+)")
_BATCH_GAP_S = 1.0
_WAIT_S = 180.0
_VIEW_REFRESH_S = 2.0


@pytest.fixture(scope="module")
def ring_net() -> Iterator[TestNetwork]:
    """Our own network with 10 HSDirs (3 authorities + 7 relays), so that the 8 HSDirs of a
    descriptor are a real choice, not every HSDir there is."""
    with TestNetwork(relays=7) as net:
        yield net


def _rules(view: ConsensusView) -> TimePeriodRules:
    return time_period_rules(
        view.voting_interval_s,
        testing_tor_network=True,
        hsdir_interval_min=view.params.get("hsdir_interval"),
    )


def _periods(view: ConsensusView) -> tuple[DescriptorPeriod, DescriptorPeriod]:
    return descriptor_periods(
        view.valid_after,
        _rules(view),
        view.srv_current.value if view.srv_current else None,
        view.srv_previous.value if view.srv_previous else None,
    )


def _ring_inputs(view: ConsensusView) -> tuple[object, ...]:
    """What the ring depends on; equal before and after a batch → the check is conclusive."""
    first, second = _periods(view)
    return (first, second, tuple(sorted(view.hsdirs())), hsdir_params(view.params))


@dataclass
class _Batch:
    blinded_b64: str
    events: list[HsDescEvent]


class _UploadBatches:
    """Groups the UPLOAD events tor fires in one go per descriptor (upload_descriptor_to_all)."""

    def __init__(self, sub: EventSubscription) -> None:
        self._sub = sub
        self._lookahead: HsDescEvent | None = None

    async def _next_upload(self, timeout_s: float) -> HsDescEvent | None:
        if self._lookahead is not None:
            held, self._lookahead = self._lookahead, None
            return held
        end = time.monotonic() + timeout_s
        while (left := end - time.monotonic()) > 0:
            try:
                got = await self._sub.get(timeout_s=left)
            except TimeoutError:
                return None
            if isinstance(got, HsDescEvent) and got.action == "UPLOAD":
                return got
        return None

    async def next(self, wait_s: float) -> _Batch | None:
        """The next batch, or ``None`` if no upload starts within ``wait_s``."""
        first = await self._next_upload(wait_s)
        if first is None or first.descriptor_id is None:
            return None
        batch = _Batch(first.descriptor_id, [first])
        while (event := await self._next_upload(_BATCH_GAP_S)) is not None:
            if event.descriptor_id != batch.blinded_b64:
                self._lookahead = event  # the other descriptor's batch has started
                break
            batch.events.append(event)
        return batch


def _service_controller(svc: TorInstance) -> ControllerSettings:
    return ControllerSettings(
        ControlEndpoint.tcp(svc.control_port),
        ControlAuth(cookie_path=svc.cookie_path),
        command_timeout_s=30.0,
    )


def _rend_log(svc: TorInstance) -> Path:
    # onionfleet.testnet writes the service's [rend]info log here (onion_service_lines).
    return svc.data_dir / "rend-info.log"


def _logged_counters(svc: TorInstance) -> list[tuple[int, int, int, str, int, int]]:
    """(tp, srv_start, now, current|next, plaintext, counter) from tor's own log."""
    out = []
    pending: tuple[int, int, int, str] | None = None
    for line in _rend_log(svc).read_text(errors="replace").splitlines():
        m = _SET_RE.search(line)
        if m:
            pending = (int(m[1]), int(m[2]), int(m[3]), m[4])
            continue
        m = _ENC_RE.search(line)
        if m and pending is not None:
            out.append((*pending, int(m[1]), int(m[2])))
            pending = None
    return out


def _check_batch(batch: _Batch, view: ConsensusView, master_pub: HsIdPublicKey) -> DescriptorSlot:
    """tor's upload order and HSDIR_INDEX values for one descriptor == our ring."""
    match = [
        p
        for p in _periods(view)
        if blind_public_key(master_pub, p.time_period).b64() == batch.blinded_b64
    ]
    assert len(match) == 1, f"uploaded blinded key {batch.blinded_b64} is for no TP of ours"
    period = match[0]
    relays = [HsDirRelay(fp, ed) for fp, ed in view.hsdirs()]
    n_replicas, spread_store = hsdir_params(view.params)
    ours = [
        r.fingerprint_hex
        for r in responsible_hsdirs(
            relays,
            blind_public_key(master_pub, period.time_period),
            period.time_period,
            period.srv,
            n_replicas=n_replicas,
            spread_store=spread_store,
        )
    ]
    tors = [e.hsdir.fingerprint_hex for e in batch.events if e.hsdir is not None]
    assert tors == ours, (
        f"{period.which.value} descriptor (TP {period.time_period.number}, disaster SRV: "
        f"{period.srv_is_disaster}): tor uploaded to {tors}, our ring says {ours}"
    )
    by_fp = {r.fingerprint_hex: r for r in relays}
    for event in batch.events:
        assert event.hsdir is not None
        assert event.hsdir_index is not None
        ed_id = by_fp[event.hsdir.fingerprint_hex].ed25519_id
        expected = hsdir_index(ed_id, period.srv, period.time_period)
        assert event.hsdir_index.upper() == expected.hex().upper()
    return period.which


async def _first_view(ctl: TorController, deadline: float) -> ConsensusView:
    """The service's consensus view, once it has one (GETINFO fails with 551 before that)."""
    while True:
        try:
            return await ctl.consensus_view()
        except TorCommandError:
            assert time.monotonic() < deadline, "the onion service never got a consensus"
            await asyncio.sleep(0.5)


async def _verify_both_rings(
    ctl: TorController, sub: EventSubscription, master_pub: HsIdPublicKey
) -> ConsensusView:
    deadline = time.monotonic() + _WAIT_S
    batches = _UploadBatches(sub)
    verified: set[DescriptorSlot] = set()
    inconclusive = 0
    before = await _first_view(ctl, deadline)
    while verified != {DescriptorSlot.FIRST, DescriptorSlot.SECOND}:
        assert time.monotonic() < deadline, (
            f"verified only {sorted(s.value for s in verified)} descriptor rings in "
            f"{_WAIT_S:.0f} s ({inconclusive} inconclusive batches)"
        )
        batch = await batches.next(_VIEW_REFRESH_S)
        if batch is None:  # idle: keep "before" recent, so that it describes the next upload
            before = await ctl.consensus_view()
            continue
        log.info("upload batch for %s: %d HSDirs", batch.blinded_b64, len(batch.events))
        after = await ctl.consensus_view()
        if _ring_inputs(before) == _ring_inputs(after):
            verified.add(_check_batch(batch, after, master_pub))
        else:
            log.info("inconclusive: consensus changed around the upload")
            inconclusive += 1  # the consensus moved (new SRV, HSDir set) around this upload
        before = after
    return before


def _verify_logged_counters(
    svc: TorInstance, view: ConsensusView, master: HsIdExpandedSecretKey
) -> None:
    """Every counter tor logged == our OPE; its SRV run start == ours for that TP."""
    rules = _rules(view)
    logged = _logged_counters(svc)
    assert {entry[3] for entry in logged} >= {"current", "next"}, logged
    periods_now = {p.time_period.number: p for p in _periods(view)}
    for tp, srv_start, now, mode, plaintext, counter in logged:
        assert plaintext == ope_plaintext(srv_start, now)
        blinded = blind_secret_key(master, TimePeriod(tp, rules.length_min))
        assert revision_counter(blinded, srv_start, now) == counter, (tp, mode)
        if tp in periods_now:
            # A TP keeps its SRV run when it moves from second to first descriptor.
            assert periods_now[tp].srv_run_start_s == srv_start, (tp, mode)
            if mode == "current":
                assert periods_now[tp].which is DescriptorSlot.FIRST


async def _verify_served_descriptor(
    ctl: TorController, address: OnionAddress, master: HsIdExpandedSecretKey, wall_start: int
) -> None:
    """The counter in GETINFO hs/service/desc/id is our OPE of a second in tor's build window."""
    reply = await ctl.get_info(f"hs/service/desc/id/{address.without_suffix()}")
    desc = parse_descriptor_unpinned(next(iter(reply.values())))
    wall_end = int(time.time())
    view = await ctl.consensus_view()
    pub = address.public_key
    (period,) = [
        p for p in _periods(view) if blind_public_key(pub, p.time_period) == desc.blinded_key
    ]
    ope = RevisionCounterOpe(blind_secret_key(master, period.time_period))
    start = period.srv_run_start_s
    window = range(max(wall_start - 2, start), wall_end + 3)
    seconds = [t for t in window if ope.counter(start, t) == desc.revision_counter]
    assert len(seconds) == 1, (
        f"revision counter {desc.revision_counter} of tor's {period.which.value} descriptor is "
        f"not our OPE of any second in [{window.start}, {window.stop})"
    )


async def test_ring_and_revision_counters_match_a_self_publishing_tor(
    ring_net: TestNetwork,
) -> None:
    wall_start = int(time.time())
    svc = ring_net.add_onion_service("ringcheck", target_port=9, wait=False)
    settings = _service_controller(svc)
    async with (
        open_controller(settings, ready_timeout_s=60.0) as ctl,
        ctl.subscribe("HS_DESC") as sub,
    ):
        # hostname appears as soon as tor has loaded its keys, long before it uploads
        address_text = svc.onion_address
        for _ in range(100):
            if address_text is not None:
                break
            await asyncio.sleep(0.1)
            address_text = svc.onion_address
        assert address_text is not None, "the onion service wrote no hostname"
        address = OnionAddress.parse(address_text)
        view = await _verify_both_rings(ctl, sub, address.public_key)
        assert svc.hs_dir is not None
        master = load_secret_key_file(svc.hs_dir / "hs_ed25519_secret_key")
        _verify_logged_counters(svc, view, master)
        await _verify_served_descriptor(ctl, address, master, wall_start)
