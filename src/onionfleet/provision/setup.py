"""``onionfleet init`` and ``onionfleet join`` without the command line: decide, check, write.

Layout inside the node's data directory (0700)::

    master/             the master key, tor HiddenServiceDir format (0700; files 0600)
    cluster-token       the cluster token (0600)
    wireguard.key       WireGuard private key, ``wg genkey`` format (0600)   [--wireguard]
    wireguard.pub       its public key (0644)                                [--wireguard]
    invite              the invite for other nodes (0600)                    [init]

Every path is checked before anything is written: without ``force`` an existing file is an
:class:`AlreadyExists` naming all of them. A master key is never deleted: with ``force`` an
existing key directory is kept when it holds the cluster's key, and refused otherwise. The config
is validated with :func:`onionfleet.config.parse_config` before it is written.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from onionfleet.config import Secret, parse_config
from onionfleet.hs.keys import HsIdExpandedSecretKey, OnionAddress, generate_master_key
from onionfleet.provision._files import ensure_private_dir, write_file
from onionfleet.provision.errors import (
    AlreadyExists,
    InviteError,
    MasterKeyMismatch,
    ProvisionError,
)
from onionfleet.provision.invite import (
    CLUSTER_NAME_PATTERN,
    Invite,
    InviteWireGuard,
    encode_invite,
)
from onionfleet.provision.keydir import (
    HOSTNAME_FILE,
    PUBLIC_KEY_FILE,
    SECRET_KEY_FILE,
    load_master_key_dir,
    write_key_dir,
)
from onionfleet.provision.nodeconfig import (
    NodeSpec,
    TargetSpec,
    WireGuardSpec,
    check_host_port,
    check_node_id,
    render_node_config,
)
from onionfleet.provision.secrets_gen import (
    TokenBytes,
    generate_cluster_id,
    generate_cluster_token,
    generate_wireguard_keypair,
)

__all__ = [
    "CONFIG_MODE",
    "DEFAULT_PROXY_LISTEN",
    "DEFAULT_WG_PORT",
    "InitRequest",
    "JoinRequest",
    "ProvisionResult",
    "WireGuardRequest",
    "WrittenFile",
    "init_cluster",
    "join_cluster",
    "node_paths",
]

CONFIG_MODE: Final = 0o640
DEFAULT_PROXY_LISTEN: Final = "127.0.0.1:8080"
DEFAULT_WG_PORT: Final = 51820

MasterKeySource = Literal["generated", "imported", "invite", "kept"]


@dataclass(frozen=True, slots=True)
class NodePaths:
    """Where a node's files go (see the module docstring)."""

    data_dir: Path
    master_key_dir: Path
    token_file: Path
    wg_private_key: Path
    wg_public_key: Path
    invite: Path


def _abs(path: Path) -> Path:
    """Absolute and normalised (``a/../b`` → ``b``) without resolving symlinks."""
    return Path(os.path.abspath(path))


def node_paths(data_dir: Path) -> NodePaths:
    d = _abs(data_dir)
    return NodePaths(
        d,
        d / "master",
        d / "cluster-token",
        d / "wireguard.key",
        d / "wireguard.pub",
        d / "invite",
    )


@dataclass(frozen=True, slots=True)
class WireGuardRequest:
    """``--wireguard``: this node's tunnel address (``10.77.0.1/24``), its public UDP endpoint
    (needed by ``init``: it goes into the invite) and the UDP port to listen on."""

    address: str
    endpoint: str | None = None
    listen_port: int | None = None


@dataclass(frozen=True, slots=True)
class InitRequest:
    node_id: str
    data_dir: Path
    listen: str
    config_out: Path
    targets: tuple[TargetSpec, ...]
    advertise: str | None = None
    proxy_listen: str = DEFAULT_PROXY_LISTEN
    virtual_port: int = 80
    priority: int = 100
    cluster_name: str = "onionfleet"
    master_key_dir: Path | None = None
    wireguard: WireGuardRequest | None = None
    include_master_key: bool = False
    invite_out: Path | None = None
    force: bool = False


@dataclass(frozen=True, slots=True)
class JoinRequest:
    invite: Invite
    node_id: str
    data_dir: Path
    listen: str
    config_out: Path
    targets: tuple[TargetSpec, ...] = ()
    advertise: str | None = None
    proxy_listen: str = DEFAULT_PROXY_LISTEN
    priority: int = 100
    master_key_dir: Path | None = None
    wireguard: WireGuardRequest | None = None
    force: bool = False


