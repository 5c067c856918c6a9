"""torrc rendering and settings validation of the managed tor (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from onionfleet.tor.errors import ManagedTorError
from onionfleet.tor.process import (
    AttachedTorSettings,
    HiddenServicePort,
    IntroDosSettings,
    ManagedTorSettings,
    PowSettings,
    ob_config_text,
    render_torrc,
)

MASTER = "a" * 56


def _settings(**kw: object) -> ManagedTorSettings:
    base: dict[str, object] = {
        "data_dir": Path("/var/lib/of/tor"),
        "hidden_service_dir": Path("/var/lib/of/tor/hs"),
        "hidden_service_ports": (HiddenServicePort(80, "127.0.0.1:8080"),),
        "master_onion_address": MASTER + ".onion",
    }
    base.update(kw)
    return ManagedTorSettings(**base)  # type: ignore[arg-type]


def test_render_full_torrc() -> None:
    text = render_torrc(
        _settings(
            socks_port=9050,
            pow=PowSettings(queue_rate=100, queue_burst=200),
            intro_dos=IntroDosSettings(rate_per_sec=25, burst_per_sec=200),
            extra_lines=("TestingTorNetwork 1",),
            num_intro_points=5,
            export_circuit_id=True,
        ),
        owner_pid=4242,
    )
    lines = text.splitlines()
    for expected in [
        "DataDirectory /var/lib/of/tor",
        "__OwningControllerProcess 4242",
        "ControlSocket /var/lib/of/tor/control.sock",
        "ControlPort 0",
        "CookieAuthentication 1",
        "SocksPort 127.0.0.1:9050",
        "HiddenServiceDir /var/lib/of/tor/hs",
        "HiddenServicePort 80 127.0.0.1:8080",
        "HiddenServiceOnionBalanceInstance 1",
        "HiddenServiceNumIntroductionPoints 5",
        "HiddenServiceExportCircuitID haproxy",
        "HiddenServicePoWDefensesEnabled 1",
        "HiddenServicePoWQueueRate 100",
        "HiddenServicePoWQueueBurst 200",
        "HiddenServiceEnableIntroDoSDefense 1",
        "HiddenServiceEnableIntroDoSRatePerSec 25",
        "HiddenServiceEnableIntroDoSBurstPerSec 200",
        "PublishHidServDescriptors 0",
        "TestingTorNetwork 1",
    ]:
        assert expected in lines, expected
    # HiddenServicePort lines must follow their HiddenServiceDir.
    assert lines.index("HiddenServiceDir /var/lib/of/tor/hs") < lines.index(
        "HiddenServicePort 80 127.0.0.1:8080"
    )
    assert text.endswith("\n")


def test_minimal_torrc_has_no_socks_and_publishes_when_asked() -> None:
    text = render_torrc(
        ManagedTorSettings(data_dir=Path("/d"), publish_descriptors=True), owner_pid=1
    )
    assert "SocksPort 0" in text.splitlines()
    assert "PublishHidServDescriptors 1" in text.splitlines()
    assert "HiddenServiceDir" not in text


def test_ob_config() -> None:
    assert ob_config_text(MASTER) == f"MasterOnionAddress {MASTER}.onion\n"
    assert ob_config_text(MASTER + ".onion") == f"MasterOnionAddress {MASTER}.onion\n"


@pytest.mark.parametrize(
    "kw",
    [
        {"master_onion_address": "not-an-onion"},
        {"hidden_service_ports": ()},
        {"extra_lines": ("a\nb",)},
        {"data_dir": Path("/" + "x" * 120)},
    ],
)
def test_bad_settings(kw: dict[str, object]) -> None:
    with pytest.raises(ManagedTorError):
        _settings(**kw)


def test_bad_port_target() -> None:
    with pytest.raises(ManagedTorError):
        HiddenServicePort(80, "127.0.0.1:8080\nControlPort 9051")
    with pytest.raises(ManagedTorError):
        HiddenServicePort(0, "8080")


def test_attached_settings_and_password_hidden() -> None:
    attached = AttachedTorSettings(control_port=9051, password="hunter2")
    assert "hunter2" not in repr(attached)
    settings = attached.controller_settings()
    assert settings.endpoint.tcp_port == 9051
    assert "hunter2" not in repr(settings)
    with pytest.raises(ManagedTorError):
        AttachedTorSettings().controller_settings()


def test_managed_controller_settings_use_the_socket() -> None:
    settings = _settings().controller_settings()
    assert settings.endpoint.unix_path == Path("/var/lib/of/tor/control.sock")


def test_intro_point_count_outside_tor_range_is_refused() -> None:
    with pytest.raises(ManagedTorError, match=r"1\.\.20"):
        _settings(num_intro_points=21)
