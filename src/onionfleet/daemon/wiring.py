"""From the operator's config to each component's settings. Pure: no I/O, no clock.

Every translation from :mod:`onionfleet.config` to a component lives here, so the components
never see the config file's shape and the daemon's ``run`` stays a list of starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final, Literal

from onionfleet.config import Endpoint, NodeConfig
from onionfleet.node.health import ProbeSpec
from onionfleet.node.proxy import ProxyConfig, TcpListen, UnixListen
from onionfleet.node.targets import OnionTarget, Target, TcpTarget
from onionfleet.tor.process import (
    AttachedTorSettings,
    HiddenServicePort,
    IntroDosSettings,
    ManagedTorSettings,
    PowSettings,
)

__all__ = [
    "attached_tor_settings",
    "hidden_service_target",
    "managed_tor_settings",
    "probe_spec",
    "proxy_config",
    "targets",
    "tor_data_dir",
]


def tor_data_dir(cfg: NodeConfig) -> Path:
    """The managed tor's DataDirectory: ``<data_dir>/tor``."""
    return cfg.node.data_dir / "tor"


def hidden_service_target(listen: Endpoint) -> str:
    """The ``HiddenServicePort`` target for the proxy's listen endpoint."""
    if listen.unix_path is not None:
        return f"unix:{listen.unix_path}"
    return f"{listen.host}:{listen.port}"


def managed_tor_settings(
    cfg: NodeConfig, *, master_onion_address: str, socks_port: int, publish_descriptors: bool
) -> ManagedTorSettings:
    """The node's own tor: HiddenServiceDir with the master key, the OnionBalance-instance flag
    and ``ob_config`` naming the master (DESIGN §2), ``HiddenServicePort`` → the proxy, and
    ``HiddenServiceExportCircuitID haproxy`` so the proxy learns each stream's circuit id."""
    data_dir = tor_data_dir(cfg)
    return ManagedTorSettings(
        data_dir=data_dir,
        tor_binary=cfg.tor.binary,
        socks_port=socks_port,
        hidden_service_dir=data_dir / "hs",
        hidden_service_ports=(
            HiddenServicePort(cfg.proxy.virtual_port, hidden_service_target(cfg.proxy.listen)),
        ),
        master_onion_address=master_onion_address,
        publish_descriptors=publish_descriptors,
        num_intro_points=cfg.tor.num_intro_points,
        export_circuit_id=True,
        pow=PowSettings() if cfg.tor.pow_defenses else None,
        intro_dos=IntroDosSettings() if cfg.tor.intro_dos_defense else None,
        extra_lines=cfg.tor.extra_torrc,
        start_timeout_s=min(60.0, cfg.tor.bootstrap_timeout_s),
    )


def attached_tor_settings(cfg: NodeConfig) -> AttachedTorSettings:
    """An operator-run tor (``[tor] mode = "attach"``). Config validation made ``control`` set."""
    control = cfg.tor.control
    if control is None:  # config.py refuses this; keep the type checker and -O honest
        raise ValueError("attach mode without [tor] control")
    password = cfg.tor.password.reveal() if cfg.tor.password is not None else None
    if control.unix_path is not None:
        return AttachedTorSettings(
            control_socket=control.unix_path, cookie_path=cfg.tor.cookie_file, password=password
        )
    return AttachedTorSettings(
        control_port=control.port,
        control_host=control.host or "127.0.0.1",
        cookie_path=cfg.tor.cookie_file,
        password=password,
    )


#: ``[proxy] proxy_protocol`` → the PROXY protocol version the proxy sends to targets.
_PROXY_PROTOCOL_VERSION: Final[Mapping[str, Literal[1, 2] | None]] = {
    "none": None,
    "v1": 1,
    "v2": 2,
}


def proxy_config(cfg: NodeConfig, *, expect_tor_header: bool) -> ProxyConfig:
    """The reverse proxy. A managed tor always sends the PROXY header with the circuit id."""
    listen = cfg.proxy.listen
    where: TcpListen | UnixListen
    if listen.unix_path is not None:
        where = UnixListen(str(listen.unix_path))
    else:
        where = TcpListen(listen.port or 0, listen.host or "127.0.0.1")
    return ProxyConfig(
        listen=where,
        connect_timeout_s=cfg.proxy.connect_timeout_s,
        idle_timeout_s=cfg.proxy.idle_timeout_s,
        max_connections=cfg.proxy.max_connections,
        expect_tor_proxy_header=expect_tor_header,
        send_proxy_header=_PROXY_PROTOCOL_VERSION[cfg.proxy.proxy_protocol],
    )


def targets(cfg: NodeConfig) -> tuple[Target, ...]:
    out: list[Target] = []
    for i, t in enumerate(cfg.targets):
        name = f"target{i}"
        if t.onion_address is not None:
            out.append(OnionTarget(t.onion_address, t.port, t.weight, name))
        else:
            out.append(TcpTarget(t.host or "", t.port, t.weight, name))
    return tuple(out)


def probe_spec(cfg: NodeConfig) -> ProbeSpec:
    h = cfg.health
    return ProbeSpec(
        path=h.path,
        expected_statuses=frozenset(h.expected_status),
        body_regex=h.body_regex,
        connect_timeout_s=h.timeout_s,
        read_timeout_s=h.timeout_s,
        interval_s=h.interval_s,
        rise=h.rise,
        fall=h.fall,
        new_circuit_per_probe=h.new_circuit_per_probe,
    )
