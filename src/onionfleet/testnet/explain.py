"""Why did a fetch fail? Its circuits and streams, read from the tracer's events (pure).

A fetch through the master address runs, on the client tor, an *intro* circuit to one of the
descriptor's intro points (purpose ``HS_CLIENT_INTRO``) and a *rendezvous* circuit to a relay
it picked (``HS_CLIENT_REND``); the node whose intro point it was builds its own circuit to that
rendezvous point (``HS_SERVICE_REND``), tor joins the two, and the client's stream goes over it
(rend-spec-v3 §3, §4). ``IsolateSOCKSAuth`` gives each fetch its own circuits, and tor names
the SOCKS username on them (control-spec §4.1.1 ``SOCKS_USERNAME``), so every circuit and
stream of one fetch can be found among the client tor's events.

:func:`explain_fetch` turns them into :class:`FetchExplanation`: a sentence per circuit
(purpose, the onion-service states it went through, how it ended with ``REASON=`` and
``REMOTE_REASON=``, its relays), the nodes whose intro point and rendezvous it used, and a
verdict by the rules of docs/testing.md:

* **tor** only when the events prove a cause outside onionfleet — the fetch's circuits failed
  while being built (``REASON=TIMEOUT``: tor's own circuit-build timeout, or a relay refusing
  or dropping an extend), before any node was involved;
* **onionfleet** when a node was involved and ended it — the node's tor closed the joined
  rendezvous circuit or ended the stream, an intro point of the published descriptor refused
  the introduction (the node had dropped it), or the node's tor went away mid-fetch;
* **unexplained** for everything else. The zero-failure tests allow none of those.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from onionfleet.testnet._trace_events import TraceEvent

__all__ = [
    "VERDICT_ONIONFLEET",
    "VERDICT_TOR",
    "VERDICT_UNEXPLAINED",
    "CircuitStory",
    "FetchExplanation",
    "FetchWindow",
    "circuit_stories",
    "explain_fetch",
    "serving_nodes",
]

VERDICT_ONIONFLEET = "onionfleet"
VERDICT_TOR = "tor"
VERDICT_UNEXPLAINED = "unexplained"

_CLIENT = "client"
#: purposes tor gives a circuit after its onion-service use (reused for measurement/padding)
_AFTERLIFE = frozenset({"MEASURE_TIMEOUT", "CIRCUIT_PADDING", "PATH_BIAS_TESTING"})
_SHORT = {
    "HS_CLIENT_INTRO": "intro",
    "HS_CLIENT_REND": "rend",
    "HS_CLIENT_HSDIR": "hsdir",
    "HS_SERVICE_INTRO": "service-intro",
    "HS_SERVICE_REND": "service-rend",
}
#: REMOTE_REASON values by which a relay on the path (not an end of it) reported a broken
#: link or resource shortage (tor-spec §5.4 "DESTROY reasons")
_RELAY_FAULTS = frozenset(
    {"TIMEOUT", "CONNECTFAILED", "CHANNEL_CLOSED", "OR_CONN_CLOSED", "RESOURCELIMIT", "NOPATH"}
)
#: seconds a node-side event may precede or follow the fetch's own window
_SLACK_S = 2.0
_JOINED = frozenset({"HSCR_JOINED", "HSSR_JOINED"})
#: a node's rendezvous circuit joins (it sends RENDEZVOUS1) just before the client's does (it
#: receives RENDEZVOUS2 through the rendezvous point): the window, in seconds, before and after
_JOIN_BEFORE_S = 2.0
_JOIN_AFTER_S = 0.3
#: joins this close to the closest one are as likely: both nodes are named
_JOIN_TIE_S = 0.05


@dataclass(frozen=True, slots=True)
class CircuitStory:
    """One circuit of one tor, from its first event to its last."""

    source: str
    circuit_id: str
    purposes: tuple[str, ...]
    hs_states: tuple[str, ...]
    path: tuple[str, ...]
    first_wall: float
    last_wall: float
    end_status: str | None = None  # FAILED or CLOSED, None while open
    reason: str | None = None
    remote_reason: str | None = None
    socks_username: str | None = None
    #: tor reported the circuit BUILT (every hop extended), or it got past connecting
    built: bool = False
    #: when it became a joined rendezvous circuit (``HSCR_JOINED`` / ``HSSR_JOINED``)
    joined_wall: float | None = None

    @property
    def purpose(self) -> str:
        """The onion-service purpose it served (``HS_CLIENT_INTRO`` …): tor cannibalizes
        pre-built ``HS_VANGUARDS`` or general circuits for these (circuituse.c
        ``circuit_launch_by_extend_info``), so the first purpose is not always the one."""
        for purpose in self.purposes:
            if purpose.startswith(("HS_CLIENT_", "HS_SERVICE_")):
                return purpose
        for purpose in self.purposes:
            if purpose not in _AFTERLIFE:
                return purpose
        return self.purposes[0] if self.purposes else "?"

    @property
    def last_hop(self) -> str | None:
        return self.path[-1] if self.path else None

    def alive_at(self, wall: float) -> bool:
        return self.first_wall - _SLACK_S <= wall and (
            self.end_status is None or wall <= self.last_wall + _SLACK_S
        )

    def describe(self) -> str:
        name = _SHORT.get(self.purpose, self.purpose.lower())
        states = "→".join(s.removeprefix("HSCR_").removeprefix("HSCI_") for s in self.hs_states)
        end = "open"
        if self.end_status is not None:
            end = self.end_status
            if self.reason:
                end += f" REASON={self.reason}"
            if self.remote_reason:
                end += f" REMOTE_REASON={self.remote_reason}"
        path = ",".join(self.path) or "no hop yet"
        return f"{name} circ {self.circuit_id} [{path}] {states or '-'} {end}"


def circuit_stories(events: Iterable[TraceEvent]) -> list[CircuitStory]:
    """Fold CIRC and CIRC_MINOR events into one story per (source, circuit id), in order of
    each circuit's first event."""
    order: list[tuple[str, str]] = []
    parts: dict[tuple[str, str], list[TraceEvent]] = {}
    for event in events:
        if event.keyword not in ("CIRC", "CIRC_MINOR"):
            continue
        key = (event.source, event.ident)
        if key not in parts:
            order.append(key)
            parts[key] = []
        parts[key].append(event)
    return [_story(parts[key]) for key in order]


