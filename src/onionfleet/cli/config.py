"""``onionfleet config check FILE``: validate a node's config and print every problem."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from onionfleet.config import check_config

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("config", help="validate node configuration files")
    sub = parser.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    check = sub.add_parser(
        "check", help="validate FILE and print every problem with its key and a fix"
    )
    check.add_argument("file", type=Path, help="the node's TOML config file")
    check.add_argument("--json", action="store_true", help="print the problems as JSON")
    check.set_defaults(func=_check)


def _check(args: argparse.Namespace) -> int:
    problems = check_config(args.file)
    if args.json:
        print(
            json.dumps(
                {
                    "file": str(args.file),
                    "valid": not problems,
                    "problems": [
                        {"key": p.key_path, "message": p.message, "fix": p.fix} for p in problems
                    ],
                },
                indent=2,
            )
        )
    elif problems:
        print(f"{args.file}: {len(problems)} problem(s)")
        for p in problems:
            print(f"  {p.key_path}: {p.message}\n      fix: {p.fix}")
    else:
        print(f"{args.file}: OK")
    return 1 if problems else 0
