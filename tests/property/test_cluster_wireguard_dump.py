"""``wg show dump`` parsing under hostile input: >= 100,000 seeded mutations of real-looking dumps
either parse or raise WireGuardDumpError (never anything else, never the private key)."""

from __future__ import annotations

import base64
import contextlib
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from onionfleet.cluster.errors import WireGuardDumpError
from onionfleet.cluster.wireguard import parse_wg_dump

PRIVATE = base64.b64encode(b"\xee" * 32).decode()


def _sample(rng: random.Random) -> str:
    lines = [f"{PRIVATE}\t{base64.b64encode(rng.randbytes(32)).decode()}\t51820\toff"]
    for i in range(rng.randrange(0, 5)):
        key = base64.b64encode(bytes([i]) * 31 + rng.randbytes(1)).decode()
        endpoint = rng.choice(["(none)", f"10.203.0.{i}:51820", f"[fd00::{i}]:51820"])
        allowed = rng.choice(["(none)", f"10.77.0.{i}/32", f"10.77.0.{i}/32,fd00::{i}/128"])
        keepalive = rng.choice(["off", "25"])
        lines.append(f"{key}\t(none)\t{endpoint}\t{allowed}\t{rng.randrange(2**31)}\t"
                     f"{rng.randrange(2**40)}\t{rng.randrange(2**40)}\t{keepalive}")
    return "\n".join(lines) + "\n"


def test_mutated_dumps_raise_only_typed_errors() -> None:
    rng = random.Random(20261122)
    samples = [_sample(rng) for _ in range(50)]
    alphabet = "\t\n:/,.()-=0123456789abcdefABCDEF+ onf%[]\x00é"
    parsed = 0
    for _ in range(100_000):
        text = list(rng.choice(samples))
        for _ in range(rng.randrange(1, 4)):
            op = rng.randrange(3)
            at = rng.randrange(len(text) + 1)
            if op == 0 and text:
                text[min(at, len(text) - 1)] = rng.choice(alphabet)
            elif op == 1:
                del text[at:at + rng.randrange(1, 20)]
            else:
                text[at:at] = [rng.choice(alphabet) for _ in range(rng.randrange(1, 8))]
        try:
            parse_wg_dump("".join(text))
        except WireGuardDumpError as exc:
            assert PRIVATE not in str(exc)
            continue
        parsed += 1
    assert 0 < parsed < 100_000


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_raises_only_typed_errors(text: str) -> None:
    with contextlib.suppress(WireGuardDumpError):
        parse_wg_dump(text)
