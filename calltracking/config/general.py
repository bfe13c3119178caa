"""The sections every service reads: ``[general]``, ``[database]`` and ``[log]``."""
from __future__ import annotations

from dataclasses import dataclass

from calltracking import settings_rules
from calltracking.config.options import choice, dburl, iana_zone, ident, integer, opt, region, text, yes_no


@dataclass(frozen=True)
class GeneralConfig:
    pbx_id: str = opt("pbx1", ident, "Name of this Asterisk server; calls are unique by (pbx_id, Linkedid)")
    timezone: str = opt("UTC", iana_zone, "Default time zone of new projects (IANA name)")
    default_queue: str = opt("", text, "Queue used when nothing matches and the project has none")
    default_region: str = opt("RU", region, "Region used to read national phone numbers")
    first_call_window_days: int = opt(0, integer(0), "A caller is 'repeat' if they called within N days "
                                      "(0 = ever)")
    language: str = opt("en", choice(*settings_rules.LANGUAGES), "Default UI language")


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = opt("sqlite:////var/lib/calltracking/calltracking.db", dburl, "SQLAlchemy URL")
    busy_timeout_ms: int = opt(5000, integer(0), "SQLite busy timeout")
    pool_size: int = opt(10, integer(1), "PostgreSQL connection pool size")
    echo: bool = opt(False, yes_no, "Log every SQL statement")


@dataclass(frozen=True)
class LogConfig:
    level: str = opt("info", choice("debug", "info", "warning", "error"))
    format: str = opt("text", choice("text", "json"))
