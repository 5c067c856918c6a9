"""The quiescing decision (node/quiesce.py): closes intro circuits, waits for quiet, bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from onionfleet.node.quiesce import Quiesce, QuiesceObservation, observe_service_circuits
from onionfleet.tor.circuits import CircuitInfo, parse_circuit_status

DATA = Path(__file__).parent.parent / "tor" / "data"
ADDR = "p5zfmow262ugkqwm6resvs3itocpflb66vd2kkxkfyxqp7c7oeck52ad"


def obs(
    now: float,
    intro: tuple[str, ...] = (),
    established: int = 0,
    pending: int = 0,
    streams: int = 0,
    accepted: int = 0,
) -> QuiesceObservation:
    return QuiesceObservation(now, intro, established, pending, streams, accepted)


def circ(cid: str, purpose: str, state: str | None, query: str | None, status: str = "BUILT"):
    return CircuitInfo(cid, status, (), purpose, state, query)


def test_observe_real_capture_counts_only_our_service() -> None:
    circuits = parse_circuit_status((DATA / "testnet-circuit-status-service.txt").read_text())
    intro, established, pending = observe_service_circuits(circuits, ADDR)
    assert len(intro) == 6 and established == 6
    assert pending == 0  # the three rendezvous circuits are HSSR_JOINED
    assert observe_service_circuits(circuits, "someoneelse") == ((), 0, 0)


def test_observe_pending_rendezvous_and_closed_circuits() -> None:
    circuits = [
        circ("1", "HS_SERVICE_INTRO", "HSSI_CONNECTING", ADDR, "EXTENDED"),
        circ("2", "HS_SERVICE_INTRO", "HSSI_ESTABLISHED", ADDR, "CLOSED"),
        circ("3", "HS_SERVICE_REND", "HSSR_CONNECTING", ADDR, "LAUNCHED"),
        circ("4", "HS_SERVICE_REND", "HSSR_JOINED", ADDR),
        circ("5", "HS_SERVICE_INTRO", "HSSI_ESTABLISHED", "other"),
    ]
    assert observe_service_circuits(circuits, ADDR) == (("1",), 0, 1)


def test_closes_every_intro_circuit_and_ends_after_quiet() -> None:
    q = Quiesce(started=100.0, quiet_s=3.0, timeout_s=60.0)
    step = q.step(obs(100.0, ("5", "7"), established=2))
    assert step.close == ("5", "7") and not step.done
    # tor relaunches to the same intro point: closed again, and it counts as activity
    step = q.step(obs(101.0, ("9",), established=1))
    assert step.close == ("9",) and not step.done
    assert not q.step(obs(103.9)).done  # 2.9 s since the last established intro circuit
    step = q.step(obs(104.0))
    assert step.done and "quiet for 3 s" in step.reason
    assert q.closed_total == 3


def test_rendezvous_under_way_and_streams_keep_it_open() -> None:
    q = Quiesce(started=0.0, quiet_s=3.0, timeout_s=60.0)
    assert not q.step(obs(0.0, accepted=10)).done
    assert not q.step(obs(2.0, pending=1, accepted=10)).done  # a client's rendezvous
    assert not q.step(obs(4.0, streams=1, accepted=11)).done  # its stream, served
    assert not q.step(obs(6.9, accepted=11)).done
    step = q.step(obs(7.0, accepted=11))
    assert step.done
    assert q.served_while_quiescing == 1


def test_a_stream_that_came_and_went_between_polls_still_counts() -> None:
    q = Quiesce(started=0.0, quiet_s=3.0, timeout_s=60.0)
    q.step(obs(0.0, accepted=4))
    assert not q.step(obs(2.9, accepted=5)).done
    assert not q.step(obs(5.8, accepted=5)).done
    assert q.step(obs(5.9, accepted=5)).done


def test_connecting_intro_circuits_do_not_hold_it_open_but_are_closed() -> None:
    q = Quiesce(started=0.0, quiet_s=1.0, timeout_s=60.0)
    q.step(obs(0.0))
    step = q.step(obs(1.5, ("12",), established=0))
    assert step.done and step.close == ("12",)


def test_bounded_by_the_timeout() -> None:
    q = Quiesce(started=0.0, quiet_s=3.0, timeout_s=10.0)
    for t in range(10):
        assert not q.step(obs(float(t), streams=2)).done
    step = q.step(obs(10.0, ("4",), established=1, streams=2, pending=1))
    assert step.done and step.close == ("4",)
    assert step.reason == "not quiet within 10 s (2 streams open, 1 rendezvous pending)"


def test_settings_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Quiesce(started=0.0, quiet_s=0.0, timeout_s=1.0)
