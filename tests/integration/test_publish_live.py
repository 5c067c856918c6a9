"""Merged descriptors on the private Tor network: our descriptors, our ring, real HSDirs, real
clients.

Topology (all on 127.0.0.1, on the session ``testnet``)::

    plsvc            one onion service (its own key), PublishHidServDescriptors 0 + OB instance
    plnode1..3       three "node" tors sharing ONE master key, each OB instance, publishing off,
                     each forwarding to its own HTTP server that answers its node name
    plclient         client; plauthcl (ClientOnionAuthDir with our client key); plnoauth (none)

1. (issue 3) a descriptor WE build from plsvc's real intro points (GETINFO + decrypt), posted with
   SERVER= our ring, is UPLOADED by every responsible HSDir; a client reaches the service.
2. (issue 3) the same with client authorization: the authorized client gets in, the other gets
   SOCKS 0xF4.
3. (issue 8) the Publisher on plnode1's controller, fed by three OwnIntroPointWatchers: both
   descriptors UPLOADED on all responsible HSDirs, the fetchable one verified by HSFETCH, and
   isolated client requests are answered by every node. Prints seconds from "all nodes have intro
   points" to "first merged descriptor UPLOADED".
4. plnode3's tor restarts (new intro points): the watcher reports them, and the merged descriptor
   on the HSDirs (HSFETCH, decoded) holds them. Prints the seconds.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from onionfleet.clock import SystemClock
from onionfleet.hs.blinding import blind_secret_key
from onionfleet.hs.client_auth import ClientAuthPublicKey
from onionfleet.hs.descriptor import build_descriptor
from onionfleet.hs.keys import (
    HsIdExpandedSecretKey,
    OnionAddress,
    generate_master_key,
    save_public_key_file,
    save_secret_key_file,
)
from onionfleet.hs.revision_counter import revision_counter
from onionfleet.hs.timeperiod import TimePeriod, srv_run_start, start_of_next_time_period
from onionfleet.node.intro_points import IntroPointsChanged, OwnIntroPoints, OwnIntroPointWatcher
from onionfleet.publish.plan import (
    DescriptorPlan,
    candidate_time_periods,
    next_revision_counter,
    plan_descriptors,
    seconds_until_srv_rotation,
    time_period_rules_for,
)
from onionfleet.publish.publisher import Publisher, PublisherSettings
from onionfleet.publish.selection import NodeIntroPoints
from onionfleet.publish.status import PublishRecord, VerificationState
from onionfleet.testnet import (
    SocksReplyError,
    StaticHttpServer,
    TestNetwork,
    TorInstance,
    http_get_with_retry,
)
from onionfleet.tor.consensus import ConsensusView
from onionfleet.tor.consensus_watch import ConsensusWatcher
from onionfleet.tor.controller import (
    ControlAuth,
    ControlEndpoint,
    ControllerSettings,
    EventSubscription,
    TorController,
    open_controller,
)
from onionfleet.tor.errors import TorCommandError
from onionfleet.tor.events import HsDescEvent

pytestmark = [pytest.mark.testnet, pytest.mark.timeout(300)]
log = logging.getLogger(__name__)

SVC_BODY = b"plsvc: the single service behind our own descriptor\n"
NODE_NAMES = ("plnode1", "plnode2", "plnode3")
OB_TORRC = ("PublishHidServDescriptors 0", "HiddenServiceOnionBalanceInstance 1")


# --- fixture -----------------------------------------------------------------------------------


def _write_key_dir(directory: Path, key: HsIdExpandedSecretKey) -> OnionAddress:
    directory.mkdir(mode=0o700, parents=True)
    save_secret_key_file(directory / "hs_ed25519_secret_key", key)
    save_public_key_file(directory / "hs_ed25519_public_key", key.public_key())
    address = key.public_key().address()
    (directory / "hostname").write_text(f"{address}\n")
    return address


def _add_ob_node(
    net: TestNetwork, name: str, *, key_dir: Path, address: OnionAddress, port: int
) -> TorInstance:
    """A same-key node tor: publishing off, OB instance with ob_config naming its own address."""
    hs_dir = net.root_dir / name / "hs"
    hs_dir.mkdir(mode=0o700, parents=True)
    (hs_dir / "ob_config").write_text(f"MasterOnionAddress {address}\n")
    return net.add_onion_service(
        name, target_port=port, key_dir=key_dir, extra_torrc=OB_TORRC, wait=False
    )


@dataclass
class PubNet:
    net: TestNetwork
    svc: TorInstance
    svc_key: HsIdExpandedSecretKey
    svc_address: OnionAddress
    fleet_key: HsIdExpandedSecretKey
    fleet_address: OnionAddress
    nodes: dict[str, TorInstance]
    client: TorInstance
    auth_client: TorInstance
    noauth_client: TorInstance
    client_auth_public: ClientAuthPublicKey
    last_counters: dict[str, int] = field(default_factory=dict)


@pytest.fixture(scope="module")
def pubnet(testnet: TestNetwork, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PubNet]:
    root = tmp_path_factory.mktemp("publish-live")
    servers = [StaticHttpServer(SVC_BODY)]
    servers += [StaticHttpServer(name.encode()) for name in NODE_NAMES]
    svc_key = generate_master_key(secrets.token_bytes)
    fleet_key = generate_master_key(secrets.token_bytes)
    svc_address = _write_key_dir(root / "svc-key", svc_key)
    fleet_address = _write_key_dir(root / "fleet-key", fleet_key)

    client_secret = X25519PrivateKey.generate()
    client_public = client_secret.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

    secret_raw = client_secret.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    auth_dir = root / "client-auth"
    auth_dir.mkdir(mode=0o700)
    b32 = base64.b32encode(secret_raw).decode().rstrip("=")
    (auth_dir / "plsvc.auth_private").write_text(
        f"{svc_address.without_suffix()}:descriptor:x25519:{b32}\n"
    )
    (auth_dir / "plsvc.auth_private").chmod(0o600)

    started: list[TorInstance] = []
    try:
        svc = _add_ob_node(
            testnet, "plsvc", key_dir=root / "svc-key", address=svc_address, port=servers[0].port
        )
        started.append(svc)
        nodes = {}
        for name, server in zip(NODE_NAMES, servers[1:], strict=True):
            nodes[name] = _add_ob_node(
                testnet, name, key_dir=root / "fleet-key", address=fleet_address, port=server.port
            )
            started.append(nodes[name])
        client = testnet.add_client(
            "plclient",
            extra_torrc=[f"Log [rend]info file {testnet.root_dir / 'plclient' / 'rend-info.log'}"],
            wait=False,
        )
        auth_client = testnet.add_client(
            "plauthcl", extra_torrc=[f"ClientOnionAuthDir {auth_dir}"], wait=False
        )
        noauth_client = testnet.add_client("plnoauth", wait=False)
        started += [client, auth_client, noauth_client]
        for inst in started:
            inst.wait_bootstrapped(timeout_s=90.0)
        yield PubNet(
            testnet,
            svc,
            svc_key,
            svc_address,
            fleet_key,
            fleet_address,
            nodes,
            client,
            auth_client,
            noauth_client,
            ClientAuthPublicKey(client_public),
        )
    finally:
        for inst in started:
            with contextlib.suppress(Exception):
                inst.stop()
        for server in servers:
            server.close()


# --- helpers -----------------------------------------------------------------------------------


def _settings(inst: TorInstance) -> ControllerSettings:
    return ControllerSettings(
        ControlEndpoint.tcp(inst.control_port),
        ControlAuth(cookie_path=inst.cookie_path),
        command_timeout_s=30.0,
        reconnect_max_s=1.0,
    )


async def _view(ctl: TorController, timeout_s: float = 60.0) -> ConsensusView:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await ctl.consensus_view()
        except TorCommandError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def _testing(ctl: TorController) -> bool:
    conf = await ctl.get_conf("TestingTorNetwork")
    return next(iter(conf.values())) == ["1"]


async def _away_from_srv_rotation(ctl: TorController, *, margin_s: float) -> None:
    """Sleep past the next SRV rotation if it is less than ``margin_s`` away.

    At each SRV run start every node tor rotates its descriptors and closes the old intro
    points (4-minute runs on this network), so a step that must not see that happen waits.
    """
    view = await _view(ctl)
    rules = time_period_rules_for(view, testing_tor_network=await _testing(ctl))
    left = seconds_until_srv_rotation(view.valid_after, rules, time.time())
    if left >= margin_s:
        return
    # tor rotates when *its* consensus enters the new SRV run, which can be a voting interval or
    # more after the wall-clock boundary: wait for that consensus, then a little for the rotation.
    boundary = srv_run_start(view.valid_after, rules) + rules.srv_run_s
    if left <= -rules.srv_run_s / 2:  # the consensus is stale, not the rotation near
        return
    print(f"\nSRV rotation in {left:.0f} s: waiting until this tor's consensus is past it")
    async with asyncio.timeout(max(0.0, left) + 120.0):
        while (await _view(ctl)).valid_after < boundary:  # noqa: ASYNC110 - polling tor is the check
            await asyncio.sleep(1.0)
    await asyncio.sleep(5.0)


async def _own_intro_points(
    ctl: TorController, address: OnionAddress, *, minimum: int, timeout_s: float
) -> OwnIntroPoints:
    """Read the service's own descriptor until it lists ``minimum`` intro points."""
    testing = await _testing(ctl)
    views: list[ConsensusView] = [await _view(ctl)]

    def periods() -> tuple[TimePeriod, ...]:
        rules = time_period_rules_for(views[-1], testing_tor_network=testing)
        return candidate_time_periods(views[-1].valid_after, rules)

    watcher = OwnIntroPointWatcher(ctl, address, time_periods=periods, clock=SystemClock())
    deadline = time.monotonic() + timeout_s
    while True:
        await watcher.read_now()
        current = watcher.current
        if current is not None and len(current.intro_points) >= minimum:
            return current
        assert time.monotonic() < deadline, (
            f"the service never listed {minimum} intro points (last error: {watcher.last_error})"
        )
        views.append(await _view(ctl))
        await asyncio.sleep(0.5)


