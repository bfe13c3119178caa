"""The user's language everywhere: every page of the demo in Russian shows no English UI word,
every translatable string has a Russian translation, numbers, money and dates follow the
language (Babel), the CSVs open in Excel (BOM, headers and decimals in the user's language,
local times), core errors are translated, and the browser's chart axes use the page's locale."""
from __future__ import annotations

import csv
import datetime as dt
import html as htmllib
import io
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from calltracking.models import Project
from support.config import make_config
from support.pages import crawl, seed_demo
from support.web import add_call, login
from webui import create_app

pytestmark = pytest.mark.db

WEBUI = Path(__file__).resolve().parents[2] / "webui"
#: English words of the UI that must not appear in a Russian page's text (data such as source
#: names, operators, keywords are the user's own and are not in this list)
ENGLISH = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "no answer", "ringing", "static", "dynamic",
           "pool", "exhausted", "always", "off", "admin", "supervisor", "operator", "search", "ads",
           "social", "offline", "referral", "direct", "other", "email", "mobile", "desktop", "tablet",
           "answered", "missed", "Calls", "Source", "Journal", "Reports", "Settings", "Save", "Show",
           "invalid", "already exists", "<1m", "1-5m", ">7d", "Held", "Refused", "Name", "Value",
           "Download", "Weekday", "Day", "Hour", "yes", "no", "Total", "Previous", "First", "Repeat")
_WORD = {w: re.compile(r"(?<![\w/.@$-])" + re.escape(w) + r"(?![\w/.@-])") for w in ENGLISH}


def visible_text(html: str) -> str:
    """The text a reader sees: no scripts, styles, tags; attributes people read kept."""
    labels = []
    for block in re.findall(r'(?s)<script[^>]*application/json[^>]*>(.*?)</script>', html):
        spec = json.loads(block)                                   # a chart: its axes and series names
        if isinstance(spec, dict):
            labels += [str(x) for x in spec.get("labels", []) + spec.get("ylabels", [])]
            labels += [str(ds.get("label", "")) for ds in spec.get("datasets", [])]
    body = re.sub(r"(?s)<script.*?</script>|<style.*?</style>", " ", html) + "\n" + "\n".join(labels)
    attrs = " ".join(re.findall(r'(?:placeholder|title|aria-label|alt)="([^"]*)"', body))
    text = re.sub(r"<[^>]+>", " ", body)
    return htmllib.unescape(text + " " + attrs)


def english_words(text: str, data_words: set) -> list:
    found = []
    for w, rx in _WORD.items():
        for m in rx.finditer(text):
            # a word inside the user's data (a source named "Organic search") is data
            line = text[max(0, m.start() - 40):m.end() + 40]
            if not any(d in line and w in d for d in data_words):
                found.append((w, line.strip().replace("\n", " ")))
                break
    return found


@pytest.fixture
def demo_app(db_url, session_factory, tmp_path):
    seed_demo(session_factory, tmp_path, language="ru", days=14, per_day=30)
    app = create_app(make_config(db_url, recordings__dir=tmp_path), session_factory, testing=True)
    app.config["WTF_CSRF_ENABLED"] = False
    return app


def _data_words(session_factory) -> set:
    from sqlalchemy import select

    from calltracking.models import Campaign, NumberPool, Operator, Source, Tag, TargetRule, User

    with session_factory() as s:
        words = set()
        for model in (Source, Campaign, NumberPool, Operator, Tag, Project):
            words |= {x.name for x in s.scalars(select(model))}
        words |= {u.username for u in s.scalars(select(User))}
        words |= {t.description for t in s.scalars(select(Tag)) if t.description}     # typed by users
        words |= {r.name for r in s.scalars(select(TargetRule))}
        words |= {"PJSIP", "Europe/Moscow", "calltracking", "English", "UTM", "CSV", "Linkedid", "E-mail",
                  "Google Analytics 4", "Asterisk", "Dial", "IANA", "sales", "support", "sales,support",
                  "dni.js", "number, project, source, campaign, pool"}   # the numbers CSV's columns
        return words


@pytest.mark.parametrize("role", ["admin", "super", "oper"])
def test_every_russian_page_shows_no_english_ui_words(demo_app, session_factory, role):
    c = demo_app.test_client()
    assert login(c, role).status_code == 302
    pages = crawl(demo_app, c)
    assert len(pages) >= {"admin": 30, "super": 15, "oper": 3}[role], sorted(pages)
    data = _data_words(session_factory)
    bad = {path: found for path, html in pages.items() if (found := english_words(visible_text(html), data))}
    assert bad == {}


