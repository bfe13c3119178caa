"""Settings → Target calls (admin, CSRF), the call card's tag picker, the journal's and the API's
"target calls only" filter, is_target on the card, the API and the CSV, and the integrations
form's "send only target calls"."""
from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import select

from calltracking.models import AuditLog, Call, NotificationRule, Tag, TargetRule, User
from calltracking.qualify import apply as qualify_apply
from support.web import HOSTILE_NAMES, PASSWORD, add_call, csrf_token
from webui.auth import new_api_token

pytestmark = pytest.mark.db
PAGE = "/settings/target-calls"


def test_only_admins_see_the_page(client_for):
    assert client_for("admin").get(PAGE).status_code == 200
    assert client_for("supervisor").get(PAGE).status_code == 403
    assert client_for("operator").get(PAGE).status_code == 403
    assert client_for(None).get(PAGE).status_code == 302


def test_rules_and_tags_are_made_on_the_page_and_applied(client_for, session_factory, world):
    c = client_for("admin")
    p = world["project"]
    r = c.post(f"{PAGE}/{p}/tags", data={"name": "lead", "color": "#43A047", "description": "a buyer",
                                         "offered": "on"})
    assert r.status_code == 302
    with session_factory() as s:
        lead = s.scalars(select(Tag).where(Tag.name == "lead")).one()
        assert (lead.color, lead.description, lead.offered) == ("#43a047", "a buyer", True)
    bad = c.post(f"{PAGE}/{p}/tags", data={"name": "x", "color": "javascript:alert(1)"}, follow_redirects=True)
    assert "The colour is #rrggbb." in bad.get_data(as_text=True)
    r = c.post(f"{PAGE}/{p}/rules", data={"name": "Long weekday call", "position": "10", "enabled": "on",
                                          "min_talk_seconds": "45", "source_id": str(world["source"]),
                                          "weekdays": ["1", "2", "3", "4", "5", "6", "7"],
                                          "mark_target": "on", "add_tag_ids": [str(lead.id)]})
    assert r.status_code == 302
    page = c.get(f"{PAGE}?project={p}").get_data(as_text=True)
    assert "Long weekday call" in page and "talk ≥ 45 s" in page and "source: Google Ads" in page
    with session_factory() as s:
        rule = s.scalars(select(TargetRule)).one()
        assert (rule.min_talk_seconds, rule.source_id, [t.name for t in rule.add_tags]) == (45, world["source"], ["lead"])
        assert s.scalars(select(AuditLog).where(AuditLog.entity == "target_rule")).first() is not None
    # a refused rule keeps what was typed and says why
    r = c.post(f"{PAGE}/{p}/rules", data={"name": "nothing", "min_talk_seconds": "abc", "mark_target": "on"})
    assert r.status_code == 400
    body = r.get_data(as_text=True)
    assert "Talk time: a whole number of seconds" in body and 'value="nothing"' in body
    # edit: the form is filled, the change saved
    assert 'value="Long weekday call"' in c.get(f"{PAGE}?project={p}&edit={rule.id}").get_data(as_text=True)
    assert c.post(f"{PAGE}/{p}/rules/{rule.id}", data={"name": "Long call", "position": "10", "enabled": "on",
                                                       "min_talk_seconds": "50", "mark_target": "on",
                                                       "add_tag_ids": [str(lead.id)]}).status_code == 302
    # the button applies the rules to the chosen days
    long_call = add_call(session_factory, p, "1.1", source_id=world["source"])     # 60 s talk
    short = add_call(session_factory, p, "1.2", status="missed")
    r = c.post(f"{PAGE}/{p}/apply", data={"from": "2000-01-01", "to": "2100-01-01"}, follow_redirects=True)
    assert "Rules applied to 2 calls: 1 target calls, 1 changed." in r.get_data(as_text=True)
    with session_factory() as s:
        assert s.get(Call, long_call).is_target and not s.get(Call, short).is_target
        assert [t.name for t in s.get(Call, long_call).tags] == ["lead"]


