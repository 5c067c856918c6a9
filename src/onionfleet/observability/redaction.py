"""Finding and removing secret material in text: logs, status documents, metrics output.

Secrets (the cluster token, the master secret key, the derived MAC key …) must never be written
anywhere in the first place; this module is the second line of defence and the test oracle:

* :func:`secret_forms` lists the textual forms a secret can take when some code formats it by
  mistake: the raw text, hex (lower and upper), base64 (standard and URL-safe, padded and
  unpadded) and base32 (upper and lower case, padded and unpadded), of the secret and, for a text
  secret, of its UTF-8 bytes;
* :func:`find_secrets` scans a text for any of those forms (the end-to-end secret scan of
  issue 7 uses it); it reports *which* secret in *which* form, never the secret itself;
* :class:`Redactor` replaces every form with ``<redacted>``.

It also redacts onion addresses the way ``TcpTarget.display`` does (arti's habit: ``???`` plus the
last three characters), for label values that come from operator-chosen names.

Limits: a secret embedded at an unaligned offset inside a larger hex/base64/base32 blob has no
fixed textual form and is not found; only the whole-secret encodings above are.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "MIN_SECRET_LEN",
    "REDACTED",
    "Redactor",
    "SecretForm",
    "find_secrets",
    "redact_onion_addresses",
    "secret_forms",
]

REDACTED = "<redacted>"

#: Shortest secret the :class:`Redactor` accepts: shorter strings would mangle ordinary text.
MIN_SECRET_LEN = 8

_ONION_V3 = re.compile(r"\b([a-z2-7]{53})([a-z2-7]{3})(\.onion)\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class SecretForm:
    """One textual form of a secret. ``repr`` never shows the text."""

    encoding: str
    text: str

    def __repr__(self) -> str:
        return f"SecretForm({self.encoding}, <{len(self.text)} chars>)"


def _as_bytes(secret: bytes | str) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)


def secret_forms(secret: bytes | str) -> tuple[SecretForm, ...]:
    """Every textual form of ``secret`` searched for (see the module docstring); no duplicates."""
    raw = _as_bytes(secret)
    if not raw:
        return ()
    forms: list[SecretForm] = []
    if isinstance(secret, str):
        forms.append(SecretForm("raw", secret))
    else:
        try:
            forms.append(SecretForm("raw", raw.decode("utf-8")))
        except UnicodeDecodeError:
            forms.append(SecretForm("raw", raw.decode("latin-1")))
    hex_lower = raw.hex()
    forms += [SecretForm("hex", hex_lower), SecretForm("hex", hex_lower.upper())]
    for name, encoded in (
        ("base64", base64.b64encode(raw).decode("ascii")),
        ("base64url", base64.urlsafe_b64encode(raw).decode("ascii")),
    ):
        forms.append(SecretForm(name, encoded))
        forms.append(SecretForm(f"{name} unpadded", encoded.rstrip("=")))
    b32 = base64.b32encode(raw).decode("ascii")
    for text in (b32, b32.lower()):
        forms.append(SecretForm("base32", text))
        forms.append(SecretForm("base32 unpadded", text.rstrip("=")))
    seen: set[str] = set()
    unique = []
    for form in forms:
        if form.text and form.text not in seen:
            seen.add(form.text)
            unique.append(form)
    return tuple(unique)


def find_secrets(text: str, secrets: Iterable[bytes | str]) -> list[str]:
    """Which secrets occur in ``text`` and in which form, e.g. ``["secret #1 as hex"]``.

    An empty list means none was found. The result names secrets by their position in
    ``secrets`` and never contains secret material, so a test may print it.
    """
    found: list[str] = []
    for index, secret in enumerate(secrets):
        for form in secret_forms(secret):
            if form.text in text:
                found.append(f"secret #{index} as {form.encoding}")
    return found


class Redactor:
    """Replaces every registered secret, in every form of :func:`secret_forms`, by ``<redacted>``.

    Mutable (secrets are added at start-up); :meth:`redact` is cheap when nothing is registered.
    """

    __slots__ = ("_forms", "_pattern")

    def __init__(self, secrets: Iterable[bytes | str] = ()) -> None:
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for secret in secrets:
            self.add(secret)

    def add(self, secret: bytes | str) -> None:
        """Register one secret; ``ValueError`` if it is shorter than :data:`MIN_SECRET_LEN`."""
        if len(_as_bytes(secret)) < MIN_SECRET_LEN:
            raise ValueError(
                f"a secret to redact must be at least {MIN_SECRET_LEN} bytes; "
                "shorter strings would be replaced all over ordinary log text"
            )
        self._forms.update(form.text for form in secret_forms(secret))
        ordered = sorted(self._forms, key=len, reverse=True)  # longest first: no partial leftovers
        self._pattern = re.compile("|".join(re.escape(text) for text in ordered))

    @property
    def count(self) -> int:
        """How many textual forms are registered."""
        return len(self._forms)

    def redact(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(REDACTED, text)

    def __repr__(self) -> str:
        return f"Redactor(<{len(self._forms)} forms>)"


def redact_onion_addresses(text: str) -> str:
    """Replace every v3 onion address in ``text`` by ``???`` + its last three characters."""
    return _ONION_V3.sub(lambda m: f"???{m.group(2)}{m.group(3)}", text)
