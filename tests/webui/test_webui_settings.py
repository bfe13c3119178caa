"""Settings pages: create/edit every entity through the forms, errors, audit log, CSV, routing test."""
import io
import re

import pytest
from sqlalchemy import select

from calltracking.models import (
    AuditLog, Campaign, NumberPool, Operator, Project, PromoCode, RoutingRule, Source, TrackingNumber, User,
)

pytestmark = pytest.mark.db


def errors(r):
    import html as h

    return [h.unescape(e) for e in _errors(r)]


def _errors(r):
    return re.findall(r"<li>(.*?)</li>", r.get_data(as_text=True).split('id="form-errors"')[-1].split("</ul>")[0]) \
        if 'id="form-errors"' in r.get_data(as_text=True) else []


def test_create_every_entity(client_for, session_factory, world):
    c = client_for("admin")
    p, src = world["project"], world["source"]
    posts = [
        ("projects", {"key": "beta", "name": "Beta", "timezone": "Asia/Yekaterinburg", "default_queue": "q2",
                      "default_number": "8 (343) 000-00-01", "first_call_window_days": "30", "currency": "RUB"}),
        ("sources", {"project_id": p, "name": "Billboard", "channel": "offline", "short_label": "BB"}),
        ("campaigns", {"source_id": src, "name": "summer", "utm_campaign": "summer2026"}),
        ("pools", {"project_id": p, "name": "landing", "source_id": src, "hold_seconds": "600",
                   "fallback_number": "+74950009999"}),
        ("numbers", {"project_id": p, "number": "8 (495) 000-10-01", "source_id": src,
                     "campaign_id": world["campaign"], "description": "brand", "callerid_prefix": "yes",
                     "record": "yes"}),
        ("numbers", {"project_id": p, "number": "+7 495 000-20-01", "pool_id": world["pool"]}),
        ("rules", {"project_id": p, "name": "night", "priority": "10", "time_from": "22:00", "time_to": "06:00",
                   "weekdays": "12345", "queue": "night", "record_mode": "no", "enabled": "yes"}),
        ("operators", {"name": "Anna", "interface": "PJSIP/103", "queues": "sales"}),
        ("promo", {"project_id": p, "code": "4711", "source_id": src, "valid_from": "2026-01-01"}),
        ("users", {"username": "newop", "password": "long-enough-pw", "role": "operator", "language": "ru",
                   "operator_id": world["operator"]}),
    ]
    for slug, data in posts:
        r = c.post(f"/settings/{slug}", data=data)
        assert r.status_code == 302, (slug, errors(r))
    s = session_factory()
    beta = s.scalars(select(Project).where(Project.key == "beta")).one()
    assert beta.default_number == "+73430000001" and beta.first_call_window_days == 30
    assert s.scalars(select(Source).where(Source.name == "Billboard")).one().channel == "offline"
    assert s.scalars(select(Campaign).where(Campaign.name == "summer")).one().utm_campaign == "summer2026"
    assert s.scalars(select(NumberPool).where(NumberPool.name == "landing")).one().hold_seconds == 600
    tn = s.scalars(select(TrackingNumber).where(TrackingNumber.number == "+74950001001")).one()
    assert tn.kind == "static" and tn.source_id == src and tn.campaign_id == world["campaign"]
    assert s.scalars(select(TrackingNumber).where(TrackingNumber.number == "+74950002001")).one().kind == "pool"
    rule = s.scalars(select(RoutingRule).where(RoutingRule.name == "night")).one()
    assert rule.weekdays == "12345" and rule.record is False and str(rule.time_from) == "22:00:00"
    assert s.scalars(select(Operator).where(Operator.interface == "PJSIP/103")).one().name == "Anna"
    assert s.scalars(select(PromoCode).where(PromoCode.code == "4711")).one().valid_from is not None
    u = s.scalars(select(User).where(User.username == "newop")).one()
    assert u.language == "ru" and u.operator_id == world["operator"] and "long-enough-pw" not in u.password_hash
    log = [(a.action, a.entity) for a in s.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert log == [("create", slug) for slug, _ in posts]
    s.close()
    page = c.get("/settings/audit").get_data(as_text=True)
    assert "newop" in page and "PJSIP/103" in page


@pytest.mark.parametrize("slug,data,message", [
    ("numbers", {"project_id": "1", "number": "123", "source_id": "1"}, "invalid phone number '123'"),
    ("numbers", {"project_id": "1", "number": "+74950003001"}, "give a source"),
    ("projects", {"key": "bad key", "name": "x"}, "invalid project key"),
    ("projects", {"key": "ok", "name": "x", "timezone": "Mars/Olympus"}, "unknown time zone"),
    ("rules", {"project_id": "1", "name": "r", "keyword_regex": "(", "queue": "q"}, "invalid regular expression"),
    ("rules", {"project_id": "1", "name": "r", "weekdays": "89", "queue": "q"}, "weekdays"),
    ("rules", {"project_id": "1", "name": "r"}, "give a queue or a Dial target"),
    ("rules", {"project_id": "1", "name": "r", "queue": "q", "time_from": "25:99"}, "expected a time"),
    ("users", {"username": "u", "password": "short", "role": "admin", "language": "en"}, "at least 8"),
    ("users", {"username": "u2", "password": "long-enough", "role": "root", "language": "en"}, "invalid choice"),
    ("promo", {"project_id": "1", "code": "abc"}, "digits only"),
    ("sources", {"project_id": "1", "name": "Google Ads", "channel": "ads"}, "already exists"),
])
def test_form_errors_are_shown(client_for, world, slug, data, message):
    r = client_for("admin").post(f"/settings/{slug}", data=data)
    assert r.status_code == 400
    assert any(message in e for e in errors(r)), errors(r)


def test_edit_retire_toggle_delete(client_for, session_factory, world):
    c = client_for("admin")
    c.post("/settings/numbers", data={"project_id": world["project"], "number": "+74950001001",
                                      "source_id": world["source"]})
    s = session_factory()
    tn = s.scalars(select(TrackingNumber)).one()
    s.close()
    # remap the static number into the pool
    r = c.post(f"/settings/numbers/{tn.id}", data={"pool_id": world["pool"], "description": "moved"})
    assert r.status_code == 302, errors(r)
    r = c.post(f"/settings/numbers/{tn.id}", data={"pool_id": world["pool"], "source_id": world["source"]})
    assert r.status_code == 400
    assert c.post(f"/settings/numbers/{tn.id}/retire").status_code == 302
    s = session_factory()
    tn = s.get(TrackingNumber, tn.id)
    assert tn.kind == "pool" and tn.description == "moved" and not tn.active and tn.retired_at
    s.close()
    table = c.get("/settings/numbers").get_data(as_text=True).split('id="entity-list"')[1]
    assert "+74950001001" not in table
    assert "+74950001001" in c.get("/settings/numbers?all=1").get_data(as_text=True).split('id="entity-list"')[1]
    c.post("/settings/sources/%d/toggle" % world["source"])
    c.post("/settings/rules", data={"project_id": world["project"], "name": "tmp", "queue": "q"})
    s = session_factory()
    assert s.get(Source, world["source"]).active is False
    rid = s.scalars(select(RoutingRule)).one().id
    s.close()
    assert c.post(f"/settings/rules/{rid}/delete").status_code == 302
    s = session_factory()
    assert s.scalars(select(RoutingRule)).first() is None
    actions = [a.action for a in s.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert actions == ["create", "update", "retire", "disable", "create", "delete"]
    s.close()


def test_admin_cannot_lock_themselves_out(client_for, session_factory):
    c = client_for("admin")
    s = session_factory()
    me = s.scalars(select(User).where(User.username == "admin")).one()
    s.close()
    r = c.post(f"/settings/users/{me.id}", data={"role": "operator", "language": "en", "active": "yes"})
    assert r.status_code == 400
    assert c.post(f"/settings/users/{me.id}/toggle", follow_redirects=True).status_code == 200
    s = session_factory()
    me = s.get(User, me.id)
    assert me.role == "admin" and me.active
    s.close()


def test_numbers_csv_import_all_or_nothing(client_for, session_factory, world):
    c = client_for("admin")
    bad = ("number,project,source,pool\n"
           "+74950005001,acme,Google Ads,\n"
           "12,acme,Google Ads,\n"
           "+74950005002,nope,Google Ads,\n"
           "+74950005001,acme,Google Ads,\n")
    r = c.post("/settings/numbers/csv", data={"file": (io.BytesIO(bad.encode()), "n.csv")},
               content_type="multipart/form-data")
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert "Nothing was imported: 3 bad row(s)." in html
    assert "line 3: invalid phone number" in html and "line 4: project &#39;nope&#39; does not exist" in html
    assert "line 5: number +74950005001 appears twice" in html
    s = session_factory()
    assert s.scalars(select(TrackingNumber)).first() is None
    s.close()
    good = "number;source;pool\n8 (495) 000-50-01;Radio;\n+74950005002;;website\n"
    r = c.post("/settings/numbers/csv", data={"file": (io.BytesIO(good.encode()), "n.csv"), "project": "acme"},
               content_type="multipart/form-data")
    assert r.status_code == 302
    out = c.get("/settings/numbers/export.csv").get_data(as_text=True)
    assert out.splitlines()[1].startswith("+74950005001,acme,Radio")
    assert "+74950005002,acme,,,website" in out


def test_routing_test_form(client_for, session_factory, world):
    c = client_for("admin")
    c.post("/settings/numbers", data={"project_id": world["project"], "number": "+74950001001",
                                      "source_id": world["source"]})
    c.post("/settings/rules", data={"project_id": world["project"], "name": "ads-day", "priority": "20",
                                    "source_id": world["source"], "time_from": "09:00", "time_to": "18:00",
                                    "queue": "ads", "enabled": "yes"})
    c.post("/settings/rules", data={"project_id": world["project"], "name": "night", "priority": "10",
                                    "time_from": "22:00", "time_to": "06:00", "queue": "night",
                                    "enabled": "yes"})
    c.post("/settings/rules", data={"project_id": world["project"], "name": "sofa", "priority": "5",
                                    "keyword_regex": "sofa", "queue": "sofas", "enabled": "yes"})

    def run(**data):
        r = c.post("/settings/rules/test", data={"project_id": world["project"], **data})
        html = r.get_data(as_text=True)
        rule = re.search(r'id="matched-rule">(.*?)</dd>', html, re.S).group(1).strip()
        queue = re.search(r'id="result-queue">(.*?)</dd>', html, re.S).group(1).strip()
        return rule, queue

    assert run(did="+74950001001", when="2027-06-01T10:00") == ("ads-day (priority 20)", "ads")
    assert run(did="+74950001001", when="2027-06-01T23:30") == ("night (priority 10)", "night")
    assert run(did="+74950001001", when="2027-06-02T02:00") == ("night (priority 10)", "night")
    assert run(did="+74950009999", when="2027-06-01T12:00") == ("no rule matches: default queue", "sales")
    assert run(keyword="cheap sofa", when="2027-06-01T12:00") == ("sofa (priority 5)", "sofas")
    r = c.post("/settings/rules/test", data={"project_id": world["project"], "when": "tomorrow"})
    assert r.status_code == 400 and b"invalid date and time" in r.data
