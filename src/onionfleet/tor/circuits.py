"""tor's circuit list as the controller reports it (``GETINFO circuit-status``).

control-spec §3.9 ``circuit-status``: one line per circuit in the CIRC event format of §4.1.1::

    CircuitID SP CircStatus [SP Path] [SP "BUILD_FLAGS=" …] [SP "PURPOSE=" Purpose]
        [SP "HS_STATE=" HSState] [SP "REND_QUERY=" HSAddress] [SP "TIME_CREATED=" …] …

Only what the node needs is kept: the id (for ``CLOSECIRCUIT``, §3.11), the status, the path's
fingerprints, the purpose, the onion-service state and the address it serves. Unknown keywords
are ignored (§1.1: controllers must tolerate new fields); a line that is not a circuit line is a
:class:`RemoteProtocolError` that names it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from onionfleet.tor.errors import RemoteProtocolError
from onionfleet.tor.messages import split_arguments

__all__ = ["CircuitInfo", "parse_circuit_status"]

_CIRCUIT_ID = re.compile(r"[A-Za-z0-9]{1,16}")
_STATUS = re.compile(r"[A-Z_]{1,32}")
_PATH_HOP = re.compile(r"\$([0-9A-Fa-f]{40})(?:[~=][A-Za-z0-9]{1,19})?")


@dataclass(frozen=True, slots=True)
class CircuitInfo:
    """One circuit of ``circuit-status``.

    ``purpose`` is e.g. ``HS_SERVICE_INTRO`` or ``HS_SERVICE_REND``; ``hs_state`` e.g.
    ``HSSI_ESTABLISHED`` or ``HSSR_CONNECTING``; ``rend_query`` the onion address (no
    ``.onion``) for onion-service circuits (control-spec §4.1.1). Absent fields are ``None``.
    """

    circuit_id: str
    status: str
    path: tuple[str, ...]
    purpose: str | None
    hs_state: str | None
    rend_query: str | None


def parse_circuit_status(text: str) -> tuple[CircuitInfo, ...]:
    """Parse the value of ``GETINFO circuit-status`` (empty when tor has no circuit)."""
    return tuple(_parse_line(line) for line in text.splitlines() if line.strip())


def _parse_line(line: str) -> CircuitInfo:
    shown = line[:80]
    args = split_arguments(line)
    if len(args) < 2 or args[0].key is not None or args[1].key is not None:
        raise RemoteProtocolError(f"circuit-status line lacks an id and a status: {shown!r}")
    circuit_id, status = args[0].value, args[1].value
    if _CIRCUIT_ID.fullmatch(circuit_id) is None:
        raise RemoteProtocolError(f"circuit-status line has a bad circuit id: {shown!r}")
    if _STATUS.fullmatch(status) is None:
        raise RemoteProtocolError(f"circuit-status line has a bad status: {shown!r}")
    rest = args[2:]
    path: tuple[str, ...] = ()
    if rest and rest[0].key is None:
        path = _parse_path(rest[0].value, shown)
        rest = rest[1:]
    keywords = {a.key: a.value for a in rest if a.key is not None}
    return CircuitInfo(
        circuit_id=circuit_id,
        status=status,
        path=path,
        purpose=keywords.get("PURPOSE"),
        hs_state=keywords.get("HS_STATE"),
        rend_query=keywords.get("REND_QUERY"),
    )


def _parse_path(text: str, shown: str) -> tuple[str, ...]:
    hops: list[str] = []
    for hop in text.split(","):
        match = _PATH_HOP.fullmatch(hop)
        if match is None:
            raise RemoteProtocolError(
                f"circuit-status line has a bad path hop {hop[:50]!r}: {shown!r}"
            )
        hops.append(match.group(1).upper())
    return tuple(hops)
