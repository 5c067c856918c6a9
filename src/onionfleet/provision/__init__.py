"""Provisioning a cluster: master key directories, cluster tokens, WireGuard keys, invites and
node configs (``onionfleet keys``, ``onionfleet init``, ``onionfleet join``).

This package writes files (with the right modes) but opens no sockets. Randomness is injected as
a ``token_bytes`` callable; the command line passes :func:`secrets.token_bytes`.
"""

from onionfleet.provision.errors import (
    AlreadyExists,
    InviteError,
    InviteFieldError,
    InviteSyntaxError,
    InviteVersionError,
    KeyDirError,
    MasterKeyMismatch,
    ProvisionError,
    UnsafePermissions,
)
from onionfleet.provision.invite import Invite, InviteWireGuard, encode_invite, parse_invite
from onionfleet.provision.keydir import (
    KeyDirCheck,
    KeyDirReport,
    generate_key_dir,
    import_key_dir,
    inspect_key_dir,
    load_master_key_dir,
)
from onionfleet.provision.nodeconfig import NodeSpec, TargetSpec, render_node_config
from onionfleet.provision.secrets_gen import (
    WireGuardKeypair,
    generate_cluster_token,
    generate_wireguard_keypair,
)
from onionfleet.provision.setup import (
    InitRequest,
    JoinRequest,
    ProvisionResult,
    WireGuardRequest,
    WrittenFile,
    init_cluster,
    join_cluster,
    node_paths,
)

__all__ = [
    "AlreadyExists",
    "InitRequest",
    "Invite",
    "InviteError",
    "InviteFieldError",
    "InviteSyntaxError",
    "InviteVersionError",
    "InviteWireGuard",
    "JoinRequest",
    "KeyDirCheck",
    "KeyDirError",
    "KeyDirReport",
    "MasterKeyMismatch",
    "NodeSpec",
    "ProvisionError",
    "ProvisionResult",
    "TargetSpec",
    "UnsafePermissions",
    "WireGuardKeypair",
    "WireGuardRequest",
    "WrittenFile",
    "encode_invite",
    "generate_cluster_token",
    "generate_key_dir",
    "generate_wireguard_keypair",
    "import_key_dir",
    "init_cluster",
    "inspect_key_dir",
    "join_cluster",
    "load_master_key_dir",
    "node_paths",
    "parse_invite",
    "render_node_config",
]
