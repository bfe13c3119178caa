"""Website callback requests in the web UI: the settings page (admin, CSRF, errors in the user's
language), unreached requests in the missed-calls worklist with their actions, the report page
and its CSV, the notification event (Flask's test client over real SQLite/PostgreSQL)."""
from __future__ import annotations

import csv
import datetime as dt
import io

import pytest

from calltracking.callbacks import settings as cb_settings
from calltracking.models import CallbackAttempt, CallbackRequest, CallbackSettings, Source
from support.web import HOSTILE_NAMES, PASSWORD, csrf_token

pytestmark = pytest.mark.db
UTC = dt.timezone.utc


def _request(s, pid, phone, *, status, source_id=None, requested=None, reached_after=None, attempts=()):
    requested = requested or dt.datetime.now(UTC) - dt.timedelta(hours=2)
    r = CallbackRequest(project_id=pid, phone=phone, status=status, requested_at=requested, source_id=source_id,
                        attempts=len(attempts), closed_at=requested + dt.timedelta(minutes=5),
                        reached_at=requested + dt.timedelta(seconds=reached_after) if reached_after else None)
    s.add(r)
    s.flush()
    for i, result in enumerate(attempts, 1):
        s.add(CallbackAttempt(request_id=r.id, number=i, token=f"t{r.id}x{i}", started_at=requested,
                              result=result))
    return r


def test_settings_page_saves_and_names_a_wrong_value_in_russian(client_for, session_factory, world):
    c = client_for("admin")
    p = world["project"]
    html = c.get(f"/settings/callbacks?project={p}").get_data(as_text=True)
    assert 'name="outbound_context" value="from-internal"' in html and 'name="retries" value="2"' in html
    assert 'id="no-originate"' in html                     # the test config leaves [ami] originate off
    form = {"enabled": "on", "schedule": "mon-fri 09:00-18:00", "retries": "3", "retry_delay_seconds": "60",
            "cooldown_seconds": "600", "max_calls_per_hour": "10", "allowed_regions": "ru, kz",
            "outbound_context": "to-customers", "widget_delay_seconds": "", "queue": ""}
    assert c.post(f"/settings/callbacks/{p}", data=form).status_code == 302
    with session_factory() as s:
        row = cb_settings.get(s, p)
        assert (row.enabled, row.retries, row.allowed_regions, row.widget_delay_seconds) == (True, 3, "KZ,RU", None)
    c.post("/language", data={"lang": "ru", "next": "/"})
    r = c.post(f"/settings/callbacks/{p}", data=dict(form, retries="99", schedule="понедельник"))
    assert r.status_code == 400
    assert "Повторные попытки: целое число от 0 до 5." in r.get_data(as_text=True)
    r = c.post(f"/settings/callbacks/{p}", data=dict(form, schedule="<script>x</script> 9-10"))
    assert r.status_code == 400 and "<script>x" not in r.get_data(as_text=True)
    with session_factory() as s:
        assert cb_settings.get(s, p).retries == 3
    assert client_for("supervisor").get("/settings/callbacks").status_code == 403


def test_settings_post_needs_csrf(csrf_app, session_factory, world):
    c = csrf_app.test_client()
    token = csrf_token(c.get("/login").get_data(as_text=True))
    assert c.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token}).status_code == 302
    p = world["project"]
    r = c.post(f"/settings/callbacks/{p}", data={"enabled": "on", "outbound_context": "x"})
    assert r.status_code == 400 and b"CSRF" in r.data
    with session_factory() as s:
        assert s.query(CallbackSettings).count() == 0


def test_worklist_shows_unreached_requests_with_actions(client_for, session_factory, world):
    p = world["project"]
    with session_factory() as s:
        src = s.get(Source, world["source"])
        src.name = HOSTILE_NAMES[0]
        gone = _request(s, p, "+79160000001", status="unreached", source_id=src.id,
                        attempts=["no_answer", "no_answer"])
        _request(s, p, "+79160000002", status="reached", reached_after=30, attempts=["reached"])
        s.commit()
        gid = gone.id
    c = client_for("supervisor")
    html = c.get("/missed").get_data(as_text=True)
    assert f'data-request-id="{gid}"' in html and "+79160000001" in html and "+79160000002" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and HOSTILE_NAMES[0] not in html
    assert f"/missed/callback-requests/{gid}/handled" in html
    assert c.post(f"/missed/callback-requests/{gid}/handled").status_code == 302
    with session_factory() as s:
        assert s.get(CallbackRequest, gid).handled_by == "super"
    assert f'data-request-id="{gid}"' not in c.get("/missed").get_data(as_text=True)
    assert f'data-request-id="{gid}"' in c.get("/missed?state=closed").get_data(as_text=True)
    assert c.post(f"/missed/callback-requests/{gid}/call").status_code == 404       # originate is off
    assert client_for("operator").get("/missed").status_code == 403


def test_report_page_and_csv(client_for, session_factory, world):
    p = world["project"]
    with session_factory() as s:
        src = s.get(Source, world["source"])
        src.name = "=HYPERLINK(\"http://x\")"
        _request(s, p, "+79160000001", status="reached", source_id=src.id, reached_after=40,
                 attempts=["no_answer", "reached"])
        _request(s, p, "+79160000002", status="reached", source_id=src.id, reached_after=100, attempts=["reached"])
        _request(s, p, "+79160000003", status="unreached", source_id=src.id, attempts=["failed", "no_answer"])
        _request(s, p, "+79160000004", status="pending")
        s.commit()
    c = client_for("supervisor")
    html = c.get(f"/reports/callbacks?project={p}").get_data(as_text=True)
    assert "Callback requests" in html and "Median time to connected call, s" in html
    raw = c.get(f"/reports/callbacks.csv?project={p}").get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.reader(io.StringIO(raw)))
    head = rows[0]
    by_name = {r[head.index("Name")]: r for r in rows[1:] if len(r) == len(head)}
    row = by_name["'=HYPERLINK(\"http://x\")"]                  # made inert for spreadsheets
    assert [row[head.index(k)] for k in ("Callback requests", "Calls made", "Reached", "Reached, %",
                                          "Median time to connected call, s")] == ["3", "4", "2", "66.7", "70.0"]
    assert by_name[""][head.index("Callback requests")] == "1"
    c.post("/language", data={"lang": "ru", "next": "/"})
    ru = c.get(f"/reports/callbacks.csv?project={p}").get_data(as_text=True).lstrip("\ufeff")
    assert "Дозвонились, %" in ru.splitlines()[0]


def test_notification_rule_event_is_offered(client_for, world):
    html = client_for("admin").get("/settings/integrations/").get_data(as_text=True)
    assert 'value="callback_unreached"' in html and "Callback request unreached" in html
