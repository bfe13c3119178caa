"""Helpers shared by the blueprints: the request's DB session, time formatting, audit log."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app, g, render_template, request

from calltracking.models import AuditLog


def ext() -> dict:
    return current_app.extensions["calltracking"]


def config():
    return ext()["config"]


def db():
    """The SQLAlchemy session of this request (closed, with rollback, after the request).

    A request that may write (not GET/HEAD/OPTIONS) gets a session whose SQLite
    transactions begin IMMEDIATE: its read-then-write cannot fail with "database is
    locked" because the AMI listener or the FastAGI server committed in between."""
    if "ct_db" not in g:
        factory = ext()["sessionmaker"]
        if request.method in ("GET", "HEAD", "OPTIONS"):
            g.ct_db = factory()
        else:
            from calltracking.db import writer

            g.ct_db = factory(bind=writer(factory.kw["bind"]))
    return g.ct_db


def _close_db(_exc=None):
    s = g.pop("ct_db", None)
    if s is not None:
        try:
            s.rollback()
        finally:
            s.close()


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


def call_tz(call) -> str:
    return call.project.timezone if call is not None and call.project is not None else default_tz()


def parse_money(text: str) -> Decimal | None:
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
    from flask_babel import gettext as _

    return {"admin": _("admin"), "supervisor": _("supervisor"), "operator": _("operator")}


def status_names() -> dict:
    from flask_babel import gettext as _

    return {"answered": _("answered"), "missed": _("missed"), "in_progress": _("in progress"),
            "abandoned": _("abandoned"), "timeout": _("timeout"), "no_operators": _("no operators"),
            "busy": _("busy"), "failed": _("failed")}


def audit(action: str, entity: str, entity_id=None, details: dict | str = "") -> None:
    """Record a settings change in the audit log (in the request's transaction)."""
    from webui.auth import current_user

    user = current_user()
    if isinstance(details, dict):
        details = json.dumps(details, ensure_ascii=False, default=str, sort_keys=True)
    db().add(AuditLog(username=user.username if user else "", action=action, entity=entity,
                      entity_id=None if entity_id is None else str(entity_id), details=details))


def init_app(app) -> None:
    app.teardown_appcontext(_close_db)
    app.add_template_filter(fmt_time, "localtime")
    app.add_template_filter(fmt_seconds, "duration")

    @app.template_filter("money")
    def _money(v):
        return "" if v is None else f"{v:,.2f}".replace(",", "\u00a0")

    @app.context_processor
    def _ctx():
        return {"call_tz": call_tz, "config_view_functions": current_app.view_functions,
                "role_names": role_names(), "status_names": status_names()}

    def _error(code, message):
        if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
            return {"error": message}, code
        return render_template("error.html", code=code, message=message), code

    from flask_babel import gettext as _

    @app.errorhandler(403)
    def _403(_e):
        return _error(403, _("You do not have access to this page."))

    @app.errorhandler(404)
    def _404(_e):
        return _error(404, _("Not found."))

    @app.errorhandler(405)
    def _405(_e):
        return _error(405, _("Method not allowed."))

    @app.errorhandler(429)
    def _429(e):
        return _error(429, getattr(e, "description", None) or _("Too many requests."))

    @app.errorhandler(500)
    def _500(_e):
        return _error(500, _("Internal error; see the service log."))

    from flask_wtf.csrf import CSRFError

    @app.errorhandler(CSRFError)
    def _csrf(e):
        return _error(400, _("The form has expired or is invalid (CSRF check failed); reload the page "
                             "and try again."))
