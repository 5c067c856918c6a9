"""One node: tor (managed or attached), the reverse proxy, health probes, the cluster and the
publisher, wired into one asyncio process with an orderly start and shutdown (STYLE.md §5)."""

from onionfleet.daemon._daemon import Daemon, DaemonError, DaemonOptions

__all__ = ["Daemon", "DaemonError", "DaemonOptions"]
