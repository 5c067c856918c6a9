"""``onionfleet join INVITE_FILE``: make another node's files from an invite.

Writes, in the node's data directory: the cluster token, the master key (from the invite if it
carries it, else from ``--master-key-dir``, whose address must be the invite's), optionally a
WireGuard key; and the node's config (``--out``) with the inviting node as its peer.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import shlex
import stat
from pathlib import Path
from typing import Any

from onionfleet.cli.init import add_node_arguments, print_result, targets_from, wireguard_from
from onionfleet.provision.errors import InviteSyntaxError, UnsafePermissions
from onionfleet.provision.invite import MAX_INVITE_CHARS, Invite, parse_invite
from onionfleet.provision.setup import JoinRequest, ProvisionResult, join_cluster

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "join",
        help="make this node's config from an invite written by `onionfleet init`",
        description=(
            "Join a cluster: from INVITE_FILE (written by `onionfleet init` on the first node) "
            "write the cluster token, the master key (from the invite, or --master-key-dir "
            "checked against the invite's address), optionally a WireGuard key, and this "
            "node's config (--out) with the inviting node as its peer."
        ),
    )
    parser.add_argument("invite_file", type=Path, metavar="INVITE_FILE", help="the invite file")
    add_node_arguments(parser, first_node=False)
    parser.set_defaults(func=_join)


def read_invite_file(path: Path) -> Invite:
    """Read an invite file; refuse one that group or others may read (it holds the token)."""
    try:
        st = path.stat()
        if stat.S_IMODE(st.st_mode) & (stat.S_IRWXG | stat.S_IRWXO):
            raise UnsafePermissions(
                f"invite file {path} is readable by group or others (mode "
                f"{stat.S_IMODE(st.st_mode):03o}); it holds the cluster token. Fix: chmod 600 "
                f"{path} (and if others could read it, make a new cluster token: see "
                "docs/operations.md)"
            )
        with path.open("rb") as fh:
            raw = fh.read(MAX_INVITE_CHARS + 2)
    except OSError as exc:
        raise InviteSyntaxError(f"cannot read invite file {path}: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise InviteSyntaxError(f"invite file {path} is not ASCII text") from exc
    return parse_invite(text)


def _join(args: argparse.Namespace) -> int:
    invite = read_invite_file(args.invite_file)
    req = JoinRequest(
        invite=invite,
        node_id=args.node_id,
        data_dir=args.data_dir,
        listen=args.listen,
        config_out=args.out,
        targets=targets_from(args),
        advertise=args.advertise,
        proxy_listen=args.proxy_listen,
        priority=args.priority,
        master_key_dir=args.master_key_dir,
        wireguard=wireguard_from(args),
        force=args.force,
    )
    result = join_cluster(req, secrets.token_bytes)
    print_result(result, args.json, _next_steps(result, args.invite_file, args.master_key_dir))
    return 0


def _q(path: Path | str) -> str:
    return shlex.quote(str(path))


def _host_ip(address: str) -> str:
    iface = ipaddress.ip_interface(address)
    return f"{iface.ip}/{iface.max_prefixlen}"


def _next_steps(
    result: ProvisionResult, invite_file: Path, copied_key_dir: Path | None
) -> list[str]:
    steps = [f"Check the config: onionfleet config check {_q(result.config_path)}"]
    if os.geteuid() == 0:
        steps.append(
            "Give the files to the service user (you ran this as root): "
            f"chown -R onionfleet:onionfleet {_q(result.data_dir)}; "
            f"chgrp onionfleet {_q(result.config_path)}"
        )
    steps.append(
        f"Delete the copied invite (it holds the cluster token): shred -u {_q(invite_file)}"
        + (
            f"; and the copied key directory: rm -rf {_q(copied_key_dir)}"
            if result.master_key_source == "imported" and copied_key_dir is not None
            else ""
        )
    )
    inviter_wg = result.inviter_wireguard
    if result.wireguard_public_key is not None and result.wireguard_address is not None:
        steps.append(
            "WireGuard on this node: ip link add ofwg0 type wireguard && wg set ofwg0 "
            f"private-key {_q(result.data_dir / 'wireguard.key')} "
            f"listen-port {result.wireguard_listen_port} && "
            f"ip addr add {result.wireguard_address} dev ofwg0 && ip link set ofwg0 up"
        )
        if inviter_wg is not None:
            steps.append(
                f"WireGuard path to {result.inviter_node_id}, on this node: wg set ofwg0 peer "
                f"{inviter_wg.public_key_b64} endpoint {inviter_wg.endpoint} allowed-ips "
                f"{_host_ip(inviter_wg.address)} persistent-keepalive 25"
            )
            steps.append(
                f"and on {result.inviter_node_id}: wg set ofwg0 peer "
                f"{result.wireguard_public_key} allowed-ips {_host_ip(result.wireguard_address)}"
            )
    steps.append(
        f"Start this node: onionfleet run --config {_q(result.config_path)} "
        "(or: systemctl start onionfleet); then check it: onionfleet status"
    )
    return steps
