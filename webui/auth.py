"""Login (Flask session, werkzeug password hashes), roles, rate limit and API tokens.

Users are created with ``calltracking users add`` or on the Users settings page. Roles:
``admin`` (everything), ``supervisor`` (journal, reports, tags, missed calls; no settings),
``operator`` (own calls, screen pop).
"""
from __future__ import annotations

import functools
import hashlib
import secrets
import threading
import time
from collections import defaultdict, deque
from urllib.parse import urlsplit

from flask import (
    Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for,
)
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import select
from werkzeug.exceptions import TooManyRequests
from werkzeug.security import check_password_hash, generate_password_hash

from calltracking.models import User

from .common import db

bp = Blueprint("auth", __name__)
csrf = CSRFProtect()

# a valid hash to compare against when the user does not exist (same timing)
_DUMMY_HASH = generate_password_hash("calltracking-dummy-password")


class LoginLimiter:
    """At most ``limit`` failed logins per ``window`` seconds per client address and per username."""

    def __init__(self, limit: int = 5, window: float = 300.0):
        self.limit, self.window = limit, window
        self._fails: dict[str, deque] = defaultdict(deque)
        self._lock = threading.Lock()

    def _prune(self, key: str, now: float) -> deque:
        q = self._fails[key]
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def retry_after(self, *keys: str) -> int:
        now = time.monotonic()
        with self._lock:
            worst = 0.0
            for k in keys:
                q = self._prune(k, now)
                if len(q) >= self.limit:
                    worst = max(worst, q[0] + self.window - now)
            return int(worst) + 1 if worst else 0

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for k in keys:
                self._prune(k, now).append(now)
            if len(self._fails) > 10000:  # bound memory under a scan
                for k in [k for k, q in self._fails.items() if not q]:
                    del self._fails[k]

    def reset(self, *keys: str) -> None:
        with self._lock:
            for k in keys:
                self._fails.pop(k, None)


def _fingerprint(user: User) -> str:
    """Changes when the password changes: old sessions of that user end."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_api_token(user: User) -> str:
    """Give ``user`` a new API token; returns it (only its hash is stored)."""
    token = "ct_" + secrets.token_urlsafe(32)
    user.api_token_hash = hash_token(token)
    return token


def current_user() -> User | None:
    return g.get("user")


def _load_user() -> None:
    g.user = None
    uid = session.get("uid")
    if uid is None or request.endpoint == "static":
        return
    user = db().get(User, uid)
    if user is None or not user.active or session.get("fp") != _fingerprint(user):
        session.clear()
        return
    g.user = user


def roles_required(*roles: str):
    """Any logged-in user (no roles given) or one of ``roles``; anonymous → login, else 403."""

    def deco(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            user = current_user()
            if user is None:
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if roles and user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return deco


login_required = roles_required()


def api_user() -> User | None:
    header = request.headers.get("Authorization", "")
    scheme, _sp, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    user = db().scalars(select(User).where(User.api_token_hash == hash_token(token.strip()))).first()
    if user is None or not user.active:
        return None
    return user


def api_auth(*roles: str):
    """Token authentication for JSON views: 401 without a valid token, 403 for a wrong role."""

    def deco(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            user = api_user()
            if user is None:
                return {"error": "missing or invalid API token (Authorization: Bearer <token>)"}, 401
            if roles and user.role not in roles:
                return {"error": f"role {user.role!r} may not use this endpoint"}, 403
            g.user = user
            return view(*args, **kwargs)

        return wrapper

    return deco


def _safe_next(target: str | None) -> str:
    if not target:
        return url_for("index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("index")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    limiter: LoginLimiter = current_app.extensions["calltracking"]["login_limiter"]
    error = None
    if request.method == "POST":
        username = (request.form.get("username") or "").strip()[:100]
        password = request.form.get("password") or ""
        keys = (f"ip:{request.remote_addr}", f"user:{username.lower()}")
        wait = limiter.retry_after(*keys)
        if wait:
            raise TooManyRequests(_("Too many failed logins; try again in %(n)s seconds.", n=wait))
        user = db().scalars(select(User).where(User.username == username)).first()
        ok = check_password_hash(user.password_hash if user else _DUMMY_HASH, password)
        if user is not None and ok and user.active:
            limiter.reset(keys[1])
            session.clear()
            session.permanent = True
            session["uid"] = user.id
            session["fp"] = _fingerprint(user)
            session["lang"] = user.language
            return redirect(_safe_next(request.args.get("next")))
        limiter.failed(*keys)
        error = _("Wrong username or password.")
    return render_template("login.html", error=error), (401 if error else 200)


@bp.route("/logout", methods=["POST"])
def logout():
    session.clear()
    flash(_("You have been logged out."))
    return redirect(url_for("auth.login"))


@bp.route("/language", methods=["POST"])
def language():
    lang = request.form.get("lang", "")
    if lang not in ("en", "ru"):
        abort(400)
    session["lang"] = lang
    user = current_user()
    if user is not None:
        user.language = lang
        db().commit()
    return redirect(_safe_next(request.form.get("next") or request.referrer and
                               urlsplit(request.referrer)._replace(scheme="", netloc="").geturl()))


def init_auth(app) -> None:
    app.extensions["calltracking"].setdefault("login_limiter", LoginLimiter())
    app.before_request(_load_user)

    @app.context_processor
    def _user_ctx():
        return {"current_user": current_user()}
