"""The node data plane: the reverse proxy to targets and the target health probes.

Pure parts (no I/O): :mod:`.targets`, :mod:`.balancer`, :mod:`.proxy_protocol`, :mod:`.httpcheck`,
:mod:`.health`, :mod:`.stats`. Adapters: :mod:`.connect` (direct TCP / tor SOCKS5),
:mod:`.proxy` (the asyncio reverse proxy), :mod:`.prober` (the asyncio health prober).
"""

from onionfleet.node.balancer import Balancer, TargetLoad
from onionfleet.node.connect import SocksAuth, StreamConnector, TargetConnector
from onionfleet.node.errors import (
    HttpResponseError,
    NodeConfigError,
    NodeError,
    NoTargetAvailable,
    ProbeError,
    ProxyHeaderEncodeError,
    ProxyHeaderError,
    ProxyListenError,
    TargetConnectError,
)
from onionfleet.node.health import (
    HealthBoard,
    HealthChanged,
    HealthState,
    NodeVerdict,
    ProbeResult,
    ProbeSpec,
    TargetHealth,
    node_verdict,
)
from onionfleet.node.prober import TargetProber, probe_target
from onionfleet.node.proxy import ListenAddress, ProxyConfig, ReverseProxy, TcpListen, UnixListen
from onionfleet.node.stats import ProxyStats, ProxyStatsSnapshot, TargetStatsSnapshot
from onionfleet.node.targets import OnionTarget, SocksEndpoint, Target, TcpTarget

__all__ = [
    "Balancer",
    "HealthBoard",
    "HealthChanged",
    "HealthState",
    "HttpResponseError",
    "ListenAddress",
    "NoTargetAvailable",
    "NodeConfigError",
    "NodeError",
    "NodeVerdict",
    "OnionTarget",
    "ProbeError",
    "ProbeResult",
    "ProbeSpec",
    "ProxyConfig",
    "ProxyHeaderEncodeError",
    "ProxyHeaderError",
    "ProxyListenError",
    "ProxyStats",
    "ProxyStatsSnapshot",
    "ReverseProxy",
    "SocksAuth",
    "SocksEndpoint",
    "StreamConnector",
    "Target",
    "TargetConnectError",
    "TargetConnector",
    "TargetHealth",
    "TargetLoad",
    "TargetProber",
    "TargetStatsSnapshot",
    "TcpListen",
    "TcpTarget",
    "UnixListen",
    "node_verdict",
    "probe_target",
]
