"""init_cluster / join_cluster: files, modes, loadable configs, overwrite refusal, wrong keys."""

from __future__ import annotations

import random
import stat
import tomllib
from pathlib import Path

import pytest

from onionfleet.config import ConfigProblems, load_config, parse_config
from onionfleet.hs.keys import master_key_from_seed
from onionfleet.provision.errors import (
    AlreadyExists,
    MasterKeyMismatch,
    ProvisionError,
)
from onionfleet.provision.invite import parse_invite
from onionfleet.provision.keydir import generate_key_dir, load_master_key_dir, write_key_dir
from onionfleet.provision.nodeconfig import (
    NodeSpec,
    TargetSpec,
    render_node_config,
    toml_string,
)
from onionfleet.provision.setup import (
    InitRequest,
    JoinRequest,
    WireGuardRequest,
    init_cluster,
    join_cluster,
)

TARGET = TargetSpec(str(master_key_from_seed(bytes(range(32))).public_key().address()), None, 80)


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def rb(seed: int) -> random.Random:
    return random.Random(seed)


def init_req(tmp: Path, **changes: object) -> InitRequest:
    fields: dict[str, object] = {
        "node_id": "node-a",
        "data_dir": tmp / "a",
        "listen": "127.0.0.1:7401",
        "config_out": tmp / "a.toml",
        "targets": (TARGET,),
    }
    fields.update(changes)
    return InitRequest(**fields)  # type: ignore[arg-type]


def join_req(tmp: Path, name: str, port: int, **changes: object) -> JoinRequest:
    invite = parse_invite((tmp / "a" / "invite").read_text())
    fields: dict[str, object] = {
        "invite": invite,
        "node_id": f"node-{name}",
        "data_dir": tmp / name,
        "listen": f"127.0.0.1:{port}",
        "config_out": tmp / f"{name}.toml",
        "proxy_listen": f"127.0.0.1:{8080 + port - 7400}",
    }
    fields.update(changes)
    return JoinRequest(**fields)  # type: ignore[arg-type]


def test_init_then_join_twice_makes_a_cluster(tmp_path: Path) -> None:
    a = init_cluster(init_req(tmp_path), rb(1).randbytes)
    assert a.master_key_source == "generated"
    # copy the key directory as an operator would (scp -rp), then join twice
    b = join_cluster(
        join_req(tmp_path, "b", 7402, master_key_dir=tmp_path / "a" / "master"), rb(2).randbytes
    )
    c = join_cluster(
        join_req(tmp_path, "c", 7403, master_key_dir=tmp_path / "a" / "master"), rb(3).randbytes
    )
    configs = [load_config(tmp_path / f"{n}.toml") for n in "abc"]
    tokens = {cfg.cluster.token.reveal() for cfg in configs if cfg.cluster.token}
    assert len(tokens) == 1 and len(next(iter(tokens))) == 43
    assert [cfg.node.id for cfg in configs] == ["node-a", "node-b", "node-c"]
    assert configs[0].cluster.peers == ()
    assert configs[1].cluster.peers == configs[2].cluster.peers == ("127.0.0.1:7401",)
    addresses = {load_master_key_dir(cfg.master.key_dir)[1] for cfg in configs}
    assert addresses == {a.master_address} == {b.master_address} == {c.master_address}
    for cfg in configs:
        assert cfg.targets[0].onion_address == TARGET.onion_address
        assert mode(cfg.node.data_dir) == 0o700
        assert mode(cfg.master.key_dir) == 0o700
        assert mode(cfg.master.key_dir / "hs_ed25519_secret_key") == 0o600
        assert mode(cfg.node.data_dir / "cluster-token") == 0o600
        assert cfg.source is not None and mode(cfg.source) == 0o640
    assert mode(tmp_path / "a" / "invite") == 0o600
    assert b.inviter_node_id == "node-a" and b.master_key_source == "imported"


def test_invite_with_master_key(tmp_path: Path) -> None:
    a = init_cluster(init_req(tmp_path, include_master_key=True), rb(1).randbytes)
    invite = parse_invite((tmp_path / "a" / "invite").read_text())
    assert invite.includes_master_key
    b = join_cluster(join_req(tmp_path, "b", 7402), rb(2).randbytes)
    assert b.master_key_source == "invite"
    assert load_master_key_dir(tmp_path / "b" / "master")[1] == a.master_address


