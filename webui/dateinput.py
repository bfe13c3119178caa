"""The date fields of the filter forms (reports, journal, missed calls, ad spend), in the page's
language rather than the browser's: Chromium draws ``<input type=date>`` in its own locale, so
these are text fields.

- A field shows its date in the format of every date on the page (:func:`webui.labels.date_pattern`:
  ``03.12.2026`` in Russian, ``2026-12-03`` in English) and its placeholder spells that format
  (``ДД.ММ.ГГГГ``, ``YYYY-MM-DD``).
- What may be typed (:func:`parse`): ISO ``YYYY-MM-DD`` always (links and bookmarks keep
  working); the page's format; Babel's short date of the language (``12/3/26`` or ``12/3/2026``
  in English, ``03.12.26`` in Russian); else, when exactly one other language's page format
  fits, that one (a link typed in another language). The text must have the format's shape
  (its separators, three numbers), and Babel's reading is checked field by field, so ``13/03/2026``
  in English is an error rather than the 3rd of an unknown month.
- A bad date is :class:`DateInputError`, whose message (in the user's language) quotes the text
  as typed and the format to use; the pages show it and keep the other filters.
"""
from __future__ import annotations

import datetime as dt
import re

from babel import dates as babel_dates
from flask_babel import gettext as _

from webui import labels
from webui.display import locale_name

ISO = re.compile(r"\d{4}-\d{2}-\d{2}")
_FIELD = re.compile(r"(d+|M+|L+|y+)|('[^']*')|(.)")


class DateInputError(ValueError):
    """A date field that is not a date in any accepted format (the message is for the user)."""


def _shape(pattern: str) -> tuple[re.Pattern, str]:
    """A strict regular expression of a numeric Babel date pattern, and its fields' order
    (``"dmy"``); raises ValueError for a pattern with month names."""
    rx, order = [], ""
    for field, quoted, other in _FIELD.findall(pattern):
        if field:
            if field[0] in "ML" and len(field) > 2:
                raise ValueError(f"not a numeric date pattern: {pattern!r}")
            rx.append(r"(\d{2}|\d{4})" if field[0] == "y" else r"(\d{1,2})")
            order += {"d": "d", "M": "m", "L": "m", "y": "y"}[field[0]]
        elif quoted:
            rx.append(re.escape(quoted.strip("'")))
        else:
            rx.append(r"\s*" if other.isspace() else re.escape(other))
    return re.compile("".join(rx) + r"\Z"), order


def _read(text: str, pattern: str, loc: str):
    """The date of ``text`` in ``pattern`` (Babel's :func:`~babel.dates.parse_date`, every field
    checked against the text); None when the text does not have the pattern's shape; raises
    DateInputError for a shape that holds no real date (31.02.2026)."""
    try:
        rx, order = _shape(pattern)
    except ValueError:
        return None
    m = rx.match(text)
    if m is None or sorted(order) != ["d", "m", "y"]:
        return None
    try:
        got = babel_dates.parse_date(text, locale=loc, format=pattern)
    except (babel_dates.ParseError, ValueError, IndexError):
        raise DateInputError(error_message(text)) from None
    fields = dict(zip(order, (int(g) for g in m.groups())))
    if (fields["d"], fields["m"]) != (got.day, got.month):     # Babel swaps a month over 12
        raise DateInputError(error_message(text))
    return got


def page_pattern(loc: str | None = None) -> str:
    """The Babel pattern of the dates on the page (and in the date fields)."""
    return labels.date_pattern(loc or locale_name())


def accepted_patterns(loc: str) -> list[str]:
    """The patterns typed dates are read in, first match wins (ISO is read before these)."""
    out = [page_pattern(loc), babel_dates.get_date_format("short", locale=loc).pattern]
    return list(dict.fromkeys(out))


def parse(text: str | None, loc: str | None = None) -> dt.date | None:
    """A date typed in a filter field; None for an empty field; raises DateInputError."""
    text = (text or "").strip()
    if not text:
        return None
    loc = loc or locale_name()
    if ISO.fullmatch(text):
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise DateInputError(error_message(text)) from None
    for pattern in accepted_patterns(loc):
        got = _read(text, pattern, loc)
        if got is not None:
            return got
    others = []
    for other, pattern in labels.DATE_PATTERNS.items():
        if other != loc:
            got = _read(text, pattern, other)
            if got is not None:
                others.append(got)
    if len(set(others)) == 1:
        return others[0]
    raise DateInputError(error_message(text))


def to_iso(text: str | None) -> str:
    """A filter field for the parsers that take ISO text (the journal, the missed calls): a typed
    date as ``YYYY-MM-DD``; ISO dates and date-times pass as they are; empty stays empty."""
    text = (text or "").strip()
    if not text or re.match(r"\d{4}-\d{2}-\d{2}[T ]", text):
        return text
    return parse(text).isoformat()


def placeholder(loc: str | None = None) -> str:
    """The page's date pattern spelled for the user: ``ДД.ММ.ГГГГ``, ``YYYY-MM-DD``."""
    letters = {"d": _("DD"), "M": _("MM"), "L": _("MM"), "y": _("YYYY")}
    out = []
    for field, quoted, other in _FIELD.findall(page_pattern(loc)):
        out.append(letters[field[0]] if field else quoted.strip("'") if quoted else other)
    return "".join(out)


def error_message(text: str) -> str:
    return _("Invalid date “%(value)s”: type it as %(pattern)s.", value=text, pattern=placeholder())


def field_value(value) -> str:
    """What a date field shows: a date (or a text that reads as one) in the page's format;
    a text that does not read as a date as it was typed, for the user to correct."""
    if value is None or value == "":
        return ""
    if isinstance(value, dt.datetime):
        value = value.date()
    if not isinstance(value, dt.date):
        try:
            value = parse(str(value))
        except DateInputError:
            return str(value)
        if value is None:
            return ""
    loc = locale_name()
    return babel_dates.format_date(value, page_pattern(loc), locale=loc)


def init_app(app) -> None:
    app.add_template_filter(field_value, "date_field_value")
    app.add_template_global(placeholder, "date_placeholder")
