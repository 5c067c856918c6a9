"""A tiny threaded HTTP server on 127.0.0.1 answering every GET with one fixed body."""

from __future__ import annotations

import http.server
import threading
import time
from types import TracebackType

__all__ = ["StaticHttpServer"]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        if self.server.delay_s > 0:
            time.sleep(self.server.delay_s)
        body = self.server.body
        try:
            self.send_response(self.server.status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            return  # the client left before the answer (a slow target's client gave up)
        with self.server.lock:
            self.server.hits += 1

    def log_message(self, format: str, *args: object) -> None:
        return


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, body: bytes, status: int, delay_s: float) -> None:
        self.body = body
        self.delay_s = delay_s
        self.status = status
        self.hits = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)


class StaticHttpServer:
    """``with StaticHttpServer(b"hello") as srv: srv.port`` serves ``hello`` on 127.0.0.1.

    ``delay_s`` makes every answer wait that long after the request (a slow target)."""

    def __init__(self, body: bytes, *, status: int = 200, delay_s: float = 0.0) -> None:
        self._server = _Server(body, status, delay_s)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="onionfleet-static-http",
            daemon=True,
        )
        self._thread.start()

    @property
    def port(self) -> int:
        port: int = self._server.server_address[1]
        return port

    @property
    def hits(self) -> int:
        """GET requests answered so far."""
        with self._server.lock:
            return self._server.hits

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> StaticHttpServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
