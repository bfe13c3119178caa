"""Settings → DNI on the site: the generated snippet runs on customer sites (Chromium), the page
then says, per site, where and when it last ran ("Check again" without a reload), and the pools
table shows today's usage and the size."""
from __future__ import annotations

import re

import pytest

from calltracking import entities as svc
from calltracking.db import session_scope
from calltracking.dni import projects as dni_projects
from calltracking.dni import setup as dni_setup
from calltracking.models import Project
from support.browser import ARGS, CHROMIUM, log_in, open_page
from support.dni import make_project
from support.web import LiveServer, SiteServer

PASSWORD = "correct-horse-battery"


def test_snippet_tag_escapes_every_value():
    tag = dni_setup.snippet_tag("https://pbx.example/", "acme", default='+7 "<x>"', selector="", pool="web",
                                timeout="1500")
    assert tag == ('<script src="https://pbx.example/dni.js" data-project="acme" '
                   'data-default="+7 &quot;&lt;x&gt;&quot;" data-pool="web" data-timeout="1500" async></script>')


@pytest.mark.db
def test_setup_page_admin_only_and_escaped(db_url, session_factory):
    from webui import create_app
    from support.config import make_config
    from support.web import login

    make_project(session_factory)
    with session_scope(session_factory) as s:
        svc.add_user(s, "admin", PASSWORD, "admin")
        svc.add_user(s, "super", PASSWORD, "supervisor")
    app = create_app(make_config(db_url), session_factory, testing=True)
    app.config["WTF_CSRF_ENABLED"] = False
    sup = app.test_client()
    login(sup, "super")
    assert sup.get("/settings/dni").status_code == 403
    admin = app.test_client()
    login(admin, "admin")
    html = admin.get("/settings/dni", query_string={"selector": "</pre><script>alert(1)</script>",
                                                     "timeout": "abc"}).get_data(as_text=True)
    assert "<script>alert(1)" not in html
    pre = html.split('id="dni-snippet">')[1].split("</pre>")[0]
    assert "data-selector=&#34;&amp;lt;/pre&amp;gt;&amp;lt;script&amp;gt;" in pre     # escaped twice: tag, then page
    assert "data-timeout" not in pre
    assert 'data-seen="0"' in html and "website" in html and "under 1 % at the busiest" in html
    with admin.session_transaction() as sess:
        sess["lang"] = "ru"
    ru = admin.get("/settings/dni").get_data(as_text=True)
    assert "Подмена номеров на сайте" in ru and "Рекомендуемый размер" in ru and "Ещё не замечен" in ru


@pytest.mark.db
@pytest.mark.browser
def test_snippet_from_the_setup_page_runs_and_is_seen(db_url, session_factory):
    from playwright.sync_api import sync_playwright

    ids = make_project(session_factory)
    with session_scope(session_factory) as s:
        svc.add_user(s, "admin", PASSWORD, "admin")
    live = LiveServer(db_url, session_factory, config={"web__public_url": ""})     # the tag names this server
    site = None
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            ctx = browser.new_context()
            ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
            admin = ctx.new_page()
            log_in(admin, live.url, "admin", PASSWORD)
            admin.goto(f"{live.url}/settings/dni?project={ids['project']}")
            admin.fill("input[name=default]", "+7 (495) 123-45-67")
            admin.select_option("select[name=pool]", "website")
            admin.click("#dni-options button[type=submit]")
            assert admin.get_attribute("#dni-seen", "data-seen") == "0"
            tag = admin.inner_text("#dni-snippet")
            assert tag == (f'<script src="{live.url}/dni.js" data-project="acme" data-default="+7 (495) 123-45-67" '
                           'data-pool="website" async></script>')
            admin.click("#dni-copy")
            admin.wait_for_selector("#dni-copy[data-copied='1']", timeout=5000)
            assert admin.evaluate("navigator.clipboard.readText()") == tag
            site = SiteServer({"/shop": f"<!doctype html><html><head>{tag}</head>"
                                        "<body><b id='hdr'>+7 (495) 123-45-67</b></body></html>"})
            with session_scope(session_factory) as s:
                s.get(Project, ids["project"]).allowed_origins = site.origin
            dni_projects.invalidate_cache()
            vctx, visitor, errors = open_page(browser)
            visitor.goto(site.url + "/shop?utm_source=google")
            visitor.wait_for_selector("html[data-ct-dni='ready']", timeout=10_000)
            assert visitor.inner_text("#hdr") == "+7 (495) 000-20-00" and errors == []
            # a browser without fetch (or a page from the back/forward cache) only pings
            other = SiteServer({"/old": f"<!doctype html><html><head><script>window.fetch = undefined;</script>"
                                        f"{tag}</head><body><b>+7 (495) 123-45-67</b></body></html>"})
            with session_scope(session_factory) as s:
                s.get(Project, ids["project"]).allowed_origins = f"{site.origin} {other.origin}"
            dni_projects.invalidate_cache()
            visitor.goto(other.url + "/old?gclid=secret")
            visitor.wait_for_function("window.CallTrackingDNI && window.CallTrackingDNI.pinged === true")
            assert errors == []
            vctx.close()
            admin.evaluate("window.__notReloaded = true")
            for _ in range(50):                                  # "Check again": no page reload
                admin.click("#dni-recheck")
                admin.wait_for_function("n => document.querySelector('#dni-recheck').dataset.checks >= n",
                                        arg=_ + 1)
                if admin.get_attribute("#dni-seen", "data-sites") == "2":
                    break
                admin.wait_for_timeout(200)
            assert admin.evaluate("window.__notReloaded") is True
            sites = admin.locator("#dni-seen .dni-site").all_inner_texts()
            assert len(sites) == 2, sites
            by_origin = {admin.locator("#dni-seen .dni-site").nth(i).get_attribute("data-origin"): sites[i]
                         for i in range(2)}
            assert re.match(rf"Snippet seen \d+ seconds? ago on {re.escape(site.url)}/shop \(v2\)\.",
                            by_origin[site.origin]), by_origin
            assert f"on {other.url}/old (v2)." in by_origin[other.origin]          # no query string kept
            assert "Visitors today: 1." in admin.inner_text("#dni-seen")
            other.close()
            admin.reload()                                       # the pools table is read with the page
            row = admin.locator("#pool-usage tbody tr").first.inner_text().split("\t")
            assert row[:4] == ["website", "20", "1", "1"], row
            assert row[6].strip().isdigit()                      # a recommended size
            admin.goto(f"{live.url}/settings/pools")              # the pools page shows the same
            heads = admin.locator("table thead th").all_inner_texts()
            cells = admin.locator("table tbody tr").first.locator("td").all_inner_texts()
            assert cells[heads.index("Handed out today")] == "1"
            assert cells[heads.index("Recommended size")] == row[6].strip()
            browser.close()
    finally:
        if site:
            site.close()
        live.close()