def _story(events: Sequence[TraceEvent]) -> CircuitStory:
    purposes: list[str] = []
    states: list[str] = []
    path: tuple[str, ...] = ()
    end_status = reason = remote = user = None
    built = False
    joined_wall: float | None = None
    for event in events:
        if joined_wall is None and event.get("HS_STATE") in _JOINED:
            joined_wall = event.wall
        built = built or (event.keyword == "CIRC" and event.status == "BUILT")
        built = built or not (event.get("HS_STATE") or "_CONNECTING").endswith("_CONNECTING")
        for purpose in (event.get("OLD_PURPOSE"), event.get("PURPOSE")):
            if purpose and purpose not in purposes:
                purposes.append(purpose)
        for state in (event.get("OLD_HS_STATE"), event.get("HS_STATE")):
            if state and (not states or states[-1] != state) and state not in states:
                states.append(state)
        if len(event.path) >= len(path):
            path = event.path
        user = user or event.get("SOCKS_USERNAME")
        if event.keyword == "CIRC" and event.status in ("FAILED", "CLOSED") and end_status is None:
            end_status = event.status
            reason = event.get("REASON")
            remote = event.get("REMOTE_REASON")
    return CircuitStory(
        source=events[0].source,
        circuit_id=events[0].ident,
        purposes=tuple(purposes),
        hs_states=tuple(states),
        path=path,
        first_wall=events[0].wall,
        last_wall=events[-1].wall,
        end_status=end_status,
        reason=reason,
        remote_reason=remote,
        socks_username=user,
        built=built,
        joined_wall=joined_wall,
    )


@dataclass(frozen=True, slots=True)
class FetchExplanation:
    """What one fetch's circuits and streams did, and whose fault its failure was."""

    verdict: str
    cause: str
    circuits: tuple[str, ...] = ()
    streams: tuple[str, ...] = ()
    intro_nodes: tuple[str, ...] = ()
    rend_nodes: tuple[str, ...] = ()

    def render(self) -> str:
        """One paragraph: the verdict and cause first, then the evidence."""
        lines = [f"{self.verdict}: {self.cause}"]
        if self.intro_nodes or self.rend_nodes:
            lines.append(
                f"  intro point at {' or '.join(self.intro_nodes) or '?'}, "
                f"rendezvous with {' or '.join(self.rend_nodes) or '?'}"
            )
        lines += [f"  stream {s}" for s in self.streams]
        lines += [f"  {c}" for c in self.circuits]
        return "\n".join(lines)


