"""Invites: what a new node needs to join a cluster, as one line of text.

Format, version 1 (docs/security.md explains how secret it is)::

    onionfleet-invite:v1:<unpadded URL-safe base64 of canonical JSON>

Canonical JSON = sorted keys, no whitespace, ASCII only (``json.dumps(sort_keys=True,
separators=(",", ":"), ensure_ascii=True)``). The JSON object::

    {"v": 1,
     "cluster":  {"id": "<32 hex>", "name": "<name>"},
     "inviter":  {"node_id": "<node id>", "peers": ["host:port", ...]},
     "token":    "<cluster token>",
     "master":   {"address": "<56>.onion", "secret_key": "<base64 of 64 bytes>" (optional)},
     "service":  {"virtual_port": 80, "targets": [{"onion_address"|"host": ..., "port": ..,
                                                   "weight": ..}, ...]},
     "wireguard": {"public_key": "<wg base64>", "endpoint": "host:port",
                   "address": "10.77.0.1/24"}  (optional)}

Parsing is strict: an unknown, missing or duplicated key, a float, a non-canonical encoding, or a
master secret key that does not belong to the master address is an :class:`InviteError`
(:class:`InviteSyntaxError`, :class:`InviteVersionError` or :class:`InviteFieldError`); nothing else
escapes :func:`parse_invite`. The secret key (``master.secret_key``) is the 64-byte expanded key of
tor's ``hs_ed25519_secret_key`` (after its 32-byte header), present only when the operator asked
for it (``onionfleet init --include-master-key``).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any, Final, NoReturn

from onionfleet.config import Secret
from onionfleet.hs.errors import HsError
from onionfleet.hs.keys import (
    HsIdExpandedSecretKey,
    OnionAddress,
    encode_secret_key_file,
    parse_secret_key_file,
)
from onionfleet.provision.errors import (
    InviteFieldError,
    InviteSyntaxError,
    InviteVersionError,
    ProvisionError,
)
from onionfleet.provision.nodeconfig import (
    NODE_ID_PATTERN,
    TargetSpec,
    check_host_port,
)
from onionfleet.provision.secrets_gen import parse_wireguard_key

__all__ = [
    "CLUSTER_NAME_PATTERN",
    "INVITE_PREFIX",
    "INVITE_VERSION",
    "MAX_INVITE_CHARS",
    "Invite",
    "InviteWireGuard",
    "encode_invite",
    "parse_invite",
]

INVITE_PREFIX: Final = "onionfleet-invite:"
INVITE_VERSION: Final = 1
MAX_INVITE_CHARS: Final = 16_384
MAX_PEERS: Final = 16
MAX_TARGETS: Final = 64

_CLUSTER_ID = re.compile(r"[0-9a-f]{32}\Z")
CLUSTER_NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}\Z")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{22,256}\Z")
_B64URL = re.compile(r"[A-Za-z0-9_-]+\Z")
_VERSION_PART = re.compile(r"v([0-9]{1,6})\Z")
_SECRET_B64 = re.compile(r"[A-Za-z0-9+/]{86}==\Z")


@dataclass(frozen=True, slots=True)
class InviteWireGuard:
    """The inviting node's WireGuard identity: public key (``wg`` base64), its public UDP
    endpoint, and its tunnel address with prefix."""

    public_key_b64: str
    endpoint: str
    address: str


@dataclass(frozen=True, slots=True)
class Invite:
    """A decoded invite. ``token`` and ``master_secret_key`` hide themselves in ``repr``."""

    cluster_id: str
    cluster_name: str
    inviter_node_id: str
    peers: tuple[str, ...]
    token: Secret = field(repr=False)
    master_address: OnionAddress
    virtual_port: int
    targets: tuple[TargetSpec, ...]
    wireguard: InviteWireGuard | None = None
    master_secret_key: HsIdExpandedSecretKey | None = field(default=None, repr=False)

    @property
    def includes_master_key(self) -> bool:
        return self.master_secret_key is not None


# --- encoding ----------------------------------------------------------------------------------


def _target_json(t: TargetSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"port": t.port, "weight": t.weight}
    if t.onion_address is not None:
        out["onion_address"] = t.onion_address
    else:
        out["host"] = t.host
    return out


def _to_json(invite: Invite) -> dict[str, Any]:
    master: dict[str, Any] = {"address": str(invite.master_address)}
    if invite.master_secret_key is not None:
        master["secret_key"] = base64.b64encode(invite.master_secret_key.raw).decode("ascii")
    obj: dict[str, Any] = {
        "v": INVITE_VERSION,
        "cluster": {"id": invite.cluster_id, "name": invite.cluster_name},
        "inviter": {"node_id": invite.inviter_node_id, "peers": list(invite.peers)},
        "token": invite.token.reveal(),
        "master": master,
        "service": {
            "virtual_port": invite.virtual_port,
            "targets": [_target_json(t) for t in invite.targets],
        },
    }
    if invite.wireguard is not None:
        obj["wireguard"] = {
            "public_key": invite.wireguard.public_key_b64,
            "endpoint": invite.wireguard.endpoint,
            "address": invite.wireguard.address,
        }
    return obj


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def encode_invite(invite: Invite) -> str:
    """The one-line invite text (no trailing newline). Checked by parsing it back, so an invite
    this function returns is one :func:`parse_invite` accepts."""
    payload = base64.urlsafe_b64encode(_canonical(_to_json(invite))).decode("ascii").rstrip("=")
    text = f"{INVITE_PREFIX}v{INVITE_VERSION}:{payload}"
    parse_invite(text)
    return text


# --- parsing -----------------------------------------------------------------------------------


def _fail(path: str, message: str) -> NoReturn:
    raise InviteFieldError(path, message)


def _table(value: Any, path: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> Any:
    if not isinstance(value, dict):
        _fail(path or "(top level)", "must be a JSON object")
    for key in required:
        if key not in value:
            _fail(f"{path}.{key}" if path else key, "is missing")
    allowed = set(required) | set(optional)
    for key in value:
        if key not in allowed:
            _fail(f"{path}.{key}" if path else str(key), "is not a known field")
    return value


def _string(value: Any, path: str, pattern: re.Pattern[str] | None = None) -> str:
    if not isinstance(value, str):
        _fail(path, "must be a string")
    if pattern is not None and not pattern.match(value):
        _fail(path, "has an invalid value")
    return value


def _integer(value: Any, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(path, "must be a whole number")
    if not low <= value <= high:
        _fail(path, f"must be between {low} and {high}")
    return value


def _list(value: Any, path: str, low: int, high: int) -> list[Any]:
    if not isinstance(value, list):
        _fail(path, "must be a list")
    if not low <= len(value) <= high:
        _fail(path, f"must have {low} to {high} entries")
    return value


def _host_port(value: Any, path: str) -> str:
    text = _string(value, path)
    try:
        check_host_port(text, path)
    except ProvisionError:
        _fail(path, "is not host:port")
    return text


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise InviteSyntaxError(f"the invite's JSON has the key {key!r} twice")
        out[key] = value
    return out


def _reject_constant(name: str) -> NoReturn:
    raise InviteSyntaxError(f"the invite's JSON contains {name}, which is not allowed")


def _reject_float(text: str) -> NoReturn:
    raise InviteSyntaxError("the invite's JSON contains a fractional number")


def _decode_payload(text: Any) -> bytes:
    if not isinstance(text, str):
        raise InviteSyntaxError("an invite must be text")
    s = text.strip()
    if len(s) > MAX_INVITE_CHARS:
        raise InviteSyntaxError(
            f"the invite is {len(s)} characters long; invites are at most {MAX_INVITE_CHARS}"
        )
    if not s.startswith(INVITE_PREFIX):
        raise InviteSyntaxError(
            f"not an onionfleet invite: it must start with {INVITE_PREFIX!r} "
            "(give the file onionfleet init wrote)"
        )
    version_part, sep, payload = s[len(INVITE_PREFIX) :].partition(":")
    m = _VERSION_PART.match(version_part)
    if not sep or m is None:
        raise InviteSyntaxError(
            f"the invite has no version after {INVITE_PREFIX!r} (expected 'v1:')"
        )
    if int(m.group(1)) != INVITE_VERSION:
        raise InviteVersionError(
            f"the invite has format version {m.group(1)}; this onionfleet reads version "
            f"{INVITE_VERSION}. Use the same onionfleet version on every node"
        )
    if not payload or not _B64URL.match(payload) or len(payload) % 4 == 1:
        raise InviteSyntaxError(
            "the invite's payload is not URL-safe base64; was it cut or wrapped when copied?"
        )
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InviteSyntaxError("the invite's payload is not valid base64") from exc
    if base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=") != payload:
        raise InviteSyntaxError("the invite's payload is not canonical base64; was it edited?")
    return raw


def _load_json(raw: bytes) -> Any:
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise InviteSyntaxError("the invite's payload is not ASCII JSON") from exc
    try:
        obj = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_constant,
            parse_float=_reject_float,
        )
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise InviteSyntaxError("the invite's payload is not valid JSON") from exc
    try:
        canonical = _canonical(obj)
    except (ValueError, RecursionError) as exc:
        raise InviteSyntaxError("the invite's JSON cannot be re-encoded") from exc
    if canonical != raw:
        raise InviteSyntaxError("the invite's JSON is not in canonical form; was it edited?")
    return obj


def _parse_target(value: Any, path: str) -> TargetSpec:
    if isinstance(value, dict) and "onion_address" in value:
        t = _table(value, path, ("onion_address", "port", "weight"))
        onion: str | None = _string(t["onion_address"], f"{path}.onion_address")
        host: str | None = None
    else:
        t = _table(value, path, ("host", "port", "weight"))
        onion = None
        host = _string(t["host"], f"{path}.host")
    port = _integer(t["port"], f"{path}.port", 1, 65535)
    weight = _integer(t["weight"], f"{path}.weight", 1, 1000)
    try:
        return TargetSpec(onion, host, port, weight)
    except ProvisionError as exc:
        raise InviteFieldError(path, str(exc)) from exc


def _parse_wireguard(value: Any) -> InviteWireGuard:
    wg = _table(value, "wireguard", ("address", "endpoint", "public_key"))
    pub = _string(wg["public_key"], "wireguard.public_key")
    try:
        parse_wireguard_key(pub, "wireguard.public_key")
    except ProvisionError:
        _fail("wireguard.public_key", "is not a WireGuard public key")
    endpoint = _host_port(wg["endpoint"], "wireguard.endpoint")
    address = _string(wg["address"], "wireguard.address")
    try:
        ipaddress.ip_interface(address)
    except ValueError:
        _fail("wireguard.address", "is not an address with prefix, e.g. 10.77.0.1/24")
    if "/" not in address:
        _fail("wireguard.address", "needs a prefix length, e.g. 10.77.0.1/24")
    return InviteWireGuard(pub, endpoint, address)


def _parse_master(value: Any) -> tuple[OnionAddress, HsIdExpandedSecretKey | None]:
    m = _table(value, "master", ("address",), ("secret_key",))
    address_text = _string(m["address"], "master.address")
    try:
        address = OnionAddress.parse(address_text)
    except HsError as exc:
        raise InviteFieldError("master.address", str(exc)) from exc
    if str(address) != address_text:
        _fail("master.address", "is not in canonical form (56 lowercase characters + .onion)")
    if "secret_key" not in m:
        return address, None
    secret_text = _string(m["secret_key"], "master.secret_key", _SECRET_B64)
    try:
        body = base64.b64decode(secret_text, validate=True)
        key = parse_secret_key_file(
            encode_secret_key_file(HsIdExpandedSecretKey(body)), "master.secret_key"
        )
    except (binascii.Error, ValueError, HsError):
        _fail("master.secret_key", "is not a tor ed25519 expanded secret key")
    if base64.b64encode(body).decode("ascii") != secret_text:
        _fail("master.secret_key", "is not canonical base64")
    if key.public_key().address() != address:
        _fail(
            "master.secret_key",
            "belongs to a different onion address than master.address (the invite was altered)",
        )
    return address, key


def _from_json(obj: Any) -> Invite:
    top = _table(
        obj,
        "",
        ("cluster", "inviter", "master", "service", "token", "v"),
        ("wireguard",),
    )
    version = top["v"]
    if isinstance(version, bool) or not isinstance(version, int):
        _fail("v", "must be a whole number")
    if version != INVITE_VERSION:
        raise InviteVersionError(
            f"the invite's JSON says format version {version}, its prefix says "
            f"{INVITE_VERSION}; the invite was altered"
        )
    cluster = _table(top["cluster"], "cluster", ("id", "name"))
    cluster_id = _string(cluster["id"], "cluster.id", _CLUSTER_ID)
    cluster_name = _string(cluster["name"], "cluster.name", CLUSTER_NAME_PATTERN)
    inviter = _table(top["inviter"], "inviter", ("node_id", "peers"))
    node_id = _string(inviter["node_id"], "inviter.node_id", NODE_ID_PATTERN)
    peers = tuple(
        _host_port(p, f"inviter.peers[{i}]")
        for i, p in enumerate(_list(inviter["peers"], "inviter.peers", 1, MAX_PEERS))
    )
    token = _string(top["token"], "token", _TOKEN)
    address, secret = _parse_master(top["master"])
    service = _table(top["service"], "service", ("targets", "virtual_port"))
    vport = _integer(service["virtual_port"], "service.virtual_port", 1, 65535)
    targets = tuple(
        _parse_target(t, f"service.targets[{i}]")
        for i, t in enumerate(_list(service["targets"], "service.targets", 1, MAX_TARGETS))
    )
    wireguard = _parse_wireguard(top["wireguard"]) if "wireguard" in top else None
    return Invite(
        cluster_id,
        cluster_name,
        node_id,
        peers,
        Secret(token),
        address,
        vport,
        targets,
        wireguard,
        secret,
    )


def parse_invite(text: str) -> Invite:
    """Decode and validate an invite line. Raises only :class:`InviteError` subclasses."""
    return _from_json(_load_json(_decode_payload(text)))
