"""The journal, the missed calls and the call card on a 390 px phone (Debian's Chromium through
Playwright, the real waitress server): one card per call, no sideways scroll, "Mark handled"
on screen and working, in English and Russian; sorting and saved filters by clicking."""
from __future__ import annotations

import datetime as dt
import threading

import pytest

from calltracking.models import Call, utcnow
from support.browser import log_in, open_page
from support.config import make_config
from support.web import PASSWORD, add_call

pytestmark = [pytest.mark.browser, pytest.mark.db]

PHONE = {"width": 390, "height": 844}
OVERFLOW = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


@pytest.fixture
def base_url(db_url, session_factory, world, tmp_path):
    from webui.server import make_server

    cfg = make_config(db_url, web__listen="127.0.0.1:0", recordings__dir=tmp_path)   # CSRF on
    server = make_server(cfg, session_factory)
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()
    t.join(10)


@pytest.fixture
def calls(session_factory, world, tmp_path):
    t = utcnow() - dt.timedelta(hours=6)
    p = world["project"]
    (tmp_path / "long.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt ")
    ids = {"long": add_call(session_factory, p, "long", caller="+74951234567",
                            name="Константин Константинопольский-Длиннофамильный", started=t,
                            operator_id=world["operator"], source_id=world["source"],
                            campaign_id=world["campaign"], recording_file="long.wav")}
    for i in range(4):
        ids[f"m{i}"] = add_call(session_factory, p, f"m{i}", caller=f"+7916555000{i}", status="missed",
                                started=t + dt.timedelta(minutes=10 * i), source_id=world["source"])
    return ids


def no_sideways_scroll(page, url):
    page.goto(url)
    assert page.evaluate(OVERFLOW) <= 0, f"{url} scrolls sideways"


@pytest.mark.parametrize("language", ["en", "ru"])
def test_phone_shows_cards_without_sideways_scroll(browser, base_url, session_factory, world, calls, language):
    ctx = browser.new_context(viewport=PHONE)
    page = ctx.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    from calltracking.models import User
    from sqlalchemy import select

    with session_factory() as s:
        s.scalars(select(User).where(User.username == "super")).one().language = language
        s.commit()
    log_in(page, base_url, "super", PASSWORD)
    assert page.evaluate("() => document.documentElement.lang") == language
    for url in ("/calls", "/missed", f"/calls/{calls['long']}", "/missed?state=all", "/calls?sort=-talk"):
        no_sideways_scroll(page, base_url + url)
    page.goto(base_url + "/calls")
    assert page.evaluate("() => getComputedStyle(document.querySelector('#calls thead')).display") == "none"
    row = page.locator(f'tr[data-call-id="{calls["long"]}"]')
    box = row.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    # every value is labelled on the card; the recording plays from the list
    label = page.evaluate(f"""() => getComputedStyle(document.querySelector(
        'tr[data-call-id="{calls["long"]}"] td[data-label]'), '::before').content""")
    assert label.strip('"') == {"en": "Started", "ru": "Начало"}[language]
    assert row.locator("audio").count() == 1
    page.goto(base_url + "/missed")
    button = page.locator(f'tr[data-call-id="{calls["m3"]}"] td.actions button').first
    b = button.bounding_box()
    assert b["x"] >= 0 and b["x"] + b["width"] <= PHONE["width"] and b["height"] >= 36
    button.click()
    page.wait_for_load_state()
    assert page.locator(f'tr[data-call-id="{calls["m3"]}"]').count() == 0
    assert page.locator(".flash.success").count() == 1
    with session_factory() as s:
        assert s.get(Call, calls["m3"]).handled_by == "super"
    assert errors == []
    ctx.close()


def test_sort_and_save_a_filter_by_clicking(browser, base_url, session_factory, world, calls):
    ctx, page, errors = open_page(browser)
    log_in(page, base_url, "super", PASSWORD)
    page.goto(base_url + "/calls?status=missed")
    page.click("#sort-started")                  # newest first -> oldest first
    page.wait_for_load_state()
    order = [int(x) for x in page.locator("#calls tbody tr").evaluate_all(
        "rs => rs.map(r => r.dataset.callId)")]
    assert order == [calls[f"m{i}"] for i in range(4)]
    page.fill("#save-filter input[name=filter_name]", "Missed, oldest first")
    page.click("#save-filter button")
    page.wait_for_load_state()
    page.goto(base_url + "/calls")
    page.click("text=Missed, oldest first")
    page.wait_for_load_state()
    assert "status=missed" in page.url and "sort=started" in page.url
    assert page.locator("#calls tbody tr").count() == 4
    assert errors == []
    ctx.close()
