"""Structured logging: text or JSON, one line per event, secrets redacted on the way out.

Components log with ``logging.getLogger(__name__)`` and pass structured fields as extras::

    log.info("descriptor published", extra={"event": "publish", "descriptor": "first"})

:func:`setup_logging` (called only from :mod:`onionfleet.cli`) installs one handler with

* :class:`TextFormatter` — ``2026-11-22T11:54:22.123Z INFO onionfleet.publish: descriptor
  published event=publish descriptor=first``, or
* :class:`JsonFormatter` — one JSON object per line with ``ts``, ``level``, ``logger``, ``msg``,
  every extra as its own field, and ``exc`` for a traceback;

and a :class:`SecretRedactor` filter on that handler. The daemon registers the secrets with it at
start-up (the cluster token, the master secret key's forms, the derived MAC key): any occurrence in
the message, its arguments, extras or traceback becomes ``<redacted>``. That is defence in depth:
components must never log secrets in the first place (STYLE house rule 11).

Newlines inside a message or traceback are escaped (``\\n``) in both formats, so one event is
always exactly one line.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import IO, Any, Literal

from onionfleet.observability.redaction import REDACTED, Redactor

__all__ = ["JsonFormatter", "SecretRedactor", "TextFormatter", "setup_logging"]

LogFormat = Literal["text", "json"]

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRS = frozenset(
    {*logging.LogRecord("", 0, "", 0, "", (), None).__dict__, "message", "asctime", "taskName"}
)
_MAX_DEPTH = 6


def _iso(created: float) -> str:
    stamp = datetime.fromtimestamp(created, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS}


def _json_safe(value: Any, depth: int = 0) -> Any:
    """A JSON-serialisable form of an extra's value (bytes are never written out)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if depth >= _MAX_DEPTH:
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(v, depth + 1) for v in value]
    return str(value)


def _one_line(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")


class SecretRedactor(logging.Filter):
    """A handler filter that replaces registered secrets by ``<redacted>`` in whole records.

    It formats the message (``msg % args``) itself, redacts it and stores the result back with
    no args; string extras (also inside dicts/lists) and the formatted traceback are redacted
    too; byte-string extras become ``<N bytes>`` in output anyway. Attach it to *handlers*
    (a logger's filters do not see records propagated from child loggers).
    """

    def __init__(self, secrets: Iterable[bytes | str] = ()) -> None:
        super().__init__()
        self._redactor = Redactor(secrets)
        self._exc_formatter = logging.Formatter()

    def add_secret(self, secret: bytes | str) -> None:
        """Register a secret (>= 8 bytes) in all its textual forms."""
        self._redactor.add(secret)

    def redact(self, text: str) -> str:
        return self._redactor.redact(text)

    def filter(self, record: logging.LogRecord) -> bool:
        if self._redactor.count == 0:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what we can, redacted
            message = f"{record.msg!s} {record.args!s}"
        record.msg = self._redactor.redact(message)
        record.args = None
        for key, value in _extras(record).items():
            setattr(record, key, self._scrub(value, 0))
        if record.exc_info and not record.exc_text:
            record.exc_text = self._exc_formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redactor.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redactor.redact(record.stack_info)
        return True

    def _scrub(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return self._redactor.redact(value)
        if isinstance(value, bytes | bytearray):
            text = bytes(value).decode("latin-1")
            return REDACTED if self._redactor.redact(text) != text else value
        if depth >= _MAX_DEPTH:
            return value
        if isinstance(value, Mapping):
            return {k: self._scrub(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._scrub(v, depth + 1) for v in value]
        if isinstance(value, bool | int | float) or value is None:
            return value
        text = str(value)
        redacted = self._redactor.redact(text)
        return redacted if redacted != text else value


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg``, extras, ``exc``."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": _iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in _extras(record).items():
            if key not in doc:
                doc[key] = _json_safe(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exc"] = record.exc_text
        if record.stack_info:
            doc["stack"] = record.stack_info
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """``<ts> <LEVEL> <logger>: <msg> key=value …`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [f"{_iso(record.created)} {record.levelname} {record.name}: "]
        parts.append(_one_line(record.getMessage()))
        for key, value in _extras(record).items():
            shown = _json_safe(value)
            text = shown if isinstance(shown, str) else json.dumps(shown, ensure_ascii=False)
            if not text or any(c.isspace() or c in '"=' for c in text):
                text = json.dumps(text, ensure_ascii=False)
            parts.append(f" {key}={_one_line(text)}")
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            parts.append(f" exc={_one_line(record.exc_text)}")
        return "".join(parts)


def setup_logging(
    level: str | int,
    fmt: LogFormat,
    stream: IO[str],
    *,
    redactor: SecretRedactor | None = None,
    logger: logging.Logger | None = None,
) -> SecretRedactor:
    """Send ``logger``'s records (default: the root logger) to ``stream`` in ``fmt``.

    Replaces the logger's existing handlers (e.g. the CLI's ``basicConfig`` one), installs
    ``redactor`` (a new, empty one by default) on the new handler and returns it, so the daemon
    can register its secrets with :meth:`SecretRedactor.add_secret`.
    """
    if fmt not in ("text", "json"):
        raise ValueError(f"log format must be 'text' or 'json', got {fmt!r}")
    target = logger if logger is not None else logging.getLogger()
    active = redactor if redactor is not None else SecretRedactor()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(active)
    for old in list(target.handlers):
        target.removeHandler(old)
    target.addHandler(handler)
    target.setLevel(level)
    return active
