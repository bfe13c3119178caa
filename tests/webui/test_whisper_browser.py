"""Settings → Whisper in Debian's Chromium: the admin turns the whisper on, the page's player
loads the 8 kHz file under the page's Content-Security-Policy and can play it; the page fits
a phone."""
from __future__ import annotations

import pytest

from calltracking import entities as svc
from calltracking.db import session_scope
from support.browser import chromium, log_in
from support.web import LiveServer

pytestmark = [pytest.mark.db, pytest.mark.browser]
PASSWORD = "correct-horse-battery"


def test_turn_on_and_listen(db_url, session_factory, tmp_path):
    with session_scope(session_factory) as s:
        p = svc.add_project(s, "acme", "ACME")
        svc.add_campaign(s, svc.add_source(s, p, "Google Ads", "ads"), "brand")
        svc.add_user(s, "admin", PASSWORD, "admin")
    live = LiveServer(db_url, session_factory, config={"asterisk__whisper_dir": tmp_path / "w"})
    try:
        with chromium() as browser:
            page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
            log_in(page, live.url, "admin", PASSWORD)
            page.goto(live.url + "/settings/whisper")
            assert page.locator("#whisper-sources audio").count() == 0
            page.check("#whisper-project input[name=enabled]")
            page.click("#whisper-project button[type=submit]")
            page.wait_for_selector("#whisper-sources audio")
            assert "«Google Ads, brand»" in page.inner_text("#whisper-sources")
            duration = page.evaluate("""() => new Promise((ok, fail) => {
                const a = document.querySelector('#whisper-sources audio');
                a.addEventListener('loadedmetadata', () => ok(a.duration));
                a.addEventListener('error', () => fail('audio error ' + (a.error && a.error.code)));
                a.load();
            })""")
            assert 1.0 < duration < 4.0, duration
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        live.close()
