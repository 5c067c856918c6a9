"""The tracer's event parser on events a real client tor sent (tor 0.4.9.11, private network).

data/client-events-one-fetch.txt: every CIRC, CIRC_MINOR and STREAM event naming one fetch's
SOCKS username, as the e2e client tor sent them (recorded with a raw control connection,
``SETEVENTS CIRC STREAM CIRC_MINOR``), ``650 `` prefix included.
"""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from onionfleet.testnet._trace_events import (
    TraceEvent,
    parse_trace_event,
    trace_event_from_hs_desc,
    trace_event_from_json,
)
from onionfleet.testnet.explain import circuit_stories
from onionfleet.tor.codec import ControlCodec
from onionfleet.tor.events import HsDescEvent

DATA = Path(__file__).parent / "data"


def _recorded() -> list[TraceEvent]:
    events = []
    for i, line in enumerate((DATA / "client-events-one-fetch.txt").read_text().splitlines()):
        event = parse_trace_event(line.removeprefix("650 "), source="client", wall=float(i))
        assert event is not None, line
        events.append(event)
    return events


def test_recorded_events_parse_with_their_fields() -> None:
    events = _recorded()
    assert len(events) == 37
    assert {e.keyword for e in events} == {"CIRC", "CIRC_MINOR", "STREAM"}
    assert all(e.get("SOCKS_USERNAME") == "fetch-2348-322" for e in events)
    first_stream = next(e for e in events if e.keyword == "STREAM")
    assert first_stream.status == "NEW" and first_stream.circuit == "0"
    assert first_stream.target == (
        "ctr64zov34ciqbwgo3xtbdiexxlkfrkrobnno3onfwc2mb675ar5cdqd.onion:80"
    )
    assert first_stream.get("SOURCE_ADDR") == "127.0.0.1:43036"
    closed = [e for e in events if e.keyword == "STREAM" and e.status == "CLOSED"]
    assert closed and closed[-1].get("REMOTE_REASON") == "DONE"
    hop_names = {h for e in events for h in e.path}
    assert "relay5" in hop_names and all("$" not in h for h in hop_names)


def test_recorded_fetch_folds_into_intro_and_rend_stories() -> None:
    stories = {s.circuit_id: s for s in circuit_stories(_recorded())}
    purposes = {s.purpose for s in stories.values()}
    assert {"HS_CLIENT_INTRO", "HS_CLIENT_REND"} <= purposes
    joined = [s for s in stories.values() if "HSCR_JOINED" in s.hs_states]
    assert len(joined) == 1
    rend = joined[0]
    assert rend.built and rend.socks_username == "fetch-2348-322"
    assert rend.hs_states[0] == "HSCR_CONNECTING"
    acked = [s for s in stories.values() if "HSCI_DONE" in s.hs_states]
    assert acked and acked[0].purpose == "HS_CLIENT_INTRO"
    assert "intro circ" in acked[0].describe()


def test_hs_desc_event_through_the_control_codec() -> None:
    """HS_DESC comes typed from the codec (the tracer's path), then becomes a record."""
    line = (
        "650 HS_DESC RECEIVED ctr64zov34ciqbwgo3xtbdiexxlkfrkrobnno3onfwc2mb675ar5cdqd NO_AUTH "
        "$3424C1D0C87E6CFCC8D7F6A7B259EE80E0053373~relay5 "
        "CBy2LQLfSmQSdmPKB4OjpnaGQaaG/rp3U+k+hrDAEYo\r\n"
    )
    (message,) = ControlCodec().feed(line.encode())
    assert isinstance(message, HsDescEvent)
    event = trace_event_from_hs_desc(message, source="client", wall=5.0)
    assert (event.keyword, event.status, event.ident) == (
        "HS_DESC",
        "RECEIVED",
        "ctr64zov34ciqbwgo3xtbdiexxlkfrkrobnno3onfwc2mb675ar5cdqd",
    )
    assert event.path == ("relay5",)
    assert event.target == "CBy2LQLfSmQSdmPKB4OjpnaGQaaG/rp3U+k+hrDAEYo"
    assert trace_event_from_json(event.to_json()) == event


def test_other_events_and_short_lines_are_not_trace_events() -> None:
    for text in ("BW 10 20", "CIRC", "CIRC 12", "STREAM 1 NEW 0", "HS_DESC RECEIVED a", ""):
        assert parse_trace_event(text, source="c", wall=0.0) is None, text


def test_json_round_trip_and_junk() -> None:
    for event in _recorded():
        assert trace_event_from_json(json.loads(json.dumps(event.to_json()))) == event
    for junk in (None, 3, [], {"source": "c"}, {"source": "c", "wall": "x"}, {"fields": 1}):
        assert trace_event_from_json(junk) is None


@given(st.text(max_size=300))
def test_parser_never_raises_on_hostile_text(text: str) -> None:
    for prefix in ("", "CIRC ", "STREAM ", "CIRC_MINOR "):
        parse_trace_event(prefix + text, source="c", wall=0.0)
