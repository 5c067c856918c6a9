"""One node's configuration: a TOML file, validated in full before anything starts.

Every problem is collected (not just the first) with its dotted key path and a fix, so
``onionfleet config check FILE`` can print them all. Unknown keys are errors: a typo must never
silently fall back to a default. Secrets (the cluster token) may be given inline or, better, as
``*_file`` paths; they are held in :class:`Secret`, whose ``repr`` hides them.

Sections: ``[node] [master] [tor] [[targets]] (or [target]) [proxy] [health] [cluster]
[wireguard] [publish] [metrics] [status] [logging]``. docs/configuration.md is the reference.
"""

from __future__ import annotations

import ipaddress
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from onionfleet.errors import ConfigError

__all__ = [
    "ClusterConfig",
    "ConfigProblem",
    "ConfigProblems",
    "Endpoint",
    "HealthConfig",
    "LoggingConfig",
    "MasterConfig",
    "MetricsConfig",
    "NodeConfig",
    "NodeSection",
    "ProxyConfig",
    "PublishConfig",
    "Secret",
    "StatusConfig",
    "TargetConfig",
    "TorConfig",
    "WireGuardConfig",
    "check_config",
    "load_config",
    "parse_config",
]

T = TypeVar("T")

MAX_INTRO_POINTS: Final = 20  # rend-spec-v3 / tor HS_CONFIG_V3_MAX_INTRO_POINTS
_NODE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$")
_ONION_V3 = re.compile(r"^[a-z2-7]{56}\.onion$")


# --------------------------------------------------------------------------------------------
# Values


class Secret:
    """A secret string (cluster token). Its ``repr``/``str`` never show the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(<hidden>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where to listen or connect: ``host:port`` on TCP, or a unix socket path."""

    host: str | None = None
    port: int | None = None
    unix_path: Path | None = None

    def __str__(self) -> str:
        if self.unix_path is not None:
            return f"unix:{self.unix_path}"
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        if self.unix_path is not None:
            return True
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host or "").is_loopback
        except ValueError:
            return False


@dataclass(frozen=True, slots=True)
class NodeSection:
    id: str
    data_dir: Path
    priority: int


@dataclass(frozen=True, slots=True)
class MasterConfig:
    """The master onion key, in tor's HiddenServiceDir format (``hs_ed25519_secret_key``)."""

    key_dir: Path


@dataclass(frozen=True, slots=True)
class TorConfig:
    mode: Literal["managed", "attach"]
    binary: str
    control: Endpoint | None
    cookie_file: Path | None
    password: Secret | None
    socks: Endpoint | None
    num_intro_points: int
    pow_defenses: bool
    intro_dos_defense: bool
    extra_torrc: tuple[str, ...]
    bootstrap_timeout_s: float


@dataclass(frozen=True, slots=True)
class TargetConfig:
    """A target: an onion reached through tor's SOCKS port, or a plain TCP host."""

    onion_address: str | None
    host: str | None
    port: int
    weight: int

    @property
    def label(self) -> str:
        return f"{self.onion_address or self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    listen: Endpoint
    virtual_port: int
    max_connections: int
    connect_timeout_s: float
    idle_timeout_s: float
    proxy_protocol: Literal["none", "v1", "v2"]


@dataclass(frozen=True, slots=True)
class HealthConfig:
    path: str
    expected_status: tuple[int, ...]
    body_regex: str | None
    interval_s: float
    timeout_s: float
    rise: int
    fall: int
    new_circuit_per_probe: bool


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    token: Secret | None
    listen: Endpoint | None
    advertise: str | None
    peers: tuple[str, ...]
    transport: Literal["tcp", "tor"]
    heartbeat_interval_s: float
    dead_after: int
    lease_grace_s: float
    max_clock_skew_s: float

    @property
    def enabled(self) -> bool:
        return self.token is not None


@dataclass(frozen=True, slots=True)
class WireGuardConfig:
    manage: bool
    interface: str
    address: str | None
    listen_port: int
    private_key_file: Path | None
    endpoint: str | None = None


@dataclass(frozen=True, slots=True)
class PublishConfig:
    max_intro_points: int
    republish_min_s: float
    republish_max_s: float
    single_node_grace_s: float
    verify: bool


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    listen: Endpoint | None


