"""CIRC, CIRC_MINOR and STREAM events of a tor, as the fetch tracer records them (pure).

control-spec §4.1.1 (CIRC), §4.1.2 (STREAM) and §4.1.19 (CIRC_MINOR)::

    650 CIRC CircuitID CircStatus [Path] [BUILD_FLAGS=…] [PURPOSE=…] [HS_STATE=…]
        [REND_QUERY=…] [TIME_CREATED=…] [REASON=…] [REMOTE_REASON=…]
        [SOCKS_USERNAME="…"] [SOCKS_PASSWORD="…"] …
    650 STREAM StreamID StreamStatus CircuitID Target [REASON=…] [REMOTE_REASON=…]
        [SOURCE_ADDR=…] [PURPOSE=…] [SOCKS_USERNAME="…"] …
    650 CIRC_MINOR CircuitID CircEvent [Path] … [OLD_PURPOSE=…] [OLD_HS_STATE=…]

``HS_DESC`` (§4.1.25) is parsed by the control codec (:class:`~onionfleet.tor.events.HsDescEvent`);
:func:`trace_event_from_hs_desc` turns it into the same record.

Only what a failure explanation needs is kept. A line that is not one of these events gives
``None``: the tracer reads whatever tor sends and must never fail on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from onionfleet.tor.errors import ControlProtocolError
from onionfleet.tor.events import HsDescEvent
from onionfleet.tor.messages import split_arguments

__all__ = ["TraceEvent", "parse_trace_event", "trace_event_from_hs_desc", "trace_event_from_json"]

_KEYWORDS = frozenset({"CIRC", "CIRC_MINOR", "STREAM"})
_KEPT_FIELDS = frozenset(
    {
        "PURPOSE",
        "HS_STATE",
        "REASON",
        "REMOTE_REASON",
        "SOCKS_USERNAME",
        "SOURCE_ADDR",
        "OLD_PURPOSE",
        "OLD_HS_STATE",
        "TIME_CREATED",
    }
)


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One event of one tor (``source``: ``client``, ``node-a`` …) at ``wall`` (Unix time).

    ``ident`` is the circuit id (CIRC, CIRC_MINOR), the stream id (STREAM) or the onion address
    (HS_DESC); ``status`` the CircStatus, CircEvent, StreamStatus or HS_DESC action;
    ``circuit`` the stream's circuit id (STREAM only, ``"0"`` while unattached); ``target`` the
    stream's target or the descriptor id (HS_DESC: the blinded key, base64); ``path`` the hops
    as ``nickname`` (or fingerprint when tor gave no nickname; HS_DESC: the HSDir).
    """

    source: str
    wall: float
    keyword: str
    ident: str
    status: str
    path: tuple[str, ...] = ()
    circuit: str | None = None
    target: str | None = None
    fields: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        return self.fields.get(name)

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "wall": round(self.wall, 3),
            "keyword": self.keyword,
            "ident": self.ident,
            "status": self.status,
            "path": list(self.path),
            "circuit": self.circuit,
            "target": self.target,
            "fields": self.fields,
        }


def _hop_name(hop: str) -> str:
    """``$FP~nick`` or ``$FP=nick`` → ``nick``; a bare ``$FP`` → ``FP``."""
    for sep in ("~", "="):
        if sep in hop:
            return hop.split(sep, 1)[1]
    return hop.removeprefix("$")


def parse_trace_event(text: str, *, source: str, wall: float) -> TraceEvent | None:
    """Parse the text of one async reply line (``CIRC 12 BUILT …``, without ``650 ``)."""
    keyword, _, rest = text.partition(" ")
    if keyword not in _KEYWORDS:
        return None
    try:
        args = split_arguments(rest)
    except ControlProtocolError:
        return None
    positional = [a.value for a in args if a.key is None]
    fields = {a.key: a.value for a in args if a.key is not None and a.key in _KEPT_FIELDS}
    if keyword == "STREAM":
        if len(positional) < 4:
            return None
        ident, status, circuit, target = positional[:4]
        return TraceEvent(source, wall, keyword, ident, status, (), circuit, target, fields)
    if len(positional) < 2:
        return None
    ident, status = positional[:2]
    path: tuple[str, ...] = ()
    if len(positional) > 2 and positional[2].startswith("$"):
        path = tuple(_hop_name(h) for h in positional[2].split(","))
    return TraceEvent(source, wall, keyword, ident, status, path, None, None, fields)


def trace_event_from_json(doc: object) -> TraceEvent | None:
    """The inverse of :meth:`TraceEvent.to_json` (a line of a ``trace-*.jsonl`` file); ``None``
    for anything that is not such a record."""
    if not isinstance(doc, dict):
        return None
    try:
        fields = doc.get("fields") or {}
        path = doc.get("path") or []
        if not isinstance(fields, dict) or not isinstance(path, list):
            return None
        return TraceEvent(
            source=str(doc["source"]),
            wall=float(doc["wall"]),
            keyword=str(doc["keyword"]),
            ident=str(doc["ident"]),
            status=str(doc["status"]),
            path=tuple(str(h) for h in path),
            circuit=None if doc.get("circuit") is None else str(doc["circuit"]),
            target=None if doc.get("target") is None else str(doc["target"]),
            fields={str(k): str(v) for k, v in fields.items()},
        )
    except (KeyError, TypeError, ValueError):
        return None


def trace_event_from_hs_desc(event: HsDescEvent, *, source: str, wall: float) -> TraceEvent:
    """An ``HS_DESC`` event as a trace record: ``ident`` the address, ``status`` the action,
    ``target`` the descriptor id (v3: the blinded key), ``path`` the HSDir's nickname."""
    hsdir = event.hsdir
    hop = () if hsdir is None else (hsdir.nickname or hsdir.fingerprint_hex,)
    fields = {} if event.reason is None else {"REASON": event.reason}
    return TraceEvent(
        source, wall, "HS_DESC", event.address or "UNKNOWN", event.action, hop, None,
        event.descriptor_id, fields,
    )  # fmt: skip
