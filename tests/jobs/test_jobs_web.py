"""Settings → Integrations: admin only, send test, dead-letter retry, ad spend upload with per-row errors."""
from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from calltracking import entities as svc
from calltracking.config import load_config
from calltracking.models import AdSpend, Delivery, NotificationRule

PASSWORD = "correct-horse-battery"


@pytest.fixture
def web(db_url, session_factory, project):
    from webui import create_app

    with session_factory() as s:
        svc.add_user(s, "admin", PASSWORD, "admin")
        svc.add_user(s, "super", PASSWORD, "supervisor")
        svc.add_user(s, "adminru", PASSWORD, "admin", language="ru")
        s.commit()
    cfg = load_config("/nonexistent/calltracking.ini", require_file=False, env={
        "CALLTRACKING_DATABASE_URL": db_url, "CALLTRACKING_WEB_SECRET_KEY": "test-secret-key-0123456789abcdef",
        "CALLTRACKING_WEB_SECURE_COOKIES": "no",
        "CALLTRACKING_NOTIFY_ALLOW_PRIVATE_TARGETS": "yes"})  # the webhook stand-in listens on loopback
    app = create_app(cfg, session_factory, testing=True)
    app.config["WTF_CSRF_ENABLED"] = False

    def client(user):
        c = app.test_client()
        if user:
            r = c.post("/login", data={"username": user, "password": PASSWORD})
            assert r.status_code == 302
        return c

    return client


def test_admin_only(web):
    assert web(None).get("/settings/integrations/").status_code == 302
    assert web("super").get("/settings/integrations/").status_code == 403
    r = web("admin").get("/settings/integrations/")
    assert r.status_code == 200 and b"Dead letters" in r.data and b"Scheduled jobs" in r.data
    settings_page = web("admin").get("/settings/", follow_redirects=True).data.decode()
    assert 'href="/settings/integrations/"' in settings_page  # linked from the settings navigation
    ru = web("adminru").get("/settings/integrations/").data.decode()
    assert "Недоставленные" in ru and "Отправить тест" not in ru  # no rules yet
    assert "Расходы на рекламу" in ru and "Фоновые задачи" in ru


def test_rule_send_test_and_dead_letter_retry(web, session_factory, project, http_server):
    c = web("admin")
    r = c.post("/settings/integrations/rules", data={
        "project": project["id"], "channel": "crm", "event": "call_finished",
        "target": http_server.url + "/crm", "secret": "k", "name": "<b>CRM</b>"})
    assert r.status_code == 302
    with session_factory() as s:
        rule = s.scalars(select(NotificationRule)).one()
    page = c.get("/settings/integrations/").data.decode()
    assert "&lt;b&gt;CRM&lt;/b&gt;" in page and "<b>CRM</b>" not in page

    r = c.post(f"/settings/integrations/rules/{rule.id}/test", follow_redirects=True)
    assert "Test message sent." in r.data.decode()
    assert http_server.requests[-1]["headers"]["x-calltracking-signature"].startswith("t=")

    http_server.always = 500
    r = c.post(f"/settings/integrations/rules/{rule.id}/test", follow_redirects=True)
    assert "Test failed: HTTP 500" in r.data.decode()
    with session_factory() as s:
        dead = s.scalars(select(Delivery).where(Delivery.status == "dead")).one()
    assert f'data-delivery-id="{dead.id}"' in r.data.decode()
    http_server.always = None
    r = c.post(f"/settings/integrations/deliveries/{dead.id}/retry", follow_redirects=True)
    assert "Sent." in r.data.decode()
    with session_factory() as s:
        assert s.get(Delivery, dead.id).status == "sent"

    r = c.post("/settings/integrations/rules", data={
        "project": project["id"], "channel": "email", "event": "missed_call", "target": "nope"})
    assert r.status_code == 400 and "invalid e-mail address" in r.data.decode()


