"""The callbacks job: Originates over a real AMI socket, the hourly cap, retries, the restart rule."""
import datetime as dt
import socket
import threading

import pytest
from sqlalchemy import select

from calltracking import entities as svc
from calltracking.callbacks import create_request, dialer, settings
from calltracking.db import make_sessionmaker, write_sessionmaker
from calltracking.models import Call, CallbackAttempt, CallbackRequest, RoutingRule, VisitorSession
from support.config import make_config

UTC = dt.timezone.utc
pytestmark = pytest.mark.db
T0 = dt.datetime(2026, 3, 4, 9, 0, tzinfo=UTC)       # Wednesday 12:00 Moscow


class Ami(threading.Thread):
    """A loopback AMI that logs in anyone, answers every action and keeps the Originates."""

    def __init__(self, refuse=False):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.originates, self.refuse = [], refuse

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                f = conn.makefile("rb")
                conn.sendall(b"Asterisk Call Manager/9.0.0\r\n")
                while True:
                    msg = {}
                    for line in iter(f.readline, b"\r\n"):
                        if not line:
                            break
                        k, _, v = line.decode().rstrip("\r\n").partition(": ")
                        msg[k] = v
                    if not msg:
                        break
                    aid = msg.get("ActionID", "")
                    ok = "Error" if msg.get("Action") == "Originate" and self.refuse else "Success"
                    if msg.get("Action") == "Originate":
                        self.originates.append(msg)
                    conn.sendall(f"Response: {ok}\r\nActionID: {aid}\r\nMessage: m\r\n\r\n".encode())
                    if msg.get("Action") == "Logoff":
                        break

    def close(self):
        self.sock.close()


@pytest.fixture
def world(db_url, engine):
    sm = write_sessionmaker(make_sessionmaker(engine))
    with sm() as s, s.begin():
        p = svc.add_project(s, "acme", timezone="Europe/Moscow", default_queue="sales")
        src = svc.add_source(s, p, "Google Ads", "ads", "GA")
        s.flush()
        s.add(RoutingRule(project_id=p.id, name="ads", priority=1, source_id=src.id, queue="q_ads"))
        s.add(VisitorSession(project_id=p.id, visitor_id="v1", source_id=src.id, first_seen=T0, last_seen=T0))
        settings.save(s, p.id, {"enabled": True, "outbound_context": "to-customers", "retries": 1,
                                "retry_delay_seconds": 60, "max_calls_per_hour": 2})
        pid = p.id
    ami = Ami()
    ami.start()
    cfg = make_config(db_url, ami__originate="yes", ami__port=str(ami.port))
    yield sm, pid, cfg, ami
    ami.close()


def _req(sm, pid, phone, now=T0, visitor="v1"):
    with sm() as s, s.begin():
        return create_request(s, project_id=pid, visitor_id=visitor, phone=phone, client_key="k", now=now)


def _attempts(sm, rid):
    with sm() as s:
        return s.scalars(select(CallbackAttempt).where(CallbackAttempt.request_id == rid)
                         .order_by(CallbackAttempt.number)).all()


def test_originate_fields_and_queue_of_the_matching_rule(world):
    sm, pid, cfg, ami = world
    rid = _req(sm, pid, "+79161234567").request_id
    assert dialer.run(cfg, sm, T0) == "settled 0, dialled 1"
    (o,) = ami.originates
    (att,) = _attempts(sm, rid)
    assert (o["Channel"], o["Context"], o["Exten"]) == ("Local/s@calltracking-callback-request/n",
                                                        "calltracking-callback-request", "visitor")
    variables = dict(v.split("=", 1) for v in o["Variable"].split(","))
    assert variables["CT_CALLBACK_REQUEST"] == att.token and variables["CT_QUEUE"] == "q_ads"
    assert variables["CT_VISITOR"] == "+79161234567" and variables["CT_OUTBOUND_CONTEXT"] == "to-customers"
    assert o["CallerID"] == "Callback <+79161234567>"
    # restart rule: a dialing request is never dialled again until its attempt is settled
    assert dialer.run(cfg, sm, T0 + dt.timedelta(seconds=10)) == "settled 0, dialled 0"
    assert len(ami.originates) == 1


