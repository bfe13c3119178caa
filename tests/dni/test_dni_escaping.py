"""Script in UTM values: stored as text by the endpoint, shown as text on the call card (Chromium)."""
from __future__ import annotations

import pytest
from playwright.sync_api import sync_playwright
from sqlalchemy import select

from calltracking import entities as svc
from calltracking.db import session_scope
from calltracking.models import Call

from support.agi_server import Agi
from support.browser import ARGS, CHROMIUM, log_in
from support.dni import make_project
from support.web import LiveServer, post_json

pytestmark = pytest.mark.browser

EVIL_SOURCE = '<script>window.__pwned = 1</script>'
EVIL_TERM = '"><img src=x onerror="window.__pwned=2">'


def test_hostile_utm_shown_as_text_on_the_call_card(db_url, session_factory):
    make_project(session_factory, origins="*")
    with session_scope(session_factory) as s:
        svc.add_user(s, "boss", "correct-horse-battery", "supervisor")
    web = LiveServer(db_url, session_factory)
    agi = Agi(db_url, session_factory)
    try:
        st, a, _ = post_json(web.url + "/api/dni/assign", {"project": "acme", "utm_source": EVIL_SOURCE,
                                                           "utm_medium": "<b>cpc</b>", "utm_term": EVIL_TERM},
                             {"Origin": "https://shop.example"})
        assert st == 200 and a["kind"] == "pool"
        v = agi.call("route", (a["number"].lstrip("+"), "esc.1"))
        assert v["CT_ATTRIBUTION"] == "dynamic"
        with session_scope(session_factory) as s:
            call_id = s.scalars(select(Call.id).where(Call.linkedid == "esc.1")).one()
        if "auth.login" not in web.app.view_functions:
            pytest.fail("the web UI (webui.create_app) is not importable: cannot check the call card")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page()
            dialogs = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            log_in(page, web.url, "boss", "correct-horse-battery")
            page.goto(f"{web.url}/calls/{call_id}")
            body = page.locator("body").inner_text()
            assert EVIL_SOURCE in body and EVIL_TERM in body and "<b>cpc</b>" in body
            assert page.evaluate("window.__pwned") is None and dialogs == []
            assert page.locator("main img[src=x], dd img, dd script, dd b").count() == 0
            browser.close()
    finally:
        agi.close()
        web.close()
