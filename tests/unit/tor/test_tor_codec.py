"""Codec: replies, data blocks, events, bounds, command encoding (control-spec §2)."""

from __future__ import annotations

import pytest

from onionfleet.tor.codec import Command, ControlCodec, encode_command
from onionfleet.tor.errors import (
    ControlProtocolError,
    LocalProtocolError,
    RemoteProtocolError,
    TorCommandError,
)
from onionfleet.tor.events import (
    HsDescContentEvent,
    HsDescEvent,
    HsDirRef,
    StatusEvent,
    UnknownEvent,
)
from onionfleet.tor.messages import Reply, quote, split_arguments, unquote

FP = "B37D" + "0" * 36


def test_single_line_reply() -> None:
    (reply,) = ControlCodec().feed(b"250 OK\r\n")
    assert isinstance(reply, Reply)
    assert reply.status == 250 and reply.text == "OK" and reply.is_ok


def test_multi_line_reply_and_data_block_unstuffed() -> None:
    raw = (
        b"250-version=0.4.9.11\r\n"
        b"250+config-text=\r\n"
        b"Line one\r\n"
        b"..starts with a dot\r\n"
        b"\r\n"
        b".\r\n"
        b"250 OK\r\n"
    )
    (reply,) = ControlCodec().feed(raw)
    assert isinstance(reply, Reply)
    assert [line.separator for line in reply.lines] == ["-", "+", " "]
    assert reply.lines[0].text == "version=0.4.9.11"
    assert reply.lines[1].text == "config-text="
    assert reply.lines[1].data == "Line one\n.starts with a dot\n"


def test_byte_by_byte_feeding_gives_same_result() -> None:
    raw = b"250-a=b\r\n250+c=\r\nx\r\n.\r\n250 OK\r\n650 STATUS_CLIENT NOTICE CONSENSUS_ARRIVED\r\n"
    whole = ControlCodec().feed(raw)
    codec = ControlCodec()
    pieces = []
    for i in range(len(raw)):
        pieces.extend(codec.feed(raw[i : i + 1]))
    assert pieces == whole
    assert len(whole) == 2


def test_error_reply_raises_typed_error() -> None:
    (reply,) = ControlCodec().feed(b'552 Unrecognized key "nope"\r\n')
    assert isinstance(reply, Reply)
    with pytest.raises(TorCommandError) as info:
        reply.raise_for_status("GETINFO")
    assert info.value.code == 552
    assert info.value.command == "GETINFO"
    assert "nope" in info.value.text


def test_hs_desc_event() -> None:
    raw = (
        f"650 HS_DESC UPLOADED abcdef NO_AUTH ${FP}~relay0 kOyJztI REASON=UPLOAD_REJECTED "
        f"REPLICA=1 HSDIR_INDEX=5B89\r\n"
    ).encode()
    (event,) = ControlCodec().feed(raw)
    assert event == HsDescEvent(
        action="UPLOADED",
        address="abcdef",
        auth_type="NO_AUTH",
        hsdir=HsDirRef(FP, "relay0"),
        descriptor_id="kOyJztI",
        reason="UPLOAD_REJECTED",
        replica=1,
        hsdir_index="5B89",
    )


def test_hs_desc_event_unknown_address_and_no_descid() -> None:
    (event,) = ControlCodec().feed(b"650 HS_DESC REQUESTED UNKNOWN NO_AUTH UNKNOWN\r\n")
    assert isinstance(event, HsDescEvent)
    assert event.address is None and event.hsdir is None and event.descriptor_id is None


def test_hs_desc_content_multiline_event() -> None:
    raw = (
        f"650+HS_DESC_CONTENT abcdef kOyJztI ${FP}~relay0\r\n"
        "hs-descriptor 3\r\n"
        "descriptor-lifetime 180\r\n"
        ".\r\n"
        "650 OK\r\n"
    ).encode()
    (event,) = ControlCodec().feed(raw)
    assert event == HsDescContentEvent(
        "abcdef", "kOyJztI", HsDirRef(FP, "relay0"), "hs-descriptor 3\ndescriptor-lifetime 180"
    )


def test_status_event_with_quoted_argument() -> None:
    raw = (
        b"650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=85 TAG=ap_conn "
        b'SUMMARY="Connecting \\"x\\""\r\n'
    )
    (event,) = ControlCodec().feed(raw)
    assert isinstance(event, StatusEvent)
    assert event.kind == "STATUS_CLIENT" and event.severity == "NOTICE"
    assert event.action == "BOOTSTRAP"
    assert event.argument("PROGRESS") == "85"
    assert event.argument("SUMMARY") == 'Connecting "x"'


def test_unknown_and_malformed_events_do_not_raise() -> None:
    codec = ControlCodec()
    (circ,) = codec.feed(b"650 CIRC 1 BUILT $AAAA~x PURPOSE=GENERAL\r\n")
    assert isinstance(circ, UnknownEvent) and circ.keyword == "CIRC"
    (bad,) = codec.feed(b"650 HS_DESC UPLOADED\r\n")
    assert isinstance(bad, UnknownEvent) and bad.parse_error is not None


