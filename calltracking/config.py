"""Configuration: defaults < INI file < environment < command line.

This is the only module that reads ``config.ini``. Every value is typed and
validated here; an error names the file, the section and the key.

The file is ``/etc/calltracking/config.ini`` unless ``CALLTRACKING_CONFIG``
points elsewhere. A single value can be overridden with
``CALLTRACKING_<SECTION>_<KEY>`` (upper case), e.g.
``CALLTRACKING_DATABASE_URL``.
"""
from __future__ import annotations

import configparser
import dataclasses
import ipaddress
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from calltracking import settings_rules, sms

DEFAULT_CONFIG_PATH = "/etc/calltracking/config.ini"
ENV_CONFIG = "CALLTRACKING_CONFIG"
ENV_PREFIX = "CALLTRACKING_"

#: The placeholder shipped in config.example.ini. The web UI refuses it.
EXAMPLE_SECRET_KEY = "CHANGE-ME-run-install.sh-or-generate-one"


class ConfigError(ValueError):
    """A configuration value is missing or invalid."""

    def __init__(self, source: str, section: str, key: str, message: str):
        self.source, self.section, self.key = source, section, key
        super().__init__(f"{source}: [{section}] {key}: {message}")


# ----------------------------------------------------------------- converters
def _str(v: str) -> str:
    return v.strip()


def _bool(v: str) -> bool:
    s = v.strip().lower()
    if s in ("1", "yes", "true", "on"):
        return True
    if s in ("0", "no", "false", "off", ""):
        return False
    raise ValueError(f"expected yes/no, got {v!r}")


