"""What a valid setting is: one function per rule, shared by every way in.

The CLI, the web UI's settings pages and the REST API create and change entities through
:mod:`calltracking.entities`, which applies these rules; ``config.ini`` applies the time zone
and language rules too (:mod:`calltracking.config`). Each function takes the value as typed,
returns it normalised, or raises :class:`ServiceError` naming the value and the rule.
The rules that relate entities to each other (a campaign belongs to its source, a number
is static or in a pool, names are unique) are in :mod:`calltracking.entities`.
"""
from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from calltracking.attribution import routing
from calltracking.enums import PromoMode, Role, SourceChannel

#: the stored strings (plain ``str``: click's ``Choice`` and form selects take them as they are)
ROLES = tuple(r.value for r in Role)
CHANNELS = tuple(c.value for c in SourceChannel)
PROMO_MODES = tuple(m.value for m in PromoMode)
LANGUAGES = ("en", "ru")
#: ISO weekdays, 1 = Monday … 7 = Sunday
ALL_WEEKDAYS = "1234567"
DEFAULT_HOLD_SECONDS = 900
DEFAULT_RULE_PRIORITY = 100
MIN_PASSWORD_LENGTH = 8


class ServiceError(ValueError):
    """A user-facing error: the message says what is wrong and with which value."""


def project_key(key: str) -> str:
    """1-64 ASCII letters, digits, '_' or '-' (the key is used in URLs, CSV files and dni.js)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", key or ""):
        raise ServiceError(f"invalid project key {key!r}: use 1-64 letters, digits, '_' or '-'")
    return key


def timezone(name: str) -> str:
    """An IANA time zone name known to this machine's zoneinfo (``Europe/Moscow``, ``UTC``)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ServiceError(f"unknown time zone {name!r} (use an IANA name such as Europe/Moscow)") from None
    return name


def name(what: str, value: str) -> str:
    """A name is not empty once surrounding blanks are removed; returned without them."""
    value = (value or "").strip()
    if not value:
        raise ServiceError(f"{what} name is empty")
    return value


def channel(value: str) -> str:
    """A source's channel is one of :data:`CHANNELS` (reports group sources by it)."""
    if value not in CHANNELS:
        raise ServiceError(f"invalid channel {value!r}: use one of {', '.join(CHANNELS)}")
    return value


def hold_seconds(value) -> int:
    """How long a pool keeps a number for a visitor after the visit: a whole number >= 0."""
    if value is None or isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ServiceError(f"hold seconds must be a whole number, 0 or more (got {value!r})")
    return value


def promo_mode(value: str | None) -> str:
    """One of :data:`PROMO_MODES` (:class:`calltracking.enums.PromoMode`); empty means ``off``."""
    value = value or "off"
    if value not in PROMO_MODES:
        raise ServiceError(f"invalid promo mode {value!r}: use one of {', '.join(PROMO_MODES)}")
    return value


def weekdays(value: str | None) -> str:
    """Digits 1 (Monday) … 7 (Sunday), each at most once, returned sorted; empty means every day."""
    days = value or ALL_WEEKDAYS
    if not all(ch in ALL_WEEKDAYS for ch in days) or len(set(days)) != len(days):
        raise ServiceError(f"weekdays {days!r}: use digits 1 (Monday) … 7 (Sunday), each once")
    return "".join(sorted(days))


def regex(field: str, pattern: str | None) -> str:
    """A routing rule's regular expression compiles (Python syntax); empty means no condition."""
    err = routing.valid_regex(pattern or "")
    if err:
        raise ServiceError(f"{field}: invalid regular expression: {err}")
    return pattern or ""


def rule_destination(queue: str | None, target: str | None) -> None:
    """A routing rule sends the call somewhere: a queue, or a Dial target instead of a queue."""
    if not (queue or target):
        raise ServiceError("give a queue or a Dial target")


def promo_code(code: str | None) -> str:
    """A promo code is typed on the keypad: digits only (``str.isdigit``), not empty."""
    code = (code or "").strip()
    if not code:
        raise ServiceError("promo code is empty")
    if not code.isdigit():
        raise ServiceError(f"promo code {code!r}: use digits only (callers type it on the keypad)")
    return code


def role(value: str) -> str:
    """A user's role is one of :data:`ROLES`."""
    if value not in ROLES:
        raise ServiceError(f"invalid role {value!r}: use one of {', '.join(ROLES)}")
    return value


def language(value: str) -> str:
    """A user's (and the default) UI language is one of :data:`LANGUAGES`."""
    if value not in LANGUAGES:
        raise ServiceError(f"invalid language {value!r}: use one of {', '.join(LANGUAGES)}")
    return value


def username(value: str) -> str:
    """1-100 ASCII letters, digits, '_', '.', '@' or '-'."""
    if not re.fullmatch(r"[A-Za-z0-9_.@-]{1,100}", value or ""):
        raise ServiceError(f"invalid username {value!r}")
    return value


def password(value: str) -> str:
    """At least :data:`MIN_PASSWORD_LENGTH` characters."""
    if len(value or "") < MIN_PASSWORD_LENGTH:
        raise ServiceError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    return value


def operator(name: str, interface: str) -> None:
    """An operator has a name and the interface of their phone (``PJSIP/101``)."""
    if not name or not interface:
        raise ServiceError("operator needs a name and an interface (e.g. PJSIP/101)")
