"""Target specifications: where the node's reverse proxy sends each incoming stream.

Two kinds of target:

* :class:`OnionTarget` — an onion service ``{onion_address, port}`` reached through the node tor's
  SOCKS5 port, the hostname resolved *by tor* (SOCKS5 ATYP=DOMAINNAME, RFC 1928 §4), and
* :class:`TcpTarget` — a plain ``{host, port}``, e.g. an address on a WireGuard network.

Each has a positive integer ``weight`` for the least-connections balancer and an optional operator
``name`` used in logs and metrics. Onion addresses are redacted in :attr:`display` (the arti habit:
``???`` plus the last three characters); the full address appears only at DEBUG level.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from onionfleet.node.errors import NodeConfigError

__all__ = ["OnionTarget", "SocksEndpoint", "Target", "TcpTarget", "parse_onion_address"]

_ONION_SUFFIX = ".onion"
_V3_LABEL_LEN = 56
_V3_VERSION = 3
MAX_WEIGHT = 1000


def parse_onion_address(text: str) -> str:
    """Validate a v3 onion address and return it normalised (lower case, ending in ``.onion``).

    rend-spec-v3 [ONIONADDRESS]: ``base32(PUBKEY | CHECKSUM | VERSION) + ".onion"`` with
    ``CHECKSUM = H(".onion checksum" | PUBKEY | VERSION)[:2]`` and ``VERSION = 3``.
    """
    addr = text.strip().lower()
    label = addr.removesuffix(_ONION_SUFFIX)
    if len(label) != _V3_LABEL_LEN:
        raise NodeConfigError(
            f"onion target address has {len(label)} characters before .onion, a v3 address has 56; "
            "copy the full address from the target's HiddenServiceDir/hostname file"
        )
    try:
        raw = base64.b32decode(label.upper())
    except (binascii.Error, ValueError) as exc:
        raise NodeConfigError(
            "onion target address is not base32; copy it from the target's hostname file"
        ) from exc
    pubkey, checksum, version = raw[:32], raw[32:34], raw[34]
    if version != _V3_VERSION:
        raise NodeConfigError(
            f"onion target address has version {version}, only v3 onion services are supported"
        )
    expected = hashlib.sha3_256(b".onion checksum" + pubkey + bytes([version])).digest()[:2]
    if checksum != expected:
        raise NodeConfigError(
            "onion target address has a wrong checksum (a typo?); "
            "copy it from the target's hostname file"
        )
    return label + _ONION_SUFFIX


def _check_port(port: int, what: str) -> None:
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise NodeConfigError(f"{what} port {port!r} is not in 1..65535")


def _check_weight(weight: int, what: str) -> None:
    if not isinstance(weight, int) or isinstance(weight, bool) or not 1 <= weight <= MAX_WEIGHT:
        raise NodeConfigError(
            f"{what} weight {weight!r} is not in 1..{MAX_WEIGHT}; "
            "use a positive integer (higher = more connections)"
        )


@dataclass(frozen=True, slots=True)
class OnionTarget:
    """An onion service reached through tor's SOCKS5 port (tor resolves the ``.onion`` name)."""

    onion_address: str
    port: int
    weight: int = 1
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "onion_address", parse_onion_address(self.onion_address))
        _check_port(self.port, "onion target")
        _check_weight(self.weight, "onion target")

    @property
    def display(self) -> str:
        """Redacted name for logs and metrics: the operator's ``name`` or ``???abc.onion:80``."""
        if self.name:
            return self.name
        label = self.onion_address.removesuffix(_ONION_SUFFIX)
        return f"???{label[-3:]}.onion:{self.port}"

    @property
    def host(self) -> str:
        """The host name given to tor in the SOCKS5 CONNECT (ATYP=DOMAINNAME)."""
        return self.onion_address

    @property
    def via_tor(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class TcpTarget:
    """A plain TCP ``host:port`` target (for example over WireGuard), connected to directly."""

    host: str
    port: int
    weight: int = 1
    name: str = ""

    def __post_init__(self) -> None:
        if not self.host or any(c.isspace() for c in self.host):
            raise NodeConfigError(f"TCP target host {self.host!r} is empty or contains spaces")
        if self.host.lower().endswith(_ONION_SUFFIX):
            raise NodeConfigError(
                f"TCP target host {self.host!r} is an onion address; configure it as an onion "
                "target ({onion_address, port}) so it is reached through tor"
            )
        _check_port(self.port, "TCP target")
        _check_weight(self.weight, "TCP target")

    @property
    def display(self) -> str:
        return self.name or f"{self.host}:{self.port}"

    @property
    def via_tor(self) -> bool:
        return False


Target = OnionTarget | TcpTarget


@dataclass(frozen=True, slots=True)
class SocksEndpoint:
    """The node tor's SOCKS5 port (``SocksPort 127.0.0.1:<port>``), used for onion targets."""

    port: int
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        _check_port(self.port, "tor SOCKS")
