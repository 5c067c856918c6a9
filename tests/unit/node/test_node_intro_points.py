"""The own-intro-point watcher: decoding the node's descriptor, the change decision, the loop."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable

import pytest
from fake_events import FakeSubscription

from onionfleet.clock import ManualClock
from onionfleet.hs.descriptor import FlowControl, build_descriptor
from onionfleet.hs.intro_point import IntroPoint, LinkSpecifier
from onionfleet.hs.keys import DescSigningKeypair, HsIdExpandedSecretKey, master_key_from_seed
from onionfleet.hs.timeperiod import TimePeriod
from onionfleet.node.intro_points import (
    IntroPointsChanged,
    IntroPointWatchError,
    OwnIntroPointWatcher,
    decode_own_descriptor,
    diff_own_intro_points,
    intro_points_digest,
    read_trigger,
)
from onionfleet.tor.errors import TorCommandError
from onionfleet.tor.events import ControllerReconnected, Event, HsDescEvent

NOW = 1_790_000_000.0
TP = TimePeriod(7458332, 4)
FC = FlowControl("1-2", 31)


def _key() -> HsIdExpandedSecretKey:
    return master_key_from_seed(random.Random(3).randbytes(32))


def _ips(n: int, seed: int) -> list[IntroPoint]:
    rng = random.Random(seed)
    return [
        IntroPoint.create(
            [
                LinkSpecifier.ipv4("127.0.0.1", 5000 + i),
                LinkSpecifier.ed25519_id(rng.randbytes(32)),
            ],
            onion_key=rng.randbytes(32),
            auth_key=DescSigningKeypair.from_seed(rng.randbytes(32)).public_raw,
            enc_key=rng.randbytes(32),
        )
        for i in range(n)
    ]


def _text(ips: list[IntroPoint], *, tp: TimePeriod = TP, seed: int = 1, flow=FC) -> str:  # type: ignore[no-untyped-def]
    return build_descriptor(
        master_key=_key(),
        time_period=tp,
        revision_counter=1000 + seed,
        intro_points=ips,
        now=NOW,
        token_bytes=random.Random(seed).randbytes,
        flow_control=flow,
    ).text


ADDRESS = _key().public_key().address()
CANDIDATES = (TP.next(), TP, TP.previous())


def test_decode_pins_the_descriptor_to_a_candidate_time_period() -> None:
    ips = _ips(3, 1)
    own = decode_own_descriptor(
        _text(ips, tp=TP.previous()), ADDRESS, candidates=CANDIDATES, now=NOW, read_at=5.0
    )
    assert own.time_period == TP.previous()
    assert own.intro_points == tuple(ip.without_certs() for ip in ips)
    assert own.flow_control == FC
    assert own.digest == intro_points_digest(ips)
    assert own.read_at == 5.0 and not own.has_pow_params


def test_decode_refuses_foreign_time_periods_and_garbage() -> None:
    text = _text(_ips(1, 1), tp=TimePeriod(TP.number + 5, 4))
    with pytest.raises(IntroPointWatchError, match="none of the time periods"):
        decode_own_descriptor(text, ADDRESS, candidates=CANDIDATES, now=NOW, read_at=0)
    with pytest.raises(IntroPointWatchError, match="cannot decode"):
        decode_own_descriptor(
            "hs-descriptor 3\n", ADDRESS, candidates=CANDIDATES, now=NOW, read_at=0
        )
    other = master_key_from_seed(bytes(32)).public_key().address()
    with pytest.raises(IntroPointWatchError):
        decode_own_descriptor(_text(_ips(1, 1)), other, candidates=CANDIDATES, now=NOW, read_at=0)


def _own(ips: list[IntroPoint], seed: int = 1, flow=FC):  # type: ignore[no-untyped-def]
    return decode_own_descriptor(
        _text(ips, seed=seed, flow=flow), ADDRESS, candidates=CANDIDATES, now=NOW, read_at=0
    )


def test_reencoding_is_no_change_but_new_or_lost_intro_points_are() -> None:
    ips = _ips(3, 1)
    first = _own(ips, seed=1)
    change = diff_own_intro_points(None, first, "first read")
    assert change is not None and change.added == first.auth_keys and not change.removed
    # tor re-signs the certs on every GETINFO: same intro points, no change
    assert diff_own_intro_points(first, _own(list(reversed(ips)), seed=2), "poll") is None
    replaced = _own([*ips[:2], *_ips(1, 9)], seed=3)
    change = diff_own_intro_points(first, replaced, "HS_DESC CREATED")
    assert change is not None
    assert change.removed == {ips[2].auth_key}
    assert len(change.added) == 1 and not change.flow_control_changed
    flow_only = diff_own_intro_points(first, _own(ips, seed=4, flow=None), "poll")
    assert flow_only is not None and flow_only.flow_control_changed and not flow_only.added


def test_only_our_created_events_and_reconnections_trigger_a_read() -> None:
    ours = ADDRESS.without_suffix()
    assert read_trigger(HsDescEvent("CREATED", ours, "UNKNOWN", None), ADDRESS) == (
        "HS_DESC CREATED"
    )
    assert read_trigger(ControllerReconnected(3), ADDRESS) == "reconnected"
    assert read_trigger(HsDescEvent("CREATED", "x" * 56, "UNKNOWN", None), ADDRESS) is None
    assert read_trigger(HsDescEvent("UPLOADED", ours, "UNKNOWN", None), ADDRESS) is None


class _FakeController:
    def __init__(self) -> None:
        self.subs: list[FakeSubscription] = []
        self.text: str | None = None
        self.reads = 0
        self.read_event = asyncio.Event()

    def subscribe(self, *types: str) -> FakeSubscription:
        assert types == ("HS_DESC",)
        return FakeSubscription(self.subs, frozenset(types))

    def emit(self, event: Event) -> None:
        for sub in self.subs:
            sub.queue.put_nowait(event)

    async def get_info(self, *keys: str, timeout_s: float | None = None) -> dict[str, str]:
        assert keys == (f"hs/service/desc/id/{ADDRESS.without_suffix()}",)
        self.reads += 1
        self.read_event.set()
        if self.text is None:
            raise TorCommandError(551, "Not found in cache", "GETINFO")
        return {keys[0]: self.text}


async def _started(
    ctl: _FakeController, changes: list[IntroPointsChanged], periods: Callable[[], object]
) -> tuple[OwnIntroPointWatcher, asyncio.Task[None]]:
    watcher = OwnIntroPointWatcher(
        ctl,  # type: ignore[arg-type]
        ADDRESS,
        time_periods=periods,  # type: ignore[arg-type]
        clock=ManualClock(start_wall=NOW),
        on_change=changes.append,
        poll_interval_s=1000.0,  # only events wake it in these tests
        burst_duration_s=0.0,
        node_id="n1",
    )
    ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(watcher.run(ready))
    await asyncio.wait_for(ready, 5)
    return watcher, task


async def _reads_after(ctl: _FakeController, action: Callable[[], None]) -> None:
    ctl.read_event.clear()
    action()
    await asyncio.wait_for(ctl.read_event.wait(), 5)
    await asyncio.sleep(0)  # let read_now finish decoding


async def test_watcher_reads_at_once_on_created_for_our_address_only() -> None:
    ctl = _FakeController()
    changes: list[IntroPointsChanged] = []
    watcher, task = await _started(ctl, changes, lambda: CANDIDATES)
    try:
        assert watcher.current is None and "551" in (watcher.last_error or "")
        ctl.text = _text(_ips(3, 1))
        await _reads_after(
            ctl,
            lambda: ctl.emit(HsDescEvent("CREATED", ADDRESS.without_suffix(), "UNKNOWN", None)),
        )
        await watcher.wait_for(lambda c: len(c.intro_points) == 3, timeout_s=5)
        assert [c.trigger for c in changes] == ["HS_DESC CREATED"]
        assert watcher.last_error is None

        ctl.text = _text(_ips(2, 5), seed=7)
        await _reads_after(ctl, lambda: ctl.emit(ControllerReconnected(2)))
        await watcher.wait_for(lambda c: len(c.intro_points) == 2, timeout_s=5)
        assert changes[-1].trigger == "reconnected"
        assert len(changes[-1].removed) == 3 and len(changes[-1].added) == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_watcher_waits_for_a_consensus_before_reading() -> None:
    ctl = _FakeController()
    ctl.text = _text(_ips(1, 1))
    periods: list[tuple[TimePeriod, ...]] = [()]
    changes: list[IntroPointsChanged] = []
    watcher, task = await _started(ctl, changes, lambda: periods[-1])
    try:
        assert ctl.reads == 0 and "consensus" in (watcher.last_error or "")
        periods.append(CANDIDATES)
        await _reads_after(ctl, lambda: watcher.nudge("test"))
        await watcher.wait_for(lambda c: len(c.intro_points) == 1, timeout_s=5)
        assert changes[0].trigger == "test"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_mutated_descriptors_raise_only_the_watch_error() -> None:
    """Whatever tor (or something posing as it) returns, the watcher gets one typed error."""
    text = _text(_ips(2, 1))
    rng = random.Random(11)
    for _ in range(300):
        chars = list(text)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(chars))
            op = rng.random()
            if op < 0.4:
                chars[pos] = chr(rng.randrange(32, 127))
            elif op < 0.7:
                del chars[pos : pos + rng.randint(1, 40)]
            else:
                chars.insert(pos, rng.choice(["\n", " ", "=", "-----", "introduction-point "]))
        with contextlib.suppress(IntroPointWatchError):
            decode_own_descriptor(
                "".join(chars), ADDRESS, candidates=CANDIDATES, now=NOW, read_at=0
            )
