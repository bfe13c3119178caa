"""The worklist pages through every missed call with its total; it says whether someone called back
or the caller simply called again (list, call card, CSV); long waits read as days and hours."""
import csv
import datetime as dt
import io
import re

import pytest

from calltracking.calls import missed
from calltracking.models import Call, utcnow
from support.web import add_call

from test_missed_outbound import add_outbound, row_html

pytestmark = pytest.mark.db


def page_ids(html):
    return [int(x) for x in re.findall(r'<tr data-call-id="(\d+)"', html)]


def test_every_missed_call_is_reachable_page_by_page_with_the_total(session_factory, world, client_for):
    t = utcnow() - dt.timedelta(days=2)
    s = session_factory()
    for i in range(123):
        # several calls in the same second: the cursor orders them by id as well
        s.add(Call(pbx_id="pbx1", linkedid=f"m{i}", project_id=world["project"], did="+74950001001",
                   caller_number=f"+7916{i:07d}", status="missed", started_at=t + dt.timedelta(seconds=i // 3),
                   missed_reason="abandoned"))
    s.commit()
    want = [c.id for c in s.query(Call).order_by(Call.started_at.desc(), Call.id.desc())]
    s.close()
    c = client_for("super")
    html = c.get("/missed").get_data(as_text=True)
    assert "123 missed calls" in html
    seen, pages = page_ids(html), 1
    while (m := re.search(r'href="([^"]*after=[^"]*)" id="next-page"', html)):
        html = c.get(m.group(1).replace("&amp;", "&")).get_data(as_text=True)
        assert "123 missed calls" in html
        seen += page_ids(html)
        pages += 1
    assert seen == want and pages == 3
    ru = client_for("sveta").get("/missed").get_data(as_text=True)
    assert "123 пропущенных звонка" in ru
    with session_factory() as s:
        assert missed.count(s, state="open") == 123 and missed.count(s, state="closed") == 0
    # the CSV holds every page, with a BOM for spreadsheets
    body = c.get("/missed/export.csv").get_data(as_text=True)
    assert body.startswith("\ufeff") and len(list(csv.reader(io.StringIO(body[1:])))) == 124


def test_called_back_is_not_called_again(session_factory, world, client_for):
    t = utcnow() - dt.timedelta(hours=3)
    p = world["project"]
    back = add_call(session_factory, p, "b", caller="+79161110021", status="missed", started=t)
    again = add_call(session_factory, p, "a", caller="+79161110022", status="missed", started=t)
    handled = add_call(session_factory, p, "h", caller="+79161110023", status="missed", started=t)
    add_outbound(session_factory, "o", "+79161110021", t + dt.timedelta(minutes=4), project_id=p)
    add_call(session_factory, p, "i", caller="+79161110022", started=t + dt.timedelta(minutes=6))
    c = client_for("super")
    assert c.post(f"/missed/{handled}/handled").status_code == 302
    with session_factory() as s:
        got = {r.call.id: r.closed_by for r in missed.worklist(s, state="all")}
    assert got == {back: "called_back", again: "called_again", handled: "handled"}
    html = c.get("/missed?state=all").get_data(as_text=True)
    assert "called back" in row_html(html, back) and "by Olga at" in row_html(html, back)
    assert "called back" not in row_html(html, again) and "caller called again" in row_html(html, again)
    card = c.get(f"/calls/{again}").get_data(as_text=True)
    assert re.search(r'id="missed-state" data-closed-by="called_again">\s*caller called again', card)
    assert 'data-closed-by="called_back"' in c.get(f"/calls/{back}").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(c.get("/missed/export.csv?state=all").get_data(as_text=True)[1:])))
    state = {r[1]: r[6] for r in rows[1:]}
    assert state == {"+79161110021": "called back", "+79161110022": "caller called again",
                     "+79161110023": "handled"}
    ru = client_for("sveta").get("/missed?state=all").get_data(as_text=True)
    assert "клиент позвонил снова" in row_html(ru, again) and "перезвонили" in row_html(ru, back)


def test_a_missed_call_open_for_days_reads_as_days_and_hours(session_factory, world, client_for):
    t = utcnow() - dt.timedelta(days=14, hours=21, minutes=5)
    m = add_call(session_factory, world["project"], "old", status="missed", started=t)
    html = client_for("super").get("/missed").get_data(as_text=True)
    ttc = re.search(r'<td class="ttc"[^>]*>(.*?)</td>', row_html(html, m)).group(1)
    assert ttc == "14 d 21 h"
    ru = client_for("sveta").get("/missed").get_data(as_text=True)
    assert re.search(r'<td class="ttc"[^>]*>(.*?)</td>', row_html(ru, m)).group(1) == "14 д 21 ч"
