"""Date fields in the page's language (webui/dateinput.py): what is read, what is refused, what
the fields show; and through the web UI, a date typed in Russian or English filters the reports,
the journal, the missed calls and the ad spend, and a bad date is an error that keeps the other
filters (Flask's test client over real SQLite/PostgreSQL)."""
from __future__ import annotations

import datetime as dt
import re

import pytest

from support.web import add_call
from webui import dateinput

D = dt.date


@pytest.fixture
def in_lang(app):
    """A request context whose page language is ``lang`` (a visitor's Accept-Language)."""
    def make(lang):
        return app.test_request_context(headers={"Accept-Language": lang})
    return make


@pytest.mark.parametrize("lang, text, day", [
    ("ru", "03.12.2026", D(2026, 12, 3)), ("ru", "3.12.2026", D(2026, 12, 3)),
    ("ru", " 03.12.26 ", D(2026, 12, 3)),                      # Babel's short Russian date
    ("ru", "2026-12-03", D(2026, 12, 3)),                      # ISO: links and bookmarks
    ("en", "2026-12-03", D(2026, 12, 3)),                      # the English page's own format
    ("en", "12/3/26", D(2026, 12, 3)), ("en", "12/3/2026", D(2026, 12, 3)),   # Babel's short English date
    ("en", "03.12.2026", D(2026, 12, 3)),                      # a Russian link opened in English
    ("ru", "", None), ("en", None, None),
])
def test_dates_read(in_lang, lang, text, day):
    with in_lang(lang):
        assert dateinput.parse(text) == day


@pytest.mark.parametrize("lang, text", [
    ("ru", "31.02.2026"), ("ru", "12.31.2026"),                # no such day; month and day swapped
    ("ru", "03/12/2026"), ("ru", "2026-13-01"), ("ru", "завтра"), ("ru", "1.2.3.4"),
    ("en", "13/3/2026"), ("en", "3/12"), ("en", "2026-02-30"), ("en", "<script>"),
])
def test_bad_dates_are_refused_with_the_format_to_use(in_lang, lang, text):
    with in_lang(lang):
        with pytest.raises(dateinput.DateInputError) as e:
            dateinput.parse(text)
    want = {"ru": f"Неверная дата «{text}»: введите её в виде ДД.ММ.ГГГГ.",
            "en": f"Invalid date “{text}”: type it as YYYY-MM-DD."}[lang]
    assert str(e.value) == want


def test_placeholder_field_value_and_iso(in_lang):
    with in_lang("ru"):
        assert dateinput.placeholder() == "ДД.ММ.ГГГГ"
        assert dateinput.field_value(D(2026, 12, 3)) == "03.12.2026"
        assert dateinput.field_value("2026-12-03") == "03.12.2026"     # a link's ISO date, shown in Russian
        assert dateinput.field_value("32.12.2026") == "32.12.2026"     # a bad text, shown as typed
        assert dateinput.to_iso("3.12.2026") == "2026-12-03"
        assert dateinput.to_iso("2026-12-03T10:00") == "2026-12-03T10:00"   # ISO date-times pass
    with in_lang("en"):
        assert dateinput.placeholder() == "YYYY-MM-DD"
        assert dateinput.field_value(D(2026, 12, 3)) == "2026-12-03"
        assert dateinput.field_value("12/3/26") == "2026-12-03"


# --- through the web UI ---------------------------------------------------------------------

def ru_client(client_for):
    c = client_for("admin")
    with c.session_transaction() as sess:
        sess["lang"] = "ru"
    return c


def date_inputs(html: str) -> dict:
    return {m.group(1): m.group(0) for m in re.finditer(r'<input type="text" name="(from|to)"[^>]*>', html)}


@pytest.mark.db
def test_every_filter_form_has_text_date_fields_in_the_page_language(client_for, world):
    c = ru_client(client_for)
    for url in ("/reports/sources?from=2026-03-01&to=2026-03-31", "/calls?from=2026-03-01&to=2026-03-31",
                "/missed?from=2026-03-01&to=2026-03-31", "/settings/integrations/spend?from=2026-03-01&to=2026-03-31"):
        html = c.get(url).get_data(as_text=True)
        assert 'type="date"' not in html, url
        fields = date_inputs(html)
        assert 'value="01.03.2026"' in fields["from"] and 'value="31.03.2026"' in fields["to"], url
        assert 'placeholder="ДД.ММ.ГГГГ"' in fields["from"], url


@pytest.mark.db
def test_russian_dates_filter_journal_missed_and_spend(client_for, session_factory, world):
    from calltracking.reports import adspend

    march = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
    add_call(session_factory, world["project"], "in", status="missed", started=march, caller="+74952000001")
    add_call(session_factory, world["project"], "out", status="missed", started=march + dt.timedelta(days=20),
             caller="+74952000002")
    with session_factory() as s:
        adspend.import_spend(s, "day,source,amount\n2026-03-02,Google Ads,10\n2026-03-22,Google Ads,20\n",
                             default_project="acme")
        s.commit()
    c = ru_client(client_for)
    q = {"from": "01.03.2026", "to": "05.03.2026"}
    journal = c.get("/calls", query_string=q).get_data(as_text=True)
    assert "+74952000001" in journal and "+74952000002" not in journal
    missed = c.get("/missed", query_string={**q, "state": "all"}).get_data(as_text=True)
    assert "+74952000001" in missed and "+74952000002" not in missed
    spend = c.get("/settings/integrations/spend", query_string=q).get_data(as_text=True)
    summary = spend.split('id="spend-summary">', 1)[1].split("</p>", 1)[0]
    assert "строк: 1 " in summary and "10,00" in summary                # the 22nd is outside


@pytest.mark.db
def test_a_bad_date_is_an_error_that_keeps_the_other_filters(client_for, session_factory, world):
    c = ru_client(client_for)
    page = c.get("/reports/sources", query_string={"project": world["project"], "from": "31.02.2026",
                                                  "to": "05.03.2026", "compare": "1"}).get_data(as_text=True)
    assert "Неверная дата «31.02.2026»: введите её в виде ДД.ММ.ГГГГ." in page
    fields = date_inputs(page)
    assert 'value="31.02.2026"' in fields["from"] and 'value="05.03.2026"' in fields["to"]
    assert re.search(rf'<option value="{world["project"]}"\s+selected', page)
    assert re.search(r'name="compare" value="1" id="report-compare"\s+checked', page)
    journal = c.get("/calls", query_string={"from": "вчера", "status": "missed"}).get_data(as_text=True)
    assert "Неверная дата «вчера»" in journal and re.search(r'<option value="missed"\s+selected', journal)
    assert 'value="вчера"' in date_inputs(journal)["from"]
    missed = c.get("/missed", query_string={"to": "99.99.2026", "project": world["project"]}).get_data(as_text=True)
    assert "Неверная дата «99.99.2026»" in missed
    assert re.search(rf'<option value="{world["project"]}"\s+selected', missed)
    assert c.get("/reports/sources.csv", query_string={"from": "31.02.2026"}).status_code == 400
