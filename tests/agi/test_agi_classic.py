"""The classic AGI script end to end: a real process, Asterisk's stdin/stdout protocol."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from calltracking.db import session_scope
from calltracking.models import Call

from support.fastagi_client import CallResult, answer, headers

ROOT = Path(__file__).resolve().parents[2]


def classic_headers(hook, args, **fields):
    """What Asterisk sends a classic script: agi_request is the script, the hook is argument 1."""
    out = []
    for line in headers(hook, (hook, *args), **fields):
        key = line.split(":", 1)[0]
        if key in ("agi_network", "agi_network_script"):
            continue
        if key == "agi_request":
            line = "agi_request: calltracking"
        out.append(line)
    return out


def run_classic(db_url, hook, args, digits=(), extra_env=None, **fields) -> tuple[CallResult, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLTRACKING_")}
    env.update({"CALLTRACKING_CONFIG": "/nonexistent/calltracking.ini",
                "CALLTRACKING_DATABASE_URL": db_url, "CALLTRACKING_GENERAL_DEFAULT_QUEUE": "general-q",
                "CALLTRACKING_AGI_TIMEOUT_MS": "3000", **(extra_env or {})})
    env.pop("CALLTRACKING_CONFIG")   # no file: defaults + environment
    proc = subprocess.Popen([sys.executable, "-m", "agi.classic", hook, *args], cwd=ROOT, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdin.write(("\n".join(classic_headers(hook, args, **fields)) + "\n\n").encode())
    proc.stdin.flush()
    res, digits = CallResult(), list(digits)
    while True:
        line = proc.stdout.readline()
        if not line:
            break
        proc.stdin.write((answer(line.decode().rstrip("\n"), res, digits) + "\n").encode())
        proc.stdin.flush()
    rc = proc.wait(30)
    proc.stdin.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    proc.stdout.close()
    res.stderr = err
    return res, rc


def test_classic_route_promo_tag(db_url, data, session_factory):
    res, rc = run_classic(db_url, "route", ("74950001001", "cl.1"), agi_calleridname='Eve "x"')
    assert rc == 0, res.stderr
    v = res.vars
    assert v["CT_QUEUE"] == "sales" and v["CT_ATTRIBUTION"] == "static" and v["CT_SOURCE"] == "Google Ads"
    assert v["CT_CALL_ID"] == "pbx1-cl.1" and v["CT_STATUS"] == "ok"
    assert v["CALLERID(name)"] == '[Google] Eve "x"'
    res, rc = run_classic(db_url, "promo", ("cl.1",), digits=["0000", "4242"])
    assert rc == 0 and res.vars["CT_PROMO"] == "valid" and res.vars["CT_PROMO_ATTEMPTS"] == "2"
    res, rc = run_classic(db_url, "tag", ("cl.1", "classic"))
    assert res.vars == {"CT_TAG": "classic", "CT_STATUS": "ok"}
    with session_scope(session_factory) as s:
        row = s.scalars(select(Call).where(Call.linkedid == "cl.1")).one()
        assert row.attribution == "promo" and row.via_agi and [t.name for t in row.tags] == ["classic"]


def test_classic_database_down_answers_defaults(tmp_path, data):
    bad = tmp_path / "garbage.db"
    bad.write_bytes(b"this is not a database" * 300)
    res, rc = run_classic(f"sqlite:///{bad}", "route", ("74950001001", "cl.2"))
    assert rc == 0
    assert res.vars["CT_QUEUE"] == "general-q" and res.vars["CT_STATUS"] == "fallback"
    assert "answered with defaults" in res.stderr
    res, rc = run_classic("sqlite:///x.db", "route", ("74950001001", "cl.3"),
                          extra_env={"CALLTRACKING_AGI_TIMEOUT_MS": "fast"})   # broken config
    assert res.vars["CT_QUEUE"] == "" and res.vars["CT_ATTRIBUTION"] == "none"
    assert "configuration error" in res.stderr
