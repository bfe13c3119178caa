"""The callback widget of dni.js in Debian's Chromium (Playwright): a customer site with CSS of its
own on one loopback port, the application (waitress) on another."""
from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from calltracking.db import session_scope
from calltracking.models import CallbackRequest

from support.browser import open_page
from support.callback_widget import closed_until_tomorrow, enable_callbacks
from support.dni import make_project
from support.web import LiveServer, SiteServer

pytestmark = pytest.mark.browser

#: A site whose CSS would wreck a widget that relied on the page's styles, and whose own
#: layout must not move when the widget appears.
PAGE = """<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Shop</title>
<style>
html {{ font-size: 30px }}
body {{ margin: 0; font: 20px/3 Georgia, serif; color: #a00; background: #ffe; text-align: right }}
* {{ box-sizing: content-box !important; letter-spacing: 2px }}
div, p, form, label, input, button {{ margin: 9px !important; padding: 7px; border: 3px dashed green }}
body > * {{ position: relative !important; display: block !important; z-index: 5 }}
button {{ font-size: 40px !important; background: pink; color: #00f }}
input {{ width: 60% }}
[hidden] {{ display: block !important }}
</style>
<script src="{api}/dni.js" data-project="{project}" data-server="{api}" data-timeout="5000" {extra} async></script>
</head><body>
<header><button id="trigger" type="button" data-calltracking-callback>Call me back</button>
<a id="link" href="#contact" data-calltracking-callback>Request a call</a></header>
<main><p id="text">Call us: +7 (495) 123-45-67</p><div hidden id="hid">hidden on purpose</div>
<form id="search"><input id="q" name="q"><button id="go">Search</button></form></main>
<footer id="contact">Shop</footer>
</body></html>"""

#: JavaScript: the widget's parts (its shadow root is open)
PARTS = """() => {
  const host = document.querySelector('calltracking-callback');
  if (!host) return null;
  const r = host.shadowRoot, box = r.querySelector('.b');
  return {hidden: box.hidden, title: r.querySelector('.t').textContent, label: r.querySelector('label').textContent,
          button: r.querySelector('.go').textContent, close: r.querySelector('.x').getAttribute('aria-label'),
          status: r.querySelector('.s').textContent, invalid: r.querySelector('input').getAttribute('aria-invalid'),
          focused: r.activeElement ? (r.activeElement.id || r.activeElement.className) : null,
          formHidden: r.querySelector('form').hidden};
}"""

#: JavaScript: every element box of the host page, the page's size and its style sheets
BOXES = """() => {
  const out = [...document.querySelectorAll('body *')].filter(e => e.tagName !== 'CALLTRACKING-CALLBACK')
    .map(e => { const r = e.getBoundingClientRect(); const s = getComputedStyle(e);
                return [e.tagName, e.id, r.x, r.y, r.width, r.height, s.fontSize, s.color]; });
  return {boxes: out, width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight,
          sheets: document.styleSheets.length, styles: document.querySelectorAll('style').length};
}"""


@pytest.fixture
def world(db_url, session_factory):
    live = LiveServer(db_url, session_factory)

    def page(lang="en", project="acme", extra='data-callback-delay="off"'):
        return PAGE.format(lang=lang, api=live.url, project=project, extra=extra)

    site = SiteServer({
        "/": page(), "/ru": page(lang="ru"), "/delay": page(extra=""), "/delay2": page(extra=""),
        "/delay30": page(extra='data-callback-delay="30"'),
        "/later": page(project="later"), "/later-ru": page(lang="ru", project="later"),
        "/option-ru": page(extra='data-callback-delay="off" data-lang="ru"'),
    })
    acme = make_project(session_factory, origins=site.origin)
    enable_callbacks(session_factory, acme["project"], widget_delay_seconds=2)
    later = make_project(session_factory, key="later", origins=site.origin, base=74950006000)
    enable_callbacks(session_factory, later["project"], schedule=closed_until_tomorrow()[0])
    yield live, site
    site.close()
    live.close()


def _ready(page, path_url):
    page.goto(path_url)
    page.wait_for_function("window.CallTrackingDNI && window.CallTrackingDNI.callback === 'ready'", timeout=15_000)


