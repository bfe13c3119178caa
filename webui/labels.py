"""The words the core stores or returns, in the user's language: channels, roles, promo modes,
attribution methods, leg outcomes, weekdays, time-to-call buckets, device kinds, and the
messages of :class:`calltracking.settings_rules.ServiceError` (matched by their pattern; an
unknown message is shown as it is)."""
from __future__ import annotations

import datetime as dt
import re

from babel import dates as babel_dates

from flask_babel import get_locale, lazy_gettext as _l

CHANNELS = {"search": _l("search"), "ads": _l("ads"), "social": _l("social"), "email": _l("e-mail"),
            "offline": _l("offline"), "referral": _l("referral"), "direct": _l("direct"), "other": _l("other")}
ROLES = {"admin": _l("admin"), "supervisor": _l("supervisor"), "operator": _l("operator")}
PROMO_MODES = {"off": _l("never"), "exhausted": _l("when the pool is exhausted"), "always": _l("always")}
ATTRIBUTION = {"static": _l("static number"), "dynamic": _l("number pool"), "promo": _l("promo code"),
               "none": _l("not attributed"), "callback": _l("website callback request")}
LEG_OUTCOMES = {"ringing": _l("ringing"), "answered": _l("answered"), "no_answer": _l("no answer"),
                "busy": _l("busy"), "failed": _l("failed")}
WEEKDAYS = {"Mon": _l("Mon"), "Tue": _l("Tue"), "Wed": _l("Wed"), "Thu": _l("Thu"), "Fri": _l("Fri"),
            "Sat": _l("Sat"), "Sun": _l("Sun")}
TTC = {"<1m": _l("< 1 min"), "1-5m": _l("1–5 min"), "5-15m": _l("5–15 min"), "15-60m": _l("15–60 min"),
       "1-3h": _l("1–3 h"), "3-24h": _l("3–24 h"), "1-7d": _l("1–7 days"), ">7d": _l("> 7 days")}
DEVICE_VALUES = {"mobile": _l("mobile"), "desktop": _l("desktop"), "tablet": _l("tablet"), "bot": _l("bot"),
                 "other": _l("other")}
NUMBER_KINDS = {"static": _l("static"), "pool": _l("pool")}
#: the tables of the ``label`` template filter (``{{ call.attribution|label("attribution") }}``)
TABLES = {"channel": CHANNELS, "role": ROLES, "promo_mode": PROMO_MODES, "attribution": ATTRIBUTION,
          "leg_outcome": LEG_OUTCOMES, "number_kind": NUMBER_KINDS, "device": DEVICE_VALUES}
#: per report: the labels of its first column / chart axis
REPORT_LABELS = {"time_to_call": TTC, "devices": DEVICE_VALUES}


def label(table: dict, value) -> str:
    """``value`` in the user's language when ``table`` knows it, else as it is."""
    got = table.get(value)
    return str(got) if got is not None else ("" if value is None else str(value))


def label_filter(value, table: str) -> str:
    """The ``label`` template filter: ``value`` through the table named ``table``."""
    return label(TABLES[table], value)


def choices(table: dict, values) -> list:
    """(value, translated label) pairs for a select."""
    return [(v, label(table, v)) for v in values]


#: the date part of a date shown on a page, per language (Babel patterns); others: Babel's short date
DATE_PATTERNS = {"en": "yyyy-MM-dd", "ru": "dd.MM.yyyy"}


def date_pattern(locale: str) -> str:
    return DATE_PATTERNS.get(locale) or babel_dates.get_date_format("short", locale=locale).pattern


def localize_report(name: str, rep, dates: bool = False) -> None:
    """Translate a report's row labels and chart axes in place (weekdays, buckets, devices);
    ``dates``: the daily report's days in the user's date format too (pages; CSVs keep ISO)."""
    if rep is None:
        return
    if dates and name == "daily":
        loc = str(get_locale() or "en")

        def day(v):
            try:
                return babel_dates.format_date(dt.date.fromisoformat(v), date_pattern(loc), locale=loc)
            except (TypeError, ValueError):
                return v
        for row in rep.rows:
            row[0] = day(row[0])
        if rep.chart:
            rep.chart["labels"] = [day(v) for v in rep.chart.get("labels", [])]
    table = WEEKDAYS if (rep.chart or {}).get("type") == "matrix" else REPORT_LABELS.get(name)
    if table is None:
        return
    for row in rep.rows:
        if name == "devices":
            if row[0] == "device":
                row[1] = label(table, row[1])
        else:
            row[0] = label(table, row[0])
    chart = rep.chart or {}
    chart["labels"] = [label(table, v) for v in chart.get("labels", [])]
    if "ylabels" in chart:
        chart["ylabels"] = [label(table, v) for v in chart["ylabels"]]
        for ds in chart.get("datasets", []):
            for cell in ds.get("data", []):
                if isinstance(cell, dict) and "y" in cell:
                    cell["y"] = label(table, cell["y"])


