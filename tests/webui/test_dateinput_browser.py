"""The report filter's date fields in Chromium follow the page's language, not the browser's:
typing a date in the page's format (Russian ``02.03.2026``, English Babel's short ``3/2/2026``)
filters the report; the fields show the page's format and spell it as placeholder (Debian's
Chromium through Playwright, a real waitress server, real SQLite/PostgreSQL)."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from calltracking.models import Project
from support import report_data as D
from support.browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.db]


@pytest.fixture
def server(db_url, session_factory, tmp_path):
    from waitress import create_server

    app = D.reports_app(db_url, session_factory, tmp_path)
    with session_factory() as s:
        app.ct_project = s.scalars(select(Project.id)).one()
    srv = create_server(app, host="127.0.0.1", port=0, threads=4)
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.effective_port}", app.ct_project
    srv.close()
    t.join(5)


def totals_calls(page) -> str | None:
    """The totals row's calls (None when the table has no rows)."""
    row = page.locator("#totals-row td")
    return row.nth(0).inner_text().strip() if row.count() else None


def filter_by_typing(page, frm: str, to: str) -> None:
    form = page.locator("#report-filter")
    form.locator("input[name=from]").fill(frm)
    form.locator("input[name=to]").fill(to)
    form.locator("input[name=to]").press("Enter")
    page.wait_for_load_state("load")


# The browser's own locale is the other language each time: the page's language decides.
@pytest.mark.parametrize("lang, browser_locale, placeholder, day, shown, empty_from, empty_to", [
    ("ru", "en-US", "ДД.ММ.ГГГГ", "02.03.2026", "02.03.2026", "03.03.2026", "31.03.2026"),
    ("en", "ru-RU", "YYYY-MM-DD", "3/2/2026", "2026-03-02", "3/3/2026", "3/31/2026"),
])
def test_typing_a_date_in_the_page_language_filters_the_report(browser, server, lang, browser_locale,
                                                                 placeholder, day, shown, empty_from, empty_to):
    base, project = server
    ctx = browser.new_context(locale=browser_locale)
    page = ctx.new_page()
    errors: list = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        log_in(page, base, "sup1", "password1")
        page.goto(f"{base}/reports/sources?project={project}&from=2026-02-01&to=2026-02-28")
        page.locator(f"#lang-{lang}").click()
        page.wait_for_load_state("load")
        assert page.locator("html").get_attribute("lang") == lang
        assert page.locator("input[type=date]").count() == 0
        field = page.locator("#report-filter input[name=from]")
        assert field.get_attribute("placeholder") == placeholder
        assert totals_calls(page) is None                              # February: no calls

        filter_by_typing(page, day, day)           # 2026-03-02 in New York: the four finished calls
        assert totals_calls(page) == "4"
        assert field.input_value() == shown and page.locator("#report-filter input[name=to]").input_value() == shown
        assert page.locator(".flash.error").count() == 0

        filter_by_typing(page, empty_from, empty_to)                   # the rest of March: none
        assert totals_calls(page) is None and page.locator(".flash.error").count() == 0

        filter_by_typing(page, "31.02.2026" if lang == "ru" else "2/31/2026", day)
        error = page.locator(".flash.error").inner_text()
        assert ("Неверная дата" if lang == "ru" else "Invalid date") in error and placeholder in error
        assert page.locator("#report-filter select[name=project]").input_value() == str(project)
        assert errors == []
    finally:
        ctx.close()
