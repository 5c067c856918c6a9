"""Reading a tor's on-disk directory state and logs (pure: text in, facts out).

Files (tor ``networkstatus.c``/``microdesc.c``): ``cached-consensus`` is the ns-flavoured
consensus, ``cached-microdesc-consensus`` the microdesc one; router entries start with
``r <nickname> ...``, followed by ``m <digest>`` (microdesc flavour) and ``s <flags>``
(dir-spec [ROUTER-STATUS]). ``cached-microdescs`` plus its journal ``cached-microdescs.new``
hold the microdescriptors, each introduced by ``@``-annotations; a microdesc's digest is the
unpadded base64 SHA-256 of its text from ``onion-key`` on (dir-spec [MICRODESCRIPTORS];
tor ``microdescs_parse_from_string``).
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

__all__ = [
    "RouterStatus",
    "bootstrap_percent",
    "count_descriptor_uploads",
    "microdesc_digests",
    "parse_consensus",
    "tail_lines",
]

_BOOTSTRAP_RE = re.compile(r"Bootstrapped (\d{1,3})%")
_UPLOAD_OK = "Uploading hidden service descriptor: finished with status 200"


@dataclass(frozen=True, slots=True)
class RouterStatus:
    """One router entry of a consensus."""

    nickname: str
    flags: frozenset[str]
    microdesc_digest: str | None


def parse_consensus(text: str) -> dict[str, RouterStatus]:
    """Router entries by nickname (the last entry wins if a nickname repeats)."""
    routers: dict[str, RouterStatus] = {}
    nickname: str | None = None
    flags: frozenset[str] = frozenset()
    digest: str | None = None

    def flush() -> None:
        if nickname is not None:
            routers[nickname] = RouterStatus(nickname, flags, digest)

    for line in text.splitlines():
        if line.startswith("r "):
            flush()
            parts = line.split()
            nickname = parts[1] if len(parts) > 1 else None
            flags = frozenset()
            digest = None
        elif nickname is None:
            continue
        elif line.startswith("s "):
            flags = frozenset(line.split()[1:])
        elif line.startswith("m "):
            parts = line.split()
            digest = parts[1] if len(parts) > 1 else None
        elif line.startswith(("directory-footer", "bandwidth-weights", "directory-signature")):
            flush()
            nickname = None
    flush()
    return routers


def microdesc_digests(text: str) -> set[str]:
    """Digests of the microdescriptors stored in a ``cached-microdescs``(``.new``) file.

    A microdesc runs from its ``onion-key`` line to the next annotation (``@...``) or the next
    ``onion-key`` line; partial trailing entries simply hash to digests nobody lists.
    """
    digests: set[str] = set()
    current: list[str] | None = None

    def flush() -> None:
        if current:
            body = "".join(current).encode()
            digests.add(base64.b64encode(hashlib.sha256(body).digest()).decode().rstrip("="))

    for line in text.splitlines(keepends=True):
        if line.startswith("onion-key"):
            flush()
            current = [line]
        elif line.startswith("@"):
            flush()
            current = None
        elif current is not None:
            current.append(line)
    flush()
    return digests


def bootstrap_percent(text: str) -> int | None:
    """The last ``Bootstrapped N%`` in a tor notice log, or None."""
    found = _BOOTSTRAP_RE.findall(text)
    return int(found[-1]) if found else None


def count_descriptor_uploads(text: str) -> int:
    """Successful HS descriptor uploads in a ``[rend]info`` log (tor ``dirclient.c``)."""
    return text.count(_UPLOAD_OK)


def tail_lines(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:]) if lines > 0 else ""
