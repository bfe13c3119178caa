"""The production server (waitress) and `calltracking web`."""
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from support.config import make_config

pytestmark = pytest.mark.db
ROOT = Path(__file__).resolve().parents[2]


def test_make_server_runs_and_closes(db_url, session_factory, world):
    from webui.server import make_server

    cfg = make_config(db_url, web__listen="127.0.0.1:0")
    server = make_server(cfg, session_factory)
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    port = server.effective_port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
        assert r.status == 200 and b"ok" in r.read()
        assert r.headers["Server"] == "calltracking"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as r:
        assert b"csrf_token" in r.read()
    server.close()
    t.join(10)
    assert not t.is_alive()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)


def test_make_server_refuses_without_secret(db_url, session_factory):
    from calltracking.config import ConfigError
    from webui.server import make_server

    with pytest.raises(ConfigError):
        make_server(make_config(db_url, web__secret_key=""), session_factory)


def _env(db_url, **kw):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLTRACKING_")}
    env.update({"CALLTRACKING_DATABASE_URL": db_url, "CALLTRACKING_CONFIG": "/nonexistent.ini",
                "PYTHONPATH": str(ROOT)})
    env.pop("CALLTRACKING_CONFIG")
    env.update(kw)
    return env


def test_cli_web_refuses_without_secret(db_url):
    p = subprocess.run([sys.executable, "-m", "calltracking", "web"], env=_env(db_url), cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "secret_key" in p.stderr


def test_cli_web_serves_and_stops_on_sigterm(db_url):
    env = _env(db_url, CALLTRACKING_WEB_SECRET_KEY="another-test-secret-0123456789")
    p = subprocess.Popen([sys.executable, "-m", "calltracking", "web", "--listen", "127.0.0.1:0"], env=env,
                         cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stderr.readline()
        assert "web UI on http://127.0.0.1:" in line, line
        port = int(line.split("127.0.0.1:")[1].split("/")[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=10) as r:
            assert r.status == 200
        p.send_signal(signal.SIGTERM)
        assert p.wait(15) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
