"""`calltracking doctor` checks of the DNI server (and the web UI port) over real sockets."""
from __future__ import annotations

import http.server
import re
import threading

from support.dni import FastServer
from support.web import LiveServer


def _doctor(run_cli, monkeypatch, **env):
    for k, v in env.items():
        monkeypatch.setenv(f"CALLTRACKING_{k.upper()}", v)
    return run_cli("doctor", ok=False).output


def test_doctor_sees_the_dni_server_and_the_web_ui(run_cli, db_url, session_factory, monkeypatch):
    fast = FastServer(db_url, session_factory)
    live = LiveServer(db_url, session_factory)
    try:
        out = _doctor(run_cli, monkeypatch, dni_listen=f"127.0.0.1:{fast.port}",
                      web_listen=f"127.0.0.1:{live.port}")
        assert re.search(r"OK\s+dni server: DNI server answers on http://127.0.0.1:\d+/", out), out
        assert re.search(r"OK\s+web ui: web UI answers", out), out
    finally:
        fast.close()
        live.close()
    out = run_cli("doctor", ok=False).output                 # both stopped
    assert re.search(r"FAIL dni server: nothing answers on 127.0.0.1:\d+", out), out
    assert "calltracking run" in out
    assert re.search(r"FAIL web ui: nothing answers", out), out
    out = _doctor(run_cli, monkeypatch, dni_listen="")
    assert re.search(r"OK\s+dni server: not started \(\[dni\] listen is empty\)", out), out


def test_doctor_rejects_a_foreign_program_on_the_dni_port(run_cli, monkeypatch):
    class Other(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{"status": "ok"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), Other)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        out = _doctor(run_cli, monkeypatch, dni_listen=f"127.0.0.1:{srv.server_port}")
    finally:
        srv.shutdown()
    assert re.search(r"FAIL dni server: 127.0.0.1:\d+ answered HTTP 200 \(server 'BaseHTTP", out), out
    assert "change [dni] listen" in out
