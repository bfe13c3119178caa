"""The snippet in Debian's Chromium (Playwright): a customer site on one port, the app on another."""
from __future__ import annotations

import socket
import threading

import pytest
from sqlalchemy import select

from calltracking.db import session_scope
from calltracking.models import VisitorSession

from support.browser import open_page
from support.dni import make_project
from support.web import LiveServer, SiteServer

pytestmark = pytest.mark.browser


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Shop</title>
<script src="{src}/dni.js" data-project="{project}" data-default="+7 (495) 123-45-67"
        data-server="{api}" data-timeout="{timeout}" data-selector="header, footer" async></script>
</head><body>
<header>Call us: <b id="hdr">+7 (495) 123-45-67</b>
  <a id="tel" href="tel:+74951234567">8 (495) 123-45-67</a></header>
<main><p id="other">Warehouse: +7 (812) 555-00-11</p>
  <p id="outside">Not in a selector: +7 (495) 123-45-67</p></main>
<footer><span id="ftr">8&nbsp;495&nbsp;123&nbsp;45&nbsp;67</span>
  <span id="promo" data-ct-promo hidden></span></footer>
<script src="{src}/missing-on-purpose.js"></script>
</body></html>"""


class BlackHole:
    """Accepts connections and never answers (a server that hangs)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(50)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except OSError:
                return

    def close(self):
        self.stop = True
        self.sock.close()
        for c in self.conns:
            c.close()


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def world(db_url, session_factory):
    hole = BlackHole()
    dead = _dead_port()
    live = LiveServer(db_url, session_factory)
    pages = {
        "/": PAGE.format(src=live.url, api=live.url, project="acme", timeout=3000),
        "/page2": PAGE.format(src=live.url, api=live.url, project="acme", timeout=3000),
        "/hang": PAGE.format(src=live.url, api=f"http://127.0.0.1:{hole.port}", project="acme", timeout=700),
        "/down": PAGE.format(src=f"http://127.0.0.1:{dead}", api=f"http://127.0.0.1:{dead}", project="acme",
                             timeout=700),
        "/promo": PAGE.format(src=live.url, api=live.url, project="beta", timeout=3000),
    }
    site = SiteServer(pages)
    make_project(session_factory, origins=site.origin)
    make_project(session_factory, key="beta", pool_size=0, promo_mode="always", origins=site.origin,
                 base=74950003000)
    yield live, site
    site.close()
    live.close()
    hole.close()


def _texts(page):
    return {i: page.locator(f"#{i}").text_content() for i in ("hdr", "tel", "other", "outside", "ftr")}


def test_number_replaced_kept_and_captured(browser, world, session_factory):
    live, site = world
    ctx, page, errors = open_page(browser, "GA1.1.123456789.1700000000", site.url)
    page.goto(site.url + "/?utm_source=google&utm_medium=cpc&utm_campaign=brand_spring"
              "&utm_term=buy+pizza&gclid=abc123")
    page.wait_for_selector("html[data-ct-dni='ready']", timeout=10_000)
    t = _texts(page)
    assert t["hdr"] == "+7 (495) 000-20-00"                     # formatting kept
    assert t["tel"] == "8 (495) 000-20-00"
    assert page.locator("#tel").get_attribute("href") == "tel:+74950002000"
    assert t["ftr"] == "8\u00a0495\u00a0000\u00a020\u00a000"
    assert t["other"] == "Warehouse: +7 (812) 555-00-11"        # another number stays
    assert t["outside"] == "Not in a selector: +7 (495) 123-45-67"
    vid = page.evaluate("window.CallTrackingDNI.visitorId")
    assert vid and vid in page.evaluate("document.cookie")
    # Kept across page loads (no tags on the second page: same session, same number).
    page.goto(site.url + "/page2")
    page.wait_for_selector("html[data-ct-dni='ready']", timeout=10_000)
    assert _texts(page)["hdr"] == "+7 (495) 000-20-00"
    assert page.evaluate("window.CallTrackingDNI.visitorId") == vid
    assert errors == []
    ctx.close()
    with session_scope(session_factory) as s:
        sessions = s.scalars(select(VisitorSession)).all()
    assert len(sessions) == 1
    vs = sessions[0]
    assert (vs.visitor_id, vs.utm_source, vs.utm_medium, vs.utm_campaign, vs.utm_term, vs.gclid) == (
        vid, "google", "cpc", "brand_spring", "buy pizza", "abc123")
    assert vs.ga_client_id == "123456789.1700000000" and vs.keyword == "buy pizza"
    assert vs.landing_page.startswith(site.url + "/?utm_source=google")
    assert vs.browser == "Chrome" and vs.device == "desktop"


def test_fallback_when_server_hangs_or_is_down(browser, world):
    live, site = world
    for path in ("/hang", "/down"):
        ctx, page, errors = open_page(browser)
        page.goto(site.url + path)
        if path == "/hang":
            page.wait_for_selector("html[data-ct-dni='fallback']", timeout=5_000)
        else:
            page.wait_for_load_state("load")
        t = _texts(page)
        assert t["hdr"] == "+7 (495) 123-45-67" and t["tel"] == "8 (495) 123-45-67"
        assert page.locator("#tel").get_attribute("href") == "tel:+74951234567"
        assert page.title() == "Shop" and errors == []
        ctx.close()


def test_exhausted_pool_shows_fallback_and_promo_code(browser, world):
    live, site = world
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(site.url + "/promo")
    page.wait_for_selector("html[data-ct-dni='fallback']", timeout=10_000)
    assert _texts(page)["hdr"] == "+7 (495) 123-00-00"          # the pool's fallback number
    promo = page.locator("#promo")
    assert promo.is_visible() and promo.text_content().isdigit()
    ctx.close()


def test_a_visit_tagged_with_an_unknown_source_gets_an_automatic_one(browser, world, session_factory):
    """``utm_source=yandex&utm_medium=cpc`` names no configured source: the visit (and the call to
    the number it shows) belongs to the automatic source ``yandex / cpc``."""
    from calltracking.models import Source

    live, site = world
    ctx, page, errors = open_page(browser)
    page.goto(site.url + "/?utm_source=Yandex&utm_medium=cpc&utm_campaign=spring_sale")
    page.wait_for_selector("html[data-ct-dni='ready']", timeout=10_000)
    assert _texts(page)["hdr"].startswith("+7 (495) 000-20-")
    assert errors == []
    ctx.close()
    with session_scope(session_factory) as s:
        vs = s.scalars(select(VisitorSession)).one()
        src = s.get(Source, vs.source_id)
        assert (src.name, src.channel, src.auto) == ("yandex / cpc", "ads", True)
