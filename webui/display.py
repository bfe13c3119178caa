"""How values are shown on the pages, and amounts typed in read back: times in a project's
zone, durations, money, the names of roles and call statuses; the template filters."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app
from flask_babel import gettext as _

from webui.context import config


def default_tz() -> str:
    return config().general.timezone


def zone(tz: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(tz or default_tz())
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def fmt_time(value: dt.datetime | None, tz: str | None = None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """Format an aware UTC datetime in ``tz`` (a project's zone; default [general] timezone)."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(zone(tz)).strftime(fmt)


def fmt_seconds(value) -> str:
    if value is None:
        return ""
    total = int(round(float(value)))
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def fmt_money(value) -> str:
    return "" if value is None else f"{value:,.2f}".replace(",", "\u00a0")


def call_tz(call) -> str:
    return call.project.timezone if call is not None and call.project is not None else default_tz()


def parse_money(text: str) -> Decimal | None:
    """A call's value as typed: blanks ignored, ',' or '.' before the cents; 0 up to 10^12,
    rounded to cents. Empty: None."""
    text = (text or "").strip().replace(" ", "").replace(",", ".")
    if not text:
        return None
    try:
        v = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"invalid amount {text!r}") from None
    if not v.is_finite() or v < 0 or v >= Decimal("1e12"):
        raise ValueError(f"invalid amount {text!r}")
    return v.quantize(Decimal("0.01"))


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

    @app.context_processor
    def _ctx():
        return {"call_tz": call_tz, "config_view_functions": current_app.view_functions,
                "role_names": role_names(), "status_names": status_names()}
