"""Operators' and marketers' figures: answer rate, deals and value per operator, the missed-calls
heatmap, first and repeat calls; the queries on both databases, the page, the CSV and Chromium."""
from __future__ import annotations

import csv
import datetime as dt
import io
import threading

import pytest
from sqlalchemy import select

from calltracking import entities as svc
from calltracking.config import load_config
from calltracking.models import User
from calltracking.reports import queries
from calltracking.reports.rollup import refresh_rollups
from support import report_data as D
from support.browser import ARGS, CHROMIUM, DRAWN, log_in

MARCH = {"from": "2026-03-01", "to": "2026-03-31"}


@pytest.fixture
def data(session):
    d = D.build(session)
    assert refresh_rollups(session) > 0
    return d


def flt(d):
    return queries.ReportFilter(d["project"], dt.date(2026, 3, 1), dt.date(2026, 3, 31))


def by_name(report):
    return {r["name"]: r for r in report.as_dicts()}


def test_operators_answer_rate_deals_and_value(session, data):
    rows = by_name(queries.operators(session, flt(data)))
    anna, boris = rows["Anna"], rows["Boris"]
    # Anna answered 2 calls and was rung once without answering; Boris 1 and 2
    assert (anna["offered"], anna["taken"], anna["missed_rung"], anna["answer_rate"]) == (3, 2, 1, 66.7)
    assert (boris["offered"], boris["taken"], boris["missed_rung"], boris["answer_rate"]) == (3, 1, 2, 33.3)
    assert (anna["deals"], anna["value"]) == (1, 1000.0)
    assert boris["deals"] == 0 and not boris["value"]


def test_missed_heatmap(session, data):
    rep = queries.run_report(session, "missed_heatmap", flt(data))
    mon = rep.rows[0]
    assert mon[0] == "Mon" and mon[1 + 10] == 1      # the one missed call: 15:02 UTC = 10:02 EST
    assert sum(sum(r[1:]) for r in rep.rows) == 1
    assert rep.chart["datasets"][0]["label"] == "missed"
    assert [c["v"] for c in rep.chart["datasets"][0]["data"] if c["v"]] == [1]
    # the calls heatmap beside it still counts every call
    assert queries.heatmap(session, flt(data)).rows[0][1 + 10] == 3


def test_first_and_repeat_calls_per_source_and_per_day(session, data):
    rep = queries.run_report(session, "first_repeat", flt(data))
    rows = by_name(rep)
    g = rows["Google Ads"]
    assert (g["calls"], g["first"], g["repeat"], g["first_share"]) == (3, 2, 1, 66.7)
    assert (rows[D.HOSTILE]["first"], rows[D.HOSTILE]["repeat"], rows[D.HOSTILE]["first_share"]) == (1, 0, 100.0)
    chart = rep.chart
    assert len(chart["labels"]) == 31 and chart["labels"][1] == "2026-03-02"
    first, repeat = (ds["data"] for ds in chart["datasets"])
    assert (first[1], repeat[1]) == (3, 1) and sum(first) == 3 and sum(repeat) == 1


@pytest.fixture
def app(db_url, session_factory, tmp_path):
    from webui import create_app

    cfg = load_config(tmp_path / "none.ini", env={"CALLTRACKING_DATABASE_URL": db_url,
                                                  "CALLTRACKING_WEB_SECURE_COOKIES": "no"},
                      require_file=False)
    with session_factory() as s:
        d = D.build(s)
        svc.add_user(s, "sup1", "password1", "supervisor")
        s.commit()
        pid = d["project"].id
    app = create_app(cfg, session_factory, testing=True)
    app.ct_project_id = pid
    return app


def _client(app, lang="en"):
    from webui.auth import _fingerprint

    c = app.test_client()
    with app.extensions["calltracking"]["sessionmaker"]() as s:
        user = s.scalars(select(User).where(User.username == "sup1")).one()
        uid, fp = user.id, _fingerprint(user)
    with c.session_transaction() as sess:
        sess["uid"], sess["fp"], sess["lang"] = uid, fp, lang
    return c


def test_operators_csv_has_answer_rate_deals_and_value(app):
    c = _client(app)
    text = c.get("/reports/operators.csv", query_string={"project": app.ct_project_id, **MARCH}).get_data(as_text=True)
    rows = {r["Name"]: r for r in csv.DictReader(io.StringIO(text.lstrip("\ufeff")))}
    assert {"Offered", "Answer rate, %", "Deals", "Value"} <= set(rows["Anna"])
    assert (rows["Anna"]["Answer rate, %"], rows["Anna"]["Deals"]) == ("66.7", "1")
    first = list(csv.reader(io.StringIO(c.get("/reports/first_repeat.csv", query_string={
        "project": app.ct_project_id, **MARCH}).get_data(as_text=True).lstrip("\ufeff"))))
    assert first[0][1:6] == ["Name", "Calls", "First", "Repeat", "First calls, %"]
    assert ["Google Ads", "3", "2", "1", "66.7"] in [r[1:6] for r in first[1:]]


def test_pages_in_russian(app):
    c = _client(app, "ru")
    q = {"project": app.ct_project_id, **MARCH}
    ops = c.get("/reports/operators", query_string=q).get_data(as_text=True)
    assert "Доля отвеченных, %" in ops and "Предложено" in ops
    heat = c.get("/reports/missed_heatmap", query_string=q).get_data(as_text=True)
    assert "Пропущенные: час × день недели" in heat and 'id="heatmap-views"' in heat
    fr = c.get("/reports/first_repeat", query_string=q).get_data(as_text=True)
    assert "Первичные и повторные звонки" in fr and "Первичные, %" in fr


@pytest.mark.browser
def test_browser_shows_the_new_figures(app):
    from playwright.sync_api import sync_playwright
    from waitress import create_server

    srv = create_server(app, host="127.0.0.1", port=0, threads=4)
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    base = f"http://127.0.0.1:{srv.effective_port}"
    span = f"project={app.ct_project_id}&from=2026-03-01&to=2026-03-31"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1366, "height": 860})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            log_in(page, base, "sup1", "password1")
            page.goto(f"{base}/reports/operators?{span}")
            heads = page.locator("#report-table thead th").all_inner_texts()
            assert {"Offered", "Answer rate, %", "Deals", "Value"} <= set(heads)
            anna = page.locator("#report-table tbody tr", has_text="Anna").inner_text()
            assert "66.7" in anna
            page.goto(f"{base}/reports/heatmap?{span}")
            page.click("#heatmap-views >> text=Missed calls")
            page.wait_for_url("**/reports/missed_heatmap?*")
            page.wait_for_selector("#report-chart[data-drawn='1']", timeout=15000)
            assert page.evaluate(DRAWN) > 500
            assert page.locator("#report-table tbody tr").first.inner_text().split().count("1") == 1
            page.goto(f"{base}/reports/first_repeat?{span}")
            page.wait_for_selector("#report-chart[data-drawn='1']", timeout=15000)
            assert page.evaluate(DRAWN) > 500
            g = page.locator("#report-table tbody tr", has_text="Google Ads").inner_text()
            assert "66.7" in g
            browser.close()
        assert errors == []
    finally:
        srv.close()
        t.join(5)
