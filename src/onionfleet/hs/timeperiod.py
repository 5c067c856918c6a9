"""Time periods, SRV protocol runs and which (TP, SRV) each descriptor uses, as tor computes them.

Sources: rend-spec-v3 [TIME-PERIODS], [SERVICEUPLOAD], [CLIENTFETCH], [HASHRING] ("disaster" SRV);
tor ``hs_common.c`` (``get_time_period_length``, ``hs_get_time_period_num``,
``hs_get_start_time_of_next_time_period``, ``hs_in_period_between_tp_and_srv``,
``hs_get_current_srv``/``hs_get_previous_srv``, ``compute_disaster_srv``), ``nodelist.c``
(``node_set_hsdir_index``) and ``shared_random_client.c`` (``sr_state_get_*``).

A time period is ``number`` periods of ``length_min`` minutes since the epoch, shifted by the
rotation offset (the SRV phase duration: 12 voting intervals, 720 min on the real network).
Blinding and the hash ring use both the number *and* the length, so they travel together.

Every function takes time as an argument (the consensus ``valid-after`` for everything that tor
derives from the consensus): nothing here reads a clock. The timeline on the real network::

    00:00      12:00       00:00       12:00       00:00       12:00
    SRV#1      TP#1        SRV#2       TP#2        SRV#3       TP#3
     $==========|-----------$===========|-----------$===========|
                 ^^^^^^^^^^^            ^^^^^^^^^^^
                 "between TP and SRV" (hs_in_period_between_tp_and_srv() is true)

In a TestingTorNetwork the same picture is compressed: the TP length is one SRV protocol run
(24 voting intervals) and the offset half of it (10 s voting: TP = 4 min, offset 2 min).
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

from onionfleet.hs import params
from onionfleet.hs.errors import HsError

__all__ = [
    "DescriptorPeriod",
    "DescriptorSlot",
    "TimePeriod",
    "TimePeriodError",
    "TimePeriodRules",
    "descriptor_periods",
    "disaster_srv",
    "fetch_period",
    "in_period_between_tp_and_srv",
    "previous_srv_run_start",
    "srv_run_start",
    "start_of_next_time_period",
    "time_period_at",
    "time_period_rules",
]


class TimePeriodError(HsError):
    """Consensus timing data (voting interval, valid-after, SRV) cannot give a time period."""


@dataclass(frozen=True, slots=True)
class TimePeriod:
    """One time period: ``number`` in units of ``length_min`` minutes ([TIME-PERIODS])."""

    number: int
    length_min: int

    def __post_init__(self) -> None:
        if self.number < 0 or self.number >= 1 << 64:
            raise ValueError(f"time period number out of range: {self.number}")
        if not 0 < self.length_min < 1 << 64:
            raise ValueError(f"time period length out of range: {self.length_min} min")

    def next(self) -> TimePeriod:
        return TimePeriod(self.number + 1, self.length_min)

    def previous(self) -> TimePeriod:
        return TimePeriod(self.number - 1, self.length_min)


@dataclass(frozen=True, slots=True)
class TimePeriodRules:
    """How a network cuts time into periods: built by :func:`time_period_rules`.

    ``length_min``: TP length (tor ``get_time_period_length``). ``rotation_offset_min``: the
    offset in whole minutes that ``hs_get_time_period_num`` subtracts
    (``sr_state_get_phase_duration() / 60``). ``voting_interval_s``: the consensus voting interval
    (``fresh-until − valid-after``), from which the SRV phase and run lengths follow.
    """

    length_min: int
    rotation_offset_min: int
    voting_interval_s: int

    def __post_init__(self) -> None:
        if self.length_min <= 0:
            raise ValueError(f"time period length must be positive: {self.length_min} min")
        if self.rotation_offset_min < 0:
            raise ValueError(f"rotation offset must not be negative: {self.rotation_offset_min}")
        if self.voting_interval_s <= 0:
            raise ValueError(f"voting interval must be positive: {self.voting_interval_s} s")

    @property
    def srv_phase_s(self) -> int:
        """SRV phase duration, seconds (``sr_state_get_phase_duration``: 12 voting intervals)."""
        return params.SR_N_ROUNDS * self.voting_interval_s

    @property
    def srv_run_s(self) -> int:
        """SRV run duration, seconds (``sr_state_get_protocol_run_duration``: 24 rounds)."""
        return params.SR_N_ROUNDS * params.SR_N_PHASES * self.voting_interval_s


def time_period_rules(
    voting_interval_s: int, *, testing_tor_network: bool, hsdir_interval_min: int | None
) -> TimePeriodRules:
    """The TP rules tor uses for a consensus with this voting interval.

    tor ``get_time_period_length``: with ``TestingTorNetwork`` the TP length is the SRV protocol
    run (24 × voting interval) in whole minutes; otherwise the ``hsdir_interval`` consensus
    parameter (``hsdir_interval_min``; ``None`` when absent → 1440), clamped to 30..14400 as
    ``networkstatus_get_param`` does. The rotation offset is always the SRV phase (12 × voting
    interval; ``sr_state_get_phase_duration``), in whole minutes as ``hs_get_time_period_num`` uses
    it.
    """
    if voting_interval_s <= 0:
        raise TimePeriodError(
            f"voting interval {voting_interval_s} s is not positive; "
            "pass fresh-until minus valid-after of a live consensus"
        )
    phase_s = params.SR_N_ROUNDS * voting_interval_s
    if testing_tor_network:
        length_min = params.SR_N_ROUNDS * params.SR_N_PHASES * voting_interval_s // 60
        if length_min <= 0:
            raise TimePeriodError(
                f"voting interval {voting_interval_s} s makes an SRV run shorter than a minute; "
                "tor needs an SRV run of more than 60 s (TestingV3AuthVotingInterval >= 3 s)"
            )
    else:
        raw = hsdir_interval_min
        if raw is None:
            raw = params.HS_TIME_PERIOD_LENGTH_DEFAULT_MIN
        length_min = min(
            max(raw, params.HS_TIME_PERIOD_LENGTH_MIN_MIN), params.HS_TIME_PERIOD_LENGTH_MAX_MIN
        )
    return TimePeriodRules(
        length_min=length_min,
        rotation_offset_min=phase_s // 60,
        voting_interval_s=voting_interval_s,
    )


def time_period_at(unix_s: int, rules: TimePeriodRules) -> TimePeriod:
    """The TP containing ``unix_s`` (tor ``hs_get_time_period_num``; rend-spec-v3 [TIME-PERIODS]).

    ``tp = (unix_s // 60 − rotation_offset_min) // length_min``. Pass the consensus valid-after,
    as tor does. Spec vector: 2016-04-13 11:15:01 UTC on the real network → 16903.
    """
    minutes = unix_s // 60
    if minutes <= rules.rotation_offset_min:
        raise TimePeriodError(
            f"time {unix_s} is before the first time period; pass a consensus valid-after"
        )
    return TimePeriod((minutes - rules.rotation_offset_min) // rules.length_min, rules.length_min)


def start_of_next_time_period(unix_s: int, rules: TimePeriodRules) -> int:
    """Unix time at which the TP after the one containing ``unix_s`` starts.

    tor ``hs_get_start_time_of_next_time_period``: ``(tp + 1) · length · 60 + phase_s`` (note: the
    offset is added in seconds here, but subtracted in whole minutes by ``hs_get_time_period_num``).
    """
    nxt = time_period_at(unix_s, rules).number + 1
    return nxt * rules.length_min * 60 + rules.srv_phase_s


def srv_run_start(valid_after: int, rules: TimePeriodRules) -> int:
    """Start of the SRV protocol run that ``valid_after`` is in.

    tor ``sr_state_get_start_time_of_current_protocol_run``:
    ``valid_after − slot · voting_interval`` where ``slot = (valid_after // voting_interval) % 24``.
    Real network: 00:00 UTC.
    """
    vi = rules.voting_interval_s
    slot = (valid_after // vi) % (params.SR_N_ROUNDS * params.SR_N_PHASES)
    return valid_after - slot * vi


def previous_srv_run_start(valid_after: int, rules: TimePeriodRules) -> int:
    """Start of the SRV run before the current one.

    tor ``sr_state_get_start_time_of_previous_protocol_run``.
    """
    return srv_run_start(valid_after, rules) - rules.srv_run_s


def in_period_between_tp_and_srv(valid_after: int, rules: TimePeriodRules) -> bool:
    """True between a new TP and the next SRV (12:00–00:00 UTC on the real network).

    tor ``hs_in_period_between_tp_and_srv``: false iff ``srv_start <= valid_after < tp_start``
    with ``srv_start`` the current SRV run start and ``tp_start`` the start of the TP after it.
    """
    srv_start = srv_run_start(valid_after, rules)
    tp_start = start_of_next_time_period(srv_start, rules)
    return not (srv_start <= valid_after < tp_start)


def disaster_srv(period: TimePeriod) -> bytes:
    """The SRV used when the consensus has none ([HASHRING], tor ``compute_disaster_srv``).

    ``SHA3-256("shared-random-disaster" | INT_8(period_length) | INT_8(period_num))``.
    """
    return hashlib.sha3_256(
        params.HS_SRV_DISASTER_PREFIX
        + period.length_min.to_bytes(8, "big")
        + period.number.to_bytes(8, "big")
    ).digest()


class DescriptorSlot(enum.Enum):
    """Which of the two descriptors a service keeps (tor ``desc_current`` / ``desc_next``)."""

    FIRST = "first"
    SECOND = "second"


@dataclass(frozen=True, slots=True)
class DescriptorPeriod:
    """The TP and SRV one descriptor is built and stored under (rend-spec-v3 [SERVICEUPLOAD]).

    ``srv`` is the 32-byte SRV for its HSDir ring (``srv_is_disaster`` when the consensus lacked
    it and the disaster value was used). ``srv_run_start_s`` is the start of the SRV run that
    tor's revision counter counts from for this descriptor (``set_descriptor_revision_counter``:
    the previous run for the first descriptor, the current run for the second).
    """

    which: DescriptorSlot
    time_period: TimePeriod
    srv: bytes
    srv_is_disaster: bool
    srv_run_start_s: int

    def __post_init__(self) -> None:
        if len(self.srv) != params.HS_SRV_LEN:
            raise ValueError(f"an SRV is {params.HS_SRV_LEN} bytes, got {len(self.srv)}")


def _pick_srv(srv: bytes | None, period: TimePeriod, name: str) -> tuple[bytes, bool]:
    if srv is None:
        return disaster_srv(period), True
    if len(srv) != params.HS_SRV_LEN:
        raise TimePeriodError(
            f"the consensus' {name} shared random value is {len(srv)} bytes, not "
            f"{params.HS_SRV_LEN}; check the shared-rand-{name}-value line"
        )
    return bytes(srv), False


def descriptor_periods(
    valid_after: int,
    rules: TimePeriodRules,
    srv_current: bytes | None,
    srv_previous: bytes | None,
) -> tuple[DescriptorPeriod, DescriptorPeriod]:
    """The (first, second) descriptor's TP and SRV for a consensus.

    tor ``node_set_hsdir_index`` (store_first / store_second) with ``hs_get_previous_srv`` /
    ``hs_get_current_srv``, matching ``build_descriptors_for_new_service``:

    - between SRV and TP (00:00–12:00): first = TP n with the previous SRV, second = TP n+1 with
      the current SRV;
    - between TP and SRV (12:00–00:00): first = TP n−1 with the previous SRV, second = TP n with
      the current SRV.

    A missing SRV (``None``) is replaced by the disaster SRV of that descriptor's TP.
    """
    current = time_period_at(valid_after, rules)
    if in_period_between_tp_and_srv(valid_after, rules):
        first_tp, second_tp = current.previous(), current
    else:
        first_tp, second_tp = current, current.next()
    run_start = srv_run_start(valid_after, rules)
    first_srv, first_disaster = _pick_srv(srv_previous, first_tp, "previous")
    second_srv, second_disaster = _pick_srv(srv_current, second_tp, "current")
    return (
        DescriptorPeriod(
            DescriptorSlot.FIRST, first_tp, first_srv, first_disaster, run_start - rules.srv_run_s
        ),
        DescriptorPeriod(DescriptorSlot.SECOND, second_tp, second_srv, second_disaster, run_start),
    )


def fetch_period(
    valid_after: int,
    rules: TimePeriodRules,
    srv_current: bytes | None,
    srv_previous: bytes | None,
) -> DescriptorPeriod:
    """The descriptor clients fetch right now (rend-spec-v3 [CLIENTFETCH]).

    Clients always use the current TP; tor's fetch index equals the first store index between SRV
    and TP and the second store index between TP and SRV (``node_set_hsdir_index``).
    """
    first, second = descriptor_periods(valid_after, rules, srv_current, srv_previous)
    return second if in_period_between_tp_and_srv(valid_after, rules) else first