async def _post_and_collect(
    ctl: TorController,
    sub: EventSubscription,
    text: str,
    plan: DescriptorPlan,
    address: OnionAddress,
    timeout_s: float = 30.0,
) -> dict[str, str]:
    """HSPOST to the plan's HSDirs; the outcome per HSDir ("UPLOADED" or "FAILED:<reason>")."""
    await ctl.hs_post(text, servers=plan.hsdirs, hs_address=address.without_suffix())
    outcomes: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    while set(outcomes) != set(plan.hsdirs):
        left = deadline - time.monotonic()
        assert left > 0, f"{plan.label}: outcomes only from {sorted(outcomes)} of {plan.hsdirs}"
        try:
            event = await sub.get(timeout_s=left)
        except TimeoutError:
            continue
        if (
            isinstance(event, HsDescEvent)
            and event.address == address.without_suffix()
            and event.hsdir is not None
            and event.action in ("UPLOADED", "FAILED")
        ):
            fp = event.hsdir.fingerprint_hex
            outcomes[fp] = "UPLOADED" if event.action == "UPLOADED" else f"FAILED:{event.reason}"
    return outcomes


async def _publish_own_descriptors(
    pn: PubNet, *, authorized: tuple[ClientAuthPublicKey, ...] = ()
) -> list[tuple[DescriptorPlan, dict[str, str]]]:
    """Build both descriptors for plsvc from its real intro points and post them ourselves."""
    async with open_controller(_settings(pn.svc)) as ctl, ctl.subscribe("HS_DESC") as sub:
        await _away_from_srv_rotation(ctl, margin_s=30.0)
        own = await _own_intro_points(ctl, pn.svc_address, minimum=3, timeout_s=90.0)
        view = await _view(ctl)
        rules = time_period_rules_for(view, testing_tor_network=await _testing(ctl))
        results = []
        for plan in plan_descriptors(view, pn.svc_key.public_key(), rules):
            key = plan.blinded_key.b64()
            now = time.time()
            ope = revision_counter(
                blind_secret_key(pn.svc_key, plan.period.time_period),
                plan.period.srv_run_start_s,
                int(now),
            )
            counter = next_revision_counter(ope, pn.last_counters.get(key))
            pn.last_counters[key] = counter
            built = build_descriptor(
                master_key=pn.svc_key,
                time_period=plan.period.time_period,
                revision_counter=counter,
                intro_points=own.intro_points,
                now=now,
                token_bytes=secrets.token_bytes,
                flow_control=own.flow_control,
                authorized_clients=authorized,
            )
            assert "pow-params" not in built.text
            outcomes = await _post_and_collect(ctl, sub, built.text, plan, pn.svc_address)
            results.append((plan, outcomes))
        return results


