"""Layout in Chromium on the demo data: no page scrolls sideways at 390 px (every page, as admin,
supervisor and operator, in English and Russian) nor at 1366 px in Russian; the navigation folds
behind a menu button and marks the current page; text contrast is at least 4.5:1; the screen
pop updates itself without reloading; charts format numbers in the page's language."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from calltracking.models import Call, Operator, User
from support.browser import ARGS, CHROMIUM, log_in
from support.config import make_config
from support.pages import crawl, seed_demo
from support.web import PASSWORD, LiveServer, add_call, login

pytestmark = [pytest.mark.browser, pytest.mark.db]

OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"
#: JavaScript: the contrast ratio (WCAG) of an element's text colour on its effective background
CONTRAST = """(el) => {
  const rgb = s => s.match(/[\\d.]+/g).slice(0, 4).map(Number);
  const lum = ([r, g, b]) => { const f = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
                               return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  let bg = null;
  for (let e = el; e; e = e.parentElement) {
    const c = rgb(getComputedStyle(e).backgroundColor);
    if (c.length < 4 || c[3] > 0) { bg = c; break; }
  }
  bg = bg || [255, 255, 255];
  const a = lum(rgb(getComputedStyle(el).color)), b = lum(bg);
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""


@pytest.fixture
def demo(db_url, session_factory, tmp_path):
    seed_demo(session_factory, tmp_path, language="en", days=14, per_day=30)
    srv = LiveServer(db_url, session_factory, config={"recordings__dir": tmp_path}, WTF_CSRF_ENABLED=False)
    yield srv
    srv.close()


def _pages(app, role: str) -> list:
    c = app.test_client()
    assert login(c, role).status_code == 302
    return sorted(crawl(app, c))


def _browser(pw):
    return pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)


def test_no_page_scrolls_sideways_at_390_px(demo):
    from playwright.sync_api import sync_playwright

    wide = {}
    with sync_playwright() as pw:
        browser = _browser(pw)
        for role, least in (("admin", 30), ("super", 15), ("oper", 3)):
            paths = _pages(demo.app, role)
            assert len(paths) >= least, paths
            ctx = browser.new_context(viewport={"width": 390, "height": 844})
            page = ctx.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            log_in(page, demo.url, role, PASSWORD)
            for lang in ("en", "ru"):
                page.goto(demo.url + "/account")
                page.click(f"#lang-{lang}")
                page.wait_for_load_state()
                assert page.evaluate("document.documentElement.lang") == lang
                for path in paths:
                    page.goto(demo.url + path)
                    over = page.evaluate(OVERFLOW)
                    if over > 0:
                        wide[f"{role} {lang} {path}"] = over
            # the navigation is folded behind the menu button, and opens
            page.goto(demo.url + "/calls")
            if role == "admin":   # the heatmap's table is wider than the screen: it scrolls in its own box
                page.goto(demo.url + "/reports/heatmap")
                assert page.evaluate("document.getElementById('report-table').scrollWidth") > 390
                assert page.evaluate("document.getElementById('report-table').parentElement.className") == "table-scroll"
                page.goto(demo.url + "/calls")
            assert not page.is_visible("#mainnav a[data-nav='journal']")
            page.click("#nav-toggle")
            assert page.is_visible("#mainnav a[data-nav='journal']")
            assert page.get_attribute("#nav-toggle", "aria-expanded") == "true"
            assert errors == [], role
            ctx.close()
        browser.close()
    assert wide == {}


def test_wide_tables_fit_at_1366_px_in_russian(demo, session_factory):
    from playwright.sync_api import sync_playwright

    with session_factory() as s:
        s.scalars(select(User).where(User.username == "admin")).one().language = "ru"
        s.commit()
    paths = _pages(demo.app, "admin")
    wide = {}
    with sync_playwright() as pw:
        browser = _browser(pw)
        page = browser.new_page(viewport={"width": 1366, "height": 800})
        log_in(page, demo.url, "admin", PASSWORD)
        assert page.evaluate("document.documentElement.lang") == "ru"
        for path in paths:
            page.goto(demo.url + path)
            over = page.evaluate(OVERFLOW)
            if over > 0:
                wide[path] = over
        browser.close()
    assert wide == {}


def test_contrast_current_page_and_chart_locale(demo):
    from playwright.sync_api import sync_playwright

    today = dt.date.today()
    span = f"from={today - dt.timedelta(days=13)}&to={today}"
    with sync_playwright() as pw:
        browser = _browser(pw)
        page = browser.new_page(viewport={"width": 1366, "height": 800})
        log_in(page, demo.url, "admin", PASSWORD)
        page.goto(demo.url + "/calls")
        assert page.get_attribute("a[data-nav='journal']", "aria-current") == "page"
        assert page.get_attribute("a[data-nav='missed']", "aria-current") is None
        page.goto(f"{demo.url}/reports/heatmap?{span}")
        assert page.get_attribute("a[data-nav='reports']", "aria-current") == "page"
        cells = page.locator("#report-table td")
        ratios = [cells.nth(i).evaluate(CONTRAST) for i in range(cells.count())]
        assert len(ratios) == 7 * 24 and min(ratios) >= 4.5, min(ratios)
        muted = page.locator(".muted")
        assert muted.count() >= 1
        assert min(muted.nth(i).evaluate(CONTRAST) for i in range(muted.count())) >= 4.5
        page.goto(demo.url + "/calls")
        names = page.locator(".muted")
        assert all(names.nth(i).evaluate(CONTRAST) >= 4.5 for i in range(min(names.count(), 20)))
        # the chart formats its numbers in the page's language, not the browser's
        page.goto(demo.url + "/account")
        page.click("#lang-ru")
        page.goto(f"{demo.url}/reports/sources?{span}")
        page.wait_for_selector("#report-chart[data-drawn='1']")
        assert page.evaluate("Chart.getChart(document.getElementById('report-chart')).options.locale") == "ru"
        browser.close()


def test_screenpop_updates_without_reloading(demo, session_factory):
    from playwright.sync_api import sync_playwright

    with session_factory() as s:
        op = s.scalars(select(Operator).order_by(Operator.id)).first()
        op_id, project_id = op.id, s.scalars(select(Call.project_id)).first()
    with sync_playwright() as pw:
        browser = _browser(pw)
        page = browser.new_page(viewport={"width": 390, "height": 844})
        log_in(page, demo.url, "oper", PASSWORD)
        page.goto(demo.url + "/screenpop")
        assert page.locator("meta[http-equiv='refresh']").count() == 0
        page.wait_for_selector("#no-call")
        page.evaluate("window.__stillHere = true")
        add_call(session_factory, project_id, "live-pop", caller="+74957770011", name="<b>Ivan</b>",
                 status="in_progress", operator_id=op_id)
        page.wait_for_selector("#current-call", timeout=15_000)
        assert page.evaluate("window.__stillHere") is True          # updated in place, not reloaded
        assert page.text_content("#current-call .caller-name") == "<b>Ivan</b>"   # text, not HTML
        assert page.evaluate(OVERFLOW) <= 0
        browser.close()
