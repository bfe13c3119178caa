"""Helpers of the DNI tests (a module name unique in the suite: every test folder has a conftest)."""
from __future__ import annotations

import asyncio
import http.server
import socket
import sys
import threading
from pathlib import Path

from calltracking.dni import assign as dni
from calltracking import entities as svc

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agi"))
import fake_asterisk  # noqa: E402  (the Asterisk-like FastAGI client of the AGI tests)
from calltracking.config import load_config
from calltracking.db import session_scope

POOL_BASE = 74950002000          # +7 495 000-20-00 … pool numbers
DEFAULT = "+74951234567"         # the site's own number (project default)
FALLBACK = "+74951230000"        # pool fallback
STATIC_BILLBOARD = "+74950001001"


def make_project(factory, key="acme", pool_size=20, hold_seconds=900, origins="", promo_mode="off",
                 base=POOL_BASE):
    with session_scope(factory) as s:
        p = svc.add_project(s, key, key.title(), "Europe/Moscow", "sales", DEFAULT)
        p.allowed_origins = origins
        google = svc.add_source(s, p, "Google Ads", "ads", "google")
        svc.add_campaign(s, google, "Brand", "brand_spring")
        billboard = svc.add_source(s, p, "Billboard", "offline", "billboard")
        svc.add_number(s, p, STATIC_BILLBOARD if base == POOL_BASE else f"+{base + 900}", source=billboard)
        pool = svc.add_pool(s, p, "website", hold_seconds=hold_seconds, fallback_number=FALLBACK)
        pool.promo_mode = promo_mode
        for i in range(pool_size):
            svc.add_number(s, p, f"+{base + i}", pool=pool)
        ids = {"project": p.id, "pool": pool.id, "google": google.id, "billboard": billboard.id}
    dni.invalidate_cache()
    return ids



# ----------------------------------------------------------------- live servers

UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/120.0.0.0 Safari/537.36")


def make_app(cfg, factory):
    """The real application (webui.create_app), which registers webui.dni.

    While the web UI area is still being written in the shared tree, its factory may not
    import; then the DNI blueprint runs in a bare Flask app (CALLTRACKING_DNI_REQUIRE_APP=1
    makes that an error).
    """
    import os

    try:
        from webui import create_app

        return create_app(cfg, factory, testing=True)
    except ImportError:
        if os.environ.get("CALLTRACKING_DNI_REQUIRE_APP"):
            raise
        from flask import Flask

        from webui import dni as dni_web

        app = Flask("dni-test")
        app.extensions["calltracking"] = {"config": cfg, "sessionmaker": factory}
        app.register_blueprint(dni_web.bp)
        return app


def server_config(db_url, extra=None):
    """The configuration of the test servers; ``extra``: {"section_key": value} (e.g.
    ``{"web_trusted_proxies": "127.0.0.1/8"}``)."""
    env = {"CALLTRACKING_DATABASE_URL": db_url,
           "CALLTRACKING_WEB_SECRET_KEY": "test-secret-key-0123456789abcdef",
           "CALLTRACKING_WEB_SECURE_COOKIES": "no"}
    env.update({f"CALLTRACKING_{k.upper()}": str(v) for k, v in (extra or {}).items()})
    return load_config(env=env, path="/nonexistent.ini", require_file=False)


class LiveServer:
    """The real Flask app under waitress (the production WSGI server) in a thread. Waitress
    passes X-Forwarded-For on (as when it trusts the proxy in front of it); the application
    decides whom to believe (``[web] trusted_proxies``)."""

    def __init__(self, db_url, factory, app=None, config=None, **flask_config):
        from waitress import create_server

        cfg = server_config(db_url, config)
        self.app = app or make_app(cfg, factory)
        self.app.config.update(flask_config)
        self.server = create_server(self.app, host="127.0.0.1", port=0, threads=8,
                                    clear_untrusted_proxy_headers=False)
        self.port = self.server.effective_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        srv = self.server
        while not self._stop.is_set():
            srv.asyncore.loop(timeout=0.05, map=srv._map, use_poll=True, count=1)
        srv.task_dispatcher.shutdown()
        for channel in list(srv._map.values()):
            channel.close()

    def close(self):
        self._stop.set()
        self.thread.join(timeout=10)


