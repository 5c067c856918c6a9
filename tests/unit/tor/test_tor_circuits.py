"""circuit-status parsing (control-spec §3.9 / §4.1.1) on a real capture and on edge cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from onionfleet.tor.circuits import parse_circuit_status
from onionfleet.tor.errors import RemoteProtocolError

DATA = Path(__file__).parent / "data"
SERVICE = "p5zfmow262ugkqwm6resvs3itocpflb66vd2kkxkfyxqp7c7oeck52ad"


def test_real_service_capture() -> None:
    circuits = parse_circuit_status((DATA / "testnet-circuit-status-service.txt").read_text())
    assert len(circuits) == 31
    by_purpose: dict[str | None, int] = {}
    for circ in circuits:
        by_purpose[circ.purpose] = by_purpose.get(circ.purpose, 0) + 1
    assert by_purpose["HS_SERVICE_INTRO"] == 6
    assert by_purpose["HS_SERVICE_REND"] == 3
    intro = [c for c in circuits if c.purpose == "HS_SERVICE_INTRO"]
    assert {c.hs_state for c in intro} == {"HSSI_ESTABLISHED"}
    assert {c.rend_query for c in intro} == {SERVICE}
    first = circuits[0]
    assert first.circuit_id == "1"
    assert first.status == "BUILT"
    assert len(first.path) == 1 and len(first.path[0]) == 40
    assert first.purpose == "GENERAL"
    assert first.hs_state is None and first.rend_query is None
    assert all(len(c.path) == 4 for c in intro)
    hsdir = [c for c in circuits if c.purpose == "HS_SERVICE_HSDIR"]
    assert hsdir and all(c.rend_query is None for c in hsdir)


def test_empty_and_pathless_and_unknown_fields() -> None:
    assert parse_circuit_status("") == ()
    (circ,) = parse_circuit_status(
        '7 LAUNCHED BUILD_FLAGS=NEED_CAPACITY PURPOSE=HS_SERVICE_REND HS_STATE=HSSR_CONNECTING '
        'REND_QUERY=abc SOCKS_USERNAME="a b" NEW_FIELD=x\n'
    )
    assert circ.path == ()
    assert (circ.purpose, circ.hs_state, circ.rend_query) == (
        "HS_SERVICE_REND",
        "HSSR_CONNECTING",
        "abc",
    )
    (named,) = parse_circuit_status("9 EXTENDED $" + "ab" * 20 + "=relay1 PURPOSE=GENERAL")
    assert named.path == ("AB" * 20,)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("7", "lacks an id and a status"),
        ("PURPOSE=X BUILT", "lacks an id and a status"),
        ("7 built", "bad status"),
        ("7! BUILT", "bad circuit id"),
        ("7 BUILT $XYZ~relay", "bad path hop"),
        ("7 BUILT $" + "a" * 40 + ",nonsense", "bad path hop"),
        ('7 BUILT PURPOSE="unterminated', "unterminated"),
    ],
)
def test_malformed_lines_get_specific_errors(text: str, words: str) -> None:
    with pytest.raises(RemoteProtocolError, match=words):
        parse_circuit_status(text)
