"""Choosing which intro points go into the merged descriptor.

Clients pick an intro point of a descriptor uniformly at random (tor ``hs_client.c:
client_get_random_intro()``), so the share of new clients a node gets is the share of its intro
points in the descriptor. Selection is therefore *fair*: intro points are dealt round-robin across
the eligible nodes, so no node gets two more than another unless the others have run out.

It is also *stable*: every change of the selected set means a republish and a churn of client
state, so a node keeps the intro points it had in the previous selection where it can, and when the
limit forces some nodes to get one fewer, the nodes that had more last time keep theirs.

rend-spec-v3 and tor cap a descriptor at 20 intro points (``HS_CONFIG_V3_MAX_INTRO_POINTS``; clients
reject more in ``hs_descriptor.c:desc_decode_encrypted_v3``).

At most one intro point per *relay*: a client picks an intro point at random, builds a circuit to
its relay, and then takes the FIRST intro point of the descriptor on that relay
(``hs_client.c:setup_intro_circ_auth_key`` → ``find_desc_intro_point_by_legacy_id``). A second
intro point on the same relay (another node's tor picked the same relay) is never used, and the
node listed first gets its share too. With ``relay_of``, such duplicates are dropped, dealing
relays round-robin across nodes (measured on the private network: 0 of 60 requests reached a node
whose three intro points all shared relays with other nodes' intro points).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from onionfleet.hs.descriptor import FlowControl
from onionfleet.hs.params import HS_MAX_INTRO_POINTS as MAX_INTRO_POINTS

__all__ = ["IntroPointSelection", "NodeIntroPoints", "select_intro_points"]

IP = TypeVar("IP", bound=Hashable)


@dataclass(frozen=True, slots=True)
class NodeIntroPoints(Generic[IP]):
    """An eligible node (alive, serving, not draining) and its current intro points, tor's order.

    ``flow_control`` is the ``flow-control`` line of the node's own descriptor (copied into the
    merged descriptor when every contributing node advertises the same one).
    """

    node_id: str
    intro_points: tuple[IP, ...]
    flow_control: FlowControl | None = None


@dataclass(frozen=True, slots=True)
class IntroPointSelection(Generic[IP]):
    """The chosen intro points, dealt round-robin across nodes (sorted by node id)."""

    chosen: tuple[IP, ...]
    per_node: Mapping[str, int]
    nodes_without_intro_points: tuple[str, ...]
    left_out: int
    dropped_same_relay: int = 0

    def chosen_set(self) -> frozenset[IP]:
        return frozenset(self.chosen)


def select_intro_points(
    nodes: Sequence[NodeIntroPoints[IP]],
    *,
    limit: int = MAX_INTRO_POINTS,
    previous: Sequence[IP] = (),
    relay_of: Callable[[IP], Hashable] | None = None,
) -> IntroPointSelection[IP]:
    """Choose at most ``limit`` intro points from ``nodes``, fairly and stably.

    ``previous`` is the selection last published; it only steers which intro points are kept,
    it never adds one that a node no longer has. ``relay_of`` names the relay an intro point is
    on; at most one intro point per relay is chosen (see the module docstring). Raises
    ``ValueError`` for a limit outside 1..20 and for a node id given twice (programming errors:
    config validation catches the first).
    """
    if not 1 <= limit <= MAX_INTRO_POINTS:
        raise ValueError(f"intro point limit must be 1..{MAX_INTRO_POINTS}, got {limit}")
    ids = [n.node_id for n in nodes]
    if len(set(ids)) != len(ids):
        raise ValueError(f"node ids must be unique: {sorted(ids)}")

    before = set(previous)
    ordered = sorted(nodes, key=lambda n: n.node_id)
    # Within a node: the intro points that were published before come first, then the rest, each
    # group in tor's order; duplicates (the same intro point reported twice) are dropped.
    preferred: dict[str, list[IP]] = {}
    for node in ordered:
        unique = list(dict.fromkeys(node.intro_points))
        preferred[node.node_id] = [ip for ip in unique if ip in before] + [
            ip for ip in unique if ip not in before
        ]

    dropped = 0
    if relay_of is not None:
        preferred, dropped = _one_per_relay(preferred, relay_of, before)

    quota = _fair_quota(
        {nid: len(ips) for nid, ips in preferred.items()},
        {nid: sum(1 for ip in ips if ip in before) for nid, ips in preferred.items()},
        limit,
    )
    chosen: list[IP] = []
    for round_index in range(max(quota.values(), default=0)):
        for node in ordered:
            if round_index < quota[node.node_id]:
                chosen.append(preferred[node.node_id][round_index])
    total = sum(len(ips) for ips in preferred.values())
    return IntroPointSelection(
        chosen=tuple(chosen),
        per_node=dict(quota),
        nodes_without_intro_points=tuple(nid for nid, ips in preferred.items() if not ips),
        left_out=total + dropped - len(chosen),
        dropped_same_relay=dropped,
    )


def _one_per_relay(
    preferred: dict[str, list[IP]], relay_of: Callable[[IP], Hashable], before: set[IP]
) -> tuple[dict[str, list[IP]], int]:
    """Drop intro points on a relay another chosen intro point already uses.

    Relays are dealt round-robin, one per node per round, so every node with at least as many
    intro points as there are nodes keeps at least one. Within a round, nodes whose next intro
    point was published before go first, so a conflict keeps the published one (stability);
    being published before never earns a node more than one relay per round (fairness).
    """
    claimed: set[Hashable] = set()
    queues = {nid: deque(ips) for nid, ips in preferred.items()}
    out: dict[str, list[IP]] = {nid: [] for nid in preferred}
    dropped = 0
    while any(queues.values()):
        turn = sorted(
            (nid for nid, queue in queues.items() if queue),
            key=lambda nid: queues[nid][0] not in before,
        )
        for nid in turn:
            queue = queues[nid]
            while queue:
                ip = queue.popleft()
                relay = relay_of(ip)
                if relay not in claimed:
                    claimed.add(relay)
                    out[nid].append(ip)
                    break
                dropped += 1
    return out, dropped


def _fair_quota(
    available: Mapping[str, int], kept_before: Mapping[str, int], limit: int
) -> dict[str, int]:
    """Water-fill ``limit`` slots: every node gets ``level`` slots or all it has, whichever is less.

    The slots left over after the last full level go to the nodes that had the most intro points
    in the previous selection (ties by node id), so a node does not lose an intro point to another
    node just because of the order of their names.
    """
    quota = dict.fromkeys(available, 0)
    remaining = limit
    while remaining > 0:
        hungry = [nid for nid, have in available.items() if quota[nid] < have]
        if not hungry:
            break
        if len(hungry) <= remaining:
            for nid in hungry:
                quota[nid] += 1
            remaining -= len(hungry)
            continue
        hungry.sort(key=lambda nid: (-kept_before[nid], nid))
        for nid in hungry[:remaining]:
            quota[nid] += 1
        remaining = 0
    return quota
