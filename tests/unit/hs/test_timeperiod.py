"""Time periods, SRV runs and each descriptor's (TP, SRV): vectors from rend-spec-v3 and tor."""

from __future__ import annotations

import calendar
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onionfleet.hs.errors import HsError
from onionfleet.hs.timeperiod import (
    DescriptorPeriod,
    DescriptorSlot,
    TimePeriod,
    TimePeriodError,
    TimePeriodRules,
    descriptor_periods,
    disaster_srv,
    fetch_period,
    in_period_between_tp_and_srv,
    previous_srv_run_start,
    srv_run_start,
    start_of_next_time_period,
    time_period_at,
    time_period_rules,
)

VECTORS = Path(__file__).parents[2] / "vectors"

REAL = time_period_rules(3600, testing_tor_network=False, hsdir_interval_min=None)
TESTNET = time_period_rules(10, testing_tor_network=True, hsdir_interval_min=None)
SRV_CUR = b"\xcc" * 32
SRV_PREV = b"\x99" * 32


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> int:
    return calendar.timegm((y, mo, d, h, mi, s))


# --- rules ---


def test_real_network_rules() -> None:
    assert TimePeriodRules(length_min=1440, rotation_offset_min=720, voting_interval_s=3600) == REAL
    assert REAL.srv_phase_s == 12 * 3600
    assert REAL.srv_run_s == 24 * 3600


def test_testnet_rules_10s_voting() -> None:
    # DESIGN §2: 10 s voting → TP 4 min, offset 2 min.
    assert TimePeriodRules(length_min=4, rotation_offset_min=2, voting_interval_s=10) == TESTNET
    assert TESTNET.srv_run_s == 240


def test_testnet_ignores_hsdir_interval_param() -> None:
    rules = time_period_rules(20, testing_tor_network=True, hsdir_interval_min=60)
    assert rules.length_min == 8
    assert rules.rotation_offset_min == 4


@pytest.mark.parametrize(
    ("param", "expected"),
    [
        (None, 1440),
        (1440, 1440),
        (60, 60),
        (29, 30),
        (0, 30),
        (-5, 30),
        (14_400, 14_400),
        (99_999, 14_400),
    ],
)
def test_hsdir_interval_is_clamped_like_networkstatus_get_param(
    param: int | None, expected: int
) -> None:
    assert (
        time_period_rules(3600, testing_tor_network=False, hsdir_interval_min=param).length_min
        == expected
    )


@pytest.mark.parametrize("vi", [0, -10])
def test_bad_voting_interval_is_a_typed_error(vi: int) -> None:
    with pytest.raises(TimePeriodError, match="voting interval"):
        time_period_rules(vi, testing_tor_network=False, hsdir_interval_min=None)


def test_testnet_voting_interval_too_short() -> None:
    with pytest.raises(TimePeriodError, match="shorter than a minute"):
        time_period_rules(2, testing_tor_network=True, hsdir_interval_min=None)


def test_time_period_error_is_an_hs_error() -> None:
    assert issubclass(TimePeriodError, HsError)


# --- time period number (rend-spec-v3 [TIME-PERIODS], tor test_time_period) ---


def test_spec_vector_16903() -> None:
    # rend-spec-v3 [TIME-PERIODS]: 2016-04-13 11:15:01 UTC (1460546101) → 16903.
    assert time_period_at(1460546101, REAL) == TimePeriod(16903, 1440)
    assert time_period_at(utc(2016, 4, 13, 11), REAL) == TimePeriod(16903, 1440)


def test_tor_test_time_period() -> None:
    t = utc(2016, 4, 13, 11)
    assert time_period_at(t + 3599, REAL).number == 16903
    assert start_of_next_time_period(t + 3599, REAL) == utc(2016, 4, 13, 12)
    assert time_period_at(t + 3600, REAL).number == 16904
    assert start_of_next_time_period(t + 3600, REAL) == utc(2016, 4, 14, 12)


def test_tor_test_start_time_of_next_time_period_testnet() -> None:
    # tor test_start_time_of_next_time_period with TestingTorNetwork and 10 s voting.
    assert start_of_next_time_period(utc(2016, 4, 13, 0, 0), TESTNET) == utc(2016, 4, 13, 0, 2)
    assert start_of_next_time_period(utc(2016, 4, 13, 0, 2), TESTNET) == utc(2016, 4, 13, 0, 6)