@dataclass(frozen=True, slots=True)
class StatusConfig:
    listen: Endpoint


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"]
    format: Literal["text", "json"]


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """A whole node's configuration, validated."""

    source: Path | None
    node: NodeSection
    master: MasterConfig
    tor: TorConfig
    targets: tuple[TargetConfig, ...]
    proxy: ProxyConfig
    health: HealthConfig
    cluster: ClusterConfig
    wireguard: WireGuardConfig
    publish: PublishConfig
    metrics: MetricsConfig
    status: StatusConfig
    logging: LoggingConfig


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with a config file: where, what, and how to fix it."""

    key_path: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.key_path}: {self.message} (fix: {self.fix})"


class ConfigProblems(ConfigError):
    """A config file has one or more problems; ``problems`` lists each."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"{len(problems)} {noun}:\n{lines}", source=source)


# --------------------------------------------------------------------------------------------
# Reading


_MISSING: Final = object()


@dataclass
class _Reader:
    """Reads one TOML table, remembering which keys were used and every problem found."""

    table: Mapping[str, Any]
    path: str
    problems: list[ConfigProblem]
    base_dir: Path
    used: set[str] = field(default_factory=set)

    def _key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def problem(self, key: str, message: str, fix: str) -> None:
        self.problems.append(ConfigProblem(self._key(key), message, fix))

    def _get(self, key: str, default: Any, fix: str) -> Any:
        self.used.add(key)
        if key in self.table:
            return self.table[key]
        if default is _MISSING:
            self.problem(key, "is required but missing", fix)
        return default

    def _typed(
        self, key: str, default: Any, kind: type | tuple[type, ...], what: str, fix: str
    ) -> Any:
        if key not in self.table:  # defaults are trusted; only what the file says is checked
            return self._get(key, default, fix)
        value = self._get(key, default, fix)
        # bool is an int in Python; a TOML `true` is never a number here.
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            self.problem(key, f"must be {what}, got a boolean", fix)
            return _MISSING
        if not isinstance(value, kind):
            self.problem(key, f"must be {what}, got {type(value).__name__} {value!r}", fix)
            return _MISSING
        return value

    def string(
        self, key: str, default: Any = _MISSING, *, fix: str, choices: tuple[str, ...] = ()
    ) -> Any:
        value = self._typed(key, default, str, "a string", fix)
        if isinstance(value, str) and choices and value not in choices:
            self.problem(key, f"must be one of {', '.join(choices)}; got {value!r}", fix)
            return _MISSING
        return value

    def integer(self, key: str, default: Any = _MISSING, *, fix: str, low: int, high: int) -> Any:
        value = self._typed(key, default, int, "a whole number", fix)
        if isinstance(value, int) and not low <= value <= high:
            self.problem(key, f"must be between {low} and {high}; got {value}", fix)
            return _MISSING
        return value

    def number(
        self, key: str, default: Any = _MISSING, *, fix: str, low: float, high: float
    ) -> Any:
        value = self._typed(key, default, (int, float), "a number", fix)
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not low <= float(value) <= high:
                self.problem(key, f"must be between {low:g} and {high:g}; got {value}", fix)
                return _MISSING
            return float(value)
        return value

    def boolean(self, key: str, default: Any = _MISSING, *, fix: str) -> Any:
        return self._typed(key, default, bool, "true or false", fix)

    def path_value(self, key: str, default: Any = _MISSING, *, fix: str) -> Any:
        value = self.string(key, default, fix=fix)
        if isinstance(value, str):
            if not value:
                self.problem(key, "must not be empty", fix)
                return _MISSING
            p = Path(value).expanduser()
            return p if p.is_absolute() else (self.base_dir / p)
        return value

    def string_list(self, key: str, default: Any = _MISSING, *, fix: str) -> Any:
        value = self._typed(key, default, list, "a list of strings", fix)
        if isinstance(value, list):
            if not all(isinstance(v, str) for v in value):
                self.problem(key, "must be a list of strings", fix)
                return _MISSING
            return tuple(value)
        return value

    def endpoint(self, key: str, default: Any = _MISSING, *, fix: str) -> Any:
        value = self.string(key, default, fix=fix)
        if isinstance(value, str):
            parsed = parse_endpoint(value)
            if parsed is None:
                self.problem(
                    key, f"is not host:port, [ipv6]:port or unix:/path; got {value!r}", fix
                )
                return _MISSING
            return parsed
        return value

    def secret(self, key: str, *, fix: str, required: bool) -> Any:
        """``key`` inline or ``key_file`` naming a file (0600) whose content is the secret."""
        inline = self._typed(key, None, str, "a string", fix)
        file_key = f"{key}_file"
        file_value = self.path_value(file_key, None, fix=fix)
        if inline is not None and file_value is not None:
            self.problem(key, f"is given twice, inline and as {file_key}", f"keep only {file_key}")
            return _MISSING
        if isinstance(file_value, Path):
            return self._read_secret_file(file_key, file_value, fix)
        if isinstance(inline, str):
            if not inline.strip():
                self.problem(key, "must not be empty", fix)
                return _MISSING
            return Secret(inline.strip())
        if required and inline is None and file_value is None:
            self.problem(file_key, "is required but missing", fix)
            return _MISSING
        return None if inline is None and file_value is None else _MISSING

    def _read_secret_file(self, key: str, path: Path, fix: str) -> Any:
        try:
            st = path.stat()
        except OSError as exc:
            self.problem(key, f"cannot read {path}: {exc.strerror}", fix)
            return _MISSING
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            self.problem(
                key,
                f"{path} is readable or writable by group/others (mode {st.st_mode & 0o777:03o})",
                f"chmod 600 {path}",
            )
            return _MISSING
        try:
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            self.problem(key, f"cannot read {path}: {exc}", fix)
            return _MISSING
        if not text:
            self.problem(key, f"{path} is empty", fix)
            return _MISSING
        return Secret(text)

    def section(self, key: str, *, fix: str) -> _Reader:
        self.used.add(key)
        value = self.table.get(key, {})
        if not isinstance(value, Mapping):
            self.problem(key, f"must be a table [{self._key(key)}]", fix)
            value = {}
        return _Reader(value, self._key(key), self.problems, self.base_dir)

    def finish(self) -> None:
        for key in self.table:
            if key not in self.used:
                self.problem(
                    key,
                    "is not a known setting",
                    "remove it or check its spelling against docs/configuration.md",
                )


