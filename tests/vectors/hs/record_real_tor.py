"""One-off recorder of real-tor v3 descriptors (not a test; see README.md in this directory).

Starts the private test network (onionfleet.testnet), adds onion services made by C-tor and reads
their current descriptor with ``GETINFO hs/service/desc/id/<addr>`` over the control port.
Usage: .venv/bin/python tests/vectors/hs/record_real_tor.py OUTDIR [NAME...]
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from onionfleet.testnet import TestNetwork


def getinfo(port: int, cookie: bytes, key: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"AUTHENTICATE " + cookie.hex().encode() + b"\r\n")
        buf = b""
        while not buf.endswith(b"\r\n"):
            buf += s.recv(4096)
        if not buf.startswith(b"250"):
            raise RuntimeError(buf.decode())
        s.sendall(f"GETINFO {key}\r\n".encode())
        buf = b""
        deadline = time.monotonic() + 10
        while (
            not (buf.endswith(b"250 OK\r\n") or buf.startswith(b"5"))
            and time.monotonic() < deadline
        ):
            buf += s.recv(65536)
    text = buf.decode()
    if not text.startswith("250+"):
        raise RuntimeError(text[:200])
    body = text.split("\r\n", 1)[1].rsplit("\r\n.\r\n", 1)[0]
    return body.replace("\r\n", "\n") + "\n"


def b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=")


def main() -> None:
    out = Path(sys.argv[1])
    only = set(sys.argv[2:])  # optional: names of the services to keep
    out.mkdir(parents=True, exist_ok=True)
    root = Path("/tmp/of-hs-record")
    shutil.rmtree(root, ignore_errors=True)
    client = X25519PrivateKey.generate()
    client_pub = client.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    client_sec = client.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    with TestNetwork(root, relays=5, keep_dir=True) as net:
        auth_dir = root / "svcauth" / "hs" / "authorized_clients"
        auth_dir.mkdir(parents=True, mode=0o700)
        (root / "svcauth").chmod(0o700)
        (root / "svcauth" / "hs").chmod(0o700)
        (auth_dir / "alice.auth").write_text(f"descriptor:x25519:{b32(client_pub)}\n")
        services = {
            "svcplain": net.add_onion_service("svcplain", target_port=9, wait=False),
            "svcauth": net.add_onion_service("svcauth", target_port=9, wait=False),
            "svcpow": net.add_onion_service(
                "svcpow",
                target_port=9,
                wait=False,
                extra_torrc=["HiddenServicePoWDefensesEnabled 1"],
            ),
        }
        for inst in services.values():
            inst.wait_ready(timeout_s=180)
        for name, inst in services.items():
            if only and name not in only:
                continue
            addr = inst.onion_address
            assert addr is not None and inst.hs_dir is not None
            bare = addr.removesuffix(".onion")
            desc = getinfo(
                inst.control_port, inst.cookie_path.read_bytes(), f"hs/service/desc/id/{bare}"
            )
            recorded_at = time.time()
            d = out / name
            d.mkdir(exist_ok=True)
            (d / "descriptor.txt").write_text(desc)
            for f in ("hs_ed25519_secret_key", "hs_ed25519_public_key", "hostname"):
                shutil.copyfile(inst.hs_dir / f, d / f)
                (d / f).chmod(0o600)
            meta = {
                "address": addr,
                "recorded_at_unix": recorded_at,
                "voting_interval_s": net.voting_interval_s,
                "tor_version": "0.4.9.11 (Debian)",
            }
            if name == "svcauth":
                (d / "client.auth_private").write_text(
                    f"{bare}:descriptor:x25519:{b32(client_sec)}\n"
                )
                meta["client_public_key_b32"] = b32(client_pub)
            (d / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
            print("recorded", name, addr, len(desc))


if __name__ == "__main__":
    main()
