"""What a request works with: the application's config, the request's database session, the
logged-in user, and the audit log of settings changes.

The lowest module of the web UI: it imports no other ``webui`` module, and every blueprint,
:mod:`webui.auth` included, reaches the database and the user through it.
``current_app.extensions["calltracking"]`` (:func:`ext`) holds ``config`` (the
:class:`calltracking.config.Config`) and ``sessionmaker``; :mod:`webui.auth` puts the user
in ``g.user`` before each request.
"""
from __future__ import annotations

import json

from flask import current_app, g, request

from calltracking.db import writer
from calltracking.models import AuditLog, User


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
            g.ct_db = factory(bind=writer(factory.kw["bind"]))
    return g.ct_db


def close_db(_exc=None) -> None:
    s = g.pop("ct_db", None)
    if s is not None:
        try:
            s.rollback()
        finally:
            s.close()


def current_user() -> User | None:
    """The user of this request: logged in (:mod:`webui.auth`) or authenticated by an API token."""
    return g.get("user")


def chosen_project(projects: list):
    """The project ``?project=<id>`` names among ``projects`` (those the page offers), else the
    first of them; None when there is none."""
    pid = request.args.get("project", "")
    return next((p for p in projects if str(p.id) == pid), projects[0] if projects else None)


def audit(action: str, entity: str, entity_id=None, details: dict | str = "") -> None:
    """Record a settings change in the audit log (in the request's transaction)."""
    user = current_user()
    if isinstance(details, dict):
        details = json.dumps(details, ensure_ascii=False, default=str, sort_keys=True)
    db().add(AuditLog(username=user.username if user else "", action=action, entity=entity,
                      entity_id=None if entity_id is None else str(entity_id), details=details))


def init_app(app) -> None:
    app.teardown_appcontext(close_db)
