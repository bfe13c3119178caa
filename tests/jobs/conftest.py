"""Fixtures of the jobs/recordings/integrations tests: real SMTP and HTTP servers on loopback."""
from __future__ import annotations

import datetime as dt
import json
import queue
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from calltracking.models import Call, Project, Source, utcnow
from support.net import free_port


@pytest.fixture
def project(session_factory):
    with session_factory() as s:
        p = Project(key="acme", name="Acme & Co", timezone="Europe/Moscow")
        s.add(p)
        s.flush()
        src = Source(project_id=p.id, name="Google Ads", channel="ads", short_label="GA")
        s.add(src)
        s.flush()
        s.commit()
        return {"id": p.id, "source_id": src.id}


@pytest.fixture
def add_call(session_factory, project):
    counter = iter(range(1, 10000))

    def add(status="missed", started=None, seconds=30, caller="+74951234567", name="Ivan",
            source=True, **kw):
        n = next(counter)
        started = started or utcnow() - dt.timedelta(seconds=seconds + 60)
        ended = started + dt.timedelta(seconds=seconds)
        with session_factory() as s:
            c = Call(pbx_id="pbx1", linkedid=f"1795391970.{n}", project_id=project["id"], did="+74950001001",
                     caller_number=caller, caller_name=name, attribution="static",
                     source_id=project["source_id"] if source else None, queue="sales", started_at=started,
                     ended_at=ended, status=status, first_call=True,
                     missed_reason="abandoned" if status == "missed" else None,
                     wait_seconds=Decimal(seconds) if status == "missed" else Decimal(5))
            if status == "answered":
                c.answered_at = started + dt.timedelta(seconds=5)
                c.talk_seconds = Decimal(seconds - 5)
                c.operator_name = "Anna"
            for k, v in kw.items():
                setattr(c, k, v)
            s.add(c)
            s.commit()
            return c.id

    return add


class SmtpSink:
    def __init__(self):
        self.messages = []
        self.got = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        from email import message_from_bytes
        from email.policy import default

        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=default)))
        self.got.set()
        return "250 OK"


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    port = free_port()
    sink = SmtpSink()
    ctl = Controller(sink, hostname="127.0.0.1", port=port)
    ctl.start()
    sink.port = port
    try:
        yield sink
    finally:
        ctl.stop()


class HttpSink:
    """Records every request; answers with the queued status codes (then 200)."""

    def __init__(self):
        self.requests = []
        self.codes = queue.Queue()
        self.always = None
        self.body = None        # bytes answered instead of the JSON {"ok": …}
        self.location = None    # Location header of a 3xx answer

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def http_server():
    sink = HttpSink()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            u = urlsplit(self.path)
            sink.requests.append({"method": self.command, "path": u.path, "query": parse_qs(u.query),
                                  "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
            try:
                code = sink.codes.get_nowait()
            except queue.Empty:
                code = sink.always or 200
            out = sink.body if sink.body is not None else json.dumps({"ok": code < 400}).encode()
            self.send_response(code)
            if 300 <= code < 400 and sink.location:
                self.send_header("Location", sink.location)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_POST = do_GET = _handle

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    sink.port = srv.server_address[1]
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield sink
    finally:
        srv.shutdown()
        srv.server_close()
