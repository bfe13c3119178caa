"""Helpers for the web UI tests (imported by conftest and the test modules)."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from calltracking.config import load_config
from calltracking.models import Call, CallLeg, utcnow

PASSWORD = "correct-horse-battery"
HOSTILE_NAMES = ('<script>alert(1)</script>', '"><img src=x onerror=alert(1)>')


def make_config(db_url, **extra):
    env = {"CALLTRACKING_DATABASE_URL": db_url,
           "CALLTRACKING_WEB_SECRET_KEY": "test-secret-key-0123456789abcdef",
           "CALLTRACKING_WEB_SECURE_COOKIES": "no",
           "CALLTRACKING_GENERAL_TIMEZONE": "Europe/Moscow",
           "CALLTRACKING_RECORDINGS_DIR": extra.pop("recordings_dir", "/nonexistent")}
    for k, v in extra.items():
        env[f"CALLTRACKING_{k.upper()}"] = v
    return load_config("/nonexistent/calltracking.ini", env=env, require_file=False)


def add_call(session_factory, project_id, linkedid, caller="+74951112233", name="Ivan", status="answered",
             started=None, operator_id=None, source_id=None, **kw):
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
    return client.post("/login", data={"username": username, "password": password})


def csrf_token(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)
