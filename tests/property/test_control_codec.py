"""Control codec under hostile input: >= 100k mutated replies raise only our typed errors.

Structure round trips use hypothesis (modest example counts); the 100k hostile inputs use a fast
seeded mutation loop (tests/README rule: not 100k hypothesis examples).
"""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from onionfleet.tor.auth import parse_authchallenge, parse_protocolinfo
from onionfleet.tor.circuits import parse_circuit_status
from onionfleet.tor.codec import ControlCodec, encode_command
from onionfleet.tor.consensus import build_consensus_view
from onionfleet.tor.errors import (
    ConsensusError,
    ControlProtocolError,
    RemoteProtocolError,
    TorError,
)
from onionfleet.tor.events import UnknownEvent, parse_bootstrap_phase
from onionfleet.tor.messages import Reply, quote, split_arguments, unquote

FP = "B37D" + "0" * 36
DATA = Path(__file__).parent.parent / "unit" / "tor" / "data"

SEEDS: list[bytes] = [
    b"250 OK\r\n",
    b"250-version=0.4.9.11\r\n250+config-text=\r\nA b\r\n..dot\r\n.\r\n250 OK\r\n",
    b'552 Unrecognized key "x"\r\n',
    b"250-PROTOCOLINFO 1\r\n250-AUTH METHODS=COOKIE,SAFECOOKIE "
    b'COOKIEFILE="/var/lib/tor/control_auth_cookie"\r\n250-VERSION Tor="0.4.9.11"\r\n250 OK\r\n',
    b"250 AUTHCHALLENGE SERVERHASH=" + b"AB" * 32 + b" SERVERNONCE=" + b"cd" * 32 + b"\r\n",
    f"650 HS_DESC UPLOADED abc NO_AUTH ${FP}~relay0 kOyJ REASON=UPLOAD_REJECTED\r\n".encode(),
    f"650+HS_DESC_CONTENT abc kOyJ ${FP}~relay0\r\nhs-descriptor 3\r\n.\r\n650 OK\r\n".encode(),
    b'650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=85 TAG=ap SUMMARY="a \\"b\\" \\303\\251"\r\n',
    b"650 STATUS_CLIENT NOTICE CONSENSUS_ARRIVED\r\n",
    b"650-CONF_CHANGED\r\n650-Nickname=x\r\n650 OK\r\n",
    b"250-status/bootstrap-phase=NOTICE BOOTSTRAP PROGRESS=100 TAG=done "
    b'SUMMARY="Done"\r\n250 OK\r\n',
]

HOSTILE_TOKENS = [
    b"\r\n",
    b"\n",
    b"\r",
    b".",
    b"..",
    b".\r\n",
    b'"',
    b"\\",
    b"\\777",
    b"\\x",
    b"=",
    b"+",
    b"-",
    b" ",
    b"650 ",
    b"650+",
    b"250-",
    b"250+",
    b"599 ",
    b"\x00",
    b"\xff\xfe",
    b"$" + b"A" * 40 + b"~n",
    b"HS_DESC ",
    b"STATUS_CLIENT ",
    b"PROGRESS=",
    b"REPLICA=x",
]

MAX_LINE = 512
MAX_REPLY = 4096


def _mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(8)
        pos = rng.randint(0, len(out))
        if choice == 0:  # truncate
            del out[pos:]
        elif choice == 1:  # insert a hostile token
            out[pos:pos] = rng.choice(HOSTILE_TOKENS)
        elif choice == 2 and out:  # flip a byte
            out[min(pos, len(out) - 1)] = rng.randrange(256)
        elif choice == 3:  # oversized line
            out[pos:pos] = b"x" * rng.choice((MAX_LINE - 5, MAX_LINE + 1, MAX_LINE * 3))
        elif choice == 4:  # interleave another message
            out[pos:pos] = rng.choice(SEEDS)
        elif choice == 5 and out:  # delete a range
            del out[pos : pos + rng.randint(1, 8)]
        elif choice == 6:  # duplicate
            out += out[: rng.randint(0, len(out))]
        else:  # long data block
            out[pos:pos] = b"250+k=\r\n" + b"line\r\n" * rng.randint(1, 900)
    return bytes(out)