def test_lost_attempt_retried_then_unreached(world):
    sm, pid, cfg, ami = world
    rid = _req(sm, pid, "+79161234567").request_id
    dialer.run(cfg, sm, T0)
    lost_at = T0 + dt.timedelta(seconds=dialer.LOST_AFTER_SECONDS)
    assert dialer.run(cfg, sm, lost_at) == "settled 1, dialled 0"          # next attempt waits 60 s
    assert dialer.run(cfg, sm, lost_at + dt.timedelta(seconds=60)) == "settled 0, dialled 1"
    end = lost_at + dt.timedelta(seconds=60 + dialer.LOST_AFTER_SECONDS)
    dialer.run(cfg, sm, end)
    assert [a.result for a in _attempts(sm, rid)] == ["lost", "lost"]
    with sm() as s:
        req = s.get(CallbackRequest, rid)
        assert (req.status, req.attempts, req.closed_at) == ("unreached", 2, end)
    assert len(ami.originates) == 2


def test_call_record_settles_reached(world):
    sm, pid, cfg, ami = world
    rid = _req(sm, pid, "+79161234567").request_id
    dialer.run(cfg, sm, T0)
    with sm() as s, s.begin():
        call = Call(pbx_id="pbx1", linkedid="1.1", project_id=pid, status="answered", attribution="callback")
        s.add(call)
        s.flush()
        att = s.scalars(select(CallbackAttempt)).one()
        att.call_id = call.id
        att.operator_answered_at = T0 + dt.timedelta(seconds=5)
        att.visitor_answered_at = T0 + dt.timedelta(seconds=9)
        att.ended_at = T0 + dt.timedelta(seconds=60)
        cid = call.id
    assert dialer.run(cfg, sm, T0 + dt.timedelta(seconds=61)).startswith("settled 1")
    with sm() as s:
        req = s.get(CallbackRequest, rid)
        assert (req.status, req.call_id, req.reached_at) == ("reached", cid, T0 + dt.timedelta(seconds=9))


def test_hourly_cap_counts_attempts(world):
    sm, pid, cfg, ami = world
    ids = [_req(sm, pid, f"+7916123456{i}", now=T0 - dt.timedelta(minutes=61 - i)).request_id for i in range(2)]
    ids.append(_req(sm, pid, "+79161234569").request_id)
    assert dialer.run(cfg, sm, T0).endswith("dialled 2")                 # cap 2 per hour
    with sm() as s:
        third = s.get(CallbackRequest, ids[2])
        assert third.status == "pending" and third.next_attempt_at == T0 + dt.timedelta(hours=1, seconds=1)
    assert dialer.run(cfg, sm, T0 + dt.timedelta(minutes=30)).endswith("dialled 0")
    assert len(ami.originates) == 2


def test_outside_hours_moves_to_next_opening(world):
    sm, pid, cfg, ami = world
    rid = _req(sm, pid, "+79161234567").request_id
    with sm() as s, s.begin():
        settings.save(s, pid, {"enabled": True, "outbound_context": "x", "schedule": "thu 09:00-18:00"})
    assert dialer.run(cfg, sm, T0).endswith("dialled 0")
    with sm() as s:
        assert s.get(CallbackRequest, rid).next_attempt_at == dt.datetime(2026, 3, 5, 6, 0, tzinfo=UTC)


def test_refused_originate_is_a_failed_attempt(db_url, world):
    sm, pid, _cfg, _ami = world
    bad = Ami(refuse=True)
    bad.start()
    cfg = make_config(db_url, ami__originate="yes", ami__port=str(bad.port))
    rid = _req(sm, pid, "+79161234567").request_id
    assert dialer.run(cfg, sm, T0) == "settled 0, dialled 0"
    (att,) = _attempts(sm, rid)
    assert att.result == "failed" and "refused" in att.error
    with sm() as s:
        req = s.get(CallbackRequest, rid)
        assert req.status == "pending" and req.next_attempt_at == T0 + dt.timedelta(seconds=60)
    bad.close()
