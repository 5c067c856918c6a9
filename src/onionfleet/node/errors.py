"""Errors of the node data plane (reverse proxy, target health probes).

Every error here is a :class:`NodeError`, below :class:`~onionfleet.errors.OnionfleetError`.
Messages name the target (redacted: see :meth:`onionfleet.node.targets.OnionTarget.display`), say
what failed and what to do next. Parser errors split the fault the h11 way: a *remote* error means
bytes that arrived from a peer (tor, a client, a target) were malformed; a *local* error means we
were asked to encode something the protocol cannot carry.
"""

from __future__ import annotations

from onionfleet.errors import OnionfleetError

__all__ = [
    "HttpResponseError",
    "NoTargetAvailable",
    "NodeConfigError",
    "NodeError",
    "ProbeError",
    "ProxyHeaderEncodeError",
    "ProxyHeaderError",
    "ProxyListenError",
    "TargetConnectError",
]


class NodeError(OnionfleetError):
    """Root of the node data plane's errors."""


class NodeConfigError(NodeError):
    """A target, proxy or probe setting is invalid (an operator's configuration error).

    The config layer may re-raise it as :class:`~onionfleet.errors.ConfigError` with the key path.
    """


class TargetConnectError(NodeError):
    """Connecting to one target failed (refused, unreachable, SOCKS error, timeout).

    ``target`` is the target's redacted display name; ``reason`` a short machine-friendly word
    (``refused``, ``timeout``, ``socks``, ``unreachable``).
    """

    def __init__(self, message: str, *, target: str = "", reason: str = "") -> None:
        self.target = target
        self.reason = reason
        super().__init__(message)


class NoTargetAvailable(TargetConnectError):
    """No target could be reached within the overall connect timeout (all down, or none set)."""


class ProxyHeaderError(NodeError):
    """A PROXY protocol header received from a peer (normally tor) is malformed (remote fault)."""


class ProxyHeaderEncodeError(NodeError):
    """We were asked to encode a PROXY header the protocol cannot carry (local fault)."""


class ProbeError(NodeError):
    """A health probe of a target failed (connect, timeout, wrong status, body mismatch)."""


class HttpResponseError(ProbeError):
    """A target's HTTP response could not be parsed (bad status line or header block)."""


class ProxyListenError(NodeError):
    """The proxy could not listen on its configured port or unix socket."""