def _fetch(inst: TorInstance, address: OnionAddress, *, tag: str, timeout_s: float) -> bytes:
    assert inst.socks_port is not None
    status, body = http_get_with_retry(
        inst.socks_port,
        f"http://{address}/",
        timeout_s=timeout_s,
        attempt_timeout_s=20.0,
        isolation_prefix=tag,
    )
    assert status == 200
    return body


# --- 1 + 2: our own descriptor for a single service ---------------------------------------------


async def test_our_descriptor_is_uploaded_by_every_responsible_hsdir_and_serves(
    pubnet: PubNet,
) -> None:
    t0 = time.monotonic()
    results = await _publish_own_descriptors(pubnet)
    for plan, outcomes in results:
        print(
            f"\n{plan.label} descriptor (TP {plan.period.time_period.number}): "
            f"{sum(v == 'UPLOADED' for v in outcomes.values())}/{len(plan.hsdirs)} UPLOADED"
        )
        assert len(plan.hsdirs) == 8  # 2 replicas x spread 4 on an 8-HSDir network
        assert outcomes == dict.fromkeys(plan.hsdirs, "UPLOADED")
    body = await asyncio.to_thread(
        _fetch, pubnet.client, pubnet.svc_address, tag="svc", timeout_s=90.0
    )
    assert body == SVC_BODY
    print(f"own descriptor posted and fetched through in {time.monotonic() - t0:.1f} s")