def _int(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    def conv(v: str) -> int:
        try:
            n = int(v.strip())
        except ValueError:
            raise ValueError(f"expected an integer, got {v!r}") from None
        if lo is not None and n < lo:
            raise ValueError(f"must be >= {lo}, got {n}")
        if hi is not None and n > hi:
            raise ValueError(f"must be <= {hi}, got {n}")
        return n

    return conv


def _float(lo: float | None = None) -> Callable[[str], float]:
    def conv(v: str) -> float:
        try:
            n = float(v.strip())
        except ValueError:
            raise ValueError(f"expected a number, got {v!r}") from None
        if lo is not None and n < lo:
            raise ValueError(f"must be >= {lo}, got {n}")
        return n

    return conv


def _tz(v: str) -> str:
    return settings_rules.timezone(v.strip())


def _hostport(v: str) -> tuple[str, int]:
    s = v.strip()
    m = re.fullmatch(r"\[?([^\]]*?)\]?:(\d{1,5})", s)
    if not m:
        raise ValueError(f"expected HOST:PORT, got {v!r}")
    port = int(m.group(2))
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range in {v!r}")
    return m.group(1) or "127.0.0.1", port


def _choice(*options: str) -> Callable[[str], str]:
    def conv(v: str) -> str:
        s = v.strip().lower()
        if s not in options:
            raise ValueError(f"expected one of {', '.join(options)}, got {v!r}")
        return s

    return conv


def _region(v: str) -> str:
    s = v.strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", s):
        raise ValueError(f"expected a two-letter ISO region code such as RU, got {v!r}")
    return s


def _ident(v: str) -> str:
    s = v.strip()
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", s):
        raise ValueError(f"expected 1-64 letters, digits, '_', '.', '-', got {v!r}")
    return s


def _contexts(v: str) -> tuple:
    """``from-internal, sales-out`` -> ("from-internal", "sales-out"); empty -> ()."""
    out = []
    for part in v.split(","):
        name = part.strip()
        if not name:
            continue
        if not re.fullmatch(r"[A-Za-z0-9_.+-]{1,80}", name):
            raise ValueError(f"not a dialplan context name: {name!r} (expected a comma-separated list)")
        if name not in out:
            out.append(name)
    return tuple(out)


def _networks(v: str) -> tuple:
    """``127.0.0.1/8, ::1`` -> (IPv4Network('127.0.0.0/8'), IPv6Network('::1/128')).

    Comma-separated IPv4/IPv6 addresses (one host each) and CIDR networks (host bits may be
    set: ``127.0.0.1/8`` is ``127.0.0.0/8``). Host names are refused (no DNS at accept time);
    an empty list is refused, since no peer could connect (``0.0.0.0/0, ::/0`` admits any).
    """
    out = []
    for part in v.split(","):
        s = part.strip()
        if not s:
            continue
        try:
            net = ipaddress.ip_network(s, strict=False)
        except ValueError:
            raise ValueError(f"not an IP address or network: {s!r} (expected a comma-separated "
                             "list such as 127.0.0.1/8, ::1, 192.0.2.10)") from None
        if net not in out:
            out.append(net)
    if not out:
        raise ValueError("is empty: no peer could connect (0.0.0.0/0, ::/0 admits any address)")
    return tuple(out)


def _proxies(v: str) -> tuple:
    """Empty -> (); else :func:`_networks`. A ``/0`` network is refused: it would believe the
    forwarded address of any peer, so every client could pick its own address."""
    if not v.strip():
        return ()
    nets = _networks(v)
    if any(n.prefixlen == 0 for n in nets):
        raise ValueError("a /0 network would trust every peer's X-Forwarded-For; list the proxies' "
                         "own addresses (e.g. 127.0.0.1, ::1)")
    return nets


def _dburl(v: str) -> str:
    s = v.strip()
    if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", s):
        raise ValueError(f"expected a sqlite:/// or postgresql:// URL, got {v!r}")
    return s


# ------------------------------------------------------------------- sections
def opt(default: Any, conv: Callable[[str], Any], doc: str = "", secret: bool = False):
    return field(default=default, metadata={"conv": conv, "doc": doc, "secret": secret})


def _currency(v: str) -> str:
    s = v.strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", s):
        raise ValueError(f"expected a three-letter ISO 4217 currency code such as RUB, got {v!r}")
    return s


@dataclass(frozen=True)
class GeneralConfig:
    pbx_id: str = opt("pbx1", _ident, "Name of this Asterisk server; calls are unique by (pbx_id, Linkedid)")
    timezone: str = opt("UTC", _tz, "Default time zone of new projects (IANA name)")
    default_queue: str = opt("", _str, "Queue used when nothing matches and the project has none")
    default_region: str = opt("RU", _region, "Region used to read national phone numbers")
    first_call_window_days: int = opt(0, _int(0), "A caller is 'repeat' if they called within N days (0 = ever)")
    language: str = opt("en", _choice(*settings_rules.LANGUAGES), "Default UI language")


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = opt("sqlite:////var/lib/calltracking/calltracking.db", _dburl, "SQLAlchemy URL")
    busy_timeout_ms: int = opt(5000, _int(0), "SQLite busy timeout")
    pool_size: int = opt(10, _int(1), "PostgreSQL connection pool size")
    echo: bool = opt(False, _bool, "Log every SQL statement")


@dataclass(frozen=True)
class AmiConfig:
    enabled: bool = opt(True, _bool, "Run the AMI listener in `calltracking run`")
    host: str = opt("127.0.0.1", _str)
    port: int = opt(5038, _int(1, 65535))
    username: str = opt("calltracking", _str)
    secret: str = opt("", _str, "Required: the secret of the AMI user", secret=True)
    ping_interval: float = opt(10.0, _float(1.0), "Seconds between keep-alive pings")
    reconnect_max: float = opt(30.0, _float(1.0), "Longest back-off between reconnects (seconds)")
    originate: bool = opt(False, _bool, "Allow click-to-call (needs the 'originate' privilege)")
    queue_log: str = opt("/var/log/asterisk/queue_log", _str, "Asterisk's queue_log, read after a "
                         "reconnect for what happened meanwhile (empty: not read; optional)")


@dataclass(frozen=True)
class AgiConfig:
    listen: tuple = opt(("127.0.0.1", 4573), _hostport, "FastAGI listen address")
    timeout_ms: int = opt(300, _int(10, 60000), "Time budget of every hook")
    callerid_prefix: bool = opt(True, _bool, "Prefix the caller-ID name with the source label")
    promo_retries: int = opt(2, _int(0, 10), "Extra attempts for a wrong promo code")
    processes: int = opt(1, _int(1, 32), "FastAGI server processes sharing the port "
                         "(SO_REUSEPORT; one per CPU core on a busy PBX)")
    write_wait_ms: int = opt(50, _int(0, 60000), "How long a hook waits for its call row to be "
                             "committed before answering anyway (the row is written in the "
                             "background then)")
    mset: bool = opt(True, _bool, "Set the plain CT_* variables with one EXEC MSet instead of one "
                     "SET VARIABLE each (turn off with [compat] res_agi = 1.4 in asterisk.conf)")
    max_connections: int = opt(256, _int(1, 65536), "Open FastAGI connections per server process; "
                               "a connection beyond it is closed at once (Asterisk then runs "
                               "the dialplan's defaults for that call)")
    allowed_peers: tuple = opt(_networks("127.0.0.1/8, ::1"), _networks,
                               "Addresses and networks (CIDR) allowed to connect to FastAGI; "
                               "others are closed at once")


@dataclass(frozen=True)
class WebConfig:
    listen: tuple = opt(("127.0.0.1", 8080), _hostport, "Web UI listen address")
    secret_key: str = opt("", _str, "Required: random string used to sign sessions", secret=True)
    public_url: str = opt("", _str, "URL under which browsers reach the UI (for links, dni.js)")
    threads: int = opt(8, _int(1, 256), "WSGI worker threads")
    secure_cookies: bool = opt(True, _bool, "Mark session cookies Secure (needs HTTPS)")
    trusted_proxies: tuple = opt((), _proxies, "Reverse proxies (addresses, CIDR networks) whose "
                                 "X-Forwarded-For and X-Forwarded-Proto are believed, by the web UI "
                                 "and the DNI server; empty: none (the peer is the client)")
    currency: str = opt("RUB", _currency, "ISO 4217 code of the money shown in the UI (values, spend)")


def _listen_or_off(v: str):
    """HOST:PORT, or empty: not started."""
    return _hostport(v) if v.strip() else None


@dataclass(frozen=True)
class DniConfig:
    listen: object = opt(("127.0.0.1", 8081), _listen_or_off, "Address of the asyncio server of the public "
                         "DNI endpoints (dni.js, /api/dni/*), started next to the web UI; empty: not started")
    max_holds_per_client: int = opt(4, _int(1, 1_000_000), "Pool numbers one client (an IPv4 address, an "
                                    "IPv6 /64) may hold at once in a pool; beyond it a new visitor gets the "
                                    "fallback number")
    max_holds_per_visitor: int = opt(3, _int(1, 1000), "Numbers one visitor id may hold at once (in "
                                     "different pools of a project)")
    rate_per_minute: int = opt(120, _int(1), "Requests a minute to /api/dni/* per client")
    rate_burst: int = opt(60, _int(1), "Burst of requests above the rate per client")


@dataclass(frozen=True)
class RecordingsConfig:
    dir: str = opt("/var/spool/asterisk/monitor", _str, "Where MixMonitor writes recordings")
    format: str = opt("mp3", _choice("wav", "mp3", "ogg"), "Convert recordings to this format")
    keep_days: int = opt(0, _int(0), "Delete recordings older than N days (0 = keep)")


@dataclass(frozen=True)
class NotifyConfig(sms.SmsSettings):   # the sms_* keys: calltracking/sms/settings.py
    smtp_host: str = opt("", _str)
    smtp_port: int = opt(25, _int(1, 65535))
    smtp_user: str = opt("", _str)
    smtp_password: str = opt("", _str, secret=True)
    smtp_from: str = opt("", _str)
    smtp_starttls: bool = opt(False, _bool)
    webhook_url: str = opt("", _str)
    webhook_template: str = opt("", _str)
    allow_private_targets: bool = opt(False, _bool, "Let webhooks (CRM, SMS/chat, a GA4 endpoint URL) reach "
                                      "loopback, private, link-local and other non-public addresses")


@dataclass(frozen=True)
class AsteriskConfig:
    config_dir: str = opt("/etc/asterisk", _str, "Asterisk's configuration directory")
    agi_bin_dir: str = opt("/var/lib/asterisk/agi-bin", _str, "Asterisk's AGI script directory")
    whisper_dir: str = opt("/var/lib/asterisk/sounds/calltracking", _str, "Operator whispers (read by Asterisk)")
    outbound_contexts: tuple = opt((), _contexts, "Dialplan contexts whose new calls are outbound "
                                   "(comma-separated; operators' phones are detected without it)")


@dataclass(frozen=True)
class LogConfig:
    level: str = opt("info", _choice("debug", "info", "warning", "error"))
    format: str = opt("text", _choice("text", "json"))


SECTIONS: dict[str, type] = {
    "general": GeneralConfig,
    "database": DatabaseConfig,
    "ami": AmiConfig,
    "agi": AgiConfig,
    "web": WebConfig,
    "dni": DniConfig,
    "recordings": RecordingsConfig,
    "notify": NotifyConfig,
    "asterisk": AsteriskConfig,
    "log": LogConfig,
}


@dataclass(frozen=True)
class Config:
    general: GeneralConfig = field(default_factory=GeneralConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    ami: AmiConfig = field(default_factory=AmiConfig)
    agi: AgiConfig = field(default_factory=AgiConfig)
    web: WebConfig = field(default_factory=WebConfig)
    dni: DniConfig = field(default_factory=DniConfig)
    recordings: RecordingsConfig = field(default_factory=RecordingsConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    asterisk: AsteriskConfig = field(default_factory=AsteriskConfig)
    log: LogConfig = field(default_factory=LogConfig)
    #: where values came from, e.g. {"database.url": "/etc/calltracking/config.ini"}
    origins: dict = field(default_factory=dict, compare=False)
    path: str | None = None

    # --- checks that only some services need --------------------------------
    def require_web_secret(self) -> str:
        key = self.web.secret_key
        src = self.origins.get("web.secret_key", "defaults")
        if not key:
            raise ConfigError(src, "web", "secret_key", "is empty; set a long random string "
                              "(install.sh generates one)")
        if key == EXAMPLE_SECRET_KEY or "CHANGE-ME" in key.upper():
            raise ConfigError(src, "web", "secret_key", "is the example value from "
                              "config.example.ini; generate your own, e.g. "
                              "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`")
        if len(key) < 16:
            raise ConfigError(src, "web", "secret_key", "is too short (at least 16 characters)")
        return key

    def require_ami_secret(self) -> str:
        if not self.ami.secret:
            src = self.origins.get("ami.secret", "defaults")
            raise ConfigError(src, "ami", "secret", "is empty; set the secret of the AMI user "
                              "from /etc/asterisk/manager_calltracking.conf")
        return self.ami.secret

    def as_dict(self, hide_secrets: bool = True) -> dict:
        out = {}
        for name in SECTIONS:
            sec = getattr(self, name)
            d = {}
            for f in dataclasses.fields(sec):
                v = getattr(sec, f.name)
                if f.metadata.get("conv") in (_contexts, _networks, _proxies):
                    v = ", ".join(map(str, v))
                elif isinstance(v, tuple):
                    v = f"{v[0]}:{v[1]}"
                if hide_secrets and f.metadata.get("secret") and v:
                    v = "********"
                d[f.name] = v
            out[name] = d
        return out


def _build_section(cls, name: str, raw: Mapping[str, tuple[str, str]]):
    kwargs = {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, (value, source) in raw.items():
        f = fields.get(key)
        if f is None:
            raise ConfigError(source, name, key, f"unknown key (known: {', '.join(sorted(fields))})")
        try:
            kwargs[key] = f.metadata["conv"](value)
        except ValueError as e:
            raise ConfigError(source, name, key, str(e)) from None
    return cls(**kwargs)


def load_config(
    path: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, str] | None = None,
    require_file: bool | None = None,
) -> Config:
    """Load the configuration.

    ``path`` defaults to ``$CALLTRACKING_CONFIG`` or /etc/calltracking/config.ini.
    A missing file is an error when it was named explicitly (argument or
    environment); the default path may be missing (defaults + environment).
    ``overrides`` are ``{"section.key": value}`` from the command line.
    """
    env = os.environ if env is None else env
    explicit = path is not None or ENV_CONFIG in env
    if path is None:
        path = env.get(ENV_CONFIG, DEFAULT_CONFIG_PATH)
    path = str(path)
    if require_file is None:
        require_file = explicit

    raw: dict[str, dict[str, tuple[str, str]]] = {s: {} for s in SECTIONS}
    if os.path.exists(path):
        cp = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";", "#"))
        try:
            with open(path, encoding="utf-8") as fh:
                cp.read_file(fh)
        except configparser.Error as e:
            raise ConfigError(path, "-", "-", f"cannot parse: {e}") from None
        except OSError as e:
            raise ConfigError(path, "-", "-", f"cannot read: {e.strerror}") from None
        for section in cp.sections():
            if section not in SECTIONS:
                raise ConfigError(path, section, "-", f"unknown section (known: {', '.join(SECTIONS)})")
            for key, value in cp.items(section):
                raw[section][key] = (value, path)
    elif require_file:
        raise ConfigError(path, "-", "-", "configuration file not found")

    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_CONFIG:
            continue
        rest = name[len(ENV_PREFIX):].lower()
        for section in SECTIONS:
            if rest.startswith(section + "_"):
                raw[section][rest[len(section) + 1:]] = (value, f"environment {name}")
                break

    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        if section not in SECTIONS:
            raise ConfigError("command line", section, key, "unknown section")
        raw[section][key] = (value, "command line")

    built = {name: _build_section(cls, name, raw[name]) for name, cls in SECTIONS.items()}
    origins = {f"{s}.{k}": src for s, kv in raw.items() for k, (_, src) in kv.items()}
    return Config(**built, origins=origins, path=path if os.path.exists(path) else None)
