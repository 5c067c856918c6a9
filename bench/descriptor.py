"""Build + sign a 20-intro-point v3 descriptor: onionfleet.hs vs stem, measured in the same run.

Both paths do the same work per descriptor: blind the master key for the time period, make a fresh
descriptor-signing key and its type-08 cert, make the 09/0B certs of 20 intro points (the
recertification a merging publisher does), encrypt both layers and sign. Intro-point keys and link
specifiers are made once, outside the timed region, for both. stem (1.8.2, a test-only oracle)
is the baseline: HiddenServiceDescriptorV3.content() with IntroductionPointV3 objects.

Prints per-descriptor medians and, LAST, the speed ratio (stem time / our time). Target >= 5x.
Run: .venv/bin/python bench/descriptor.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from stem.client.datatype import LinkByEd25519, LinkByFingerprint, LinkByIPv4
from stem.descriptor.hidden_service import (
    HiddenServiceDescriptorV3,
    InnerLayer,
    IntroductionPointV3,
)

from onionfleet.hs.blinding import blinding_factor
from onionfleet.hs.descriptor import FlowControl, build_descriptor
from onionfleet.hs.intro_point import IntroPoint, LinkSpecifier
from onionfleet.hs.keys import OnionAddress, master_key_from_seed
from onionfleet.hs.timeperiod import TimePeriod

N_IPS = 20


def _raw_pub(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()

    rng = random.Random(1)
    seed = rng.randbytes(32)
    master = master_key_from_seed(seed)
    identity = Ed25519PrivateKey.from_private_bytes(seed)
    now = time.time()
    tp = TimePeriod(int((now / 60 - 720) // 1440), 1440)
    address = OnionAddress(master.public_key())

    # Shared inputs: 20 relays' link specifiers and intro-point keys.
    relays = []
    for i in range(N_IPS):
        relays.append(
            {
                "ip": f"10.0.0.{i + 1}",
                "port": 9000 + i,
                "fp": rng.randbytes(20),
                "ed": rng.randbytes(32),
                "onion": X25519PrivateKey.generate(),
                "enc": X25519PrivateKey.generate(),
                "auth": Ed25519PrivateKey.generate(),
            }
        )
    our_ips = [
        IntroPoint.create(
            [
                LinkSpecifier.ipv4(r["ip"], r["port"]),
                LinkSpecifier.legacy_id(r["fp"]),
                LinkSpecifier.ed25519_id(r["ed"]),
            ],
            onion_key=_raw_pub(r["onion"]),
            auth_key=_raw_pub(r["auth"]),
            enc_key=_raw_pub(r["enc"]),
        )
        for r in relays
    ]
    stem_links = [
        [
            LinkByIPv4(r["ip"], r["port"]),
            LinkByFingerprint(r["fp"]),
            LinkByEd25519(r["ed"]),
        ]
        for r in relays
    ]
    h = blinding_factor(master.public_key(), tp)

    def ours() -> str:
        return build_descriptor(
            master_key=master,
            time_period=tp,
            revision_counter=1,
            intro_points=our_ips,
            now=now,
            token_bytes=os.urandom,
            flow_control=FlowControl("1-2", 31),
        ).text

    def stems() -> str:
        signing = Ed25519PrivateKey.generate()
        ips = [
            IntroductionPointV3.create_for_link_specifiers(
                links,
                onion_key=r["onion"],
                enc_key=r["enc"],
                auth_key=r["auth"],
                signing_key=signing,
            )
            for links, r in zip(stem_links, relays, strict=True)
        ]
        return HiddenServiceDescriptorV3.content(
            inner_layer=InnerLayer.create(introduction_points=ips),
            identity_key=identity,
            signing_key=signing,
            revision_counter=1,
            blinding_nonce=h,
        ).decode()

    # Both outputs must be valid descriptors for the same address (checked by stem).
    for text in (ours(), stems()):
        d = HiddenServiceDescriptorV3.from_str(text, validate=True)
        assert len(d.decrypt(str(address)).introduction_points) == N_IPS

    # Alternate the two paths sample by sample so that load from other processes hits both alike.
    for _ in range(3):  # warm-up
        ours()
        stems()
    samples_ours: list[float] = []
    samples_stem: list[float] = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        ours()
        t1 = time.perf_counter()
        stems()
        t2 = time.perf_counter()
        samples_ours.append(t1 - t0)
        samples_stem.append(t2 - t1)
    t_ours = statistics.median(samples_ours)
    t_stem = statistics.median(samples_stem)
    size = len(ours())
    print(f"descriptor with {N_IPS} intro points: {size} bytes")
    print(f"onionfleet.hs build+sign: {t_ours * 1e3:.2f} ms (median of {args.rounds})")
    print(f"stem 1.8.2 build+sign:    {t_stem * 1e3:.2f} ms (median of {args.rounds})")
    print(f"ratio stem/onionfleet: {t_stem / t_ours:.1f}x")


if __name__ == "__main__":
    main()
