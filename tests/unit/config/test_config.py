from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from onionfleet.cli import main
from onionfleet.config import ConfigProblems, Secret, load_config, parse_config

ONION = "a" * 56 + ".onion"

VALID = f"""
[node]
id = "node-a"
data_dir = "/var/lib/onionfleet"
priority = 10

[master]
key_dir = "/var/lib/onionfleet/master"

[tor]
mode = "managed"

[[targets]]
onion_address = "{ONION}"
port = 80

[[targets]]
host = "10.8.0.5"
port = 8080
weight = 3

[proxy]
listen = "127.0.0.1:8080"

[health]
path = "/health"
expected_status = [200, 204]

[cluster]
cluster_token = "s3cret-token-value"
listen = "10.77.0.1:7420"
peers = ["10.77.0.2:7420", "[fd00::2]:7420"]

[publish]
max_intro_points = 12

[metrics]
listen = "127.0.0.1:9935"
"""


def test_valid_config_parses_with_defaults() -> None:
    cfg = parse_config(VALID)
    assert cfg.node.id == "node-a"
    assert cfg.targets[0].onion_address == ONION
    assert cfg.targets[1].weight == 3
    assert cfg.health.expected_status == (200, 204)
    assert cfg.health.rise == 2 and cfg.health.fall == 3
    assert cfg.cluster.enabled
    assert cfg.cluster.heartbeat_interval_s == 2.0
    assert cfg.publish.max_intro_points == 12
    assert str(cfg.status.listen) == "unix:/var/lib/onionfleet/status.sock"
    assert "s3cret" not in repr(cfg)


def test_single_target_table_is_accepted() -> None:
    text = VALID.replace("[[targets]]\nhost", "[[ignored]]\nhost")
    text = text.replace('[[ignored]]\nhost = "10.8.0.5"\nport = 8080\nweight = 3\n', "")
    text = text.replace("[[targets]]", "[target]")
    cfg = parse_config(text)
    assert len(cfg.targets) == 1


def test_minimal_single_node_config() -> None:
    cfg = parse_config(
        f"""
[node]
id = "solo"
data_dir = "/srv/of"
[master]
key_dir = "/srv/of/master"
[target]
onion_address = "{ONION}"
port = 80
[proxy]
listen = "unix:/run/onionfleet/proxy.sock"
"""
    )
    assert not cfg.cluster.enabled
    assert cfg.tor.mode == "managed"


# (description, edit to VALID: (old, new), expected key path, words expected in message or fix)
BROKEN: list[tuple[str, tuple[str, str], str, str]] = [
    ("missing node id", ('id = "node-a"\n', ""), "node.id", "unique name"),
    ("bad node id", ('id = "node-a"', 'id = "node a!"'), "node.id", "not a valid node id"),
    (
        "priority not a number",
        ("priority = 10", 'priority = "high"'),
        "node.priority",
        "whole number",
    ),
    (
        "priority out of range",
        ("priority = 10", "priority = 5000"),
        "node.priority",
        "between 0 and 1000",
    ),
    ("missing data_dir", ('data_dir = "/var/lib/onionfleet"\n', ""), "node.data_dir", "data_dir"),
    (
        "missing master key_dir",
        ('key_dir = "/var/lib/onionfleet/master"', ""),
        "master.key_dir",
        "hs_ed25519_secret_key",
    ),
    ("unknown tor mode", ('mode = "managed"', 'mode = "embedded"'), "tor.mode", "managed"),
    (
        "attach without control",
        ('mode = "managed"', 'mode = "attach"\nsocks = "127.0.0.1:9050"'),
        "tor.control",
        "attach",
    ),
    (
        "typo key",
        ('mode = "managed"', 'mode = "managed"\nmdoe = 1'),
        "tor.mdoe",
        "not a known setting",
    ),
    (
        "intro points too many",
        ('mode = "managed"', 'mode = "managed"\nnum_intro_points = 25'),
        "tor.num_intro_points",
        "1..20",
    ),
    (
        "bad onion address",
        (f'onion_address = "{ONION}"', 'onion_address = "example.onion"'),
        "targets[0].onion_address",
        "v3 onion",
    ),
    (
        "target without address",
        (f'onion_address = "{ONION}"\n', ""),
        "targets[0].onion_address",
        "onion_address or host",
    ),
    (
        "target port missing",
        ('host = "10.8.0.5"\nport = 8080', 'host = "10.8.0.5"'),
        "targets[1].port",
        "1..65535",
    ),
    (
        "target port range",
        ("port = 8080", "port = 70000"),
        "targets[1].port",
        "between 1 and 65535",
    ),
    (
        "both onion and host",
        (f'onion_address = "{ONION}"', f'onion_address = "{ONION}"\nhost = "x"'),
        "targets[0].host",
        "not both",
    ),
    ("weight zero", ("weight = 3", "weight = 0"), "targets[1].weight", "1..1000"),
    (
        "proxy not loopback",
        ('listen = "127.0.0.1:8080"', 'listen = "0.0.0.0:8080"'),
        "proxy.listen",
        "loopback",
    ),
    (
        "proxy listen garbage",
        ('listen = "127.0.0.1:8080"', 'listen = "localhost"'),
        "proxy.listen",
        "host:port",
    ),
    (
        "proxy protocol unknown",
        ('listen = "127.0.0.1:8080"', 'listen = "127.0.0.1:8080"\nproxy_protocol = "v3"'),
        "proxy.proxy_protocol",
        "v1",
    ),
    ("health path relative", ('path = "/health"', 'path = "health"'), "health.path", "start with"),
    (
        "health status invalid",
        ("expected_status = [200, 204]", "expected_status = [200, 999]"),
        "health.expected_status",
        "100..599",
    ),
    (
        "health regex invalid",
        ("expected_status = [200, 204]", 'expected_status = [200]\nbody_regex = "("'),
        "health.body_regex",
        "regular expression",
    ),
    (
        "rise is boolean",
        ("expected_status = [200, 204]", "expected_status = [200]\nrise = true"),
        "health.rise",
        "boolean",
    ),
    (
        "peer not host:port",
        ('"10.77.0.2:7420", ', '"10.77.0.2", '),
        "cluster.peers[0]",
        "host:port",
    ),
    (
        "token twice",
        ('cluster_token = "s3cret-token-value"', 'cluster_token = "a"\ncluster_token_file = "/x"'),
        "cluster.cluster_token",
        "only",
    ),
    ("cluster without listen", ('listen = "10.77.0.1:7420"\n', ""), "cluster.listen", "required"),
    (
        "peers without token",
        ('cluster_token = "s3cret-token-value"\n', ""),
        "cluster.cluster_token_file",
        "no cluster token",
    ),
    (
        "heartbeat negative",
        ("[cluster]\n", "[cluster]\nheartbeat_interval_s = -1\n"),
        "cluster.heartbeat_interval_s",
        "between",
    ),
    (
        "max intro points above 20",
        ("max_intro_points = 12", "max_intro_points = 30"),
        "publish.max_intro_points",
        "20",
    ),
    (
        "republish max below min",
        (
            "max_intro_points = 12",
            "max_intro_points = 12\nrepublish_min_s = 5000\nrepublish_max_s = 4000",
        ),
        "publish.republish_max_s",
        "republish_min_s",
    ),
    (
        "wireguard manage without address",
        ("[publish]", "[wireguard]\nmanage = true\n\n[publish]"),
        "wireguard.address",
        "manage = true",
    ),
    ("section not a table", ("\n[node]\n", '\nlogging = "on"\n[node]\n'), "logging", "table"),
    (
        "unknown section",
        ("[metrics]", "[metricz]\nx = 1\n\n[metrics]"),
        "metricz",
        "not a known setting",
    ),
    (
        "logging level",
        ("[metrics]", '[logging]\nlevel = "LOUD"\n\n[metrics]'),
        "logging.level",
        "DEBUG",
    ),
]