@dataclass(frozen=True, slots=True)
class WrittenFile:
    path: Path
    mode: int
    what: str


@dataclass(frozen=True, slots=True)
class ProvisionResult:
    """What ``init``/``join`` did. Holds no secret, so it can be printed whole."""

    node_id: str
    config_path: Path
    data_dir: Path
    cluster_id: str
    cluster_name: str
    master_address: OnionAddress
    master_key_dir: Path
    master_key_source: MasterKeySource
    peers: tuple[str, ...]
    advertised_peer_address: str
    targets: tuple[TargetSpec, ...]
    files: tuple[WrittenFile, ...]
    invite_path: Path | None
    invite_includes_master_key: bool
    wireguard_public_key: str | None
    wireguard_address: str | None
    wireguard_listen_port: int | None
    inviter_node_id: str | None = None
    inviter_wireguard: InviteWireGuard | None = None


# --- checks ------------------------------------------------------------------------------------


def _check_common(
    node_id: str,
    *,
    listen: str,
    advertise: str | None,
    proxy_listen: str,
    priority: int,
    targets: tuple[TargetSpec, ...],
) -> str:
    """Validate the shared inputs; return the address peers dial (advertise, else listen)."""
    check_node_id(node_id)
    host, _ = check_host_port(listen, "--listen")
    if advertise is not None:
        check_host_port(advertise, "--advertise")
    proxy_host, _ = check_host_port(proxy_listen, "--proxy-listen")
    try:
        proxy_loopback = ipaddress.ip_address(proxy_host).is_loopback
    except ValueError:
        proxy_loopback = proxy_host == "localhost"
    if not proxy_loopback:
        raise ProvisionError(
            f"--proxy-listen {proxy_listen!r} is not a loopback address: only tor connects to "
            "the proxy; use 127.0.0.1:PORT"
        )
    if not 0 <= priority <= 1000:
        raise ProvisionError(f"--priority {priority} is not in 0..1000 (lower is preferred)")
    if not targets:
        raise ProvisionError(
            "no target: give at least one --target-onion ADDR.onion:PORT or --target-host HOST:PORT"
        )
    if advertise is None:
        try:
            unspecified = ipaddress.ip_address(host).is_unspecified
        except ValueError:
            unspecified = False
        if unspecified:
            raise ProvisionError(
                f"--listen {listen!r} is a wildcard address that peers cannot dial; add "
                "--advertise HOST:PORT (the address other nodes use to reach this one)"
            )
        return listen
    return advertise


def _check_wireguard(wg: WireGuardRequest, *, need_endpoint: bool) -> int:
    try:
        iface = ipaddress.ip_interface(wg.address)
    except ValueError:
        raise ProvisionError(
            f"--wg-address {wg.address!r} is not an address with prefix, e.g. 10.77.0.1/24"
        ) from None
    if "/" not in wg.address or iface.network.num_addresses < 2:
        raise ProvisionError(
            f"--wg-address {wg.address!r} needs the tunnel network's prefix, e.g. 10.77.0.1/24"
        )
    port = wg.listen_port
    if wg.endpoint is not None:
        _, endpoint_port = check_host_port(wg.endpoint, "--wg-endpoint")
        port = port if port is not None else endpoint_port
    elif need_endpoint:
        raise ProvisionError(
            "--wireguard needs --wg-endpoint PUBLIC_HOST:PORT on the first node: the invite "
            "tells joining nodes where to reach its WireGuard"
        )
    port = port if port is not None else DEFAULT_WG_PORT
    if not 1 <= port <= 65535:
        raise ProvisionError(f"--wg-listen-port {port} is not in 1..65535")
    return port


def _conflicts(paths: list[Path]) -> list[Path]:
    return [p for p in paths if p.exists() or p.is_symlink()]


def _key_dir_has_keys(directory: Path) -> bool:
    return any((directory / n).exists() for n in (SECRET_KEY_FILE, PUBLIC_KEY_FILE, HOSTNAME_FILE))


def _refuse_existing(paths: list[Path], force: bool) -> None:
    existing = _conflicts(paths)
    if existing and not force:
        names = ", ".join(str(p) for p in existing)
        raise AlreadyExists(
            f"refusing to overwrite {names}: this node looks provisioned already. "
            "Use --force to write new files (an existing master key is kept, never deleted)"
        )