def _requests(factory):
    with session_scope(factory) as s:
        return [(r.phone, r.visitor_id) for r in s.scalars(select(CallbackRequest).order_by(CallbackRequest.id))]


def test_it_shows_itself_after_the_delay_without_taking_the_focus(browser, world):
    live, site = world
    ctx, page, errors = open_page(browser)
    page.goto(site.url + "/delay")
    page.wait_for_function("window.CallTrackingDNI.callback === 'ready'", timeout=15_000)
    assert page.evaluate(PARTS) is None                          # nothing built before it is shown
    page.wait_for_function("window.CallTrackingDNI.callback === 'open'", timeout=15_000)   # polled every frame
    # ms since the visit's first page view (what the delay counts), read within a frame of the opening
    waited = page.evaluate("Date.now() - parseFloat(sessionStorage.getItem('_ct_cb_t0'))")
    assert waited >= 2000                                         # the project's 2 s, not earlier
    parts = page.evaluate(PARTS)
    assert parts["hidden"] is False and parts["title"] == "We will call you back"
    assert parts["focused"] is None                              # the visitor's focus stays where it was
    # Once per tab session: the next page does not show it again by itself.
    page.goto(site.url + "/delay2")
    page.wait_for_function("window.CallTrackingDNI.callback === 'ready'", timeout=15_000)
    page.wait_for_timeout(2_500)
    assert page.evaluate("window.CallTrackingDNI.callback") == "ready"
    assert errors == []
    ctx.close()


def test_the_delay_counts_the_time_on_the_site_not_on_the_page(browser, world):
    live, site = world
    ctx, page, errors = open_page(browser)
    _ready(page, site.url + "/")                                  # a page with data-callback-delay="off"
    first_view = page.evaluate("parseFloat(sessionStorage.getItem('_ct_cb_t0'))")
    assert first_view > 0
    # As if the visitor had read that page for a minute, then opened one that waits 30 s.
    page.evaluate("sessionStorage.setItem('_ct_cb_t0', String(Date.now() - 60000))")
    page.goto(site.url + "/delay30")
    page.wait_for_function("window.CallTrackingDNI.callback === 'open'", timeout=15_000)   # not 30 s later
    assert errors == []
    ctx.close()


def test_the_trigger_element_and_the_js_call(browser, world, session_factory):
    live, site = world
    ctx, page, errors = open_page(browser)
    _ready(page, site.url + "/")
    page.wait_for_timeout(2_500)                                  # delay "off": never by itself
    assert page.evaluate(PARTS) is None
    page.click("#link")                                           # a link with the attribute
    assert page.evaluate(PARTS)["hidden"] is False and page.evaluate(PARTS)["focused"] == "p"
    assert page.url == site.url + "/"                             # its href was not followed
    page.keyboard.press("Escape")
    assert page.evaluate(PARTS)["hidden"] is True
    assert page.evaluate("document.activeElement.id") == "link"   # the focus goes back
    assert page.evaluate("window.calltracking.callback()") is True
    assert page.evaluate(PARTS)["focused"] == "p"
    page.locator("calltracking-callback input").fill("8 (916) 123-45-67")
    page.locator("calltracking-callback .go").click()
    page.wait_for_function("window.CallTrackingDNI.callback === 'sent'", timeout=15_000)
    parts = page.evaluate(PARTS)
    assert parts["status"] == "Thank you! We are calling you now." and parts["formHidden"] is True
    assert parts["focused"] == "x"
    vid = page.evaluate("window.CallTrackingDNI.visitorId")
    assert _requests(session_factory) == [("+79161234567", vid)]
    assert errors == []
    ctx.close()


