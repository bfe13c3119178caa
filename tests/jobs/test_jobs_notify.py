"""Missed-call alerts and digests, received by a real SMTP server and HTTP server on loopback."""
from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

from sqlalchemy import select

from calltracking.jobs import outbox, rules
from calltracking.models import Delivery, NotificationRule, utcnow
from calltracking.jobs.scheduler import JobRunner
from support.config import make_config

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def add_rule(session_factory, project, **kw):
    with session_factory() as s:
        r = NotificationRule(project_id=project["id"], enabled=True, **kw)
        s.add(r)
        s.commit()
        return r.id


def parts(msg):
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    return text, html


def test_missed_call_mail_and_sms_webhook_in_one_job_run(session_factory, project, add_call,
                                                         smtp_server, http_server):
    cfg = make_config(notify__smtp_host="127.0.0.1", notify__smtp_port=smtp_server.port,
                      notify__smtp_from="ct@example.org", notify__allow_private_targets="yes")
    add_rule(session_factory, project, channel="email", event="missed_call",
             target="boss@example.org; sales@example.org")
    add_rule(session_factory, project, channel="webhook", event="missed_call",
             target=http_server.url + "/sms?to=%2B79990000000&text=Missed+$caller",
             body_template='{"text": "Missed call from $caller $caller_name via $source"}')
    missed = add_call("missed", name=HOSTILE)
    add_call("answered")  # no alert for an answered call

    # the scheduler's notifications job (every 10 s) queues and sends in the same run
    ok, result = JobRunner(cfg, session_factory).run_job("notifications", force=True)
    assert ok, result
    assert "sent 2" in result

    assert len(smtp_server.messages) == 1
    rcpt, msg = smtp_server.messages[0]
    assert sorted(rcpt) == ["boss@example.org", "sales@example.org"]
    assert msg["Subject"] == "Missed call from +74951234567 (Google Ads)"
    text, html = parts(msg)
    assert "Google Ads" in text and "+74951234567" in text and "Acme & Co" in text
    assert HOSTILE in text  # plain text keeps the name as it is
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "Acme &amp; Co" in html

    [req] = http_server.requests
    assert req["path"] == "/sms" and req["query"]["text"] == ["Missed +74951234567"]
    body = json.loads(req["body"])  # the hostile name cannot break out of the JSON string
    assert body == {"text": f"Missed call from +74951234567 {HOSTILE} via Google Ads"}
    assert req["headers"]["content-type"].startswith("application/json")

    # each call is alerted once per rule
    ok, result = JobRunner(cfg, session_factory).run_job("notifications", force=True)
    assert "queued 0" in result and len(smtp_server.messages) == 1
    with session_factory() as s:
        rows = s.scalars(select(Delivery).where(Delivery.call_id == missed)).all()
        assert sorted(d.status for d in rows) == ["sent", "sent"]


def test_mail_failure_is_retried_not_lost(session_factory, project, add_call, smtp_server):
    # first with a port where nothing listens, then with the real server
    dead = make_config(notify__smtp_host="127.0.0.1", notify__smtp_port=1)
    add_rule(session_factory, project, channel="email", event="missed_call", target="boss@example.org")
    add_call("missed")
    now = utcnow()
    assert rules.enqueue_missed(dead, session_factory, now) == 1
    assert outbox.deliver_due(dead, session_factory, now) == (0, 1, 0)
    with session_factory() as s:
        d = s.scalars(select(Delivery)).one()
        assert d.status == "pending" and d.attempts == 1 and "127.0.0.1:1" in d.last_error
    live = make_config(notify__smtp_host="127.0.0.1", notify__smtp_port=smtp_server.port)
    assert outbox.deliver_due(live, session_factory, now) == (0, 0, 0)  # not due yet (backoff)
    assert outbox.deliver_due(live, session_factory, now + dt.timedelta(seconds=31)) == (1, 0, 0)
    assert len(smtp_server.messages) == 1


def test_daily_and_weekly_digest(session_factory, project, add_call, smtp_server):
    cfg = make_config(notify__smtp_host="127.0.0.1", notify__smtp_port=smtp_server.port)
    tz = ZoneInfo("Europe/Moscow")
    now_local = dt.datetime(2026, 11, 30, 8, 5, tzinfo=tz)  # a Monday, after 07:00
    now = now_local.astimezone(dt.timezone.utc)
    yesterday = dt.datetime(2026, 11, 29, 12, 0, tzinfo=tz).astimezone(dt.timezone.utc)
    add_call("answered", started=yesterday)
    add_call("missed", started=yesterday + dt.timedelta(hours=1), caller="+74957770001", name=HOSTILE)
    add_call("missed", started=yesterday + dt.timedelta(hours=2), caller="+74957770002")
    add_call("answered", started=yesterday + dt.timedelta(hours=3), caller="+74957770002")  # called back
    add_call("answered", started=yesterday, source=False)
    add_call("missed", started=dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.timezone.utc), caller="+74957770003")
    add_call("answered", started=now - dt.timedelta(minutes=30))  # today: not in either digest
    add_rule(session_factory, project, channel="email", event="digest_daily", target="boss@example.org")
    add_rule(session_factory, project, channel="email", event="digest_weekly", target="boss@example.org")

    early = dt.datetime(2026, 11, 30, 6, 0, tzinfo=tz).astimezone(dt.timezone.utc)
    assert rules.enqueue_digests(cfg, session_factory, early) == 0  # before 07:00 local
    assert rules.enqueue_digests(cfg, session_factory, now) == 2
    assert rules.enqueue_digests(cfg, session_factory, now + dt.timedelta(hours=1)) == 0  # once per period
    assert outbox.deliver_due(cfg, session_factory, now) == (2, 0, 0)

    mails = {m["Subject"]: m for _r, m in smtp_server.messages}
    daily = mails["Daily call digest: Acme & Co, 2026-11-29"]
    text, html = parts(daily)
    assert "Google Ads: calls 4, answered 2, missed 2" in text
    assert "(none): calls 1, answered 1, missed 0" in text
    assert "Total: 5, answered 3, missed 2" in text
    assert "Callbacks pending: 2" in text and "+74957770001" in text and "+74957770003" in text
    assert "+74957770002" not in text  # called back
    assert "<script>" not in html and "&lt;script&gt;" in html
    weekly = mails["Weekly call digest: Acme & Co, 2026-11-23 – 2026-11-29"]
    wtext, _ = parts(weekly)
    assert "Google Ads: calls 5, answered 2, missed 3" in wtext
    assert "Callbacks pending: 2" in wtext


def test_bad_address_goes_to_dead_letters(session_factory, project, add_call):
    cfg = make_config()
    add_rule(session_factory, project, channel="email", event="missed_call", target="not-an-address")
    add_call("missed")
    assert rules.enqueue_missed(cfg, session_factory) == 1
    with session_factory() as s:
        [d] = outbox.dead_letters(s)
        assert "invalid e-mail address 'not-an-address'" in d.last_error