def test_hostile_tag_names_are_escaped_everywhere(client_for, session_factory, world):
    c = client_for("admin")
    p = world["project"]
    for name in HOSTILE_NAMES:
        assert c.post(f"{PAGE}/{p}/tags", data={"name": name, "color": "#000000", "offered": "on",
                                                "description": name}).status_code == 302
    cid = add_call(session_factory, p, "2.1")
    with session_factory() as s:
        s.get(Call, cid).tags = list(s.scalars(select(Tag)))
        s.commit()
    for url in (f"{PAGE}?project={p}", f"/calls/{cid}", "/calls"):
        html = c.get(url).get_data(as_text=True)
        for name in HOSTILE_NAMES:
            assert name not in html, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, url
    rows = list(csv.DictReader(io.StringIO(c.get("/calls/export.csv").get_data(as_text=True).lstrip("\ufeff"))))
    assert all(name in rows[0]["tags"] for name in HOSTILE_NAMES)      # data, kept as typed


def test_forged_posts_without_csrf_token_are_refused(csrf_app, session_factory, world):
    c = csrf_app.test_client()
    token = csrf_token(c.get("/login").get_data(as_text=True))
    assert c.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token}).status_code == 302
    p = world["project"]
    for url, data in ((f"{PAGE}/{p}/tags", {"name": "forged"}),
                      (f"{PAGE}/{p}/rules", {"name": "forged", "mark_target": "on"}),
                      (f"{PAGE}/{p}/apply", {"from": "2000-01-01"})):
        r = c.post(url, data=data)
        assert r.status_code == 400 and b"CSRF" in r.data, url
    with session_factory() as s:
        assert s.scalars(select(Tag)).first() is None and s.scalars(select(TargetRule)).first() is None
    token = csrf_token(c.get(f"{PAGE}?project={p}").get_data(as_text=True))
    assert c.post(f"{PAGE}/{p}/tags", data={"name": "real", "csrf_token": token}).status_code == 302


def _tags(session_factory, cid):
    with session_factory() as s:
        return sorted(t.name for t in s.get(Call, cid).tags)


def test_the_card_picker_and_free_tags(client_for, session_factory, world):
    p = world["project"]
    with session_factory() as s:
        s.add_all([Tag(project_id=p, name="lead", color="#43a047", description="a buyer", offered=True),
                   Tag(project_id=p, name="spam", color="#e53935", offered=True),
                   Tag(project_id=p, name="old free tag", offered=False)])
        s.commit()
    cid = add_call(session_factory, p, "3.1", operator_id=world["operator"])
    for role in ("operator", "supervisor"):
        c = client_for(role)
        html = c.get(f"/calls/{cid}").get_data(as_text=True)
        assert 'id="tag-picker"' in html and 'value="lead"' in html and 'data-tag-color="#43a047"' in html
        assert 'value="old free tag"' not in html and 'title="a buyer"' in html
    c = client_for("operator")
    r = c.post(f"/calls/{cid}", data={"picked": ["lead"], "tags": "callback, VIP", "value": "", "reason": "",
                                      "comment": ""})
    assert r.status_code == 302
    assert _tags(session_factory, cid) == ["VIP", "callback", "lead"]
    html = c.get(f"/calls/{cid}").get_data(as_text=True)
    assert 'value="lead" checked' in html, html[html.find("tag-picker"):html.find("tag-picker") + 900]
    assert 'value="VIP, callback"' in html
    # unticking a picked tag takes it off; the free text alone still works as before
    c.post(f"/calls/{cid}", data={"tags": "callback", "value": "", "reason": "", "comment": ""})
    assert _tags(session_factory, cid) == ["callback"]


