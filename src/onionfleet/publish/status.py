"""What the publisher reports: frozen snapshots for the daemon, ``onionfleet status`` and metrics.

Pure values. Onion addresses never appear here; intro points are named by their auth key
(base64), which is what clients and tor use to name an intro point. No key material.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from onionfleet.publish.uploads import HsDirUpload

__all__ = [
    "DescriptorStatus",
    "FetchOutcome",
    "HsDirFetchResult",
    "PublishRecord",
    "PublisherStatus",
    "VerificationState",
]


class VerificationState(enum.Enum):
    """Whether the HSDirs hold what we published (per descriptor).

    tor's HSFETCH only fetches the current TP's descriptor
    (``hs_client.c:directory_launch_v3_desc_fetch``). ``WAITING_FOR_TIME_PERIOD``: the descriptor
    is for the next TP and is checked when that TP starts. ``PAST_TIME_PERIOD``: it is for the
    previous TP (between a TP start and the next SRV), which HSFETCH can no longer ask for; only
    clients whose consensus lags a period behind use it. ``INCOMPLETE``: some HSDirs did not
    answer in time (checked again later).
    """

    NOT_STARTED = "not_started"
    WAITING_FOR_TIME_PERIOD = "waiting_for_time_period"
    PAST_TIME_PERIOD = "past_time_period"
    IN_PROGRESS = "in_progress"
    VERIFIED = "verified"
    MISMATCH = "mismatch"
    INCOMPLETE = "incomplete"


class FetchOutcome(enum.Enum):
    MATCH = "match"
    MISMATCH = "mismatch"
    NOT_FOUND = "not_found"
    UNDECODABLE = "undecodable"
    TIMEOUT = "timeout"


@dataclass(frozen=True, slots=True)
class HsDirFetchResult:
    """One HSDir's answer to our HSFETCH of one descriptor."""

    hsdir_fingerprint: str
    outcome: FetchOutcome
    revision_counter: int | None = None
    missing: int = 0
    unexpected: int = 0
    detail: str = ""


@dataclass(frozen=True, slots=True)
class DescriptorStatus:
    """One published descriptor (``label`` "first" or "second")."""

    label: str
    time_period: int
    time_period_length_min: int
    srv_is_disaster: bool
    blinded_key_b64: str
    revision_counter: int
    size_bytes: int
    intro_point_count: int
    hsdirs: tuple[str, ...]
    uploads: tuple[HsDirUpload, ...]
    uploaded_count: int
    first_uploaded_at_mono: float | None
    all_uploaded_at_mono: float | None
    verification: VerificationState
    verification_results: tuple[HsDirFetchResult, ...]
    verified_at_mono: float | None


@dataclass(frozen=True, slots=True)
class PublishRecord:
    """One publish (both descriptors), kept in a short history."""

    number: int
    reasons: tuple[str, ...]
    published_at_wall: float
    published_at_mono: float
    per_node: Mapping[str, int]
    intro_point_auth_keys_b64: frozenset[str]
    descriptors: tuple[DescriptorStatus, ...]


@dataclass(frozen=True, slots=True)
class PublisherStatus:
    """Snapshot of the publisher (``last`` is the most recent publish, ``None`` before the
    first)."""

    last: PublishRecord | None
    publishes: int
    selected_per_node: Mapping[str, tuple[str, ...]]
    nodes_without_intro_points: tuple[str, ...]
    left_out_intro_points: int
    flow_control: str | None
    next_periodic_in_s: float | None
    waiting_for: str | None
    last_error: str | None
