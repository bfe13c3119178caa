"""The snippet in Debian's Chromium with dni.js and the API served by the asyncio DNI server."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from calltracking.db import session_scope
from calltracking.models import VisitorSession

from support.browser import open_page
from support.dni import FastServer, make_project
from support.web import SiteServer
from test_dni_fastserver_db import _lock_database

pytestmark = pytest.mark.browser

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Shop</title>
<script src="{src}/dni.js" data-project="acme" data-default="+7 (495) 123-45-67" data-timeout="3000" async></script>
</head><body><header>Call us: <b id="hdr">+7 (495) 123-45-67</b>
<a id="tel" href="tel:+74951234567">8 (495) 123-45-67</a></header></body></html>"""


@pytest.fixture
def world(db_url, session_factory):
    fast = FastServer(db_url, session_factory, DNI_DB_TIMEOUT=0.5)
    site = SiteServer({"/": PAGE.format(src=fast.url), "/page2": PAGE.format(src=fast.url)})
    make_project(session_factory, origins=site.origin)
    yield fast, site
    site.close()
    fast.close()


def test_snippet_through_the_fast_server(browser, world, session_factory):
    fast, site = world
    ctx, page, errors = open_page(browser, "GA1.1.42.1700000000", site.url)
    page.goto(site.url + "/?utm_source=google&utm_campaign=brand_spring&utm_term=pizza")
    page.wait_for_selector("html[data-ct-dni='ready']", timeout=10_000)
    assert page.locator("#hdr").text_content() == "+7 (495) 000-20-00"
    assert page.locator("#tel").text_content() == "8 (495) 000-20-00"
    assert page.locator("#tel").get_attribute("href") == "tel:+74950002000"
    vid = page.evaluate("window.CallTrackingDNI.visitorId")
    page.goto(site.url + "/page2")                                   # kept across page loads
    page.wait_for_selector("html[data-ct-dni='ready']", timeout=10_000)
    assert page.locator("#hdr").text_content() == "+7 (495) 000-20-00"
    assert page.evaluate("window.CallTrackingDNI.visitorId") == vid and errors == []
    ctx.close()
    with session_scope(session_factory) as s:
        vs = s.scalars(select(VisitorSession)).one()
        assert (vs.visitor_id, vs.utm_source, vs.utm_campaign, vs.keyword, vs.ga_client_id) == (
            vid, "google", "brand_spring", "pizza", "42.1700000000")
        assert vs.browser == "Chrome" and vs.ip == "127.0.0.1"


def test_locked_database_falls_back_quickly(browser, world, engine):
    fast, site = world
    release = _lock_database(engine)
    try:
        ctx = browser.new_context()
        page = ctx.new_page()
        page.goto(site.url + "/")
        page.wait_for_selector("html[data-ct-dni='fallback']", timeout=2_500)   # well before data-timeout
        assert page.locator("#hdr").text_content() == "+7 (495) 123-45-67"
        assert page.locator("#tel").get_attribute("href") == "tel:+74951234567"
        ctx.close()
    finally:
        release()


def test_the_snippet_confirms_its_provisional_number(browser, world, session_factory):
    from calltracking.dni.holds import pool_status
    from calltracking.models import NumberPool

    fast, site = world
    ctx, page, errors = open_page(browser)
    page.goto(site.url + "/")
    page.wait_for_selector("html[data-ct-dni='ready']", timeout=10_000)
    assert page.evaluate("window.CallTrackingDNI.provisional") is True        # a new hold
    page.wait_for_function("window.CallTrackingDNI.provisional === false", timeout=10_000)
    with session_scope(session_factory) as s:                  # the first heartbeat made it a full hold
        st = pool_status(s, s.scalars(select(NumberPool)).one())
    assert (st["held"], st["provisional"]) == (1, 0)
    assert errors == []
    ctx.close()
