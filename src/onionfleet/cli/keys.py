"""``onionfleet keys generate|import|show``: the master key in tor's HiddenServiceDir format.

* ``keys generate --out DIR`` makes a new master key (DIR 0700; ``hs_ed25519_secret_key``,
  ``hs_ed25519_public_key`` and ``hostname`` 0600) and prints its onion address.
* ``keys import TOR_HS_DIR --out DIR`` checks an existing HiddenServiceDir (headers, sizes, the
  address in ``hostname``, permissions) and copies the key with the right modes.
* ``keys show DIR`` prints the address and checks the files and their modes (exit 1 on a problem).

The secret key is never printed.
"""

from __future__ import annotations

import argparse
import json
import secrets
from pathlib import Path
from typing import Any

from onionfleet.provision.keydir import (
    generate_key_dir,
    import_key_dir,
    inspect_key_dir,
)

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "keys",
        help="generate, import or check the master onion key",
        description="The master onion key, in tor's HiddenServiceDir format.",
    )
    actions = parser.add_subparsers(dest="keys_action", metavar="ACTION", required=True)

    gen = actions.add_parser(
        "generate",
        help="make a new master key in DIR and print its onion address",
        description=(
            "Make a new master key in DIR (created 0700; key files 0600) and print its onion "
            "address. Refuses to overwrite existing keys without --force."
        ),
    )
    gen.add_argument("--out", type=Path, required=True, metavar="DIR", help="key directory")
    gen.add_argument("--force", action="store_true", help="overwrite keys already in DIR")
    gen.add_argument("--json", action="store_true", help="print JSON")
    gen.set_defaults(func=_generate)

    imp = actions.add_parser(
        "import",
        help="check a tor HiddenServiceDir and copy its key into DIR",
        description=(
            "Check an existing tor HiddenServiceDir (key file headers and sizes, that hostname "
            "matches the key, that the secret key is not readable by others) and copy it into "
            "DIR with tor's modes."
        ),
    )
    imp.add_argument("source", type=Path, metavar="TOR_HS_DIR", help="tor's HiddenServiceDir")
    imp.add_argument("--out", type=Path, required=True, metavar="DIR", help="key directory")
    imp.add_argument("--force", action="store_true", help="overwrite keys already in DIR")
    imp.add_argument("--json", action="store_true", help="print JSON")
    imp.set_defaults(func=_import)

    show = actions.add_parser(
        "show",
        help="print a key directory's onion address and check its files",
        description=(
            "Print the onion address of a key directory and check its files: tor headers and "
            "sizes, that the keys and hostname agree, and the modes (0700 directory, 0600 "
            "secret key). Exit status 1 if any check fails."
        ),
    )
    show.add_argument("directory", type=Path, metavar="DIR", help="key directory")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=_show)


def _print_written(args: argparse.Namespace, address: str, action: str) -> None:
    out = args.out.absolute()
    if args.json:
        print(json.dumps({"address": address, "directory": str(out), "action": action}, indent=2))
        return
    print(f"{action} master key in {out} (directory 0700, key files 0600)")
    print(f"onion address: {address}")
    print("Keep a backup of this directory somewhere offline: the key IS the address.")


def _generate(args: argparse.Namespace) -> int:
    address = generate_key_dir(args.out, secrets.token_bytes, force=args.force)
    _print_written(args, str(address), "generated")
    return 0


def _import(args: argparse.Namespace) -> int:
    address = import_key_dir(args.source, args.out, force=args.force)
    _print_written(args, str(address), "imported")
    return 0


def _show(args: argparse.Namespace) -> int:
    report = inspect_key_dir(args.directory)
    address = str(report.address) if report.address is not None else None
    if args.json:
        print(
            json.dumps(
                {
                    "directory": str(report.directory.absolute()),
                    "address": address,
                    "has_secret_key": report.has_secret_key,
                    "ok": report.ok,
                    "checks": [
                        {"check": c.name, "ok": c.ok, "detail": c.detail, "fix": c.fix}
                        for c in report.checks
                    ],
                },
                indent=2,
            )
        )
    else:
        print(f"directory:     {report.directory.absolute()}")
        print(f"onion address: {address or '(unknown)'}")
        print(f"secret key:    {'present' if report.has_secret_key else 'absent'}")
        for c in report.checks:
            print(f"  [{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}")
            if not c.ok:
                print(f"         fix: {c.fix}")
    return 0 if report.ok else 1