# ServiceError messages of calltracking.settings_rules and calltracking.entities: pattern -> text
_ERRORS = [
    (r"invalid project key '(?P<v>.*)': .*", _l("Invalid project key “%(v)s”: use 1-64 letters, digits, “_” or “-”.")),
    (r"unknown time zone '(?P<v>.*)' .*", _l("Unknown time zone “%(v)s” (use an IANA name such as Europe/Moscow).")),
    (r"(?P<v>.*) name is empty", _l("The name is empty.")),
    (r"invalid channel '(?P<v>.*)': .*", _l("Invalid channel “%(v)s”.")),
    (r"hold seconds must be .*", _l("Hold seconds must be a whole number, 0 or more.")),
    (r"invalid promo mode '(?P<v>.*)': .*", _l("Invalid promo code mode “%(v)s”.")),
    (r"weekdays '(?P<v>.*)': .*", _l("Weekdays “%(v)s”: use digits 1 (Monday) … 7 (Sunday), each once.")),
    (r"(?P<v>.*): invalid regular expression: (?P<w>.*)", _l("%(v)s: invalid regular expression: %(w)s")),
    (r"give a queue or a Dial target", _l("Give a queue or a Dial target.")),
    (r"promo code is empty", _l("The promo code is empty.")),
    (r"promo code '(?P<v>.*)': use digits only.*", _l("Promo code “%(v)s”: use digits only (callers type it on the keypad).")),
    (r"invalid role '(?P<v>.*)': .*", _l("Invalid role “%(v)s”.")),
    (r"invalid language '(?P<v>.*)': .*", _l("Invalid language “%(v)s”.")),
    (r"invalid username '(?P<v>.*)'", _l("Invalid user name “%(v)s”.")),
    (r"password must have at least (?P<v>\d+) characters", _l("The password must have at least %(v)s characters.")),
    (r"operator needs a name and an interface.*", _l("An operator needs a name and an interface (e.g. PJSIP/101).")),
    (r"project '(?P<v>.*)' already exists", _l("Project “%(v)s” already exists.")),
    (r"source '(?P<v>.*)' already exists in project '(?P<w>.*)'", _l("Source “%(v)s” already exists in project “%(w)s”.")),
    (r"campaign '(?P<v>.*)' already exists for source '(?P<w>.*)'", _l("Campaign “%(v)s” already exists for source “%(w)s”.")),
    (r"pool '(?P<v>.*)' already exists in project '(?P<w>.*)'", _l("Pool “%(v)s” already exists in project “%(w)s”.")),
    (r"number (?P<v>\S+): give a source \(static\) or a pool \(dynamic\).*", _l("Number %(v)s: give a source (static) or a pool (dynamic).")),
    (r"number (?P<v>\S+) is already mapped.*", _l("Number %(v)s is already mapped.")),
    (r"number (?P<v>\S+) is not mapped", _l("Number %(v)s is not mapped.")),
    (r"a retired number cannot be changed.*", _l("A retired number cannot be changed; map it again.")),
    (r"promo code '(?P<v>.*)' already exists in this project", _l("Promo code “%(v)s” already exists in this project.")),
    (r"operator with interface '(?P<v>.*)' already exists", _l("An operator with interface “%(v)s” already exists.")),
    (r"you cannot remove your own admin role or deactivate yourself", _l("You cannot remove your own admin role or deactivate yourself.")),
    (r"user '(?P<v>.*)' already exists", _l("User “%(v)s” already exists.")),
    (r"a campaign needs a source", _l("A campaign needs a source.")),
    (r"campaign '(?P<v>.*)' does not belong to source '(?P<w>.*)'", _l("Campaign “%(v)s” does not belong to source “%(w)s”.")),
    (r"the (?P<v>\w+) '(?P<w>.*)' belongs to another project", _l("“%(w)s” belongs to another project.")),
    (r"(?P<v>\w+) not found", _l("Not found.")),
    (r"a source cannot be merged into itself", _l("A source cannot be merged into itself.")),
    (r"both sources must belong to the same project", _l("Both sources must belong to the same project.")),
    (r"source '(?P<v>.*)' already exists: merge into it instead", _l("Source “%(v)s” already exists: merge into it instead.")),
    (r"invalid phone number '(?P<v>.*)': .*", _l("Invalid phone number “%(v)s”.")),
    (r"invalid date '(?P<v>.*)': .*", _l("Invalid date “%(v)s”: use YYYY-MM-DD.")),
    # a form field's own checks (webui/crud.py)
    (r"is required", _l("is required")),
    (r"is longer than (?P<v>\d+) characters", _l("is longer than %(v)s characters")),
    (r"expected a whole number, got '(?P<v>.*)'", _l("expected a whole number, got “%(v)s”")),
    (r"invalid choice '(?P<v>.*)'", _l("invalid choice “%(v)s”")),
    (r"expected a time HH:MM, got '(?P<v>.*)'", _l("expected a time HH:MM, got “%(v)s”")),
]
_COMPILED = [(re.compile(p, re.S), msg) for p, msg in _ERRORS]


def error_text(message: str) -> str:
    """A core error message in the user's language (as it is when no pattern knows it)."""
    if str(get_locale() or "en") == "en":
        return message                  # the core writes its messages in English
    for pattern, msg in _COMPILED:
        m = pattern.fullmatch(message)
        if m:
            return str(msg) % m.groupdict()
    field, sep, rest = message.partition(": ")
    if sep and rest:                    # "<field label>: <message>" (a form field's error)
        translated = error_text(rest)
        if translated != rest:
            return f"{field}: {translated}"
    return message
