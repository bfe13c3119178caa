"""Conversation measures in the web UI: the call card (English and Russian), the API's call,
the operators report and its CSV."""
from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest

from calltracking.models import RecordingInfo, utcnow
from support.web import add_call

pytestmark = pytest.mark.db


def _measured(session_factory, cid, **kw):
    values = dict(call_id=cid, status="ok", duration_seconds=Decimal("95.2"), channels=2,
                  caller_talk_seconds=Decimal("30.0"), operator_talk_seconds=Decimal("50.0"),
                  talk_ratio=Decimal("0.625"), longest_silence_seconds=Decimal("7.5"),
                  operator_interruptions=3, caller_interruptions=1,
                  first_operator_word_seconds=Decimal("2.35"))
    values.update(kw)
    with session_factory() as s:
        s.add(RecordingInfo(**values))
        s.commit()


def _dl(html):
    return html.split('id="recording-analysis"', 1)[1].split("</dl>", 1)[0]


def test_call_card_shows_the_measures_in_english_and_russian(client_for, session_factory, world):
    cid = add_call(session_factory, world["project"], "m1", operator_id=world["operator"])
    mono = add_call(session_factory, world["project"], "m2", operator_id=world["operator"])
    _measured(session_factory, cid)
    _measured(session_factory, mono, channels=1, caller_talk_seconds=None, operator_talk_seconds=None,
              talk_ratio=None, operator_interruptions=None, caller_interruptions=None,
              first_operator_word_seconds=None)
    c = client_for("supervisor")
    part = _dl(c.get(f"/calls/{cid}").get_data(as_text=True))
    assert "Time to first operator word" in part and 'id="first-word">2.4 s<' in part   # like "7.5 s"
    assert 'id="operator-interruptions">3<' in part and 'id="caller-interruptions">1<' in part
    assert "Operator interrupted the caller" in part and "Caller interrupted the operator" in part
    # a mono mix has no sides: none of the two-sided measures
    assert "first-word" not in _dl(c.get(f"/calls/{mono}").get_data(as_text=True))
    c.post("/language", data={"lang": "ru", "next": "/calls"})
    ru = _dl(c.get(f"/calls/{cid}").get_data(as_text=True))
    for text in ("Время до первого слова оператора", "Оператор перебил клиента", "Клиент перебил оператора",
                 'id="first-word">2.4 с<'):
        assert text in ru, text


def test_api_call_has_its_measures(app, session_factory, world):
    from sqlalchemy import select

    from calltracking.models import User
    from webui.auth import new_api_token

    cid = add_call(session_factory, world["project"], "a1", operator_id=world["operator"])
    bare = add_call(session_factory, world["project"], "a2")
    _measured(session_factory, cid)
    with session_factory() as s:
        token = new_api_token(s.scalars(select(User).where(User.username == "super")).one())
        s.commit()
    c = app.test_client()
    h = {"Authorization": f"Bearer {token}"}
    got = c.get(f"/api/calls/{cid}", headers=h).get_json()
    assert got["conversation"] == {
        "duration_seconds": 95.2, "channels": 2, "caller_talk_seconds": 30.0, "operator_talk_seconds": 50.0,
        "talk_ratio": 0.625, "longest_silence_seconds": 7.5, "first_operator_word_seconds": 2.35,
        "operator_interruptions": 3, "caller_interruptions": 1}
    assert got["id"] == cid and got["linkedid"] == "a1"
    assert c.get(f"/api/calls/{bare}", headers=h).get_json()["conversation"] is None
    doc = c.get("/api/openapi.json").get_json()
    assert "first_operator_word_seconds" in doc["components"]["schemas"]["Call"]["properties"]["conversation"][
        "properties"]


def test_operators_report_and_csv_show_the_measures_per_operator(client_for, session_factory, world):
    started = utcnow() - dt.timedelta(hours=3)
    calls = []
    for i, (who, interrupts, first) in enumerate([("Olga", 3, "2.0"), ("Olga", 1, "4.0"),
                                                  ("=HYPERLINK(\"x\")", 0, None)]):
        cid = add_call(session_factory, world["project"], f"o{i}", started=started, operator_name=who)
        _measured(session_factory, cid, operator_interruptions=interrupts,
                  first_operator_word_seconds=None if first is None else Decimal(first))
        calls.append(cid)
    c = client_for("supervisor")
    day = started.astimezone(dt.timezone(dt.timedelta(hours=3))).date().isoformat()
    rng = {"project": world["project"], "from": day, "to": day}
    html = c.get("/reports/operators", query_string=rng).get_data(as_text=True)
    table = html.split('id="talk-table"', 1)[1].split("</table>", 1)[0]
    assert "Interruptions per call" in table and "Avg time to first word, s" in table
    olga = table.split("<td>Olga</td>", 1)[1].split("</tr>", 1)[0]
    assert ">2.0<" in olga and ">3.0<" in olga            # (3 + 1) / 2 interruptions; (2 + 4) / 2 s
    assert "<td>=HYPERLINK(&#34;x&#34;)</td>" in table       # a hostile name, escaped
    rows = list(csv.reader(io.StringIO(c.get("/reports/operators.csv", query_string=rng)
                                       .get_data(as_text=True).lstrip("\ufeff"))))
    at = rows.index(["Recorded conversations"])
    assert rows[at + 1] == ["Operator", "Calls measured", "Operator's share of talk, %", "Avg longest silence, s",
                            "Longest silence, s", "Interruptions per call", "Avg time to first word, s"]
    body = {r[0]: r for r in rows[at + 2:]}
    assert body["Olga"] == ["Olga", "2", "62.5", "7.5", "7.5", "2.0", "3.0"]
    assert body["'=HYPERLINK(\"x\")"][6] == ""          # inert in a spreadsheet; no first word: empty
    c.post("/language", data={"lang": "ru", "next": "/reports"})
    ru = list(csv.reader(io.StringIO(c.get("/reports/operators.csv", query_string=rng)
                                     .get_data(as_text=True).lstrip("\ufeff")), delimiter=";"))
    at = ru.index(["Записанные разговоры"])
    assert ru[at + 1][5:] == ["Перебиваний на звонок", "Ср. время до первого слова, с"]
    assert {r[0]: r for r in ru[at + 2:]}["Olga"][5:] == ["2,0", "3,0"]
