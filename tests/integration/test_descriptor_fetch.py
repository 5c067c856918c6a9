"""``onionfleet descriptor fetch`` against real tor on the private network."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable

import pytest

from onionfleet.cli import main
from onionfleet.hs.keys import generate_master_key
from onionfleet.testnet import StaticHttpServer, TestNetwork, TorInstance


def _control_args(client: TorInstance) -> list[str]:
    return ["--control", f"127.0.0.1:{client.control_port}", "--cookie", str(client.cookie_path)]


@pytest.mark.testnet
def test_fetch_finds_a_self_published_descriptor_on_every_responsible_hsdir(
    testnet: TestNetwork,
    testnet_client: TorInstance,
    http_server: Callable[..., StaticHttpServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    web = http_server(b"fetch me")
    service = testnet.add_onion_service("dfsvc", target_port=web.port)  # waits for its uploads
    assert service.onion_address is not None
    code = main(["descriptor", "fetch", service.onion_address, *_control_args(testnet_client),
                 "--json", "--timeout", "45"])  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    print(f"\n{report['served']}/{report['responsible']} HSDirs serve the descriptor")
    assert code == 0, report
    assert report["responsible"] >= 2
    assert report["served"] == report["responsible"]
    assert report["revision_counters_agree"]
    row = report["hsdirs"][0]
    assert row["introduction_points"] >= 1 and row["lifetime_minutes"] == 180
    assert row["flow_control"] is not None and row["pow_params"] is False
    service.stop()


@pytest.mark.testnet
def test_fetch_of_an_unpublished_address_names_each_hsdir_that_lacks_it(
    testnet: TestNetwork, testnet_client: TorInstance, capsys: pytest.CaptureFixture[str]
) -> None:
    address = str(generate_master_key(secrets.token_bytes).public_key().address())
    code = main(["descriptor", "fetch", address, *_control_args(testnet_client), "--timeout", "45"])
    out = capsys.readouterr().out
    assert code == 1
    assert "0/" in out and "FAIL" in out
    assert "NOT_FOUND" in out or "no answer" in out


def test_fetch_with_a_bad_control_endpoint_is_one_clear_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    address = str(generate_master_key(secrets.token_bytes).public_key().address())
    code = main(["descriptor", "fetch", address, "--control", "nonsense"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "--control" in err
