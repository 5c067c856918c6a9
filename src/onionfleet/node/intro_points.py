"""The node's own intro points: read tor's current descriptor, decrypt it, report changes.

tor exposes only the node's *current* descriptor (``desc_current``), re-encoded with fresh salts
and a node-local signing key on every ``GETINFO hs/service/desc/id/<addr>`` (control-spec §3.9;
tor ``control_getinfo.c`` → ``hs_service_lookup_current_desc``); it works with
``PublishHidServDescriptors 0`` (DESIGN.md §2). We pin the descriptor to a blinded key of ours:
the blinded key named in its signing-key cert (type 08) must be ``blind(A, tp)`` for one of the
candidate time periods the caller derives from the consensus (TP, TP−1, TP+1; in the half of a TP
after its start, ``desc_current`` belongs to TP−1: shared/research/ob-selfmaster.md), then we verify
and decrypt it with the master public key (rend-spec-v3 [HS-DESC-ENCRYPTION-KEYS]).

Pure part: :func:`decode_own_descriptor` and :func:`diff_own_intro_points` (the "changed?"
decision, by intro point keys and the ``flow-control`` line). Adapter: :class:`OwnIntroPointWatcher`
re-reads at once on ``HS_DESC CREATED`` for our address (then polls quickly for a few seconds,
since tor adds intro points to a new descriptor as they get established) and otherwise polls every
``poll_interval_s``; it calls ``on_change`` with an :class:`IntroPointsChanged` when the set
changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from onionfleet.clock import Clock
from onionfleet.hs.blinding import blind_public_key
from onionfleet.hs.client_auth import ClientAuthPrivateKey
from onionfleet.hs.descriptor import FlowControl, parse_descriptor, parse_descriptor_unpinned
from onionfleet.hs.errors import HsError
from onionfleet.hs.intro_point import IntroPoint
from onionfleet.hs.keys import OnionAddress
from onionfleet.hs.timeperiod import TimePeriod
from onionfleet.node.errors import NodeError
from onionfleet.tor.controller import TorController
from onionfleet.tor.errors import TorError
from onionfleet.tor.events import ControllerReconnected, HsDescEvent

__all__ = [
    "IntroPointWatchError",
    "IntroPointsChanged",
    "OwnIntroPointWatcher",
    "OwnIntroPoints",
    "decode_own_descriptor",
    "diff_own_intro_points",
    "intro_points_digest",
    "read_trigger",
]

log = logging.getLogger(__name__)


class IntroPointWatchError(NodeError):
    """The node's own descriptor cannot be read or does not belong to the master key."""


def intro_points_digest(intro_points: Sequence[IntroPoint]) -> str:
    """Order-free short digest of a set of intro points (by auth key), for logs and status."""
    h = hashlib.sha3_256()
    for key in sorted({ip.auth_key for ip in intro_points}):
        h.update(key)
    return h.hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class OwnIntroPoints:
    """What the node's tor currently advertises (certs dropped: they change on every read).

    ``time_period`` is the TP of the descriptor tor holds as ``desc_current``; ``read_at`` the
    monotonic time of the read.
    """

    intro_points: tuple[IntroPoint, ...]
    flow_control: FlowControl | None
    time_period: TimePeriod
    revision_counter: int
    single_onion_service: bool
    has_pow_params: bool
    digest: str
    read_at: float

    @property
    def auth_keys(self) -> frozenset[bytes]:
        return frozenset(ip.auth_key for ip in self.intro_points)


@dataclass(frozen=True, slots=True)
class IntroPointsChanged:
    """The node's intro point set (or its ``flow-control`` line) changed.

    ``added``/``removed`` are auth keys; ``trigger`` says what made us look (``first read``,
    ``HS_DESC CREATED``, ``poll``, ``reconnected``).
    """

    previous: OwnIntroPoints | None
    current: OwnIntroPoints
    added: frozenset[bytes]
    removed: frozenset[bytes]
    flow_control_changed: bool
    trigger: str


