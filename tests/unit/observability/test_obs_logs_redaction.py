"""Structured logs and secret redaction; find_secrets in every encoding."""

from __future__ import annotations

import base64
import io
import json
import logging

import pytest

from onionfleet.observability.logs import SecretRedactor, setup_logging
from onionfleet.observability.redaction import (
    REDACTED,
    Redactor,
    find_secrets,
    redact_onion_addresses,
    secret_forms,
)

KEY = bytes(range(200, 232)) + bytes(range(0, 32))  # 64 bytes, not valid UTF-8
TOKEN = "cluster-token-Zm9vYmFyYmF6cXV4"
ONION = "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion"


def encodings(raw: bytes) -> dict[str, str]:
    b64 = base64.b64encode(raw).decode()
    b64u = base64.urlsafe_b64encode(raw).decode()
    b32 = base64.b32encode(raw).decode()
    return {
        "hex": raw.hex(),
        "HEX": raw.hex().upper(),
        "base64": b64,
        "base64 unpadded": b64.rstrip("="),
        "base64url": b64u,
        "base64url unpadded": b64u.rstrip("="),
        "base32": b32,
        "base32 unpadded": b32.rstrip("="),
        "base32 lower": b32.lower(),
        "base32 lower unpadded": b32.lower().rstrip("="),
    }


@pytest.mark.parametrize("form", list(encodings(KEY)))
def test_find_secrets_finds_every_encoding_of_bytes(form: str) -> None:
    text = f"some log line ... {encodings(KEY)[form]} ... more"
    found = find_secrets(text, [b"unrelated-secret-bytes", KEY])
    assert found, form
    assert all(f.startswith("secret #1 as ") for f in found)


@pytest.mark.parametrize("form", [*encodings(TOKEN.encode()), "raw"])
def test_find_secrets_finds_every_encoding_of_text(form: str) -> None:
    forms = {**encodings(TOKEN.encode()), "raw": TOKEN}
    assert find_secrets(f"x{forms[form]}y", [TOKEN]) != []


def test_find_secrets_clean_text_and_reports_no_material() -> None:
    assert find_secrets("nothing to see here", [KEY, TOKEN]) == []
    found = find_secrets(f"token={TOKEN}", [KEY, TOKEN])
    assert found == ["secret #1 as raw"]
    assert TOKEN not in repr(secret_forms(TOKEN))


def test_redactor_replaces_all_forms_and_refuses_short_secrets() -> None:
    r = Redactor([KEY, TOKEN])
    for text in [*encodings(KEY).values(), TOKEN, *encodings(TOKEN.encode()).values()]:
        out = r.redact(f"a {text} b")
        assert out == f"a {REDACTED} b"
        assert find_secrets(out, [KEY, TOKEN]) == []
    with pytest.raises(ValueError, match="at least"):
        r.add("short")
    assert "cluster" not in repr(r)


def test_redact_onion_addresses() -> None:
    assert redact_onion_addresses(f"to {ONION}:80 now") == "to ???ryd.onion:80 now"
    assert redact_onion_addresses(ONION.upper()) == "???RYD.ONION"
    assert redact_onion_addresses("example.onion") == "example.onion"


@pytest.fixture
def logger() -> logging.Logger:
    log = logging.getLogger("onionfleet.test.obs")
    log.propagate = False
    yield log
    for h in list(log.handlers):
        log.removeHandler(h)
    log.propagate = True


def test_json_lines_with_extras(logger: logging.Logger) -> None:
    out = io.StringIO()
    setup_logging("INFO", "json", out, logger=logger)
    logger.info(
        "descriptor %s published\nsecond line",
        "first",
        extra={"event": "publish", "descriptor": "first", "hsdirs": 8, "raw": b"\x00\x01"},
    )
    logger.debug("not shown")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert doc["level"] == "INFO"
    assert doc["logger"] == "onionfleet.test.obs"
    assert doc["msg"] == "descriptor first published\nsecond line"
    assert doc["event"] == "publish"
    assert doc["hsdirs"] == 8
    assert doc["raw"] == "<2 bytes>"
    assert doc["ts"].endswith("Z") and "T" in doc["ts"]


def test_text_is_one_line_per_event(logger: logging.Logger) -> None:
    out = io.StringIO()
    setup_logging(logging.INFO, "text", out, logger=logger)
    try:
        raise RuntimeError("boom\nline two")
    except RuntimeError:
        logger.exception("failed to %s", "publish", extra={"event": "publish", "note": "a b"})
    text = out.getvalue()
    assert text.count("\n") == 1
    assert " ERROR onionfleet.test.obs: failed to publish event=publish " in text
    assert 'note="a b"' in text
    assert "exc=Traceback" in text and "\\n" in text


def test_redactor_filter_covers_message_args_extras_and_traceback(
    logger: logging.Logger,
) -> None:
    out = io.StringIO()
    redactor = setup_logging("DEBUG", "json", out, logger=logger)
    redactor.add_secret(TOKEN)
    redactor.add_secret(KEY)
    logger.info("token is " + TOKEN)
    logger.info("key hex %s", KEY.hex())
    logger.info(
        "extras",
        extra={
            "token": TOKEN,
            "nested": {"k": [base64.b64encode(KEY).decode(), 1]},
            "blob": KEY,
        },
    )
    try:
        raise ValueError(f"bad token {TOKEN}")
    except ValueError:
        logger.exception("oops")
    text = out.getvalue()
    assert find_secrets(text, [TOKEN, KEY]) == []
    assert text.count(REDACTED) >= 5
    docs = [json.loads(line) for line in text.splitlines()]
    assert docs[0]["msg"] == f"token is {REDACTED}"
    assert docs[2]["nested"] == {"k": [REDACTED, 1]}
    assert docs[2]["blob"] == REDACTED
    assert REDACTED in docs[3]["exc"]


def test_setup_logging_replaces_handlers_and_checks_format(logger: logging.Logger) -> None:
    first, second = io.StringIO(), io.StringIO()
    mine = SecretRedactor()
    assert setup_logging("INFO", "text", first, logger=logger, redactor=mine) is mine
    setup_logging("INFO", "text", second, logger=logger)
    logger.info("hello")
    assert first.getvalue() == "" and "hello" in second.getvalue()
    assert len(logger.handlers) == 1
    with pytest.raises(ValueError):
        setup_logging("INFO", "xml", second, logger=logger)  # type: ignore[arg-type]
