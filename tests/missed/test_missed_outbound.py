"""The worklist closes a missed call on the first later answered call with that number, inbound or
outbound (same project or project unknown), and says who called back; English and Russian."""
import datetime as dt
import re
from decimal import Decimal

import pytest

from calltracking.calls import missed
from calltracking.models import OutboundCall, utcnow
from support.web import HOSTILE_NAMES, add_call

pytestmark = pytest.mark.db


def add_outbound(session_factory, linkedid, number, started, status="answered", project_id=None,
                 operator_id=None, operator_name="Olga", originated=False):
    s = session_factory()
    o = OutboundCall(pbx_id="pbx1", linkedid=linkedid, number=number, started_at=started,
                     answered_at=started + dt.timedelta(seconds=5) if status == "answered" else None,
                     ended_at=started + dt.timedelta(seconds=65), status=status, project_id=project_id,
                     operator_id=operator_id, operator_name=operator_name, interface="PJSIP/101",
                     talk_seconds=Decimal("60") if status == "answered" else Decimal("0"),
                     originated_by_us=originated)
    s.add(o)
    s.commit()
    s.close()


def rows(session_factory, state="all"):
    with session_factory() as s:
        return {r.call.id: r for r in missed.worklist(s, state=state)}


def row_html(html, call_id):
    m = re.search(rf'<tr data-call-id="{call_id}"[^>]*>(.*?)</tr>', html, re.S)
    assert m, f"row {call_id} not shown"
    return m.group(1)


def test_outbound_callback_closes_and_earliest_callback_wins(session_factory, world):
    t = utcnow() - dt.timedelta(hours=3)
    p = world["project"]
    m1 = add_call(session_factory, p, "m1", caller="+79161110001", status="missed", started=t)
    m2 = add_call(session_factory, p, "m2", caller="+79161110002", status="missed", started=t)
    m3 = add_call(session_factory, p, "m3", caller="+79161110003", status="missed", started=t)
    m4 = add_call(session_factory, p, "m4", caller="+79161110004", status="missed", started=t)
    # m1: an unanswered attempt, then an answered callback 25 min after the miss
    add_outbound(session_factory, "o1", "+79161110001", t + dt.timedelta(minutes=10), status="missed")
    add_outbound(session_factory, "o2", "+79161110001", t + dt.timedelta(minutes=25), operator_id=world["operator"])
    # m2: an answered outbound call *before* the miss, and one from another project: still open
    add_outbound(session_factory, "o3", "+79161110002", t - dt.timedelta(minutes=5))
    add_outbound(session_factory, "o4", "+79161110002", t + dt.timedelta(minutes=5), project_id=world["other"])
    # m3: the caller called again (answered inbound, 7 min) before the operator called (20 min)
    add_call(session_factory, p, "i3", caller="+79161110003", started=t + dt.timedelta(minutes=7))
    add_outbound(session_factory, "o5", "+79161110003", t + dt.timedelta(minutes=20), project_id=p)
    # m4: outbound (12 min, same project) before a later inbound call (30 min)
    add_outbound(session_factory, "o6", "+79161110004", t + dt.timedelta(minutes=12), project_id=p,
                 operator_name="Boris", originated=True)
    add_call(session_factory, p, "i4", caller="+79161110004", started=t + dt.timedelta(minutes=30))
    got = rows(session_factory)
    assert got[m1].time_to_callback() == pytest.approx(25 * 60, abs=1)
    assert got[m1].outbound.operator_name == "Olga" and not got[m1].is_open
    assert got[m2].is_open and got[m2].callback_at is None
    assert got[m3].time_to_callback() == pytest.approx(7 * 60, abs=1) and got[m3].outbound is None
    assert got[m4].time_to_callback() == pytest.approx(12 * 60, abs=1)
    assert got[m4].outbound.operator_name == "Boris" and got[m4].outbound.originated_by_us
    assert set(rows(session_factory, "open")) == {m2}
    assert set(rows(session_factory, "closed")) == {m1, m3, m4}


def test_worklist_page_says_who_called_back_in_english_and_russian(session_factory, world, client_for):
    t = utcnow() - dt.timedelta(hours=2)
    p = world["project"]
    m = add_call(session_factory, p, "m", caller="+79161110009", status="missed", started=t)
    h = add_call(session_factory, p, "h", caller="+79161110010", status="missed", started=t)
    add_outbound(session_factory, "o", "+79161110009", t + dt.timedelta(minutes=9, seconds=30))
    add_outbound(session_factory, "x", "+79161110010", t + dt.timedelta(minutes=1), status="missed")
    c = client_for("super")
    html = c.get("/missed?state=all").get_data(as_text=True)
    row = row_html(html, m)
    when = (t + dt.timedelta(minutes=9, seconds=30)).astimezone(dt.timezone(dt.timedelta(hours=3)))
    assert "called back" in row and "by Olga at " in row and when.strftime("%H:%M") in row
    assert "9:30" in row                     # time to callback
    assert "open" in row_html(html, h)       # an unanswered attempt does not close it
    assert 'data-call-id="%d"' % m not in c.get("/missed").get_data(as_text=True)
    ru = client_for("sveta").get("/missed?state=all").get_data(as_text=True)
    assert "перезвонил(а) Olga в" in row_html(ru, m)


@pytest.mark.parametrize("hostile", HOSTILE_NAMES)
def test_hostile_operator_name_is_text(session_factory, world, client_for, hostile):
    t = utcnow() - dt.timedelta(hours=1)
    m = add_call(session_factory, world["project"], "m", caller="+79161110011", status="missed", started=t)
    add_outbound(session_factory, "o", "+79161110011", t + dt.timedelta(minutes=2), operator_name=hostile)
    row = row_html(client_for("super").get("/missed?state=all").get_data(as_text=True), m)
    assert hostile not in row
    assert "&lt;" in row and ("&lt;script&gt;" in row or "&lt;img" in row)


def test_call_card_lists_outbound_calls_to_the_number(session_factory, world, client_for):
    t = utcnow() - dt.timedelta(hours=2)
    p = world["project"]
    m = add_call(session_factory, p, "m", caller="+79161110012", status="missed", started=t)
    add_outbound(session_factory, "o1", "+79161110012", t + dt.timedelta(minutes=3), status="missed")
    add_outbound(session_factory, "o2", "+79161110012", t + dt.timedelta(minutes=8), originated=True,
                 operator_name="Boris")
    add_outbound(session_factory, "o3", "+79161110012", t + dt.timedelta(minutes=9), project_id=world["other"])
    add_outbound(session_factory, "o4", "+79160000000", t + dt.timedelta(minutes=9))
    html = client_for("super").get(f"/calls/{m}").get_data(as_text=True)
    box = re.search(r'<div class="card" id="callbacks">(.*?)</div>', html, re.S).group(1)
    assert box.count("<tr") == 2                      # not the other project's, not another number's
    assert "Boris" in box and "(click-to-call)" in box and "not answered" in box
    assert box.index("not answered") < box.index("Boris")          # oldest first
    assert 'class="callback"' in box and "1:00" in box              # the answered one, 60 s talk
    ru = client_for("sveta").get(f"/calls/{m}").get_data(as_text=True)
    assert "Обратные звонки" in ru and "без ответа" in ru
