"""Free TCP ports on 127.0.0.1, picked at run time.

A port is "free" when the kernel hands it out for a bind to ``127.0.0.1:0``. Between closing our
probe socket and tor binding the port another process could take it; the allocator at least never
hands the same port out twice within one harness.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from onionfleet.testnet.errors import TestnetError

__all__ = ["PortAllocator", "probe_free_port"]


def probe_free_port() -> int:
    """Ask the kernel for a free port on 127.0.0.1 (bind to port 0, read it back, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PortAllocator:
    """Hands out distinct free ports; ``probe`` returns a candidate (injected for tests)."""

    def __init__(
        self, probe: Callable[[], int] = probe_free_port, *, max_attempts: int = 200
    ) -> None:
        self._probe = probe
        self._max_attempts = max_attempts
        self._taken: set[int] = set()

    @property
    def taken(self) -> frozenset[int]:
        return frozenset(self._taken)

    def take(self) -> int:
        """One port not handed out before by this allocator."""
        for _ in range(self._max_attempts):
            port = self._probe()
            if not 1024 <= port <= 65535:
                continue
            if port in self._taken:
                continue
            self._taken.add(port)
            return port
        raise TestnetError(
            f"could not find a free TCP port on 127.0.0.1 after {self._max_attempts} attempts "
            f"({len(self._taken)} already in use by this test network); free some ports and retry"
        )

    def take_many(self, count: int) -> list[int]:
        return [self.take() for _ in range(count)]