def test_every_translatable_string_has_a_russian_translation():
    have = set()
    for po in (WEBUI / "translations" / "ru").rglob("*.po"):
        with open(po, "rb") as fh:
            have |= {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(fh, locale="ru")
                     if m.id and m.string and not m.fuzzy}
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2.ext:babel_extract")]
    keywords = {"_": None, "_l": None, "gettext": None, "lazy_gettext": None, "ngettext": (1, 2)}
    missing = sorted({(msg if isinstance(msg, str) else msg[0], f"{fn}:{line}")
                      for fn, line, msg, _c, _ctx in extract_from_dir(str(WEBUI), method_map, keywords=keywords)
                      if (msg if isinstance(msg, str) else msg[0]) not in have})
    assert missing == []


# ------------------------------------------------------------------ Babel formatting
def test_numbers_money_and_dates_follow_the_language(app, session_factory, world):
    from webui import display

    when = dt.datetime(2026, 3, 2, 7, 5, 9, tzinfo=dt.timezone.utc)
    with app.test_request_context("/"):
        from flask import session as flask_session

        flask_session["lang"] = "ru"
        assert display.fmt_money(Decimal("6277176")) == "6\u00a0277\u00a0176,00\u00a0₽"
        assert display.fmt_money(Decimal("12.5"), "EUR") == "12,50\u00a0€"
        assert display.fmt_number(1234567) == "1\u00a0234\u00a0567"
        assert display.fmt_number(12.345, 1) == "12,3"
        assert display.fmt_time(when, "Europe/Moscow") == "02.03.2026 10:05:09"
        assert display.fmt_date(dt.date(2026, 3, 2)) == "02.03.2026"
    with app.test_request_context("/"):
        assert display.fmt_money(Decimal("6277176")) == "6,277,176.00\u00a0RUB"
        assert display.fmt_money(Decimal("5"), "USD") == "$5.00"
        assert display.fmt_number(1234567) == "1,234,567"
        assert display.fmt_time(when, "Europe/Moscow") == "2026-03-02 10:05:09"


def test_currency_setting_is_checked_and_used(db_url, session_factory, world):
    from calltracking.config import ConfigError

    with pytest.raises(ConfigError, match="currency"):
        make_config(db_url, web__currency="rubles")
    app = create_app(make_config(db_url, web__currency="eur"), session_factory, testing=True)
    from webui import display

    with app.test_request_context("/"):
        assert display.fmt_money(Decimal("3")) == "€3.00"


def test_report_page_groups_counts_and_formats_money_in_russian(client_for, session_factory, world):
    with session_factory() as s:
        s.get(Project, world["project"]).currency = "RUB"
        s.commit()
    for i in range(3):
        add_call(session_factory, world["project"], f"r{i}", source_id=world["source"], value=Decimal("1234567.5"),
                 started=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1 + i))
    c = client_for("admin")
    c.post("/language", data={"lang": "ru", "next": "/reports"})
    html = c.get("/reports/sources").get_data(as_text=True)
    assert "3\u00a0703\u00a0702,50\u00a0₽" in html          # the value of the three calls
    assert "3703702.5" not in html and "3,703,702.50" not in html


# ------------------------------------------------------------------ CSV
def test_report_csv_has_bom_russian_headers_and_decimal_commas(client_for, session_factory, world):
    add_call(session_factory, world["project"], "c1", source_id=world["source"],
             started=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2))
    c = client_for("admin")
    c.post("/language", data={"lang": "ru", "next": "/reports"})
    raw = c.get("/reports/sources.csv").get_data()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert "Звонки" in rows[0] and "Источник" not in rows[0][:1]
    google = next(r for r in rows if "Google Ads" in r)
    assert google[rows[0].index("Звонки")] == "1"
    assert google[rows[0].index("Ср. разговор, с")] == "60,0"
    heat = c.get("/reports/heatmap.csv").get_data().decode("utf-8-sig")
    assert "Пн" in heat and "Mon" not in heat


def test_journal_csv_local_times_without_microseconds_and_russian_headers(client_for, session_factory, world):
    started = dt.datetime(2026, 3, 2, 7, 5, 9, 123456, tzinfo=dt.timezone.utc)
    add_call(session_factory, world["project"], "j1", started=started, value=Decimal("1234.5"))
    c = client_for("admin")
    en = list(csv.DictReader(io.StringIO(c.get("/calls/export.csv?from=2026-03-01&to=2026-03-03")
                                         .get_data(as_text=True).lstrip("\ufeff"))))
    assert en[0]["started_at"] == "2026-03-02 10:05:09"       # Europe/Moscow, to the second
    assert en[0]["started_at_utc"] == "2026-03-02T07:05:09+00:00"
    assert en[0]["time_zone"] == "Europe/Moscow" and en[0]["value"] == "1234.50"
    c.post("/language", data={"lang": "ru", "next": "/calls"})
    raw = c.get("/calls/export.csv?from=2026-03-01&to=2026-03-03").get_data()
    assert raw.startswith("\ufeff".encode())
    ru = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert ru[0]["Начало"] == "2026-03-02 10:05:09" and ru[0]["Сумма"] == "1234,50"
    assert ru[0]["Ожидание, с"] == "7,0"


