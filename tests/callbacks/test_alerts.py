"""The ``callback_unreached`` notification event: mail, webhook and SMS rules each get one
delivery per unreached request, once, with the request's facts escaped for where they land."""
import datetime as dt
import json

import pytest
from sqlalchemy import select

from calltracking import entities as svc
from calltracking.jobs import rules
from calltracking.models import CallbackRequest, Delivery, NotificationRule
from support.config import make_config

UTC = dt.timezone.utc
pytestmark = pytest.mark.db
NOW = dt.datetime(2026, 3, 4, 9, 0, tzinfo=UTC)


def test_unreached_request_alerts_each_channel_once(db_url, session_factory):
    cfg = make_config(db_url)
    with session_factory() as s:
        p = svc.add_project(s, "acme", timezone="Europe/Moscow")
        src = svc.add_source(s, p, 'Ads "quoted" & <b>', "ads")
        s.flush()
        for channel, target, body in (("email", "boss@example.org", ""),
                                      ("webhook", "https://hooks.example.org/cb?n=$phone", '{"t": "$source"}'),
                                      ("sms", "+79161112233", "")):
            s.add(NotificationRule(project_id=p.id, channel=channel, event="callback_unreached", target=target,
                                   body_template=body))
        s.add(NotificationRule(project_id=p.id, channel="email", event="missed_call", target="x@example.org"))
        old = CallbackRequest(project_id=p.id, phone="+79160000009", status="unreached", attempts=3,
                              requested_at=NOW - dt.timedelta(hours=5), closed_at=NOW - dt.timedelta(hours=2))
        s.add(old)
        s.add(CallbackRequest(project_id=p.id, phone="+79160000001", status="unreached", source_id=src.id, attempts=3,
                              requested_at=NOW - dt.timedelta(minutes=20), closed_at=NOW - dt.timedelta(minutes=10)))
        s.add(CallbackRequest(project_id=p.id, phone="+79160000002", status="reached", attempts=1,
                              requested_at=NOW - dt.timedelta(minutes=20), closed_at=NOW - dt.timedelta(minutes=10)))
        s.commit()
    assert rules.enqueue_callback_unreached(cfg, session_factory, NOW) == 3
    assert rules.enqueue_callback_unreached(cfg, session_factory, NOW) == 0          # once per rule and request
    with session_factory() as s:
        by = {d.channel: json.loads(d.payload) for d in s.scalars(select(Delivery))}
    assert set(by) == {"email", "webhook", "sms"}
    assert by["email"]["subject"] == 'Callback request unreached: +79160000001 (Ads "quoted" & <b>)'
    assert "&lt;b&gt;" in by["email"]["html"] and "<b>" not in by["email"]["html"].split("<h2>", 1)[1]
    assert by["webhook"]["url"] == "https://hooks.example.org/cb?n=%2B79160000001"
    assert json.loads(by["webhook"]["body"]) == {"t": 'Ads "quoted" & <b>'}
    sms = by["sms"]                                    # one delivery per recipient
    assert sms["to"] == "+79161112233"
    assert sms["text"] == 'Callback request unreached: +79160000001, Ads "quoted" & <b>, Mar 04 11:40, 3 attempts'


def test_rule_with_the_event_is_valid_for_mail_webhook_and_sms():
    for channel, target in (("email", "a@example.org"), ("sms", "+79161112233")):
        assert rules.check_rule(channel, "callback_unreached", target)
    with pytest.raises(rules.RuleRefused):
        rules.check_rule("crm", "callback_unreached", "https://example.org/x")
