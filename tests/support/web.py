"""The web UI under test: its users and calls, the real application served for real, and raw HTTP.

- data: :data:`PASSWORD` of every test user, :data:`HOSTILE_NAMES`, :func:`add_call`;
- the test client: :func:`login`, :func:`csrf_token`;
- servers: :class:`LiveServer` (the real application under waitress), :class:`SiteServer`
  (a static "customer site" on another origin);
- HTTP by hand: :func:`post_json` (urllib), :func:`raw_exchange`, :func:`read_response`,
  :func:`request_bytes` (bytes on a socket), with a browser's :data:`UA`.
"""
from __future__ import annotations

import datetime as dt
import http.server
import json
import re
import socket
import threading
import urllib.error
import urllib.request
from decimal import Decimal

from waitress import create_server

from calltracking.models import Call, CallLeg, utcnow
from support.config import make_config
from webui import create_app

PASSWORD = "correct-horse-battery"
HOSTILE_NAMES = ('<script>alert(1)</script>', '"><img src=x onerror=alert(1)>')
UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/120.0.0.0 Safari/537.36")


def add_call(session_factory, project_id, linkedid, caller="+74951112233", name="Ivan", status="answered",
             started=None, operator_id=None, source_id=None, **kw):
    """A call of ``project_id`` (answered: 7 s wait, 60 s talk; missed: 20 s wait), with a leg of
    operator ``operator_id`` when given; returns its id."""
    s = session_factory()
    started = started or utcnow() - dt.timedelta(minutes=5)
    c = Call(pbx_id="pbx1", linkedid=linkedid, project_id=project_id, did="+74950001001",
             caller_number=caller, caller_name=name, source_id=source_id, status=status,
             started_at=started, operator_id=operator_id, **kw)
    if status == "answered":
        c.answered_at = started + dt.timedelta(seconds=7)
        c.ended_at = started + dt.timedelta(seconds=67)
        c.wait_seconds, c.talk_seconds = Decimal("7"), Decimal("60")
    elif status == "missed":
        c.ended_at = started + dt.timedelta(seconds=20)
        c.wait_seconds, c.missed_reason = Decimal("20"), kw.get("missed_reason") or "abandoned"
    s.add(c)
    s.flush()
    if operator_id:
        s.add(CallLeg(call_id=c.id, operator_id=operator_id, operator_name="Olga", interface="PJSIP/101",
                      uniqueid=linkedid + ".1", rung_at=started + dt.timedelta(seconds=2),
                      answered_at=c.answered_at, ended_at=c.ended_at,
                      outcome="answered" if status == "answered" else "ringing"))
    s.commit()
    cid = c.id
    s.close()
    return cid


def login(client, username, password=PASSWORD):
    """Sign ``client`` (Flask's test client) in through the login form; the response (302 when
    signed in)."""
    return client.post("/login", data={"username": username, "password": password})


def csrf_token(html: str) -> str:
    """The CSRF token of the first form in ``html``."""
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)


# ----------------------------------------------------------------- servers
class LiveServer:
    """The real Flask app under waitress (the production WSGI server) in a thread. Waitress
    passes X-Forwarded-For on (as when it trusts the proxy in front of it); the application
    decides whom to believe (``[web] trusted_proxies``). ``config``: settings of
    :func:`support.config.make_config` (``{"web__trusted_proxies": "127.0.0.1"}``); ``flask_config``:
    the application's own (``DNI_RATE_BURST=3``)."""

    def __init__(self, db_url, factory, app=None, config=None, **flask_config):
        self.app = app or create_app(make_config(db_url, **(config or {})), factory, testing=True)
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


# ----------------------------------------------------------------- HTTP by hand
def post_json(url, body, headers=None, raw: bytes | None = None, timeout=10):
    """POST with urllib; returns (status, parsed JSON or None, headers)."""
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
    """One HTTP request as bytes (a browser's User-Agent; a JSON ``body`` unless bytes)."""
    raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    head = {"Host": "127.0.0.1", "User-Agent": UA, **(headers or {})}
    if body is not None:
        head.setdefault("Content-Length", str(len(raw)))
    return (f"{method} {path} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.items()) + "\r\n"
            ).encode("latin-1") + raw
