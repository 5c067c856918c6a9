"""Pure planning of one publish: time periods, blinded keys, responsible HSDirs, flow control,
revision counters, and the comparison used by verification.

Everything here is a function of a consensus view (tor's microdesc consensus joined with
``md/all``, :class:`onionfleet.tor.consensus.ConsensusView`), the master public key and values the
caller passes; no I/O, no clock. The adapter (:mod:`onionfleet.publish.publisher`) reads tor and
carries the plan out.

Sources: rend-spec-v3 [TIME-PERIODS], [SERVICEUPLOAD], [CLIENTFETCH], [HASHRING]; tor
``hs_service.c`` (``build_descriptors_for_new_service``, ``set_descriptor_revision_counter``),
``hs_common.c`` (``hs_get_responsible_hsdirs``), ``hs_client.c``
(``directory_launch_v3_desc_fetch``: HSFETCH always asks for the *current* TP's blinded key).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from onionfleet.hs.blinding import blind_public_key
from onionfleet.hs.descriptor import FlowControl
from onionfleet.hs.hashring import HsDirRelay, hsdir_params, responsible_hsdirs
from onionfleet.hs.intro_point import LS_ED25519_ID, LS_LEGACY_ID, IntroPoint
from onionfleet.hs.keys import BlindedPublicKey, HsIdPublicKey
from onionfleet.hs.params import HS_DESC_MAX_LEN
from onionfleet.hs.timeperiod import (
    DescriptorPeriod,
    DescriptorSlot,
    TimePeriod,
    TimePeriodRules,
    descriptor_periods,
    in_period_between_tp_and_srv,
    srv_run_start,
    time_period_at,
    time_period_rules,
)
from onionfleet.tor.consensus import ConsensusView

__all__ = [
    "DescriptorPlan",
    "IntroPointDiff",
    "candidate_time_periods",
    "compare_intro_points",
    "fetchable_slot",
    "intro_point_relay",
    "intro_point_set_digest",
    "max_descriptor_size",
    "merged_flow_control",
    "next_revision_counter",
    "plan_descriptors",
    "seconds_until_srv_rotation",
    "time_period_rules_for",
]

#: consensus param for the HSDirs' descriptor size limit (tor ``hs_cache_get_max_descriptor_size``)
MAX_DESCRIPTOR_SIZE_PARAM = "HSV3MaxDescriptorSize"


def time_period_rules_for(view: ConsensusView, *, testing_tor_network: bool) -> TimePeriodRules:
    """The TP rules of the network this consensus belongs to (tor ``get_time_period_length``).

    The voting interval is ``fresh-until − valid-after``; ``testing_tor_network`` is tor's
    ``TestingTorNetwork`` option (GETCONF), which makes the TP one SRV protocol run long; the
    ``hsdir_interval`` consensus param applies otherwise.
    """
    return time_period_rules(
        view.voting_interval_s,
        testing_tor_network=testing_tor_network,
        hsdir_interval_min=view.params.get("hsdir_interval"),
    )


def candidate_time_periods(valid_after: int, rules: TimePeriodRules) -> tuple[TimePeriod, ...]:
    """TPs a node's current descriptor may belong to: the consensus TP, then TP−1, TP+1.

    ``desc_current`` is TP−1 between a TP start and the next SRV (ob-selfmaster note, phase A), TP
    otherwise; TP+1 covers a node whose consensus is one period ahead of ours.
    """
    tp = time_period_at(valid_after, rules)
    out = [tp, tp.previous(), tp.next()] if tp.number > 0 else [tp, tp.next()]
    return tuple(out)


def max_descriptor_size(view: ConsensusView) -> int:
    """``HSV3MaxDescriptorSize`` from the consensus (default 50,000; tor rejects ``>=``)."""
    return view.param(MAX_DESCRIPTOR_SIZE_PARAM, HS_DESC_MAX_LEN)


@dataclass(frozen=True, slots=True)
class DescriptorPlan:
    """One of the two descriptors to publish: its TP/SRV, blinded key and HSDirs (tor's order)."""

    period: DescriptorPeriod
    blinded_key: BlindedPublicKey
    hsdirs: tuple[str, ...]

    @property
    def which(self) -> DescriptorSlot:
        return self.period.which

    @property
    def label(self) -> str:
        return self.period.which.value


def plan_descriptors(
    view: ConsensusView, master_public_key: HsIdPublicKey, rules: TimePeriodRules
) -> tuple[DescriptorPlan, DescriptorPlan]:
    """The first and second descriptor for ``view`` ([SERVICEUPLOAD]) with their HSDir sets.

    The ring is every relay with the HSDir flag and an ed25519 id (tor ``node_has_hsdir_index``);
    ``hsdir_n_replicas``/``hsdir_spread_store`` come from the consensus params.
    Raises :class:`~onionfleet.hs.hashring.HashRingError` when the consensus has no usable HSDir.
    """
    srv_current = view.srv_current.value if view.srv_current is not None else None
    srv_previous = view.srv_previous.value if view.srv_previous is not None else None
    periods = descriptor_periods(view.valid_after, rules, srv_current, srv_previous)
    relays = [HsDirRelay(fp, ed) for fp, ed in view.hsdirs()]
    n_replicas, spread_store = hsdir_params(view.params)
    plans = []
    for period in periods:
        blinded = blind_public_key(master_public_key, period.time_period)
        ring = responsible_hsdirs(
            relays,
            blinded,
            period.time_period,
            period.srv,
            n_replicas=n_replicas,
            spread_store=spread_store,
        )
        plans.append(DescriptorPlan(period, blinded, tuple(r.fingerprint_hex for r in ring)))
    return plans[0], plans[1]


def fetchable_slot(valid_after: int, rules: TimePeriodRules) -> DescriptorSlot:
    """The descriptor clients (and tor's HSFETCH) ask for now ([CLIENTFETCH]).

    HSFETCH builds the blinded key of the *current* TP only (tor ``hs_client.c:
    directory_launch_v3_desc_fetch``), so only this descriptor can be fetched back right now;
    the other one becomes fetchable when its TP starts.
    """
    if in_period_between_tp_and_srv(valid_after, rules):
        return DescriptorSlot.SECOND
    return DescriptorSlot.FIRST


def seconds_until_srv_rotation(valid_after: int, rules: TimePeriodRules, now: float) -> float:
    """Seconds from ``now`` until the next SRV protocol run starts (tor rotates its descriptors
    then and closes the old ``desc_current`` intro points: ``hs_service.c:
    rotate_service_descriptors``). Negative when ``now`` is already past it."""
    return srv_run_start(valid_after, rules) + rules.srv_run_s - now


def merged_flow_control(lines: Iterable[FlowControl | None]) -> FlowControl | None:
    """The ``flow-control`` line for a merged descriptor: the nodes' line when they all agree.

    Clients negotiate congestion control with whichever node answers an introduction
    (``hs_desc_supports_congestion_control``), so a line is copied only when every contributing
    node advertises exactly it; otherwise (or with no nodes) none is written.
    """
    distinct = set(lines)
    if len(distinct) != 1:
        return None
    return next(iter(distinct))


def next_revision_counter(ope_value: int, last_published: int | None) -> int:
    """tor's OPE value for now, or one more than the last counter we used for this blinded key.

    HSDirs keep a descriptor only if its counter is strictly higher (``hs_cache.c:
    cache_store_v3_as_dir``); two publishes in the same second would get the same OPE value.
    ``last + 1`` never passes the next second's OPE value (each OPE step adds at least 1).
    """
    if last_published is None or ope_value > last_published:
        return ope_value
    return last_published + 1


def intro_point_relay(ip: IntroPoint) -> bytes:
    """The relay an intro point is on, as clients match it: its legacy (RSA) identity digest.

    A client takes the first intro point of the descriptor whose legacy id equals the relay its
    intro circuit reached (tor ``hs_client.c:find_desc_intro_point_by_legacy_id``). Falls back to
    the ed25519 id, then to the whole link specifier list.
    """
    for ls_type in (LS_LEGACY_ID, LS_ED25519_ID):
        for spec in ip.link_specifiers:
            if spec.ls_type == ls_type:
                return bytes([ls_type]) + spec.body
    return b"".join(bytes([s.ls_type, len(s.body)]) + s.body for s in ip.link_specifiers)


def intro_point_set_digest(auth_keys: Iterable[bytes]) -> str:
    """A short, order-free digest of a set of intro points (by auth key) for logs and status."""
    h = hashlib.sha3_256()
    for key in sorted(set(auth_keys)):
        h.update(key)
    return h.hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class IntroPointDiff:
    """Intro points (by auth key) missing from, and unexpected in, a fetched descriptor."""

    missing: frozenset[bytes]
    unexpected: frozenset[bytes]

    @property
    def matches(self) -> bool:
        return not self.missing and not self.unexpected


def compare_intro_points(
    published: Sequence[IntroPoint], fetched: Sequence[IntroPoint]
) -> IntroPointDiff:
    """Compare intro point sets by auth key (the key clients name an intro point by; certs differ
    between descriptors by design)."""
    want = {ip.auth_key for ip in published}
    got = {ip.auth_key for ip in fetched}
    return IntroPointDiff(frozenset(want - got), frozenset(got - want))
