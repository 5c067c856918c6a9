"""Invites: round trip, strict parsing with typed errors, secrets hidden, and a mutation fuzz."""

from __future__ import annotations

import base64
import json
import random
import time

import pytest

from onionfleet.config import Secret
from onionfleet.hs.keys import master_key_from_seed
from onionfleet.provision.errors import (
    InviteError,
    InviteFieldError,
    InviteSyntaxError,
    InviteVersionError,
)
from onionfleet.provision.invite import Invite, InviteWireGuard, encode_invite, parse_invite
from onionfleet.provision.nodeconfig import TargetSpec

MASTER = master_key_from_seed(b"\x01" * 32)
OTHER = master_key_from_seed(b"\x02" * 32)
TARGET = str(master_key_from_seed(bytes(range(32))).public_key().address())
TOKEN = "Zm9vYmFyYmF6cXV4cXV1eGZvb2JhcmJhenF1eHF1dXg"
WG = InviteWireGuard(
    "i08iNTvcOW8WyfGYF13eaOJCyFlCDQ9zCHHyXhixl28=", "192.0.2.1:51820", "10.77.0.1/24"
)


def make(**changes: object) -> Invite:
    fields: dict[str, object] = {
        "cluster_id": "0123456789abcdef0123456789abcdef",
        "cluster_name": "prod-cluster",
        "inviter_node_id": "node-a",
        "peers": ("10.77.0.1:7420",),
        "token": Secret(TOKEN),
        "master_address": MASTER.public_key().address(),
        "virtual_port": 80,
        "targets": (TargetSpec(TARGET, None, 80, 2), TargetSpec(None, "10.8.0.5", 8080)),
        "wireguard": WG,
        "master_secret_key": None,
    }
    fields.update(changes)
    return Invite(**fields)  # type: ignore[arg-type]


def payload(text: str) -> dict[str, object]:
    b64 = text.split(":", 2)[2]
    raw = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
    obj: dict[str, object] = json.loads(raw)
    return obj


def reencode(obj: object, version: str = "v1") -> str:
    raw = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    return f"onionfleet-invite:{version}:" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_round_trip_without_and_with_master_key() -> None:
    for inv in (make(), make(master_secret_key=MASTER), make(wireguard=None)):
        text = encode_invite(inv)
        assert text.startswith("onionfleet-invite:v1:")
        assert "\n" not in text and " " not in text
        back = parse_invite(text + "\n")  # a file's trailing newline is fine
        assert back == inv
        assert back.token.reveal() == TOKEN


def test_encoding_is_canonical_json() -> None:
    text = encode_invite(make())
    raw = base64.urlsafe_b64decode(text.split(":", 2)[2] + "==")
    assert (
        raw
        == json.dumps(
            json.loads(raw), sort_keys=True, separators=(",", ":"), ensure_ascii=True
        ).encode()
    )
    obj = payload(text)
    assert obj["v"] == 1
    assert "secret_key" not in obj["master"]  # type: ignore[operator]


def test_repr_hides_token_and_master_key() -> None:
    inv = make(master_secret_key=MASTER)
    text = repr(inv)
    assert TOKEN not in text
    assert MASTER.raw.hex() not in text
    assert base64.b64encode(MASTER.raw).decode() not in text


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", InviteSyntaxError),
        ("hello", InviteSyntaxError),
        ("onionfleet-invite:", InviteSyntaxError),
        ("onionfleet-invite:v1", InviteSyntaxError),
        ("onionfleet-invite:v1:", InviteSyntaxError),
        ("onionfleet-invite:v2:eyJ9", InviteVersionError),
        ("onionfleet-invite:vX:eyJ9", InviteSyntaxError),
        ("onionfleet-invite:v1:e", InviteSyntaxError),
        ("onionfleet-invite:v1:ey+J", InviteSyntaxError),
        ("onionfleet-invite:v1:eyJ9", InviteSyntaxError),  # '{"}' is not JSON
        ("onionfleet-invite:v1:" + "A" * 20000, InviteSyntaxError),
        ("onionfleet-invite:v1:e30", InviteFieldError),  # {} → missing fields
        ("onionfleet-invite:v1:W10", InviteFieldError),  # [] → not an object
    ],
)
def test_bad_invites_raise_typed_errors(text: str, error: type[InviteError]) -> None:
    with pytest.raises(error):
        parse_invite(text)