async def test_client_auth_descriptor_admits_only_the_authorized_client(pubnet: PubNet) -> None:
    results = await _publish_own_descriptors(pubnet, authorized=(pubnet.client_auth_public,))
    for plan, outcomes in results:
        assert outcomes == dict.fromkeys(plan.hsdirs, "UPLOADED"), plan.label
    body = await asyncio.to_thread(
        _fetch, pubnet.auth_client, pubnet.svc_address, tag="auth", timeout_s=90.0
    )
    assert body == SVC_BODY
    with pytest.raises(SocksReplyError) as refused:
        await asyncio.to_thread(
            _fetch, pubnet.noauth_client, pubnet.svc_address, tag="noauth", timeout_s=60.0
        )
    assert refused.value.reply_code == 0xF4, refused.value  # missing client authorization


# --- 3 + 4: the publisher with three same-key nodes ---------------------------------------------


@dataclass
class Fleet:
    publisher: Publisher
    consensus: ConsensusWatcher
    watchers: dict[str, OwnIntroPointWatcher]
    changes: list[tuple[float, str, IntroPointsChanged]]
    controller: TorController


@contextlib.asynccontextmanager
async def _fleet(pn: PubNet) -> AsyncIterator[Fleet]:
    clock = SystemClock()
    async with contextlib.AsyncExitStack() as stack:
        ctls = {
            name: await stack.enter_async_context(open_controller(_settings(inst)))
            for name, inst in pn.nodes.items()
        }
        pub_ctl = ctls[NODE_NAMES[0]]
        testing = await _testing(pub_ctl)
        changes: list[tuple[float, str, IntroPointsChanged]] = []
        publisher_box: list[Publisher] = []
        consensus = ConsensusWatcher(
            pub_ctl, on_update=lambda _view: [p.nudge() for p in publisher_box] and None
        )

        def periods() -> tuple[TimePeriod, ...]:
            view = consensus.current
            if view is None:
                return ()
            rules = time_period_rules_for(view, testing_tor_network=testing)
            return candidate_time_periods(view.valid_after, rules)

        def on_change(name: str) -> object:
            def record(change: IntroPointsChanged) -> None:
                changes.append((time.monotonic(), name, change))
                for p in publisher_box:
                    p.nudge()

            return record

        watchers = {
            name: OwnIntroPointWatcher(
                ctl,
                pn.fleet_address,
                time_periods=periods,
                clock=clock,
                on_change=on_change(name),  # type: ignore[arg-type]
                poll_interval_s=1.0,
                node_id=name,
            )
            for name, ctl in ctls.items()
        }

        def nodes() -> list[NodeIntroPoints[object]]:
            out = []
            for name, watcher in watchers.items():
                cur = watcher.current
                if cur is not None:
                    out.append(NodeIntroPoints(name, cur.intro_points, cur.flow_control))
            return out  # type: ignore[return-value]

        publisher = Publisher(
            pub_ctl,
            pn.fleet_key,
            nodes=nodes,  # type: ignore[arg-type]
            consensus=lambda: consensus.current,
            clock=clock,
            rng=random.Random(8),
            token_bytes=secrets.token_bytes,
            settings=PublisherSettings(upload_timeout_s=20.0, verify_timeout_s=20.0),
            testing_tor_network=testing,
        )
        publisher_box.append(publisher)
        async with asyncio.TaskGroup() as tg:
            ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            tasks = [tg.create_task(consensus.run(ready))]
            await asyncio.wait_for(ready, 60)
            for watcher in watchers.values():
                tasks.append(tg.create_task(watcher.run()))
            tasks.append(tg.create_task(publisher.run()))
            try:
                yield Fleet(publisher, consensus, watchers, changes, pub_ctl)
            finally:
                for task in tasks:
                    task.cancel()


