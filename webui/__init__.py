"""The web UI: a Flask application factory with one blueprint per area.

How another blueprint plugs in
------------------------------
* Write ``webui/<area>.py`` exposing ``bp = Blueprint("<area>", __name__, url_prefix=...)``,
  register it in :func:`create_app` (with whether it is exempt from CSRF: only what no cookie
  session reaches is), and templates under
  ``webui/templates/<area>/`` that ``{% extends "base.html" %}`` and fill
  ``{% block content %}`` (optional ``{% block title %}``, ``{% block head %}`` for extra
  ``<link>``/``<script src>``, ``{% block scripts %}`` at the end of ``<body>``).
  Every blueprint is imported when the app is built: a module that fails to import stops
  the start with its traceback.
* Database and user: ``from webui.context import db, current_user, config, audit`` —
  ``db()`` is the request's SQLAlchemy session (closed after the request; call
  ``db().commit()`` yourself); ``audit(...)`` records a settings change.
  ``current_app.extensions["calltracking"]`` is a dict with ``config`` (the
  :class:`calltracking.config.Config`) and ``sessionmaker``.
* Access: ``from webui.auth import roles_required`` —
  ``@roles_required("admin", "supervisor")`` (anonymous → redirect to the login page,
  wrong role → 403); ``@roles_required()`` means any logged-in user. For JSON API views use
  ``@api_auth("admin", "supervisor")`` (token in ``Authorization: Bearer …``; 401/403 as JSON).
* Rules: creating or changing an entity goes through :mod:`calltracking.entities` (the rules
  the CLI and the API apply too); a page declares its form fields (:mod:`webui.crud`).
* Forms: every POST form needs ``<input type="hidden" name="csrf_token" value="{{ csrf_token() }}">``.
* Text: ``from flask_babel import gettext as _`` / ``lazy_gettext``; in templates ``{{ _("…") }}``.
  Russian strings: add them to ``webui/translations/ru/<area>.po`` (a separate catalog per
  area; every ``webui/translations/<lang>/*.po`` file is merged and compiled at start-up,
  no ``pybabel`` needed).
* Times: stored UTC; show them with the ``localtime`` filter (``{{ call.started_at|localtime(tz) }}``,
  ``tz`` a project's time zone; default ``[general] timezone``) or ``webui.display.fmt_time``.
* Numbers and words in the user's language (:mod:`webui.display`, Babel): ``|num`` (counts,
  ``|num(1)`` one decimal), ``|money`` (``|money(currency)``; default ``[web] currency``),
  ``|date``; a word the core stores (channel, role, attribution…) through ``|label("channel")``
  (:mod:`webui.labels`); a CSV through :mod:`webui.csvexport` (BOM, headers, delimiter).
* The pages are served with a strict Content-Security-Policy (``script-src 'self'``): put
  JavaScript in static files (``url_for('static', filename=...)``), never inline, and never
  ``|safe`` on data (caller-ID names are hostile).
"""
from __future__ import annotations

import secrets

from flask import Flask, request


def create_app(config, sessionmaker=None, testing: bool = False) -> Flask:
    """Build the WSGI application.

    ``config`` is a loaded :class:`calltracking.config.Config`; ``sessionmaker`` a SQLAlchemy
    session factory (made from ``config.database`` when omitted). Refuses to start without a
    proper ``[web] secret_key`` unless ``testing``.
    """
    if testing:
        secret = config.web.secret_key or secrets.token_urlsafe(32)
    else:
        secret = config.require_web_secret()
    if sessionmaker is None:
        from calltracking.db import engine_from_config, make_sessionmaker

        sessionmaker = make_sessionmaker(engine_from_config(config))

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret,
        TESTING=testing,
        SESSION_COOKIE_NAME="calltracking_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=bool(config.web.secure_cookies),
        PERMANENT_SESSION_LIFETIME=12 * 3600,
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_SSL_STRICT=False,
        MAX_CONTENT_LENGTH=20 * 1024 * 1024,
        JSON_SORT_KEYS=False,
    )
    app.extensions["calltracking"] = {"config": config, "sessionmaker": sessionmaker}
    # behind [web] trusted_proxies, request.remote_addr is the visitor's own address
    from calltracking.proxies import TrustedProxies

    app.wsgi_app = TrustedProxies(app.wsgi_app, config.web.trusted_proxies)

    from webui import (
        account, api, auth, callbacks, context, dateinput, display, dni, errors, i18n, integrations, journal, metrics,
        missed, qualify, reports, screenpop, settings, settings_dni, settings_tools, transcripts, whisper,
    )

    auth.csrf.init_app(app)
    i18n.init_app(app, config)
    context.init_app(app)
    display.init_app(app)
    dateinput.init_app(app)
    errors.init_app(app)
    auth.init_auth(app)

    # every blueprint, and whether it is exempt from CSRF (no cookie session: the token API,
    # the public DNI endpoints, /metrics)
    for mod, csrf_exempt in ((auth, False), (account, False), (journal, False), (missed, False),
                             (screenpop, False), (settings, False), (settings_tools, False),
                             (settings_dni, False), (whisper, False), (callbacks, False), (qualify, False), (api, True),
                             (reports, False), (dni, True), (metrics, True), (integrations, False),
                             (transcripts, False)):
        app.register_blueprint(mod.bp)
        if csrf_exempt:
            auth.csrf.exempt(mod.bp)

    @app.after_request
    def _security_headers(resp):
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        if not (request.blueprint or "").startswith("dni"):
            resp.headers.setdefault("X-Frame-Options", "DENY")
            resp.headers.setdefault("Referrer-Policy", "same-origin")
            resp.headers.setdefault(
                "Content-Security-Policy",
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                "media-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; "
                "form-action 'self'")
        return resp

    @app.route("/")
    def index():
        from flask import redirect, url_for

        from webui.context import current_user

        user = current_user()
        if user is None:
            return redirect(url_for("auth.login"))
        if user.role == "operator":
            return redirect(url_for("screenpop.index"))
        return redirect(url_for("journal.index"))

    @app.route("/healthz")
    def healthz():
        return {"status": "ok"}

    return app