def _describe_stream(events: Sequence[TraceEvent]) -> str:
    last = events[-1]
    statuses = "→".join(dict.fromkeys(e.status for e in events))
    reasons = " ".join(
        f"{k}={last.get(k)}" for k in ("REASON", "REMOTE_REASON") if last.get(k) is not None
    )
    return f"{last.ident} on circ {last.circuit} {statuses} {reasons}".rstrip()


def explain_fetch(
    isolation: str,
    started_wall: float,
    ended_wall: float,
    events: Sequence[TraceEvent],
    *,
    node_outages: Sequence[tuple[str, float, float]] = (),
) -> FetchExplanation:
    """Explain the failed fetch sent with SOCKS username ``isolation`` in
    [``started_wall``, ``ended_wall``] from the tracer's ``events`` (client and nodes).

    ``node_outages`` lists (node, from, to) spans in which a node's tor was not followed (it
    was stopped, killed or restarting), from :meth:`TorEventTracer.outages`.
    """
    mine = [
        e
        for e in events
        if e.source == _CLIENT and e.get("SOCKS_USERNAME") == isolation and e.keyword != "STREAM"
    ]
    ids = {e.ident for e in mine}
    client = [
        s
        for s in circuit_stories(
            e
            for e in events
            if e.source == _CLIENT and e.ident in ids and e.keyword != "STREAM"
            and started_wall - _SLACK_S <= e.wall <= ended_wall + 30
        )
        if s.socks_username == isolation
    ]  # fmt: skip
    stream_events: dict[str, list[TraceEvent]] = {}
    for e in events:
        if e.source == _CLIENT and e.keyword == "STREAM" and e.get("SOCKS_USERNAME") == isolation:
            stream_events.setdefault(e.ident, []).append(e)
    streams = tuple(_describe_stream(v) for v in stream_events.values())
    service = circuit_stories(
        e for e in events if e.source != _CLIENT and started_wall - 60 <= e.wall <= ended_wall + 60
    )
    intros = [s for s in client if s.purpose == "HS_CLIENT_INTRO"]
    rends = [s for s in client if s.purpose == "HS_CLIENT_REND"]
    intro_nodes = _nodes_at(
        service, "HS_SERVICE_INTRO", [i for i in intros if "HSCI_INTRO_SENT" in i.hs_states]
    )
    rend_nodes = _rend_nodes(
        service,
        [r for r in rends if {"HSCR_ESTABLISHED_WAITING", "HSCR_JOINED"} & set(r.hs_states)],
        started_wall,
        ended_wall,
    )
    described = tuple(s.describe() for s in client)
    outage_nodes = tuple(
        sorted(
            {
                node
                for node, start, end in node_outages
                if start <= ended_wall + _SLACK_S and started_wall - _SLACK_S <= end
            }
        )
    )

    def result(verdict: str, cause: str) -> FetchExplanation:
        return FetchExplanation(verdict, cause, described, streams, intro_nodes, rend_nodes)

    if not client and not stream_events:
        return result(
            VERDICT_UNEXPLAINED,
            "the tracer recorded no circuit or stream of this fetch (was the client followed?)",
        )
    involved = tuple(sorted(set(intro_nodes) | set(rend_nodes)))
    # a node lost under a joined rendezvous: the relay match may name another node whose
    # rendezvous circuit to the same relay joined at nearly the same time
    destroyed = any(r.joined_wall is not None and r.reason == "DESTROYED" for r in rends)
    gone = [n for n in outage_nodes if n in involved or destroyed]
    if gone:
        return result(
            VERDICT_ONIONFLEET,
            f"the tor of {', '.join(gone)} went away while this fetch used it",
        )
    joined = [r for r in rends if "HSCR_JOINED" in r.hs_states]
    for rend in joined:
        closed_early = rend.end_status is not None and rend.last_wall <= ended_wall + _SLACK_S
        if not closed_early or (rend.remote_reason is None and rend.reason != "DESTROYED"):
            continue  # still open, or the client closed it itself after the stream ended
        if rend.remote_reason in _RELAY_FAULTS:
            return result(
                VERDICT_TOR,
                f"the joined rendezvous circuit was destroyed by a relay "
                f"(REMOTE_REASON={rend.remote_reason})",
            )
        return result(
            VERDICT_ONIONFLEET,
            f"the node's side closed the joined rendezvous circuit "
            f"(REASON={rend.reason} REMOTE_REASON={rend.remote_reason})",
        )
    for events_of_stream in stream_events.values():
        if any(e.status == "SUCCEEDED" for e in events_of_stream):
            end = events_of_stream[-1]
            return result(
                VERDICT_ONIONFLEET,
                "the node's tor connected the stream to the node (SOCKS success) and no "
                f"complete answer came back (stream {end.status} REASON={end.get('REASON')} "
                f"REMOTE_REASON={end.get('REMOTE_REASON')}): see the node's proxy log",
            )
        remote = next(
            (e.get("REMOTE_REASON") for e in events_of_stream if e.get("REMOTE_REASON")), None
        )
        if remote is not None:
            return result(
                VERDICT_ONIONFLEET,
                f"the node's side ended the stream before connecting it (REMOTE_REASON={remote})",
            )
    cant_attach = any(
        e.get("REASON") == "CANT_ATTACH" for evs in stream_events.values() for e in evs
    )
    if cant_attach and any(i.reason == "INTERNAL" for i in intros):
        address = _stream_address(stream_events)
        switch = _time_period_switch(events, address, started_wall, ended_wall)
        if switch is not None:
            return result(
                VERDICT_TOR,
                "tor's client dropped its cached descriptor at the time-period switch (new "
                f"blinded key {switch[:8]}…) while this fetch was introducing, and gave the "
                "stream up (CANT_ATTACH) because the new period's descriptor lacks the intro "
                "point its circuit had reached (hs_client.c consider_sending_introduce1: "
                "'Unable to find introduction point' is a permanent error)",
            )
        if _descriptor_received(events, address, started_wall, ended_wall):
            return result(
                VERDICT_ONIONFLEET,
                "the client fetched the descriptor again while this fetch was introducing, and "
                "the new one lacks the intro point its circuit had reached: the published "
                "intro points changed under it (tor gives the stream up: CANT_ATTACH)",
            )
    acked = [i for i in intros if "HSCI_DONE" in i.hs_states]
    sent = [i for i in intros if "HSCI_INTRO_SENT" in i.hs_states]
    if sent and not acked:
        return result(
            VERDICT_ONIONFLEET,
            "an intro point of the published descriptor did not accept the introduction "
            "(its node's tor no longer had it)",
        )
    unbuilt = [s for s in client if not s.built and s.end_status is not None]
    relay_made = all(s.reason == "TIMEOUT" or s.remote_reason in _RELAY_FAULTS for s in unbuilt)
    if unbuilt and relay_made and not joined and not acked:
        reasons = sorted({f"{s.reason}/{s.remote_reason}" for s in unbuilt})
        return result(
            VERDICT_TOR,
            f"{len(unbuilt)} of its circuits failed while being built, before reaching any "
            f"node ({', '.join(reasons)}): tor's circuit-build timeout or a relay",
        )
    return result(VERDICT_UNEXPLAINED, "no rule of docs/testing.md matches these events")


