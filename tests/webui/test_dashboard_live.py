"""The live dashboard polls /dashboard/snapshot.json with an ETag: tabs hold no server thread.

A real waitress server with two worker threads, several tabs of one supervisor in Chromium:
every tab is live, closing tabs frees nothing because nothing is held, and the last tab still
sees a new call.
"""
from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import select

from calltracking.models import Project
from support import report_data as D
from support.browser import ARGS, CHROMIUM, log_in


@pytest.fixture
def app(db_url, session_factory, tmp_path):
    return D.reports_app(db_url, session_factory, tmp_path, REPORTS_POLL_INTERVAL=0.3)


def _add_in_progress(session_factory):
    with session_factory() as s:
        p = s.scalars(select(Project)).first()
        D.add_call(s, p, dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5), status="in_progress",
                   source=None)
        s.commit()


@pytest.mark.db
def test_snapshot_etag_answers_304_until_a_call_changes_the_figures(app, session_factory):
    from calltracking.models import User
    from webui.auth import _fingerprint

    c = app.test_client()
    with session_factory() as s:
        user = s.scalars(select(User).where(User.username == "sup1")).one()
        with c.session_transaction() as sess:
            sess["uid"], sess["fp"], sess["lang"] = user.id, _fingerprint(user), "en"
    r = c.get("/dashboard/snapshot.json")
    assert r.status_code == 200 and r.headers["ETag"] and r.get_json()["today"]
    html = c.get("/dashboard").get_data(as_text=True)
    assert 'data-interval="300"' in html and "/dashboard/stream" not in html
    time.sleep(1.1)                 # the clock moved: the facts did not
    again = c.get("/dashboard/snapshot.json", headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    _add_in_progress(session_factory)
    changed = c.get("/dashboard/snapshot.json", headers={"If-None-Match": r.headers["ETag"]})
    assert changed.status_code == 200 and changed.headers["ETag"] != r.headers["ETag"]
    assert changed.get_json()["today"]["in_progress"] == r.get_json()["today"]["in_progress"] + 1


@pytest.mark.db
@pytest.mark.browser
def test_many_tabs_on_two_threads_all_live_and_the_last_gets_updates(app, session_factory):
    from playwright.sync_api import sync_playwright
    from waitress import create_server

    srv = create_server(app, host="127.0.0.1", port=0, threads=2)
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    base = f"http://127.0.0.1:{srv.effective_port}"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            ctx = browser.new_context()
            first = ctx.new_page()
            errors = []
            first.on("pageerror", lambda e: errors.append(str(e)))
            log_in(first, base, "sup1", "password1")
            tabs = [first] + [ctx.new_page() for _ in range(3)]
            for tab in tabs:
                tab.goto(base + "/dashboard")
            for tab in tabs:
                tab.wait_for_selector("#dash-status[data-live='1']", timeout=10000)
                tab.wait_for_selector("#dashboard[data-updates='1']", timeout=10000)
            # the server still answers other pages at once while four tabs are open
            started = time.monotonic()
            assert tabs[0].request.get(base + "/reports").status == 200
            assert time.monotonic() - started < 3
            for tab in tabs[:3]:
                tab.close()
            last = tabs[3]
            before = int(last.inner_text("#count-in_progress"))
            _add_in_progress(session_factory)
            last.wait_for_function(
                f"() => document.getElementById('count-in_progress').textContent === '{before + 1}'",
                timeout=10000)
            assert last.get_attribute("#dash-status", "data-live") == "1"
            assert last.locator("#live-calls tbody tr").count() >= 1
            assert errors == []
            browser.close()
    finally:
        srv.close()
        t.join(5)
