"""Following the circuits and streams of test tors, so a failed fetch can explain itself.

:class:`TorEventTracer` keeps one background thread per followed tor (the client tor, each
node's managed tor …). Each thread opens the tor's control port or socket, authenticates with
the cookie (control-spec §3.5), subscribes to ``CIRC``, ``CIRC_MINOR``, ``STREAM`` and
``HS_DESC`` (§3.4, §4.1.1, §4.1.2, §4.1.19, §4.1.25) and records every event with the wall
time it arrived. A tor
that restarts (a node's tor killed and restarted, a node stopped and started) is followed
again as soon as its control port is back. Every event is also appended as one JSON line to
``<out_dir>/trace-<source>.jsonl``, which the tests keep with the artifacts of a failed run.

:mod:`onionfleet.testnet.explain` turns the recorded events into an explanation of one fetch.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from onionfleet.testnet._trace_events import (
    TraceEvent,
    parse_trace_event,
    trace_event_from_hs_desc,
    trace_event_from_json,
)
from onionfleet.tor.codec import ControlCodec
from onionfleet.tor.errors import ControlProtocolError
from onionfleet.tor.events import HsDescEvent, UnknownEvent
from onionfleet.tor.messages import Reply

__all__ = ["TorEventTracer", "load_trace"]

log = logging.getLogger(__name__)

_RECONNECT_S = 0.3
_READ_TIMEOUT_S = 0.5
_EVENTS = "SETEVENTS CIRC CIRC_MINOR STREAM HS_DESC"

Connect = Callable[[], socket.socket]


class TorEventTracer:
    """Records CIRC/CIRC_MINOR/STREAM events of several tors until :meth:`close`."""

    def __init__(self, out_dir: Path) -> None:
        self._out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._events: list[TraceEvent] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._files: list[IO[str]] = []
        #: per source: [connected_at, disconnected_at or None] spans
        self._spans: dict[str, list[list[float | None]]] = {}

    # ------------------------------------------------------------------ following

    def follow_port(self, source: str, port: int, cookie_path: Path) -> None:
        """Follow a tor's ``ControlPort 127.0.0.1:port`` (cookie authentication)."""

        def connect() -> socket.socket:
            return socket.create_connection(("127.0.0.1", port), timeout=2.0)

        self._start(source, connect, cookie_path)

    def follow_socket(self, source: str, socket_path: Path, cookie_path: Path) -> None:
        """Follow a tor's ``ControlSocket`` (cookie authentication)."""

        def connect() -> socket.socket:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(2.0)
            try:
                sock.connect(str(socket_path))
            except OSError:
                sock.close()
                raise
            return sock

        self._start(source, connect, cookie_path)

    def _start(self, source: str, connect: Connect, cookie_path: Path) -> None:
        out = (self._out_dir / f"trace-{source}.jsonl").open("a", encoding="utf-8")
        self._files.append(out)
        thread = threading.Thread(
            target=self._run,
            args=(source, connect, cookie_path, out),
            name=f"tor-trace-{source}",
            daemon=True,
        )
        self._threads.append(thread)
        thread.start()

    def outages(self, *, sources: Iterable[str] | None = None) -> list[tuple[str, float, float]]:
        """(source, from, to) spans in which a tor that had been followed was not (its tor
        stopped, was killed or was restarting); an outage still under way ends now."""
        now = time.time()
        wanted = None if sources is None else set(sources)
        out: list[tuple[str, float, float]] = []
        with self._lock:
            spans = {k: [list(s) for s in v] for k, v in self._spans.items()}
        for source, rows in spans.items():
            if wanted is not None and source not in wanted:
                continue
            for i, (_start, end) in enumerate(rows):
                if end is None:
                    continue
                following = rows[i + 1][0] if i + 1 < len(rows) else None
                out.append((source, end, now if following is None else following))
        return out

    # ------------------------------------------------------------------ results

    def events(self, *, since: float | None = None, until: float | None = None) -> list[TraceEvent]:
        """The events recorded so far (from ``since`` to ``until``, wall times), in order."""
        with self._lock:
            events = list(self._events)
        return [
            e
            for e in events
            if (since is None or e.wall >= since) and (until is None or e.wall <= until)
        ]

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5.0)
        for out in self._files:
            with contextlib.suppress(OSError):
                out.close()

    def __enter__(self) -> TorEventTracer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the thread

    def _run(self, source: str, connect: Connect, cookie_path: Path, out: IO[str]) -> None:
        while not self._stop.is_set():
            try:
                sock = connect()
            except OSError:
                self._stop.wait(_RECONNECT_S)
                continue
            try:
                with sock:
                    self._follow(source, sock, cookie_path, out)
            except (OSError, ControlProtocolError) as exc:
                log.debug("tracing %s: %s; reconnecting", source, exc)
            finally:
                self._note_disconnect(source)
            self._stop.wait(_RECONNECT_S)

    def _note_disconnect(self, source: str) -> None:
        with self._lock:
            rows = self._spans.get(source)
            if rows and rows[-1][1] is None and not self._stop.is_set():
                rows[-1][1] = time.time()

    def _follow(self, source: str, sock: socket.socket, cookie_path: Path, out: IO[str]) -> None:
        cookie = cookie_path.read_bytes().hex()
        sock.sendall(f"AUTHENTICATE {cookie}\r\n{_EVENTS}\r\n".encode())
        codec = ControlCodec()
        replies = 0
        sock.settimeout(_READ_TIMEOUT_S)
        while not self._stop.is_set():
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                return
            now = time.time()
            for message in codec.feed(chunk):
                if isinstance(message, Reply):
                    if not message.is_ok:
                        raise ControlProtocolError(
                            f"tor {source} refused the tracer: {message.status} {message.text}"
                        )
                    replies += 1
                    if replies == 2:
                        with self._lock:
                            self._spans.setdefault(source, []).append([now, None])
                    continue
                event: TraceEvent | None = None
                if isinstance(message, HsDescEvent):
                    event = trace_event_from_hs_desc(message, source=source, wall=now)
                elif isinstance(message, UnknownEvent):
                    event = parse_trace_event(message.lines[0].text, source=source, wall=now)
                if event is None:
                    continue
                with self._lock:
                    self._events.append(event)
                out.write(json.dumps(event.to_json()) + "\n")
            out.flush()


def load_trace(directory: Path) -> list[TraceEvent]:
    """Every event of the ``trace-*.jsonl`` files in ``directory`` (a run's artifacts), in time
    order; lines that are not trace records are skipped."""
    events: list[TraceEvent] = []
    for path in sorted(directory.glob("trace-*.jsonl")):
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    doc = json.loads(line)
                except ValueError:
                    continue
                event = trace_event_from_json(doc)
                if event is not None:
                    events.append(event)
    events.sort(key=lambda e: e.wall)
    return events