def _stream_address(stream_events: dict[str, list[TraceEvent]]) -> str | None:
    """The onion address (no ``.onion``) the fetch's streams went to."""
    for evs in stream_events.values():
        for e in evs:
            if e.target:
                return e.target.rsplit(":", 1)[0].removesuffix(".onion")
    return None


def _client_descriptors(events: Sequence[TraceEvent], address: str | None) -> list[TraceEvent]:
    return [
        e
        for e in events
        if e.source == _CLIENT
        and e.keyword == "HS_DESC"
        and e.status == "RECEIVED"
        and address is not None
        and e.ident == address
    ]


def _descriptor_received(
    events: Sequence[TraceEvent], address: str | None, started_wall: float, ended_wall: float
) -> bool:
    return any(
        started_wall - _SLACK_S <= e.wall <= ended_wall + 1
        for e in _client_descriptors(events, address)
    )


def _time_period_switch(
    events: Sequence[TraceEvent], address: str | None, started_wall: float, ended_wall: float
) -> str | None:
    """The new blinded key if the client received, during the fetch, a descriptor of
    ``address`` under another blinded key than the one it had before (a time-period switch:
    tor's client cache drops a descriptor at the next period's start, hs_cache.c
    ``cache_client_desc_new``)."""
    previous: str | None = None
    for e in _client_descriptors(events, address):
        if started_wall - _SLACK_S <= e.wall <= ended_wall + 1:
            if previous is not None and e.target is not None and e.target != previous:
                return e.target
        elif e.wall > ended_wall + 1:
            break
        previous = e.target or previous
    return None


