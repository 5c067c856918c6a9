"""The status document: what ``GET /status`` returns and ``onionfleet status`` shows.

Typed, frozen values; :meth:`StatusDocument.to_dict` gives the JSON form (tuples become lists)
and :meth:`StatusDocument.from_dict` reads it back, checking every field's type. Sections a node
may not have are optional: ``cluster`` is ``None`` on a node without peers configured,
``publisher`` is ``None`` until this node has been publisher, ``proxy`` before the proxy runs.
Unknown keys are ignored when reading (a newer daemon may add fields; ``schema`` changes only when
a field changes meaning or goes away). docs/metrics.md ("Status document") documents each field.

No secret or key material is ever part of a status document. Onion addresses appear only in
redacted form (targets' display names, peers reached over tor); HSDir fingerprints are public
relay identities and appear in per-HSDir upload results.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from onionfleet.observability.errors import StatusDocumentError

__all__ = [
    "SCHEMA_VERSION",
    "ClusterMember",
    "ClusterStatus",
    "DescriptorReport",
    "HsDirCheck",
    "HsDirUploadReport",
    "NodeStatus",
    "ProxyReport",
    "PublisherReport",
    "StatusDocument",
    "TargetReport",
    "TorStatus",
]

SCHEMA_VERSION: Final = 1

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TorStatus:
    """This node's tor: bootstrap progress (control-spec ``status/bootstrap-phase``)."""

    bootstrap_percent: int
    bootstrap_summary: str
    control_connected: bool


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """This node. ``role``: ``publisher``/``follower``; ``mode``: ``single``/``multi``;
    ``serving``/``verdict_reason``: the node verdict (:class:`onionfleet.node.health.NodeVerdict`).
    """

    node_id: str
    version: str
    role: str
    mode: str
    term: int
    serving: bool
    verdict_reason: str
    draining: bool
    started_at_wall: float
    term_holder: str | None = None
    tor: TorStatus | None = None


@dataclass(frozen=True, slots=True)
class ClusterMember:
    """One node of the cluster as this node sees it (``state`` is ``self`` for this node,
    else ``joining``/``alive``/``suspect``/``dead``)."""

    node_id: str
    state: str
    role: str
    serving: bool
    draining: bool
    health_reason: str = ""
    intro_points: int | None = None
    last_seen_s_ago: float | None = None
    address: str | None = None


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    """The cluster: current term and its publisher, every member, rejected peer frames."""

    term: int
    publisher: str | None
    peers_alive: int
    members: tuple[ClusterMember, ...]
    rejected_messages: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HsDirUploadReport:
    """One HSDir's upload of one descriptor (``state``: pending/uploaded/retry_wait/failed)."""

    hsdir: str
    state: str
    attempts: int
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class HsDirCheck:
    """One HSDir's answer when we fetched the descriptor back (``outcome``: match/mismatch/
    not_found/undecodable/timeout)."""

    hsdir: str
    outcome: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class DescriptorReport:
    """One published descriptor (``label``: ``first``/``second``)."""

    label: str
    time_period: int
    revision_counter: int
    intro_points: int
    size_bytes: int
    uploaded: int
    responsible: int
    verification: str
    uploads: tuple[HsDirUploadReport, ...] = ()
    verified_at_wall: float | None = None
    verification_results: tuple[HsDirCheck, ...] = ()


@dataclass(frozen=True, slots=True)
class PublisherReport:
    """The publisher's view (this node's, while or after it was publisher)."""

    publishes: int
    last_publish_wall: float | None
    last_publish_reasons: tuple[str, ...] = ()
    intro_points_per_node: dict[str, int] = field(default_factory=dict)
    descriptors: tuple[DescriptorReport, ...] = ()
    waiting_for: str | None = None
    last_error: str | None = None
    next_periodic_in_s: float | None = None


@dataclass(frozen=True, slots=True)
class ProxyReport:
    """The reverse proxy's counters (:class:`onionfleet.node.stats.ProxyStatsSnapshot`)."""

    active: int
    accepted_total: int
    completed_total: int
    bytes_to_targets: int
    bytes_to_clients: int
    errors: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TargetReport:
    """One target, by its redacted display name (``health``: unknown/healthy/unhealthy)."""

    target: str
    health: str
    last_probe_ok: bool | None = None
    last_probe_reason: str | None = None
    last_probe_latency_s: float | None = None
    active: int = 0
    connections_total: int = 0
    connect_failures_total: int = 0


@dataclass(frozen=True, slots=True)
class StatusDocument:
    """Everything ``GET /status`` returns."""

    generated_at_wall: float
    node: NodeStatus
    cluster: ClusterStatus | None = None
    publisher: PublisherReport | None = None
    proxy: ProxyReport | None = None
    targets: tuple[TargetReport, ...] = ()
    schema: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form (dicts, lists, str, int, float, bool, None)."""
        out: dict[str, Any] = _to_json(self)
        return out

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> StatusDocument:
        """Read a document back; :class:`StatusDocumentError` names the first bad field."""
        if not isinstance(doc, Mapping):
            raise StatusDocumentError("status document is not a JSON object")
        schema = doc.get("schema")
        if schema != SCHEMA_VERSION:
            raise StatusDocumentError(
                f"status document has schema {schema!r}, this onionfleet reads schema "
                f"{SCHEMA_VERSION}; use the onionfleet version that runs the daemon"
            )
        return _decode_dataclass(cls, doc, "status")


# Resolved field types of every section, computed once (a constant, not a cache).
_HINTS: Final[Mapping[type, Mapping[str, Any]]] = {
    cls: typing.get_type_hints(cls)
    for cls in (
        TorStatus,
        NodeStatus,
        ClusterMember,
        ClusterStatus,
        HsDirUploadReport,
        HsDirCheck,
        DescriptorReport,
        PublisherReport,
        ProxyReport,
        TargetReport,
        StatusDocument,
    )
}


def _to_json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_to_json(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _to_json(v) for k, v in value.items()}
    return value


def _decode_dataclass(cls: type[T], doc: Any, path: str) -> T:
    if not isinstance(doc, Mapping):
        raise StatusDocumentError(f"{path} must be a JSON object")
    hints = _HINTS[cls]
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        where = f"{path}.{f.name}"
        if f.name not in doc:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise StatusDocumentError(f"{where} is missing")
            continue
        kwargs[f.name] = _decode(hints[f.name], doc[f.name], where)
    return cls(**kwargs)


def _decode(hint: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is types.UnionType or origin is typing.Union:
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _decode(inner[0], value, path)
    if origin is tuple:
        if not isinstance(value, list):
            raise StatusDocumentError(f"{path} must be a list")
        return tuple(_decode(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise StatusDocumentError(f"{path} must be a JSON object")
        return {str(k): _decode(args[1], v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _decode_dataclass(hint, value, path)
    if hint is bool:
        if not isinstance(value, bool):
            raise StatusDocumentError(f"{path} must be true or false")
        return value
    if hint is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise StatusDocumentError(f"{path} must be a whole number")
        return value
    if hint is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise StatusDocumentError(f"{path} must be a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise StatusDocumentError(f"{path} must be a string")
        return value
    raise StatusDocumentError(f"{path} has a type this reader does not know")  # pragma: no cover
