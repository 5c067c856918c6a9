from __future__ import annotations

import json
from pathlib import Path

import pytest
from hs_factory import build, master_key

from onionfleet.cli import main
from onionfleet.hs.keys import OnionAddress

REAL = Path(__file__).parents[2] / "vectors" / "hs" / "real_tor"
ADDR = str(OnionAddress(master_key().public_key()))


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["descriptor", "inspect", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_inspect_json_on_our_descriptor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "desc.txt"
    f.write_text(build(5).text)
    code, out, _ = _run(capsys, str(f), "--address", ADDR, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["revision_counter"] == 42
    assert report["lifetime_minutes"] == 180
    assert report["flow_control"] == "1-2 31"
    assert report["pow_params"] is None
    assert report["size_bytes"] == len(f.read_text())
    assert report["single_onion_service"] is False
    assert report["client_auth"] is False
    assert len(report["introduction_points"]) == 5
    ip = report["introduction_points"][0]
    assert ip["link_specifiers"][0] == "ipv4 10.0.0.1:9000"
    for key in ("onion_key_ntor", "auth_key", "enc_key_ntor", "auth_key_cert_expires"):
        assert ip[key]


def test_inspect_text_on_real_tor_with_client_key(capsys: pytest.CaptureFixture[str]) -> None:
    meta = json.loads((REAL / "svcauth" / "meta.json").read_text())
    code, out, _ = _run(
        capsys,
        str(REAL / "svcauth" / "descriptor.txt"),
        "--address",
        meta["address"],
        "--client-key",
        str(REAL / "svcauth" / "client.auth_private"),
    )
    assert code == 0
    assert "client_auth: True" in out
    assert "revision_counter: " in out
    assert "link_specifier: ipv4 127.0.0.1:" in out
    assert "signing_key_cert: expires=" in out


@pytest.mark.parametrize(
    ("setup", "needle"),
    [
        ("missing", "cannot read descriptor file"),
        ("garbage", "does not start with 'hs-descriptor'"),
        ("binary", "not ASCII"),
        ("wrongaddr", "MAC mismatch"),
        ("badaddr", "not a v3 onion address"),
        ("needsauth", "client authorization"),
    ],
)
def test_inspect_bad_input_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: str, needle: str
) -> None:
    f = tmp_path / "desc.txt"
    addr = ADDR
    if setup == "garbage":
        f.write_text("hello\n")
    elif setup == "binary":
        f.write_bytes(b"\xff\xfe")
    elif setup in ("wrongaddr", "badaddr"):
        f.write_text(build().text)
        addr = str(OnionAddress(master_key(99).public_key())) if setup == "wrongaddr" else "x.onion"
    elif setup == "needsauth":
        f = REAL / "svcauth" / "descriptor.txt"
        addr = json.loads((REAL / "svcauth" / "meta.json").read_text())["address"]
    code, out, err = _run(capsys, str(f), "--address", addr)
    assert code == 2
    assert out == ""
    assert needle in err
    assert "Traceback" not in err
    assert err.count("\n") == 1
