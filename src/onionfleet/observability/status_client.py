"""Client of the daemon's local status endpoint, used by ``onionfleet status`` and ``drain``.

Blocking (stdlib ``http.client``; the CLI has no event loop), with a time limit on connect and on
every read. Only local endpoints: a unix socket or a loopback ``http://`` URL. A daemon that
cannot be reached is one :class:`~onionfleet.observability.errors.StatusUnreachableError` saying
where we looked and what to check; an error answer is a
:class:`~onionfleet.observability.errors.StatusRequestError` carrying the daemon's message.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from onionfleet.config import Endpoint
from onionfleet.observability.errors import StatusRequestError, StatusUnreachableError

__all__ = ["StatusClient", "endpoint_from_url"]

_MAX_RESPONSE_BYTES = 64 * 1024 * 1024


def endpoint_from_url(url: str) -> Endpoint:
    """``http://127.0.0.1:PORT`` (or ``[::1]``, ``localhost``) → an :class:`Endpoint`.

    Raises :class:`StatusRequestError` for anything else: status is local only.
    """
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise StatusRequestError(
            f"status URL {url!r} is not http://HOST:PORT; e.g. --url http://127.0.0.1:9936"
        )
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        raise StatusRequestError(f"status URL {url!r} has no valid port; e.g. :9936")
    host = parts.hostname
    loopback = host == "localhost"
    with contextlib.suppress(ValueError):
        loopback = loopback or ipaddress.ip_address(host).is_loopback
    if not loopback:
        raise StatusRequestError(
            f"status URL {url!r} is not a loopback address; the status endpoint is local only "
            "(run onionfleet status on the node itself)"
        )
    return Endpoint(host=host, port=port)


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout_s: float) -> None:
        super().__init__("localhost", timeout=timeout_s)
        self._unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self._unix_path))
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class StatusClient:
    """Talks to one daemon's status endpoint. ``timeout_s`` bounds connect and each read."""

    def __init__(self, endpoint: Endpoint, *, timeout_s: float = 10.0) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.endpoint = endpoint
        self.timeout_s = timeout_s

    def get_status(self) -> dict[str, Any]:
        """``GET /status`` as a JSON object."""
        return self._json("GET", "/status", self.timeout_s)

    def get_metrics(self) -> str:
        """``GET /metrics`` as Prometheus text."""
        _, body = self._request("GET", "/metrics", self.timeout_s)
        return body.decode("utf-8", errors="replace")

    def drain(self, *, timeout_s: float = 330.0) -> dict[str, Any]:
        """``POST /drain``; waits up to ``timeout_s`` for the daemon to finish draining."""
        return self._json("POST", "/drain", timeout_s)

    # -- internals ----------------------------------------------------------------------------

    def _connection(self, timeout_s: float) -> http.client.HTTPConnection:
        if self.endpoint.unix_path is not None:
            return _UnixHTTPConnection(self.endpoint.unix_path, timeout_s)
        return http.client.HTTPConnection(
            self.endpoint.host or "127.0.0.1", self.endpoint.port, timeout=timeout_s
        )

    def _json(self, method: str, path: str, timeout_s: float) -> dict[str, Any]:
        _, body = self._request(method, path, timeout_s)
        try:
            doc = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StatusRequestError(
                f"the daemon at {self.endpoint} answered {method} {path} with invalid JSON "
                f"({exc}); is that an onionfleet status endpoint?"
            ) from exc
        if not isinstance(doc, dict):
            raise StatusRequestError(
                f"the daemon at {self.endpoint} answered {method} {path} with JSON that is not "
                "an object"
            )
        return doc

    def _request(self, method: str, path: str, timeout_s: float) -> tuple[int, bytes]:
        conn = self._connection(timeout_s)
        try:
            try:
                conn.request(
                    method, path, headers={"Content-Length": "0"} if method == "POST" else {}
                )
                response = conn.getresponse()
                body = response.read(_MAX_RESPONSE_BYTES + 1)
            except (ConnectionRefusedError, FileNotFoundError) as exc:
                raise StatusUnreachableError(
                    f"cannot reach the onionfleet daemon at {self.endpoint}: "
                    f"{exc.strerror or exc}; is the daemon running (onionfleet run) with this "
                    "config, and is [status] listen the same?"
                ) from exc
            except PermissionError as exc:
                raise StatusUnreachableError(
                    f"cannot reach the onionfleet daemon at {self.endpoint}: permission denied; "
                    "run as the daemon's user (or a member of its group with unix_mode 0660)"
                ) from exc
            except TimeoutError as exc:
                raise StatusUnreachableError(
                    f"the onionfleet daemon at {self.endpoint} did not answer {method} {path} "
                    f"within {timeout_s:g} s; it may be overloaded or stuck"
                ) from exc
            except (OSError, http.client.HTTPException) as exc:
                raise StatusUnreachableError(
                    f"cannot talk to the onionfleet daemon at {self.endpoint}: {exc}; "
                    "is the daemon running with this config?"
                ) from exc
        finally:
            conn.close()
        if len(body) > _MAX_RESPONSE_BYTES:
            raise StatusRequestError(
                f"the daemon at {self.endpoint} sent more than {_MAX_RESPONSE_BYTES} bytes"
            )
        if response.status != 200:
            message = body.decode("utf-8", errors="replace").strip()
            with contextlib.suppress(ValueError, KeyError, TypeError):
                message = str(json.loads(message)["error"])
            raise StatusRequestError(
                f"the daemon at {self.endpoint} refused {method} {path}: "
                f"HTTP {response.status}: {message}"
            )
        return response.status, body