def parse_endpoint(text: str) -> Endpoint | None:
    """``host:port``, ``[v6]:port`` or ``unix:/abs/path``; ``None`` if it is neither."""
    if text.startswith("unix:"):
        path = Path(text[5:])
        return Endpoint(unix_path=path) if path.is_absolute() else None
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([A-Za-z0-9.-]+):(\d{1,5})", text)
    if not m:
        return None
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4))
    if not 1 <= port <= 65535:
        return None
    return Endpoint(host=host, port=port)


def _ok(*values: Any) -> bool:
    return all(v is not _MISSING for v in values)


# --------------------------------------------------------------------------------------------
# Sections


def _read_node(r: _Reader) -> NodeSection | None:
    node_id = r.string("id", fix='give this node a unique name, e.g. id = "node-a"')
    if isinstance(node_id, str) and not _NODE_ID.match(node_id):
        r.problem(
            "id", f"{node_id!r} is not a valid node id", "use letters, digits, '.', '-' (max 63)"
        )
        node_id = _MISSING
    data_dir = r.path_value("data_dir", fix='set data_dir = "/var/lib/onionfleet"')
    priority = r.integer(
        "priority", 100, fix="lower is preferred as publisher; 0..1000", low=0, high=1000
    )
    r.finish()
    return NodeSection(node_id, data_dir, priority) if _ok(node_id, data_dir, priority) else None


def _read_master(r: _Reader) -> MasterConfig | None:
    key_dir = r.path_value(
        "key_dir",
        fix="point it at the directory holding hs_ed25519_secret_key (onionfleet keys generate)",
    )
    r.finish()
    return MasterConfig(key_dir) if _ok(key_dir) else None