def test_non_string_is_a_syntax_error() -> None:
    with pytest.raises(InviteSyntaxError):
        parse_invite(b"onionfleet-invite:v1:e30")  # type: ignore[arg-type]


def test_non_canonical_json_is_refused() -> None:
    obj = payload(encode_invite(make()))
    raw = json.dumps(obj, indent=1).encode()
    text = "onionfleet-invite:v1:" + base64.urlsafe_b64encode(raw).decode().rstrip("=")
    with pytest.raises(InviteSyntaxError, match="canonical"):
        parse_invite(text)


def test_duplicate_key_and_float_are_refused() -> None:
    good = encode_invite(make())
    raw = base64.urlsafe_b64decode(good.split(":", 2)[2] + "==").decode()
    dup = raw.replace('"v":1', '"v":1,"v":1')
    flt = raw.replace('"virtual_port":80', '"virtual_port":80.0')
    for bad in (dup, flt):
        text = "onionfleet-invite:v1:" + base64.urlsafe_b64encode(bad.encode()).decode().rstrip("=")
        with pytest.raises(InviteSyntaxError):
            parse_invite(text)


def _mutated(path: list[str], value: object, *, delete: bool = False) -> str:
    obj = payload(encode_invite(make(master_secret_key=MASTER)))
    node: dict[str, object] = obj
    for part in path[:-1]:
        node = node[part]  # type: ignore[assignment]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return reencode(obj)


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (["extra"], 1, "extra"),
        (["token"], "short", "token"),
        (["token"], 42, "token"),
        (["cluster", "id"], "XYZ", "cluster.id"),
        (["cluster", "name"], "", "cluster.name"),
        (["inviter", "node_id"], "bad_id", "inviter.node_id"),
        (["inviter", "peers"], [], "inviter.peers"),
        (["inviter", "peers"], ["nohost"], "inviter.peers[0]"),
        (["inviter", "peers"], ["unix:/tmp/x"], "inviter.peers[0]"),
        (["master", "address"], "abc.onion", "master.address"),
        (["master", "address"], str(OTHER.public_key().address()).upper(), "master.address"),
        (["master", "secret_key"], "AAAA", "master.secret_key"),
        (["master", "secret_key"], base64.b64encode(OTHER.raw).decode(), "master.secret_key"),
        (["service", "virtual_port"], 0, "service.virtual_port"),
        (["service", "virtual_port"], True, "service.virtual_port"),
        (["service", "targets"], [], "service.targets"),
        (["service", "targets"], [{"host": "h", "port": 1}], "service.targets[0].weight"),
        (
            ["service", "targets"],
            [{"onion_address": "x.onion", "port": 1, "weight": 1}],
            "service.targets[0]",
        ),
        (["wireguard", "public_key"], "nope", "wireguard.public_key"),
        (["wireguard", "endpoint"], "nope", "wireguard.endpoint"),
        (["wireguard", "address"], "10.77.0.1", "wireguard.address"),
        (["wireguard", "address"], "10.77.0.300/24", "wireguard.address"),
    ],
)
def test_field_errors_name_the_field(path: list[str], value: object, field: str) -> None:
    with pytest.raises(InviteFieldError) as info:
        parse_invite(_mutated(path, value))
    assert info.value.field == field
    assert TOKEN not in str(info.value)


def test_missing_field_and_version_mismatch() -> None:
    with pytest.raises(InviteFieldError) as info:
        parse_invite(_mutated(["master", "address"], None, delete=True))
    assert info.value.field == "master.address"
    with pytest.raises(InviteVersionError):
        parse_invite(_mutated(["v"], 2))


def test_master_key_of_another_address_is_refused() -> None:
    inv = make(master_secret_key=OTHER)
    with pytest.raises(InviteFieldError, match="different onion address"):
        encode_invite(inv)


# --- fuzz --------------------------------------------------------------------------------------

_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_:+/={}[]",. \x00é'


