"""Typed asynchronous events (control-spec §4.1) built from 650 replies.

Known events get their own frozen dataclass; anything else — or a known event whose text does
not parse — becomes an :class:`UnknownEvent` (control-spec §1.1: controllers MUST tolerate new
events and fields), so one odd event never breaks the control connection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from onionfleet.tor.errors import ControlProtocolError, RemoteProtocolError
from onionfleet.tor.messages import Argument, ReplyLine, split_arguments

__all__ = [
    "BootstrapStatus",
    "ControllerReconnected",
    "Event",
    "HsDescContentEvent",
    "HsDescEvent",
    "HsDirRef",
    "StatusEvent",
    "UnknownEvent",
    "parse_bootstrap_phase",
    "parse_event",
    "parse_hsdir_ref",
]

_FINGERPRINT = re.compile(r"\$([0-9A-Fa-f]{40})(?:[~=]([A-Za-z0-9]{1,19}))?")


@dataclass(frozen=True, slots=True)
class HsDirRef:
    """An HSDir named in an event: ``"$" Fingerprint ["~" Nickname]`` (control-spec §2.4)."""

    fingerprint_hex: str
    nickname: str | None


def parse_hsdir_ref(text: str) -> HsDirRef | None:
    """``$FP~nick`` / ``$FP`` → :class:`HsDirRef`; ``UNKNOWN`` → ``None``."""
    if text == "UNKNOWN":
        return None
    match = _FINGERPRINT.fullmatch(text)
    if match is None:
        raise RemoteProtocolError(f"not an HSDir LongName in an event: {text[:60]!r}")
    return HsDirRef(match.group(1).upper(), match.group(2))


@dataclass(frozen=True, slots=True)
class HsDescEvent:
    """``650 HS_DESC Action HSAddress AuthType HsDir [DescriptorID] [REASON=…] [REPLICA=…]
    [HSDIR_INDEX=…]`` (control-spec §4.1.25 "HiddenService descriptors").

    ``action`` is REQUESTED, UPLOAD, RECEIVED, UPLOADED, IGNORE, FAILED, CREATED… (unknown
    values are kept verbatim). ``address`` is the onion address without ``.onion`` (``None``
    for UNKNOWN).
    ``descriptor_id`` is the blinded key (base64) for v3. ``reason`` is set on FAILED
    (``UPLOAD_REJECTED``, ``NOT_FOUND``, ``QUERY_NO_HSDIR`` …).
    """

    EVENT: ClassVar[str] = "HS_DESC"
    action: str
    address: str | None
    auth_type: str
    hsdir: HsDirRef | None
    descriptor_id: str | None = None
    reason: str | None = None
    replica: int | None = None
    hsdir_index: str | None = None

    @property
    def event_type(self) -> str:
        return self.EVENT


@dataclass(frozen=True, slots=True)
class HsDescContentEvent:
    """``650+HS_DESC_CONTENT HSAddress DescId HsDir`` + the descriptor as a data block
    (control-spec §4.1.26). ``descriptor`` is ``""`` when the fetch found nothing."""

    EVENT: ClassVar[str] = "HS_DESC_CONTENT"
    address: str | None
    descriptor_id: str | None
    hsdir: HsDirRef | None
    descriptor: str

    @property
    def event_type(self) -> str:
        return self.EVENT


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """``650 STATUS_CLIENT|STATUS_GENERAL|STATUS_SERVER Severity Action [Arguments]``
    (control-spec §4.1.10 "Status events"). E.g. ``STATUS_CLIENT NOTICE CONSENSUS_ARRIVED`` or
    ``STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"``.
    """

    kind: str
    severity: str
    action: str
    arguments: tuple[tuple[str, str], ...] = ()

    @property
    def event_type(self) -> str:
        return self.kind

    def argument(self, name: str) -> str | None:
        for key, value in self.arguments:
            if key == name:
                return value
        return None


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """An event onionfleet has no type for, or a known one that did not parse (``parse_error``)."""

    keyword: str
    lines: tuple[ReplyLine, ...]
    parse_error: str | None = None

    @property
    def event_type(self) -> str:
        return self.keyword


@dataclass(frozen=True, slots=True)
class ControllerReconnected:
    """Not from tor: the controller delivers this to every subscription after it reconnected and
    restored the subscriptions. Events in between may have been missed; re-read state."""

    generation: int

    @property
    def event_type(self) -> str:
        return "ONIONFLEET_RECONNECTED"


Event = HsDescEvent | HsDescContentEvent | StatusEvent | UnknownEvent | ControllerReconnected

STATUS_EVENTS = frozenset({"STATUS_CLIENT", "STATUS_GENERAL", "STATUS_SERVER"})


@dataclass(frozen=True, slots=True)
class BootstrapStatus:
    """Bootstrap progress: ``BOOTSTRAP PROGRESS=num TAG=… SUMMARY=…`` (control-spec §4.1.10,
    "Bootstrap phases"; also the value of ``GETINFO status/bootstrap-phase``)."""

    progress: int
    tag: str
    summary: str
    warning: str | None = None

    @property
    def done(self) -> bool:
        return self.progress >= 100


def _positional(args: list[Argument]) -> list[str]:
    return [a.value for a in args if a.key is None]


def _keywords(args: list[Argument]) -> dict[str, str]:
    return {a.key: a.value for a in args if a.key is not None}


def _hs_desc(args: list[Argument]) -> HsDescEvent:
    pos = _positional(args)
    kw = _keywords(args)
    if len(pos) < 4:
        raise RemoteProtocolError("HS_DESC event has fewer than 4 positional fields")
    replica: int | None = None
    if "REPLICA" in kw:
        if not kw["REPLICA"].isdigit():
            raise RemoteProtocolError("HS_DESC REPLICA= is not a number")
        replica = int(kw["REPLICA"])
    return HsDescEvent(
        action=pos[0],
        address=None if pos[1] == "UNKNOWN" else pos[1],
        auth_type=pos[2],
        hsdir=parse_hsdir_ref(pos[3]),
        descriptor_id=pos[4] if len(pos) > 4 else None,
        reason=kw.get("REASON"),
        replica=replica,
        hsdir_index=kw.get("HSDIR_INDEX"),
    )


def _hs_desc_content(args: list[Argument], data: str) -> HsDescContentEvent:
    pos = _positional(args)
    if len(pos) < 3:
        raise RemoteProtocolError("HS_DESC_CONTENT event has fewer than 3 fields")
    return HsDescContentEvent(
        address=None if pos[0] == "UNKNOWN" else pos[0],
        descriptor_id=None if pos[1] == "UNKNOWN" else pos[1],
        hsdir=parse_hsdir_ref(pos[2]),
        descriptor=data,
    )


def _status(kind: str, args: list[Argument]) -> StatusEvent:
    if len(args) < 2 or args[0].key is not None or args[1].key is not None:
        raise RemoteProtocolError(f"{kind} event lacks severity and action")
    rest = tuple((a.key if a.key is not None else "", a.value) for a in args[2:])
    return StatusEvent(kind, args[0].value, args[1].value, rest)


def parse_bootstrap_phase(text: str) -> BootstrapStatus:
    """Parse ``NOTICE BOOTSTRAP PROGRESS=… TAG=… SUMMARY="…"`` (the severity may be absent)."""
    args = split_arguments(text)
    kw = _keywords(args)
    progress = kw.get("PROGRESS", "")
    if not progress.isdigit():
        raise RemoteProtocolError(f"bootstrap status without a numeric PROGRESS=: {text[:80]!r}")
    return BootstrapStatus(
        int(progress), kw.get("TAG", ""), kw.get("SUMMARY", ""), kw.get("WARNING")
    )


def parse_event(lines: tuple[ReplyLine, ...]) -> Event:
    """Turn the lines of one async reply (status 6xx) into a typed event; never raises."""
    first = lines[0]
    keyword, _, rest = first.text.partition(" ")
    if not keyword:
        return UnknownEvent(keyword, lines, "event without a keyword")
    try:
        args = split_arguments(rest)
        if keyword == HsDescEvent.EVENT:
            return _hs_desc(args)
        if keyword == HsDescContentEvent.EVENT:
            return _hs_desc_content(args, first.data or "")
        if keyword in STATUS_EVENTS:
            return _status(keyword, args)
    except ControlProtocolError as exc:
        return UnknownEvent(keyword, lines, str(exc))
    return UnknownEvent(keyword, lines)