def test_join_without_key_is_a_clear_error(tmp_path: Path) -> None:
    init_cluster(init_req(tmp_path), rb(1).randbytes)
    with pytest.raises(ProvisionError, match="does not carry the master key"):
        join_cluster(join_req(tmp_path, "b", 7402), rb(2).randbytes)
    assert not (tmp_path / "b.toml").exists()


def test_join_with_wrong_master_key_is_refused(tmp_path: Path) -> None:
    init_cluster(init_req(tmp_path), rb(1).randbytes)
    wrong = tmp_path / "wrong"
    generate_key_dir(wrong, rb(9).randbytes, force=False)
    with pytest.raises(MasterKeyMismatch, match="copy the master key directory"):
        join_cluster(join_req(tmp_path, "b", 7402, master_key_dir=wrong), rb(2).randbytes)
    assert not (tmp_path / "b").exists() and not (tmp_path / "b.toml").exists()


def test_init_refuses_to_overwrite_and_force_keeps_the_master_key(tmp_path: Path) -> None:
    first = init_cluster(init_req(tmp_path), rb(1).randbytes)
    token1 = (tmp_path / "a" / "cluster-token").read_text()
    with pytest.raises(AlreadyExists, match="--force"):
        init_cluster(init_req(tmp_path), rb(2).randbytes)
    assert (tmp_path / "a" / "cluster-token").read_text() == token1
    again = init_cluster(init_req(tmp_path, force=True), rb(2).randbytes)
    assert again.master_key_source == "kept"
    assert again.master_address == first.master_address  # never deleted
    assert (tmp_path / "a" / "cluster-token").read_text() != token1  # token rotated


def test_force_refuses_to_replace_a_different_master_key(tmp_path: Path) -> None:
    init_cluster(init_req(tmp_path), rb(1).randbytes)
    other = tmp_path / "other"
    write_key_dir(other, master_key_from_seed(b"\x03" * 32), force=False)
    with pytest.raises(MasterKeyMismatch, match="never deletes a master key"):
        init_cluster(init_req(tmp_path, force=True, master_key_dir=other), rb(2).randbytes)


def test_init_imports_a_master_key(tmp_path: Path) -> None:
    src = tmp_path / "existing"
    addr = generate_key_dir(src, rb(5).randbytes, force=False)
    res = init_cluster(init_req(tmp_path, master_key_dir=src), rb(1).randbytes)
    assert res.master_key_source == "imported" and res.master_address == addr


def test_wireguard_keys_and_invite(tmp_path: Path) -> None:
    wg = WireGuardRequest("10.77.0.1/24", "192.0.2.1:51999")
    a = init_cluster(init_req(tmp_path, wireguard=wg, listen="10.77.0.1:7420"), rb(1).randbytes)
    cfg = load_config(tmp_path / "a.toml")
    assert cfg.wireguard.manage and cfg.wireguard.address == "10.77.0.1/24"
    assert cfg.wireguard.listen_port == 51999
    assert cfg.wireguard.private_key_file == tmp_path / "a" / "wireguard.key"
    assert mode(tmp_path / "a" / "wireguard.key") == 0o600
    pub = (tmp_path / "a" / "wireguard.pub").read_text().strip()
    assert pub == a.wireguard_public_key
    invite = parse_invite((tmp_path / "a" / "invite").read_text())
    assert invite.wireguard is not None
    assert invite.wireguard.public_key_b64 == pub
    assert invite.wireguard.endpoint == "192.0.2.1:51999"
    b = join_cluster(
        join_req(
            tmp_path,
            "b",
            7402,
            listen="10.77.0.2:7420",
            master_key_dir=tmp_path / "a" / "master",
            wireguard=WireGuardRequest("10.77.0.2/24"),
        ),
        rb(2).randbytes,
    )
    assert b.inviter_wireguard == invite.wireguard
    assert load_config(tmp_path / "b.toml").wireguard.listen_port == 51820
    assert load_config(tmp_path / "b.toml").cluster.peers == ("10.77.0.1:7420",)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"node_id": "bad_id"}, "not a valid node id"),
        ({"listen": "nope"}, "--listen"),
        ({"listen": "0.0.0.0:7420"}, "--advertise"),
        ({"proxy_listen": "10.0.0.1:8080"}, "loopback"),
        ({"targets": ()}, "no target"),
        ({"priority": 5000}, "--priority"),
        ({"virtual_port": 0}, "--virtual-port"),
        ({"cluster_name": "bad name"}, "--cluster-name"),
        ({"wireguard": WireGuardRequest("10.77.0.1/24")}, "--wg-endpoint"),
        ({"wireguard": WireGuardRequest("10.77.0.1", "1.2.3.4:5")}, "prefix"),
        ({"wireguard": WireGuardRequest("nope/24", "1.2.3.4:5")}, "--wg-address"),
    ],
)
def test_init_input_errors(tmp_path: Path, changes: dict[str, object], match: str) -> None:
    with pytest.raises(ProvisionError, match=match):
        init_cluster(init_req(tmp_path, **changes), rb(1).randbytes)
    assert not (tmp_path / "a.toml").exists()