def test_is_target_on_card_journal_api_and_csv(app, client_for, session_factory, world):
    p = world["project"]
    target = add_call(session_factory, p, "4.1", is_target=True)
    other = add_call(session_factory, p, "4.2")
    c = client_for("admin")
    assert 'data-target="yes"' in c.get(f"/calls/{target}").get_data(as_text=True)
    html = c.get(f"/calls/{other}").get_data(as_text=True)
    assert 'data-target="no"' in html and "not qualified yet" in html
    only = c.get("/calls?target=1").get_data(as_text=True)
    assert f'data-call-id="{target}"' in only and f'data-call-id="{other}"' not in only
    rest = c.get("/calls?target=0").get_data(as_text=True)
    assert f'data-call-id="{other}"' in rest and f'data-call-id="{target}"' not in rest
    assert "invalid target value" in c.get("/calls?target=yes").get_data(as_text=True)
    with session_factory() as s:
        token = new_api_token(s.scalars(select(User).where(User.username == "super")).one())
        s.commit()
    api = app.test_client()
    got = api.get("/api/calls?target=1", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert [x["id"] for x in got["calls"]] == [target] and got["calls"][0]["is_target"] is True
    one = api.get(f"/api/calls/{other}", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert one["is_target"] is False
    assert api.get("/api/calls?target=2", headers={"Authorization": f"Bearer {token}"}).status_code == 400
    rows = list(csv.DictReader(io.StringIO(c.get("/calls/export.csv?target=1").get_data(as_text=True).lstrip("\ufeff"))))
    assert [r["is_target"] for r in rows] == ["True"]
    doc = json.dumps(api.get("/api/openapi.json").get_json())
    assert "is_target" in doc and "target calls only" in doc


def test_the_integrations_form_sets_send_only_target_calls(client_for, session_factory, world):
    c = client_for("admin")
    r = c.post("/settings/integrations/rules", data={"project": str(world["project"]), "channel": "crm",
                                                     "event": "call_finished", "target": "https://crm.example.org/x",
                                                     "target_only": "on"})
    assert r.status_code == 302
    with session_factory() as s:
        assert s.scalars(select(NotificationRule)).one().target_only is True
    assert "target calls only" in c.get("/settings/integrations/").get_data(as_text=True)


def test_job_result_shows_on_the_card(client_for, session_factory, world):
    p = world["project"]
    c = client_for("admin")
    c.post(f"{PAGE}/{p}/rules", data={"name": "any answered", "min_talk_seconds": "1", "mark_target": "on",
                                      "weekdays": list("1234567"), "enabled": "on"})
    cid = add_call(session_factory, p, "5.1")
    qualify_apply.apply_pending(session_factory)
    html = c.get(f"/calls/{cid}").get_data(as_text=True)
    assert 'data-target="yes"' in html and "rule “any answered”" in html


def test_source_report_page_and_csv_show_target_calls_and_their_cost(client_for, session_factory, world):
    import datetime as dt
    from decimal import Decimal

    from calltracking.models import AdSpend, utcnow
    p = world["project"]
    today = utcnow().date()
    started = utcnow() - dt.timedelta(hours=1)
    for i in range(3):
        add_call(session_factory, p, f"6.{i}", source_id=world["source"], started=started, is_target=i < 2)
    with session_factory() as s:
        s.add(AdSpend(project_id=p, source_id=world["source"], day=today, amount=Decimal("300.00")))
        s.commit()
    c = client_for("supervisor")
    period = f"project={p}&from={(today - dt.timedelta(days=1)).isoformat()}&to={(today + dt.timedelta(days=1)).isoformat()}"
    html = c.get(f"/reports/sources?{period}").get_data(as_text=True)
    assert "Target calls" in html and "Cost per target call" in html
    rows = list(csv.reader(io.StringIO(c.get(f"/reports/sources.csv?{period}").get_data(as_text=True).lstrip("\ufeff"))))
    head = rows[0]
    ga = next(r for r in rows if "Google Ads" in r)
    assert ga[head.index("Target calls")] == "2"
    assert ga[head.index("Cost per target call")] == "150.0"
    total = next(r for r in rows if "Total" in r)
    assert total[head.index("Target calls")] == "2" and total[head.index("Cost per target call")] == "150.0"


def test_deleting_a_tag_takes_it_off_calls_and_rules(client_for, session_factory, world):
    p = world["project"]
    c = client_for("admin")
    c.post(f"{PAGE}/{p}/tags", data={"name": "hot", "offered": "on"})
    c.post(f"{PAGE}/{p}/tags", data={"name": "vip", "offered": "on"})
    with session_factory() as s:
        hot, vip = (s.scalars(select(Tag).where(Tag.name == n)).one().id for n in ("hot", "vip"))
    c.post(f"{PAGE}/{p}/rules", data={"name": "adds hot", "mark_target": "on", "add_tag_ids": [str(hot)], "enabled": "on",
                                      "weekdays": list("1234567")})
    c.post(f"{PAGE}/{p}/rules", data={"name": "needs vip", "mark_target": "on", "tag_id": str(vip), "enabled": "on",
                                      "weekdays": list("1234567")})
    cid = add_call(session_factory, p, "7.1")
    qualify_apply.apply_pending(session_factory)
    assert _tags(session_factory, cid) == ["hot"]
    assert c.post(f"{PAGE}/tags/{hot}/delete").status_code == 302
    assert c.post(f"{PAGE}/tags/{vip}/delete").status_code == 302
    with session_factory() as s:
        rules = {r.name: [t.name for t in r.add_tags] for r in s.scalars(select(TargetRule))}
    assert rules == {"adds hot": []}              # the rule needing "vip" went with it
    assert _tags(session_factory, cid) == []
