"""SIGHUP handling of ``onionfleet run``: what applies live and what needs a restart."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from onionfleet.cli.run import _reload
from onionfleet.config import load_config
from onionfleet.observability.logs import SecretRedactor

CONFIG = """
[node]
id = "node-a"
data_dir = "{data}"
[master]
key_dir = "{data}/master"
[target]
host = "10.8.0.5"
port = 80
[proxy]
listen = "127.0.0.1:8080"
[logging]
level = "INFO"
"""


def _write(path: Path, text: str) -> None:
    path.write_text(text.format(data=path.parent))


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, SimpleNamespace]:
    path = tmp_path / "node.toml"
    _write(path, CONFIG)
    return path, SimpleNamespace(cfg=load_config(path))


def test_logging_changes_apply_and_nothing_else_is_flagged(
    setup: tuple[Path, SimpleNamespace], capsys: pytest.CaptureFixture[str]
) -> None:
    path, daemon = setup
    _write(path, CONFIG.replace('level = "INFO"', 'level = "DEBUG"'))
    _reload(daemon, path, SecretRedactor())  # type: ignore[arg-type]
    assert "nothing else changed" in capsys.readouterr().err
    assert logging.getLogger().level == logging.DEBUG  # applied live
    logging.getLogger().handlers.clear()


def test_other_changes_are_named_as_needing_a_restart(
    setup: tuple[Path, SimpleNamespace], capsys: pytest.CaptureFixture[str]
) -> None:
    path, daemon = setup
    _write(path, CONFIG.replace("127.0.0.1:8080", "127.0.0.1:8081") + "[health]\nrise = 5\n")
    _reload(daemon, path, SecretRedactor())  # type: ignore[arg-type]
    assert "need a restart: [proxy], [health]" in capsys.readouterr().err
    logging.getLogger().handlers.clear()


def test_a_broken_file_keeps_the_running_config(
    setup: tuple[Path, SimpleNamespace], caplog: pytest.LogCaptureFixture
) -> None:
    path, daemon = setup
    before = daemon.cfg
    path.write_text("[node\n")
    with caplog.at_level(logging.INFO, logger="onionfleet.run"):
        _reload(daemon, path, SecretRedactor())  # type: ignore[arg-type]
    assert "reload refused, keeping the running config" in caplog.text
    assert daemon.cfg is before


def test_run_refuses_a_bad_config_before_starting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from onionfleet.cli import main

    path = tmp_path / "node.toml"
    path.write_text("[node]\nid = 'x'\n")
    assert main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "node.data_dir" in err and "Traceback" not in err
