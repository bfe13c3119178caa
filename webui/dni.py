"""Public endpoints of dynamic number insertion (thin adapter over :mod:`calltracking.dni`).

- ``GET /dni.js`` — the website snippet (``webui/static/dni.js``);
- ``POST /api/dni/assign`` — a number for this visitor;
- ``POST /api/dni/heartbeat`` — the visitor is still active: extend the hold.

The API is public and CSRF-exempt; browsers may call it only from the
project's ``allowed_origins`` (CORS; ``*`` allows any). Bodies are JSON
objects of at most ``DNI_MAX_BODY`` bytes (the snippet sends ``text/plain``
so that no preflight is needed; ``application/json`` works too). Each client
IP gets ``DNI_RATE_PER_MINUTE`` requests a minute with bursts of
``DNI_RATE_BURST`` (Flask config keys); local peers without a forwarded
address are not limited (see :func:`_is_loopback`). Errors are JSON:
``{"error": "..."}``.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import os
import threading
import time

from flask import Blueprint, Response, current_app, request, send_from_directory

from calltracking import dni

log = logging.getLogger(__name__)

bp = Blueprint("dni", __name__)

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
DEFAULTS = {"DNI_MAX_BODY": 8 * 1024, "DNI_RATE_PER_MINUTE": 120, "DNI_RATE_BURST": 60}


class RateLimiter:
    """A token bucket per key, in memory (one web process), bounded in size."""

    def __init__(self, max_keys: int = 100_000):
        self.buckets: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()
        self.max_keys = max_keys

    def allow(self, key: str, per_minute: float, burst: float) -> bool:
        now = time.monotonic()
        rate = per_minute / 60.0
        with self.lock:
            tokens, last = self.buckets.get(key, (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            ok = tokens >= 1.0
            self.buckets[key] = (tokens - 1.0 if ok else tokens, now)
            if len(self.buckets) > self.max_keys:
                full = [k for k, (t, ts) in self.buckets.items() if t + (now - ts) * rate >= burst]
                for k in full:
                    del self.buckets[k]
                if len(self.buckets) > self.max_keys:
                    self.buckets.clear()
            return ok


def client_ip(environ) -> str:
    """The peer address; behind a local reverse proxy, the last X-Forwarded-For hop."""
    ip = environ.get("REMOTE_ADDR") or ""
    fwd = environ.get("HTTP_X_FORWARDED_FOR", "")
    if fwd:
        try:
            if ipaddress.ip_address(ip).is_loopback:
                ip = fwd.split(",")[-1].strip()[:45] or ip
        except ValueError:
            pass
    return ip


def _is_loopback(ip: str) -> bool:
    """A local peer without a forwarded address: a reverse proxy whose client address the
    WSGI server did not pass on (waitress drops X-Forwarded-For from untrusted proxies). One
    bucket for every visitor would throttle the whole site, so no per-IP limit then: limit at
    the proxy, or make the server trust it."""
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


class DniApi:
    """WSGI fast path for ``/api/dni/assign`` and ``/api/dni/heartbeat``.

    Installed in front of the Flask application when the blueprint is
    registered: these public, high-rate endpoints skip the UI's request
    machinery (sessions, login, CSRF, templates); everything else goes on to
    Flask unchanged.
    """

    PATHS = {"/api/dni/assign": "assign", "/api/dni/heartbeat": "heartbeat"}

    def __init__(self, app, inner):
        self.app = app
        self.inner = inner
        self.limiter = RateLimiter()

    def cfg(self, name):
        return self.app.config.get(name, DEFAULTS[name])

    def engine(self):
        return self.app.extensions["calltracking"]["sessionmaker"].kw["bind"]

    def __call__(self, environ, start_response):
        kind = self.PATHS.get(environ.get("PATH_INFO", ""))
        if kind is None:
            return self.inner(environ, start_response)
        status, payload, headers = self.handle(kind, environ)
        body = b"" if payload is None else json.dumps(payload, ensure_ascii=False,
                                                      separators=(",", ":")).encode()
        headers += [("Cache-Control", "no-store"), ("Vary", "Origin"), ("X-Content-Type-Options", "nosniff"),
                    ("Content-Length", str(len(body)))]
        if payload is not None:
            headers.append(("Content-Type", "application/json"))
        start_response(STATUS[status], headers)
        return [body]

    def handle(self, kind: str, environ):
        method = environ.get("REQUEST_METHOD", "GET")
        origin = environ.get("HTTP_ORIGIN")
        if method == "OPTIONS":      # preflight: allowed for any origin; the POST checks the project
            return 204, None, _cors(origin)
        if method != "POST":
            return 405, {"error": "use POST"}, [("Allow", "POST, OPTIONS")]
        ip = client_ip(environ)
        if not _is_loopback(ip) and not self.limiter.allow(ip, self.cfg("DNI_RATE_PER_MINUTE"),
                                                           self.cfg("DNI_RATE_BURST")):
            return 429, {"error": "too many requests"}, [("Retry-After", "10")]
        data, err = self.body(environ)
        if err is not None:
            return err[0], {"error": err[1]}, []
        key = data.get("project")
        if not isinstance(key, str) or not dni._KEY_RX.fullmatch(key):
            return 400, {"error": "field 'project' must be a project key"}, []
        engine = self.engine()
        try:
            info = dni.project_info(engine, key)
        except Exception:
            log.exception("DNI: database unavailable")
            return 503, {"error": "temporarily unavailable"}, []
        if info is None:
            return 404, {"error": f"unknown project {key!r}"}, []
        if origin and not ("*" in info.origins or origin.rstrip("/").lower() in info.origins):
            return 403, {"error": "origin not allowed for this project (add it to the project's allowed origins)"}, []
        cors = _cors(origin)
        try:
            if kind == "assign":
                req = dni.parse_request(data, environ.get("HTTP_USER_AGENT", ""), client_ip(environ))
                out = dni.assign(engine, req).as_json()
            else:
                out = dni.heartbeat(engine, data.get("project"), data.get("visitor_id")).as_json()
        except dni.UnknownProject as e:
            return 404, {"error": str(e)}, cors
        except dni.DniError as e:
            return 400, {"error": str(e)}, cors
        except Exception:
            log.exception("DNI: request failed")
            return 503, {"error": "temporarily unavailable"}, cors
        out["default"] = info.default_number
        return 200, out, cors

    def body(self, environ):
        limit = self.cfg("DNI_MAX_BODY")
        too_large = (413, f"request body too large (at most {limit} bytes)")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None, (400, "invalid Content-Length")
        if length > limit:
            return None, too_large
        raw = environ["wsgi.input"].read(min(length, limit + 1)) if length else b""
        if len(raw) > limit:
            return None, too_large
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None, (400, "invalid JSON body")
        if not isinstance(data, dict):
            return None, (400, "expected a JSON object")
        return data, None


STATUS = {200: "200 OK", 204: "204 No Content", 400: "400 Bad Request", 403: "403 Forbidden",
          404: "404 Not Found", 405: "405 Method Not Allowed", 413: "413 Payload Too Large",
          429: "429 Too Many Requests", 503: "503 Service Unavailable"}


def _cors(origin):
    if not origin:
        return []
    return [("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Methods", "POST, OPTIONS"),
            ("Access-Control-Allow-Headers", "Content-Type"), ("Access-Control-Max-Age", "600")]


@bp.record_once
def _install(state):
    api = DniApi(state.app, state.app.wsgi_app)
    state.app.wsgi_app = api
    state.app.extensions["dni_api"] = api


@bp.route("/dni.js")
def snippet():
    resp = send_from_directory(STATIC, "dni.js", mimetype="application/javascript", max_age=300)
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp


def _through_flask(kind: str):
    """Only reached when the app's WSGI pipeline bypasses DniApi (e.g. a wrapped test app)."""
    api = current_app.extensions["dni_api"]
    status, payload, headers = api.handle(kind, request.environ)
    resp = Response(b"" if payload is None else json.dumps(payload), status=status,
                    mimetype="application/json" if payload is not None else None)
    for k, v in headers + [("Cache-Control", "no-store"), ("Vary", "Origin")]:
        resp.headers[k] = v
    return resp


@bp.route("/api/dni/assign", methods=["POST", "OPTIONS"])
def assign():
    return _through_flask("assign")


@bp.route("/api/dni/heartbeat", methods=["POST", "OPTIONS"])
def heartbeat():
    return _through_flask("heartbeat")