# ------------------------------------------------------------------ translated labels and errors
def test_core_errors_and_choices_are_translated(client_for, world):
    c = client_for("admin")
    c.post("/language", data={"lang": "ru", "next": "/settings/"})
    html = c.post("/settings/projects", data={"key": "bad key", "name": "x"}).get_data(as_text=True)
    assert "Неверный ключ проекта «bad key»" in html and "invalid project key" not in html
    html = c.post("/settings/sources", data={"project_id": str(world["project"]), "name": "Google Ads",
                                             "channel": "ads"}).get_data(as_text=True)
    assert "Источник «Google Ads» уже есть в проекте «acme»" in html
    sources = c.get("/settings/sources").get_data(as_text=True)
    assert '<option value="ads"' in sources and ">реклама<" in sources
    users = c.get("/settings/users").get_data(as_text=True)
    assert ">супервизор<" in users or "супервизор" in visible_text(users)
    assert not re.search(r">\s*supervisor\s*<", users)
    pools = c.get("/settings/pools").get_data(as_text=True)
    assert "когда в пуле нет свободных номеров" in pools and ">exhausted<" not in pools


def test_call_card_timeline_and_attribution_in_russian(client_for, session_factory, world):
    from calltracking.models import CallLeg

    cid = add_call(session_factory, world["project"], "t1", status="missed", operator_id=world["operator"],
                   attribution="static")
    with session_factory() as s:
        leg = s.query(CallLeg).filter_by(call_id=cid).one()
        leg.outcome, leg.ended_at = "no_answer", leg.rung_at + dt.timedelta(seconds=15)
        s.commit()
    c = client_for("admin")
    en = visible_text(c.get(f"/calls/{cid}").get_data(as_text=True))
    assert "Olga: no answer" in en and "static number" in en
    c.post("/language", data={"lang": "ru", "next": "/calls"})
    ru = visible_text(c.get(f"/calls/{cid}").get_data(as_text=True))
    assert "Olga: не ответил" in ru and "статический номер" in ru and "no answer" not in ru


def test_form_field_errors_are_translated(client_for, world):
    c = client_for("admin")
    c.post("/language", data={"lang": "ru", "next": "/settings/"})
    html = c.post("/settings/rules", data={"project_id": str(world["project"]), "name": "r", "queue": "q",
                                           "time_from": "25:99"}).get_data(as_text=True)
    assert "нужно время ЧЧ:ММ, а не «25:99»" in html and "expected a time" not in html
    html = c.post("/settings/numbers", data={"project_id": str(world["project"]), "number": "abc",
                                             "source_id": str(world["source"])}).get_data(as_text=True)
    assert "Неверный номер телефона «abc»" in html and "invalid phone number" not in html


def test_daily_report_days_in_the_users_date_format(client_for, session_factory, world):
    c = client_for("admin")
    c.post("/language", data={"lang": "ru", "next": "/reports"})
    html = c.get("/reports/daily?from=2026-03-01&to=2026-03-03").get_data(as_text=True)
    assert "02.03.2026" in visible_text(html) and "2026-03-02" not in visible_text(html)
    csv_text = c.get("/reports/daily.csv?from=2026-03-01&to=2026-03-03").get_data().decode("utf-8-sig")
    assert "2026-03-02" in csv_text                      # the CSV keeps ISO days (spreadsheets parse them)


def test_journal_count_is_grouped(client_for, session_factory, world):
    from calltracking.models import Call

    base = dt.datetime(2026, 3, 2, 7, 0, tzinfo=dt.timezone.utc)
    with session_factory() as s:
        s.add_all(Call(pbx_id="pbx1", linkedid=f"g{i}", project_id=world["project"], did="+74950001001",
                       caller_number="+74951112233", status="answered", started_at=base + dt.timedelta(seconds=i))
                  for i in range(1001))
        s.commit()
    html = client_for("admin").get("/calls?from=2026-03-01&to=2026-03-03").get_data(as_text=True)
    assert re.search(r'id="calls-total">[^<]*1,001', html), re.search(r'id="calls-total">[^<]*', html)