def test_validation_messages(browser, world, session_factory):
    live, site = world
    ctx, page, errors = open_page(browser)
    _ready(page, site.url + "/")
    page.click("#trigger")
    field, go = page.locator("calltracking-callback input"), page.locator("calltracking-callback .go")
    expected = [("", "Enter your phone number."),
                ("call me", "Check the number: it does not look like a phone number."),      # in the page
                ("+7 916 12", "Check the number: it does not look like a phone number."),    # by the server
                ("+7 800 555 35 35", "Enter a mobile or landline number."),
                ("+1 212 555 1234", "We do not call numbers of this country.")]
    for typed, message in expected:
        field.fill(typed)
        go.click()
        page.wait_for_function(f"document.querySelector('calltracking-callback').shadowRoot"
                               f".querySelector('.s').textContent === {message!r}", timeout=15_000)
        parts = page.evaluate(PARTS)
        assert parts["invalid"] == "true" and parts["hidden"] is False and parts["formHidden"] is False
    field.fill("+7 495 123 45 67")
    go.click()
    page.wait_for_function("window.CallTrackingDNI.callback === 'sent'", timeout=15_000)
    assert page.evaluate(PARTS)["invalid"] == "false"
    assert [p for p, _ in _requests(session_factory)] == ["+74951234567"]
    assert errors == []
    ctx.close()


RU_MONTHS = ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа", "сентября", "октября",
             "ноября", "декабря")


def test_russian_from_the_page_and_the_time_of_a_scheduled_call(browser, world):
    live, site = world
    opening = closed_until_tomorrow()[1].astimezone(ZoneInfo("Europe/Moscow"))
    ctx = browser.new_context(locale="ru-RU", timezone_id="Europe/Moscow")
    page = ctx.new_page()
    _ready(page, site.url + "/later-ru")
    page.evaluate("window.calltracking.callback()")
    parts = page.evaluate(PARTS)
    assert (parts["title"], parts["label"], parts["button"], parts["close"]) == (
        "Мы вам перезвоним", "Ваш номер телефона", "Позвоните мне", "Закрыть")
    page.locator("calltracking-callback .go").click()
    assert page.evaluate(PARTS)["status"] == "Введите номер телефона."
    page.locator("calltracking-callback input").fill("+7 916 123 45 67")
    page.locator("calltracking-callback .go").click()
    page.wait_for_function("window.CallTrackingDNI.callback === 'sent'", timeout=15_000)
    assert page.evaluate(PARTS)["status"] == (
        f"Спасибо! Мы позвоним вам {opening.day} {RU_MONTHS[opening.month - 1]} в 09:00.")
    ctx.close()


def test_english_time_of_a_scheduled_call_in_the_visitors_time_zone(browser, world):
    live, site = world
    opening = closed_until_tomorrow()[1].astimezone(ZoneInfo("Asia/Almaty"))   # the visitor's clock
    ctx = browser.new_context(locale="en-US", timezone_id="Asia/Almaty")
    page = ctx.new_page()
    _ready(page, site.url + "/later")
    page.evaluate("window.calltracking.callback()")
    page.locator("calltracking-callback input").fill("+7 916 123 45 68")
    page.keyboard.press("Enter")
    page.wait_for_function("window.CallTrackingDNI.callback === 'sent'", timeout=15_000)
    status = page.evaluate(PARTS)["status"]
    # tomorrow in Moscow is already today in Almaty from 22:00 Moscow time (19:00-21:00 UTC): the
    # widget then gives the time alone, as it does for any opening on the visitor's own today
    if opening.date() == dt.datetime.now(ZoneInfo("Asia/Almaty")).date():
        assert status == f"Thank you! We will call you at {opening.strftime('%I:%M %p')}.", status
    else:
        when = opening.strftime("%B ") + str(opening.day) + opening.strftime(" at %I:%M %p")
        assert status == f"Thank you! We will call you on {when}.", status
    ctx.close()


def test_the_snippets_language_option(browser, world):
    live, site = world
    ctx, page, errors = open_page(browser)
    _ready(page, site.url + "/option-ru")                         # <html lang="en"> but data-lang="ru"
    page.evaluate("window.calltracking.callback()")
    assert page.evaluate(PARTS)["button"] == "Позвоните мне"
    ctx.close()