def _read_tor(r: _Reader) -> TorConfig | None:
    mode = r.string(
        "mode",
        "managed",
        fix='"managed" (onionfleet runs tor) or "attach"',
        choices=("managed", "attach"),
    )
    binary = r.string("binary", "tor", fix="path of the tor executable")
    control = r.endpoint(
        "control", None, fix='e.g. control = "unix:/run/tor/control" or "127.0.0.1:9051"'
    )
    cookie = r.path_value("cookie_file", None, fix="path of tor's control_auth_cookie")
    password = r.secret(
        "control_password", fix="the control-port password (HashedControlPassword)", required=False
    )
    socks = r.endpoint("socks", None, fix='e.g. socks = "127.0.0.1:9050"')
    intros = r.integer(
        "num_intro_points", 3, fix="tor's HiddenServiceNumIntroductionPoints: 1..20", low=1, high=20
    )
    pow_on = r.boolean("pow_defenses", False, fix="true or false")
    dos_on = r.boolean("intro_dos_defense", False, fix="true or false")
    extra = r.string_list(
        "extra_torrc", (), fix='a list of torrc lines, e.g. ["Log notice stderr"]'
    )
    boot = r.number("bootstrap_timeout_s", 300.0, fix="seconds; 10..3600", low=10, high=3600)
    if mode == "attach":
        if control is None:
            r.problem(
                "control",
                'is required when mode = "attach"',
                'set control = "unix:/run/tor/control"',
            )
            control = _MISSING
        if socks is None:
            r.problem("socks", 'is required when mode = "attach"', 'set socks = "127.0.0.1:9050"')
            socks = _MISSING
    elif mode == "managed" and (cookie is not None or password is not None):
        r.problem(
            "cookie_file" if cookie is not None else "control_password",
            'only applies when mode = "attach"',
            "remove it; a managed tor uses its own cookie",
        )
        cookie = _MISSING
    r.finish()
    if not _ok(mode, binary, control, cookie, password, socks, intros, pow_on, dos_on, extra, boot):
        return None
    return TorConfig(
        mode, binary, control, cookie, password, socks, intros, pow_on, dos_on, extra, boot
    )


def _read_target(r: _Reader) -> TargetConfig | None:
    onion = r.string("onion_address", None, fix="a v3 address, 56 base32 characters + .onion")
    host = r.string("host", None, fix='a host name or address, e.g. host = "10.8.0.5"')
    port = r.integer("port", fix="the target's port, 1..65535", low=1, high=65535)
    weight = r.integer("weight", 1, fix="1..1000; more weight, more connections", low=1, high=1000)
    if onion is None and host is None:
        r.problem("onion_address", "a target needs onion_address or host", "set one of them")
        onion = _MISSING
    elif isinstance(onion, str) and isinstance(host, str):
        r.problem("host", "a target has either onion_address or host, not both", "keep one")
        host = _MISSING
    elif isinstance(onion, str) and not _ONION_V3.match(onion.lower()):
        r.problem(
            "onion_address", f"{onion!r} is not a v3 onion address", "56 base32 characters + .onion"
        )
        onion = _MISSING
    r.finish()
    if not _ok(onion, host, port, weight):
        return None
    return TargetConfig(onion.lower() if isinstance(onion, str) else None, host, port, weight)


def _read_proxy(r: _Reader) -> ProxyConfig | None:
    listen = r.endpoint(
        "listen", fix='where tor\'s HiddenServicePort points, e.g. listen = "127.0.0.1:8080"'
    )
    vport = r.integer(
        "virtual_port", 80, fix="the port clients connect to on the .onion", low=1, high=65535
    )
    max_conn = r.integer("max_connections", 4096, fix="1..1000000", low=1, high=1_000_000)
    conn_t = r.number("connect_timeout_s", 30.0, fix="seconds; 1..300", low=1, high=300)
    idle_t = r.number("idle_timeout_s", 300.0, fix="seconds; 1..86400", low=1, high=86400)
    pp = r.string(
        "proxy_protocol", "none", fix='"none", "v1" or "v2"', choices=("none", "v1", "v2")
    )
    if isinstance(listen, Endpoint) and not listen.is_loopback:
        r.problem(
            "listen",
            f"{listen} is not a loopback address",
            "listen on 127.0.0.1 or a unix socket: only tor connects here",
        )
        listen = _MISSING
    r.finish()
    if not _ok(listen, vport, max_conn, conn_t, idle_t, pp):
        return None
    return ProxyConfig(listen, vport, max_conn, conn_t, idle_t, pp)