def fleet_ctl(fleet: Fleet) -> TorController:
    return fleet.controller


async def _reference_first_new(
    pn: PubNet, inst: TorInstance, old_keys: frozenset[bytes], fleet: Fleet, timeout_s: float
) -> float:
    view = fleet.consensus.current
    assert view is not None
    testing = await _testing(fleet.controller)
    deadline = time.monotonic() + timeout_s
    async with open_controller(_settings(inst), ready_timeout_s=timeout_s) as ctl:

        def periods() -> tuple[TimePeriod, ...]:
            current = fleet.consensus.current or view
            rules = time_period_rules_for(current, testing_tor_network=testing)
            return candidate_time_periods(current.valid_after, rules)

        reader = OwnIntroPointWatcher(
            ctl, pn.fleet_address, time_periods=periods, clock=SystemClock()
        )
        while True:
            await reader.read_now()
            cur = reader.current
            if cur is not None and cur.intro_points and not (cur.auth_keys & old_keys):
                return cur.read_at
            assert time.monotonic() < deadline, f"no new intro points: {reader.last_error}"
            await asyncio.sleep(0.1)


def _complete(record: PublishRecord, nodes: int) -> bool:
    """Every responsible HSDir took both descriptors, and the publish spans ``nodes`` nodes."""
    return len(record.per_node) == nodes and all(
        d.uploaded_count == len(d.hsdirs) for d in record.descriptors
    )


