"""A pure view of the microdesc consensus and the relays' microdescriptors.

Input: the text of ``GETINFO dir/status-vote/current/consensus-microdesc`` (dir-spec §3.4.1, the
microdesc flavour) and of ``GETINFO md/all`` (dir-spec §3.3 microdescriptors). Output: a
:class:`ConsensusView` with the relays (nickname, RSA fingerprint, flags, microdesc digest,
ed25519 id), both shared-random values, the consensus params and the validity times — what the
descriptor engine's HSDir hash ring needs (rend-spec-v3 [HASHRING]).

**The md/all pitfall.** A microdescriptor's digest is SHA-256 over its text from ``onion-key``
through its final newline (tor ``microdescs_parse_from_string`` hashes ``[s, start_of_next)``).
``GETINFO md/all`` concatenates the bodies, but the control protocol's data-block framing cannot say
whether the text ended with a newline, so the *last* entry arrives without one. Hashing it as-is
gives a digest no ``m`` line matches, and that relay silently drops out of the HSDir ring
(Onionbalance 0.2.4's 7-of-8 uploads, DESIGN.md §2). :func:`split_microdescriptors` restores the
newline on every entry.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

from onionfleet.tor.errors import ConsensusError

__all__ = [
    "ConsensusView",
    "Microdescriptor",
    "Relay",
    "SharedRandomValue",
    "build_consensus_view",
    "parse_microdesc_consensus",
    "parse_microdescriptors",
    "split_microdescriptors",
]

_ED25519_LEN = 32
_SRV_LEN = 32


def _b64decode_unpadded(text: str, what: str) -> bytes:
    """Tor writes most base64 in directory documents without ``=`` padding (dir-spec §1.2)."""
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConsensusError(f"{what} is not valid base64: {text[:60]!r}") from exc


def _parse_time(date: str, clock: str, what: str) -> int:
    try:
        parsed = datetime.strptime(f"{date} {clock}", "%Y-%m-%d %H:%M:%S")
    except ValueError as exc:
        raise ConsensusError(
            f"consensus {what} is not 'YYYY-MM-DD HH:MM:SS': {date} {clock}"
        ) from exc
    return int(parsed.replace(tzinfo=UTC).timestamp())


@dataclass(frozen=True, slots=True)
class SharedRandomValue:
    """``shared-rand-current-value`` / ``shared-rand-previous-value`` ``NumReveals Value``
    (dir-spec §3.4.1; srv-spec §4.1.4). ``value`` is the 32-byte SRV."""

    num_reveals: int
    value: bytes

    def __repr__(self) -> str:
        return f"SharedRandomValue(num_reveals={self.num_reveals}, value={self.value.hex()})"


@dataclass(frozen=True, slots=True)
class Relay:
    """One router entry of the microdesc consensus joined with its microdescriptor.

    ``fingerprint_hex`` is the upper-case hex RSA identity digest (the ``r`` line's identity);
    ``microdesc_digest_b64`` the ``m`` line (base64 SHA-256 of the microdescriptor, unpadded);
    ``ed25519_id`` the 32-byte key from the microdescriptor's ``id ed25519`` line, ``None`` when the
    microdescriptor is missing or has no ed25519 id.
    """

    nickname: str
    fingerprint_hex: str
    flags: frozenset[str]
    microdesc_digest_b64: str
    ed25519_id: bytes | None = None

    @property
    def is_hsdir(self) -> bool:
        return "HSDir" in self.flags


@dataclass(frozen=True, slots=True)
class ParsedConsensus:
    """The fields of a microdesc consensus onionfleet uses (dir-spec §3.4.1)."""

    valid_after: int
    fresh_until: int
    valid_until: int
    params: Mapping[str, int]
    srv_current: SharedRandomValue | None
    srv_previous: SharedRandomValue | None
    relays: tuple[Relay, ...]


@dataclass(frozen=True, slots=True)
class Microdescriptor:
    """One microdescriptor: its digest (as tor computes it) and its ed25519 id, if any."""

    digest_b64: str
    ed25519_id: bytes | None


@dataclass(frozen=True, slots=True)
class ConsensusView:
    """Relays, SRVs, params and times of one consensus. Times are Unix seconds (UTC).

    ``voting_interval_s`` is ``fresh_until - valid_after`` (dir-spec §1.4: a consensus is fresh for
    one voting interval). Use ``valid_after`` as "consensus time" for time-period arithmetic.
    """

    valid_after: int
    fresh_until: int
    valid_until: int
    params: Mapping[str, int]
    srv_current: SharedRandomValue | None
    srv_previous: SharedRandomValue | None
    relays: tuple[Relay, ...]
    _by_fingerprint: Mapping[str, Relay] = field(repr=False, compare=False, default_factory=dict)

    @property
    def voting_interval_s(self) -> int:
        return self.fresh_until - self.valid_after

    def param(self, name: str, default: int) -> int:
        """A consensus param (``params`` line), or the spec default the caller passes."""
        return self.params.get(name, default)

    def relay(self, fingerprint_hex: str) -> Relay | None:
        return self._by_fingerprint.get(fingerprint_hex.upper())

    def hsdirs(self) -> list[tuple[str, bytes]]:
        """``(fingerprint_hex, ed25519_id)`` of every relay with the HSDir flag and an ed25519 id,
        in consensus order — the node set of the HSDir hash ring (rend-spec-v3 [HASHRING];
        tor ``hs_get_responsible_hsdirs`` skips nodes without an ed25519 id)."""
        return [
            (r.fingerprint_hex, r.ed25519_id)
            for r in self.relays
            if r.is_hsdir and r.ed25519_id is not None
        ]

    def relays_missing_ed25519(self) -> list[Relay]:
        """Relays whose microdescriptor was missing or had no ed25519 id (should be empty)."""
        return [r for r in self.relays if r.ed25519_id is None]


def parse_microdesc_consensus(text: str) -> ParsedConsensus:
    """Parse the microdesc-flavoured consensus (dir-spec §3.4.1). Signatures are not checked: the
    text comes from our own tor over the control port, which already validated it."""
    lines = text.split("\n")
    if not lines or not lines[0].startswith("network-status-version 3"):
        raise ConsensusError("not a v3 consensus (no 'network-status-version 3' first line)")
    times: dict[str, int] = {}
    params: dict[str, int] = {}
    srv: dict[str, SharedRandomValue] = {}
    relays: list[Relay] = []
    entry: dict[str, str] = {}
    flags: frozenset[str] = frozenset()

    def finish_entry() -> None:
        if not entry:
            return
        if "m" not in entry:
            raise ConsensusError(f"router entry {entry.get('nickname', '?')} has no 'm' line")
        relays.append(Relay(entry["nickname"], entry["fingerprint"], flags, entry["m"]))
        entry.clear()

    for number, line in enumerate(lines, start=1):
        parts = line.split(" ")
        keyword = parts[0]
        if keyword == "r":
            finish_entry()
            flags = frozenset()
            if len(parts) < 3:
                raise ConsensusError(f"consensus line {number}: short 'r' line")
            identity = _b64decode_unpadded(parts[2], f"consensus line {number} identity")
            if len(identity) != 20:
                raise ConsensusError(f"consensus line {number}: identity is not 20 bytes")
            entry["nickname"] = parts[1]
            entry["fingerprint"] = identity.hex().upper()
        elif keyword == "s" and entry:
            flags = frozenset(p for p in parts[1:] if p)
        elif keyword == "m" and entry:
            if len(parts) < 2:
                raise ConsensusError(f"consensus line {number}: empty 'm' line")
            entry["m"] = parts[1]
        elif keyword in ("valid-after", "fresh-until", "valid-until"):
            if len(parts) < 3:
                raise ConsensusError(f"consensus line {number}: {keyword} lacks date and time")
            times[keyword] = _parse_time(parts[1], parts[2], keyword)
        elif keyword == "params" and not entry:
            for item in parts[1:]:
                name, sep, value = item.partition("=")
                try:
                    params[name] = int(value)
                except ValueError as exc:
                    raise ConsensusError(f"consensus param {item[:60]!r} is not NAME=INT") from exc
                if not sep:
                    raise ConsensusError(f"consensus param {item[:60]!r} is not NAME=INT")
        elif keyword in ("shared-rand-current-value", "shared-rand-previous-value"):
            if len(parts) < 3 or not parts[1].isdigit():
                raise ConsensusError(f"consensus line {number}: malformed {keyword}")
            srv_value = _b64decode_unpadded(parts[2], keyword)
            if len(srv_value) != _SRV_LEN:
                raise ConsensusError(f"{keyword} is {len(srv_value)} bytes, expected {_SRV_LEN}")
            srv[keyword] = SharedRandomValue(int(parts[1]), srv_value)
        elif keyword == "directory-footer":
            finish_entry()
            break
    finish_entry()
    missing = {"valid-after", "fresh-until", "valid-until"} - times.keys()
    if missing:
        raise ConsensusError(f"consensus lacks {', '.join(sorted(missing))}")
    return ParsedConsensus(
        times["valid-after"],
        times["fresh-until"],
        times["valid-until"],
        MappingProxyType(params),
        srv.get("shared-rand-current-value"),
        srv.get("shared-rand-previous-value"),
        tuple(relays),
    )


def split_microdescriptors(md_all: str) -> list[str]:
    """Split ``GETINFO md/all`` into microdescriptor texts, each ending with ``"\\n"``.

    A microdescriptor starts at an ``onion-key`` line (annotations ``@…`` before it are not part of
    the hashed body) — tor ``find_start_of_next_microdesc``. The last entry lacks its final newline
    on the control port; it is added back here (see the module docstring).
    """
    entries: list[list[str]] = []
    for line in md_all.split("\n"):
        if line.startswith("@"):
            continue
        if line.startswith("onion-key") or not entries:
            entries.append([])
        entries[-1].append(line)
    out: list[str] = []
    for entry in entries:
        while entry and entry[-1] == "":
            entry.pop()
        if entry:
            out.append("\n".join(entry) + "\n")
    return out


def parse_microdescriptors(md_all: str) -> dict[str, Microdescriptor]:
    """Microdescriptors of ``md/all`` keyed by digest: base64(SHA-256(text)) without padding, the
    form of the consensus ``m`` line (dir-spec §3.4.1; tor ``microdesc_parse``)."""
    result: dict[str, Microdescriptor] = {}
    for text in split_microdescriptors(md_all):
        raw = text.encode("utf-8", "surrogateescape")
        digest = base64.b64encode(hashlib.sha256(raw).digest()).decode("ascii").rstrip("=")
        ed25519_id: bytes | None = None
        for line in text.split("\n"):
            if line.startswith("id ed25519 "):
                key = _b64decode_unpadded(line[len("id ed25519 ") :].strip(), "id ed25519")
                if len(key) != _ED25519_LEN:
                    raise ConsensusError("microdescriptor 'id ed25519' is not 32 bytes")
                ed25519_id = key
                break
        result[digest] = Microdescriptor(digest, ed25519_id)
    return result


def build_consensus_view(consensus_text: str, md_all: str) -> ConsensusView:
    """Join the consensus with the microdescriptors by digest (the ``m`` line)."""
    parsed = parse_microdesc_consensus(consensus_text)
    mds = parse_microdescriptors(md_all)
    relays = tuple(
        Relay(
            r.nickname,
            r.fingerprint_hex,
            r.flags,
            r.microdesc_digest_b64,
            md.ed25519_id if (md := mds.get(r.microdesc_digest_b64)) is not None else None,
        )
        for r in parsed.relays
    )
    return ConsensusView(
        parsed.valid_after,
        parsed.fresh_until,
        parsed.valid_until,
        parsed.params,
        parsed.srv_current,
        parsed.srv_previous,
        relays,
        MappingProxyType({r.fingerprint_hex: r for r in relays}),
    )