def _read_health(r: _Reader) -> HealthConfig | None:
    path = r.string("path", "/", fix='an HTTP path starting with "/"')
    if isinstance(path, str) and not path.startswith("/"):
        r.problem("path", f"{path!r} does not start with '/'", 'e.g. path = "/health"')
        path = _MISSING
    statuses = r._typed(
        "expected_status", [200], list, "a list of HTTP status codes", "e.g. [200, 204]"
    )
    valid_codes = isinstance(statuses, list) and all(
        isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 599 for s in statuses
    )
    if isinstance(statuses, list) and (not statuses or not valid_codes):
        r.problem(
            "expected_status",
            "must list HTTP status codes 100..599",
            "e.g. expected_status = [200]",
        )
        statuses = _MISSING
    body = r.string("body_regex", None, fix="a Python regular expression")
    if isinstance(body, str):
        try:
            re.compile(body)
        except re.error as exc:
            r.problem("body_regex", f"is not a valid regular expression: {exc}", "fix the pattern")
            body = _MISSING
    interval = r.number("interval_s", 10.0, fix="seconds; 1..3600", low=1, high=3600)
    timeout = r.number("timeout_s", 30.0, fix="seconds; 1..300", low=1, high=300)
    rise = r.integer("rise", 2, fix="1..100 successes before healthy", low=1, high=100)
    fall = r.integer("fall", 3, fix="1..100 failures before unhealthy", low=1, high=100)
    newcirc = r.boolean("new_circuit_per_probe", True, fix="true or false")
    r.finish()
    if not _ok(path, statuses, body, interval, timeout, rise, fall, newcirc):
        return None
    return HealthConfig(path, tuple(statuses), body, interval, timeout, rise, fall, newcirc)


def _read_cluster(r: _Reader) -> ClusterConfig | None:
    token = r.secret(
        "cluster_token",
        fix="set cluster_token_file to a 0600 file made by onionfleet init",
        required=False,
    )
    listen = r.endpoint("listen", None, fix='e.g. listen = "10.77.0.1:7420" (a WireGuard address)')
    advertise = r.string(
        "advertise", None, fix="the host:port (or .onion:port) peers dial to reach this node"
    )
    peers = r.string_list("peers", (), fix='e.g. peers = ["10.77.0.2:7420"]')
    transport = r.string(
        "transport", "tcp", fix='"tcp" (WireGuard/private network) or "tor"', choices=("tcp", "tor")
    )
    hb = r.number("heartbeat_interval_s", 2.0, fix="seconds; 0.1..60", low=0.1, high=60)
    dead = r.integer(
        "dead_after", 3, fix="missed heartbeats before a peer is dead; 2..100", low=2, high=100
    )
    grace = r.number("lease_grace_s", 2.0, fix="seconds; 0..600", low=0, high=600)
    skew = r.number(
        "max_clock_skew_s",
        30.0,
        fix="seconds; 1..3600 — and run NTP on every node",
        low=1,
        high=3600,
    )
    if isinstance(peers, tuple):
        for i, peer in enumerate(peers):
            if parse_endpoint(peer) is None:
                r.problem(f"peers[{i}]", f"{peer!r} is not host:port", 'e.g. "10.77.0.2:7420"')
                peers = _MISSING
    if token is None and (peers or listen is not None):
        r.problem(
            "cluster_token_file",
            "peers or listen are set but there is no cluster token",
            "set cluster_token_file (made by onionfleet init)",
        )
        token = _MISSING
    if token is not None and listen is None:
        r.problem(
            "listen",
            "is required when the node is part of a cluster",
            'e.g. listen = "10.77.0.1:7420"',
        )
        listen = _MISSING
    r.finish()
    if not _ok(token, listen, advertise, peers, transport, hb, dead, grace, skew):
        return None
    return ClusterConfig(token, listen, advertise, peers, transport, hb, dead, grace, skew)