def decode_own_descriptor(
    text: str,
    address: OnionAddress,
    *,
    candidates: Sequence[TimePeriod],
    now: float,
    read_at: float,
    client_key: ClientAuthPrivateKey | None = None,
) -> OwnIntroPoints:
    """Pin, verify and decrypt the node's own descriptor (``GETINFO hs/service/desc/id``).

    ``candidates``: TPs the descriptor may be for; the blinded key in its cert 08 must equal
    ``blind(master, tp)`` for one of them. ``now`` is wall-clock seconds (cert expiry).
    Raises :class:`IntroPointWatchError`.
    """
    try:
        unpinned = parse_descriptor_unpinned(text)
        period = next(
            (
                tp
                for tp in candidates
                if blind_public_key(address.public_key, tp) == unpinned.blinded_key
            ),
            None,
        )
        if period is None:
            numbers = ", ".join(str(tp.number) for tp in candidates) or "none"
            raise IntroPointWatchError(
                f"the node's descriptor for {address.redacted()} is for none of the time periods "
                f"{numbers}; is tor's HiddenServiceDir holding the master key, and its consensus "
                "live?"
            )
        pinned = parse_descriptor(text, blind_public_key(address.public_key, period))
        decrypted = pinned.verify(now=now).decrypt(address, now=now, client_key=client_key)
    except HsError as exc:
        raise IntroPointWatchError(
            f"cannot decode the node's own descriptor for {address.redacted()}: {exc}"
        ) from exc
    ips = tuple(dict.fromkeys(ip.without_certs() for ip in decrypted.intro_points))
    return OwnIntroPoints(
        intro_points=ips,
        flow_control=decrypted.flow_control,
        time_period=period,
        revision_counter=decrypted.revision_counter,
        single_onion_service=decrypted.single_onion_service,
        has_pow_params=decrypted.pow_params is not None,
        digest=intro_points_digest(ips),
        read_at=read_at,
    )


def read_trigger(event: object, address: OnionAddress) -> str | None:
    """Whether a control event means "read the descriptor now", and why.

    ``HS_DESC CREATED`` for our address (tor ``hs_control_desc_event_created``, fired when tor
    builds a descriptor: start-up, rotation at the SRV), or a controller reconnection (tor may have
    restarted; events were missed).
    """
    if isinstance(event, ControllerReconnected):
        return "reconnected"
    if (
        isinstance(event, HsDescEvent)
        and event.action == "CREATED"
        and event.address == address.without_suffix()
    ):
        return "HS_DESC CREATED"
    return None


def diff_own_intro_points(
    previous: OwnIntroPoints | None, current: OwnIntroPoints, trigger: str
) -> IntroPointsChanged | None:
    """The change from ``previous`` to ``current``, or ``None`` when nothing a publisher uses
    changed (intro points compared with their certs dropped; the flow-control line).

    A new revision counter or time period alone is no change: the intro points are what clients
    use, and the publisher builds its own descriptors for its own time periods.
    """
    if previous is None:
        return IntroPointsChanged(
            None, current, current.auth_keys, frozenset(), current.flow_control is not None, trigger
        )
    same_ips = set(previous.intro_points) == set(current.intro_points)
    same_flow = previous.flow_control == current.flow_control
    if same_ips and same_flow:
        return None
    return IntroPointsChanged(
        previous,
        current,
        current.auth_keys - previous.auth_keys,
        previous.auth_keys - current.auth_keys,
        not same_flow,
        trigger,
    )


