"""A new user following the README and the docs, with nothing else.

Commands in the docs are tested from the docs' own text. The convention (documented at the end of
docs/cluster-setup.md "Rehearse on one machine"): a fenced ``sh`` block right after a line
``<!-- test: NAME -->`` belongs to the script NAME; the blocks of one NAME, in file order, run as
one ``bash -euo pipefail`` script in an empty home directory with onionfleet's ``bin`` directory
first on the ``PATH``.

* The README's set-up block is exactly the two commands issue 2 asks for; the first reaches
  ``onionfleet demo`` (whose ``--check`` run is tests/integration/test_demo.py) and the second is
  the script CI runs (this suite itself, so it is not run from here).
* docs/cluster-setup.md "Rehearse on one machine" (``rehearse-testnet``): a private Tor network
  with ``onionfleet testnet up``, ``init``/``join`` of three nodes given the network's torrc lines,
  three ``onionfleet run`` processes, ``status`` and fetches through the master address.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_MARKED_BLOCK = re.compile(r"<!-- test: ([a-z0-9-]+) -->\n```sh\n(.*?)\n```", re.DOTALL)
REHEARSAL_TIMEOUT_S = 230
REHEARSAL_PORTS = (7401, 7402, 7403, 8000, 8081, 8082, 8083)
PAGE = "Hello from the rehearsal cluster"


def marked_scripts(path: Path) -> dict[str, str]:
    """NAME -> the concatenated ``sh`` blocks marked ``<!-- test: NAME -->`` in ``path``."""
    scripts: dict[str, list[str]] = {}
    for name, body in _MARKED_BLOCK.findall(path.read_text(encoding="utf-8")):
        scripts.setdefault(name, []).append(body)
    return {name: "\n".join(blocks) + "\n" for name, blocks in scripts.items()}


def readme_setup_commands() -> list[str]:
    """The commands of the README's first ``sh`` block (comments stripped)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)\n```", text, re.DOTALL)
    assert block is not None, "README.md has no ```sh block"
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.strip()]


def _require(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if not missing:
        return
    message = f"{', '.join(missing)} not installed (Debian: apt-get install tor curl)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {message}", pytrace=False)
    pytest.skip(message)


# ------------------------------------------------------------------------------------------------
# README


def test_readme_has_exactly_the_two_setup_commands() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert readme_setup_commands() == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    # The set-up block comes right after the one-paragraph description, before any section.
    assert text.index("```sh") < text.index("\n## ")
    for doc in re.findall(r"docs/[a-z-]+\.md", text):
        assert (REPO / doc).is_file(), f"README.md points at {doc}, which does not exist"


def test_readme_demo_command_reaches_onionfleet_demo() -> None:
    """``bash scripts/demo.sh`` sets up (idempotent here) and runs ``onionfleet demo``."""
    script = (REPO / "scripts" / "demo.sh").read_text(encoding="utf-8")
    assert 'demo "$@"' in script and "setup-env.sh" in script
    for name in ("demo.sh", "test.sh", "setup-env.sh"):
        subprocess.run(["bash", "-n", str(REPO / "scripts" / name)], check=True)
    if not (Path(sys.prefix) / ".onionfleet-installed").exists():
        pytest.skip(f"{sys.prefix} was not set up by scripts/setup-env.sh (it would pip install)")
    env = {**os.environ, "ONIONFLEET_VENV": sys.prefix}
    res = subprocess.run(
        ["bash", "scripts/demo.sh", "--help"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if res.returncode != 0 and "Run as root" in res.stderr:
        pytest.skip(f"set-up needs root here: {res.stderr.strip()}")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "usage: onionfleet demo" in res.stdout
    assert "--check" in res.stdout and "95%" in res.stdout


def test_docs_marked_blocks_are_found() -> None:
    scripts = marked_scripts(REPO / "docs" / "cluster-setup.md")
    assert set(scripts) == {"rehearse-testnet"}
    script = scripts["rehearse-testnet"]
    for command in (
        "onionfleet testnet up",
        "onionfleet init",
        "onionfleet join",
        "onionfleet run",
    ):
        assert command in script, f"the rehearsal no longer runs {command!r}"


# ------------------------------------------------------------------------------------------------
# docs/cluster-setup.md "Rehearse on one machine", run as written


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(none)"


@pytest.mark.testnet
def test_cluster_rehearsal_on_a_private_network_runs_as_written(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _require("tor", "tor-gencert", "curl")
    busy = [p for p in REHEARSAL_PORTS if _port_in_use(p)]
    assert not busy, f"ports the rehearsal uses are taken on 127.0.0.1: {busy}"
    script = marked_scripts(REPO / "docs" / "cluster-setup.md")["rehearse-testnet"]
    # A short home directory: the nodes' status sockets live under it (108-byte path limit).
    home = Path(tempfile.mkdtemp(prefix="of-home-"))
    work = home / "onionfleet-testnet"
    bindir = Path(sys.executable).parent
    env = {
        **os.environ,
        "HOME": str(home),
        "PATH": f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
    }
    start = time.monotonic()
    proc = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=home,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=REHEARSAL_TIMEOUT_S)
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
    finally:
        # Whatever the script left behind (it ends by stopping its jobs itself).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    took = time.monotonic() - start
    logs = "\n".join(
        f"--- {name}\n{_tail(work / name)}"
        for name in ("testnet.out", "node-a.log", "node-b.log", "node-c.log")
    )
    removed = not work.exists()
    shutil.rmtree(home, ignore_errors=True)
    with capsys.disabled():
        retries = len(re.findall(r"^\(attempt \d+ failed", out, flags=re.MULTILINE))
        print(
            f"\ndocs/cluster-setup.md rehearsal on a private network: {took:.1f} s "
            f"(fetch attempts given up and made again: {retries})"
        )
    assert not timed_out, f"rehearsal timed out after {took:.0f} s\n{out[-6000:]}\n{logs}"
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out[-6000:]}\n{logs}"
    assert out.count(PAGE) == 6, out[-6000:]
    assert "publisher" in out and "cluster: term" in out
    alive = re.findall(r"^\s+node-[abc]\s+(self|alive)\s", out, flags=re.MULTILINE)
    assert len(alive) >= 3, out[-6000:]
    accepted = [int(n) for n in re.findall(r"^proxy: \d+ active, (\d+) accepted", out, re.M)]
    # The last three `proxy:` lines are the nodes' after the six fetches (probes go around them).
    assert len(accepted) >= 3 and sum(accepted[-3:]) >= 6, out[-6000:]
    # The token never shows in anything the commands printed.
    assert "cluster_token =" not in out
    assert removed, "the rehearsal's last block removes its directory"
