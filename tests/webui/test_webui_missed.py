"""Missed-calls worklist: open until called back or handled; time to callback; click-to-call."""
import datetime as dt
import socket
import threading

import pytest

from calltracking.models import Call, utcnow
from support.config import make_config
from support.web import add_call, login

pytestmark = pytest.mark.db


def row_ids(html):
    import re

    return [int(x) for x in re.findall(r'<tr data-call-id="(\d+)"', html)]


def test_missed_stays_open_until_callback_or_handled(client_for, session_factory, world):
    t = utcnow() - dt.timedelta(hours=2)
    m1 = add_call(session_factory, world["project"], "m1", caller="+74952000001", status="missed", started=t)
    m2 = add_call(session_factory, world["project"], "m2", caller="+74952000002", status="missed", started=t)
    m3 = add_call(session_factory, world["project"], "m3", caller="+74952000003", status="missed", started=t)
    # an answered call *before* the miss does not close it; a later missed one does not either
    add_call(session_factory, world["project"], "x0", caller="+74952000001", started=t - dt.timedelta(hours=1))
    m1b = add_call(session_factory, world["project"], "m1b", caller="+74952000001", status="missed",
                   started=t + dt.timedelta(minutes=1))
    c = client_for("supervisor")
    assert sorted(row_ids(c.get("/missed").get_data(as_text=True))) == sorted([m1, m2, m3, m1b])
    # the caller of m1 calls again and is answered 10 minutes later: both of their misses close
    add_call(session_factory, world["project"], "x1", caller="+74952000001", started=t + dt.timedelta(minutes=10))
    assert sorted(row_ids(c.get("/missed").get_data(as_text=True))) == sorted([m2, m3])
    r = c.post(f"/missed/{m2}/handled")
    assert r.status_code == 302
    assert row_ids(c.get("/missed").get_data(as_text=True)) == [m3]
    closed = c.get("/missed?state=closed").get_data(as_text=True)
    assert sorted(row_ids(closed)) == sorted([m1, m1b, m2])
    assert "10:00" in closed and "9:00" in closed     # time to callback of m1 and m1b
    assert "handled by super" in closed
    s = session_factory()
    assert s.get(Call, m2).handled_by == "super"
    s.close()
    assert c.post(f"/missed/{m3 + 1000}/handled").status_code == 404


def test_click_to_call_is_off_by_default(client_for, session_factory, world):
    m = add_call(session_factory, world["project"], "m", status="missed")
    c = client_for("admin")
    assert "Call back" not in c.get("/missed").get_data(as_text=True)
    assert c.post(f"/missed/{m}/call").status_code == 404


class FakeAmi(threading.Thread):
    """A loopback AMI server that accepts one login and records actions."""

    def __init__(self, refuse_originate=False):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.actions = []
        self.refuse = refuse_originate

    def run(self):
        conn, _ = self.sock.accept()
        conn.settimeout(5)
        f = conn.makefile("rb")
        conn.sendall(b"Asterisk Call Manager/9.0.0\r\n")
        try:
            while True:
                msg = {}
                while True:
                    line = f.readline()
                    if not line:
                        return
                    line = line.decode().rstrip("\r\n")
                    if not line:
                        break
                    k, _, v = line.partition(": ")
                    msg[k] = v
                self.actions.append(msg)
                aid = msg.get("ActionID", "")
                if msg.get("Action") == "Logoff":
                    conn.sendall(f"Response: Goodbye\r\nActionID: {aid}\r\n\r\n".encode())
                    return
                if msg.get("Action") == "Originate" and self.refuse:
                    conn.sendall(f"Response: Error\r\nActionID: {aid}\r\nMessage: Permission denied\r\n\r\n".encode())
                    return
                conn.sendall(f"Event: FullyBooted\r\n\r\nResponse: Success\r\nActionID: {aid}\r\nMessage: ok\r\n\r\n".encode())
        finally:
            conn.close()
            self.sock.close()