def _keep_existing_key(directory: Path, expected: OnionAddress | None) -> OnionAddress:
    """--force with keys already in ``directory``: keep them if they are the expected key."""
    _, address = load_master_key_dir(directory)
    if expected is not None and address != expected:
        raise MasterKeyMismatch(
            f"{directory} already holds the key of {address}, not of the cluster's "
            f"{expected}. onionfleet never deletes a master key: move that directory away "
            "yourself if you really mean to discard it, then run again"
        )
    return address


def _config_text(spec: NodeSpec, comment: str, config_out: Path) -> str:
    text = render_node_config(spec, comment=comment)
    parse_config(text, source=config_out)  # raises ConfigProblems, naming each key
    return text


def _setup_wireguard(
    wg: WireGuardRequest | None, port: int | None, paths: NodePaths, token_bytes: TokenBytes
) -> tuple[str | None, WireGuardSpec | None, list[WrittenFile]]:
    """With ``--wireguard``: write this node's key pair; return its public key and the
    ``[wireguard]`` section to render. Without: nothing."""
    if wg is None or port is None:
        return None, None, []
    public, files = _write_wireguard(paths, token_bytes)
    return public, WireGuardSpec(wg.address, port, paths.wg_private_key, wg.endpoint), files


def _write_wireguard(paths: NodePaths, token_bytes: TokenBytes) -> tuple[str, list[WrittenFile]]:
    keypair = generate_wireguard_keypair(token_bytes)
    write_file(paths.wg_private_key, f"{keypair.private_b64}\n".encode("ascii"), 0o600)
    write_file(paths.wg_public_key, f"{keypair.public_b64}\n".encode("ascii"), 0o644)
    return keypair.public_b64, [
        WrittenFile(paths.wg_private_key, 0o600, "WireGuard private key"),
        WrittenFile(paths.wg_public_key, 0o644, "WireGuard public key"),
    ]


def _key_files(directory: Path, source: MasterKeySource) -> list[WrittenFile]:
    if source == "kept":
        return []
    return [
        WrittenFile(directory, 0o700, "master key directory (tor HiddenServiceDir format)"),
        WrittenFile(directory / SECRET_KEY_FILE, 0o600, "master secret key"),
        WrittenFile(directory / PUBLIC_KEY_FILE, 0o600, "master public key"),
        WrittenFile(directory / HOSTNAME_FILE, 0o600, "master onion address"),
    ]


# --- init --------------------------------------------------------------------------------------


