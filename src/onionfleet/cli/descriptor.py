"""``onionfleet descriptor inspect FILE --address ADDR`` and ``onionfleet descriptor fetch ADDR``.

``inspect`` decodes, verifies and decrypts a v3 onion-service descriptor (as HSFETCH, ``GETINFO
hs/service/desc/id`` or our publisher produce it) and prints what is in it. Certificates are
checked for signature but an expired one is reported, not refused, so old descriptors can be read.

``fetch`` asks a tor to fetch the current descriptor from every HSDir responsible for it (our own
ring, rend-spec-v3 [HASHRING]) and checks each copy strictly (signature, certs, times, layers).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from onionfleet.config import load_config, parse_endpoint
from onionfleet.daemon import wiring
from onionfleet.daemon.descriptor_check import decode_answer, fetch_from_hsdirs, plan_fetch
from onionfleet.hs.client_auth import ClientAuthPrivateKey, parse_auth_private
from onionfleet.hs.descriptor import DecryptedDescriptor, parse_descriptor_unpinned
from onionfleet.hs.errors import DescriptorError
from onionfleet.hs.keys import OnionAddress
from onionfleet.tor.controller import (
    ControlAuth,
    ControlEndpoint,
    ControllerSettings,
    open_controller,
)

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "descriptor",
        help="work with v3 onion-service descriptors",
        description="Work with v3 onion-service descriptors.",
    )
    actions = parser.add_subparsers(dest="descriptor_action", metavar="ACTION", required=True)
    inspect = actions.add_parser(
        "inspect",
        help="decode, verify and decrypt a descriptor and print its contents",
        description=(
            "Decode, verify and decrypt a v3 descriptor for ADDR and print revision counter, "
            "lifetime, certificate validity, blinded key, layer sizes, flow-control, pow-params, "
            "single-onion flag, client authorization and every introduction point."
        ),
    )
    inspect.add_argument("file", type=Path, metavar="FILE", help="descriptor text file")
    inspect.add_argument(
        "--address", required=True, metavar="ADDR", help="the service's .onion address"
    )
    inspect.add_argument(
        "--client-key",
        type=Path,
        metavar="FILE",
        help="tor ClientOnionAuthDir .auth_private file, for descriptors with client auth",
    )
    inspect.add_argument("--json", action="store_true", help="print JSON instead of text")
    inspect.set_defaults(func=_inspect)
    _register_fetch(actions)


def _read_text(path: Path, what: str) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DescriptorError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise DescriptorError(f"{what} {path} is not ASCII text") from exc


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def _report(desc: DecryptedDescriptor, address: OnionAddress, now: float) -> dict[str, Any]:
    v = desc.verified
    cert = v.signing_key_cert
    ips = []
    for ip in desc.intro_points:
        auth_exp = ip.auth_key_cert.expires_at if ip.auth_key_cert else None
        enc_exp = ip.enc_key_cert.expires_at if ip.enc_key_cert else None
        ips.append(
            {
                "link_specifiers": [ls.describe() for ls in ip.link_specifiers],
                "onion_key_ntor": _b64(ip.onion_key),
                "auth_key": _b64(ip.auth_key),
                "enc_key_ntor": _b64(ip.enc_key),
                "auth_key_cert_expires": _iso(auth_exp) if auth_exp is not None else None,
                "enc_key_cert_expires": _iso(enc_exp) if enc_exp is not None else None,
                "certs_expired": any(e is not None and e < now for e in (auth_exp, enc_exp)),
                "legacy_key": ip.has_legacy_key,
            }
        )
    pow_params = None
    if desc.pow_params is not None:
        pow_params = {
            "type": desc.pow_params.pow_type,
            "seed_b64": base64.b64encode(desc.pow_params.seed).decode("ascii"),
            "suggested_effort": desc.pow_params.suggested_effort,
            "expiration": desc.pow_params.expiration,
        }
    flow = desc.flow_control
    return {
        "address": str(address),
        "revision_counter": desc.revision_counter,
        "lifetime_minutes": desc.lifetime_min,
        "blinded_key_b64": desc.blinded_key.b64(),
        "signing_key_b64": _b64(v.signing_key),
        "signing_key_cert": {
            "expires": _iso(cert.expires_at),
            "expired": cert.expires_at < now,
        },
        "size_bytes": desc.size_bytes,
        "superencrypted_blob_bytes": desc.superencrypted_blob_size,
        "superencrypted_plaintext_bytes": desc.superencrypted_size,
        "encrypted_plaintext_bytes": desc.encrypted_size,
        "create2_formats": list(desc.create2_formats),
        "flow_control": None if flow is None else f"{flow.versions} {flow.sendme_inc}",
        "pow_params": pow_params,
        "single_onion_service": desc.single_onion_service,
        "client_auth": desc.client_auth_used,
        "auth_client_lines": desc.auth_client_count,
        "introduction_points": ips,
    }


def _print_text(report: dict[str, Any]) -> None:
    for key, value in report.items():
        if key == "introduction_points":
            continue
        shown = value
        if isinstance(value, dict):
            shown = ", ".join(f"{k}={val}" for k, val in value.items())
        print(f"{key}: {shown}")
    ips = report["introduction_points"]
    print(f"introduction_points: {len(ips)}")
    for n, ip in enumerate(ips):
        print(f"  [{n}]")
        for key, value in ip.items():
            if key == "link_specifiers":
                for ls in value:
                    print(f"    link_specifier: {ls}")
            else:
                print(f"    {key}: {value}")


def _inspect(args: argparse.Namespace) -> int:
    address = OnionAddress.parse(args.address)
    text = _read_text(args.file, "descriptor file")
    client_key = None
    if args.client_key is not None:
        client_key = parse_auth_private(_read_text(args.client_key, "client key file"), address)
    now = time.time()
    verified = parse_descriptor_unpinned(text).verify(now=now, dangerously_assume_timely=True)
    desc = verified.decrypt(address, now=now, client_key=client_key, dangerously_assume_timely=True)
    report = _report(desc, address, now)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_text(report)
    return 0


# ---------------------------------------------------------------------------- fetch


def _register_fetch(actions: Any) -> None:
    fetch = actions.add_parser(
        "fetch",
        help="fetch ADDR's descriptor from every responsible HSDir through tor, decode and verify",
        description=(
            "Answers the silent-failure questions: did the upload reach every HSDir, is the "
            "signature valid, are the certs right, is the timestamp right. Exit 0 when every "
            "responsible HSDir serves a valid descriptor, 1 otherwise."
        ),
    )
    fetch.add_argument("address", metavar="ADDR", help="the onion address (…\u200b.onion)")
    where = fetch.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", type=Path, help="use the tor of this node's config")
    where.add_argument(
        "--control", metavar="HOST:PORT|unix:/PATH", help="use the tor at this control endpoint"
    )
    fetch.add_argument("--cookie", type=Path, help="control auth cookie file (with --control)")
    fetch.add_argument(
        "--client-key",
        type=Path,
        help="client auth key file (.auth_private) for a restricted service",
    )
    fetch.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (default 60)")
    fetch.add_argument("--json", action="store_true", help="print JSON instead of text")
    fetch.set_defaults(func=_fetch)


def _fetch(args: argparse.Namespace) -> int:
    address = OnionAddress.parse(args.address)
    client_key = None
    if args.client_key is not None:
        client_key = parse_auth_private(_read_text(args.client_key, "client key file"), address)
    settings = _controller_settings(args)
    report = asyncio.run(_fetch_report(settings, address, client_key, args.timeout))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_fetch(report)
    return 0 if report["ok"] else 1


def _controller_settings(args: argparse.Namespace) -> ControllerSettings:
    if args.config is not None:
        cfg = load_config(args.config)
        if cfg.tor.mode == "managed":
            return ControllerSettings(
                ControlEndpoint.unix(wiring.tor_data_dir(cfg) / "control.sock"), ControlAuth()
            )
        return wiring.attached_tor_settings(cfg).controller_settings()
    endpoint = parse_endpoint(args.control)
    if endpoint is None:
        raise DescriptorError(f"--control {args.control!r} is not host:port or unix:/path")
    control = (
        ControlEndpoint.unix(endpoint.unix_path)
        if endpoint.unix_path is not None
        else ControlEndpoint.tcp(endpoint.port or 0, endpoint.host or "127.0.0.1")
    )
    return ControllerSettings(control, ControlAuth(cookie_path=args.cookie))


async def _fetch_report(
    settings: ControllerSettings,
    address: OnionAddress,
    client_key: ClientAuthPrivateKey | None,
    timeout_s: float,
) -> dict[str, Any]:
    async with open_controller(settings) as controller:
        view = await controller.consensus_view()
        conf = await controller.get_conf("TestingTorNetwork")
        testing = conf.get("TestingTorNetwork", ["0"])[-1] == "1"
        plan = plan_fetch(address, view, testing_tor_network=testing)
        answers = await fetch_from_hsdirs(
            controller,
            address,
            servers=[r.fingerprint_hex for r in plan.hsdirs],
            timeout_s=timeout_s,
        )
    now = time.time()
    rows = []
    for relay, answer in zip(plan.hsdirs, answers, strict=True):
        fetched = decode_answer(answer, address, plan.blinded_key, now=now, client_key=client_key)
        row: dict[str, Any] = {"hsdir": relay.fingerprint_hex, "ok": fetched.error is None}
        if fetched.descriptor is not None:
            desc = fetched.descriptor
            row.update(
                revision_counter=desc.revision_counter,
                lifetime_minutes=desc.lifetime_min,
                signing_cert_expires=_iso(desc.verified.signing_key_cert.expires_at),
                introduction_points=len(desc.intro_points),
                flow_control=None
                if desc.flow_control is None
                else f"{desc.flow_control.versions} {desc.flow_control.sendme_inc}",
                pow_params=desc.pow_params is not None,
            )
        else:
            row["error"] = fetched.error
        rows.append(row)
    counters = {r["revision_counter"] for r in rows if r["ok"]}
    return {
        "address": str(address),
        "time_period": plan.period.time_period.number,
        "blinded_key_b64": plan.blinded_key.b64(),
        "hsdirs": rows,
        "served": sum(r["ok"] for r in rows),
        "responsible": len(rows),
        "revision_counters_agree": len(counters) <= 1,
        "ok": bool(rows) and all(r["ok"] for r in rows) and len(counters) == 1,
    }


def _print_fetch(report: dict[str, Any]) -> None:
    print(f"address: {report['address']}")
    print(f"time period: {report['time_period']}  blinded key: {report['blinded_key_b64']}")
    print(
        f"responsible HSDirs serving a valid descriptor: {report['served']}/{report['responsible']}"
    )
    for row in report["hsdirs"]:
        if row["ok"]:
            print(
                f"  {row['hsdir']}  ok  revision {row['revision_counter']}, "
                f"{row['introduction_points']} intro points, signing cert until "
                f"{row['signing_cert_expires']}, flow-control {row['flow_control']}"
                + (", pow-params" if row["pow_params"] else "")
            )
        else:
            print(f"  {row['hsdir']}  FAIL  {row['error']}")
    if not report["revision_counters_agree"]:
        print("warning: HSDirs serve different revision counters (an upload did not reach all)")