@pytest.mark.parametrize("refuse", [False, True])
def test_click_to_call_sends_originate(db_url, session_factory, world, refuse):
    from calltracking.models import User
    from sqlalchemy import select
    from webui import create_app

    ami = FakeAmi(refuse)
    ami.start()
    cfg = make_config(db_url, ami__originate="yes", ami__port=str(ami.port), ami__secret="s3cret")
    app = create_app(cfg, session_factory, testing=True)
    app.config["WTF_CSRF_ENABLED"] = False
    s = session_factory()
    s.scalars(select(User).where(User.username == "super")).one().operator_id = world["operator"]
    s.commit()
    s.close()
    m = add_call(session_factory, world["project"], "m", status="missed", caller="+74953000000")
    c = app.test_client()
    login(c, "super")
    assert "Call back" in c.get("/missed").get_data(as_text=True)
    r = c.post(f"/missed/{m}/call", follow_redirects=True)
    ami.join(5)
    assert ami.actions[0]["Action"] == "Login" and ami.actions[0]["Secret"] == "s3cret"
    orig = ami.actions[1]
    assert orig["Action"] == "Originate" and orig["Channel"] == "PJSIP/101" and orig["Exten"] == "+74953000000"
    assert orig["Context"] == "calltracking-callback" and orig["Variable"] == f"CT_CALLBACK_FOR={m}"
    text = r.get_data(as_text=True)
    if refuse:
        assert "Click-to-call failed" in text and "Permission denied" in text
    else:
        assert "will ring" in text


@pytest.mark.parametrize("refuse", [False, True])
def test_click_to_call_an_unreached_callback_request(db_url, session_factory, world, refuse):
    """The worklist's "Call back" of an unreached website request: the user's phone rings, then the
    visitor; the request is handled by that user only when the PBX took the Originate."""
    from calltracking.models import CallbackRequest, User
    from sqlalchemy import select
    from webui import create_app

    ami = FakeAmi(refuse)
    ami.start()
    cfg = make_config(db_url, ami__originate="yes", ami__port=str(ami.port), ami__secret="s3cret")
    app = create_app(cfg, session_factory, testing=True)
    app.config["WTF_CSRF_ENABLED"] = False
    with session_factory() as s:
        s.scalars(select(User).where(User.username == "super")).one().operator_id = world["operator"]
        at = utcnow() - dt.timedelta(hours=1)
        req = CallbackRequest(project_id=world["project"], phone="+79160000009", status="unreached",
                              requested_at=at, attempts=2, closed_at=at)
        s.add(req)
        s.commit()
        rid = req.id
    c = app.test_client()
    login(c, "super")
    text = c.post(f"/missed/callback-requests/{rid}/call", follow_redirects=True).get_data(as_text=True)
    ami.join(5)
    orig = ami.actions[1]
    assert orig["Action"] == "Originate" and orig["Channel"] == "PJSIP/101" and orig["Exten"] == "+79160000009"
    with session_factory() as s:
        handled_by = s.get(CallbackRequest, rid).handled_by
    if refuse:
        assert "Click-to-call failed" in text and handled_by in (None, "")
    else:
        assert "will ring" in text and handled_by == "super"


def test_click_to_call_ami_down(db_url, session_factory, world):
    from webui import create_app

    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        port = sk.getsockname()[1]
    cfg = make_config(db_url, ami__originate="yes", ami__port=str(port))
    app = create_app(cfg, session_factory, testing=True)
    app.config["WTF_CSRF_ENABLED"] = False
    m = add_call(session_factory, world["project"], "m", status="missed")
    c = app.test_client()
    login(c, "admin")   # not linked to an operator
    r = c.post(f"/missed/{m}/call", follow_redirects=True)
    assert "Link your user to an operator" in r.get_data(as_text=True)


def test_worklist_defaults_to_the_last_30_days(client_for, session_factory, world):
    old = add_call(session_factory, world["project"], "old", status="missed", caller="+74952000009",
                   started=utcnow() - dt.timedelta(days=40))
    new = add_call(session_factory, world["project"], "new", status="missed", caller="+74952000008")
    c = client_for("admin")
    assert row_ids(c.get("/missed").get_data(as_text=True)) == [new]
    since = (utcnow() - dt.timedelta(days=60)).date().isoformat()
    assert row_ids(c.get(f"/missed?from={since}").get_data(as_text=True)) == [new, old]
    assert "Invalid date “soon”: type it as YYYY-MM-DD." in c.get("/missed?from=soon").get_data(as_text=True)