def init_cluster(req: InitRequest, token_bytes: TokenBytes) -> ProvisionResult:
    """Create a cluster: master key, token, optional WireGuard key, node config and invite."""
    dial = _check_common(
        req.node_id,
        listen=req.listen,
        advertise=req.advertise,
        proxy_listen=req.proxy_listen,
        priority=req.priority,
        targets=req.targets,
    )
    if not CLUSTER_NAME_PATTERN.match(req.cluster_name):
        raise ProvisionError(
            f"--cluster-name {req.cluster_name!r} is not valid: use letters, digits, '.', '_' "
            "and '-' (max 63, starting with a letter or digit)"
        )
    if not 1 <= req.virtual_port <= 65535:
        raise ProvisionError(f"--virtual-port {req.virtual_port} is not in 1..65535")
    wg_port = (
        _check_wireguard(req.wireguard, need_endpoint=True) if req.wireguard is not None else None
    )
    paths = node_paths(req.data_dir)
    config_out = _abs(req.config_out)
    invite_out = _abs(req.invite_out) if req.invite_out else paths.invite
    planned = [config_out, paths.token_file, invite_out]
    if req.wireguard is not None:
        planned += [paths.wg_private_key, paths.wg_public_key]
    if _key_dir_has_keys(paths.master_key_dir):
        planned.append(paths.master_key_dir)
    _refuse_existing(planned, req.force)

    # Read everything that can fail before writing anything.
    imported: tuple[HsIdExpandedSecretKey, OnionAddress] | None = None
    if req.master_key_dir is not None and (_abs(req.master_key_dir) != paths.master_key_dir):
        imported = load_master_key_dir(req.master_key_dir)
    kept: OnionAddress | None = None
    if _key_dir_has_keys(paths.master_key_dir):
        kept = _keep_existing_key(
            paths.master_key_dir, imported[1] if imported is not None else None
        )
    elif req.master_key_dir is not None and imported is None:
        raise ProvisionError(
            f"--master-key-dir {req.master_key_dir} is this node's own key directory but holds "
            "no key; leave --master-key-dir out to generate one"
        )

    ensure_private_dir(paths.data_dir)
    files: list[WrittenFile] = []
    source: MasterKeySource
    secret: HsIdExpandedSecretKey | None = None
    if kept is not None:
        source, address = "kept", kept
        if req.include_master_key:
            secret, _ = load_master_key_dir(paths.master_key_dir)
    else:
        if imported is not None:
            source, secret = "imported", imported[0]
        else:
            source, secret = "generated", generate_master_key(token_bytes)
        address = write_key_dir(paths.master_key_dir, secret, force=req.force)
    files += _key_files(paths.master_key_dir, source)

    token = generate_cluster_token(token_bytes)
    write_file(paths.token_file, f"{token}\n".encode("ascii"), 0o600)
    files.append(WrittenFile(paths.token_file, 0o600, "cluster token"))

    wg_public, wg_spec, wg_files = _setup_wireguard(req.wireguard, wg_port, paths, token_bytes)
    files += wg_files

    cluster_id = generate_cluster_id(token_bytes)
    spec = NodeSpec(
        node_id=req.node_id,
        data_dir=paths.data_dir,
        priority=req.priority,
        master_key_dir=paths.master_key_dir,
        targets=req.targets,
        proxy_listen=req.proxy_listen,
        virtual_port=req.virtual_port,
        cluster_token_file=paths.token_file,
        cluster_listen=req.listen,
        cluster_advertise=req.advertise,
        peers=(),
        wireguard=wg_spec,
    )
    comment = (
        f"onionfleet node {req.node_id}: first node of cluster {req.cluster_name} "
        f"({cluster_id}), written by onionfleet init.\nMaster address: {address}"
    )
    text = _config_text(spec, comment, config_out)
    config_out.parent.mkdir(parents=True, exist_ok=True)
    write_file(config_out, text.encode("utf-8"), CONFIG_MODE)
    files.append(WrittenFile(config_out, CONFIG_MODE, "node config"))

    wg_invite = None
    if req.wireguard is not None and wg_public is not None and req.wireguard.endpoint:
        wg_invite = InviteWireGuard(wg_public, req.wireguard.endpoint, req.wireguard.address)
    invite = Invite(
        cluster_id=cluster_id,
        cluster_name=req.cluster_name,
        inviter_node_id=req.node_id,
        peers=(dial,),
        token=Secret(token),
        master_address=address,
        virtual_port=req.virtual_port,
        targets=req.targets,
        wireguard=wg_invite,
        master_secret_key=secret if req.include_master_key else None,
    )
    invite_text = _encode_checked(invite, req.cluster_name)
    invite_out.parent.mkdir(parents=True, exist_ok=True)
    write_file(invite_out, f"{invite_text}\n".encode("ascii"), 0o600)
    files.append(WrittenFile(invite_out, 0o600, "invite for other nodes (secret)"))

    return ProvisionResult(
        node_id=req.node_id,
        config_path=config_out,
        data_dir=paths.data_dir,
        cluster_id=cluster_id,
        cluster_name=req.cluster_name,
        master_address=address,
        master_key_dir=paths.master_key_dir,
        master_key_source=source,
        peers=(),
        advertised_peer_address=dial,
        targets=req.targets,
        files=tuple(files),
        invite_path=invite_out,
        invite_includes_master_key=req.include_master_key,
        wireguard_public_key=wg_public,
        wireguard_address=req.wireguard.address if req.wireguard else None,
        wireguard_listen_port=wg_port,
    )


def _encode_checked(invite: Invite, cluster_name: str) -> str:
    try:
        return encode_invite(invite)
    except InviteError as exc:
        raise ProvisionError(
            f"cannot make an invite for cluster {cluster_name!r}: {exc} "
            "(check --cluster-name: letters, digits, '.', '_', '-')"
        ) from exc


# --- join --------------------------------------------------------------------------------------