def _exercise(data: bytes, rng: random.Random) -> None:
    codec = ControlCodec(max_line_bytes=MAX_LINE, max_reply_bytes=MAX_REPLY)
    messages = []
    try:
        i = 0
        while i < len(data):
            step = rng.randint(1, 64)
            messages.extend(codec.feed(data[i : i + step]))
            i += step
        codec.feed_eof()
    except ControlProtocolError:
        pass
    for message in messages:
        if isinstance(message, Reply):
            for parse in (parse_protocolinfo, parse_authchallenge):
                with contextlib.suppress(TorError):
                    parse(message)
            for line in message.lines:
                try:
                    split_arguments(line.text)
                    parse_bootstrap_phase(line.text)
                except TorError:
                    pass
        else:
            assert isinstance(message.event_type, str)
            if isinstance(message, UnknownEvent):
                assert message.lines


def test_codec_survives_100k_hostile_replies() -> None:
    rng = random.Random(0x0F1EE7)
    count = 0
    for _ in range(100_000):
        seed = rng.choice(SEEDS)
        if rng.random() < 0.3:
            seed = seed + rng.choice(SEEDS)
        _exercise(_mutate(rng, seed), rng)
        count += 1
    assert count >= 100_000


def test_line_over_the_bound_is_refused() -> None:
    codec = ControlCodec(max_line_bytes=MAX_LINE, max_reply_bytes=MAX_REPLY)
    try:
        codec.feed(b"250 " + b"y" * MAX_LINE + b"\r\n")
    except RemoteProtocolError as exc:
        assert "exceeds" in str(exc)
    else:
        raise AssertionError("an oversized line was accepted")


def test_consensus_parser_survives_mutations() -> None:
    consensus = (DATA / "testnet-consensus-microdesc.txt").read_text()
    md_all = (DATA / "testnet-md-all.txt").read_text()
    rng = random.Random(7)
    lines_c = consensus.split("\n")
    lines_m = md_all.split("\n")
    tokens = ["", " ", "=", "x=y", "shared-rand-current-value 1 @@", "r a b", "m", "id ed25519 !"]
    for _ in range(5_000):
        c = list(lines_c)
        m = list(lines_m)
        for target in (c, m):
            for _ in range(rng.randint(0, 3)):
                i = rng.randrange(len(target))
                op = rng.randrange(3)
                if op == 0:
                    target[i] = target[i][: rng.randint(0, len(target[i]))]
                elif op == 1:
                    target.insert(i, rng.choice(tokens + lines_c[:30]))
                else:
                    del target[i]
        with contextlib.suppress(ConsensusError):
            build_consensus_view("\n".join(c), "\n".join(m))


# ----------------------------------------------------------------------------- round trips

_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\0"),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(_text)
def test_quote_unquote_round_trip(value: str) -> None:
    assert unquote(quote(value)) == value


_data_line = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\0"),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_data_line, max_size=10), st.integers(min_value=1, max_value=40))
def test_data_block_round_trip(lines: list[str], chunk: int) -> None:
    """Encode data as tor frames a ``+`` reply (dot-stuffed, like our command encoder) and parse
    it back in chunks: the text survives."""
    data = "\n".join(lines)
    encoded = encode_command("HSPOST", ["HSADDRESS=x"], data=data)
    body = encoded.split(b"\r\n", 1)[1]
    raw = b"250+k=\r\n" + body + b"250 OK\r\n"
    codec = ControlCodec()
    out = []
    for i in range(0, len(raw), chunk):
        out.extend(codec.feed(raw[i : i + chunk]))
    (reply,) = out
    assert isinstance(reply, Reply)
    expected = data.removesuffix("\n") if data.strip("\n") or data == "" else data
    got = reply.lines[0].data
    assert got is not None
    # Trailing empty lines are not representable apart from the final newline.
    assert got.rstrip("\n") == expected.rstrip("\n")


def test_circuit_status_parser_survives_100k_mutations() -> None:
    """``GETINFO circuit-status`` text (a real capture, mutated): parsed or a typed error."""
    rng = random.Random(0xC1BC)
    seed = (DATA / "testnet-circuit-status-service.txt").read_bytes()
    lines = seed.splitlines(keepends=True)
    for _ in range(100_000):
        start = rng.randrange(len(lines))
        chunk = b"".join(lines[start : start + rng.randint(1, 3)])
        text = _mutate(rng, chunk).decode("utf-8", "surrogateescape")
        try:
            circuits = parse_circuit_status(text)
        except TorError:
            continue
        for circ in circuits:
            assert circ.circuit_id and circ.status
            assert all(len(hop) == 40 for hop in circ.path)
