"""A stand-in for :class:`onionfleet.tor.controller.EventSubscription` in unit tests.

Importable from every unit-test folder: tests/unit/conftest.py puts this folder on ``sys.path``.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from onionfleet.tor.events import Event


class FakeSubscription:
    """Registered in ``subs`` while entered (``async with``); iterating yields what a test puts
    into :meth:`deliver`. ``event_types`` are the types it asked for."""

    def __init__(self, subs: list[FakeSubscription], event_types: frozenset[str]) -> None:
        self._subs = subs
        self.event_types = event_types
        self.queue: asyncio.Queue[Event] = asyncio.Queue()

    def deliver(self, event: Event) -> None:
        if event.event_type in self.event_types:
            self.queue.put_nowait(event)

    async def __aenter__(self) -> FakeSubscription:
        self._subs.append(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._subs.remove(self)

    def __aiter__(self) -> FakeSubscription:
        return self

    async def __anext__(self) -> Event:
        return await self.queue.get()
