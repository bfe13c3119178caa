"""GA4 and the CRM webhook with "send only target calls": a non-target call is not sent, a call
that becomes a target call later is sent then (even past the lookback of finished calls), and
a rule without the option is unchanged — real HTTP requests to a loopback server."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from calltracking.jobs import outbox, rules
from calltracking.models import Call, Delivery, NotificationRule, Project, TargetRule, utcnow
from calltracking.qualify import apply as qualify_apply
from calltracking.qualify import settings as rule_settings
from support.config import make_config

pytestmark = pytest.mark.db


def add_rule(session_factory, project, **kw):
    with session_factory() as s:
        r = NotificationRule(project_id=project["id"], enabled=True, event="call_finished", **kw)
        s.add(r)
        s.commit()
        return r.id


def sent_calls(http_server, path):
    out = []
    for r in http_server.requests:
        if r["path"] != path:
            continue
        body = json.loads(r["body"])
        out.append(body["call"]["id"] if "call" in body else body["events"][0]["params"]["call_id"])
    return out


def test_only_target_calls_are_sent_and_a_late_target_is_sent_then(session_factory, project, add_call,
                                                                   http_server):
    cfg = make_config(notify__allow_private_targets="yes")
    crm_all = add_rule(session_factory, project, channel="crm", target=http_server.url + "/crm-all")
    crm = add_rule(session_factory, project, channel="crm", target=http_server.url + "/crm", target_only=True)
    add_rule(session_factory, project, channel="ga4", target=http_server.url + "/mp/collect?measurement_id=G-1",
             secret="k", target_only=True)
    with session_factory() as s:
        p = s.get(Project, project["id"])
        rule = rule_settings.save_rule(s, p, name="long", min_talk_seconds=60)
        s.commit()
        rule_id = rule.id
    long_call = add_call("answered", seconds=125)           # talk 120 s: a target call
    short_call = add_call("answered", seconds=35, caller="+74950000002")   # talk 30 s
    missed = add_call("missed", caller="+74950000003")

    now = utcnow()
    # before the qualify job ran nothing is a target call: only the plain rule sends
    assert rules.enqueue_finished(cfg, session_factory, now) == 3
    qualify_apply.apply_pending(session_factory, now)
    assert rules.enqueue_finished(cfg, session_factory, now) == 2     # the long call: CRM and GA4
    assert outbox.deliver_due(cfg, session_factory, now) == (5, 0, 0)
    assert sorted(sent_calls(http_server, "/crm-all")) == sorted([long_call, short_call, missed])
    assert sent_calls(http_server, "/crm") == [long_call]
    body = json.loads(next(r["body"] for r in http_server.requests if r["path"] == "/crm"))
    assert body["call"]["is_target"] is True
    ga = [json.loads(r["body"]) for r in http_server.requests if r["path"] == "/mp/collect"]
    assert len(ga) == 1 and ga[0]["events"][0]["params"]["target_call"] == "yes"

    # two days later the rule is widened and re-applied: the short call becomes a target call and
    # is sent then, though it ended long before the lookback of finished calls
    later = now + dt.timedelta(days=2)
    with session_factory() as s:
        s.get(TargetRule, rule_id).min_talk_seconds = 30
        s.commit()
    summary = qualify_apply.reapply(session_factory, now - dt.timedelta(days=1), now=later)
    assert (summary.targets, summary.changed) == (2, 1)
    assert rules.enqueue_finished(cfg, session_factory, later) == 2
    assert outbox.deliver_due(cfg, session_factory, later) == (2, 0, 0)
    assert sent_calls(http_server, "/crm") == [long_call, short_call]
    assert len(sent_calls(http_server, "/crm-all")) == 3           # nothing more for the plain rule
    # once per rule and call, whatever happens to the call afterwards
    qualify_apply.reapply(session_factory, now - dt.timedelta(days=1), now=later)
    assert rules.enqueue_finished(cfg, session_factory, later + dt.timedelta(minutes=1)) == 0
    with session_factory() as s:
        assert s.scalar(select(Call.is_target).where(Call.id == missed)) is False
        assert {d.call_id for d in s.scalars(select(Delivery).where(Delivery.rule_id == crm))} == \
            {long_call, short_call}
        assert s.get(NotificationRule, crm_all).target_only is False


def test_cli_sets_the_option(session_factory, project, run_cli):
    out = run_cli("notify", "add", "acme", "--channel", "crm", "--event", "call_finished", "--target",
                  "https://crm.example.org/hook", "--target-only").output
    assert "added" in out
    rows = json.loads(run_cli("notify", "list", "--format", "json").output)
    assert rows[-1]["target_only"] is True
