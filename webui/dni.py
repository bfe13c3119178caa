"""Public endpoints of dynamic number insertion (thin adapter over :mod:`calltracking.dni.assign`).

- ``GET /dni.js`` — the website snippet (``webui/static/dni.js``);
- ``POST /api/dni/assign`` — a number for this visitor;
- ``POST /api/dni/heartbeat`` — the visitor is still active: extend the hold;
- ``POST /api/dni/ping`` — the snippet ran on a page where it asked for no number (``204``);
  an assignment from the snippet says the same (:mod:`calltracking.dni.snippet_pings`);
- ``POST /api/dni/callback`` — the visitor asks to be called back (``webui/dni_callback.py``,
  with its own limits on top of these); the assign answer carries the project's callback
  widget settings (``widget_config``).

The API is public and CSRF-exempt; browsers may call it only from the project's
``allowed_origins`` (CORS; ``*`` allows any), and when the project lists origins a request
without an ``Origin`` header is refused too (browsers always send one with a POST). Bodies are
JSON objects of at most ``DNI_MAX_BODY`` bytes (the snippet sends ``text/plain`` so that no
preflight is needed; ``application/json`` works too). Errors are JSON: ``{"error": "..."}``.

Abuse limits (:mod:`calltracking.dni.guard`), the same on both listeners: the client is the
peer, or the forwarded address when the peer is one of ``[web] trusted_proxies``; each client
key (IPv4 address, IPv6 /64) gets ``DNI_RATE_PER_MINUTE`` requests a minute with bursts of
``DNI_RATE_BURST``, and may hold at most ``DNI_MAX_HOLDS_PER_CLIENT`` numbers of a pool at
once; a visitor id (signed by the server) at most ``DNI_MAX_HOLDS_PER_VISITOR``. The settings
come from ``[dni]`` and ``[web] trusted_proxies``; a Flask config key of the same name
(``DNI_TRUSTED_PROXIES``: a list of networks) overrides one.

Two servers call the SAME code: :meth:`DniApi.handle` takes plain arguments
(method, path, origin, client IP, user agent, body bytes) and is a generator
that yields its blocking database steps (:class:`Step`, :class:`FastStep`)
and returns ``(status, payload, headers)``. The WSGI adapter (waitress, in
front of Flask) runs the steps in its thread (:func:`run_blocking`); the
asyncio DNI server (``webui/dni_server.py``) runs them off its event loop.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time

from flask import Blueprint, Response, current_app, request

from calltracking.dni import assign as dni
from calltracking.dni import holds, projects, request as dni_request
from calltracking.dni import new_visitors as dni_fast
from calltracking.dni import guard as dni_guard
from calltracking.dni import snippet_pings
from calltracking.dni.guard import ClientResolver, HoldLedger, RateLimiter, VisitorSigner
from webui.dni_callback import CallbackDesk

log = logging.getLogger(__name__)

bp = Blueprint("dni", __name__)

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
#: DNI_DB_TIMEOUT: seconds the asyncio server waits for the database before answering 503; the
#: others default to the ``[dni]`` settings of the same name (see :class:`DniApi`)
DEFAULTS = {"DNI_MAX_BODY": 8 * 1024, "DNI_RATE_PER_MINUTE": 120, "DNI_RATE_BURST": 60, "DNI_DB_TIMEOUT": 1.5,
            "DNI_MAX_HOLDS_PER_CLIENT": 4, "DNI_MAX_HOLDS_PER_VISITOR": 3, "DNI_TRUSTED_PROXIES": (),
            "DNI_CALLBACK_PER_CLIENT": 20, "DNI_CALLBACK_PER_VISITOR": 3, "DNI_DEFAULT_REGION": "RU"}
#: Flask config key → (section, key) of calltracking's configuration
FROM_CONFIG = {"DNI_RATE_PER_MINUTE": ("dni", "rate_per_minute"), "DNI_RATE_BURST": ("dni", "rate_burst"),
               "DNI_MAX_HOLDS_PER_CLIENT": ("dni", "max_holds_per_client"),
               "DNI_MAX_HOLDS_PER_VISITOR": ("dni", "max_holds_per_visitor"),
               "DNI_TRUSTED_PROXIES": ("web", "trusted_proxies"),
               "DNI_CALLBACK_PER_CLIENT": ("dni", "callback_per_client"),
               "DNI_CALLBACK_PER_VISITOR": ("dni", "callback_per_visitor"),
               "DNI_DEFAULT_REGION": ("general", "default_region")}
#: headers of every API answer
#: the ``body`` of :meth:`DniApi.handle` when the Content-Length header is not a number
BAD_LENGTH = b"\0invalid Content-Length"
API_HEADERS = [("Cache-Control", "no-store"), ("Vary", "Origin"), ("X-Content-Type-Options", "nosniff")]


class Step:
    """A blocking database call of :meth:`DniApi.handle`: ``fn(*args)``."""

    __slots__ = ("fn", "args")

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def run(self):
        return self.fn(*self.args)


class Refresh(Step):
    """Reload the project's settings (``stale``: the expired ones). An event loop answers with
    ``stale`` at once and reloads in the background (one reload per project at a time)."""

    __slots__ = ("stale",)

    def __init__(self, stale, engine, key):
        super().__init__(projects.project_info, engine, key)
        self.stale = stale


class Reload(Refresh):
    """Other cached settings reloaded like :class:`Refresh`: ``fn(engine, key)``, one reload per
    ``key`` at a time (the callback widget's settings)."""

    __slots__ = ()

    def __init__(self, stale, fn, engine, key):
        Step.__init__(self, fn, engine, key)
        self.stale = stale


class FastStep:
    """A new visitor for :mod:`calltracking.dni.new_visitors`'s batching writer: ``(session id, number)``."""

    __slots__ = ("plan",)

    def __init__(self, plan: dni.Plan):
        self.plan = plan

    def run(self):
        p = self.plan
        return dni_fast.assign_new(p.engine, p.fast, p.pool.id, p.write_lock)

    def submit(self, loop):
        """Queue it from an event loop: the writer's slot (``slot.afut`` is its future)."""
        p = self.plan
        return dni_fast.assign_new_async(p.engine, p.fast, p.pool.id, p.write_lock, loop)


def run_blocking(gen):
    """Drive :meth:`DniApi.handle` in this thread: each step runs here."""
    send = exc = None
    while True:
        try:
            step = gen.send(send) if exc is None else gen.throw(exc)
        except StopIteration as stop:
            return stop.value
        send = exc = None
        try:
            send = step.run()
        except Exception as e:      # handed back to the handler, which decides
            exc = e


class DniApi:
    """The two API endpoints, for both servers; also a WSGI fast path in front of Flask.

    ``settings``: a mapping that may override the :data:`DEFAULTS` keys (the Flask config, read
    on every request); ``config``: calltracking's configuration (the ``[dni]`` limits and
    ``[web] trusted_proxies``; else the defaults); ``engine``: a function returning the
    SQLAlchemy engine; ``secret``: the key of the visitor id signatures (``[web] secret_key``).
    As WSGI middleware (``inner`` the Flask app) these public, high-rate endpoints skip the
    UI's request machinery (sessions, login, CSRF, templates); everything else goes on to
    Flask unchanged. One instance holds the rate limiter and the hold ledger of both listeners.
    """

    PATHS = {"/api/dni/assign": "assign", "/api/dni/heartbeat": "heartbeat", "/api/dni/ping": "ping",
             "/api/dni/callback": "callback"}

    def __init__(self, settings, engine, inner=None, config=None, secret=None):
        self.settings = settings
        self.engine = engine
        self.inner = inner
        self.config = config
        self._defaults = dict(DEFAULTS)      # DEFAULTS, then what the configuration says
        for name, (section, key) in FROM_CONFIG.items():
            if config is not None and hasattr(getattr(config, section), key):
                self._defaults[name] = getattr(getattr(config, section), key)
        if not secret:
            secret = settings.get("SECRET_KEY") or (config.web.secret_key if config is not None else "")
        self.signer = VisitorSigner(secret)
        self.limiter = RateLimiter()
        self.holds = HoldLedger()
        self.pings = snippet_pings.SnippetPings()
        self.callbacks = CallbackDesk(self, Step, Reload)
        self._prime_after = 0.0              # monotonic time of the next try to fill the ledger
        self._resolver = None

    def cfg(self, name):
        v = self.settings.get(name)
        return self._defaults[name] if v is None else v

    def client_ip(self, peer: str, forwarded: str = "") -> str:
        """The client's address (see :class:`calltracking.dni.guard.ClientResolver`)."""
        trusted = self.cfg("DNI_TRUSTED_PROXIES")
        r = self._resolver
        if r is None or r[0] is not trusted:
            r = self._resolver = (trusted, ClientResolver(trusted))
        return r[1](peer, forwarded)

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path not in self.PATHS:
            return self.inner(environ, start_response)
        method = environ.get("REQUEST_METHOD", "GET")
        body = b""
        if method == "POST":
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = -1
            if length < 0:
                body = BAD_LENGTH
            elif length > self.cfg("DNI_MAX_BODY"):
                body = None
            elif length:
                body = environ["wsgi.input"].read(length)
        status, payload, headers = run_blocking(self.handle(
            method, path, environ.get("HTTP_ORIGIN"), self.environ_ip(environ), environ.get("HTTP_USER_AGENT", ""),
            body))
        status_line, headers, data = render(status, payload, headers)
        start_response(status_line, headers)
        return [data]

    def environ_ip(self, environ) -> str:
        """:meth:`client_ip` of a WSGI request."""
        return self.client_ip(environ.get("REMOTE_ADDR") or "", environ.get("HTTP_X_FORWARDED_FOR", ""))

    def handle(self, method: str, path: str, origin, ip: str, user_agent: str, body):
        """Generator: yields :class:`Step`/:class:`FastStep` (send back the result or throw the
        error), returns ``(status, payload or None, headers)``. ``body``: the request body, or
        None when its Content-Length is over ``DNI_MAX_BODY`` (not read)."""
        kind = self.PATHS.get(path)
        if kind is None:
            return 404, {"error": "not found"}, []
        if method == "OPTIONS":      # preflight: allowed for any origin; the POST checks the project
            return 204, None, _cors(origin)
        if method != "POST":
            return 405, {"error": "use POST"}, [("Allow", "POST, OPTIONS")]
        client = dni_guard.client_key(ip)
        if not self.limiter.allow(client, self.cfg("DNI_RATE_PER_MINUTE"), self.cfg("DNI_RATE_BURST")):
            dni_guard.count_rejected("rate_limit")
            return 429, {"error": "too many requests"}, [("Retry-After", "10")]
        data, err = self.parse_body(body)
        if err is not None:
            return err[0], {"error": err[1]}, []
        key = data.get("project")
        if not isinstance(key, str) or not dni_request.PROJECT_KEY.fullmatch(key):
            return 400, {"error": "field 'project' must be a project key"}, []
        engine = self.engine()
        info = projects.cached_project_info(engine, key, stale=True)
        if info is None or time.monotonic() - info.loaded >= projects.CACHE_TTL:
            try:
                info = yield Refresh(info, engine, key)
            except Exception:
                log.exception("DNI: database unavailable")
                return 503, {"error": "temporarily unavailable"}, []
        if info is None:
            return 404, {"error": "unknown project"}, []
        if info.origins and not origin:
            dni_guard.count_rejected("origin_missing")
            return 403, {"error": "Origin header required: this project accepts only its allowed origins"}, []
        if origin and not ("*" in info.origins or origin.rstrip("/").lower() in info.origins):
            dni_guard.count_rejected("origin_forbidden")
            return 403, {"error": "origin not allowed for this project (add it to the project's allowed origins)"}, []
        cors = _cors(origin)
        if kind == "ping" or (kind == "assign" and "snippet" in data):
            ping = snippet_pings.from_request(info.id, origin, data)
            yield from self._seen(engine, ping)
            if kind == "ping":
                return (204, None, cors) if ping is not None else (400, {"error": "no page origin"}, cors)
        try:
            if kind == "callback":
                status, payload, headers = yield from self.callbacks.handle(engine, info, data, client)
                return status, payload, headers + cors
            if kind == "assign":
                widget = yield from self.callbacks.widget(engine, info.id)    # before any hold is made
                out = yield from self._assign(engine, info, dni_request.parse_request(data, user_agent, ip), client)
            else:
                out = yield from self._heartbeat(engine, key, data.get("visitor_id"), client)
        except dni_request.UnknownProject as e:
            return 404, {"error": str(e)}, cors
        except dni_request.DniError as e:
            return 400, {"error": str(e)}, cors
        except Exception:
            log.exception("DNI: request failed")
            return 503, {"error": "temporarily unavailable"}, cors
        answer_kind = out.kind
        out = out.as_json()
        out["default"] = info.default_number
        if kind == "assign":
            out["widget_config"] = widget.public() if answer_kind != "bot" else None
        return 200, out, cors

    def _assign(self, engine, info, req, client: str):
        plan = dni.prepare(engine, req, info, signer=self.signer)
        if plan.result is not None:
            return plan.result
        if plan.pool is None:                # the static or default number: nothing is held
            return (yield Step(dni.complete, plan))
        holds = self.holds
        if not holds.primed and time.monotonic() >= self._prime_after:
            yield Step(self._prime, engine)
        pool, vid, now = plan.pool.id, req.visitor_id, plan.now.timestamp()
        refused = holds.claim(pool, vid, client, now, self.cfg("DNI_MAX_HOLDS_PER_CLIENT"),
                              self.cfg("DNI_MAX_HOLDS_PER_VISITOR"))
        if refused is not None:
            dni_guard.count_refused(dni_guard.db_key(engine), pool, f"{info.id}/{plan.pool.name}", refused)
            return plan.refused()
        res = None
        try:
            res = yield from self._reserve(plan)
            return res
        finally:                             # also when the request is abandoned (timeout)
            held = res is not None and res.kind == "pool"
            holds.settle(pool, vid, client, now + res.hold_seconds if held else None)

    @staticmethod
    def _reserve(plan):
        sid0 = None
        if plan.fast is not None:
            try:
                sid0, number = yield FastStep(plan)
            except Exception:        # a lost race or a hint out of step: the general path decides
                log.debug("DNI fast path failed; using the general path", exc_info=True)
            else:
                if number is not None:
                    return plan.fast_result(sid0, number)
        return (yield Step(dni.complete, plan, sid0))

    def _seen(self, engine, ping):
        """Store that the snippet ran (at most once a minute per origin); a failure loses only that."""
        write = self.pings.note(engine, ping, time.monotonic())
        if write is None:
            return
        try:
            yield Step(self.pings.write, engine, ping, write[1])
        except Exception as e:
            self.pings.failed(*write)
            log.warning("DNI: could not store where the snippet ran: %s", e)

    def _heartbeat(self, engine, key, visitor_id, client: str):
        now = time.time()
        out = yield Step(holds.heartbeat, engine, key, visitor_id, None, self.signer)
        for pool_id, hold in out.held:
            self.holds.settle(pool_id, visitor_id, client, now + hold)
        return out

    def _prime(self, engine):
        """Fill the hold ledger from the database's live holds, once (after a failure, the
        requests of the next 10 s go on without it; then it is tried again)."""
        with self.holds.prime_lock:
            if self.holds.primed:
                return
            now = dni.utcnow()
            try:
                rows = dni_guard.load_live_holds(engine, now)
            except Exception as e:
                self._prime_after = time.monotonic() + 10.0
                log.warning("DNI: could not read the live holds (%s); the hold caps count this "
                            "process's holds only until it works", e)
                return
            self.holds.prime(rows, now.timestamp())

    def parse_body(self, raw):
        if raw is BAD_LENGTH:
            return None, (400, "invalid Content-Length")
        limit = self.cfg("DNI_MAX_BODY")
        if raw is None or len(raw) > limit:
            return None, (413, f"request body too large (at most {limit} bytes)")
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None, (400, "invalid JSON body")
        if not isinstance(data, dict):
            return None, (400, "expected a JSON object")
        return data, None


STATUS = {200: "200 OK", 202: "202 Accepted", 204: "204 No Content", 304: "304 Not Modified", 400: "400 Bad Request",
          403: "403 Forbidden", 404: "404 Not Found", 405: "405 Method Not Allowed", 408: "408 Request Timeout",
          411: "411 Length Required", 413: "413 Payload Too Large", 429: "429 Too Many Requests",
          422: "422 Unprocessable Entity", 431: "431 Request Header Fields Too Large", 500: "500 Internal Server Error",
          503: "503 Service Unavailable", 505: "505 HTTP Version Not Supported"}


def render(status: int, payload, headers: list):
    """``(status line, headers, body bytes)`` of an API answer (JSON or empty)."""
    body = b"" if payload is None else json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    headers = headers + API_HEADERS + [("Content-Length", str(len(body)))]
    if payload is not None:
        headers.append(("Content-Type", "application/json"))
    return STATUS[status], headers, body


def _cors(origin):
    if not origin:
        return []
    return [("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Methods", "POST, OPTIONS"),
            ("Access-Control-Allow-Headers", "Content-Type"), ("Access-Control-Max-Age", "600")]


def pool_held_text(pool) -> str:
    """The pools page's pressure column: ``held/numbers (share), N new`` (new: provisional holds)."""
    from flask_babel import gettext
    from sqlalchemy.orm import object_session

    st = holds.pool_status(object_session(pool), pool)
    text = f"{st['held']}/{st['numbers']}"
    if st["pressure"] is not None:
        text += f" ({st['pressure']:.0%})"
    if st["provisional"]:
        text += ", " + gettext("%(n)d new", n=st["provisional"])
    return text


def pool_refused_text(pool) -> str:
    """The pools page's refusals column: new holds refused by the caps since the service started."""
    from flask_babel import gettext
    from sqlalchemy.orm import object_session

    counts = dni_guard.refused_counts(dni_guard.db_key(object_session(pool).get_bind()), pool.id)
    if not counts:
        return "0"
    names = {dni_guard.CLIENT_LIMIT: gettext("per client"), dni_guard.VISITOR_LIMIT: gettext("per visitor")}
    detail = ", ".join(f"{names.get(k, k)} {n}" for k, n in sorted(counts.items()))
    return gettext("%(n)d refused", n=sum(counts.values())) + f" ({detail})"


_snippet_cache: dict = {}


def snippet(if_none_match: str = ""):
    """``(status, body, headers)`` of ``GET /dni.js`` for both servers: cached 5 minutes by
    browsers, any site may load it, an ETag for revalidation (304)."""
    path = os.path.join(STATIC, "dni.js")
    st = os.stat(path)
    key = (st.st_mtime_ns, st.st_size)
    cached = _snippet_cache.get(path)
    if cached is None or cached[0] != key:
        with open(path, "rb") as f:
            data = f.read()
        cached = _snippet_cache[path] = (key, data, '"%s"' % hashlib.sha1(data).hexdigest()[:20])
    _, data, etag = cached
    headers = [("Content-Type", "application/javascript; charset=utf-8"), ("Cache-Control", "public, max-age=300"),
               ("ETag", etag), ("Access-Control-Allow-Origin", "*"), ("X-Content-Type-Options", "nosniff")]
    if if_none_match and etag in [t.strip().removeprefix("W/") for t in if_none_match.split(",")]:
        return 304, b"", headers
    return 200, data, headers


@bp.record_once
def _install(state):
    app = state.app
    ext = app.extensions["calltracking"]
    api = DniApi(app.config, lambda: ext["sessionmaker"].kw["bind"], app.wsgi_app, config=ext.get("config"))
    app.wsgi_app = api
    app.extensions["dni_api"] = api


@bp.route("/dni.js", endpoint="snippet")
def snippet_route():
    status, data, headers = snippet(request.headers.get("If-None-Match", ""))
    resp = Response(data, status=status)
    for k, v in headers:
        resp.headers[k] = v
    return resp


def _through_flask(kind: str):
    """Only reached when the app's WSGI pipeline bypasses DniApi (e.g. a wrapped test app)."""
    api = current_app.extensions["dni_api"]
    body = request.get_data(cache=False) if request.content_length is None or \
        request.content_length <= api.cfg("DNI_MAX_BODY") else None
    status, payload, headers = run_blocking(api.handle(request.method, request.path, request.headers.get("Origin"),
                                                       api.environ_ip(request.environ), request.user_agent.string,
                                                       body))
    status_line, headers, data = render(status, payload, headers)
    return Response(data, status=status, headers=headers)


@bp.route("/api/dni/assign", methods=["POST", "OPTIONS"])
def assign():
    return _through_flask("assign")


@bp.route("/api/dni/heartbeat", methods=["POST", "OPTIONS"])
def heartbeat():
    return _through_flask("heartbeat")


@bp.route("/api/dni/ping", methods=["POST", "OPTIONS"])
def ping():
    return _through_flask("ping")


@bp.route("/api/dni/callback", methods=["POST", "OPTIONS"])
def callback():
    return _through_flask("callback")
