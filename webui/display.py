"""How values are shown on the pages, and amounts typed in read back: times in a project's
zone, durations, money, the names of roles and call statuses; the template filters."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app
from babel import dates as babel_dates, numbers as babel_numbers
from flask_babel import get_locale, gettext as _

from calltracking import money

from webui import labels
from webui.context import config


def default_tz() -> str:
    return config().general.timezone


def zone(tz: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(tz or default_tz())
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def locale_name() -> str:
    return str(get_locale() or "en")


def fmt_time(value: dt.datetime | None, tz: str | None = None, fmt: str | None = None) -> str:
    """Format an aware UTC datetime in ``tz`` (a project's zone; default [general] timezone): the
    date in the user's language (:data:`webui.labels.DATE_PATTERNS`) and the time as HH:MM:SS; ``fmt``: a
    ``strftime`` pattern instead."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    local = value.astimezone(zone(tz))
    if fmt is not None:
        return local.strftime(fmt)
    loc = locale_name()
    date = labels.date_pattern(loc)
    return babel_dates.format_datetime(local, f"{date} HH:mm:ss", tzinfo=local.tzinfo, locale=loc)


def fmt_date(value: dt.date | None) -> str:
    """A date in the user's language (:data:`webui.labels.DATE_PATTERNS`)."""
    if value is None:
        return ""
    loc = locale_name()
    return babel_dates.format_date(value, labels.date_pattern(loc), locale=loc)


def fmt_seconds(value) -> str:
    if value is None:
        return ""
    total = int(round(float(value)))
    if total >= 86400:
        # a day or more (a missed call never called back): days and hours, not "357:27:55"
        d, h = divmod(total // 3600, 24)
        return _("%(d)s d %(h)s h", d=d, h=h)
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def fmt_money(value, currency: str | None = None) -> str:
    """An amount in the user's language with its currency (``[web] currency`` unless given):
    ``6 277 176,00 ₽`` in Russian, ``6,277,176.00 RUB`` in English."""
    if value is None or value == "":
        return ""
    code, loc = currency or config().web.currency, locale_name()
    # a currency without a symbol in this language: "70.00 RUB", not Babel's "RUB70.00"
    pattern = "#,##0.00\u00a0¤" if babel_numbers.get_currency_symbol(code, loc) == code else None
    return babel_numbers.format_currency(Decimal(str(value)), code, format=pattern, locale=loc)


def fmt_number(value, digits: int | None = None) -> str:
    """A count or a figure in the user's language, thousands grouped (``12 345`` in Russian,
    ``12,345`` in English); ``digits``: that many decimals. Text passes as it is."""
    if value is None or isinstance(value, (str, bool)):
        return "" if value is None else str(value)
    if digits is not None:
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return babel_numbers.format_decimal(value, format=pattern, locale=locale_name())
    return babel_numbers.format_decimal(value, locale=locale_name())


def call_tz(call) -> str:
    return call.project.timezone if call is not None and call.project is not None else default_tz()


def parse_money(text: str) -> Decimal | None:
    """An amount typed in the user's language (:func:`calltracking.money.parse_money`). Empty: None."""
    return money.parse_money(text, str(get_locale() or "en"))


def role_names() -> dict:
    return {"admin": _("admin"), "supervisor": _("supervisor"), "operator": _("operator")}


def status_names() -> dict:
    return {"answered": _("answered"), "missed": _("missed"), "in_progress": _("in progress"),
            "abandoned": _("abandoned"), "timeout": _("timeout"), "no_operators": _("no operators"),
            "busy": _("busy"), "failed": _("failed")}


def init_app(app) -> None:
    app.add_template_filter(fmt_time, "localtime")
    app.add_template_filter(fmt_seconds, "duration")
    app.add_template_filter(fmt_money, "money")
    app.add_template_filter(fmt_number, "num")
    app.add_template_filter(fmt_date, "date")
    app.add_template_filter(labels.label_filter, "label")
    app.add_template_filter(labels.error_text, "error_text")

    @app.context_processor
    def _ctx():
        return {"call_tz": call_tz, "config_view_functions": current_app.view_functions,
                "role_names": role_names(), "status_names": status_names()}
