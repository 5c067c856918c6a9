"""The observability layer's typed errors (status endpoint, status client, metrics listener).

Messages name the socket or URL, say what failed and what to do next. They never contain
secret material: status documents and metrics carry none.
"""

from __future__ import annotations

from onionfleet.errors import OnionfleetError

__all__ = [
    "ObservabilityError",
    "StatusDocumentError",
    "StatusHttpError",
    "StatusListenError",
    "StatusRequestError",
    "StatusUnreachableError",
]


class ObservabilityError(OnionfleetError):
    """Root of the status/metrics errors."""


class StatusListenError(ObservabilityError):
    """The status or metrics listener cannot bind (address in use, not loopback, bad path)."""


class StatusUnreachableError(ObservabilityError):
    """``onionfleet status``/``drain`` cannot reach the daemon's status endpoint."""


class StatusHttpError(ObservabilityError):
    """A request to the status endpoint is refused; ``status`` is the HTTP code to answer with.

    Raised by the server's request parser (:func:`~onionfleet.observability.status_server.
    parse_request_head`) and handlers; it becomes a JSON error response, never a crash.
    """

    def __init__(self, status: int, message: str, *, allow: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.allow = allow


class StatusRequestError(ObservabilityError):
    """The daemon answered, but with an error status or a response we cannot read."""


class StatusDocumentError(ObservabilityError):
    """A status document (JSON) does not have the documented shape (docs/metrics.md)."""
