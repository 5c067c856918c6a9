"""Test doubles for the publisher and the intro point watcher (imported as a plain module).

``FakeTor`` stands in for one tor's control connection: HSPOST stores descriptors per (HSDir,
blinded key) with the HSDirs' rule (keep only a strictly higher revision counter, else
``UPLOAD_REJECTED``) and answers with HS_DESC events; HSFETCH answers with HS_DESC_CONTENT for the
blinded key the test says is current (tor's HSFETCH only asks for the current TP).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from types import MappingProxyType

from fake_events import FakeSubscription

from onionfleet.hs.descriptor import parse_descriptor_unpinned
from onionfleet.hs.intro_point import IntroPoint, LinkSpecifier
from onionfleet.hs.keys import DescSigningKeypair, HsIdExpandedSecretKey, master_key_from_seed
from onionfleet.tor.consensus import ConsensusView, Relay, SharedRandomValue
from onionfleet.tor.errors import TorCommandError
from onionfleet.tor.events import Event, HsDescContentEvent, HsDescEvent, HsDirRef

#: A wall time on an SRV run boundary of a 10 s voting-interval network (runs of 240 s).
SRV_START = (1_790_000_000 // 240) * 240
PHASE_B = SRV_START + 30  # SRV run start .. TP start: clients use the first descriptor
PHASE_A = SRV_START + 150  # TP start .. next SRV: clients use the second descriptor
NEXT_RUN_B = SRV_START + 240 + 30


def token_bytes(seed: int = 1) -> Callable[[int], bytes]:
    return random.Random(seed).randbytes


def master_key(seed: int = 7) -> HsIdExpandedSecretKey:
    return master_key_from_seed(random.Random(seed).randbytes(32))


def make_intro_points(n: int, seed: int) -> list[IntroPoint]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        out.append(
            IntroPoint.create(
                [
                    LinkSpecifier.ipv4(f"127.0.0.{i + 1}", 5000 + i),
                    LinkSpecifier.legacy_id(rng.randbytes(20)),
                    LinkSpecifier.ed25519_id(rng.randbytes(32)),
                ],
                onion_key=rng.randbytes(32),
                auth_key=DescSigningKeypair.from_seed(rng.randbytes(32)).public_raw,
                enc_key=rng.randbytes(32),
            )
        )
    return out


def _srv(tag: str) -> SharedRandomValue:
    return SharedRandomValue(8, hashlib.sha3_256(tag.encode()).digest())


def make_view(
    valid_after: int,
    *,
    relays: int = 8,
    srv_current: str | None = "cur",
    srv_previous: str | None = "prev",
    voting_interval_s: int = 10,
) -> ConsensusView:
    rng = random.Random(99)
    rows = tuple(
        Relay(
            f"relay{i}",
            rng.randbytes(20).hex().upper(),
            frozenset({"HSDir", "Running", "Valid"}),
            f"md{i}",
            rng.randbytes(32),
        )
        for i in range(relays)
    )
    return ConsensusView(
        valid_after,
        valid_after + voting_interval_s,
        valid_after + 3 * voting_interval_s,
        MappingProxyType({}),
        _srv(srv_current) if srv_current else None,
        _srv(srv_previous) if srv_previous else None,
        rows,
        MappingProxyType({r.fingerprint_hex: r for r in rows}),
    )


class FakeTor:
    """The controller surface the publisher and the watcher use."""

    def __init__(self) -> None:
        self.subs: list[FakeSubscription] = []
        self.store: dict[tuple[str, str], tuple[int, str]] = {}
        self.posts: list[tuple[tuple[str, ...], str, str]] = []
        self.fetches: list[tuple[str, tuple[str, ...]]] = []
        #: HSDir -> blinded key (None: any) whose next upload there fails once
        self.reject_once: dict[str, str | None] = {}
        self.silent: set[str] = set()  # HSDirs whose uploads get no outcome at all
        self.tamper: dict[str, str] = {}  # HSDir -> descriptor text served instead
        self.current_blinded_b64 = ""
        self.info: dict[str, str] = {}
        self.get_info_calls = 0
        self.testing = True

    def emit(self, event: Event) -> None:
        for sub in self.subs:
            sub.deliver(event)

    def subscribe(self, *types: str) -> FakeSubscription:
        return FakeSubscription(self.subs, frozenset(types))

    async def get_conf(self, *keys: str, timeout_s: float | None = None) -> dict[str, list[str]]:
        return {"TestingTorNetwork": ["1" if self.testing else "0"]}

    async def get_info(self, *keys: str, timeout_s: float | None = None) -> dict[str, str]:
        self.get_info_calls += 1
        if keys[0] not in self.info:
            raise TorCommandError(551, "Not found in cache", "GETINFO")
        return {keys[0]: self.info[keys[0]]}

    async def hs_post(
        self,
        descriptor: str,
        *,
        servers: Sequence[str],
        hs_address: str,
        timeout_s: float | None = None,
    ) -> None:
        assert hs_address and not hs_address.endswith(".onion")
        assert servers, "HSPOST without SERVER="
        self.posts.append((tuple(servers), hs_address, descriptor))
        parsed = parse_descriptor_unpinned(descriptor)
        blinded = parsed.blinded_key.b64()
        for fp in servers:
            ref = HsDirRef(fp, None)
            held = self.store.get((fp, blinded))
            if fp in self.silent:
                continue
            if fp in self.reject_once and self.reject_once[fp] in (None, blinded):
                del self.reject_once[fp]
                reason = "UPLOAD_FAILED"
            elif held is not None and held[0] >= parsed.revision_counter:
                reason = "UPLOAD_REJECTED"
            else:
                self.store[(fp, blinded)] = (parsed.revision_counter, descriptor)
                self.emit(HsDescEvent("UPLOADED", hs_address, "UNKNOWN", ref))
                continue
            self.emit(HsDescEvent("FAILED", hs_address, "UNKNOWN", ref, blinded, reason=reason))

    async def hs_fetch(
        self, address: str, servers: Sequence[str] = (), *, timeout_s: float | None = None
    ) -> None:
        self.fetches.append((address, tuple(servers)))
        for fp in servers:
            held = self.store.get((fp, self.current_blinded_b64))
            text = self.tamper.get(fp) or (held[1] if held else "")
            self.emit(
                HsDescContentEvent(address, self.current_blinded_b64, HsDirRef(fp, None), text)
            )