class OwnIntroPointWatcher:
    """Watches one node tor's own descriptor; long-lived task ``run(ready)`` (STYLE.md §2).

    ``time_periods`` returns the candidate TPs (e.g.
    :func:`onionfleet.publish.plan.candidate_time_periods` of the live consensus); an empty
    result postpones the read. ``on_change`` is called (synchronously, in the watcher's task)
    with every :class:`IntroPointsChanged`. After ``HS_DESC CREATED`` for our address the watcher
    reads at once, then every ``burst_interval_s`` for ``burst_duration_s`` (tor fills a new
    descriptor's intro points as they get established), else every ``poll_interval_s``.
    """

    def __init__(
        self,
        controller: TorController,
        address: OnionAddress,
        *,
        time_periods: Callable[[], Sequence[TimePeriod]],
        clock: Clock,
        on_change: Callable[[IntroPointsChanged], None] | None = None,
        poll_interval_s: float = 1.0,
        burst_interval_s: float = 0.25,
        burst_duration_s: float = 5.0,
        read_timeout_s: float = 10.0,
        client_key: ClientAuthPrivateKey | None = None,
        node_id: str = "self",
    ) -> None:
        for name, value in (
            ("poll_interval_s", poll_interval_s),
            ("burst_interval_s", burst_interval_s),
            ("read_timeout_s", read_timeout_s),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        if burst_duration_s < 0:
            raise ValueError(f"burst_duration_s must be >= 0, got {burst_duration_s}")
        self._controller = controller
        self._address = address
        self._time_periods = time_periods
        self._clock = clock
        self._on_change = on_change
        self._poll_s = poll_interval_s
        self._burst_s = burst_interval_s
        self._burst_duration_s = burst_duration_s
        self._read_timeout_s = read_timeout_s
        self._client_key = client_key
        self.node_id = node_id
        self._current: OwnIntroPoints | None = None
        self._wake = asyncio.Event()
        self._trigger = "first read"
        self._burst_until = 0.0
        self._changed = asyncio.Condition()
        self.last_error: str | None = None
        self.reads = 0
        self.changes = 0

    @property
    def current(self) -> OwnIntroPoints | None:
        """The last successful read (None before the first)."""
        return self._current

    def nudge(self, trigger: str = "nudge") -> None:
        """Read again now (e.g. the daemon learnt that tor restarted)."""
        self._trigger = trigger
        self._wake.set()

    async def read_now(self, trigger: str = "poll") -> IntroPointsChanged | None:
        """Read and decode the node's descriptor once; report and return a change, if any.

        Failures (no descriptor yet, tor unreachable, a descriptor we cannot decode) are kept in
        :attr:`last_error` and logged once per distinct message; they never raise.
        """
        candidates = tuple(self._time_periods())
        if not candidates:
            self._note_error("no live consensus yet: cannot tell the descriptor's time period")
            return None
        key = f"hs/service/desc/id/{self._address.without_suffix()}"
        try:
            reply = await self._controller.get_info(key, timeout_s=self._read_timeout_s)
            decoded = decode_own_descriptor(
                reply[key],
                self._address,
                candidates=candidates,
                now=self._clock.wall(),
                read_at=self._clock.monotonic(),
                client_key=self._client_key,
            )
        except (TorError, IntroPointWatchError) as exc:
            self._note_error(str(exc))
            return None
        self.reads += 1
        if self.last_error is not None:
            log.info("node %s: own descriptor readable again", self.node_id)
            self.last_error = None
        change = diff_own_intro_points(self._current, decoded, trigger)
        async with self._changed:
            self._current = decoded
            self._changed.notify_all()
        if change is None:
            return None
        self.changes += 1
        log.info(
            "node %s: intro points of %s changed (%s): %d now (+%d -%d), set %s, TP %d%s",
            self.node_id,
            self._address.redacted(),
            trigger,
            len(decoded.intro_points),
            len(change.added),
            len(change.removed),
            decoded.digest,
            decoded.time_period.number,
            ", flow-control changed" if change.flow_control_changed else "",
        )
        if self._on_change is not None:
            self._on_change(change)
        return change

    def _note_error(self, message: str) -> None:
        if message != self.last_error:
            log.info("node %s: own descriptor not readable: %s", self.node_id, message)
        self.last_error = message

    async def wait_for(
        self, predicate: Callable[[OwnIntroPoints], bool], *, timeout_s: float
    ) -> OwnIntroPoints:
        """Wait until the current read satisfies ``predicate``; TimeoutError after
        ``timeout_s``."""
        async with asyncio.timeout(timeout_s), self._changed:
            while self._current is None or not predicate(self._current):
                await self._changed.wait()
            return self._current

    def _on_event(self, event: object) -> None:
        trigger = read_trigger(event, self._address)
        if trigger is not None:
            self._trigger = trigger
            self._burst_until = self._clock.monotonic() + self._burst_duration_s
            self._wake.set()

    async def run(self, ready: asyncio.Future[None] | None = None) -> None:
        """Subscribe to HS_DESC, read once, set ``ready``, then read on events and timers."""
        async with self._controller.subscribe("HS_DESC") as sub, asyncio.TaskGroup() as tg:

            async def pump() -> None:
                async for event in sub:
                    self._on_event(event)

            tg.create_task(pump(), name=f"intro-watch-events-{self.node_id}")
            await self.read_now("first read")
            if ready is not None and not ready.done():
                ready.set_result(None)
            while True:
                now = self._clock.monotonic()
                interval = self._burst_s if now < self._burst_until else self._poll_s
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(interval):
                        await self._wake.wait()
                trigger = self._trigger if self._wake.is_set() else "poll"
                self._wake.clear()
                self._trigger = "poll"
                await self.read_now(trigger)
