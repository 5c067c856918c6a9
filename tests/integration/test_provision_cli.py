"""``onionfleet keys``/``init``/``join`` end to end in temporary directories (no network), the
deploy files (install.sh syntax and dry run, the systemd unit), and real tor loading our keys."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _tor_helpers import require_tor

from onionfleet.cli import main
from onionfleet.config import load_config
from onionfleet.hs.keys import OnionAddress, load_secret_key_file, master_key_from_seed

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
TARGET = str(master_key_from_seed(bytes(range(32))).public_key().address())


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def secrets_of(data_dir: Path) -> list[str]:
    """Every secret string of a node, in the forms that could leak."""
    found = [(data_dir / "cluster-token").read_text().strip()]
    key = load_secret_key_file(data_dir / "master" / "hs_ed25519_secret_key")
    found += [key.raw.hex(), base64.b64encode(key.raw).decode(), key.raw[:32].hex()]
    wg = data_dir / "wireguard.key"
    if wg.exists():
        found.append(wg.read_text().strip())
    return found


def test_keys_generate_show_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "keys", "generate", "--out", str(tmp_path / "k"), "--json")
    assert code == 0
    address = json.loads(out)["address"]
    OnionAddress.parse(address)
    assert mode(tmp_path / "k") == 0o700
    assert mode(tmp_path / "k" / "hs_ed25519_secret_key") == 0o600

    code, out, err = run_cli(capsys, "keys", "generate", "--out", str(tmp_path / "k"))
    assert code == 2 and "refusing to overwrite" in err and "--force" in err

    code, out, _ = run_cli(capsys, "keys", "show", str(tmp_path / "k"), "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["address"] == address

    (tmp_path / "k" / "hs_ed25519_secret_key").chmod(0o644)
    code, out, _ = run_cli(capsys, "keys", "show", str(tmp_path / "k"))
    assert code == 1 and "FAIL" in out and "chmod 600" in out
    code, _, err = run_cli(
        capsys, "keys", "import", str(tmp_path / "k"), "--out", str(tmp_path / "i")
    )
    assert code == 2 and "chmod 600" in err and not (tmp_path / "i").exists()
    (tmp_path / "k" / "hs_ed25519_secret_key").chmod(0o600)

    code, out, _ = run_cli(
        capsys, "keys", "import", str(tmp_path / "k"), "--out", str(tmp_path / "i")
    )
    assert code == 0 and address in out
    leaked = secrets_of_keydir(tmp_path / "k")
    assert not any(s in out for s in leaked)


def secrets_of_keydir(d: Path) -> list[str]:
    key = load_secret_key_file(d / "hs_ed25519_secret_key")
    return [key.raw.hex(), base64.b64encode(key.raw).decode()]


def _init(tmp: Path, *extra: str) -> list[str]:
    return [
        "init",
        "--node-id", "node-a",
        "--data-dir", str(tmp / "a"),
        "--listen", "127.0.0.1:7401",
        "--target-onion", f"{TARGET}:80",
        "--target-host", "127.0.0.1:9999",
        "--proxy-listen", "127.0.0.1:8081",
        "--out", str(tmp / "a.toml"),
        *extra,
    ]  # fmt: skip


def _join(tmp: Path, name: str, port: int, *extra: str) -> list[str]:
    return [
        "join", str(tmp / "a" / "invite"),
        "--node-id", f"node-{name}",
        "--data-dir", str(tmp / name),
        "--listen", f"127.0.0.1:{port}",
        "--proxy-listen", f"127.0.0.1:{8080 + port - 7400}",
        "--out", str(tmp / f"{name}.toml"),
        *extra,
    ]  # fmt: skip


def test_init_join_join_three_configs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outputs: list[str] = []
    code, out, err = run_cli(capsys, *_init(tmp_path, "--json"))
    assert code == 0, err
    outputs += [out, err]
    init = json.loads(out)
    assert init["invite"] == str(tmp_path / "a" / "invite")
    assert any("onionfleet join" in s for s in init["next_steps"])
    for name, port in (("b", 7402), ("c", 7403)):
        code, out, err = run_cli(
            capsys, *_join(tmp_path, name, port, "--master-key-dir", str(tmp_path / "a" / "master"))
        )
        assert code == 0, err
        assert "joined cluster" in out and init["master_address"] in out
        outputs += [out, err]
    configs = [load_config(tmp_path / f"{n}.toml") for n in "abc"]
    tokens = {c.cluster.token.reveal() for c in configs if c.cluster.token is not None}
    assert len(tokens) == 1
    for cfg in configs:
        assert OnionAddress.parse(
            (cfg.master.key_dir / "hostname").read_text()
        ) == OnionAddress.parse(init["master_address"])
        assert [t.label for t in cfg.targets] == [f"{TARGET}:80", "127.0.0.1:9999"]
    assert configs[0].cluster.peers == ()
    assert configs[1].cluster.peers == configs[2].cluster.peers == ("127.0.0.1:7401",)
    assert {c.proxy.listen.port for c in configs} == {8081, 8082, 8083}
    for n in "abc":
        code, out, _ = run_cli(capsys, "config", "check", str(tmp_path / f"{n}.toml"))
        assert code == 0 and out.strip().endswith("OK")
    # nothing secret was printed
    text = "\n".join(outputs)
    for n in "abc":
        for secret in secrets_of(tmp_path / n):
            assert secret not in text
    assert (tmp_path / "a" / "invite").read_text().strip() not in text


def test_init_refuses_then_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, *_init(tmp_path))[0] == 0
    code, _, err = run_cli(capsys, *_init(tmp_path))
    assert code == 2 and "refusing to overwrite" in err
    code, out, _ = run_cli(capsys, *_init(tmp_path, "--force"))
    assert code == 0 and "(kept)" in out


def test_join_wrong_key_and_bad_invite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, *_init(tmp_path))[0] == 0
    assert run_cli(capsys, "keys", "generate", "--out", str(tmp_path / "wrong"))[0] == 0
    code, _, err = run_cli(
        capsys, *_join(tmp_path, "b", 7402, "--master-key-dir", str(tmp_path / "wrong"))
    )
    assert code == 2 and "copy the master key directory" in err
    code, _, err = run_cli(capsys, *_join(tmp_path, "b", 7402))
    assert code == 2 and "does not carry the master key" in err
    (tmp_path / "a" / "invite").chmod(0o644)
    code, _, err = run_cli(capsys, *_join(tmp_path, "b", 7402))
    assert code == 2 and "chmod 600" in err
    bad = tmp_path / "bad-invite"
    bad.write_text("onionfleet-invite:v1:AAAA\n")
    bad.chmod(0o600)
    code, _, err = run_cli(capsys, "join", str(bad), "--node-id", "b", "--data-dir",
                           str(tmp_path / "b"), "--listen", "127.0.0.1:1", "--out",
                           str(tmp_path / "b.toml"))  # fmt: skip
    assert code == 2 and "invite" in err and "Traceback" not in err
    assert not (tmp_path / "b.toml").exists()


def test_include_master_key_and_wireguard(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        capsys,
        *_init(
            tmp_path,
            "--include-master-key",
            "--wireguard", "--wg-address", "10.77.0.1/24", "--wg-endpoint", "192.0.2.1:51820",
        ),
    )  # fmt: skip
    assert code == 0, err
    code, out, err = run_cli(
        capsys,
        *_join(
            tmp_path, "b", 7402,
            "--wireguard", "--wg-address", "10.77.0.2/24", "--wg-endpoint", "192.0.2.2:51820",
            "--json",
        ),
    )  # fmt: skip
    assert code == 0, err
    # Both configs announce their public endpoint, so gossip can connect b and c directly.
    assert load_config(tmp_path / "a.toml").wireguard.endpoint == "192.0.2.1:51820"
    assert load_config(tmp_path / "b.toml").wireguard.endpoint == "192.0.2.2:51820"
    result = json.loads(out)
    assert result["master_key_source"] == "invite"
    assert result["inviter"]["wireguard"]["endpoint"] == "192.0.2.1:51820"
    steps = "\n".join(result["next_steps"])
    assert "persistent-keepalive" in steps and "allowed-ips 10.77.0.1/32" in steps
    for n in "ab":
        wg_key = tmp_path / n / "wireguard.key"
        assert mode(wg_key) == 0o600
        if shutil.which("wg"):
            pub = (
                subprocess.run(
                    ["wg", "pubkey"], input=wg_key.read_bytes(), capture_output=True, check=True
                )
                .stdout.decode()
                .strip()
            )
            assert pub == (tmp_path / n / "wireguard.pub").read_text().strip()
    for secret in secrets_of(tmp_path / "b"):
        assert secret not in out


def test_cli_missing_wireguard_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, *_init(tmp_path, "--wireguard"))
    assert code == 2 and "--wg-address" in err
    code, _, err = run_cli(capsys, *_init(tmp_path, "--wg-address", "10.77.0.1/24"))
    assert code == 2 and "need --wireguard" in err


def test_subprocess_help_lists_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "onionfleet", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for name in ("keys", "init", "join"):
        assert name in out


# --- deploy ------------------------------------------------------------------------------------


def test_install_sh_syntax_and_dry_run(tmp_path: Path) -> None:
    subprocess.run(["bash", "-n", str(DEPLOY / "install.sh")], check=True)
    if shutil.which("shellcheck"):
        subprocess.run(["shellcheck", str(DEPLOY / "install.sh")], check=True)
    out = subprocess.run(
        ["bash", str(DEPLOY / "install.sh"), "--dry-run", "--wireguard"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "apt-get install -y --no-install-recommends tor wireguard-tools" in out
    assert "install -d -m 0750 -o root -g onionfleet /etc/onionfleet" in out
    assert "install -d -m 0700 -o onionfleet -g onionfleet /var/lib/onionfleet" in out
    assert f"/opt/onionfleet/bin/pip install --disable-pip-version-check --upgrade {REPO}" in out
    assert "/etc/systemd/system/onionfleet.service.d/wireguard.conf" in out
    assert "systemctl start" not in out and "systemctl enable --now onionfleet" in out


def test_install_sh_prefix_is_idempotent(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for _ in range(2):
        subprocess.run(
            ["bash", str(DEPLOY / "install.sh"), "--prefix", str(root), "--no-venv", "--wireguard"],
            capture_output=True,
            check=True,
        )
    assert mode(root / "etc" / "onionfleet") == 0o750
    assert mode(root / "var" / "lib" / "onionfleet") == 0o700
    unit = root / "etc" / "systemd" / "system" / "onionfleet.service"
    assert unit.read_bytes() == (DEPLOY / "onionfleet.service").read_bytes()
    assert (unit.parent / "onionfleet.service.d" / "wireguard.conf").exists()
    bad = subprocess.run(
        ["bash", str(DEPLOY / "install.sh"), "--prefix", "relative", "--dry-run"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "absolute" in bad.stderr


def test_systemd_unit_settings_and_verify(tmp_path: Path) -> None:
    unit = (DEPLOY / "onionfleet.service").read_text()
    for line in (
        "ExecStart=/opt/onionfleet/bin/onionfleet run --config /etc/onionfleet/node.toml",
        "User=onionfleet",
        "StateDirectory=onionfleet",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
        "SystemCallFilter=@system-service",
        "CapabilityBoundingSet=",
        "KillSignal=SIGTERM",
        "Restart=on-failure",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ):
        assert f"\n{line}\n" in unit, line
    assert "TimeoutStopSec=" in unit
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    exe = shutil.which("onionfleet") or str(Path(sys.executable).parent / "onionfleet")
    for name, text in (
        ("onionfleet.service", unit),
        (
            "onionfleet-wg.service",
            unit + "\n[Service]\n" + (DEPLOY / "onionfleet-wireguard.conf").read_text(),
        ),
    ):
        path = tmp_path / name
        path.write_text(text.replace("/opt/onionfleet/bin/onionfleet", exe))
        res = subprocess.run(
            ["systemd-analyze", "verify", str(path)], check=False, capture_output=True, text=True
        )
        assert res.returncode == 0, res.stderr


# --- real tor ----------------------------------------------------------------------------------


def _run_tor_until_hostname(tor: str, tmp: Path, key_dir: Path, timeout_s: float = 60.0) -> str:
    """Start an offline tor (DisableNetwork) with ``key_dir`` as HiddenServiceDir; return the
    hostname tor writes there."""
    data = tmp / "tor-data"
    data.mkdir(mode=0o700)
    proc = subprocess.Popen(
        [
            tor, "--DataDirectory", str(data), "--DisableNetwork", "1", "--SocksPort", "0",
            "--ControlPort", "0", "--Log", "notice stderr", "--GeoIPFile", "",
            "--GeoIPv6File", "", "--HiddenServiceDir", str(key_dir),
            "--HiddenServicePort", "80 127.0.0.1:9",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            host = key_dir / "hostname"
            if host.exists() and host.read_text().strip():
                return host.read_text().strip()
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise AssertionError(f"tor exited with {proc.returncode}: {err[-2000:]}")
            time.sleep(0.1)
        raise AssertionError("tor did not write hostname in time")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.testnet
def test_real_tor_uses_generated_key_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tor = require_tor()
    code, out, _ = run_cli(capsys, "keys", "generate", "--out", str(tmp_path / "k"), "--json")
    assert code == 0
    address = json.loads(out)["address"]
    (tmp_path / "k" / "hostname").unlink()  # tor rewrites it from the secret key
    assert _run_tor_until_hostname(tor, tmp_path, tmp_path / "k") == address


@pytest.mark.testnet
def test_import_key_dir_made_by_real_tor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tor = require_tor()
    tor_dir = tmp_path / "tor-hs"
    tor_dir.mkdir(mode=0o700)
    hostname = _run_tor_until_hostname(tor, tmp_path, tor_dir)
    code, out, err = run_cli(
        capsys, "keys", "import", str(tor_dir), "--out", str(tmp_path / "imported"), "--json"
    )
    assert code == 0, err
    assert json.loads(out)["address"] == hostname
    assert os.listdir(tmp_path / "imported")


# --- docs --------------------------------------------------------------------------------------

DOCS = ("cluster-setup.md", "operations.md", "security.md", "troubleshooting.md")
KNOWN_COMMANDS = {
    "run", "status", "drain", "descriptor", "config", "keys", "init", "join", "testnet", "demo",
}  # fmt: skip


def test_docs_name_only_known_commands() -> None:
    for name in DOCS:
        text = (REPO / "docs" / name).read_text()
        spans = re.findall(r"`onionfleet ([a-z-]+)", text)
        lines = re.findall(r"^\s*onionfleet ([a-z-]+)", text, flags=re.MULTILINE)
        unknown = {c for c in spans + lines if c not in KNOWN_COMMANDS}
        assert not unknown, f"{name} names unknown commands {unknown}"


def test_cluster_setup_rehearsal_runs_as_written(tmp_path: Path) -> None:
    """The one-machine rehearsal in docs/cluster-setup.md, run verbatim."""
    text = (REPO / "docs" / "cluster-setup.md").read_text()
    block = text.split("<!-- rehearsal:begin -->", 1)[1].split("<!-- rehearsal:end -->", 1)[0]
    script = block.split("```sh\n", 1)[1].rsplit("```", 1)[0]
    bindir = Path(sys.executable).parent
    env = {**os.environ, "HOME": str(tmp_path), "PATH": f"{bindir}:{os.environ['PATH']}"}
    res = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    work = tmp_path / "onionfleet-rehearsal"
    configs = [load_config(work / f"node-{n}.toml") for n in "abc"]
    assert configs[2].cluster.peers == ("127.0.0.1:7401",)
    token = (work / "node-a" / "cluster-token").read_text().strip()
    assert token not in res.stdout + res.stderr
