from __future__ import annotations

import pytest

from onionfleet.node.errors import NodeConfigError
from onionfleet.node.health import (
    HealthBoard,
    HealthState,
    ProbeResult,
    ProbeSpec,
    TargetHealth,
    node_verdict,
)

U, H, D = HealthState.UNKNOWN, HealthState.HEALTHY, HealthState.UNHEALTHY


def res(ok: bool, t: float = 0.0, target: str = "t") -> ProbeResult:
    return ProbeResult(target, ok, "HTTP 200" if ok else "connect failed: refused", t)


def run(machine: TargetHealth, outcomes: str) -> list[HealthState]:
    """Feed '+'/'-' outcomes; return the state after each."""
    states = []
    for i, c in enumerate(outcomes):
        machine.observe(res(c == "+", float(i)))
        states.append(machine.state)
    return states


def test_first_success_makes_unknown_healthy() -> None:
    m = TargetHealth("t", rise=2, fall=3)
    change = m.observe(res(True, 5.0))
    assert change is not None
    assert (change.old, change.new, change.at_s) == (U, H, 5.0)


def test_unknown_goes_unhealthy_after_fall_failures() -> None:
    assert run(TargetHealth("t", rise=2, fall=3), "---") == [U, U, D]


def test_fall_then_rise() -> None:
    m = TargetHealth("t", rise=2, fall=3)
    assert run(m, "+--+---++") == [H, H, H, H, H, H, D, D, H]


def test_flapping_does_not_change_state() -> None:
    m = TargetHealth("t", rise=2, fall=2)
    assert run(m, "+-+-+-") == [H] * 6
    m = TargetHealth("t", rise=2, fall=2)
    assert run(m, "--+-+-") == [U, D, D, D, D, D]


def test_change_events_only_on_transitions() -> None:
    m = TargetHealth("t", rise=1, fall=1)
    events = [m.observe(res(ok)) for ok in (True, True, False, False, True)]
    kinds = [(e.old, e.new) if e else None for e in events]
    assert kinds == [(U, H), None, (H, D), None, (D, H)]
    assert events[2] is not None
    assert events[2].reason == "connect failed: refused"


def test_board() -> None:
    board = HealthBoard(["a", "b"], rise=1, fall=1)
    assert board.healthy_count == 0
    assert board.observe(res(True, target="a")) is not None
    assert board.healthy_count == 1
    assert board.states() == {"a": H, "b": U}
    last = board.last_result("a")
    assert last is not None
    assert last.ok
    with pytest.raises(KeyError):
        board.observe(res(True, target="zzz"))
    with pytest.raises(NodeConfigError, match="distinct"):
        HealthBoard(["a", "a"], rise=1, fall=1)


def test_verdict() -> None:
    ok = node_verdict(tor_bootstrapped=True, intro_points_established=3, healthy_targets=1)
    assert ok.serving
    assert "3 intro point" in ok.reason
    bad = node_verdict(tor_bootstrapped=False, intro_points_established=0, healthy_targets=0)
    assert not bad.serving
    assert bad.reason == (
        "not serving: tor is not bootstrapped; no intro point established; no healthy target"
    )
    only_targets = node_verdict(
        tor_bootstrapped=True, intro_points_established=2, healthy_targets=0
    )
    assert not only_targets.serving
    assert only_targets.reason == "not serving: no healthy target"


def test_probe_spec_validation() -> None:
    spec = ProbeSpec(body_regex=r"hello \w+")
    assert spec.body_matches(b"<p>hello world</p>")
    assert not spec.body_matches(b"bye")
    assert ProbeSpec().body_matches(b"anything")
    with pytest.raises(NodeConfigError, match="path"):
        ProbeSpec(path="no-slash")
    with pytest.raises(NodeConfigError, match="path"):
        ProbeSpec(path="/a b")
    with pytest.raises(NodeConfigError, match="regular expression"):
        ProbeSpec(body_regex="(")
    with pytest.raises(NodeConfigError, match="expected_statuses"):
        ProbeSpec(expected_statuses=frozenset())
    with pytest.raises(NodeConfigError, match="interval_s"):
        ProbeSpec(interval_s=0)
    with pytest.raises(NodeConfigError, match="rise"):
        ProbeSpec(rise=0)
    assert ProbeSpec(body_regex="x") == ProbeSpec(body_regex="x")
