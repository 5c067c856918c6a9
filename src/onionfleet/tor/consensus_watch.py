"""Keeps a :class:`ConsensusView` current: the small async refresher over the controller.

It re-reads the consensus and ``md/all`` when tor reports ``STATUS_CLIENT NOTICE
CONSENSUS_ARRIVED`` (control-spec §4.1.10) and after every controller reconnection (events may have
been missed). Long-lived task shape per STYLE.md §2: ``run(ready)`` sets ``ready`` after the first
successful read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from onionfleet.tor.consensus import ConsensusView
from onionfleet.tor.controller import TorController
from onionfleet.tor.errors import TorError
from onionfleet.tor.events import ControllerReconnected, StatusEvent

__all__ = ["ConsensusWatcher"]

log = logging.getLogger(__name__)


class ConsensusWatcher:
    """The latest :class:`ConsensusView` of one tor.

    ``on_update`` (optional) is called with every new view. ``retry_s``: wait between attempts
    while tor has no usable consensus yet (e.g. before bootstrap). ``timeout_s``: per GETINFO.
    """

    def __init__(
        self,
        controller: TorController,
        *,
        on_update: Callable[[ConsensusView], None] | None = None,
        retry_s: float = 2.0,
        timeout_s: float = 60.0,
    ) -> None:
        self._controller = controller
        self._on_update = on_update
        self._retry_s = retry_s
        self._timeout_s = timeout_s
        self._current: ConsensusView | None = None
        self._changed = asyncio.Condition()
        self.updates = 0

    @property
    def current(self) -> ConsensusView | None:
        return self._current

    async def refresh(self) -> ConsensusView:
        """Read the consensus now (raises the controller's typed errors)."""
        view = await self._controller.consensus_view(timeout_s=self._timeout_s)
        async with self._changed:
            self._current = view
            self.updates += 1
            self._changed.notify_all()
        missing = view.relays_missing_ed25519()
        log.info(
            "consensus valid-after %d: %d relays, %d HSDirs%s",
            view.valid_after,
            len(view.relays),
            len(view.hsdirs()),
            f", {len(missing)} without ed25519 id" if missing else "",
        )
        if self._on_update is not None:
            self._on_update(view)
        return view

    async def wait_for(
        self, predicate: Callable[[ConsensusView], bool], *, timeout_s: float
    ) -> ConsensusView:
        """Wait until the current view satisfies ``predicate``; TimeoutError after ``timeout_s``."""
        async with asyncio.timeout(timeout_s), self._changed:
            while self._current is None or not predicate(self._current):
                await self._changed.wait()
            return self._current

    async def _refresh_until_ok(self) -> None:
        while True:
            try:
                await self.refresh()
                return
            except TorError as exc:
                log.info("consensus not readable yet (%s); retrying in %.1f s", exc, self._retry_s)
                await asyncio.sleep(self._retry_s)

    async def run(self, ready: asyncio.Future[None] | None = None) -> None:
        """Read the consensus, set ``ready``, then refresh on CONSENSUS_ARRIVED and reconnects."""
        async with self._controller.subscribe("STATUS_CLIENT") as sub:
            await self._refresh_until_ok()
            if ready is not None and not ready.done():
                ready.set_result(None)
            async for event in sub:
                if isinstance(event, ControllerReconnected) or (
                    isinstance(event, StatusEvent) and event.action == "CONSENSUS_ARRIVED"
                ):
                    await self._refresh_until_ok()
