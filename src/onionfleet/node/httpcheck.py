"""The small piece of HTTP/1.x the health probes need: pure, no I/O.

The probe sends an HTTP/1.0 ``GET`` (so the response cannot be chunked, RFC 9112 §7.1 "a server
MUST NOT send chunked to an HTTP/1.0 client") with ``Connection: close``, and reads the status
line, the header block and at most a bounded number of body bytes.

Grammar (RFC 9112 §4, §5): ``status-line = HTTP-version SP status-code SP [ reason-phrase ]``,
``HTTP-version = "HTTP/" DIGIT "." DIGIT``, ``status-code = 3DIGIT``;
``field-line = field-name ":" OWS field-value OWS``. Parsers raise only
:class:`~onionfleet.node.errors.HttpResponseError` on malformed input (fuzzed in
tests/property/test_proxy_protocol.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from onionfleet.node.errors import HttpResponseError, NodeConfigError

__all__ = [
    "DEFAULT_MAX_HEAD_BYTES",
    "ResponseHead",
    "StatusLine",
    "build_get_request",
    "parse_response_head",
    "parse_status_line",
]

DEFAULT_MAX_HEAD_BYTES = 16 * 1024
"""Largest status line + header block accepted (h11 uses the same 16 KiB)."""

_TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True, slots=True)
class StatusLine:
    """RFC 9112 §4 status line: ``HTTP/<major>.<minor> <3 digits> <reason>``."""

    http_version: str
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class ResponseHead:
    """A parsed status line and header block (field names lower-cased, order kept)."""

    status_line: StatusLine
    headers: tuple[tuple[str, str], ...]

    @property
    def content_length(self) -> int | None:
        """The Content-Length, or ``None`` if absent (body then ends at connection close)."""
        values = [v for k, v in self.headers if k == "content-length"]
        if not values:
            return None
        if len(set(values)) != 1 or not values[0].isdigit() or len(values[0]) > 18:
            raise HttpResponseError("HTTP response has an invalid or conflicting Content-Length")
        return int(values[0])


def _is_visible(byte: int) -> bool:
    return byte == 0x09 or 0x20 <= byte <= 0x7E or byte >= 0x80


def parse_status_line(line: bytes) -> StatusLine:
    """Parse one status line (without its CRLF)."""
    if len(line) < 12 or line[:5] != b"HTTP/":
        raise HttpResponseError("HTTP status line does not start with 'HTTP/x.y NNN'")
    major, dot, minor, sp1 = line[5], line[6], line[7], line[8]
    if not (0x30 <= major <= 0x39 and dot == 0x2E and 0x30 <= minor <= 0x39 and sp1 == 0x20):
        raise HttpResponseError("HTTP status line has a malformed HTTP version")
    code = line[9:12]
    if not all(0x30 <= c <= 0x39 for c in code):
        raise HttpResponseError("HTTP status code is not three digits")
    status = int(code)
    if status < 100:
        raise HttpResponseError(f"HTTP status code {status} is below 100")
    rest = line[12:]
    if rest and rest[0] != 0x20:
        raise HttpResponseError("HTTP status code is not followed by a space")
    reason_bytes = rest[1:]
    if not all(_is_visible(c) for c in reason_bytes):
        raise HttpResponseError("HTTP reason phrase contains control characters")
    return StatusLine(
        http_version=f"{chr(major)}.{chr(minor)}",
        status=status,
        reason=reason_bytes.decode("latin-1"),
    )


def _parse_field_line(line: bytes) -> tuple[str, str]:
    colon = line.find(b":")
    if colon <= 0:
        raise HttpResponseError("HTTP header line has no field name")
    name = line[:colon]
    if not all(c in _TCHAR for c in name):
        raise HttpResponseError("HTTP header field name has characters outside RFC 9110 token")
    value = line[colon + 1 :].strip(b" \t")
    if not all(_is_visible(c) for c in value):
        raise HttpResponseError("HTTP header field value contains control characters")
    return name.decode("ascii").lower(), value.decode("latin-1")


def parse_response_head(
    buf: bytes | bytearray, *, max_head_bytes: int = DEFAULT_MAX_HEAD_BYTES
) -> tuple[ResponseHead, int] | None:
    """Parse the status line and headers at the start of ``buf``.

    Returns ``None`` if the blank line ending the head has not arrived yet, else
    ``(head, bytes consumed)``. A head longer than ``max_head_bytes`` is an error.
    """
    data = bytes(buf[: max_head_bytes + 4])
    end = data.find(b"\r\n\r\n")
    if end < 0:
        if len(data) > max_head_bytes:
            raise HttpResponseError(f"HTTP response head is longer than {max_head_bytes} bytes")
        if data and not b"HTTP/".startswith(data[:5]):
            raise HttpResponseError("HTTP response does not start with 'HTTP/'")
        return None
    lines = data[:end].split(b"\r\n")
    status_line = parse_status_line(lines[0])
    headers = []
    for raw in lines[1:]:
        if raw[:1] in (b" ", b"\t"):
            raise HttpResponseError("HTTP header uses obsolete line folding")
        headers.append(_parse_field_line(raw))
    head = ResponseHead(status_line=status_line, headers=tuple(headers))
    return head, end + 4


def build_get_request(host: str, path: str) -> bytes:
    """The probe's request: ``GET <path> HTTP/1.0`` with Host, User-Agent and Connection: close."""
    if not path.startswith("/") or any(c <= " " or c == "\x7f" for c in path):
        raise NodeConfigError(
            f"probe path {path!r} must start with '/' and contain no spaces or control characters"
        )
    if not host or any(c <= " " or c == "\x7f" for c in host):
        raise NodeConfigError(f"probe host {host!r} is empty or has spaces/control characters")
    try:
        request = (
            f"GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: onionfleet-probe\r\n"
            "Accept: */*\r\nConnection: close\r\n\r\n"
        ).encode("ascii")
    except UnicodeEncodeError as exc:
        raise NodeConfigError(
            f"probe path or host {path!r} is not ASCII; percent-encode it"
        ) from exc
    return request
