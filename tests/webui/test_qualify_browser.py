"""Target calls in Debian's Chromium, in English and in Russian: the admin adds a coloured tag and
a rule on the settings page, applies the rules to earlier calls, and the call card's tag picker
shows the tag in its colour (set by tags.js under the page's Content-Security-Policy); ticking it
and typing a free tag saves both."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from calltracking import entities as svc
from calltracking.db import session_scope
from calltracking.models import Call, utcnow
from support.browser import chromium, log_in
from support.web import LiveServer, add_call

pytestmark = [pytest.mark.db, pytest.mark.browser]
PASSWORD = "correct-horse-battery"
WORDS = {
    "en": {"title": "Target calls", "applied": "Rules applied to 1 calls: 1 target calls", "yes": "yes"},
    "ru": {"title": "Целевые звонки", "applied": "Правила применены к звонкам: 1; целевых: 1", "yes": "да"},
}


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_rules_page_and_tag_picker(db_url, session_factory, lang):
    with session_scope(session_factory) as s:
        p = svc.add_project(s, "acme", "ACME", "Europe/Moscow")
        src = svc.add_source(s, p, "Google Ads", "ads")
        svc.add_user(s, "admin", PASSWORD, "admin", language=lang)
        s.flush()
        pid, sid = p.id, src.id
    cid = add_call(session_factory, pid, "9.1", source_id=sid, started=utcnow() - dt.timedelta(hours=2))
    words = WORDS[lang]
    live = LiveServer(db_url, session_factory)
    try:
        with chromium() as browser:
            page = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
            errors: list = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            log_in(page, live.url, "admin", PASSWORD)
            page.goto(live.url + "/settings/")
            page.click(f"nav.subnav >> text={words['title']}")
            assert page.inner_text("h1") == words["title"]
            # a coloured tag
            page.fill("#tag-form input[name=name]", "lead")
            page.fill("#tag-form input[name=color]", "#43a047")
            page.fill("#tag-form input[name=description]", "a buyer")
            page.click("#tag-form button[type=submit]")
            page.wait_for_selector("#tags .tag-chip.colored")
            color = page.eval_on_selector("#tags .tag-chip", "e => getComputedStyle(e).borderLeftColor")
            assert color == "rgb(67, 160, 71)"
            # a rule: talk at least 30 s from Google Ads, adds the tag
            page.fill("#rule-form input[name=name]", "Good lead")
            page.fill("#rule-form input[name=min_talk_seconds]", "30")
            page.select_option("#rule-form select[name=source_id]", str(sid))
            page.check("#rule-form .tag-picker input[type=checkbox]")
            page.click("#rule-form button[type=submit]")
            page.wait_for_selector("#target-rules tr[data-rule]")
            row = page.inner_text("#target-rules tr[data-rule]")
            assert "Good lead" in row and "Google Ads" in row and "lead" in row
            # applied to the earlier call
            page.fill("#reapply-form input[name=from]", (dt.date.today() - dt.timedelta(days=1)).strftime(
                "%Y-%m-%d" if lang == "en" else "%d.%m.%Y"))
            page.fill("#reapply-form input[name=to]", (dt.date.today() + dt.timedelta(days=1)).strftime(
                "%Y-%m-%d" if lang == "en" else "%d.%m.%Y"))
            page.click("#reapply-form button[type=submit]")
            page.wait_for_selector(".flash")
            assert words["applied"] in page.inner_text(".flash")
            # the card: target call, the picker with the tag ticked and coloured
            page.goto(f"{live.url}/calls/{cid}")
            assert words["yes"] in page.inner_text("#is-target")
            box = page.locator("#tag-picker input[value=lead]")
            assert box.is_checked()
            assert page.eval_on_selector("#tag-picker .tag-chip", "e => e.classList.contains('colored')")
            page.fill("#call-edit input[name=tags]", "callback")
            page.click("#call-edit button[type=submit]")
            page.wait_for_selector(".flash")
            with session_factory() as s:
                assert sorted(t.name for t in s.get(Call, cid).tags) == ["callback", "lead"]
            page.uncheck("#tag-picker input[value=lead]")
            page.click("#call-edit button[type=submit]")
            page.wait_for_selector(".flash")
            with session_factory() as s:
                assert [t.name for t in s.get(Call, cid).tags] == ["callback"]
            assert errors == []
    finally:
        live.close()
