"""`calltracking agi`, `routes test`, the doctor checks and the shipped Asterisk files."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

from agi.doctor import fastagi_handshake, include_status

from support.agi_server import ServerThread
from support.fastagi_client import call, headers
from support.net import free_port

ROOT = Path(__file__).resolve().parents[2]
DIALPLAN = ROOT / "dialplan"


def test_calltracking_agi_serves_and_stops_on_sigterm(db_url, data, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLTRACKING_")}
    env.update(CALLTRACKING_DATABASE_URL=db_url, CALLTRACKING_AGI_LISTEN=f"127.0.0.1:{port}",
               CALLTRACKING_AGI_TIMEOUT_MS="3000", CALLTRACKING_AGI_SPOOL_DIR=str(tmp_path / "spool"))
    proc = subprocess.Popen([sys.executable, "-c", "from calltracking.cli import main; main(['agi'])"],
                            cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert b"FastAGI listening on" in proc.stderr.readline()
        assert call(port, headers()).vars["CT_QUEUE"] == "sales"
        assert fastagi_handshake("127.0.0.1", port) == 'SET VARIABLE CT_STATUS "ok"'
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
        proc.stdout.close()


def test_routes_test_is_a_dry_run(run_cli, data, session_factory):
    from calltracking.models import Call

    res = run_cli("routes", "test", "+7 495 000-10-01", "--caller", "89161110001")
    assert re.search(r"CT_SOURCE\s+Google Ads", res.output) and re.search(r"CT_QUEUE\s+sales", res.output)
    res = run_cli("routes", "test", "74950001002", "--at", "2026-03-07T12:00", "--format", "json")
    assert '"CT_ATTRIBUTION": "static"' in res.output
    s = session_factory()
    assert s.query(Call).count() == 0
    s.close()


def test_doctor_checks(run_cli, data, config, session_factory, tmp_path, monkeypatch):
    srv = ServerThread(config, session_factory)
    try:
        monkeypatch.setenv("CALLTRACKING_AGI_LISTEN", f"127.0.0.1:{srv.port}")
        monkeypatch.setenv("CALLTRACKING_ASTERISK_CONFIG_DIR", str(tmp_path))
        (tmp_path / "extensions.conf").write_text("[general]\n#include extensions_calltracking.conf\n")
        (tmp_path / "extensions_calltracking.conf").write_text("; ours\n")
        out = run_cli("doctor", ok=False).output
        assert re.search(r"OK\s+fastagi: FastAGI server answers", out)
        assert re.search(r"OK\s+dialplan include", out)
    finally:
        srv.stop()
    out = run_cli("doctor", ok=False).output                 # server stopped
    assert re.search(r"FAIL fastagi: no FastAGI server answers", out) and "calltracking run" in out
    (tmp_path / "extensions.conf").write_text("[general]\n;#include extensions_calltracking.conf\n")
    r = include_status(str(tmp_path))
    assert r.status == "fail" and "#include extensions_calltracking.conf" in r.fix
    assert include_status(str(tmp_path / "nope")).status == "warn"


def test_fastagi_check_rejects_a_foreign_server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        import threading

        def serve():
            c, _ = s.accept()
            c.recv(1000)
            c.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")
            c.close()

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        assert fastagi_handshake("127.0.0.1", port).startswith("HTTP/1.0 400")
        t.join(5)


def test_manager_conf_least_privilege():
    lines = [l.strip() for l in (DIALPLAN / "manager_calltracking.conf").read_text().splitlines()
             if l.strip() and not l.lstrip().startswith(";")]
    assert "secret = @AMI_SECRET@" in lines
    kv = dict(l.split(" = ", 1) for l in lines if " = " in l)
    # "dialplan" carries VarSet (CT_* variables, QUEUESTATUS, MixMonitor file name) for the listener
    assert kv["read"] == "call,cdr,agent,user,dialplan" and kv["write"] == "reporting"
    assert kv["permit"].startswith("127.0.0.1/") and kv["deny"] == "0.0.0.0/0.0.0.0"
    assert not re.search(r"command|system|config|originate", kv["read"] + kv["write"])


def test_extensions_include_contract():
    text = (DIALPLAN / "extensions_calltracking.conf").read_text()
    contexts = re.findall(r"^\[([^\]]+)\]", text, re.M)
    assert contexts and all(c.startswith("calltracking-") for c in contexts)
    assert {"calltracking-inbound", "calltracking-route", "calltracking-promo"} <= set(contexts)
    code = [l for l in text.splitlines() if l.strip() and not l.lstrip().startswith(";")]
    for line in code:                    # balanced ${...}, $[...] and parentheses on every line
        assert line.count("(") == line.count(")"), line
        assert line.count("{") == line.count("}") and line.count("[") == line.count("]"), line
    hooks = set(re.findall(r"AGI\(agi://127\.0\.0\.1:4573/(\w+),", text))
    assert hooks == {"route", "promo", "tag", "lookup"}
    route = text.split("[calltracking-route]")[1].split("\n[")[0]
    assert '"${AGISTATUS}" = "SUCCESS"' in route and "Set(CT_QUEUE=${CALLTRACKING_DEFAULT_QUEUE})" in route
    inbound = text.split("[calltracking-inbound]")[1].split("\n[")[0]
    assert "MixMonitor(" in inbound and "${CT_CALL_ID}" in inbound and "Queue(${CT_QUEUE}" in inbound
    assert "Dial(${CT_TARGET}" in inbound