def _mutate_text(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        pos = rng.randrange(len(chars) + 1)
        if op == 0 and chars:
            chars[min(pos, len(chars) - 1)] = rng.choice(_ALPHABET)
        elif op == 1:
            chars.insert(pos, rng.choice(_ALPHABET))
        elif op == 2 and chars:
            del chars[min(pos, len(chars) - 1)]
        elif op == 3:
            chars = chars[:pos]
        else:
            end = min(len(chars), pos + rng.randint(1, 8))
            chars[pos:end] = list(reversed(chars[pos:end]))
    return "".join(chars)


_JSON_VALUES: list[object] = [
    None,
    True,
    0,
    -1,
    2**70,
    "",
    "x" * 300,
    [],
    {},
    [1],
    {"a": 1},
    "10.0.0.1:1",
    "node-a",
]


def _mutate_json(rng: random.Random, obj: object) -> object:
    """Replace, delete or add one field somewhere in the JSON tree."""
    if isinstance(obj, dict) and obj:
        key = rng.choice(list(obj))
        out = dict(obj)
        r = rng.random()
        if r < 0.2:
            del out[key]
        elif r < 0.35:
            out[rng.choice(["zz", "v2", key + "x"])] = rng.choice(_JSON_VALUES)
        elif r < 0.6:
            out[key] = rng.choice(_JSON_VALUES)
        else:
            out[key] = _mutate_json(rng, obj[key])
        return out
    if isinstance(obj, list) and obj:
        i = rng.randrange(len(obj))
        out_list = list(obj)
        out_list[i] = _mutate_json(rng, obj[i]) if rng.random() < 0.5 else rng.choice(_JSON_VALUES)
        return out_list
    if isinstance(obj, str) and obj and rng.random() < 0.7:
        return _mutate_text(rng, obj)
    return rng.choice(_JSON_VALUES)


def test_fuzz_only_typed_errors() -> None:
    """>= 100k mutated invites (text-level and JSON-level): only InviteError, never a crash."""
    rng = random.Random(20261122)
    seeds = [
        encode_invite(make()),
        encode_invite(make(master_secret_key=MASTER)),
        encode_invite(make(wireguard=None)),
    ]
    objects = [payload(s) for s in seeds]
    n_text = n_json = accepted = 0
    t0 = time.perf_counter()
    for i in range(110_000):
        if i % 2 == 0:
            text = _mutate_text(rng, rng.choice(seeds))
            n_text += 1
        else:
            text = reencode(_mutate_json(rng, rng.choice(objects)))
            n_json += 1
        try:
            parse_invite(text)
            accepted += 1
        except InviteError:
            pass
    elapsed = time.perf_counter() - t0
    assert n_text + n_json >= 100_000
    assert accepted < n_text + n_json  # most mutations must be refused
    assert elapsed < 60, f"fuzz took {elapsed:.1f} s"


# --- round trip of generated invites (hypothesis: structure, modest example count) ------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_name = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9.-]{0,20}", fullmatch=True)
_peer = st.builds(
    lambda a, b, port: f"10.{a}.{b}.1:{port}",
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(1, 65535),
)
_target = st.one_of(
    st.builds(
        lambda p, w: TargetSpec(TARGET, None, p, w), st.integers(1, 65535), st.integers(1, 1000)
    ),
    st.builds(
        lambda h, p: TargetSpec(None, h, p),
        st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True),
        st.integers(1, 65535),
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    name=_name,
    node_id=_name,
    peers=st.lists(_peer, min_size=1, max_size=4),
    token=st.from_regex(r"[A-Za-z0-9_-]{22,60}", fullmatch=True),
    vport=st.integers(1, 65535),
    targets=st.lists(_target, min_size=1, max_size=3),
    with_key=st.booleans(),
    with_wg=st.booleans(),
)
def test_generated_invites_round_trip(
    name: str,
    node_id: str,
    peers: list[str],
    token: str,
    vport: int,
    targets: list[TargetSpec],
    with_key: bool,
    with_wg: bool,
) -> None:
    inv = make(
        cluster_name=name,
        inviter_node_id=node_id,
        peers=tuple(peers),
        token=Secret(token),
        virtual_port=vport,
        targets=tuple(targets),
        master_secret_key=MASTER if with_key else None,
        wireguard=WG if with_wg else None,
    )
    assert parse_invite(encode_invite(inv)) == inv
