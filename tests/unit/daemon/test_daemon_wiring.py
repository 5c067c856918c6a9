"""Config → component settings (daemon/wiring.py): pure, no sockets."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from onionfleet.config import parse_config
from onionfleet.daemon import wiring
from onionfleet.hs.keys import generate_master_key
from onionfleet.node.proxy import TcpListen, UnixListen
from onionfleet.node.targets import OnionTarget, TcpTarget

ONION = str(generate_master_key(secrets.token_bytes).public_key().address())


def cfg(extra_proxy: str = "", listen: str = "127.0.0.1:8080", data: str = "/srv/of") -> str:
    return f"""
[node]
id = "n1"
data_dir = "{data}"
[master]
key_dir = "{data}/master"
[tor]
num_intro_points = 5
pow_defenses = true
[[targets]]
host = "10.8.0.5"
port = 8080
weight = 3
[proxy]
listen = "{listen}"
{extra_proxy}
[health]
path = "/h"
expected_status = [200, 204]
rise = 4
"""


@pytest.mark.parametrize(("setting", "version"), [("none", None), ("v1", 1), ("v2", 2)])
def test_proxy_protocol_version(setting: str, version: int | None) -> None:
    c = parse_config(cfg(f'proxy_protocol = "{setting}"'))
    assert wiring.proxy_config(c, expect_tor_header=True).send_proxy_header == version


def test_proxy_listen_tcp_and_unix() -> None:
    tcp = wiring.proxy_config(parse_config(cfg()), expect_tor_header=False)
    assert tcp.listen == TcpListen(8080, "127.0.0.1")
    assert not tcp.expect_tor_proxy_header
    unix = wiring.proxy_config(
        parse_config(cfg(listen="unix:/run/of/proxy.sock")), expect_tor_header=True
    )
    assert isinstance(unix.listen, UnixListen) and unix.listen.path == "/run/of/proxy.sock"


def test_managed_tor_settings_carry_the_node_setup() -> None:
    c = parse_config(cfg())
    s = wiring.managed_tor_settings(
        c, master_onion_address="x" * 56 + ".onion", socks_port=9150, publish_descriptors=True
    )
    assert s.data_dir == Path("/srv/of/tor") and s.hidden_service_dir == Path("/srv/of/tor/hs")
    assert s.hidden_service_ports[0].virtual_port == 80
    assert s.hidden_service_ports[0].target == "127.0.0.1:8080"
    assert s.num_intro_points == 5 and s.export_circuit_id and s.pow is not None
    assert s.master_onion_address is not None and s.publish_descriptors


def test_targets_and_probe_spec() -> None:
    c = parse_config(cfg())
    (t,) = wiring.targets(c)
    assert isinstance(t, TcpTarget) and t.weight == 3 and t.name == "target0"
    spec = wiring.probe_spec(c)
    assert spec.path == "/h" and spec.expected_statuses == frozenset({200, 204})
    assert spec.rise == 4


def test_onion_target() -> None:
    text = cfg().replace('host = "10.8.0.5"\nport = 8080', f'onion_address = "{ONION}"\nport = 80')
    (t,) = wiring.targets(parse_config(text))
    assert isinstance(t, OnionTarget) and t.port == 80
