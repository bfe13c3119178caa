"""The demo data renders every report in Chromium; these runs also make the screenshots in docs/screenshots.

Set ``CALLTRACKING_UPDATE_SCREENSHOTS=1`` to write them to ``docs/screenshots/`` (committed);
otherwise they go to a temporary directory and are only checked.
"""
from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from calltracking import entities as svc
from calltracking.config import load_config
from calltracking.demo import analyse_recordings, seed
from calltracking.models import Call
from support.browser import ARGS, CHROMIUM, DRAWN, log_in

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ("sources", "campaigns", "keywords", "daily", "heatmap", "missed_heatmap", "operators",
           "first_repeat", "time_to_call", "devices", "concurrency")


@pytest.fixture
def shots(tmp_path):
    if os.environ.get("CALLTRACKING_UPDATE_SCREENSHOTS") == "1":
        d = ROOT / "docs" / "screenshots"
        d.mkdir(parents=True, exist_ok=True)
        return d
    return tmp_path


@pytest.fixture
def demo_server(db_url, session_factory, tmp_path):
    from webui import create_app
    from webui.server import make_server

    with session_factory() as s:
        seed(s, days=30, per_day=60, recordings_dir=str(tmp_path / "rec"))
        svc.add_user(s, "demo", "demo-password", "admin", language="en")
        s.commit()
    cfg = load_config(tmp_path / "none.ini", env={
        "CALLTRACKING_DATABASE_URL": db_url, "CALLTRACKING_WEB_SECURE_COOKIES": "no",
        "CALLTRACKING_WEB_LISTEN": "127.0.0.1:0", "CALLTRACKING_RECORDINGS_DIR": str(tmp_path / "rec"),
        "CALLTRACKING_GENERAL_TIMEZONE": "Europe/Moscow"}, require_file=False)
    assert analyse_recordings(cfg, session_factory) > 0       # as `calltracking demo` does
    app = create_app(cfg, session_factory, testing=True)
    srv = make_server(cfg, session_factory, app=app)
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.effective_port}"
    srv.close()
    t.join(5)


def test_demo_renders_every_report(demo_server, session_factory, shots):
    from playwright.sync_api import sync_playwright

    today = dt.datetime.now(ZoneInfo("Europe/Moscow")).date()
    span = f"from={today - dt.timedelta(days=30)}&to={today}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        log_in(page, demo_server, "demo", "demo-password")
        for name in REPORTS:
            page.goto(f"{demo_server}/reports/{name}?{span}")
            page.wait_for_selector("#report-chart[data-drawn='1']", timeout=15000)
            painted = page.evaluate(DRAWN)
            assert painted > 500, f"{name}: chart canvas is blank ({painted} painted pixels)"
            rows = page.locator("#report-table tbody tr").count()
            assert rows >= 2, f"{name}: the table has {rows} rows on 30 days of demo calls"
            if name == "operators":     # the recordings were analysed: the talk-share block is filled
                assert page.locator("#talk-table tbody tr").count() >= 2
            if name in ("sources", "heatmap", "operators"):
                page.screenshot(path=str(shots / f"report-{name}.png"), full_page=True)
        page.goto(f"{demo_server}/calls")
        assert page.locator("table tbody tr").count() >= 20
        page.screenshot(path=str(shots / "journal.png"))
        with session_factory() as s:
            cid = s.scalars(select(Call.id).where(Call.attribution == "dynamic", Call.status == "answered")
                            .order_by(Call.id.desc())).first()
        page.goto(f"{demo_server}/calls/{cid}")
        page.screenshot(path=str(shots / "call-card.png"), full_page=True)
        page.goto(f"{demo_server}/dashboard")
        page.wait_for_selector("#dash-status[data-live='1']", timeout=10000)
        if dt.datetime.now(ZoneInfo("Europe/Moscow")).hour >= 10:     # the demo's calls run up to now
            assert int(page.inner_text("#count-calls").replace("\u00a0", "").replace(" ", "")) > 0
        page.screenshot(path=str(shots / "dashboard.png"))
        phone = browser.new_page(viewport={"width": 390, "height": 844})      # a phone
        log_in(phone, demo_server, "demo", "demo-password")
        phone.goto(f"{demo_server}/calls")
        assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        phone.screenshot(path=str(shots / "journal-390px.png"))
        browser.close()
    assert errors == []
    for name in ("report-sources", "report-heatmap", "report-operators", "journal", "call-card", "dashboard",
                 "journal-390px"):
        png = shots / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000, name