@pytest.mark.parametrize(("what", "edit", "key", "words"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_config_names_key_and_fix(
    what: str, edit: tuple[str, str], key: str, words: str
) -> None:
    old, new = edit
    assert old in VALID, what
    with pytest.raises(ConfigProblems) as info:
        parse_config(VALID.replace(old, new, 1))
    problems = {p.key_path: p for p in info.value.problems}
    assert key in problems, f"{what}: got {list(problems)}"
    p = problems[key]
    assert p.fix, what
    assert words.lower() in (p.message + " " + p.fix).lower(), f"{what}: {p}"
    assert "s3cret" not in str(info.value)


def test_every_problem_is_reported_at_once() -> None:
    text = VALID.replace("priority = 10", "priority = -4").replace('mode = "managed"', 'mode = "x"')
    with pytest.raises(ConfigProblems) as info:
        parse_config(text)
    keys = {p.key_path for p in info.value.problems}
    assert {"node.priority", "tor.mode"} <= keys


def test_invalid_toml_is_one_clear_problem() -> None:
    with pytest.raises(ConfigProblems) as info:
        parse_config("[node\nid=")
    assert "not valid TOML" in str(info.value)


def test_token_file_must_be_private(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("tok-from-file\n")
    token.chmod(0o644)
    text = VALID.replace('cluster_token = "s3cret-token-value"', f'cluster_token_file = "{token}"')
    with pytest.raises(ConfigProblems) as info:
        parse_config(text)
    (problem,) = info.value.problems
    assert problem.key_path == "cluster.cluster_token_file"
    assert f"chmod 600 {token}" in problem.fix
    token.chmod(0o600)
    cfg = parse_config(text)
    assert cfg.cluster.token == Secret("tok-from-file")
    assert "tok-from-file" not in repr(cfg)


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text(VALID.replace('key_dir = "/var/lib/onionfleet/master"', 'key_dir = "master"'))
    cfg = load_config(path)
    assert cfg.master.key_dir == tmp_path / "master"


def test_cli_config_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.toml"
    good.write_text(VALID)
    assert main(["config", "check", str(good)]) == 0
    assert "OK" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text(
        VALID.replace("priority = 10", "priority = 5000").replace("port = 8080", "port = 0")
    )
    assert main(["config", "check", "--json", str(bad)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    assert {p["key"] for p in report["problems"]} == {"node.priority", "targets[1].port"}
    assert all(p["fix"] for p in report["problems"])


def test_cli_config_check_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(tmp_path / "nope.toml")]) == 1
    out = capsys.readouterr().out
    assert "cannot read config file" in out
    assert os.sep in out