def join_cluster(req: JoinRequest, token_bytes: TokenBytes) -> ProvisionResult:
    """Make this node's files from an invite: token, master key, optional WireGuard key, config."""
    inv = req.invite
    targets = req.targets or inv.targets
    dial = _check_common(
        req.node_id,
        listen=req.listen,
        advertise=req.advertise,
        proxy_listen=req.proxy_listen,
        priority=req.priority,
        targets=targets,
    )
    if req.node_id == inv.inviter_node_id:
        raise ProvisionError(
            f"--node-id {req.node_id!r} is the inviting node's id; every node needs its own id"
        )
    if dial in inv.peers:
        raise ProvisionError(
            f"this node would be reachable at {dial}, which is the inviting node's address; "
            "give this node its own --listen/--advertise"
        )
    wg_port = (
        _check_wireguard(req.wireguard, need_endpoint=False) if req.wireguard is not None else None
    )
    paths = node_paths(req.data_dir)
    config_out = _abs(req.config_out)
    planned = [config_out, paths.token_file]
    if req.wireguard is not None:
        planned += [paths.wg_private_key, paths.wg_public_key]
    if _key_dir_has_keys(paths.master_key_dir):
        planned.append(paths.master_key_dir)
    _refuse_existing(planned, req.force)

    secret: HsIdExpandedSecretKey | None = None
    source: MasterKeySource
    external = req.master_key_dir is not None and (_abs(req.master_key_dir) != paths.master_key_dir)
    if external and req.master_key_dir is not None:
        secret, address = load_master_key_dir(req.master_key_dir)
        if address != inv.master_address:
            raise MasterKeyMismatch(
                f"the key in {req.master_key_dir} is for {address}, but the invite's cluster "
                f"serves {inv.master_address}; copy the master key directory from the node "
                f"that made the invite ({inv.inviter_node_id})"
            )
        source = "imported"
    elif inv.master_secret_key is not None:
        secret, source = inv.master_secret_key, "invite"
    elif not _key_dir_has_keys(paths.master_key_dir):
        raise ProvisionError(
            "the invite does not carry the master key (the safer default). Copy the master key "
            f"directory from {inv.inviter_node_id} over ssh (scp -rp) and pass "
            "--master-key-dir DIR; see docs/security.md"
        )
    else:
        source = "kept"
    if _key_dir_has_keys(paths.master_key_dir):
        _keep_existing_key(paths.master_key_dir, inv.master_address)
        source = "kept"

    ensure_private_dir(paths.data_dir)
    files: list[WrittenFile] = []
    if source != "kept" and secret is not None:
        write_key_dir(paths.master_key_dir, secret, force=req.force)
    files += _key_files(paths.master_key_dir, source)

    write_file(paths.token_file, f"{inv.token.reveal()}\n".encode("ascii"), 0o600)
    files.append(WrittenFile(paths.token_file, 0o600, "cluster token (from the invite)"))

    wg_public, wg_spec, wg_files = _setup_wireguard(req.wireguard, wg_port, paths, token_bytes)
    files += wg_files

    spec = NodeSpec(
        node_id=req.node_id,
        data_dir=paths.data_dir,
        priority=req.priority,
        master_key_dir=paths.master_key_dir,
        targets=targets,
        proxy_listen=req.proxy_listen,
        virtual_port=inv.virtual_port,
        cluster_token_file=paths.token_file,
        cluster_listen=req.listen,
        cluster_advertise=req.advertise,
        peers=inv.peers,
        wireguard=wg_spec,
    )
    comment = (
        f"onionfleet node {req.node_id}: joined cluster {inv.cluster_name} ({inv.cluster_id}) "
        f"through {inv.inviter_node_id}, written by onionfleet join.\n"
        f"Master address: {inv.master_address}"
    )
    text = _config_text(spec, comment, config_out)
    config_out.parent.mkdir(parents=True, exist_ok=True)
    write_file(config_out, text.encode("utf-8"), CONFIG_MODE)
    files.append(WrittenFile(config_out, CONFIG_MODE, "node config"))

    return ProvisionResult(
        node_id=req.node_id,
        config_path=config_out,
        data_dir=paths.data_dir,
        cluster_id=inv.cluster_id,
        cluster_name=inv.cluster_name,
        master_address=inv.master_address,
        master_key_dir=paths.master_key_dir,
        master_key_source=source,
        peers=inv.peers,
        advertised_peer_address=dial,
        targets=targets,
        files=tuple(files),
        invite_path=None,
        invite_includes_master_key=inv.includes_master_key,
        wireguard_public_key=wg_public,
        wireguard_address=req.wireguard.address if req.wireguard else None,
        wireguard_listen_port=wg_port,
        inviter_node_id=inv.inviter_node_id,
        inviter_wireguard=inv.wireguard,
    )
