"""TestNetwork argument checks that need no tor process."""

from __future__ import annotations

from pathlib import Path

import pytest

from onionfleet.errors import OnionfleetError
from onionfleet.testnet import TestnetError, TestNetwork


def test_testnet_error_is_an_onionfleet_error() -> None:
    assert issubclass(TestnetError, OnionfleetError)


@pytest.mark.parametrize("kwargs", [{"relays": 0}, {"voting_interval_s": 9}])
def test_bad_arguments_are_refused(tmp_path: Path, kwargs: dict[str, int]) -> None:
    with pytest.raises(TestnetError):
        TestNetwork(tmp_path, **kwargs)  # type: ignore[arg-type]


def test_adding_a_tor_before_start_is_refused(tmp_path: Path) -> None:
    net = TestNetwork(tmp_path / "net")
    with pytest.raises(TestnetError, match="start the test network"):
        net.add_client("client")
    with pytest.raises(TestnetError, match="start"):
        net.network_torrc_lines()
    net.close()


def test_a_non_empty_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "leftover").write_text("x")
    net = TestNetwork(tmp_path)
    with pytest.raises(TestnetError, match="not empty"):
        net.start()
    net.close()
    assert not tmp_path.exists()  # close() removes root_dir unless keep_dir


def test_keep_dir_keeps_the_directory(tmp_path: Path) -> None:
    root = tmp_path / "net"
    root.mkdir()
    net = TestNetwork(root, keep_dir=True)
    net.close()
    assert root.exists()


def test_a_relative_root_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # tor runs in its data directory, so a relative path in its torrc would point elsewhere.
    monkeypatch.chdir(tmp_path)
    net = TestNetwork(Path("net"))
    assert net.root_dir == tmp_path / "net"
    net.close()
