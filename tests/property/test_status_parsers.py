"""Hostile input for the status endpoint's request parser and the status-document reader:
they may raise only our typed errors."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from onionfleet.observability.errors import StatusDocumentError, StatusHttpError
from onionfleet.observability.status import (
    ClusterMember,
    ClusterStatus,
    NodeStatus,
    StatusDocument,
    TargetReport,
    TorStatus,
)
from onionfleet.observability.status_server import parse_request_head

SEEDS = [
    b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /drain HTTP/1.1\r\nContent-Length: 0\r\nHost: localhost\r\n\r\n",
    b"GET /metrics?x=1 HTTP/1.0\r\nAccept: */*\r\nUser-Agent: Prometheus/2\r\n\r\n",
]
ALPHABET = b" :\r\n/?=0123456789GETPOSHTP.\x00\xff\t-"


def mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(4)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            del buf[min(pos, len(buf) - 1)]
        elif op == 1:
            buf[pos:pos] = bytes([rng.choice(ALPHABET)])
        elif op == 2 and buf:
            buf[min(pos, len(buf) - 1)] = rng.randrange(256)
        else:
            end = min(len(buf), pos + rng.randint(1, 8))
            buf[pos:pos] = buf[pos:end]
    return bytes(buf)


def test_request_head_mutation_fuzz_100k() -> None:
    rng = random.Random(20261122)
    outcomes: dict[str, int] = {}
    for i in range(100_000):
        data = mutate(rng, SEEDS[i % len(SEEDS)])
        if rng.random() < 0.5 and not data.endswith(b"\r\n\r\n"):
            data += b"\r\n\r\n"
        try:
            head = parse_request_head(data, max_body_bytes=4096)
        except StatusHttpError as exc:
            assert exc.status in (400, 413, 501)
            outcomes[str(exc.status)] = outcomes.get(str(exc.status), 0) + 1
            continue
        assert head.path.startswith("/")
        assert 0 <= head.content_length <= 4096
        outcomes["ok"] = outcomes.get("ok", 0) + 1
    assert outcomes.get("ok", 0) > 1000 and outcomes.get("400", 0) > 1000


_token = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-", min_size=1, max_size=12
)


@settings(max_examples=200)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    path=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/_-.", max_size=30),
    query=st.text(alphabet="abc=&123", max_size=10),
    headers=st.dictionaries(_token, st.text(alphabet="abc 123;,=/*", max_size=20), max_size=5),
    length=st.integers(0, 5000),
)
def test_valid_heads_parse(
    method: str, path: str, query: str, headers: dict[str, str], length: int
) -> None:
    unique: dict[str, tuple[str, str]] = {}
    for k, v in headers.items():
        if k.lower() not in ("content-length", "transfer-encoding"):
            unique[k.lower()] = (k, v)
    headers = dict(unique.values())
    lines = [f"{method} /{path}{'?' + query if query else ''} HTTP/1.1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {length}")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode()
    if length > 4096:
        try:
            parse_request_head(data, max_body_bytes=4096)
        except StatusHttpError as exc:
            assert exc.status == 413
        else:
            raise AssertionError("oversized body accepted")
        return
    head = parse_request_head(data, max_body_bytes=4096)
    assert (head.method, head.path, head.content_length) == (method, f"/{path}", length)
    for k, v in headers.items():
        assert head.headers[k.lower()] == v.strip()


def _sample() -> dict[str, Any]:
    node = NodeStatus(
        "a",
        "0.1.0",
        "publisher",
        "multi",
        3,
        True,
        "ok",
        False,
        1.0,
        "a",
        TorStatus(100, "Done", True),
    )
    cluster = ClusterStatus(
        3,
        "a",
        1,
        (ClusterMember("a", "self", "publisher", True, False, "", 3, None, None),),
        {"replay": 1},
    )
    doc = StatusDocument(
        2.0, node, cluster, targets=(TargetReport("web", "healthy", True, "HTTP 200", 0.5),)
    )
    return doc.to_dict()


_JUNK: list[Any] = [None, True, 0, -1, 1.5, "x", [], {}, [1, "a"], {"k": None}, float("inf")]


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def test_status_document_reader_mutation_fuzz() -> None:
    rng = random.Random(7)
    base = _sample()
    paths = [p for p in _paths(base) if p]
    accepted = 0
    for _ in range(10_000):
        doc = copy.deepcopy(base)
        for _ in range(rng.randint(1, 3)):
            path = rng.choice(paths)
            parent: Any = doc
            try:
                for key in path[:-1]:
                    parent = parent[key]
                if rng.random() < 0.2 and isinstance(parent, dict):
                    parent.pop(path[-1], None)
                else:
                    parent[path[-1]] = copy.deepcopy(rng.choice(_JUNK))
            except (KeyError, IndexError, TypeError):
                continue
        try:
            StatusDocument.from_dict(json.loads(json.dumps(doc, allow_nan=True)))
            accepted += 1
        except StatusDocumentError:
            pass
    assert accepted > 0