def _read_wireguard(r: _Reader) -> WireGuardConfig | None:
    manage = r.boolean("manage", False, fix="true to let onionfleet add WireGuard peers")
    iface = r.string("interface", "ofwg0", fix="an interface name, max 15 characters")
    if isinstance(iface, str) and not re.fullmatch(r"[A-Za-z0-9_.-]{1,15}", iface):
        r.problem(
            "interface", f"{iface!r} is not a valid interface name", "max 15 letters/digits/._-"
        )
        iface = _MISSING
    address = r.string(
        "address", None, fix='this node\'s tunnel address with prefix, e.g. "10.77.0.1/24"'
    )
    if isinstance(address, str):
        try:
            ipaddress.ip_interface(address)
        except ValueError:
            r.problem(
                "address", f"{address!r} is not an address with prefix", 'e.g. "10.77.0.1/24"'
            )
            address = _MISSING
    port = r.integer("listen_port", 51820, fix="1..65535", low=1, high=65535)
    endpoint = r.string(
        "endpoint", None, fix="this node's public WireGuard UDP host:port that peers dial"
    )
    if isinstance(endpoint, str) and parse_endpoint(endpoint) is None:
        r.problem("endpoint", f"{endpoint!r} is not host:port", 'e.g. "203.0.113.7:51820"')
        endpoint = _MISSING
    keyfile = r.path_value(
        "private_key_file", None, fix="made by onionfleet init (wg genkey), mode 0600"
    )
    if manage is True and (address is None or keyfile is None):
        r.problem(
            "address" if address is None else "private_key_file",
            "is required when manage = true",
            "set it (onionfleet init writes both)",
        )
        manage = _MISSING
    r.finish()
    if not _ok(manage, iface, address, port, keyfile, endpoint):
        return None
    return WireGuardConfig(manage, iface, address, port, keyfile, endpoint)


def _read_publish(r: _Reader) -> PublishConfig | None:
    maxip = r.integer(
        "max_intro_points",
        MAX_INTRO_POINTS,
        fix="1..20 (clients reject more than 20)",
        low=1,
        high=MAX_INTRO_POINTS,
    )
    rmin = r.number("republish_min_s", 3600.0, fix="seconds; 60..43200", low=60, high=43200)
    rmax = r.number("republish_max_s", 7200.0, fix="seconds; 60..43200", low=60, high=43200)
    grace = r.number(
        "single_node_grace_s",
        60.0,
        fix="seconds alone before tor publishes by itself again; 0..3600",
        low=0,
        high=3600,
    )
    verify = r.boolean("verify", True, fix="true or false")
    if isinstance(rmin, float) and isinstance(rmax, float) and rmin > rmax:
        r.problem(
            "republish_max_s",
            f"({rmax:g}) is below republish_min_s ({rmin:g})",
            "make republish_max_s >= republish_min_s",
        )
        rmax = _MISSING
    r.finish()
    if not _ok(maxip, rmin, rmax, grace, verify):
        return None
    return PublishConfig(maxip, rmin, rmax, grace, verify)


def _read_metrics(r: _Reader) -> MetricsConfig | None:
    listen = r.endpoint("listen", None, fix='e.g. listen = "127.0.0.1:9935"')
    if isinstance(listen, Endpoint) and not listen.is_loopback:
        r.problem(
            "listen",
            f"{listen} is not loopback",
            "serve metrics on 127.0.0.1 (or a unix socket) and scrape through a tunnel or proxy",
        )
        listen = _MISSING
    r.finish()
    return MetricsConfig(listen) if _ok(listen) else None


def _read_status(r: _Reader, data_dir: Any) -> StatusConfig | None:
    # Default: <data_dir>/status.sock. Without a valid data_dir, [node] already has a problem.
    default = Endpoint(unix_path=data_dir / "status.sock") if isinstance(data_dir, Path) else None
    listen = r.endpoint("listen", default, fix='e.g. listen = "unix:/run/onionfleet/status.sock"')
    if isinstance(listen, Endpoint) and not listen.is_loopback:
        r.problem(
            "listen",
            f"{listen} is not loopback",
            "status is local only: use 127.0.0.1 or a unix socket",
        )
        listen = _MISSING
    r.finish()
    return StatusConfig(listen) if isinstance(listen, Endpoint) else None


def _read_logging(r: _Reader) -> LoggingConfig | None:
    level = r.string(
        "level",
        "INFO",
        fix="DEBUG, INFO, WARNING or ERROR",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
    )
    fmt = r.string("format", "text", fix='"text" or "json"', choices=("text", "json"))
    r.finish()
    return LoggingConfig(level, fmt) if _ok(level, fmt) else None


