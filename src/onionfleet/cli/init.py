"""``onionfleet init``: create a cluster on its first node.

Writes, in the node's data directory: the master key (generated, or imported with
``--master-key-dir``), the cluster token, optionally a WireGuard key, and an invite for the other
nodes; and the node's config (``--out``), validated like ``onionfleet config check`` does. Nothing
is overwritten without ``--force``, and a master key is never deleted.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
from pathlib import Path
from typing import Any

from onionfleet.provision.errors import ProvisionError
from onionfleet.provision.nodeconfig import TargetSpec
from onionfleet.provision.setup import (
    DEFAULT_PROXY_LISTEN,
    InitRequest,
    ProvisionResult,
    WireGuardRequest,
    init_cluster,
)

__all__ = ["add_node_arguments", "print_result", "register", "targets_from", "wireguard_from"]


def add_node_arguments(parser: argparse.ArgumentParser, *, first_node: bool) -> None:
    """The options ``init`` and ``join`` share."""
    parser.add_argument("--node-id", required=True, metavar="ID", help="this node's unique id")
    parser.add_argument(
        "--data-dir",
        type=Path,
        required=True,
        metavar="DIR",
        help="the node's data directory (created 0700), e.g. /var/lib/onionfleet",
    )
    parser.add_argument(
        "--listen",
        required=True,
        metavar="HOST:PORT",
        help="where this node accepts peer connections, e.g. 10.77.0.1:7420",
    )
    parser.add_argument(
        "--advertise",
        metavar="HOST:PORT",
        help="the address peers dial to reach this node, if not --listen",
    )
    parser.add_argument(
        "--target-onion",
        action="append",
        default=[],
        metavar="ADDR.onion:PORT",
        help="a target onion service (repeatable)",
    )
    parser.add_argument(
        "--target-host",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="a target reached by plain TCP (repeatable)"
        + ("" if first_node else "; default: the invite's targets"),
    )
    parser.add_argument(
        "--proxy-listen",
        default=DEFAULT_PROXY_LISTEN,
        metavar="127.0.0.1:PORT",
        help=f"the local reverse proxy tor forwards to (default: {DEFAULT_PROXY_LISTEN})",
    )
    parser.add_argument(
        "--priority",
        type=int,
        default=100,
        help="0..1000, lower is preferred as publisher (default: 100)",
    )
    parser.add_argument(
        "--master-key-dir",
        type=Path,
        metavar="DIR",
        help=(
            "an existing master key directory (tor HiddenServiceDir) to import instead of "
            "generating one"
            if first_node
            else "the master key directory copied from the first node (checked against the "
            "invite's address), unless the invite carries the key"
        ),
    )
    parser.add_argument(
        "--wireguard",
        action="store_true",
        help="make a WireGuard key and manage peers (needs --wg-address)",
    )
    parser.add_argument(
        "--wg-address", metavar="ADDR/PREFIX", help="this node's tunnel address, e.g. 10.77.0.1/24"
    )
    parser.add_argument(
        "--wg-endpoint",
        metavar="PUBLIC_HOST:PORT",
        help=(
            "this node's public WireGuard endpoint (UDP): written into [wireguard] endpoint, "
            "which gossip announces to the other nodes"
            + (", and into the invite" if first_node else "")
        ),
    )
    parser.add_argument(
        "--wg-listen-port",
        type=int,
        metavar="PORT",
        help="WireGuard UDP port (default: the --wg-endpoint port, else 51820)",
    )
    parser.add_argument(
        "--out", type=Path, required=True, metavar="FILE", help="where to write the node config"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="overwrite existing files (an existing master key is kept, never deleted)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "init",
        help="create a cluster: master key, cluster token, node config and an invite",
        description=(
            "Create a cluster on its first node: the master key (generated, or imported with "
            "--master-key-dir), a cluster token, optionally a WireGuard key, this node's config "
            "(--out) and an invite file for `onionfleet join` on the other nodes."
        ),
    )
    add_node_arguments(parser, first_node=True)
    parser.add_argument(
        "--virtual-port",
        type=int,
        default=80,
        metavar="PORT",
        help="the port clients use on the onion address (default: 80)",
    )
    parser.add_argument(
        "--cluster-name",
        default="onionfleet",
        metavar="NAME",
        help="a name for the cluster, shown to joining nodes (default: onionfleet)",
    )
    parser.add_argument(
        "--invite-out",
        type=Path,
        metavar="FILE",
        help="where to write the invite (default: DATA_DIR/invite; mode 0600)",
    )
    parser.add_argument(
        "--include-master-key",
        action="store_true",
        help=(
            "put the master secret key into the invite (the invite is then as secret as the "
            "key; default: copy the key directory yourself, see docs/security.md)"
        ),
    )
    parser.set_defaults(func=_init)


def targets_from(args: argparse.Namespace) -> tuple[TargetSpec, ...]:
    return tuple(TargetSpec.onion(t) for t in args.target_onion) + tuple(
        TargetSpec.plain(t) for t in args.target_host
    )


def wireguard_from(args: argparse.Namespace) -> WireGuardRequest | None:
    endpoint = getattr(args, "wg_endpoint", None)
    if not args.wireguard:
        if args.wg_address or endpoint or args.wg_listen_port:
            raise ProvisionError("--wg-address/--wg-endpoint/--wg-listen-port need --wireguard")
        return None
    if not args.wg_address:
        raise ProvisionError("--wireguard needs --wg-address, e.g. --wg-address 10.77.0.1/24")
    return WireGuardRequest(args.wg_address, endpoint, args.wg_listen_port)


def _init(args: argparse.Namespace) -> int:
    req = InitRequest(
        node_id=args.node_id,
        data_dir=args.data_dir,
        listen=args.listen,
        config_out=args.out,
        targets=targets_from(args),
        advertise=args.advertise,
        proxy_listen=args.proxy_listen,
        virtual_port=args.virtual_port,
        priority=args.priority,
        cluster_name=args.cluster_name,
        master_key_dir=args.master_key_dir,
        wireguard=wireguard_from(args),
        include_master_key=args.include_master_key,
        invite_out=args.invite_out,
        force=args.force,
    )
    result = init_cluster(req, secrets.token_bytes)
    print_result(result, args.json, _init_next_steps(result))
    return 0


def _q(path: Path | str) -> str:
    return shlex.quote(str(path))


def _chown_step(result: ProvisionResult) -> list[str]:
    if os.geteuid() != 0:
        return []
    return [
        "Give the files to the service user (you ran this as root): "
        f"chown -R onionfleet:onionfleet {_q(result.data_dir)}; "
        f"chgrp onionfleet {_q(result.config_path)}"
    ]


def _init_next_steps(result: ProvisionResult) -> list[str]:
    invite = result.invite_path or Path("invite")
    steps = [f"Check the config: onionfleet config check {_q(result.config_path)}"]
    steps += _chown_step(result)
    copy = (
        f"Copy the invite to each new node over ssh (it holds the cluster token: never paste it "
        f"into chat, mail or tickets): scp -p {_q(invite)} root@NEW-NODE:/root/onionfleet-invite"
    )
    if not result.invite_includes_master_key:
        copy += (
            f" ; and the master key directory: scp -rp {_q(result.master_key_dir)} "
            "root@NEW-NODE:/root/onionfleet-master"
        )
    steps.append(copy)
    join = (
        "On each new node: onionfleet join /root/onionfleet-invite --node-id NODE-ID "
        "--data-dir /var/lib/onionfleet --listen HOST:PORT --out /etc/onionfleet/node.toml"
    )
    if not result.invite_includes_master_key:
        join += " --master-key-dir /root/onionfleet-master"
    join += " ; then delete the copies (shred -u /root/onionfleet-invite"
    join += "; rm -rf /root/onionfleet-master)" if not result.invite_includes_master_key else ")"
    steps.append(join)
    if result.wireguard_public_key is not None:
        steps.append(
            "WireGuard: bring up the interface on this node (see docs/cluster-setup.md), e.g. "
            f"ip link add ofwg0 type wireguard && wg set ofwg0 private-key "
            f"{_q(result.data_dir / 'wireguard.key')} "
            f"listen-port {result.wireguard_listen_port} && ip addr add "
            f"{result.wireguard_address} dev ofwg0 && ip link set ofwg0 up"
        )
    steps.append(
        f"Start this node: onionfleet run --config {_q(result.config_path)} "
        "(or: systemctl start onionfleet)"
    )
    return steps


def print_result(result: ProvisionResult, as_json: bool, next_steps: list[str]) -> None:
    """Print what was written (never a secret) and the next steps."""
    if as_json:
        print(json.dumps(_result_json(result, next_steps), indent=2))
        return
    verb = "joined" if result.inviter_node_id else "created"
    print(f"{verb} cluster {result.cluster_name} ({result.cluster_id}) as node {result.node_id}")
    print(f"master onion address: {result.master_address}")
    print(f"master key:           {result.master_key_dir} ({result.master_key_source})")
    print(f"peers dial this node: {result.advertised_peer_address}")
    if result.peers:
        print(f"peers:                {', '.join(result.peers)}")
    print(f"targets:              {', '.join(t.label for t in result.targets)}")
    if result.wireguard_public_key is not None:
        print(f"WireGuard public key: {result.wireguard_public_key} ({result.wireguard_address})")
    print("wrote:")
    for f in result.files:
        print(f"  {f.mode:04o}  {f.path}  ({f.what})")
    print("next steps:")
    for i, step in enumerate(next_steps, 1):
        print(f"  {i}. {step}")


def _result_json(result: ProvisionResult, next_steps: list[str]) -> dict[str, Any]:
    wg_inviter = result.inviter_wireguard
    return {
        "node_id": result.node_id,
        "config": str(result.config_path),
        "data_dir": str(result.data_dir),
        "cluster_id": result.cluster_id,
        "cluster_name": result.cluster_name,
        "master_address": str(result.master_address),
        "master_key_dir": str(result.master_key_dir),
        "master_key_source": result.master_key_source,
        "advertise": result.advertised_peer_address,
        "peers": list(result.peers),
        "targets": [t.label for t in result.targets],
        "invite": str(result.invite_path) if result.invite_path else None,
        "invite_includes_master_key": result.invite_includes_master_key,
        "wireguard": (
            {"public_key": result.wireguard_public_key, "address": result.wireguard_address}
            if result.wireguard_public_key is not None
            else None
        ),
        "inviter": (
            {
                "node_id": result.inviter_node_id,
                "wireguard": (
                    {
                        "public_key": wg_inviter.public_key_b64,
                        "endpoint": wg_inviter.endpoint,
                        "address": wg_inviter.address,
                    }
                    if wg_inviter is not None
                    else None
                ),
            }
            if result.inviter_node_id is not None
            else None
        ),
        "files": [
            {"path": str(f.path), "mode": f"{f.mode:04o}", "what": f.what} for f in result.files
        ],
        "next_steps": next_steps,
    }
