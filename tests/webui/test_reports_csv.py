"""A report CSV carries what its page shows: the rows, the totals row and, when the page compares
with the previous period, that period's totals, the change and the change in percent; with the
BOM, the separator, the decimal sign and the headers of the user's language (Flask's test client
over real SQLite/PostgreSQL)."""
from __future__ import annotations

import csv
import html as htmllib
import io
import re
from decimal import Decimal

import pytest
from sqlalchemy import select

from calltracking.models import Project, Source, User
from support import report_data as D

pytestmark = pytest.mark.db
RANGE = {"from": "2026-03-01", "to": "2026-03-31"}


@pytest.fixture
def app(db_url, session_factory, tmp_path):
    app = D.reports_app(db_url, session_factory, tmp_path)
    with session_factory() as s:                      # February: one answered call of Google Ads
        p = s.scalars(select(Project)).one()
        google = s.scalars(select(Source).where(Source.name == "Google Ads")).one()
        D.add_call(s, p, "2026-02-10 15:00:00", wait=30, talk=50, source=google, value="200.00")
        s.commit()
        app.ct = {"project": p.id}
    return app


def client(app, lang):
    from webui.auth import _fingerprint

    c = app.test_client()
    with app.extensions["calltracking"]["sessionmaker"]() as s:
        user = s.scalars(select(User).where(User.username == "sup1")).one()
        uid, fp = user.id, _fingerprint(user)
    with c.session_transaction() as sess:
        sess["uid"], sess["fp"], sess["lang"] = uid, fp, lang
    return c


def figure(text: str, lang: str):
    """A cell's number (page or CSV) as a Decimal; None for an empty or "—" cell."""
    text = text.replace("\u00a0", " ").strip()
    if text in ("", "—"):
        return None
    text = re.sub(r"[^0-9,.\-+]", "", text)
    text = text.replace(",", ".") if lang == "ru" else text.replace(",", "")
    return Decimal(text)


def page_rows(html: str, lang: str) -> dict:
    """{row id: [label, figures…]} of the page's tfoot rows; the change row split in Δ and %."""
    out = {}
    for row_id in ("totals-row", "previous-row", "change-row"):
        if f'id="{row_id}"' not in html:
            continue
        tr = html.split(f'id="{row_id}">', 1)[1].split("</tr>", 1)[0]
        cells = [htmllib.unescape(re.sub(r"<[^>]+>", "", c)).strip()
                 for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr, re.S)]
        if row_id == "change-row":
            deltas = [figure(c.split("(")[0], lang) for c in cells[1:]]
            pcts = [figure(c.split("(")[1], lang) if "(" in c else None for c in cells[1:]]
            out[row_id], out["percent"] = [cells[0]] + deltas, [cells[0]] + pcts
        else:
            out[row_id] = [cells[0]] + [figure(c, lang) for c in cells[1:]]
    return out


def csv_rows(raw: bytes, lang: str) -> tuple[list, list]:
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";" if lang == "ru" else ","))
    keep = [i for i, title in enumerate(rows[0]) if title != "key"]      # the page hides the ids
    return [rows[0][i] for i in keep], [[r[i] for i in keep] for r in rows[1:]]


@pytest.mark.parametrize("lang", ["en", "ru"])
@pytest.mark.parametrize("name", ["sources", "daily", "operators"])
def test_csv_totals_and_comparison_equal_the_page(app, lang, name):
    c = client(app, lang)
    q = {"project": app.ct["project"], **RANGE, "compare": "1"}
    page = page_rows(c.get(f"/reports/{name}", query_string=q).get_data(as_text=True), lang)
    header, rows = csv_rows(c.get(f"/reports/{name}.csv", query_string=q).get_data(), lang)
    labels = {"en": ("Total", "Previous period", "Change", "Change, %"),
              "ru": ("Итого", "Предыдущий период", "Изменение", "Изменение, %")}[lang]
    tail = rows[-4:]
    assert [r[0].split(" 20")[0] for r in tail] == list(labels)
    assert tail[1][0].endswith("2026-02-01 – 2026-02-28")
    for csv_row, page_id in zip(tail, ("totals-row", "previous-row", "change-row", "percent")):
        got = [figure(v, lang) for v in csv_row[1:]]
        assert got == page[page_id][1:], (page_id, csv_row, page[page_id])
    if name != "operators":                     # March: 4 finished calls, February: 1
        calls = header.index("Calls" if lang == "en" else "Звонки")
        assert (tail[0][calls], tail[1][calls], tail[2][calls]) == ("4", "1", "3")
    if lang == "ru" and name == "sources":
        value = header.index("Сумма")
        assert tail[0][value] == "1000,0"                               # decimal comma, no grouping


def test_csv_without_compare_has_only_the_totals_row(app):
    c = client(app, "en")
    q = {"project": app.ct["project"], **RANGE}
    header, rows = csv_rows(c.get("/reports/sources.csv", query_string=q).get_data(), "en")
    assert [r[0] for r in rows].count("Total") == 1 and rows[-1][0] == "Total"
    assert not any(r[0].startswith(("Previous period", "Change")) for r in rows)
    assert sum(int(r[header.index("Calls")]) for r in rows[:-1]) == int(rows[-1][header.index("Calls")])
    heat = c.get("/reports/heatmap.csv", query_string=dict(q, compare="1")).get_data(as_text=True)
    assert "Total" not in heat and "Previous period" not in heat            # no totals on the page either
