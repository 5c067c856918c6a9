"""A node's config file, rendered from what ``init``/``join`` decided (pure; no I/O).

The output is TOML that :func:`onionfleet.config.parse_config` accepts (docs/configuration.md).
Only settings that differ per node or per cluster are written; everything else keeps the
documented defaults so that upgrades can improve them.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from onionfleet.config import parse_endpoint
from onionfleet.hs.errors import AddressError
from onionfleet.hs.keys import OnionAddress
from onionfleet.provision.errors import ProvisionError

__all__ = [
    "NODE_ID_PATTERN",
    "NodeSpec",
    "TargetSpec",
    "WireGuardSpec",
    "check_host_port",
    "check_node_id",
    "render_node_config",
    "toml_string",
]

#: The same rule as config.py's ``node.id``.
NODE_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,62}\Z")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})\Z")


def check_node_id(node_id: str, what: str = "--node-id") -> str:
    if not NODE_ID_PATTERN.match(node_id):
        raise ProvisionError(
            f"{what} {node_id!r} is not a valid node id: use letters, digits, '.' and '-' "
            "(max 63, starting with a letter or digit)"
        )
    return node_id


def check_host_port(text: str, what: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` (no unix sockets); returns (host, port)."""
    ep = parse_endpoint(text)
    if ep is None or ep.host is None or ep.port is None:
        raise ProvisionError(f"{what} {text!r} is not host:port (or [ipv6]:port)")
    return ep.host, ep.port


def _check_host(host: str, what: str) -> str:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.match(host):
            raise ProvisionError(f"{what} {host!r} is not a host name or IP address") from None
    return host


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """A target as config.py's ``[[targets]]`` holds it: an onion or a plain host, and a port."""

    onion_address: str | None
    host: str | None
    port: int
    weight: int = 1

    def __post_init__(self) -> None:
        if (self.onion_address is None) == (self.host is None):
            raise ProvisionError("a target has either an onion address or a host, not both")
        if not 1 <= self.port <= 65535:
            raise ProvisionError(f"target port {self.port} is not in 1..65535")
        if not 1 <= self.weight <= 1000:
            raise ProvisionError(f"target weight {self.weight} is not in 1..1000")
        if self.onion_address is not None:
            try:
                addr = OnionAddress.parse(self.onion_address)
            except AddressError as exc:
                raise ProvisionError(f"target: {exc}") from exc
            if str(addr) != self.onion_address:
                raise ProvisionError(
                    f"target onion address {self.onion_address!r} is not in the canonical "
                    f"form {str(addr)!r}"
                )
        if self.host is not None:
            _check_host(self.host, "target host")

    @classmethod
    def onion(cls, text: str) -> TargetSpec:
        """From ``--target-onion ADDR.onion:PORT``."""
        addr_text, sep, port_text = text.rpartition(":")
        if not sep or not port_text.isdigit():
            raise ProvisionError(f"--target-onion {text!r} is not ADDRESS.onion:PORT")
        try:
            addr = OnionAddress.parse(addr_text)
        except AddressError as exc:
            raise ProvisionError(f"--target-onion: {exc}") from exc
        return cls(str(addr), None, int(port_text))

    @classmethod
    def plain(cls, text: str) -> TargetSpec:
        """From ``--target-host HOST:PORT``."""
        host, port = check_host_port(text, "--target-host")
        return cls(None, host, port)

    @property
    def label(self) -> str:
        host = self.onion_address or self.host or ""
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class WireGuardSpec:
    """``[wireguard]`` with ``manage = true``: tunnel address, UDP port, private key file."""

    address: str
    listen_port: int
    private_key_file: Path
    endpoint: str | None = None


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """Everything a rendered node config contains."""

    node_id: str
    data_dir: Path
    priority: int
    master_key_dir: Path
    targets: tuple[TargetSpec, ...]
    proxy_listen: str
    virtual_port: int
    cluster_token_file: Path
    cluster_listen: str
    cluster_advertise: str | None
    peers: tuple[str, ...]
    wireguard: WireGuardSpec | None


def toml_string(value: str) -> str:
    """A TOML basic string (toml.io v1.0.0 "Basic strings"): escapes quote, backslash and every
    control character including DEL."""
    out = ['"']
    for ch in value:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(toml_string(v) for v in values) + "]"


def render_node_config(spec: NodeSpec, *, comment: str) -> str:
    """The node's TOML config. ``comment`` (one or more lines) goes at the top as ``#`` lines."""
    lines = [f"# {line}".rstrip() for line in comment.splitlines()]
    lines += [
        "# Reference: docs/configuration.md. Check with: onionfleet config check FILE",
        "",
        "[node]",
        f"id = {toml_string(spec.node_id)}",
        f"data_dir = {toml_string(str(spec.data_dir))}",
        f"priority = {spec.priority}",
        "",
        "[master]",
        "# tor HiddenServiceDir format: hs_ed25519_secret_key (0600) in a 0700 directory",
        f"key_dir = {toml_string(str(spec.master_key_dir))}",
        "",
        "[tor]",
        'mode = "managed"',
        "",
    ]
    for t in spec.targets:
        lines.append("[[targets]]")
        if t.onion_address is not None:
            lines.append(f"onion_address = {toml_string(t.onion_address)}")
        else:
            lines.append(f"host = {toml_string(t.host or '')}")
        lines += [f"port = {t.port}", f"weight = {t.weight}", ""]
    lines += [
        "[proxy]",
        f"listen = {toml_string(spec.proxy_listen)}",
        f"virtual_port = {spec.virtual_port}",
        "",
        "[cluster]",
        "# the token file is as secret as the master key: 0600, never in logs, tickets or chat",
        f"cluster_token_file = {toml_string(str(spec.cluster_token_file))}",
        f"listen = {toml_string(spec.cluster_listen)}",
    ]
    if spec.cluster_advertise is not None:
        lines.append(f"advertise = {toml_string(spec.cluster_advertise)}")
    lines.append(f"peers = {_list(spec.peers)}")
    lines.append("")
    if spec.wireguard is not None:
        wg = spec.wireguard
        lines += [
            "[wireguard]",
            "manage = true",
            f"address = {toml_string(wg.address)}",
            f"listen_port = {wg.listen_port}",
            f"private_key_file = {toml_string(str(wg.private_key_file))}",
        ]
        if wg.endpoint is not None:
            lines.append(f"endpoint = {toml_string(wg.endpoint)}")
        lines.append("")
    return "\n".join(lines)
