"""Sans-IO tor control-protocol codec (control-spec §2; shaped like h11, STYLE.md §1).

:class:`ControlCodec` never touches a socket. :meth:`ControlCodec.feed` takes bytes from tor and
returns the complete messages they finish: a :class:`~onionfleet.tor.messages.Reply` for each
synchronous reply (status 2xx-5xx; match them to commands in order, control-spec §1 "Servers respond
to messages in the order messages are received") and a typed event for each asynchronous ``6xx``
reply (control-spec §4.1). :func:`encode_command` turns a :class:`Command` into bytes.

Bounds: a line longer than ``max_line_bytes`` or a reply larger than ``max_reply_bytes`` is refused
with :class:`RemoteProtocolError` (the spec sets no limit, §2.1; we do, so a broken or hostile peer
cannot make us buffer without end). After any remote error the codec stays in its error state.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from onionfleet.tor.errors import LocalProtocolError, RemoteProtocolError
from onionfleet.tor.events import Event, parse_event
from onionfleet.tor.messages import Reply, ReplyLine, decode_text, encode_text

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "DEFAULT_MAX_REPLY_BYTES",
    "Command",
    "ControlCodec",
    "encode_command",
]

#: Tor's longest single lines are GETINFO values and events (well under 10 kB); data blocks carry
#: long documents line by line. 64 KiB leaves a wide margin.
DEFAULT_MAX_LINE_BYTES = 64 * 1024
#: ``GETINFO md/all`` on the public network is ~5-10 MB and the microdesc consensus ~3 MB.
DEFAULT_MAX_REPLY_BYTES = 64 * 1024 * 1024

_COMMAND_KEYWORD = re.compile(r"[A-Za-z_]+")
_SEPARATORS = frozenset(b"- +")


@dataclass(frozen=True, slots=True)
class Command:
    """A command to tor (control-spec §2.2). ``data`` makes it a ``+`` multi-line command.

    ``secret`` hides the arguments from ``repr`` (AUTHENTICATE carries the password or cookie hash).
    """

    keyword: str
    args: tuple[str, ...] = ()
    data: str | None = None
    secret: bool = False

    def __repr__(self) -> str:
        args = "<hidden>" if self.secret else repr(self.args)
        data = "" if self.data is None else f", data=<{len(self.data)} chars>"
        return f"Command({self.keyword!r}, {args}{data})"

    def encode(self) -> bytes:
        return encode_command(self.keyword, self.args, data=self.data)


def _dot_stuff(data: str) -> bytes:
    """CmdData framing (control-spec §2.2, §2.4 "CmdData", RFC 2821 §4.5.2)."""
    if data.endswith("\n"):
        data = data[:-1]
    out = bytearray()
    if data:
        for raw_line in data.split("\n"):
            line = raw_line.removesuffix("\r")
            if "\r" in line or "\0" in line:
                raise LocalProtocolError("command data contains a bare CR or a NUL")
            if line.startswith("."):
                out += b"."
            out += encode_text(line) + b"\r\n"
    out += b".\r\n"
    return bytes(out)


def encode_command(keyword: str, args: Iterable[str] = (), *, data: str | None = None) -> bytes:
    """Serialize one command (control-spec §2.2).

    Raises :class:`LocalProtocolError` for a bad keyword, an argument with CR/LF/NUL, or an
    ``HSPOST`` without ``HSADDRESS=``: tor 0.4.9's ``handle_control_hspost`` removed the v2 path and
    then never answers such a command, which would stall every command pipelined after it
    (DESIGN.md §2, research/testnet.md "Control-port findings").
    """
    if _COMMAND_KEYWORD.fullmatch(keyword) is None:
        raise LocalProtocolError(f"not a control-port command keyword: {keyword[:40]!r}")
    arg_list: Sequence[str] = list(args)
    for arg in arg_list:
        if any(ch in arg for ch in "\r\n\0"):
            raise LocalProtocolError(f"an argument of {keyword} contains CR, LF or NUL")
    if keyword.upper() == "HSPOST":
        if not any(a.upper().startswith("HSADDRESS=") for a in arg_list):
            raise LocalProtocolError(
                "HSPOST needs HSADDRESS=<address>: tor 0.4.9 never answers an HSPOST without it"
            )
        if data is None:
            raise LocalProtocolError("HSPOST needs the descriptor as command data")
    line = " ".join([keyword, *arg_list])
    if data is None:
        return encode_text(line) + b"\r\n"
    return b"+" + encode_text(line) + b"\r\n" + _dot_stuff(data)


class ControlCodec:
    """Incremental parser of tor's replies and events (control-spec §2.3).

    ``feed(data)`` buffers ``data`` and returns every message completed so far, in order.
    ``feed_eof()`` checks that no message was cut off by the end of the stream.
    """

    def __init__(
        self,
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
    ) -> None:
        if max_line_bytes < 8 or max_reply_bytes < max_line_bytes:
            raise ValueError("max_line_bytes must be >= 8 and <= max_reply_bytes")
        self._max_line = max_line_bytes
        self._max_reply = max_reply_bytes
        self._buf = bytearray()
        self._lines: list[ReplyLine] = []
        self._reply_bytes = 0
        # Set while inside a "+" data block: header fields and the collected data lines.
        self._data_header: tuple[int, str] | None = None
        self._data_lines: list[bytes] = []
        self._error: str | None = None

    @property
    def in_error(self) -> bool:
        return self._error is not None

    @property
    def buffered_bytes(self) -> int:
        return len(self._buf)

    def _fail(self, message: str) -> RemoteProtocolError:
        self._error = message
        self._buf.clear()
        self._lines.clear()
        self._data_lines.clear()
        return RemoteProtocolError(message)

    def feed(self, data: bytes) -> list[Reply | Event]:
        """Add bytes from tor; return the replies and events they complete."""
        if self._error is not None:
            raise RemoteProtocolError(f"control codec already failed ({self._error}); reconnect")
        self._buf += data
        out: list[Reply | Event] = []
        buf = self._buf
        pos = 0
        try:
            while True:
                nl = buf.find(b"\n", pos)
                if nl < 0:
                    if len(buf) - pos > self._max_line:
                        raise self._fail(
                            f"a line from tor exceeds {self._max_line} bytes; refusing it"
                        )
                    break
                end = nl
                if end > pos and buf[end - 1] == 0x0D:
                    end -= 1
                if end - pos > self._max_line:
                    raise self._fail(f"a line from tor exceeds {self._max_line} bytes; refusing it")
                self._reply_bytes += nl + 1 - pos
                if self._reply_bytes > self._max_reply:
                    raise self._fail(
                        f"a reply from tor exceeds {self._max_reply} bytes; refusing it"
                    )
                line = bytes(buf[pos:end])
                pos = nl + 1
                message = self._line(line)
                if message is not None:
                    out.append(message)
        finally:
            if self._error is None:
                del buf[:pos]
        return out

    def feed_eof(self) -> None:
        """The stream ended: raise if a reply or event was cut off (truncated input)."""
        if self._error is not None:
            return
        if self._buf or self._lines or self._data_header is not None:
            raise self._fail("the control connection closed in the middle of a reply")

    def _line(self, line: bytes) -> Reply | Event | None:
        if self._data_header is not None:
            if line != b".":
                self._data_lines.append(line[1:] if line.startswith(b".") else line)
                return None
            status, text = self._data_header
            self._data_header = None
            data = decode_text(b"\n".join(self._data_lines))
            self._data_lines = []
            self._lines.append(ReplyLine(status, "+", text, data))
            return None
        if len(line) < 4:
            raise self._fail(f"reply line too short: {line[:20]!r}")
        head = line[:3]
        sep = line[3]
        if not head.isdigit() or sep not in _SEPARATORS:
            raise self._fail(f"not a reply line (StatusCode then -, + or space): {line[:20]!r}")
        status = int(head)
        if status < 100:
            raise self._fail(f"reply status {status} is not a 3-digit code")
        if self._lines and self._lines[0].status != status:
            raise self._fail(
                f"reply status changed from {self._lines[0].status} to {status} inside one reply"
            )
        text = decode_text(line[4:])
        if sep == 0x2B:  # "+"
            self._data_header = (status, text)
            return None
        self._lines.append(ReplyLine(status, chr(sep), text))
        if sep == 0x2D:  # "-"
            return None
        lines = tuple(self._lines)
        self._lines = []
        self._reply_bytes = 0
        if 600 <= status < 700:
            return parse_event(lines)
        return Reply(lines)
