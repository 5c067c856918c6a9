"""Master key directories: generate, import (incl. a dir made by real tor), show, modes."""

from __future__ import annotations

import random
import shutil
import stat
from pathlib import Path

import pytest

from onionfleet.hs.keys import OnionAddress, load_secret_key_file, master_key_from_seed
from onionfleet.provision.errors import (
    AlreadyExists,
    KeyDirError,
    MasterKeyMismatch,
    UnsafePermissions,
)
from onionfleet.provision.keydir import (
    generate_key_dir,
    import_key_dir,
    inspect_key_dir,
    load_master_key_dir,
    write_key_dir,
)

REAL_TOR_DIR = Path(__file__).parents[2] / "vectors" / "hs" / "real_tor" / "svcplain"


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def rng_bytes(seed: int = 7) -> random.Random:
    return random.Random(seed)


def test_generate_writes_tor_format_with_modes(tmp_path: Path) -> None:
    d = tmp_path / "keys"
    addr = generate_key_dir(d, rng_bytes().randbytes, force=False)
    assert mode(d) == 0o700
    for name in ("hs_ed25519_secret_key", "hs_ed25519_public_key", "hostname"):
        assert mode(d / name) == 0o600
    assert (d / "hostname").read_text() == f"{addr}\n"
    raw = (d / "hs_ed25519_secret_key").read_bytes()
    assert raw[:32] == b"== ed25519v1-secret: type0 ==\x00\x00\x00" and len(raw) == 96
    assert load_secret_key_file(d / "hs_ed25519_secret_key").public_key().address() == addr
    report = inspect_key_dir(d)
    assert report.ok and report.has_secret_key and report.address == addr


def test_generate_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    d = tmp_path / "keys"
    first = generate_key_dir(d, rng_bytes(1).randbytes, force=False)
    with pytest.raises(AlreadyExists, match="refusing to overwrite"):
        generate_key_dir(d, rng_bytes(2).randbytes, force=False)
    assert load_master_key_dir(d)[1] == first
    second = generate_key_dir(d, rng_bytes(2).randbytes, force=True)
    assert second != first and load_master_key_dir(d)[1] == second


def test_group_readable_existing_dir_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "shared"
    d.mkdir(mode=0o755)
    d.chmod(0o755)
    with pytest.raises(UnsafePermissions, match="chmod 700"):
        generate_key_dir(d, rng_bytes().randbytes, force=False)


def _copy_real(tmp_path: Path) -> Path:
    src = tmp_path / "tor-hs"
    shutil.copytree(REAL_TOR_DIR, src)
    (src / "descriptor.txt").unlink()
    (src / "meta.json").unlink()
    src.chmod(0o700)
    for f in src.iterdir():
        f.chmod(0o600)
    return src


def test_import_a_directory_made_by_real_tor(tmp_path: Path) -> None:
    src = _copy_real(tmp_path)
    expected = OnionAddress.parse((src / "hostname").read_text())
    addr = import_key_dir(src, tmp_path / "out", force=False)
    assert addr == expected
    assert (tmp_path / "out" / "hs_ed25519_secret_key").read_bytes() == (
        src / "hs_ed25519_secret_key"
    ).read_bytes()
    assert mode(tmp_path / "out") == 0o700
    assert mode(tmp_path / "out" / "hs_ed25519_secret_key") == 0o600


def test_import_refuses_world_readable_secret_key_with_fix(tmp_path: Path) -> None:
    src = _copy_real(tmp_path)
    (src / "hs_ed25519_secret_key").chmod(0o644)
    with pytest.raises(UnsafePermissions, match="chmod 600"):
        import_key_dir(src, tmp_path / "out", force=False)
    assert not (tmp_path / "out").exists()
    report = inspect_key_dir(src)
    assert not report.ok
    bad = report.first_problem()
    assert bad is not None and bad.name == "secret key mode" and "chmod 600" in bad.fix


def test_import_checks_hostname_header_and_size(tmp_path: Path) -> None:
    src = _copy_real(tmp_path)
    other = master_key_from_seed(b"\x09" * 32).public_key().address()
    (src / "hostname").write_text(f"{other}\n")
    with pytest.raises(KeyDirError, match="hostname matches key"):
        import_key_dir(src, tmp_path / "out", force=False)
    (src / "hostname").unlink()
    raw = (src / "hs_ed25519_secret_key").read_bytes()
    (src / "hs_ed25519_secret_key").write_bytes(raw[:-1])
    with pytest.raises(KeyDirError, match="wrong size"):
        import_key_dir(src, tmp_path / "out", force=False)
    (src / "hs_ed25519_secret_key").write_bytes(
        b"== ed25519v1-public: type0 ==\x00\x00\x00" + raw[32:]
    )
    with pytest.raises(KeyDirError, match="header"):
        import_key_dir(src, tmp_path / "out", force=False)


def test_import_expected_address_and_same_dir(tmp_path: Path) -> None:
    src = _copy_real(tmp_path)
    other = master_key_from_seed(b"\x09" * 32).public_key().address()
    with pytest.raises(MasterKeyMismatch):
        import_key_dir(src, tmp_path / "out", force=False, expected=other)
    with pytest.raises(KeyDirError, match="both the source and the destination"):
        import_key_dir(src, src, force=True)


def test_inspect_errors_and_public_only_dir(tmp_path: Path) -> None:
    with pytest.raises(KeyDirError, match="not a directory"):
        inspect_key_dir(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o700)
    with pytest.raises(KeyDirError, match="none of"):
        inspect_key_dir(empty)
    d = tmp_path / "k"
    key = master_key_from_seed(b"\x05" * 32)
    write_key_dir(d, key, force=False)
    (d / "hs_ed25519_secret_key").unlink()
    report = inspect_key_dir(d)
    assert report.ok and not report.has_secret_key
    assert report.address == key.public_key().address()
    with pytest.raises(KeyDirError, match="no hs_ed25519_secret_key"):
        load_master_key_dir(d)


def test_public_key_of_another_key_is_reported(tmp_path: Path) -> None:
    d = tmp_path / "k"
    write_key_dir(d, master_key_from_seed(b"\x05" * 32), force=False)
    other = tmp_path / "o"
    write_key_dir(other, master_key_from_seed(b"\x06" * 32), force=False)
    shutil.copyfile(other / "hs_ed25519_public_key", d / "hs_ed25519_public_key")
    report = inspect_key_dir(d)
    names = [c.name for c in report.checks if not c.ok]
    assert names == ["public key matches secret key"]
