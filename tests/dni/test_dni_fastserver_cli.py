"""`calltracking web` and `calltracking run` (real processes) serve the UI on [web] listen and the DNI endpoints on
[dni] listen, and stops on SIGTERM; an empty [dni] listen starts no DNI server."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from support.dni import make_project
from support.web import post_json


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def _wait(pred, what: str, proc, log, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}:\n{log.read_text(errors='replace')}")


def _start(tmp_path, db_url, dni_listen: str, command=("web",), web_extra: str = ""):
    web_port = _port()
    ini = tmp_path / "config.ini"
    ini.write_text(f"""
[database]
url = {db_url}
[web]
listen = 127.0.0.1:{web_port}
secret_key = {"k" * 40}
secure_cookies = no
{web_extra}
[dni]
listen = {dni_listen}
""")
    log = tmp_path / "web.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLTRACKING_")}
    proc = subprocess.Popen([sys.executable, "-m", "calltracking", "--config", str(ini), *command],
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
    return proc, web_port, log


@pytest.mark.parametrize("command", [("web",), ("run", "--only", "web")])
def test_web_and_run_start_both_listeners_and_stop_on_sigterm(tmp_path, db_url, session_factory, command):
    make_project(session_factory, origins="https://shop.example")
    dni_port = _port()
    proc, web_port, log = _start(tmp_path, db_url, f"127.0.0.1:{dni_port}", command)
    try:
        _wait(lambda: _get(f"http://127.0.0.1:{dni_port}/healthz") == 200, "the DNI server", proc, log)
        _wait(lambda: _get(f"http://127.0.0.1:{web_port}/login") == 200, "the web UI", proc, log)
        st, body, h = post_json(f"http://127.0.0.1:{dni_port}/api/dni/assign", {"project": "acme"},
                                {"Origin": "https://shop.example"})
        assert st == 200 and body["kind"] == "pool" and h["Access-Control-Allow-Origin"] == "https://shop.example"
        assert h["Server"] == "calltracking-dni"
        # the web port keeps serving the same endpoints (sites that do not proxy the DNI port)
        st, body2, _ = post_json(f"http://127.0.0.1:{web_port}/api/dni/heartbeat",
                                 {"project": "acme", "visitor_id": body["visitor_id"]},
                                 {"Origin": "https://shop.example"})
        assert st == 200 and body2["number"] == body["number"]
        assert "DNI endpoints" in log.read_text() and f"127.0.0.1:{dni_port}/" in log.read_text()
        t = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert time.monotonic() - t < 10
        assert _get(f"http://127.0.0.1:{dni_port}/healthz") == 0          # both ports closed
        assert _get(f"http://127.0.0.1:{web_port}/login") == 0
        assert "Traceback" not in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_empty_listen_starts_no_dni_server_and_a_taken_port_is_not_fatal(tmp_path, db_url):
    proc, web_port, log = _start(tmp_path, db_url, "")
    try:
        _wait(lambda: _get(f"http://127.0.0.1:{web_port}/login") == 200, "the web UI", proc, log)
        assert "DNI endpoints" not in log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    with socket.socket() as taken:                    # someone else holds the DNI port
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        proc, web_port, log = _start(tmp_path, db_url, f"127.0.0.1:{taken.getsockname()[1]}")
        try:
            _wait(lambda: _get(f"http://127.0.0.1:{web_port}/login") == 200, "the web UI", proc, log)
            text = log.read_text()
            assert "DNI server NOT started" in text and "still serves /dni.js and /api/dni/" in text
            st, _, _ = post_json(f"http://127.0.0.1:{web_port}/api/dni/assign", {"project": "nope"})
            assert st == 404
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(15) == 0


def test_behind_a_trusted_proxy_both_listeners_count_one_client_together(tmp_path, db_url, session_factory):
    """`calltracking web` as deployed behind nginx: the forwarded address is the client on the
    DNI port and on the web port alike, and the two share its hold cap (4 by default)."""
    make_project(session_factory, origins="https://shop.example")
    dni_port = _port()
    proc, web_port, log = _start(tmp_path, db_url, f"127.0.0.1:{dni_port}",
                                 web_extra="trusted_proxies = 127.0.0.1, ::1")
    try:
        _wait(lambda: _get(f"http://127.0.0.1:{dni_port}/healthz") == 200, "the DNI server", proc, log)
        _wait(lambda: _get(f"http://127.0.0.1:{web_port}/login") == 200, "the web UI", proc, log)
        kinds = []
        for i in range(6):              # one visitor's address, written by the proxy; both ports
            port = dni_port if i % 2 else web_port
            st, body, _ = post_json(f"http://127.0.0.1:{port}/api/dni/assign", {"project": "acme"},
                                    {"Origin": "https://shop.example",
                                     "X-Forwarded-For": f"10.0.0.{i}, 203.0.113.77"})
            assert st == 200
            kinds.append(body["kind"])
        assert kinds == ["pool"] * 4 + ["refused"] * 2
        for port in (web_port, dni_port):   # another visitor behind the same proxy: a number
            st, body, _ = post_json(f"http://127.0.0.1:{port}/api/dni/assign", {"project": "acme"},
                                    {"Origin": "https://shop.example", "X-Forwarded-For": f"198.51.100.{port % 250}"})
            assert body["kind"] == "pool"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
