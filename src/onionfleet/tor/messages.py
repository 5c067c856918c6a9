"""Values of the control protocol and its text helpers (pure; control-spec §2).

:class:`ReplyLine` and :class:`Reply` are what the codec assembles from tor's bytes (§2.3
"Replies from Tor to the controller"); :func:`quote` / :func:`unquote_at` / :func:`split_arguments`
handle QuotedString/CString arguments (control-spec §2.1, §2.1.1 "Notes on an escaping bug").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from onionfleet.tor.errors import LocalProtocolError, RemoteProtocolError, TorCommandError

__all__ = [
    "Argument",
    "Reply",
    "ReplyLine",
    "quote",
    "split_arguments",
    "unquote",
    "unquote_at",
]

_TEXT_ENCODING = "utf-8"
_TEXT_ERRORS = "surrogateescape"  # round-trips any byte tor sends: str -> bytes gives them back

_KEYWORD_ARG = re.compile(r"[A-Za-z0-9_]+=")
_OCTAL = frozenset("01234567")


def decode_text(raw: bytes) -> str:
    """Bytes from tor to ``str``; undecodable bytes survive as surrogates."""
    return raw.decode(_TEXT_ENCODING, _TEXT_ERRORS)


def encode_text(text: str) -> bytes:
    """Inverse of :func:`decode_text` (exact for every string that came from tor)."""
    return text.encode(_TEXT_ENCODING, _TEXT_ERRORS)


@dataclass(frozen=True, slots=True)
class ReplyLine:
    """One reply line: ``StatusCode ("-" / "+" / SP) ReplyText`` (control-spec §2.3).

    ``data`` is set only for a ``+`` line: the CmdData that followed it, dot-unstuffed, its lines
    joined with ``"\\n"`` and *without* a final newline (tor's CRLF framing does not say whether the
    original text ended with one — see the ``md/all`` pitfall in tor/consensus.py).
    """

    status: int
    separator: str
    text: str
    data: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """A complete synchronous reply: mid/data lines then the end line (control-spec §2.3)."""

    lines: tuple[ReplyLine, ...]

    @property
    def status(self) -> int:
        return self.lines[-1].status

    @property
    def text(self) -> str:
        """Text of the final line (``OK`` on success, the error message otherwise)."""
        return self.lines[-1].text

    @property
    def is_ok(self) -> bool:
        return 200 <= self.status < 300

    def raise_for_status(self, command: str = "") -> Reply:
        """Return ``self`` for 2xx, else raise :class:`TorCommandError` naming ``command``."""
        if not self.is_ok:
            raise TorCommandError(self.status, self.text, command)
        return self


@dataclass(frozen=True, slots=True)
class Argument:
    """One space-separated argument of a reply line: ``KEY=VALUE``, ``KEY="quoted"`` or a bare word.

    ``key`` is ``None`` for a positional argument. ``value`` is unescaped.
    """

    key: str | None
    value: str


def quote(value: str) -> str:
    """Quote ``value`` as a QuotedString for a command (control-spec §2.1).

    Backslash and double quote are escaped. CR, LF and NUL cannot travel inside one command line:
    they raise :class:`LocalProtocolError`.
    """
    if any(ch in value for ch in "\r\n\0"):
        raise LocalProtocolError(
            "a control-port argument cannot contain CR, LF or NUL; remove them from the value"
        )
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unquote_at(text: str, start: int) -> tuple[str, int]:
    """Parse the quoted string starting at ``text[start] == '"'``; return (value, index after it).

    Escapes are read as control-spec §2.1.1 recommends: ``\\n \\t \\r`` and octal ``\\0``…``\\377``
    as C escapes, a backslash before any other character means that character. Octal escapes are
    bytes (tor escapes each byte of non-ASCII text), so the value is re-decoded as UTF-8.
    """
    if start >= len(text) or text[start] != '"':
        raise RemoteProtocolError(f"expected a quoted string at offset {start} of a reply line")
    out = bytearray()
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            return decode_text(bytes(out)), i + 1
        if ch != "\\":
            out += encode_text(ch)
            i += 1
            continue
        if i + 1 >= n:
            break
        esc = text[i + 1]
        if esc in _OCTAL:
            j = i + 1
            while j < n and j < i + 4 and text[j] in _OCTAL:
                j += 1
            value = int(text[i + 1 : j], 8)
            if value > 0xFF:
                raise RemoteProtocolError(
                    f"octal escape \\{text[i + 1 : j]} in a quoted string is above \\377"
                )
            out.append(value)
            i = j
            continue
        out += {"n": b"\n", "t": b"\t", "r": b"\r"}.get(esc) or encode_text(esc)
        i += 2
    raise RemoteProtocolError("unterminated quoted string in a reply line")


def unquote(text: str) -> str:
    """Unquote a whole ``"…"`` string; a value without quotes is returned unchanged."""
    if not text.startswith('"'):
        return text
    value, end = unquote_at(text, 0)
    if end != len(text):
        raise RemoteProtocolError("trailing characters after a quoted string in a reply line")
    return value


def split_arguments(text: str) -> list[Argument]:
    """Split reply text into :class:`Argument` values (space separated; quotes may hold spaces).

    ``KEY=VALUE`` / ``KEY="…"`` become keyword arguments when KEY is ``[A-Za-z0-9_]+``
    (control-spec §2.3 / tor's ``kvline_parse``); everything else is positional.
    """
    args: list[Argument] = []
    i = 0
    n = len(text)
    while i < n:
        if text[i] == " ":
            i += 1
            continue
        key: str | None = None
        match = _KEYWORD_ARG.match(text, i)
        if match is not None:
            key = match.group()[:-1]
            i = match.end()
        if i < n and text[i] == '"':
            value, i = unquote_at(text, i)
            if i < n and text[i] != " ":
                raise RemoteProtocolError("a quoted argument must be followed by a space")
        else:
            end = text.find(" ", i)
            if end < 0:
                end = n
            value = text[i:end]
            i = end
        args.append(Argument(key, value))
    return args
