"""Watching a node: Prometheus metrics, the local status endpoint and its client, structured logs.

* :mod:`.metrics` — :class:`Metrics`, every metric family on an injected registry;
  :mod:`.publisher_feed` — :class:`PublisherMetricsFeed`, publisher snapshots → metrics;
* :mod:`.status` — the status document (typed sections ↔ JSON); :mod:`.status_build` — sections
  from the components' snapshots;
* :mod:`.status_server` — :class:`StatusServer` (``/status``, ``/metrics``, ``/drain``) on a unix
  socket or loopback port; :mod:`.status_client` — :class:`StatusClient` for the CLI;
* :mod:`.logs` — :func:`setup_logging`, text/JSON formatters, :class:`SecretRedactor`;
  :mod:`.redaction` — :func:`find_secrets` and friends.

docs/metrics.md is the reference for metric names and the status document.
"""

from onionfleet.observability.errors import (
    ObservabilityError,
    StatusDocumentError,
    StatusListenError,
    StatusRequestError,
    StatusUnreachableError,
)
from onionfleet.observability.logs import (
    JsonFormatter,
    SecretRedactor,
    TextFormatter,
    setup_logging,
)
from onionfleet.observability.metrics import Metrics
from onionfleet.observability.publisher_feed import PublisherMetricsFeed
from onionfleet.observability.redaction import (
    Redactor,
    find_secrets,
    redact_onion_addresses,
    secret_forms,
)
from onionfleet.observability.status import StatusDocument
from onionfleet.observability.status_client import StatusClient, endpoint_from_url
from onionfleet.observability.status_server import ServerLimits, StatusServer, metrics_server

__all__ = [
    "JsonFormatter",
    "Metrics",
    "ObservabilityError",
    "PublisherMetricsFeed",
    "Redactor",
    "SecretRedactor",
    "ServerLimits",
    "StatusClient",
    "StatusDocument",
    "StatusDocumentError",
    "StatusListenError",
    "StatusRequestError",
    "StatusServer",
    "StatusUnreachableError",
    "TextFormatter",
    "endpoint_from_url",
    "find_secrets",
    "metrics_server",
    "redact_onion_addresses",
    "secret_forms",
    "setup_logging",
]
