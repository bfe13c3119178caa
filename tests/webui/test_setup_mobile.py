"""The pages of the API/account, ad spend and DNI setup area at 390 px: no sideways scroll."""
from __future__ import annotations

import pytest

from calltracking import entities as svc
from calltracking.db import session_scope
from calltracking.reports import adspend
from support.browser import ARGS, CHROMIUM, log_in
from support.dni import make_project
from support.web import LiveServer

pytestmark = [pytest.mark.db, pytest.mark.browser]
PASSWORD = "correct-horse-battery"


def test_setup_pages_fit_a_phone(db_url, session_factory):
    from playwright.sync_api import sync_playwright

    make_project(session_factory)
    with session_scope(session_factory) as s:
        svc.add_user(s, "admin", PASSWORD, "admin", language="ru")
        adspend.import_spend(s, "day,source,campaign,amount\n2026-03-01,Google Ads,Brand,1234567.89\n",
                             default_project="acme")
    live = LiveServer(db_url, session_factory)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
            log_in(page, live.url, "admin", PASSWORD)
            for path in ("/settings/dni?selector=header,.contacts,.footer-phone-number-block&default=+7+(495)+123-45-67",
                         "/settings/integrations/spend", "/settings/integrations/", "/account", "/dashboard"):
                page.goto(live.url + path)
                page.wait_for_load_state("load")
                wide = page.evaluate("document.documentElement.scrollWidth")
                assert wide <= 390, (path, wide)
            browser.close()
    finally:
        live.close()
