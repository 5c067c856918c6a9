"""Deterministic builders shared by the hs unit tests (imported as a plain module)."""

from __future__ import annotations

import random
from collections.abc import Callable

from onionfleet.hs.descriptor import BuiltDescriptor, FlowControl, build_descriptor
from onionfleet.hs.intro_point import IntroPoint, LinkSpecifier
from onionfleet.hs.keys import DescSigningKeypair, HsIdExpandedSecretKey, master_key_from_seed
from onionfleet.hs.timeperiod import TimePeriod

NOW = 1_790_000_000.0  # 2026-09-21T...Z; every test passes time explicitly
TP = TimePeriod(int((NOW / 60 - 720) // 1440), 1440)


def token_bytes(seed: int = 1) -> Callable[[int], bytes]:
    rng = random.Random(seed)
    return rng.randbytes


def master_key(seed: int = 7) -> HsIdExpandedSecretKey:
    return master_key_from_seed(random.Random(seed).randbytes(32))


def make_intro_points(n: int, seed: int = 3, *, ipv6: bool = False) -> list[IntroPoint]:
    rng = random.Random(seed)
    ips = []
    for i in range(n):
        specs = [
            LinkSpecifier.ipv4(f"10.0.{i // 250}.{i % 250 + 1}", 9000 + i),
            LinkSpecifier.legacy_id(rng.randbytes(20)),
            LinkSpecifier.ed25519_id(rng.randbytes(32)),
        ]
        if ipv6:
            specs.append(LinkSpecifier.ipv6(f"2001:db8::{i + 1:x}", 9000 + i))
        ips.append(
            IntroPoint.create(
                specs,
                onion_key=rng.randbytes(32),
                auth_key=DescSigningKeypair.from_seed(rng.randbytes(32)).public_raw,
                enc_key=rng.randbytes(32),
            )
        )
    return ips


def build(n_ips: int = 3, *, seed: int = 1, **kwargs: object) -> BuiltDescriptor:
    params: dict[str, object] = {
        "master_key": master_key(),
        "time_period": TP,
        "revision_counter": 42,
        "intro_points": make_intro_points(n_ips),
        "now": NOW,
        "token_bytes": token_bytes(seed),
        "flow_control": FlowControl("1-2", 31),
    }
    params.update(kwargs)
    return build_descriptor(**params)  # type: ignore[arg-type]