class SiteServer:
    """A static "customer site" on another port (so the snippet's requests are cross-origin)."""

    def __init__(self, pages: dict):
        pages = dict(pages)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                path = self.path.split("?", 1)[0]
                body = pages.get(path)
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.origin = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()



def post_json(url, body, headers=None, raw: bytes | None = None, timeout=10):
    """POST with urllib; returns (status, parsed JSON or None, headers)."""
    import json
    import urllib.error
    import urllib.request

    data = raw if raw is not None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "text/plain", "User-Agent": UA, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null"), dict(r.headers)
    except urllib.error.HTTPError as e:
        payload = e.read()
        try:
            parsed = json.loads(payload)
        except ValueError:
            parsed = None
        return e.code, parsed, dict(e.headers)


SNIPPET_ROOT = Path(__file__).resolve().parents[2] / "webui" / "static" / "dni.js"


# ----------------------------------------------------------------- FastAGI


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Agi:
    """run_agi (the production entry point) on its own event loop in a thread."""

    def __init__(self, db_url, factory):
        from agi.server import run_agi

        self.port = _free_port()
        cfg = load_config("/nonexistent.ini", env={}, require_file=False, overrides={
            "database.url": db_url, "agi.listen": f"127.0.0.1:{self.port}", "general.pbx_id": "pbx1",
            "agi.timeout_ms": "3000"})
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def main():
            self.stop = asyncio.Event()
            started = asyncio.Event()
            task = asyncio.create_task(run_agi(cfg, factory, self.stop, started))
            await started.wait()
            ready.set()
            await task

        self.thread = threading.Thread(target=lambda: self.loop.run_until_complete(main()), daemon=True)
        self.thread.start()
        assert ready.wait(10)

    def close(self):
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)

    def call(self, hook: str, args: tuple, digits=()) -> dict:
        """Behave like Asterisk 22 (headers from the recording): answer commands, collect variables."""
        res = fake_asterisk.call(self.port, fake_asterisk.headers(hook, args), digits)
        return res.vars


class FastServer:
    """The asyncio DNI server ([dni] listen; webui.dni_server) on a free port, sharing the real
    application's DniApi (so ``flask_config`` such as DNI_RATE_BURST applies to both)."""

    def __init__(self, db_url, factory, max_connections: int = 1000, config=None, **flask_config):
        from webui.dni_server import DniServer

        cfg = server_config(db_url, config)
        self.app = make_app(cfg, factory)
        self.app.config.update(flask_config)
        self.api = self.app.extensions["dni_api"]
        self.server = DniServer(self.api, "127.0.0.1", 0, max_connections=max_connections).start()
        self.port = self.server.port
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self):
        self.server.close()


def raw_exchange(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes on a new connection; everything the server sends until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def read_response(sock, buf: bytearray) -> tuple:
    """One HTTP response from a keep-alive socket: (status, headers dict lower-case, body)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed by the server; got {bytes(buf)!r}")
        buf += chunk
    end = buf.index(b"\r\n\r\n")
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", 0))
    while len(buf) < end + 4 + length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed in a body")
        buf += chunk
    body = bytes(buf[end + 4:end + 4 + length])
    del buf[:end + 4 + length]
    return int(lines[0].split(" ")[1]), headers, body


def request_bytes(method: str, path: str, body=None, headers=None, version: str = "HTTP/1.1") -> bytes:
    import json

    raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    head = {"Host": "127.0.0.1", "User-Agent": UA, **(headers or {})}
    if body is not None:
        head.setdefault("Content-Length", str(len(raw)))
    return (f"{method} {path} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.items()) + "\r\n"
            ).encode("latin-1") + raw


def open_page(browser, ga_cookie: str | None = None, url: str = ""):
    """A fresh browser context and page that collects JavaScript errors: ``(ctx, page, errors)``;
    ``ga_cookie`` sets Google Analytics' ``_ga`` cookie for ``url`` first."""
    ctx = browser.new_context()
    if ga_cookie:
        ctx.add_cookies([{"name": "_ga", "value": ga_cookie, "url": url}])
    page = ctx.new_page()
    errors: list = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return ctx, page, errors
