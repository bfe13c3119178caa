"""Browser tests: Debian's Chromium (Playwright) against a real waitress server on loopback.

Each report draws its chart on a canvas; the live dashboard gets an SSE update
when a call is inserted; hostile source names never run as script.
"""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select

from calltracking.models import Project
from support import report_data as D
from support.browser import DRAWN, log_in

pytestmark = pytest.mark.browser


REPORTS = ("sources", "campaigns", "keywords", "daily", "heatmap", "operators", "time_to_call",
           "devices", "concurrency")


@pytest.fixture
def server(db_url, session_factory, tmp_path):
    from waitress import create_server

    app = D.reports_app(db_url, session_factory, tmp_path, REPORTS_SSE_INTERVAL=0.2)
    srv = create_server(app, host="127.0.0.1", port=0, threads=6)
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.effective_port}"
    srv.close()
    t.join(5)


@pytest.fixture
def page(browser, server):
    ctx = browser.new_context()
    pg = ctx.new_page()
    dialogs, errors = [], []
    pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    pg.on("pageerror", lambda e: errors.append(str(e)))
    log_in(pg, server, "sup1", "password1")
    pg.dialogs, pg.errors = dialogs, errors
    yield pg
    ctx.close()




def test_every_report_draws_its_chart(page, server):
    for name in REPORTS:
        page.goto(f"{server}/reports/{name}?from=2026-03-01&to=2026-03-31")
        page.wait_for_selector("#report-chart[data-drawn='1']", timeout=10000)
        painted = page.evaluate(DRAWN)
        assert painted > 200, f"{name}: chart canvas is blank ({painted} painted pixels)"
        assert page.locator("#report-table").count() == 1
    assert page.errors == [] and page.dialogs == []


def test_hostile_source_name_is_text_not_script(page, server):
    page.goto(f"{server}/reports/sources?from=2026-03-01&to=2026-03-31")
    page.wait_for_selector("#report-chart[data-drawn='1']")
    assert page.locator("#report-table").inner_text().count("<script>alert(1)</script>") == 1
    assert page.locator("#report-table img").count() == 0
    labels = page.evaluate("() => Chart.getChart(document.getElementById('report-chart')).data.labels")
    assert D.HOSTILE in labels
    page.goto(f"{server}/reports/keywords?from=2026-03-01&to=2026-03-31")
    page.wait_for_selector("#report-chart[data-drawn='1']")
    page.locator("#report-table a", has_text="<script>").click()
    page.wait_for_selector("#drill-table")
    assert page.dialogs == [] and page.errors == []


def test_dashboard_receives_sse_update_when_a_call_is_inserted(page, server, session_factory):
    page.goto(server + "/dashboard")
    page.wait_for_selector("#dash-status[data-live='1']", timeout=10000)
    page.wait_for_selector("#dashboard[data-updates='1']", timeout=10000)
    before = int(page.inner_text("#count-in_progress"))
    with session_factory() as s:
        p = s.scalars(select(Project)).first()
        D.add_call(s, p, dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5), status="in_progress",
                   source=None)
        s.commit()
    page.wait_for_function(
        f"() => document.getElementById('count-in_progress').textContent === '{before + 1}'", timeout=10000)
    assert page.locator("#live-calls tbody tr").count() >= 1
    assert int(page.get_attribute("#dashboard", "data-updates")) >= 2
    assert page.errors == []


def test_daily_chart_uses_the_answered_and_missed_colours_of_the_other_charts(page, server):
    colours = "() => Object.fromEntries(Chart.getChart(document.getElementById('report-chart'))" \
              ".data.datasets.map(ds => [ds.key || ds.label, ds.borderColor]))"
    page.goto(f"{server}/reports/sources?from=2026-03-01&to=2026-03-31")
    page.wait_for_selector("#report-chart[data-drawn='1']")
    bars = page.evaluate(colours)
    page.goto(f"{server}/reports/daily?period=7d")
    page.wait_for_selector("#report-chart[data-drawn='1']")
    line = page.evaluate(colours)
    assert line["answered"] == bars["answered"] and line["missed"] == bars["missed"]
    assert line["answered"] != line["missed"] != line["calls"]
    labels = page.evaluate("() => Chart.getChart(document.getElementById('report-chart')).data.labels")
    assert len(labels) == 7 and labels[-1].endswith("(so far)")         # today, counted so far
    page.locator("#report-presets [data-preset='yesterday']").click()
    page.wait_for_selector("#report-chart[data-drawn='1']")
    assert "period=yesterday" in page.url and page.locator("#report-table tbody tr").count() == 1
    assert page.errors == []
