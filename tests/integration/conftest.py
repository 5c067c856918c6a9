"""Shared fixtures for the integration tests on the private Tor network.

* ``testnet`` (session): ONE private Tor network (3 authorities + 5 relays) for the whole run.
  Tests add their own tors to it with ``add_onion_service``/``add_client``/``add_tor``; use
  names unique to your test module.
* ``testnet_client`` (session): a client tor on that network (SOCKS + control port).
* ``http_server`` (function): factory for tiny threaded HTTP servers on 127.0.0.1.

Without tor the network tests are skipped, except under ``CI=true`` where that is a failure.
``ONIONFLEET_KEEP_TESTNET=1`` keeps the network's directory; ``ONIONFLEET_BUSY_CORE=1`` keeps
one core busy for the whole session. When any test fails, the tors'
logs and torrcs are copied to ``$ONIONFLEET_ARTIFACTS`` (default: ``<repo>/test-artifacts``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from onionfleet.testnet import StaticHttpServer, TestNetwork, TorInstance

_FAILED = pytest.StashKey[bool]()
_REPO_ROOT = Path(__file__).resolve().parents[2]
_ARTIFACT_SUFFIXES = (".log", "torrc", "hostname")


def require_tor_binaries() -> None:
    """Skip (or, under CI=true, fail) the calling test when tor or tor-gencert is missing."""
    missing = [name for name in ("tor", "tor-gencert") if shutil.which(name) is None]
    if not missing:
        return
    message = f"{' and '.join(missing)} not installed (Debian: apt-get install tor)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {message}", pytrace=False)
    pytest.skip(message)


def artifacts_dir() -> Path:
    return Path(os.environ.get("ONIONFLEET_ARTIFACTS", str(_REPO_ROOT / "test-artifacts")))


def save_testnet_logs(root_dir: Path, label: str) -> Path | None:
    """Copy every tor's logs and torrc under ``root_dir`` into the artifacts directory (no keys)."""
    if not root_dir.is_dir():
        return None
    dest = artifacts_dir() / f"{time.strftime('%Y%m%d-%H%M%S')}-{label}"
    for path in root_dir.rglob("*"):
        if path.is_file() and path.name.endswith(_ARTIFACT_SUFFIXES) and "keys" not in path.parts:
            target = dest / path.relative_to(root_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    return dest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed:
        item.config.stash[_FAILED] = True


def _progress(t0: float) -> Callable[[str], None]:
    def progress(message: str) -> None:
        print(f"[testnet +{time.monotonic() - t0:5.1f} s] {message}", file=sys.stderr, flush=True)

    return progress


@pytest.fixture(scope="session", autouse=True)
def busy_core() -> Iterator[None]:
    """With ``ONIONFLEET_BUSY_CORE=1`` (``scripts/e2e-repeat.sh N --busy``): one core kept busy
    by a spinning process for the whole session, as on a CI machine that is not idle."""
    if os.environ.get("ONIONFLEET_BUSY_CORE") != "1":
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
    print(f"\none core kept busy by pid {spinner.pid}", file=sys.stderr)
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait(timeout=10)


@pytest.fixture(scope="session")
def testnet(request: pytest.FixtureRequest) -> Iterator[TestNetwork]:
    """One private Tor network for the whole session (start() has returned: usable at once)."""
    require_tor_binaries()
    keep = os.environ.get("ONIONFLEET_KEEP_TESTNET") == "1"
    net = TestNetwork(relays=5, keep_dir=keep, progress=_progress(time.monotonic()))
    try:
        net.start(timeout_s=120.0)
    except BaseException:
        save_testnet_logs(net.root_dir, "testnet-start-failed")
        net.close()
        raise
    print(f"\ntestnet ready in {net.start_duration_s:.1f} s at {net.root_dir}", file=sys.stderr)
    try:
        yield net
    finally:
        if request.config.stash.get(_FAILED, False):
            dest = save_testnet_logs(net.root_dir, "testnet")
            print(f"\ntest failures: tor logs copied to {dest}", file=sys.stderr)
        net.close()


@pytest.fixture(scope="session")
def testnet_client(testnet: TestNetwork) -> TorInstance:
    """A bootstrapped client tor (``socks_port``, ``control_port``, ``cookie_path``)."""
    return testnet.add_client("client")


@pytest.fixture
def http_server() -> Iterator[Callable[..., StaticHttpServer]]:
    """``http_server(b"body", status=200)``: a server on 127.0.0.1 (``.port``, ``.hits``)."""
    servers: list[StaticHttpServer] = []

    def make(body: bytes, *, status: int = 200) -> StaticHttpServer:
        server = StaticHttpServer(body, status=status)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``late`` run last: they need a shared network that has lived a while
    (e.g. through two SRV protocol runs), which by then it has, so they wait little."""
    items.sort(key=lambda item: item.get_closest_marker("late") is not None)
