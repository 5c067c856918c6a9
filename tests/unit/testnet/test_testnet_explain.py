"""Failure attribution (onionfleet.testnet.explain) on recorded and on hand-made event sequences.

data/trace-kill9-node-gone.jsonl: a fetch that failed with SOCKS 0x01 while node-c was killed
with ``kill -9`` (e2e module, one core busy, tor 0.4.9.11): the client's events of that fetch,
its HS_DESC receipts, and the nodes' onion-service circuits around it, as the tracer wrote them.
node-c's tor stopped being followed at 1796685740.33 and was back at 1796685762.49.
"""

from __future__ import annotations

from pathlib import Path

from onionfleet.testnet._trace_events import (
    TraceEvent,
    parse_trace_event,
    trace_event_from_hs_desc,
)
from onionfleet.testnet.explain import (
    VERDICT_ONIONFLEET,
    VERDICT_TOR,
    VERDICT_UNEXPLAINED,
    FetchWindow,
    explain_fetch,
    serving_nodes,
)
from onionfleet.testnet.trace import load_trace
from onionfleet.tor.codec import ControlCodec
from onionfleet.tor.events import HsDescEvent

DATA = Path(__file__).parent / "data"
ADDR = "ctr64zov34ciqbwgo3xtbdiexxlkfrkrobnno3onfwc2mb675ar5cdqd"
USER = 'SOCKS_USERNAME="f-1" SOCKS_PASSWORD="f-1"'
PATH3 = "$3424C1D0C87E6CFCC8D7F6A7B259EE80E0053373~relay5,$25B295C5F46B8CC223EBD8FF4C53CD698A37CDD7~relay4,$A8EC7FF11682DF679F6BDE3331C98F80A755297B~relay2"  # noqa: E501


def _events(*lines: tuple[float, str, str]) -> list[TraceEvent]:
    """Trace records of event lines, parsed the way the tracer does (HS_DESC by the codec)."""
    out = []
    for wall, source, text in lines:
        event: TraceEvent | None
        if text.startswith("HS_DESC "):
            (message,) = ControlCodec().feed(f"650 {text}\r\n".encode())
            assert isinstance(message, HsDescEvent)
            event = trace_event_from_hs_desc(message, source=source, wall=wall)
        else:
            event = parse_trace_event(text, source=source, wall=wall)
        assert event is not None, text
        out.append(event)
    return out


def test_recorded_kill9_is_the_gone_nodes_fault(tmp_path: Path) -> None:
    (tmp_path / "trace-all.jsonl").write_bytes((DATA / "trace-kill9-node-gone.jsonl").read_bytes())
    events = load_trace(tmp_path)
    why = explain_fetch(
        "fetch-8782-65",
        1796685740.068,
        1796685740.88,
        events,
        node_outages=[("node-c", 1796685740.33, 1796685762.49)],
    )
    assert why.verdict == VERDICT_ONIONFLEET, why.render()
    assert "node-c went away" in why.cause
    assert any("REASON=DESTROY" in s for s in why.streams)
    # without the outage the joined rendezvous circuit closed from the node's side still
    # blames onionfleet (REMOTE_REASON=DESTROYED is no relay fault)
    alone = explain_fetch("fetch-8782-65", 1796685740.068, 1796685740.88, events)
    assert alone.verdict == VERDICT_ONIONFLEET, alone.render()
    assert "joined rendezvous circuit" in alone.cause


def test_no_events_is_unexplained() -> None:
    why = explain_fetch("f-1", 10.0, 11.0, [])
    assert why.verdict == VERDICT_UNEXPLAINED
    assert "recorded no circuit" in why.cause


def test_circuits_that_timed_out_while_building_are_tors() -> None:
    events = _events(
        (10.0, "client", f"STREAM 5 NEW 0 {ADDR}.onion:80 SOURCE_ADDR=127.0.0.1:4000 {USER}"),
        (10.1, "client", f"CIRC 20 EXTENDED {PATH3} PURPOSE=HS_CLIENT_REND "
         f"HS_STATE=HSCR_CONNECTING {USER}"),
        (10.2, "client", f"CIRC 20 FAILED {PATH3} PURPOSE=HS_CLIENT_REND "
         f"HS_STATE=HSCR_CONNECTING {USER} REASON=TIMEOUT"),
        (10.3, "client", f"CIRC 21 FAILED {PATH3} PURPOSE=HS_CLIENT_INTRO "
         f"HS_STATE=HSCI_CONNECTING {USER} REASON=DESTROYED REMOTE_REASON=CHANNEL_CLOSED"),
        (30.0, "client", f"STREAM 5 FAILED 0 {ADDR}.onion:80 REASON=TIMEOUT {USER}"),
    )  # fmt: skip
    why = explain_fetch("f-1", 10.0, 30.0, events)
    assert why.verdict == VERDICT_TOR, why.render()
    assert "while being built" in why.cause


