"""Report pages, CSV export, drill-down and the dashboard through Flask's test client."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import threading

import pytest
from sqlalchemy import select

from calltracking import entities as svc
from calltracking.config import load_config
from calltracking.models import Call, User
from support import report_data as D


REPORT_NAMES = ("sources", "campaigns", "keywords", "daily", "heatmap", "operators", "time_to_call",
                "devices", "concurrency")
RANGE = {"from": "2026-03-01", "to": "2026-03-31"}


@pytest.fixture
def app(db_url, session_factory, tmp_path):
    from webui import create_app

    cfg = load_config(tmp_path / "none.ini", env={"CALLTRACKING_DATABASE_URL": db_url}, require_file=False)
    with session_factory() as s:
        data = D.build(s)
        for name, role in (("admin1", "admin"), ("sup1", "supervisor"), ("op1", "operator")):
            svc.add_user(s, name, "password1", role)
        s.commit()
        pid = data["project"].id
    app = create_app(cfg, session_factory, testing=True)
    app.config["REPORTS_SSE_INTERVAL"] = 0.05
    app.config["REPORTS_SSE_MAX_SECONDS"] = 1.0
    app.ct_project_id = pid
    return app


def login(app, client, username):
    from webui.auth import _fingerprint

    with app.extensions["calltracking"]["sessionmaker"]() as s:
        user = s.scalars(select(User).where(User.username == username)).one()
        uid, fp = user.id, _fingerprint(user)
    with client.session_transaction() as sess:
        sess["uid"], sess["fp"], sess["lang"] = uid, fp, "en"
    return client


@pytest.fixture
def sup(app):
    return login(app, app.test_client(), "sup1")


def q(app, **extra):
    return {"project": app.ct_project_id, **RANGE, **extra}


@pytest.mark.parametrize("name", REPORT_NAMES)
def test_each_report_page_has_chart_table_and_csv(app, sup, name):
    r = sup.get(f"/reports/{name}", query_string=q(app))
    assert r.status_code == 200, r.data[:500]
    html = r.get_data(as_text=True)
    assert 'id="report-chart"' in html and 'id="report-table"' in html
    assert "vendor/chart.umd.js" in html and "cdn" not in html.lower()
    block = html.split('id="report-chart-data">', 1)[1].split("</script>", 1)[0]
    chart = json.loads(block)
    assert chart["datasets"]
    c = sup.get(f"/reports/{name}.csv", query_string=q(app))
    assert c.status_code == 200 and c.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(c.get_data(as_text=True))))
    assert len(rows) >= 2


def test_source_report_values_and_hostile_names_escaped(app, sup):
    html = sup.get("/reports/sources", query_string=q(app)).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert '"><img src=x' not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html          # the table shows it as text
    block = html.split('id="report-chart-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in block                                            # |tojson escapes < > &
    assert D.HOSTILE in json.loads(block)["labels"]                    # …and the chart gets the name
    assert "70.00" in html                                             # cost per call of Google Ads
    kw = sup.get("/reports/keywords", query_string=q(app)).get_data(as_text=True)
    assert "<img src=x" not in kw and "buy widgets" in kw


def test_csv_values(app, sup):
    text = sup.get("/reports/sources.csv", query_string=q(app)).get_data(as_text=True)
    rows = {r["Name"]: r for r in csv.DictReader(io.StringIO(text.lstrip("\ufeff")))}
    assert rows["Google Ads"]["Calls"] == "3" and rows["Google Ads"]["Cost per call"] == "70.0"
    assert rows[D.HOSTILE]["Calls"] == "1"
    heat = list(csv.reader(io.StringIO(sup.get("/reports/heatmap.csv", query_string=q(app)).get_data(as_text=True))))
    assert heat[1][0] == "Mon" and heat[1][1 + 10] == "3"


def test_roles_and_bad_input(app):
    anon = app.test_client()
    r = anon.get("/reports/sources")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    op = login(app, app.test_client(), "op1")
    for url in ("/reports", "/reports/sources", "/reports/sources.csv", "/dashboard", "/dashboard/stream",
                "/dashboard/snapshot.json", "/reports/drill/source?key=1"):
        assert op.get(url).status_code == 403, url
    admin = login(app, app.test_client(), "admin1")
    assert admin.get("/reports", query_string=q(app)).status_code == 200
    assert admin.get("/reports/nope").status_code == 404
    bad = admin.get("/reports/sources", query_string=q(app, **{"from": "2026-99-01"}))
    assert bad.status_code == 200 and "Invalid date “2026-99-01”: type it as YYYY-MM-DD." in bad.get_data(as_text=True)
    assert admin.get("/reports/sources.csv", query_string=q(app, to="x")).status_code == 400
    rev = admin.get("/reports/daily", query_string=q(app, **{"from": "2026-04-01"}))
    assert "reversed" in rev.get_data(as_text=True)


def test_drilldown_page(app, sup):
    with app.extensions["calltracking"]["sessionmaker"]() as s:
        gid = s.scalars(select(Call.source_id).where(Call.status == "answered")).first()
    html = sup.get("/reports/sources", query_string=q(app)).get_data(as_text=True)
    assert f"/reports/drill/source?key={gid}" in html.replace("&amp;", "&") or "drill/source" in html
    r = sup.get("/reports/drill/source", query_string=q(app, key=gid))
    assert r.status_code == 200
    assert r.get_data(as_text=True).count("/calls/") >= 1
    k = sup.get("/reports/drill/keyword", query_string=q(app, key=D.HOSTILE)).get_data(as_text=True)
    assert "<script>alert(1)" not in k and "&lt;script&gt;" in k
    assert sup.get("/reports/drill/source", query_string=q(app, key=gid, before="garbage")).status_code == 400


def test_report_sees_a_new_call_without_scheduler(app, sup):
    first = sup.get("/reports/sources.csv", query_string=q(app)).get_data(as_text=True)
    with app.extensions["calltracking"]["sessionmaker"]() as s:
        p = s.get(__import__("calltracking.models", fromlist=["Project"]).Project, app.ct_project_id)
        D.add_call(s, p, "2026-03-20 12:00:00", status="missed", wait=7)
        s.commit()
    second = sup.get("/reports/sources.csv", query_string=q(app)).get_data(as_text=True)
    total = lambda t: next(int(r["Calls"]) for r in csv.DictReader(io.StringIO(t.lstrip("\ufeff")))  # noqa: E731
                           if r["Name"] == "Total" and not r["key"])       # the CSV's totals row
    assert total(second) == total(first) + 1


def test_dashboard_page_snapshot_and_stream(app, sup):
    r = sup.get("/dashboard", query_string={"project": app.ct_project_id})
    assert r.status_code == 200 and 'id="live-calls"' in r.get_data(as_text=True)
    snap = sup.get("/dashboard/snapshot.json", query_string={"project": app.ct_project_id}).get_json()
    assert set(snap["today"]) >= {"calls", "answered", "missed", "in_progress"}
    # the stream sends a snapshot at once, then another after a call is inserted
    with app.extensions["calltracking"]["sessionmaker"]() as s:
        p = s.get(__import__("calltracking.models", fromlist=["Project"]).Project, app.ct_project_id)
        now = dt.datetime.now(dt.timezone.utc)

        def later():
            import time
            time.sleep(0.3)
            D.add_call(s, p, now, status="in_progress", source=None)
            s.commit()

        t = threading.Thread(target=later)
        t.start()
        resp = sup.get("/dashboard/stream", query_string={"project": app.ct_project_id}, buffered=True)
        t.join()
    assert resp.mimetype == "text/event-stream"
    events = [json.loads(line[6:]) for line in resp.get_data(as_text=True).splitlines()
              if line.startswith("data: ")]
    assert len(events) >= 2
    assert events[-1]["today"]["in_progress"] == events[0]["today"]["in_progress"] + 1


def test_stream_limit_turns_extra_streams_away(app, sup):
    app.config["REPORTS_SSE_MAX_STREAMS"] = 0
    r = sup.get("/dashboard/stream", query_string={"project": app.ct_project_id})
    assert r.status_code == 503 and r.headers["Retry-After"] == "30"
    html = sup.get("/dashboard", query_string={"project": app.ct_project_id}).get_data(as_text=True)
    assert "/dashboard/snapshot.json" in html          # the page's fallback for polling


def test_reports_in_russian(app, sup):
    with sup.session_transaction() as sess:
        sess["lang"] = "ru"
    html = sup.get("/reports/sources", query_string=q(app)).get_data(as_text=True)
    assert "По источникам" in html and "Цена звонка" in html
    heat = sup.get("/reports/heatmap", query_string=q(app)).get_data(as_text=True)
    assert "<th>Пн</th>" in heat


def test_operators_report_shows_recorded_talk_share(app, sup, session_factory):
    """Per operator: the share of talk and the longest silence measured on the recordings."""
    from decimal import Decimal

    from calltracking.models import RecordingInfo

    with session_factory() as s:
        calls = s.scalars(select(Call).where(Call.operator_name != "", Call.status == "answered")
                          .order_by(Call.id)).all()
        assert calls
        s.add(RecordingInfo(call_id=calls[0].id, status="ok", talk_ratio=Decimal("0.625"),
                            longest_silence_seconds=Decimal("7.5"), operator_talk_seconds=Decimal("50"),
                            caller_talk_seconds=Decimal("30")))
        s.commit()
        who = calls[0].operator_name
    html = sup.get("/reports/operators", query_string=RANGE).get_data(as_text=True)
    assert 'id="talk-table"' in html
    row = html.split('id="talk-table"', 1)[1].split("</table>", 1)[0]
    assert who in row and "62 %" in row and "7.5" in row
    # without measured recordings the table is not shown
    with session_factory() as s:
        s.query(RecordingInfo).delete()
        s.commit()
    assert 'id="talk-table"' not in sup.get("/reports/operators", query_string=RANGE).get_data(as_text=True)
