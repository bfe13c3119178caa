"""The whole configuration (:class:`Config`, one field per section) and :func:`load_config`,
which reads it: defaults < INI file < environment < command line."""
from __future__ import annotations

import configparser
import dataclasses
import os
from dataclasses import dataclass, field
from typing import Mapping

from calltracking.config.general import DatabaseConfig, GeneralConfig, LogConfig
from calltracking.config.notify import NotifyConfig
from calltracking.config.options import LIST_CONVERTERS, ConfigError
from calltracking.config.telephony import AgiConfig, AmiConfig, AsteriskConfig, RecordingsConfig
from calltracking.config.transcripts import TranscriptsConfig
from calltracking.config.web import EXAMPLE_SECRET_KEY, DniConfig, WebConfig

DEFAULT_CONFIG_PATH = "/etc/calltracking/config.ini"
ENV_CONFIG = "CALLTRACKING_CONFIG"
ENV_PREFIX = "CALLTRACKING_"

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
    "transcripts": TranscriptsConfig,
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
    transcripts: TranscriptsConfig = field(default_factory=TranscriptsConfig)
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
                if f.metadata.get("conv") in LIST_CONVERTERS:
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