def _fetchable_verified(record: PublishRecord) -> bool:
    states = {d.verification for d in record.descriptors}
    return VerificationState.VERIFIED in states and states <= {
        VerificationState.VERIFIED,
        VerificationState.WAITING_FOR_TIME_PERIOD,
        VerificationState.PAST_TIME_PERIOD,
    }


async def _wait_history(
    publisher: Publisher, predicate: object, timeout_s: float, what: str
) -> PublishRecord:
    deadline = time.monotonic() + timeout_s
    while True:
        for record in reversed(publisher.history()):
            if predicate(record):  # type: ignore[operator]
                return record
        assert time.monotonic() < deadline, (
            f"{what} not within {timeout_s:.0f} s: {publisher.status()}"
        )
        await asyncio.sleep(0.1)


async def test_publisher_merges_three_nodes_and_clients_reach_every_node_then_restart(
    pubnet: PubNet,
) -> None:
    pn = pubnet
    async with _fleet(pn) as fleet:
        # --- 3: the first merged publish --------------------------------------------------------
        deadline = time.monotonic() + 120
        while not all(
            w.current is not None and w.current.intro_points for w in fleet.watchers.values()
        ):
            assert time.monotonic() < deadline, {n: w.last_error for n, w in fleet.watchers.items()}
            await asyncio.sleep(0.05)
        t_all_have_ips = time.monotonic()
        first_full = await _wait_history(
            fleet.publisher,
            lambda r: (
                len(r.per_node) == 3
                and any(d.first_uploaded_at_mono is not None for d in r.descriptors)
            ),
            30,
            "a merged descriptor of all three nodes UPLOADED",
        )
        first_uploaded = min(
            d.first_uploaded_at_mono
            for d in first_full.descriptors
            if d.first_uploaded_at_mono is not None
        )
        to_upload_s = first_uploaded - t_all_have_ips
        print(
            f"\nall nodes have intro points -> first merged descriptor UPLOADED: "
            f"{to_upload_s:.2f} s"
        )
        assert to_upload_s <= 10.0

        # Settle: every node's full set of intro points, everything uploaded, fetchable verified.
        await asyncio.gather(
            *(
                w.wait_for(lambda c: len(c.intro_points) >= 3, timeout_s=90)
                for w in fleet.watchers.values()
            )
        )
        deadline = time.monotonic() + 90
        while True:
            status = fleet.publisher.status()
            settled = status.last
            if (
                settled is not None
                and status.waiting_for is None
                and _complete(settled, 3)
                and _fetchable_verified(settled)
            ):
                break
            assert time.monotonic() < deadline, f"no complete, verified publish: {status}"
            await asyncio.sleep(0.1)
        print(
            f"publish #{settled.number}: intro points per node {dict(settled.per_node)}, "
            f"{status.left_out_intro_points} left out (one intro point per relay)"
        )
        for d in settled.descriptors:
            print(
                f"{d.label} descriptor TP {d.time_period}: {d.uploaded_count}/{len(d.hsdirs)} "
                f"UPLOADED, verification {d.verification.value} "
                f"({sum(r.outcome.value == 'match' for r in d.verification_results)} HSDirs match)"
            )

        # Isolated requests: every node must answer some.
        def one(i: int) -> bytes:
            return _fetch(pn.client, pn.fleet_address, tag=f"fleet{i}", timeout_s=60.0)

        # One at a time: concurrent requests share the intro circuit being built, so they would
        # not be independent draws of an intro point. tor clients also favour intro points they
        # used before, so keep going (up to 60) until every node has answered.
        answers: Counter[str] = Counter()
        t_fetch = time.monotonic()
        i = 0
        while i < 24 or (set(answers) != set(NODE_NAMES) and i < 60):
            answers[(await asyncio.to_thread(one, i)).decode()] += 1
            i += 1
        print(f"{i} isolated requests in {time.monotonic() - t_fetch:.1f} s: {dict(answers)}")
        assert set(answers) == set(NODE_NAMES), answers

        # --- 4: a node's tor restarts ------------------------------------------------------------
        restarted = NODE_NAMES[2]
        inst = pn.nodes[restarted]
        watcher = fleet.watchers[restarted]
        await _away_from_srv_rotation(fleet_ctl(fleet), margin_s=45.0)
        old = watcher.current
        assert old is not None
        old_keys = old.auth_keys
        await asyncio.to_thread(inst.stop)
        t_stop = time.monotonic()
        await asyncio.to_thread(inst.start)
        # A reference reader on its own control connection, every 0.1 s: when tor's descriptor
        # first lists new intro points.
        t_tor_has_new = await _reference_first_new(pn, inst, old_keys, fleet, timeout_s=90)
        new = await watcher.wait_for(
            lambda c: bool(c.intro_points) and not (c.auth_keys & old_keys), timeout_s=30
        )
        t_new_ips = next(
            t
            for t, name, ch in fleet.changes
            if t > t_stop
            and name == restarted
            and ch.added
            and not (ch.current.auth_keys & old_keys)
        )
        lag_s = t_new_ips - t_tor_has_new
        print(
            f"restarted {restarted}: tor listed new intro points {t_tor_has_new - t_stop:.1f} s "
            f"after stop; the watcher reported them {lag_s:.2f} s later"
        )
        assert lag_s <= 5.0
        new_b64 = {base64.b64encode(k).decode().rstrip("=") for k in new.auth_keys}
        old_b64 = {base64.b64encode(k).decode().rstrip("=") for k in old_keys}

        def reflects(record: PublishRecord) -> bool:
            return (
                bool(record.intro_point_auth_keys_b64 & new_b64)
                and not (record.intro_point_auth_keys_b64 & old_b64)
                and _fetchable_verified(record)
            )

        verified = await _wait_history(
            fleet.publisher, reflects, 60, "the new intro points verified"
        )
        verified_at = max(
            d.verified_at_mono for d in verified.descriptors if d.verified_at_mono is not None
        )
        freshness_s = verified_at - t_new_ips
        print(f"new intro points -> merged descriptor verified on the HSDirs: {freshness_s:.2f} s")
        assert freshness_s <= 5.0

        # --- both descriptors verified: the second one becomes fetchable at its TP start --------
        await _second_descriptor_verified_if_tp_starts_soon(fleet)