def _read_targets(root: _Reader) -> tuple[TargetConfig, ...] | None:
    fix = "add [[targets]] with onion_address (or host) and port"
    if "target" in root.table and "targets" in root.table:
        root.problem("target", "both [target] and [[targets]] are given", "use [[targets]] only")
    raw: Any
    if "targets" in root.table:
        root.used.add("targets")
        raw = root.table["targets"]
        key = "targets"
        if not isinstance(raw, list) or not all(isinstance(t, Mapping) for t in raw):
            root.problem("targets", "must be an array of tables [[targets]]", fix)
            return None
    elif "target" in root.table:
        root.used.add("target")
        raw = [root.table["target"]]
        key = "target"
        if not isinstance(raw[0], Mapping):
            root.problem("target", "must be a table [target]", fix)
            return None
    else:
        root.problem("targets", "is required but missing", fix)
        return None
    if not raw:
        root.problem("targets", "is empty", fix)
        return None
    out: list[TargetConfig] = []
    for i, table in enumerate(raw):
        path = f"{key}[{i}]" if key == "targets" else key
        t = _read_target(_Reader(table, path, root.problems, root.base_dir))
        if t is not None:
            out.append(t)
    return tuple(out) if len(out) == len(raw) else None


_SECTIONS: Final = (
    "node",
    "master",
    "tor",
    "proxy",
    "health",
    "cluster",
    "wireguard",
    "publish",
    "metrics",
    "status",
    "logging",
)


def _build(
    table: Mapping[str, Any], source: Path | None, problems: list[ConfigProblem]
) -> NodeConfig | None:
    base = source.parent if source is not None else Path.cwd()
    root = _Reader(table, "", problems, base)
    s = {name: root.section(name, fix=f"write it as a table: [{name}]") for name in _SECTIONS}
    node = _read_node(s["node"])
    master = _read_master(s["master"])
    tor = _read_tor(s["tor"])
    targets = _read_targets(root)
    proxy = _read_proxy(s["proxy"])
    health = _read_health(s["health"])
    cluster = _read_cluster(s["cluster"])
    wireguard = _read_wireguard(s["wireguard"])
    publish = _read_publish(s["publish"])
    metrics = _read_metrics(s["metrics"])
    status = _read_status(s["status"], node.data_dir if node else None)
    logging_cfg = _read_logging(s["logging"])
    root.finish()
    if (
        problems
        or node is None
        or master is None
        or tor is None
        or targets is None
        or proxy is None
        or health is None
        or cluster is None
        or wireguard is None
        or publish is None
        or metrics is None
        or status is None
        or logging_cfg is None
    ):
        return None
    return NodeConfig(
        source,
        node,
        master,
        tor,
        targets,
        proxy,
        health,
        cluster,
        wireguard,
        publish,
        metrics,
        status,
        logging_cfg,
    )


def parse_config(text: str, *, source: Path | None = None) -> NodeConfig:
    """Parse and validate TOML text; raise :class:`ConfigProblems` listing every problem."""
    where = str(source) if source is not None else "<config>"
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigProblems(
            where,
            [
                ConfigProblem(
                    "(file)", f"is not valid TOML: {exc}", "fix the syntax at the line shown"
                )
            ],
        ) from exc
    problems: list[ConfigProblem] = []
    config = _build(table, source, problems)
    if config is None:
        if not problems:  # pragma: no cover - every None path records a problem
            problems.append(ConfigProblem("(file)", "is incomplete", "see docs/configuration.md"))
        raise ConfigProblems(where, problems)
    return config


def load_config(path: Path) -> NodeConfig:
    """Read and validate a config file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file: {exc.strerror}",
            source=str(path),
            fix="check the path and its permissions",
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            "config file is not UTF-8 text", source=str(path), fix="save it as UTF-8"
        ) from exc
    return parse_config(text, source=path)


def check_config(path: Path) -> list[ConfigProblem]:
    """Every problem of a config file; empty if it is valid."""
    try:
        load_config(path)
    except ConfigProblems as exc:
        return list(exc.problems)
    except ConfigError as exc:
        return [ConfigProblem("(file)", str(exc), "check the path")]
    return []
