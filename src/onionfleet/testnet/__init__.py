"""A private Tor network on 127.0.0.1 for tests, benchmarks and demos.

Real C-Tor processes: 3 directory authorities, N relays (Guard/Exit/HSDir voted in), and onion
services, clients or bare tors added on demand. Synchronous API with bounded waits::

    with TestNetwork(relays=5) as net:
        client = net.add_client("client")
        service = net.add_onion_service("web", target_port=8080)
        status, body = http_get_via_socks(client.socks_port, f"http://{service.onion_address}/")
"""

from onionfleet.testnet._http import StaticHttpServer
from onionfleet.testnet._socks import (
    SOCKS5_REPLY_MEANINGS,
    http_get_via_socks,
    http_get_with_retry,
)
from onionfleet.testnet.errors import FetchTimeoutError, SocksReplyError, TestnetError
from onionfleet.testnet.network import TestNetwork, TorInstance

__all__ = [
    "SOCKS5_REPLY_MEANINGS",
    "FetchTimeoutError",
    "SocksReplyError",
    "StaticHttpServer",
    "TestNetwork",
    "TestnetError",
    "TorInstance",
    "http_get_via_socks",
    "http_get_with_retry",
]
