"""Login (Flask session, werkzeug password hashes), roles, login throttling and API tokens.

Users are created with ``calltracking users add`` or on the Users settings page. Roles:
``admin`` (everything), ``supervisor`` (journal, reports, tags, missed calls; no settings),
``operator`` (own calls, screen pop).

A session is valid while the user is active, its password unchanged and its *session
generation* (``users.session_generation``, stored in the signed cookie at login; a cookie
without one counts as 0) current: logging out and changing the password increase it, so every
copy of an older cookie of that user is refused on its next request.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import math
import secrets
import threading
import time
from collections import deque
from urllib.parse import urlsplit

from flask import (
    Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for,
)
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import select, update
from werkzeug.security import check_password_hash, generate_password_hash

from calltracking.models import User

from webui.context import current_user, db

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)
csrf = CSRFProtect()

# a valid hash to compare against when the user does not exist (same timing)
_DUMMY_HASH = generate_password_hash("calltracking-dummy-password")


class LoginThrottle:
    """Failed logins slow the guesser down and never lock an account out for anybody else.

    * Per account **and** client address: the first ``FREE`` failures cost nothing; after that
      each failure makes that client wait before its next try at that account, twice as long as
      the last time (1 s, 2 s, 4 s … at most ``MAX_WAIT``). Another address trying the same
      account is not slowed, so nobody can lock the admin out of their own computer. A success
      clears the record; one untouched for ``FORGET_AFTER`` is dropped.
    * Per client address: at most ``CLIENT_LIMIT`` failures in ``CLIENT_WINDOW``, whatever the
      accounts (one address trying a common password on many accounts).

    While a client waits its attempts are answered 429 without checking the password. The client
    address is ``request.remote_addr``: each visitor's own behind ``[web] trusted_proxies``
    (:class:`calltracking.proxies.TrustedProxies`), the proxy's otherwise — then every visitor
    shares the per-client limit, but still not the per-account waits of another address.
    From one address, guessing one account gets 14 tries in the first 17 minutes, then 4 an
    hour. Memory is bounded (``MAX_KEYS`` records).
    """

    FREE = 3
    FIRST_WAIT = 1.0
    MAX_WAIT = 900.0
    FORGET_AFTER = 3600.0
    CLIENT_LIMIT = 20
    CLIENT_WINDOW = 600.0
    MAX_KEYS = 50_000

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._pairs: dict[tuple[str, str], tuple[int, float]] = {}   # -> (failures, last failure)
        self._clients: dict[str, deque] = {}
        self._lock = threading.Lock()

    def _pair_wait(self, key: tuple[str, str], now: float) -> float:
        rec = self._pairs.get(key)
        if rec is None:
            return 0.0
        n, last = rec
        if now - last >= self.FORGET_AFTER:
            del self._pairs[key]
            return 0.0
        if n <= self.FREE:
            return 0.0
        wait = min(self.FIRST_WAIT * 2.0 ** min(n - self.FREE - 1, 30), self.MAX_WAIT)
        return max(0.0, last + wait - now)

    def _client_wait(self, client: str, now: float) -> float:
        q = self._clients.get(client)
        if q is None:
            return 0.0
        while q and q[0] <= now - self.CLIENT_WINDOW:
            q.popleft()
        if not q:
            del self._clients[client]
            return 0.0
        return q[0] + self.CLIENT_WINDOW - now if len(q) >= self.CLIENT_LIMIT else 0.0

    def retry_after(self, account: str, client: str) -> int:
        """Whole seconds ``client`` must wait before trying ``account`` again (0: go ahead)."""
        now = self.clock()
        with self._lock:
            wait = max(self._pair_wait((account, client), now), self._client_wait(client, now))
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, account: str, client: str) -> None:
        now = self.clock()
        with self._lock:
            key = (account, client)
            self._pair_wait(key, now)  # drops an expired record first
            n, _last = self._pairs.get(key, (0, now))
            self._pairs[key] = (n + 1, now)
            self._clients.setdefault(client, deque()).append(now)
            if len(self._pairs) > self.MAX_KEYS or len(self._clients) > self.MAX_KEYS:
                self._trim(now)

    def succeeded(self, account: str, client: str) -> None:
        with self._lock:
            self._pairs.pop((account, client), None)

    def _trim(self, now: float) -> None:
        """Drop expired records, then the oldest half (a scan from very many addresses)."""
        for key in [k for k, (_n, last) in self._pairs.items() if now - last >= self.FORGET_AFTER]:
            del self._pairs[key]
        if len(self._pairs) > self.MAX_KEYS:
            for key, _rec in sorted(self._pairs.items(), key=lambda kv: kv[1][1])[: len(self._pairs) // 2]:
                del self._pairs[key]
        for client in list(self._clients):
            self._client_wait(client, now)
        if len(self._clients) > self.MAX_KEYS:
            for client in sorted(self._clients, key=lambda c: self._clients[c][-1])[: len(self._clients) // 2]:
                del self._clients[client]


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


def _load_user() -> None:
    g.user = None
    uid = session.get("uid")
    if uid is None or request.endpoint == "static":
        return
    user = db().get(User, uid)
    if (user is None or not user.active or session.get("fp") != _fingerprint(user)
            or session.get("gen", 0) != user.session_generation):
        session.clear()
        return
    g.user = user


def end_sessions(user: User) -> None:
    """Every session of ``user`` made so far ends (in the request's transaction; commit it)."""
    db().execute(update(User).where(User.id == user.id)
                 .values(session_generation=User.session_generation + 1))
    db().refresh(user)


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
    throttle: LoginThrottle = current_app.extensions["calltracking"]["login_limiter"]
    error = None
    if request.method == "POST":
        username = (request.form.get("username") or "").strip()[:100]
        password = request.form.get("password") or ""
        account, client = username.lower(), request.remote_addr or ""
        wait = throttle.retry_after(account, client)
        if wait:
            error = _("Too many failed logins; try again in %(n)s seconds.", n=wait)
            return render_template("login.html", error=error), 429, {"Retry-After": str(wait)}
        user = db().scalars(select(User).where(User.username == username)).first()
        ok = check_password_hash(user.password_hash if user else _DUMMY_HASH, password)
        if user is not None and ok and user.active:
            throttle.succeeded(account, client)
            session.clear()
            session.permanent = True
            session["uid"] = user.id
            session["fp"] = _fingerprint(user)
            session["gen"] = user.session_generation
            session["lang"] = user.language
            return redirect(_safe_next(request.args.get("next")))
        throttle.failed(account, client)
        log.warning("failed login for user %r from %s", username, client)
        error = _("Wrong username or password.")
    return render_template("login.html", error=error), (401 if error else 200)


@bp.route("/logout", methods=["POST"])
def logout():
    """Ends this session and every other session of the user (the generation goes up)."""
    user = current_user()
    if user is not None:
        end_sessions(user)
        db().commit()
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
    app.extensions["calltracking"].setdefault("login_limiter", LoginThrottle())
    app.before_request(_load_user)

    @app.context_processor
    def _user_ctx():
        return {"current_user": current_user()}