def test_events_interleaved_between_replies_keep_order() -> None:
    raw = b"650 STATUS_GENERAL NOTICE X\r\n250 OK\r\n650 STATUS_GENERAL NOTICE Y\r\n251 OK\r\n"
    out = ControlCodec().feed(raw)
    assert [type(m).__name__ for m in out] == ["StatusEvent", "Reply", "StatusEvent", "Reply"]


def test_line_over_bound_is_refused_even_before_newline() -> None:
    codec = ControlCodec(max_line_bytes=64, max_reply_bytes=1024)
    with pytest.raises(RemoteProtocolError, match="exceeds 64 bytes"):
        codec.feed(b"250-" + b"x" * 100)
    with pytest.raises(RemoteProtocolError, match="already failed"):
        codec.feed(b"250 OK\r\n")


def test_complete_line_over_bound_is_refused() -> None:
    codec = ControlCodec(max_line_bytes=64, max_reply_bytes=1024)
    with pytest.raises(RemoteProtocolError):
        codec.feed(b"250 " + b"x" * 70 + b"\r\n")


def test_reply_over_bound_is_refused() -> None:
    codec = ControlCodec(max_line_bytes=64, max_reply_bytes=256)
    with pytest.raises(RemoteProtocolError, match="reply from tor exceeds"):
        codec.feed(b"250+x=\r\n" + b"data line\r\n" * 40)


@pytest.mark.parametrize(
    "raw",
    [b"25 OK\r\n", b"abc OK\r\n", b"250*OK\r\n", b"099 OK\r\n", b"250-a\r\n251 OK\r\n"],
)
def test_malformed_lines(raw: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        ControlCodec().feed(raw)


def test_truncated_reply_detected_at_eof() -> None:
    codec = ControlCodec()
    assert codec.feed(b"250-a=b\r\n250+c=\r\nx\r\n") == []
    with pytest.raises(RemoteProtocolError, match="middle of a reply"):
        codec.feed_eof()


def test_remote_error_is_a_control_protocol_error_and_base_is_abstract() -> None:
    assert issubclass(RemoteProtocolError, ControlProtocolError)
    with pytest.raises(TypeError):
        ControlProtocolError("x")


# ----------------------------------------------------------------------------- encoding


def test_encode_simple_command() -> None:
    assert encode_command("GETINFO", ["version", "md/all"]) == b"GETINFO version md/all\r\n"


def test_encode_data_command_dot_stuffs() -> None:
    raw = encode_command(
        "HSPOST", ["SERVER=$" + FP, "HSADDRESS=abc"], data="hs-descriptor 3\n.dot\n..two\n"
    )
    assert (
        raw
        == (
            f"+HSPOST SERVER=${FP} HSADDRESS=abc\r\nhs-descriptor 3\r\n..dot\r\n...two\r\n.\r\n"
        ).encode()
    )


def test_hspost_without_hsaddress_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError, match="HSADDRESS"):
        encode_command("HSPOST", ["SERVER=$" + FP], data="hs-descriptor 3\n")
    with pytest.raises(LocalProtocolError, match="HSADDRESS"):
        encode_command("hspost", [], data="x")


@pytest.mark.parametrize("arg", ["a\r\nSIGNAL SHUTDOWN", "a\n", "a\0"])
def test_arguments_with_line_breaks_are_refused(arg: str) -> None:
    with pytest.raises(LocalProtocolError):
        encode_command("GETINFO", [arg])


def test_bad_keyword_refused() -> None:
    with pytest.raises(LocalProtocolError):
        encode_command("GET INFO")


def test_secret_command_repr_hides_arguments() -> None:
    cmd = Command("AUTHENTICATE", ("deadbeef" * 8,), secret=True)
    assert "deadbeef" not in repr(cmd)


# ----------------------------------------------------------------------------- quoting


def test_quote_round_trip() -> None:
    value = 'a "b" \\c d'
    assert unquote(quote(value)) == value


def test_quote_refuses_newline() -> None:
    with pytest.raises(LocalProtocolError):
        quote("a\nb")


def test_cstring_escapes() -> None:
    # control-spec §2.1.1: \n \t \r and octal as C escapes, others literal.
    assert unquote('"a\\nb\\tc\\rd\\101\\q\\\\"') == "a\nb\tc\rdAq\\"
    assert unquote('"\\303\\251"') == "é"


@pytest.mark.parametrize("text", ['"abc', '"abc\\', '"\\777"'])
def test_bad_quoted_strings(text: str) -> None:
    with pytest.raises(RemoteProtocolError):
        unquote(text)


def test_split_arguments() -> None:
    args = split_arguments('NOTICE BOOTSTRAP PROGRESS=5 SUMMARY="a b" $FP~n')
    assert [(a.key, a.value) for a in args] == [
        (None, "NOTICE"),
        (None, "BOOTSTRAP"),
        ("PROGRESS", "5"),
        ("SUMMARY", "a b"),
        (None, "$FP~n"),
    ]