def test_spend_upload_with_row_errors(web, session_factory, project):
    c = web("admin")
    bad = "day,source,amount\n2026-11-01,Google Ads,10\n2026-11-02,<script>x</script>,5\n2026-11-03,Google Ads,-1\n"
    r = c.post("/settings/integrations/spend", data={"project": project["id"],
                                                      "file": (io.BytesIO(bad.encode()), "spend.csv")},
               content_type="multipart/form-data")
    html = r.data.decode()
    assert r.status_code == 400 and "Nothing was imported: 2 bad row(s)." in html
    assert "line 3: source &#39;&lt;script&gt;x&lt;/script&gt;&#39; does not exist" in html
    assert "line 4: negative amount" in html and "<script>x" not in html
    with session_factory() as s:
        assert s.scalars(select(AdSpend)).all() == []
    good = "day,source,amount\n2026-11-01,Google Ads,10\n"
    r = c.post("/settings/integrations/spend", data={"project": project["id"],
                                                      "file": (io.BytesIO(good.encode()), "spend.csv")},
               content_type="multipart/form-data", follow_redirects=True)
    assert "Imported 1 row(s): 1 new, 0 updated." in r.data.decode()


def test_csrf_is_required(db_url, session_factory, project, web):
    from webui import create_app

    cfg = load_config("/nonexistent/calltracking.ini", require_file=False, env={
        "CALLTRACKING_DATABASE_URL": db_url, "CALLTRACKING_WEB_SECRET_KEY": "test-secret-key-0123456789abcdef",
        "CALLTRACKING_WEB_SECURE_COOKIES": "no"})
    app = create_app(cfg, session_factory, testing=True)
    c = app.test_client()
    import re

    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").data.decode()).group(1)
    assert c.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token}).status_code == 302
    r = c.post("/settings/integrations/rules", data={"project": project["id"], "channel": "ga4",
                                                      "event": "call_finished", "target": "G-X"})
    assert r.status_code == 400
    with session_factory() as s:
        assert s.scalars(select(NotificationRule)).all() == []


def test_sms_rule_numbers_normalised_or_refused_in_the_form_and_the_cli(web, session_factory, project, run_cli):
    r = web("admin").post("/settings/integrations/rules", data={
        "project": project["id"], "channel": "sms", "event": "missed_call", "target": "8 (999) 123-45-67; +7 999 765 43 21"})
    assert r.status_code == 302
    with session_factory() as s:
        [rule] = s.scalars(select(NotificationRule)).all()
        assert (rule.channel, rule.target) == ("sms", "+79991234567, +79997654321")
    page = web("admin").get("/settings/integrations/").get_data(as_text=True)
    assert "+79991234567, +79997654321" in page and "<td>SMS</td>" in page
    hostile = '<script>alert(1)</script>'
    for user, said in (("admin", "Invalid phone number “{}”."), ("adminru", "Неверный номер телефона «{}».")):
        r = web(user).post("/settings/integrations/rules", data={
            "project": project["id"], "channel": "sms", "event": "missed_call", "target": f"+79991234567, {hostile}"})
        body = r.get_data(as_text=True)
        assert r.status_code == 400 and said.format("&lt;script&gt;alert(1)&lt;/script&gt;") in body
        assert hostile not in body
    r = web("adminru").post("/settings/integrations/rules", data={
        "project": project["id"], "channel": "sms", "event": "call_finished", "target": "+79991234567"})
    assert r.status_code == 400 and "SMS-правила срабатывают" in r.get_data(as_text=True)

    res = run_cli("notify", "add", "acme", "--channel", "sms", "--event", "missed_call", "--target", "12345", ok=False)
    assert res.exit_code == 1 and "Error: invalid phone number '12345'" in res.output
    res = run_cli("notify", "add", "acme", "--channel", "sms", "--event", "digest_daily", "--target", "89991234567")
    assert "added" in res.output
    with session_factory() as s:
        assert sorted(r.target for r in s.scalars(select(NotificationRule))) == [
            "+79991234567", "+79991234567, +79997654321"]