def test_time_period_switch_under_an_introduction_is_tors() -> None:
    old, new = "OLDBLINDEDKEY" + "A" * 30, "NEWBLINDEDKEY" + "B" * 30
    hsdir = "$3424C1D0C87E6CFCC8D7F6A7B259EE80E0053373~relay5"
    events = _events(
        (1.0, "client", f"HS_DESC RECEIVED {ADDR} NO_AUTH {hsdir} {old}"),
        (100.0, "client", f"STREAM 5 NEW 0 {ADDR}.onion:80 {USER}"),
        (100.1, "client", f"CIRC 30 BUILT {PATH3} PURPOSE=HS_CLIENT_INTRO "
         f"HS_STATE=HSCI_CONNECTING {USER}"),
        (100.4, "client", f"HS_DESC RECEIVED {ADDR} NO_AUTH {hsdir} {new}"),
        (100.5, "client", f"CIRC 30 CLOSED {PATH3} PURPOSE=HS_CLIENT_INTRO "
         f"HS_STATE=HSCI_CONNECTING {USER} REASON=INTERNAL"),
        (100.5, "client", f"STREAM 5 FAILED 0 {ADDR}.onion:80 REASON=CANT_ATTACH {USER}"),
    )  # fmt: skip
    why = explain_fetch("f-1", 100.0, 100.5, events)
    assert why.verdict == VERDICT_TOR, why.render()
    assert "time-period switch" in why.cause
    # the same under the same blinded key: the published intro points changed → onionfleet
    same = [e for e in events if e.target != new] + _events(
        (100.4, "client", f"HS_DESC RECEIVED {ADDR} NO_AUTH {hsdir} {old}")
    )
    same.sort(key=lambda e: e.wall)
    why = explain_fetch("f-1", 100.0, 100.5, same)
    assert why.verdict == VERDICT_ONIONFLEET, why.render()
    assert "intro points changed" in why.cause


def test_stream_accepted_then_cut_is_onionfleets() -> None:
    events = _events(
        (10.0, "client", f"STREAM 5 NEW 0 {ADDR}.onion:80 {USER}"),
        (10.5, "client", f"CIRC 40 BUILT {PATH3} PURPOSE=HS_CLIENT_REND "
         f"HS_STATE=HSCR_JOINED {USER}"),
        (10.6, "client", f"STREAM 5 SUCCEEDED 40 {ADDR}.onion:80 {USER}"),
        (11.6, "client", f"STREAM 5 CLOSED 40 {ADDR}.onion:80 REASON=END REMOTE_REASON=DONE "
         f"{USER}"),
        (10.4, "node-a", "CIRC 7 BUILT $A8EC7FF11682DF679F6BDE3331C98F80A755297B~relay2 "
         "PURPOSE=HS_SERVICE_REND HS_STATE=HSSR_JOINED"),
    )  # fmt: skip
    events.sort(key=lambda e: e.wall)
    why = explain_fetch("f-1", 10.0, 11.6, events)
    assert why.verdict == VERDICT_ONIONFLEET, why.render()
    assert "SOCKS success" in why.cause
    assert why.rend_nodes == ("node-a",)
    assert "node-a" in why.render()


def test_serving_nodes_places_the_recorded_rendezvous(tmp_path: Path) -> None:
    """data/trace-one-fetch-served.jsonl: a fetch that succeeded through node-a (e2e module), its
    client events and the nodes' rendezvous circuits within 3 s of it."""
    (tmp_path / "trace-all.jsonl").write_bytes((DATA / "trace-one-fetch-served.jsonl").read_bytes())
    events = load_trace(tmp_path)
    window = FetchWindow("fetch-17581-489", 1796687133.816, 1796687134.309)
    nodes = serving_nodes([window, FetchWindow("nobody", 1.0, 2.0)], events)
    assert nodes["nobody"] == ()
    assert "node-a" in nodes["fetch-17581-489"], nodes
    assert set(nodes["fetch-17581-489"]) <= {"node-a", "node-b", "node-c"}
