"""The publisher adapter: merged descriptors for the master identity through ONE tor controller.

Each step (on a nudge, an event, a deadline, or every ``tick_s``):

1. **Plan** (pure, :mod:`.plan`): select intro points across the eligible nodes
   (:func:`select_intro_points`, stable against the last publish), compute the first and second
   descriptor's TP/SRV from the consensus (valid-after, SRVs, voting interval and tor's
   ``TestingTorNetwork``), their blinded keys and responsible HSDirs (our ring,
   ``hsdir_n_replicas``/``hsdir_spread_store`` from the consensus), and ask
   :class:`RepublishSchedule` why to publish (selected set, HSDir set, TP/SRV rotation, periodic
   60–120 min, failed verification).
2. **Publish**: build both descriptors (tor's OPE revision counter at publish time, never lower
   than what we used before for that blinded key; the nodes' ``flow-control`` line; never
   ``pow-params``) and ``+HSPOST SERVER=$fp… HSADDRESS=<addr>`` each to its own HSDirs
   (control-spec HSPOST; DESIGN.md §2: without SERVER= tor picks wrong HSDirs for the second
   descriptor, without HSADDRESS= tor 0.4.9 never answers).
3. **Track** ``HS_DESC UPLOADED|FAILED`` per HSDir in an :class:`UploadRound`; a failed upload is
   re-posted to that one HSDir after a backoff.
4. **Verify**: once a descriptor's uploads settled, ``HSFETCH <addr> SERVER=$fp…`` from the HSDirs
   that took it, decode each ``HS_DESC_CONTENT`` with our parser (pinned to the blinded key) and
   compare the intro points by auth key. tor's HSFETCH only asks for the *current* TP's blinded key
   (``hs_client.c:directory_launch_v3_desc_fetch``), so the other descriptor is verified when its
   TP starts. A mismatch (or a descriptor missing where an HSDir said UPLOADED) logs a warning and
   makes the schedule republish.

Time comes from :class:`~onionfleet.clock.Clock`, randomness is injected. Logs: one line per event,
addresses redacted, never key material.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from onionfleet.clock import Clock
from onionfleet.hs.blinding import blind_secret_key
from onionfleet.hs.client_auth import ClientAuthPublicKey
from onionfleet.hs.descriptor import (
    BuiltDescriptor,
    FlowControl,
    build_descriptor,
    parse_descriptor,
)
from onionfleet.hs.errors import HsError
from onionfleet.hs.intro_point import IntroPoint
from onionfleet.hs.keys import HsIdExpandedSecretKey, OnionAddress, TokenBytes
from onionfleet.hs.revision_counter import RevisionCounterOpe
from onionfleet.hs.timeperiod import DescriptorSlot, TimePeriodRules
from onionfleet.publish.plan import (
    DescriptorPlan,
    compare_intro_points,
    fetchable_slot,
    intro_point_relay,
    max_descriptor_size,
    merged_flow_control,
    next_revision_counter,
    plan_descriptors,
    time_period_rules_for,
)
from onionfleet.publish.schedule import (
    VERIFICATION_FAILED_REASON,
    PublishInputs,
    RepublishSchedule,
)
from onionfleet.publish.selection import IntroPointSelection, NodeIntroPoints, select_intro_points
from onionfleet.publish.status import (
    DescriptorStatus,
    FetchOutcome,
    HsDirFetchResult,
    PublisherStatus,
    PublishRecord,
    VerificationState,
)
from onionfleet.publish.uploads import DEFAULT_BACKOFF_S, UploadRound, UploadState
from onionfleet.tor.consensus import ConsensusView
from onionfleet.tor.controller import TorController
from onionfleet.tor.errors import TorError
from onionfleet.tor.events import ControllerReconnected, HsDescContentEvent, HsDescEvent

__all__ = ["Publisher", "PublisherSettings"]

log = logging.getLogger(__name__)

#: HS_DESC FAILED reasons that belong to a fetch, never to an upload (control-spec HS_DESC).
_FETCH_FAILURE_REASONS = frozenset(
    {"NOT_FOUND", "QUERY_REJECTED", "QUERY_NO_HSDIR", "QUERY_RATE_LIMITED", "BAD_DESC"}
)
_HISTORY = 20


@dataclass(frozen=True, slots=True)
class PublisherSettings:
    """Behaviour of the publisher (not spec values). Times in seconds."""

    max_intro_points: int = 20
    republish_min_s: float = 3600.0
    republish_max_s: float = 7200.0
    upload_timeout_s: float = 30.0
    upload_backoff_s: tuple[float, ...] = DEFAULT_BACKOFF_S
    verify_timeout_s: float = 30.0
    verify_retry_s: float = 20.0
    settle_max_s: float = 5.0
    mismatch_republish_delay_s: float = 30.0
    tick_s: float = 1.0
    command_timeout_s: float = 30.0
    authorized_clients: tuple[ClientAuthPublicKey, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if not 1 <= self.max_intro_points <= 20:
            raise ValueError(f"max_intro_points must be 1..20, got {self.max_intro_points}")
        for name in (
            "upload_timeout_s",
            "verify_timeout_s",
            "verify_retry_s",
            "settle_max_s",
            "mismatch_republish_delay_s",
            "tick_s",
            "command_timeout_s",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


@dataclass(slots=True)
class _Descriptor:
    """One descriptor of one publish and what we learnt about it since."""

    plan: DescriptorPlan
    built: BuiltDescriptor
    intro_points: tuple[IntroPoint, ...]
    first_uploaded_at: float | None = None
    all_uploaded_at: float | None = None
    verification: VerificationState = VerificationState.NOT_STARTED
    fetch_pending: set[str] = field(default_factory=set)
    fetch_results: dict[str, HsDirFetchResult] = field(default_factory=dict)
    verify_deadline: float = 0.0
    verify_again_at: float | None = None
    verified_at: float | None = None

    @property
    def label(self) -> str:
        return self.plan.label


@dataclass(slots=True)
class _Publish:
    number: int
    reasons: tuple[str, ...]
    wall: float
    mono: float
    selection: IntroPointSelection[IntroPoint]
    node_of: dict[IntroPoint, str]
    descriptors: dict[str, _Descriptor]
    round: UploadRound


class Publisher:
    """Publishes the merged descriptors of ``master_key`` through ``controller``.

    ``nodes`` returns the eligible nodes (alive, serving, not draining) with their current intro
    points and flow-control line; ``consensus`` the latest consensus view of the controller's tor
    (e.g. :attr:`onionfleet.tor.ConsensusWatcher.current`). ``testing_tor_network``: tor's option;
    ``None`` reads it with GETCONF when :meth:`run` starts. Call :meth:`nudge` when intro points
    or the consensus changed, for an immediate step.
    """

    def __init__(
        self,
        controller: TorController,
        master_key: HsIdExpandedSecretKey,
        *,
        nodes: Callable[[], Sequence[NodeIntroPoints[IntroPoint]]],
        consensus: Callable[[], ConsensusView | None],
        clock: Clock,
        rng: random.Random,
        token_bytes: TokenBytes,
        settings: PublisherSettings | None = None,
        testing_tor_network: bool | None = None,
    ) -> None:
        self._controller = controller
        self._master_key = master_key
        self._address = master_key.public_key().address()
        self._nodes = nodes
        self._consensus = consensus
        self._clock = clock
        self._token_bytes = token_bytes
        self.settings = settings or PublisherSettings()
        self._testing = testing_tor_network
        self._schedule = RepublishSchedule(
            republish_min_s=self.settings.republish_min_s,
            republish_max_s=self.settings.republish_max_s,
            rng=rng,
        )
        self._wake = asyncio.Event()
        self._current: _Publish | None = None
        self._history: deque[PublishRecord] = deque(maxlen=_HISTORY)
        self._publishes = 0
        self._last_counter: dict[str, int] = {}
        self._opes: dict[tuple[int, int], RevisionCounterOpe] = {}
        self._selection: IntroPointSelection[IntroPoint] | None = None
        self._node_of: dict[IntroPoint, str] = {}
        self._flow_control: str | None = None
        self._flow_control_obj: FlowControl | None = None
        self._waiting_for: str | None = "start"
        self._last_error: str | None = None
        self._rules: TimePeriodRules | None = None
        self._view: ConsensusView | None = None
        self._changed = asyncio.Condition()

    # ------------------------------------------------------------------ public

    @property
    def address(self) -> OnionAddress:
        return self._address

    def nudge(self) -> None:
        """Re-plan now (intro points or consensus changed)."""
        self._wake.set()

    def status(self) -> PublisherStatus:
        sel = self._selection
        per_node: dict[str, list[str]] = {}
        if sel is not None:
            for ip in sel.chosen:
                node = self._node_of.get(ip, "?")
                per_node.setdefault(node, []).append(_b64(ip.auth_key))
        return PublisherStatus(
            last=self._record(self._current) if self._current is not None else None,
            publishes=self._publishes,
            selected_per_node={k: tuple(v) for k, v in per_node.items()},
            nodes_without_intro_points=sel.nodes_without_intro_points if sel else (),
            left_out_intro_points=sel.left_out if sel else 0,
            flow_control=self._flow_control,
            next_periodic_in_s=self._schedule.seconds_until_periodic(self._clock.monotonic()),
            waiting_for=self._waiting_for,
            last_error=self._last_error,
        )

    def history(self) -> tuple[PublishRecord, ...]:
        """The last publishes (oldest first), the current one included with its latest state."""
        out = list(self._history)
        if self._current is not None:
            out = [r for r in out if r.number != self._current.number]
            out.append(self._record(self._current))
        return tuple(out)

    async def wait_for(
        self, predicate: Callable[[PublisherStatus], bool], *, timeout_s: float
    ) -> PublisherStatus:
        """Wait until the status satisfies ``predicate`` (checked after every change)."""
        async with asyncio.timeout(timeout_s), self._changed:
            while not predicate(status := self.status()):
                await self._changed.wait()
            return status

    async def run(self, ready: asyncio.Future[None] | None = None) -> None:
        """Subscribe to HS_DESC/HS_DESC_CONTENT, then plan/publish/verify until cancelled."""
        async with (
            self._controller.subscribe("HS_DESC", "HS_DESC_CONTENT") as sub,
            asyncio.TaskGroup() as tg,
        ):

            async def pump() -> None:
                async for event in sub:
                    self._on_event(event)

            tg.create_task(pump(), name="publisher-events")
            if self._testing is None:
                self._testing = await self._read_testing_flag()
            if ready is not None and not ready.done():
                ready.set_result(None)
            while True:
                await self.step()
                await self._sleep_until_next()

    async def step(self) -> None:
        """One round of work: retries and timeouts, verification, then maybe a publish."""
        now = self._clock.monotonic()
        await self._service_uploads(now)
        await self._service_verification(now)
        await self._maybe_publish(now)
        await self._notify()

    # ------------------------------------------------------------------ planning + publish

    async def _read_testing_flag(self) -> bool:
        while True:
            try:
                conf = await self._controller.get_conf(
                    "TestingTorNetwork", timeout_s=self.settings.command_timeout_s
                )
            except TorError as exc:
                self._note_error(f"cannot read TestingTorNetwork from tor: {exc}")
                await asyncio.sleep(self.settings.tick_s)
                continue
            values = next(iter(conf.values()), [])
            return bool(values) and values[-1] == "1"

    def _note_error(self, message: str) -> None:
        if message != self._last_error:
            log.warning("publisher: %s", message)
        self._last_error = message

    def _wait(self, what: str) -> None:
        if what != self._waiting_for:
            log.info("publisher for %s waits: %s", self._address.redacted(), what)
        self._waiting_for = what

    async def _maybe_publish(self, now: float) -> None:
        view = self._consensus()
        if view is None:
            self._wait("no consensus yet")
            return
        rules = time_period_rules_for(view, testing_tor_network=bool(self._testing))
        self._view, self._rules = view, rules
        nodes = list(self._nodes())
        previous = self._current.selection.chosen if self._current is not None else ()
        try:
            selection = select_intro_points(
                nodes,
                limit=self.settings.max_intro_points,
                previous=previous,
                relay_of=intro_point_relay,
            )
        except ValueError as exc:
            self._note_error(f"cannot select intro points: {exc}")
            return
        node_of = {ip: n.node_id for n in nodes for ip in n.intro_points}
        self._selection, self._node_of = selection, node_of
        if not selection.chosen:
            self._wait("no eligible node has intro points")
            return
        try:
            first, second = plan_descriptors(view, self._master_key.public_key(), rules)
        except HsError as exc:
            self._note_error(f"cannot plan descriptors from the consensus: {exc}")
            return
        inputs = PublishInputs(
            intro_points=frozenset(selection.chosen),
            periods=tuple((p.period.time_period, p.period.srv) for p in (first, second)),
            hsdirs=tuple(frozenset(p.hsdirs) for p in (first, second)),
        )
        reasons = self._schedule.reasons(inputs, now)
        if not reasons:
            self._waiting_for = None
            return
        if (
            reasons == [VERIFICATION_FAILED_REASON]
            and self._current is not None
            and now - self._current.mono < self.settings.mismatch_republish_delay_s
        ):
            # Something else keeps putting another descriptor there (a node whose tor still
            # publishes?): republish, but not in a tight loop.
            self._wait("the delay before republishing after a failed verification")
            return
        last = self._schedule.last_published
        intro_points_changed = last is not None and inputs.intro_points != last.intro_points
        if self._in_flight(now) and not intro_points_changed:
            # HS_DESC outcomes name the HSDir, not the upload: a second round to the same HSDirs
            # before the first settled would take the first round's late outcomes as its own.
            # Not when the intro points changed: tor has dropped the old ones (a node's tor
            # restarted, or rotated its intro points with the time period), so clients fail
            # until they are replaced; a late outcome taken for the new round is caught by the
            # verification, as it already is after settle_max_s.
            self._wait("the previous upload round to settle")
            return
        contributing = [n for n in nodes if selection.per_node.get(n.node_id, 0) > 0]
        flow = merged_flow_control(n.flow_control for n in contributing)
        try:
            descriptors = self._build(view, (first, second), selection.chosen, flow)
        except (HsError, ValueError) as exc:
            self._note_error(f"cannot build the merged descriptors: {exc}")
            return
        self._flow_control = flow.encode().strip() if flow is not None else None
        self._flow_control_obj = flow
        self._waiting_for = None
        self._last_error = None
        await self._publish(
            reasons=reasons,
            inputs=inputs,
            selection=selection,
            node_of=node_of,
            descriptors=descriptors,
            now=now,
        )

    def _in_flight(self, now: float) -> bool:
        current = self._current
        if current is None or now - current.mono >= self.settings.settle_max_s:
            return False
        return any(u.state is UploadState.PENDING for u in current.round.results())

    def _ope(self, plan: DescriptorPlan) -> RevisionCounterOpe:
        tp = plan.period.time_period
        key = (tp.number, tp.length_min)
        ope = self._opes.get(key)
        if ope is None:
            if len(self._opes) >= 4:
                self._opes.pop(next(iter(self._opes)))
            ope = RevisionCounterOpe(blind_secret_key(self._master_key, tp))
            self._opes[key] = ope
        return ope

    def _build(
        self,
        view: ConsensusView,
        plans: tuple[DescriptorPlan, ...],
        chosen: Sequence[IntroPoint],
        flow: FlowControl | None,
    ) -> dict[str, _Descriptor]:
        wall = self._clock.wall()
        out: dict[str, _Descriptor] = {}
        for plan in plans:
            blinded_b64 = plan.blinded_key.b64()
            ope_value = self._ope(plan).counter(plan.period.srv_run_start_s, int(wall))
            counter = next_revision_counter(ope_value, self._last_counter.get(blinded_b64))
            built = build_descriptor(
                master_key=self._master_key,
                time_period=plan.period.time_period,
                revision_counter=counter,
                intro_points=chosen,
                now=wall,
                token_bytes=self._token_bytes,
                flow_control=flow,
                authorized_clients=self.settings.authorized_clients,
                max_size_bytes=max_descriptor_size(view),
            )
            out[plan.label] = _Descriptor(plan, built, tuple(chosen))
        return out

    async def _publish(
        self,
        *,
        reasons: list[str],
        inputs: PublishInputs,
        selection: IntroPointSelection[IntroPoint],
        node_of: dict[IntroPoint, str],
        descriptors: dict[str, _Descriptor],
        now: float,
    ) -> None:
        if self._current is not None:
            self._history.append(self._record(self._current))
        self._publishes += 1
        upload_round = UploadRound(
            {label: d.plan.hsdirs for label, d in descriptors.items()},
            now,
            timeout_s=self.settings.upload_timeout_s,
            backoff_s=self.settings.upload_backoff_s,
        )
        self._current = _Publish(
            self._publishes,
            tuple(reasons),
            self._clock.wall(),
            now,
            selection,
            node_of,
            descriptors,
            upload_round,
        )
        log.info(
            "publishing %s (#%d): %s; %d intro points from %d nodes%s%s",
            self._address.redacted(),
            self._publishes,
            "; ".join(reasons),
            len(selection.chosen),
            sum(1 for c in selection.per_node.values() if c > 0),
            (
                f", no intro points from {', '.join(selection.nodes_without_intro_points)}"
                if selection.nodes_without_intro_points
                else ""
            ),
            (
                f", {selection.dropped_same_relay} left out (relay already in use)"
                if selection.dropped_same_relay
                else ""
            ),
        )
        for desc in descriptors.values():
            self._last_counter[desc.plan.blinded_key.b64()] = desc.built.revision_counter
            while len(self._last_counter) > 8:  # one entry per time period; keep the recent ones
                self._last_counter.pop(next(iter(self._last_counter)))
            log.info(
                "%s descriptor: TP %d, revision counter %d, %d bytes, %d HSDirs",
                desc.label,
                desc.plan.period.time_period.number,
                desc.built.revision_counter,
                desc.built.size_bytes,
                len(desc.plan.hsdirs),
            )
            await self._post(desc, desc.plan.hsdirs, now)
        self._schedule.published(inputs, now)

    async def _post(self, desc: _Descriptor, hsdirs: Sequence[str], now: float) -> None:
        current = self._current
        try:
            await self._controller.hs_post(
                desc.built.text,
                servers=hsdirs,
                hs_address=self._address.without_suffix(),
                timeout_s=self.settings.command_timeout_s,
            )
        except TorError as exc:
            log.warning(
                "HSPOST of the %s descriptor to %d HSDirs failed: %s", desc.label, len(hsdirs), exc
            )
            if current is not None and current is self._current:
                for fp in hsdirs:
                    current.round.failed(fp, "HSPOST_FAILED", now, descriptor=desc.label)

    # ------------------------------------------------------------------ upload tracking

    async def _service_uploads(self, now: float) -> None:
        current = self._current
        if current is None:
            return
        for upload in current.round.expire(now):
            log.warning(
                "no outcome for the %s descriptor at HSDir $%s within %.0f s (attempt %d)",
                upload.descriptor,
                upload.hsdir_fingerprint,
                self.settings.upload_timeout_s,
                upload.attempts,
            )
        for upload in current.round.due_retries(now):
            desc = current.descriptors[upload.descriptor]
            if upload.last_reason == "UPLOAD_REJECTED":
                # The HSDir holds a counter at least as high: re-posting the same text cannot
                # win, so rebuild with the counter for now (strictly higher than ours so far).
                self._rebuild(desc)
            log.info(
                "re-posting the %s descriptor to HSDir $%s (attempt %d)",
                upload.descriptor,
                upload.hsdir_fingerprint,
                upload.attempts,
            )
            await self._post(desc, [upload.hsdir_fingerprint], now)

    def _rebuild(self, desc: _Descriptor) -> None:
        view = self._view
        if view is None:
            return
        try:
            rebuilt = self._build(view, (desc.plan,), desc.intro_points, self._flow_control_obj)
        except (HsError, ValueError) as exc:
            log.warning("cannot rebuild the %s descriptor for a retry: %s", desc.label, exc)
            return
        desc.built = rebuilt[desc.label].built
        self._last_counter[desc.plan.blinded_key.b64()] = desc.built.revision_counter

    def _label_for_blinded(self, blinded_b64: str | None) -> str | None:
        if blinded_b64 is None or self._current is None:
            return None
        for desc in self._current.descriptors.values():
            if desc.plan.blinded_key.b64() == blinded_b64.rstrip("="):
                return desc.label
        return None

    def _on_event(self, event: object) -> None:
        if isinstance(event, ControllerReconnected):
            self._wake.set()
            return
        if isinstance(event, HsDescContentEvent):
            if event.address == self._address.without_suffix():
                self._on_content(event)
            return
        if not isinstance(event, HsDescEvent) or event.address != self._address.without_suffix():
            return
        current = self._current
        if current is None or event.hsdir is None:
            return
        now = self._clock.monotonic()
        fp = event.hsdir.fingerprint_hex
        if event.action == "UPLOADED":
            upload = current.round.uploaded(fp)
            if upload is None:
                return
            desc = current.descriptors[upload.descriptor]
            if desc.first_uploaded_at is None:
                desc.first_uploaded_at = now
            done, total = current.round.counts(desc.label)
            if done == total and desc.all_uploaded_at is None:
                desc.all_uploaded_at = now
            log.info("%s descriptor UPLOADED to HSDir $%s (%d/%d)", desc.label, fp, done, total)
        elif event.action == "FAILED":
            reason = event.reason or "UNKNOWN"
            if reason in _FETCH_FAILURE_REASONS or current.round.pending_at(fp) == 0:
                return  # a fetch of ours (verification) or someone else's upload
            label = self._label_for_blinded(event.descriptor_id)
            upload = current.round.failed(fp, reason, now, descriptor=label)
            if upload is None:
                return
            then = (
                "giving up"
                if upload.state is UploadState.FAILED
                else f"retrying after backoff (attempt {upload.attempts})"
            )
            log.warning(
                "%s descriptor upload to HSDir $%s FAILED: %s; %s",
                upload.descriptor,
                fp,
                reason,
                then,
            )
        else:
            return
        self._wake.set()

    # ------------------------------------------------------------------ verification

    async def _service_verification(self, now: float) -> None:
        current = self._current
        if current is None or self._rules is None or self._view is None:
            return
        fetchable = fetchable_slot(self._view.valid_after, self._rules).value
        # UPLOADED events do not say which descriptor they are for; an HSDir that takes both is
        # settled for sure only once none of the round's uploads is pending (FAILED events name
        # the blinded key, so the remaining outcome is the other descriptor's).
        round_pending = any(u.state is UploadState.PENDING for u in current.round.results())
        for desc in current.descriptors.values():
            if desc.verification is VerificationState.IN_PROGRESS:
                if now >= desc.verify_deadline or not desc.fetch_pending:
                    self._finish_verification(desc, now)
                continue
            settled = all(
                u.state in (UploadState.UPLOADED, UploadState.FAILED)
                for u in current.round.results()
                if u.descriptor == desc.label
            )
            if not settled or round_pending:
                continue
            if desc.label != fetchable:
                if desc.verification is VerificationState.NOT_STARTED:
                    desc.verification = (
                        VerificationState.PAST_TIME_PERIOD
                        if desc.label == DescriptorSlot.FIRST.value
                        else VerificationState.WAITING_FOR_TIME_PERIOD
                    )
                continue
            retry_due = (
                desc.verification is VerificationState.INCOMPLETE
                and desc.verify_again_at is not None
                and now >= desc.verify_again_at
            )
            if (
                desc.verification
                in (
                    VerificationState.NOT_STARTED,
                    VerificationState.WAITING_FOR_TIME_PERIOD,
                )
                or retry_due
            ):
                await self._start_verification(current, desc, now)

    async def _start_verification(self, current: _Publish, desc: _Descriptor, now: float) -> None:
        took = [
            u.hsdir_fingerprint
            for u in current.round.results()
            if u.descriptor == desc.label and u.state is UploadState.UPLOADED
        ]
        if not took:
            desc.verification = VerificationState.MISMATCH
            self._schedule.verification_failed()
            log.warning("%s descriptor: no HSDir took it; republishing", desc.label)
            return
        desc.verification = VerificationState.IN_PROGRESS
        desc.fetch_pending = set(took)
        desc.fetch_results = {}
        desc.verify_deadline = now + self.settings.verify_timeout_s
        try:
            await self._controller.hs_fetch(
                self._address.without_suffix(),
                servers=took,
                timeout_s=self.settings.command_timeout_s,
            )
        except TorError as exc:
            log.warning("HSFETCH to verify the %s descriptor failed: %s", desc.label, exc)
            desc.fetch_pending.clear()
            self._finish_verification(desc, now)
            return
        log.info(
            "verifying the %s descriptor (TP %d): fetching it back from %d HSDirs",
            desc.label,
            desc.plan.period.time_period.number,
            len(took),
        )

    def _on_content(self, event: HsDescContentEvent) -> None:
        current = self._current
        if current is None or event.hsdir is None:
            return
        label = self._label_for_blinded(event.descriptor_id)
        if label is None:
            return
        desc = current.descriptors[label]
        fp = event.hsdir.fingerprint_hex
        if desc.verification is not VerificationState.IN_PROGRESS or fp not in desc.fetch_pending:
            return
        desc.fetch_pending.discard(fp)
        desc.fetch_results[fp] = self._check_fetched(desc, fp, event.descriptor)
        self._wake.set()

    def _check_fetched(self, desc: _Descriptor, fp: str, text: str) -> HsDirFetchResult:
        if not text.strip():
            return HsDirFetchResult(fp, FetchOutcome.NOT_FOUND, detail="HSDir has no descriptor")
        now = self._clock.wall()
        try:
            decrypted = (
                parse_descriptor(text, desc.plan.blinded_key)
                .verify(now=now)
                .decrypt(self._address, now=now, descriptor_cookie=desc.built.descriptor_cookie)
            )
        except HsError as exc:
            return HsDirFetchResult(fp, FetchOutcome.UNDECODABLE, detail=str(exc)[:200])
        diff = compare_intro_points(desc.intro_points, decrypted.intro_points)
        outcome = FetchOutcome.MATCH if diff.matches else FetchOutcome.MISMATCH
        return HsDirFetchResult(
            fp,
            outcome,
            revision_counter=decrypted.revision_counter,
            missing=len(diff.missing),
            unexpected=len(diff.unexpected),
        )

    def _finish_verification(self, desc: _Descriptor, now: float) -> None:
        for fp in desc.fetch_pending:
            desc.fetch_results[fp] = HsDirFetchResult(fp, FetchOutcome.TIMEOUT)
        desc.fetch_pending.clear()
        results = list(desc.fetch_results.values())
        bad = [r for r in results if r.outcome not in (FetchOutcome.MATCH, FetchOutcome.TIMEOUT)]
        matched = sum(r.outcome is FetchOutcome.MATCH for r in results)
        if bad:
            desc.verification = VerificationState.MISMATCH
            self._schedule.verification_failed()
            worst = bad[0]
            log.warning(
                "verification of the %s descriptor FAILED at %d of %d HSDirs (e.g. $%s: %s%s); "
                "republishing",
                desc.label,
                len(bad),
                len(results),
                worst.hsdir_fingerprint,
                worst.outcome.value,
                f", {worst.missing} missing / {worst.unexpected} unexpected intro points"
                if worst.outcome is FetchOutcome.MISMATCH
                else "",
            )
        elif matched == len(results) and results:
            desc.verification = VerificationState.VERIFIED
            desc.verified_at = now
            log.info(
                "%s descriptor verified: %d/%d HSDirs serve our %d intro points",
                desc.label,
                matched,
                len(results),
                len(desc.intro_points),
            )
        else:
            desc.verification = VerificationState.INCOMPLETE
            desc.verify_again_at = now + self.settings.verify_retry_s
            log.info(
                "verification of the %s descriptor incomplete: %d/%d HSDirs answered; "
                "checking again in %.0f s",
                desc.label,
                matched,
                len(results),
                self.settings.verify_retry_s,
            )

    # ------------------------------------------------------------------ waiting + status

    async def _sleep_until_next(self) -> None:
        now = self._clock.monotonic()
        timeout = self.settings.tick_s
        current = self._current
        if current is not None:
            deadlines = [current.round.next_deadline()]
            deadlines += [
                d.verify_deadline
                for d in current.descriptors.values()
                if d.verification is VerificationState.IN_PROGRESS
            ]
            for deadline in deadlines:
                if deadline is not None:
                    timeout = min(timeout, max(0.0, deadline - now))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        self._wake.clear()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _record(self, pub: _Publish) -> PublishRecord:
        descriptors = []
        results = pub.round.results()
        for desc in pub.descriptors.values():
            uploads = tuple(u for u in results if u.descriptor == desc.label)
            period = desc.plan.period
            descriptors.append(
                DescriptorStatus(
                    label=desc.label,
                    time_period=period.time_period.number,
                    time_period_length_min=period.time_period.length_min,
                    srv_is_disaster=period.srv_is_disaster,
                    blinded_key_b64=desc.plan.blinded_key.b64(),
                    revision_counter=desc.built.revision_counter,
                    size_bytes=desc.built.size_bytes,
                    intro_point_count=desc.built.intro_point_count,
                    hsdirs=desc.plan.hsdirs,
                    uploads=uploads,
                    uploaded_count=sum(u.state is UploadState.UPLOADED for u in uploads),
                    first_uploaded_at_mono=desc.first_uploaded_at,
                    all_uploaded_at_mono=desc.all_uploaded_at,
                    verification=desc.verification,
                    verification_results=tuple(desc.fetch_results.values()),
                    verified_at_mono=desc.verified_at,
                )
            )
        return PublishRecord(
            number=pub.number,
            reasons=pub.reasons,
            published_at_wall=pub.wall,
            published_at_mono=pub.mono,
            per_node={k: v for k, v in pub.selection.per_node.items() if v > 0},
            intro_point_auth_keys_b64=frozenset(_b64(ip.auth_key) for ip in pub.selection.chosen),
            descriptors=tuple(descriptors),
        )
