"""CRM webhook (HMAC), GA4 Measurement Protocol, retries with backoff and the dead-letter list."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json

from sqlalchemy import select

from calltracking.jobs import integrations, outbox, rules
from calltracking.models import Call, Delivery, NotificationRule, Tag, VisitorSession, utcnow
from support.config import make_config

SECRET = "s3cr3t-hmac-key"


def add_rule(session_factory, project, **kw):
    with session_factory() as s:
        r = NotificationRule(project_id=project["id"], enabled=True, event="call_finished", **kw)
        s.add(r)
        s.commit()
        return r.id


def test_crm_webhook_signed_and_retried_after_500(session_factory, project, add_call, http_server):
    cfg = make_config(notify__allow_private_targets="yes")  # the CRM stand-in listens on loopback
    rule = add_rule(session_factory, project, channel="crm", target=http_server.url + "/crm", secret=SECRET)
    cid = add_call("answered", recording_file="/var/spool/asterisk/monitor/x.wav", name='Ivan "the" <b>')
    with session_factory() as s:
        call = s.get(Call, cid)
        call.tags.append(Tag(project_id=project["id"], name="lead"))
        s.commit()
    add_call("in_progress")  # not finished: not sent

    http_server.codes.put(500)
    now = utcnow()
    assert rules.enqueue_finished(cfg, session_factory, now) == 1
    assert outbox.deliver_due(cfg, session_factory, now) == (0, 1, 0)
    with session_factory() as s:
        d = s.scalars(select(Delivery).where(Delivery.rule_id == rule)).one()
        assert d.status == "pending" and d.attempts == 1 and d.last_http_status == 500
        assert "HTTP 500" in d.last_error
        assert d.next_attempt_at == now + dt.timedelta(seconds=outbox.RETRY_BASE)
    assert outbox.deliver_due(cfg, session_factory, now + dt.timedelta(seconds=5)) == (0, 0, 0)
    assert outbox.deliver_due(cfg, session_factory, now + dt.timedelta(seconds=30)) == (1, 0, 0)

    assert len(http_server.requests) == 2
    first, second = http_server.requests
    assert first["body"] == second["body"]  # the same message again
    req = second
    t = req["headers"]["x-calltracking-signature"].split(",")[0].removeprefix("t=")
    expected = hmac.new(SECRET.encode(), f"{t}.".encode() + req["body"], hashlib.sha256).hexdigest()
    assert req["headers"]["x-calltracking-signature"] == f"t={t},v1={expected}"
    wrong = hmac.new(b"other", f"{t}.".encode() + req["body"], hashlib.sha256).hexdigest()
    assert req["headers"]["x-calltracking-signature"] != f"t={t},v1={wrong}"
    body = json.loads(req["body"])
    c = body["call"]
    assert c["caller"] == "+74951234567" and c["caller_name"] == 'Ivan "the" <b>'
    assert c["operator"] == "Anna" and c["status"] == "answered" and c["tags"] == ["lead"]
    assert c["recording_url"] == f"https://ct.example.org/calls/{cid}/recording"
    assert c["started_at"].endswith("+00:00") and c["answered_at"] and c["ended_at"]
    assert body["attribution"]["source"] == "Google Ads" and body["attribution"]["type"] == "static"
    # sent once per call and rule
    assert rules.enqueue_finished(cfg, session_factory, now + dt.timedelta(minutes=1)) == 0


def test_ga4_event_with_the_sessions_client_id(session_factory, project, add_call, http_server):
    cfg = make_config(notify__allow_private_targets="yes")
    add_rule(session_factory, project, channel="ga4", secret="api-secret-1",
             target=http_server.url + "/mp/collect?measurement_id=G-TEST123")
    with session_factory() as s:
        vs = VisitorSession(project_id=project["id"], visitor_id="v1", ga_client_id="1234567890.1700000000",
                            utm_source="google", utm_medium="cpc", utm_campaign="brand", utm_term="call tracking")
        s.add(vs)
        s.commit()
        vs_id = vs.id
    cid = add_call("answered", session_id=vs_id, attribution="dynamic")
    add_call("missed", caller="+74950000009")  # no visitor session: a pseudonymous client id
    now = utcnow()
    assert rules.enqueue_finished(cfg, session_factory, now) == 2
    assert outbox.deliver_due(cfg, session_factory, now) == (2, 0, 0)
    reqs = {json.loads(r["body"])["events"][0]["params"]["call_status"]: r for r in http_server.requests}
    r = reqs["answered"]
    assert r["path"] == "/mp/collect"
    assert r["query"] == {"measurement_id": ["G-TEST123"], "api_secret": ["api-secret-1"]}
    body = json.loads(r["body"])
    assert body["client_id"] == "1234567890.1700000000"
    ev = body["events"][0]
    assert ev["name"] == "phone_call"
    p = ev["params"]
    assert p["source"] == "Google Ads" and p["medium"] == "cpc" and p["attribution"] == "dynamic"
    assert p["term"] == "call tracking" and p["call_id"].startswith("pbx1:1795391970.")
    with session_factory() as s:
        call = s.get(Call, cid)
        assert body["timestamp_micros"] == int(call.ended_at.timestamp() * 1_000_000)
    other = json.loads(reqs["missed"]["body"])
    assert other["client_id"] and other["client_id"] != body["client_id"]
    assert other["client_id"] == integrations.ga4_client_id(call_stub("+74950000009", project["id"]), None)


def call_stub(number, project_id):
    return Call(caller_number=number, project_id=project_id)


def test_ga4_measurement_id_goes_to_google_endpoint():
    r = NotificationRule(channel="ga4", target="G-ABC", secret="k&v")
    assert integrations.ga4_url(r) == "https://www.google-analytics.com/mp/collect?measurement_id=G-ABC&api_secret=k%26v"


def test_dead_letters_after_repeated_failures_then_retry(session_factory, project, add_call,
                                                         http_server, run_cli, monkeypatch):
    cfg = make_config(notify__allow_private_targets="yes")
    monkeypatch.setenv("CALLTRACKING_NOTIFY_ALLOW_PRIVATE_TARGETS", "yes")  # for the CLI
    add_rule(session_factory, project, channel="crm", target=http_server.url + "/crm", secret=SECRET)
    add_call("missed")
    http_server.always = 503
    now = utcnow()
    rules.enqueue_finished(cfg, session_factory, now)
    waits = []
    for _ in range(outbox.MAX_ATTEMPTS):
        with session_factory() as s:
            d = s.scalars(select(Delivery)).one()
            assert d.status == "pending"
            now = d.next_attempt_at
        outbox.deliver_due(cfg, session_factory, now)
        with session_factory() as s:
            d = s.scalars(select(Delivery)).one()
            if d.status == "pending":
                waits.append((d.next_attempt_at - now).total_seconds())
    assert waits == [30, 60, 120, 240, 480, 960, 1920]  # exponential backoff
    assert len(http_server.requests) == outbox.MAX_ATTEMPTS
    with session_factory() as s:
        [dead] = outbox.dead_letters(s)
        assert dead.status == "dead" and "HTTP 503" in dead.last_error
        dead_id = dead.id
    out = run_cli("deliveries", "list").output
    assert f"{dead_id} " in out and "HTTP 503" in out
    # nothing more is attempted for a dead delivery
    assert outbox.deliver_due(cfg, session_factory, now + dt.timedelta(days=1)) == (0, 0, 0)

    http_server.always = 200
    res = run_cli("deliveries", "retry", str(dead_id))
    assert "sent" in res.output
    with session_factory() as s:
        assert s.get(Delivery, dead_id).status == "sent"
        assert outbox.dead_letters(s) == []


def test_send_test_reports_the_error(session_factory, project, http_server, run_cli, monkeypatch):
    cfg = make_config(notify__allow_private_targets="yes")
    monkeypatch.setenv("CALLTRACKING_NOTIFY_ALLOW_PRIVATE_TARGETS", "yes")  # for the CLI
    rule = add_rule(session_factory, project, channel="crm", target=http_server.url + "/crm", secret=SECRET)
    ok, msg = rules.send_test(cfg, session_factory, rule)  # no calls yet: a sample call
    assert ok and msg == "sent"
    body = json.loads(http_server.requests[-1]["body"])
    assert body["call"]["caller"] == "+70000000001"
    http_server.codes.put(404)
    res = run_cli("notify", "test", str(rule), ok=False)
    assert res.exit_code == 1 and "HTTP 404" in res.output