async def _second_descriptor_verified_if_tp_starts_soon(fleet: Fleet) -> None:
    """tor's HSFETCH asks only for the current TP's descriptor, so the other one can be checked
    only when its TP starts (and never when it is the previous TP's). Wait for that if it is
    near; the unit tests cover the state machine either way."""
    status = fleet.publisher.status()
    view = fleet.consensus.current
    assert status.last is not None and view is not None
    first = status.last.descriptors[0]
    if first.verification is VerificationState.PAST_TIME_PERIOD:
        print("phase TP->SRV: the first descriptor is for the previous TP (not fetchable)")
        return
    rules = time_period_rules_for(view, testing_tor_network=await _testing(fleet.controller))
    to_tp_start = start_of_next_time_period(view.valid_after, rules) - time.time()
    if to_tp_start > 75:
        print(f"the second descriptor's TP starts in {to_tp_start:.0f} s: not waiting for it")
        return
    both = await _wait_history(
        fleet.publisher,
        lambda r: all(d.verification is VerificationState.VERIFIED for d in r.descriptors),
        max(0.0, to_tp_start) + 45,
        "both descriptors verified after the TP start",
    )
    print(
        f"TP started {to_tp_start:.0f} s later: both descriptors of publish #{both.number} "
        "verified on their HSDirs"
    )
