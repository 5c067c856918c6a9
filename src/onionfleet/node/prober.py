"""The asyncio side of target health: send HTTP(S) probes, feed the pure state machine.

Each target gets one probe loop (a task in the prober's TaskGroup): every ``interval_s`` it sends
``GET <path>`` — through tor's SOCKS port for onion targets, directly for TCP targets — checks the
status against ``expected_statuses`` and, if set, the body against ``body_regex``, and feeds the
:class:`~onionfleet.node.health.ProbeResult` to the :class:`~onionfleet.node.health.HealthBoard`.
State changes go to the :class:`~onionfleet.node.balancer.Balancer` and to ``on_change``.

Active probing is what catches "zombie" targets that accept connections but fail requests
(seeds/CHALLENGES.md item 4). Circuits fail now and then (item 5): with ``new_circuit_per_probe``
each probe uses a fresh random SOCKS username/password, so tor (``IsolateSOCKSAuth``) builds a new
circuit and one bad circuit is not blamed twice; ``fall`` > 1 absorbs single failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Sequence

from onionfleet.clock import Clock
from onionfleet.node.balancer import Balancer
from onionfleet.node.connect import SocksAuth, TargetConnector
from onionfleet.node.errors import HttpResponseError, ProbeError, TargetConnectError
from onionfleet.node.health import (
    HealthBoard,
    HealthChanged,
    HealthState,
    ProbeResult,
    ProbeSpec,
)
from onionfleet.node.httpcheck import build_get_request, parse_response_head
from onionfleet.node.targets import OnionTarget, Target

__all__ = ["TargetProber", "probe_target"]

log = logging.getLogger(__name__)


def _host_header(target: Target, spec: ProbeSpec) -> str:
    if spec.host_header:
        return spec.host_header
    if isinstance(target, OnionTarget):
        return target.onion_address
    default_port = 443 if spec.tls else 80
    host = f"[{target.host}]" if ":" in target.host else target.host
    return host if target.port == default_port else f"{host}:{target.port}"


async def probe_target(
    target: Target,
    spec: ProbeSpec,
    connector: TargetConnector,
    *,
    clock: Clock,
    isolation: SocksAuth | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> ProbeResult:
    """Probe ``target`` once. Never raises for a failed probe: the result says what failed."""
    start = clock.monotonic()

    def result(ok: bool, reason: str, status: int | None = None) -> ProbeResult:
        now = clock.monotonic()
        return ProbeResult(target.display, ok, reason, now, now - start, status)

    try:
        sock = await connector.open_socket(
            target, timeout_s=spec.connect_timeout_s, isolation=isolation
        )
    except TargetConnectError as exc:
        return result(False, f"connect failed: {exc}")
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(spec.read_timeout_s):
            try:
                if spec.tls:
                    host = target.host
                    reader, writer = await asyncio.open_connection(
                        sock=sock,
                        ssl=ssl_context or ssl.create_default_context(),
                        server_hostname=host,
                    )
                else:
                    reader, writer = await asyncio.open_connection(sock=sock)
            except BaseException:
                sock.close()
                raise
            writer.write(build_get_request(_host_header(target, spec), spec.path))
            await writer.drain()
            status = await _read_and_check(reader, spec)
    except TimeoutError:
        return result(False, f"no complete response within read_timeout_s={spec.read_timeout_s}")
    except ProbeError as exc:
        return result(False, str(exc), getattr(exc, "status", None))
    except (OSError, ssl.SSLError, EOFError) as exc:
        return result(False, f"connection failed during the probe: {exc}")
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()
    return result(True, f"HTTP {status}", status)


class _StatusError(ProbeError):
    def __init__(self, message: str, status: int) -> None:
        self.status = status
        super().__init__(message)


async def _read_and_check(reader: asyncio.StreamReader, spec: ProbeSpec) -> int:
    buf = bytearray()
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            raise HttpResponseError(
                "target closed the connection before a complete HTTP response head"
            )
        buf += chunk
        parsed = parse_response_head(buf)
        if parsed is not None:
            break
    head, used = parsed
    status = head.status_line.status
    if status not in spec.expected_statuses:
        raise _StatusError(
            f"HTTP status {status}, expected one of {sorted(spec.expected_statuses)}", status
        )
    if spec.body_regex is None:
        return status
    length = head.content_length
    limit = spec.max_body_bytes if length is None else min(length, spec.max_body_bytes)
    body = bytearray(buf[used:])
    while len(body) < limit:
        chunk = await reader.read(65536)
        if not chunk:
            break
        body += chunk
    if not spec.body_matches(bytes(body[:limit])):
        raise _StatusError(
            f"HTTP {status} but the body does not match body_regex {spec.body_regex!r}", status
        )
    return status


class TargetProber:
    """Probes every target every ``spec.interval_s`` and keeps their health (an adapter).

    ``token_bytes`` supplies the randomness for per-probe SOCKS isolation credentials
    (``secrets.token_bytes`` in the daemon, a seeded function in tests). ``on_change`` is called
    synchronously, in the event loop, for every :class:`HealthChanged`; ``on_result`` for every
    probe's :class:`ProbeResult` (metrics: probe counts and latency).
    """

    def __init__(
        self,
        targets: Sequence[Target],
        spec: ProbeSpec,
        connector: TargetConnector,
        *,
        clock: Clock,
        token_bytes: Callable[[int], bytes],
        balancer: Balancer | None = None,
        on_change: Callable[[HealthChanged], None] | None = None,
        on_result: Callable[[ProbeResult], None] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.targets = tuple(targets)
        self.spec = spec
        self.connector = connector
        self.board = HealthBoard([t.display for t in self.targets], rise=spec.rise, fall=spec.fall)
        self._clock = clock
        self._token_bytes = token_bytes
        self._balancer = balancer
        self._on_change = on_change
        self._on_result = on_result
        self._ssl_context = ssl_context
        if ssl_context is None and spec.tls and not spec.tls_verify:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            self._ssl_context = ctx

    @property
    def healthy_count(self) -> int:
        return self.board.healthy_count

    def state(self, target: Target) -> HealthState:
        return self.board.state(target.display)

    async def run(self, ready: asyncio.Future[None] | None = None) -> None:
        """Probe all targets until cancelled; ``ready`` resolves once the loops are started."""
        async with asyncio.TaskGroup() as tg:
            for target in self.targets:
                tg.create_task(self._loop(target))
            if ready is not None and not ready.done():
                ready.set_result(None)

    def _isolation(self, target: Target) -> SocksAuth | None:
        if not target.via_tor or not self.spec.new_circuit_per_probe:
            return None
        return SocksAuth(self._token_bytes(12).hex(), self._token_bytes(12).hex())

    async def probe_once(self, target: Target) -> HealthChanged | None:
        """Send one probe to ``target`` and apply its result; returns the change, if any."""
        result = await probe_target(
            target,
            self.spec,
            self.connector,
            clock=self._clock,
            isolation=self._isolation(target),
            ssl_context=self._ssl_context,
        )
        if self._on_result is not None:
            self._on_result(result)
        change = self.board.observe(result)
        if change is None:
            if not result.ok:
                log.info("probe of target %s failed: %s", target.display, result.reason)
            return None
        if self._balancer is not None:
            self._balancer.set_health(change.target, change.new)
        if change.new is HealthState.UNHEALTHY:
            log.warning(
                "target %s is now unhealthy (%d failed probes in a row; last: %s)",
                change.target,
                self.spec.fall,
                change.reason,
            )
        else:
            log.info("target %s is now %s (%s)", change.target, change.new.value, change.reason)
        if self._on_change is not None:
            self._on_change(change)
        return change

    async def _loop(self, target: Target) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await self.probe_once(target)
            await asyncio.sleep(max(0.0, self.spec.interval_s - (loop.time() - started)))
