"""Port picking (the probe is injected: no sockets)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from onionfleet.testnet import TestnetError
from onionfleet.testnet._ports import PortAllocator


def _probe(values: list[int]) -> Iterator[int]:
    yield from values


def test_ports_are_never_handed_out_twice() -> None:
    candidates = _probe([40000, 40000, 40001, 40000, 40001, 40002])
    alloc = PortAllocator(lambda: next(candidates))
    assert alloc.take_many(3) == [40000, 40001, 40002]
    assert alloc.taken == {40000, 40001, 40002}


def test_privileged_and_out_of_range_candidates_are_skipped() -> None:
    candidates = _probe([0, 80, 1023, 70000, 1024])
    alloc = PortAllocator(lambda: next(candidates))
    assert alloc.take() == 1024


def test_gives_up_with_a_typed_error() -> None:
    alloc = PortAllocator(lambda: 50000, max_attempts=5)
    assert alloc.take() == 50000
    with pytest.raises(TestnetError, match="free TCP port"):
        alloc.take()
