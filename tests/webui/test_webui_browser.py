"""Browser test: Debian's Chromium (Playwright) against the real waitress server on loopback.

Log in, map a number to a source, a call to it shows in the journal with that source, open the
call card, switch to Russian; hostile caller-ID names are shown as text and never run.
"""
from __future__ import annotations

import threading

import pytest

from calltracking.attribution import lookup as attribution
from calltracking.models import Call, utcnow
from support.config import make_config
from support.web import HOSTILE_NAMES, PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.db]



@pytest.fixture
def base_url(db_url, session_factory, world):
    from webui.server import make_server

    cfg = make_config(db_url, web__listen="127.0.0.1:0")     # CSRF on, as in production
    server = make_server(cfg, session_factory)
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()
    t.join(10)


def incoming_call(session_factory, did, caller, name, linkedid):
    """A call as the AGI hook records it: attributed through the number mapping."""
    s = session_factory()
    now = utcnow()
    att = attribution.attribute(s, did, now)
    c = Call(pbx_id="pbx1", linkedid=linkedid, project_id=att.project_id, did=att.did, caller_number=caller,
             caller_name=name, source_id=att.source_id, campaign_id=att.campaign_id, attribution=att.kind,
             status="answered", started_at=now, answered_at=now, ended_at=now)
    s.add(c)
    s.commit()
    cid = c.id
    s.close()
    return cid


def test_map_number_see_call_card_russian_no_xss(browser, base_url, session_factory, world):
    ctx = browser.new_context(locale="en-US")
    page = ctx.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.add_init_script("window.__xss = 0; window.alert = function () { window.__xss += 1; };")

    page.goto(base_url + "/calls")
    assert "/login" in page.url
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/calls")

    # map a number to a source in the settings
    page.click("[data-nav=settings]")
    page.click("text=Tracking numbers")
    page.select_option("#create-form select[name=project_id]", str(world["project"]))
    page.fill("#create-form input[name=number]", "8 (495) 000-10-01")
    page.select_option("#create-form select[name=source_id]", str(world["source"]))
    page.click("#create-form button[type=submit]")
    row = page.locator("#entity-list tr", has_text="+74950001001")
    assert "Google Ads" in row.inner_text()

    # calls to it arrive, with hostile caller-ID names
    ids = [incoming_call(session_factory, "+74950001001", f"+7495111000{i}", name, f"lk{i}")
           for i, name in enumerate(HOSTILE_NAMES)]
    page.click("[data-nav=journal]")
    for cid, name in zip(ids, HOSTILE_NAMES):
        tr = page.locator(f"tr[data-call-id='{cid}']")
        assert tr.locator(".source").inner_text() == "Google Ads"
        assert tr.locator(".caller-name").inner_text() == name
    assert page.locator("img[src=x]").count() == 0

    # the call card
    page.click(f"tr[data-call-id='{ids[1]}'] a.call-link")
    page.wait_for_url(f"**/calls/{ids[1]}")
    assert page.locator("#caller-name").inner_text() == HOSTILE_NAMES[1]
    assert "Google Ads" in page.locator("#attribution").inner_text()
    page.fill("#call-edit input[name=tags]", "lead")
    page.fill("#call-edit textarea[name=comment]", '<b>bold?</b>')
    page.click("#call-edit button[type=submit]")
    assert page.locator("#call-edit input[name=tags]").input_value() == "lead"
    assert page.locator("#call-edit textarea[name=comment]").input_value() == "<b>bold?</b>"

    # switch to Russian
    page.click("#lang-ru")
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "ru"
    assert "Атрибуция" in page.content() and "Журнал" in page.locator("[data-nav=journal]").inner_text()
    page.click("[data-nav=missed]")
    assert "Пропущенные" in page.locator("h1").inner_text()
    page.click("[data-nav=journal]")
    assert page.locator("h1").inner_text() == "Журнал звонков"

    assert dialogs == [] and page.evaluate("window.__xss") == 0
    ctx.close()


def test_operator_screen_pop_in_browser(browser, base_url, session_factory, world):
    cid = incoming_call(session_factory, "+74950009999", "+74951119999", HOSTILE_NAMES[0], "sp1")
    s = session_factory()
    c = s.get(Call, cid)
    c.status, c.operator_id = "in_progress", world["operator"]
    s.commit()
    s.close()
    ctx = browser.new_context()
    page = ctx.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(base_url + "/login")
    page.fill("input[name=username]", "oper")
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/screenpop")
    assert page.locator("#current-call .caller-name").inner_text() == HOSTILE_NAMES[0]
    assert page.locator("[data-nav=settings]").count() == 0
    r = page.goto(base_url + "/settings/")
    assert r.status == 403
    assert dialogs == []
    ctx.close()