def test_join_refuses_inviter_id_and_address(tmp_path: Path) -> None:
    init_cluster(init_req(tmp_path, include_master_key=True), rb(1).randbytes)
    with pytest.raises(ProvisionError, match="inviting node's id"):
        join_cluster(join_req(tmp_path, "b", 7402, node_id="node-a"), rb(2).randbytes)
    with pytest.raises(ProvisionError, match="inviting node's address"):
        join_cluster(join_req(tmp_path, "b", 7401), rb(2).randbytes)


def test_join_refuses_to_overwrite(tmp_path: Path) -> None:
    init_cluster(init_req(tmp_path, include_master_key=True), rb(1).randbytes)
    join_cluster(join_req(tmp_path, "b", 7402), rb(2).randbytes)
    with pytest.raises(AlreadyExists):
        join_cluster(join_req(tmp_path, "b", 7402), rb(3).randbytes)
    res = join_cluster(join_req(tmp_path, "b", 7402, force=True), rb(3).randbytes)
    assert res.master_key_source == "kept"


def test_join_with_targets_overrides_invite(tmp_path: Path) -> None:
    init_cluster(init_req(tmp_path, include_master_key=True), rb(1).randbytes)
    host = TargetSpec(None, "10.8.0.5", 8080)
    join_cluster(join_req(tmp_path, "b", 7402, targets=(host,)), rb(2).randbytes)
    cfg = load_config(tmp_path / "b.toml")
    assert [(t.host, t.port) for t in cfg.targets] == [("10.8.0.5", 8080)]


# --- rendering ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["plain", 'quo"te', "back\\slash", "tab\tnew\nline", "del\x7f", "é ✓ 😀", "\x00"]
)
def test_toml_string_round_trips(value: str) -> None:
    assert tomllib.loads(f"k = {toml_string(value)}")["k"] == value


def test_rendered_config_with_odd_paths_parses(tmp_path: Path) -> None:
    odd = tmp_path / 'dir with "quotes" and \\ and é'
    spec = NodeSpec(
        node_id="n1",
        data_dir=odd,
        priority=0,
        master_key_dir=odd / "master",
        targets=(TARGET, TargetSpec(None, "::1", 8080, 3)),
        proxy_listen="127.0.0.1:8080",
        virtual_port=443,
        cluster_token_file=odd / "cluster-token",
        cluster_listen="[::1]:7420",
        cluster_advertise="node1.example:7420",
        peers=("10.0.0.1:7420", "[fd00::1]:7420"),
        wireguard=None,
    )
    text = render_node_config(spec, comment="line one\nline two")
    assert text.startswith("# line one\n# line two\n")
    with pytest.raises(ConfigProblems) as info:  # the token file does not exist yet
        parse_config(text, source=tmp_path / "n.toml")
    assert [p.key_path for p in info.value.problems] == ["cluster.cluster_token_file"]
    odd.mkdir()
    (odd / "cluster-token").write_text("x" * 43)
    (odd / "cluster-token").chmod(0o600)
    cfg = parse_config(text, source=tmp_path / "n.toml")
    assert cfg.node.data_dir == odd and cfg.proxy.virtual_port == 443
    assert cfg.cluster.advertise == "node1.example:7420"
    assert cfg.targets[1].host == "::1" and cfg.targets[1].weight == 3


@pytest.mark.parametrize(
    "text", ["nope", "abc.onion:80", f"{TARGET.onion_address}", f"{TARGET.onion_address}:x"]
)
def test_target_onion_parsing_errors(text: str) -> None:
    with pytest.raises(ProvisionError):
        TargetSpec.onion(text)


def test_target_parsing() -> None:
    assert TargetSpec.onion(f"{TARGET.onion_address}:8080").port == 8080
    assert TargetSpec.plain("[::1]:80").label == "[::1]:80"
    with pytest.raises(ProvisionError):
        TargetSpec.plain("host")
    with pytest.raises(ProvisionError):
        TargetSpec(None, "bad host!", 80)