def test_keyboard_only(browser, world, session_factory):
    live, site = world
    ctx, page, errors = open_page(browser)
    _ready(page, site.url + "/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "trigger"
    page.keyboard.press("Enter")
    assert page.evaluate(PARTS)["focused"] == "p"
    page.keyboard.type("+7 916 000 11 22")
    page.keyboard.press("Tab")
    assert page.evaluate(PARTS)["focused"] == "go"
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")                                  # submits the form
    page.wait_for_function("window.CallTrackingDNI.callback === 'sent'", timeout=15_000)
    assert page.evaluate(PARTS)["focused"] == "x"                 # on the close button, the message announced
    page.keyboard.press("Enter")                                  # closes it
    assert page.evaluate(PARTS)["hidden"] is True
    assert page.evaluate("document.activeElement.id") == "trigger"
    page.keyboard.press("Space")                                  # opens it again, a new form
    parts = page.evaluate(PARTS)
    assert parts["hidden"] is False and parts["formHidden"] is False and parts["status"] == ""
    page.keyboard.press("Escape")
    assert page.evaluate(PARTS)["hidden"] is True and page.evaluate("document.activeElement.id") == "trigger"
    assert [p for p, _ in _requests(session_factory)] == ["+79160001122"]
    assert errors == []
    ctx.close()


def test_the_host_page_does_not_move_and_the_widget_keeps_its_looks(browser, world):
    live, site = world
    ctx, page, errors = open_page(browser)
    _ready(page, site.url + "/")
    before = page.evaluate(BOXES)
    page.evaluate("window.calltracking.callback()")
    page.locator("calltracking-callback input").fill("x")
    page.locator("calltracking-callback .go").click()             # a message appears too
    after = page.evaluate(BOXES)
    assert after == before
    looks = page.evaluate("""() => {
      const r = document.querySelector('calltracking-callback').shadowRoot;
      const s = e => getComputedStyle(r.querySelector(e));
      const box = r.querySelector('.b').getBoundingClientRect();
      return {font: s('.b').fontSize, family: s('.b').fontFamily, color: s('.b').color, align: s('.b').textAlign,
              button: s('.go').fontSize, margin: s('input').marginLeft, spacing: s('.b').letterSpacing,
              z: getComputedStyle(document.querySelector('calltracking-callback')).zIndex,
              position: getComputedStyle(document.querySelector('calltracking-callback')).position,
              right: document.documentElement.clientWidth - box.right,
              bottom: document.documentElement.clientHeight - box.bottom};
    }""")
    assert looks["font"] == "15px" and "Georgia" not in looks["family"] and looks["color"] == "rgb(26, 26, 26)"
    assert looks["button"] == "15px" and looks["margin"] == "0px" and looks["align"] == "left"
    assert looks["spacing"] == "normal"
    assert looks["position"] == "fixed" and looks["z"] == "2147483000"
    assert looks["right"] == 16 and looks["bottom"] == 16
    assert errors == []
    ctx.close()


def test_390_px_wide_no_sideways_scroll(browser, world):
    live, site = world
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                              has_touch=True)
    page = ctx.new_page()
    _ready(page, site.url + "/")
    width_before = page.evaluate("document.documentElement.scrollWidth")
    page.tap("#trigger")
    box = page.evaluate("""() => document.querySelector('calltracking-callback').shadowRoot
        .querySelector('.b').getBoundingClientRect().toJSON()""")
    assert box["left"] >= 0 and box["right"] <= 390 and box["width"] > 250
    assert page.evaluate("document.documentElement.scrollWidth") == width_before <= 390
    field = page.locator("calltracking-callback input")
    assert field.get_attribute("type") == "tel" and field.get_attribute("autocomplete") == "tel"
    ctx.close()


def test_reduced_motion(browser, world):
    live, site = world
    ctx = browser.new_context(reduced_motion="reduce")
    page = ctx.new_page()
    _ready(page, site.url + "/")
    page.evaluate("window.calltracking.callback()")
    anim = page.evaluate("""() => getComputedStyle(document.querySelector('calltracking-callback')
        .shadowRoot.querySelector('.b')).animationName""")
    assert anim == "none"
    ctx2 = browser.new_context()
    page2 = ctx2.new_page()
    _ready(page2, site.url + "/")
    page2.evaluate("window.calltracking.callback()")
    assert page2.evaluate("""() => getComputedStyle(document.querySelector('calltracking-callback')
        .shadowRoot.querySelector('.b')).animationName""") == "ct"
    ctx.close()
    ctx2.close()
