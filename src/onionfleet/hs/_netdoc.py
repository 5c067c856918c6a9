"""A small, strict tokenizer for tor's directory-document format (dir-spec [netdoc-format]).

``Keyword args…`` lines, each optionally followed by one ``-----BEGIN LABEL-----`` /
``-----END LABEL-----`` object. Used for the three descriptor layers. Hostile input raises only
:class:`~onionfleet.hs.errors.DescriptorError`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from onionfleet.hs.errors import DescriptorError

_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\Z")
_BEGIN = re.compile(r"-----BEGIN ([A-Za-z0-9 ]{1,64})-----\Z")
_B64_LINE = re.compile(r"[A-Za-z0-9+/=]*\Z")
_B64_BODY = _B64_LINE
#: Bound on a layer's line count; a 50 kB descriptor has far fewer.
_MAX_LINES = 100_000


@dataclass(frozen=True, slots=True)
class Token:
    keyword: str
    args: tuple[str, ...]
    obj_label: str | None
    obj: bytes | None
    start: int  # offset of the keyword's first character in the text


def b64decode_loose(text: str, what: str, expected_len: int | None = None) -> bytes:
    """Base64 with or without padding (tor accepts both), strict alphabet."""
    if not text or not _B64_LINE.match(text) or "=" in text.rstrip("="):
        raise DescriptorError(f"{what}: not valid base64")
    padded = text.rstrip("=")
    padded += "=" * (-len(padded) % 4)
    try:
        raw = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DescriptorError(f"{what}: not valid base64") from exc
    if expected_len is not None and len(raw) != expected_len:
        raise DescriptorError(f"{what}: decodes to {len(raw)} bytes, expected {expected_len}")
    return raw


def b64_nopad(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def b64_multiline(raw: bytes) -> str:
    """tor ``base64_encode(..., BASE64_ENCODE_MULTILINE)``: 64-column lines, each ending in
    ``\\n``."""
    return b"".join(binascii.b2a_base64(raw[i : i + 48]) for i in range(0, len(raw), 48)).decode(
        "ascii"
    )


def tokenize(text: str, what: str) -> list[Token]:
    """Split ``text`` into tokens. Blank lines are skipped, as tor's tokenizer does."""
    if "\x00" in text:
        raise DescriptorError(f"{what}: contains a NUL byte")
    if not text.isascii():
        raise DescriptorError(f"{what}: contains non-ASCII characters")
    lines = text.split("\n")
    if len(lines) > _MAX_LINES:
        raise DescriptorError(f"{what}: too many lines")
    tokens: list[Token] = []
    offset = 0
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        line_start = offset
        offset += len(line) + 1
        i += 1
        if not line.strip():
            continue
        if line.startswith("-----"):
            raise DescriptorError(f"{what}: object without a keyword line")
        parts = line.split()
        if line[0].isspace():
            raise DescriptorError(f"{what}: line starts with whitespace")
        keyword = parts[0]
        if not _KEYWORD.match(keyword):
            raise DescriptorError(f"{what}: bad keyword {keyword[:32]!r}")
        label: str | None = None
        obj: bytes | None = None
        if i < n and lines[i].startswith("-----BEGIN "):
            m = _BEGIN.match(lines[i])
            if m is None:
                raise DescriptorError(f"{what}: malformed BEGIN line after {keyword!r}")
            label = m.group(1)
            end_line = f"-----END {label}-----"
            offset += len(lines[i]) + 1
            i += 1
            try:
                j = lines.index(end_line, i)
            except ValueError:
                raise DescriptorError(f"{what}: object {label!r} has no END line") from None
            body = lines[i:j]
            offset += sum(map(len, lines[i : j + 1])) + (j + 1 - i)
            i = j + 1
            if body and (max(map(len, body)) > 76 or not _B64_BODY.match("".join(body))):
                raise DescriptorError(f"{what}: bad base64 line in object {label!r}")
            joined = "".join(body)
            if len(joined) % 4:
                raise DescriptorError(f"{what}: object {label!r} has a truncated base64 body")
            try:
                obj = base64.b64decode(joined, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise DescriptorError(f"{what}: object {label!r} is not valid base64") from exc
        tokens.append(Token(keyword, tuple(parts[1:]), label, obj, line_start))
    return tokens


def expect_object(tok: Token, label: str, what: str) -> bytes:
    if tok.obj is None or tok.obj_label != label:
        raise DescriptorError(f"{what}: {tok.keyword!r} needs a {label!r} object")
    return tok.obj


def expect_no_object(tok: Token, what: str) -> None:
    if tok.obj is not None:
        raise DescriptorError(f"{what}: {tok.keyword!r} must not carry an object")


def expect_args(tok: Token, what: str, minimum: int, maximum: int | None = None) -> None:
    if len(tok.args) < minimum or (maximum is not None and len(tok.args) > maximum):
        raise DescriptorError(f"{what}: {tok.keyword!r} has {len(tok.args)} arguments")


def single(tokens: Sequence[Token], keyword: str, what: str, *, required: bool) -> Token | None:
    found = [t for t in tokens if t.keyword == keyword]
    if len(found) > 1:
        raise DescriptorError(f"{what}: {keyword!r} appears {len(found)} times")
    if not found:
        if required:
            raise DescriptorError(f"{what}: {keyword!r} is missing")
        return None
    return found[0]


def parse_uint(text: str, what: str, bits: int) -> int:
    if not text.isdigit() or not text.isascii() or len(text) > 20:
        raise DescriptorError(f"{what}: {text[:24]!r} is not an unsigned integer")
    value = int(text)
    if value >= 1 << bits:
        raise DescriptorError(f"{what}: {value} is out of range")
    return value


def required(tokens: Sequence[Token], keyword: str, what: str) -> Token:
    """Exactly one ``keyword`` token."""
    tok = single(tokens, keyword, what, required=True)
    if tok is None:  # pragma: no cover - single() raised already
        raise DescriptorError(f"{what}: {keyword!r} is missing")
    return tok