def test_testnet_formula_minutes_minus_2_div_4() -> None:
    for t in range(utc(2026, 11, 22, 11), utc(2026, 11, 22, 12), 7):
        assert time_period_at(t, TESTNET).number == (t // 60 - 2) // 4
        assert time_period_at(t, TESTNET).length_min == 4


@given(st.integers(min_value=10**6, max_value=2**40), st.sampled_from([REAL, TESTNET]))
def test_next_tp_start_is_in_next_tp(t: int, rules: TimePeriodRules) -> None:
    nxt = start_of_next_time_period(t, rules)
    assert nxt > t
    assert time_period_at(nxt, rules).number == time_period_at(t, rules).number + 1
    assert time_period_at(nxt - 1, rules).number == time_period_at(t, rules).number


def test_time_before_epoch_offset_is_refused() -> None:
    with pytest.raises(TimePeriodError):
        time_period_at(60, REAL)


# --- SRV runs and the two halves ---


def test_srv_run_start_real_network_is_midnight() -> None:
    for h in range(24):
        assert srv_run_start(utc(2026, 11, 22, h), REAL) == utc(2026, 11, 22)
    assert previous_srv_run_start(utc(2026, 11, 22, 5), REAL) == utc(2026, 11, 21)


def test_srv_run_start_testnet() -> None:
    va = utc(2026, 11, 22, 11, 33, 10)
    start = srv_run_start(va, TESTNET)
    assert start % 240 == 0
    assert start <= va < start + 240
    assert previous_srv_run_start(va, TESTNET) == start - 240


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        # tor test_time_between_tp_and_srv
        (utc(1985, 10, 26, 0), False),
        (utc(1985, 10, 26, 11), False),
        (utc(1985, 10, 26, 12), True),
        (utc(1985, 10, 26, 23), True),
        (utc(1985, 10, 27, 0), False),
    ],
)
def test_tor_test_time_between_tp_and_srv(when: int, expected: bool) -> None:
    assert in_period_between_tp_and_srv(when, REAL) is expected


def test_testnet_halves() -> None:
    start = utc(2026, 11, 22, 12, 0)  # 12:00:00 is a multiple of 240 s
    assert srv_run_start(start, TESTNET) == start
    for dt in range(0, 240, 10):
        assert in_period_between_tp_and_srv(start + dt, TESTNET) is (dt >= 120)


# --- which TP and SRV for each descriptor ---


def test_descriptor_periods_between_srv_and_tp() -> None:
    va = utc(2016, 4, 13, 11)  # TP 16903, before the 12:00 TP start
    first, second = descriptor_periods(va, REAL, SRV_CUR, SRV_PREV)
    assert first == DescriptorPeriod(
        DescriptorSlot.FIRST, TimePeriod(16903, 1440), SRV_PREV, False, utc(2016, 4, 12)
    )
    assert second == DescriptorPeriod(
        DescriptorSlot.SECOND, TimePeriod(16904, 1440), SRV_CUR, False, utc(2016, 4, 13)
    )
    assert fetch_period(va, REAL, SRV_CUR, SRV_PREV) == first


def test_descriptor_periods_between_tp_and_srv() -> None:
    va = utc(2016, 4, 13, 13)  # TP 16904 started at 12:00
    first, second = descriptor_periods(va, REAL, SRV_CUR, SRV_PREV)
    assert (first.time_period.number, first.srv) == (16903, SRV_PREV)
    assert (second.time_period.number, second.srv) == (16904, SRV_CUR)
    assert first.srv_run_start_s == utc(2016, 4, 12)
    assert second.srv_run_start_s == utc(2016, 4, 13)
    assert fetch_period(va, REAL, SRV_CUR, SRV_PREV) == second


@given(
    st.integers(min_value=utc(2000, 1, 1), max_value=utc(2100, 1, 1)),
    st.sampled_from([REAL, TESTNET]),
)
def test_descriptor_periods_invariants(va: int, rules: TimePeriodRules) -> None:
    first, second = descriptor_periods(va, rules, SRV_CUR, SRV_PREV)
    current = time_period_at(va, rules)
    assert second.time_period.number == first.time_period.number + 1
    assert current in (first.time_period, second.time_period)
    assert (first.srv, second.srv) == (SRV_PREV, SRV_CUR)
    assert second.srv_run_start_s - first.srv_run_start_s == rules.srv_run_s
    assert second.srv_run_start_s <= va < second.srv_run_start_s + rules.srv_run_s
    # The client fetches the descriptor of the current TP ([CLIENTFETCH]).
    assert fetch_period(va, rules, SRV_CUR, SRV_PREV).time_period == current


def test_disaster_srv_vector_from_tor() -> None:
    data = json.loads((VECTORS / "ring_tor_indexes.json").read_text())["disaster_srv"]
    tp = TimePeriod(data["period_num"], data["period_length"])
    assert disaster_srv(tp).hex().upper() == data["expected_hex"]
    expected = hashlib.sha3_256(
        b"shared-random-disaster" + (1440).to_bytes(8, "big") + (1).to_bytes(8, "big")
    ).digest()
    assert disaster_srv(tp) == expected


def test_missing_srvs_fall_back_to_disaster_per_descriptor_tp() -> None:
    va = utc(2016, 4, 13, 11)
    first, second = descriptor_periods(va, REAL, None, None)
    assert first.srv_is_disaster and second.srv_is_disaster
    assert first.srv == disaster_srv(TimePeriod(16903, 1440))
    assert second.srv == disaster_srv(TimePeriod(16904, 1440))
    only_prev_missing = descriptor_periods(va, REAL, SRV_CUR, None)
    assert only_prev_missing[0].srv_is_disaster
    assert not only_prev_missing[1].srv_is_disaster


def test_bad_srv_length_is_a_typed_error() -> None:
    with pytest.raises(TimePeriodError, match="31 bytes"):
        descriptor_periods(utc(2016, 4, 13, 11), REAL, b"x" * 31, SRV_PREV)


def test_time_period_value_checks() -> None:
    with pytest.raises(ValueError):
        TimePeriod(-1, 1440)
    with pytest.raises(ValueError):
        TimePeriod(1, 0)
    assert TimePeriod(5, 4).next() == TimePeriod(6, 4)
    assert TimePeriod(5, 4).previous() == TimePeriod(4, 4)