def _nodes_at(
    service: Sequence[CircuitStory], purpose: str, client: Sequence[CircuitStory]
) -> tuple[str, ...]:
    """Nodes with a ``purpose`` circuit to the last hop of one of ``client``'s circuits while
    it was in use."""
    found: set[str] = set()
    for circ in client:
        hop = circ.last_hop
        if hop is None or not circ.built:
            continue
        for s in service:
            if s.purpose == purpose and s.last_hop == hop and s.alive_at(circ.last_wall):
                found.add(s.source)
    return tuple(sorted(found))


def _rend_nodes(
    service: Sequence[CircuitStory],
    rends: Sequence[CircuitStory],
    started_wall: float,
    ended_wall: float,
) -> tuple[str, ...]:
    """Nodes that came to the fetch's rendezvous: the ``HS_SERVICE_REND`` circuit to its
    rendezvous point whose join came closest before the client's (and any within
    ``_JOIN_TIE_S`` of that one), or, for a rendezvous that never joined, every one built to
    that point during the fetch."""
    found: set[str] = set()
    for rend in rends:
        if not rend.built or rend.last_hop is None:
            continue
        same_point = [
            s for s in service if s.purpose == "HS_SERVICE_REND" and s.last_hop == rend.last_hop
        ]
        if rend.joined_wall is None:
            found.update(
                s.source
                for s in same_point
                if started_wall - _SLACK_S <= s.first_wall <= ended_wall + _SLACK_S
            )
            continue
        lags = [
            (rend.joined_wall - s.joined_wall, s.source)
            for s in same_point
            if s.joined_wall is not None
            and -_JOIN_AFTER_S <= rend.joined_wall - s.joined_wall <= _JOIN_BEFORE_S
        ]
        if lags:
            best = min(abs(lag) for lag, _ in lags)
            found.update(node for lag, node in lags if abs(lag) <= best + _JOIN_TIE_S)
    return tuple(sorted(found))


@dataclass(frozen=True, slots=True)
class FetchWindow:
    """What :func:`serving_nodes` needs of one fetch: its SOCKS username and its time span."""

    isolation: str
    started_wall: float
    ended_wall: float


def serving_nodes(
    fetches: Sequence[FetchWindow], events: Sequence[TraceEvent]
) -> dict[str, tuple[str, ...]]:
    """For each fetch (by isolation), the node(s) that came to its rendezvous: nodes with an
    ``HS_SERVICE_REND`` circuit to the relay of the fetch's joined rendezvous circuit, built
    during the fetch. One pass over ``events`` (a whole run's), so it serves every fetch of a
    run, not only the failed ones. A fetch that never joined a rendezvous gets ``()``."""
    wanted = {f.isolation for f in fetches}
    client_ids: dict[str, set[str]] = {}
    for e in events:
        user = e.get("SOCKS_USERNAME")
        if e.source == _CLIENT and e.keyword != "STREAM" and user in wanted:
            client_ids.setdefault(user, set()).add(e.ident)
    all_ids = set().union(*client_ids.values()) if client_ids else set()
    client = [
        s
        for s in circuit_stories(
            e
            for e in events
            if e.source == _CLIENT and e.keyword != "STREAM" and e.ident in all_ids
        )
        if s.purpose == "HS_CLIENT_REND" and "HSCR_JOINED" in s.hs_states
    ]
    rend_of: dict[str, list[CircuitStory]] = {}
    for story in client:
        if story.socks_username is not None:
            rend_of.setdefault(story.socks_username, []).append(story)
    service_by_point: dict[str, list[CircuitStory]] = {}
    for story in circuit_stories(e for e in events if e.source != _CLIENT):
        if story.purpose == "HS_SERVICE_REND" and story.last_hop is not None:
            service_by_point.setdefault(story.last_hop, []).append(story)
    out: dict[str, tuple[str, ...]] = {}
    for fetch in fetches:
        rends = rend_of.get(fetch.isolation, [])
        service = [s for r in rends for s in service_by_point.get(r.last_hop or "", [])]
        out[fetch.isolation] = _rend_nodes(service, rends, fetch.started_wall, fetch.ended_wall)
    return out
