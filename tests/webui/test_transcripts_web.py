"""Transcripts in the web UI and the API: the journal's search box and ``GET /api/calls?q=``, the
call card's dialogue (escaped), the transcript in ``GET /api/calls/<id>``, the keyword lists page
(admins only, CSRF), the keyword report and its CSV (cells made inert), the jobs page's backlog
and ``/metrics``."""
from __future__ import annotations

import csv
import io

from sqlalchemy import select

from calltracking.models import KeywordList, KeywordMention, RecordingInfo, Tag, Transcript, utcnow
from calltracking.transcripts import keywords, store
from support.config import make_config
from support.web import HOSTILE_NAMES, PASSWORD, add_call, csrf_token, login
from webui import create_app
from webui.auth import new_api_token

HOSTILE = HOSTILE_NAMES[0]


def _transcribed(session_factory, world, linkedid, phrases, operator_id=None, source=True):
    cid = add_call(session_factory, world["project"], linkedid, operator_id=operator_id,
                   source_id=world["source"] if source else None, operator_name="Olga" if operator_id else "")
    now = utcnow()
    with session_factory() as s:
        store.save(s, cid, "command", phrases, now, now)
        keywords.apply(s, cid, greeting_seconds=10)
        s.commit()
    return cid


def _lists(session_factory, world):
    with session_factory() as s:
        s.add(KeywordList(project_id=world["project"], name="Delivery", words="достав*\ndeliver*", tag="delivery"))
        s.add(KeywordList(project_id=world["project"], name="Hello", words="good afternoon", greeting=True))
        s.commit()


def test_journal_and_api_search_transcripts(app, session_factory, world, client_for):
    _lists(session_factory, world)
    hit = _transcribed(session_factory, world, "1.1", [("caller", 1.0, 2.0, "Когда будет доставка?")])
    miss = _transcribed(session_factory, world, "1.2", [("caller", 1.0, 2.0, "what is the price")])
    c = client_for("admin")
    html = c.get("/calls?q=ДОСТАВКА").get_data(as_text=True)
    assert f"/calls/{hit}" in html and f"/calls/{miss}" not in html
    assert 'name="q" value="ДОСТАВКА"' in html
    html = c.get("/calls?q=%22%29%3B+DROP+TABLE+calls").get_data(as_text=True)
    assert f"/calls/{hit}" not in html and f"/calls/{miss}" not in html
    with session_factory() as s:
        from calltracking.models import User

        token = new_api_token(s.scalars(select(User).where(User.username == "admin")).one())
        s.commit()
    h = {"Authorization": f"Bearer {token}"}
    r = c.get("/api/calls?q=price", headers=h).get_json()
    assert [x["id"] for x in r["calls"]] == [miss]
    r = c.get("/api/calls?q=достав*", headers=h).get_json()
    assert [x["id"] for x in r["calls"]] == [hit]
    detail = c.get(f"/api/calls/{hit}", headers=h).get_json()
    t = detail["transcript"]
    assert (t["status"], t["backend"], t["greeting_said"]) == ("ok", "command", False)
    assert t["phrases"] == [{"side": "caller", "start": 1.0, "end": 2.0, "text": "Когда будет доставка?"}]
    assert t["mentions"] == [{"list": "Delivery", "word": "достав*", "side": "caller", "at": 1.0}]
    other = add_call(session_factory, world["project"], "1.3")
    assert c.get(f"/api/calls/{other}", headers=h).get_json()["transcript"] is None


def test_card_shows_the_dialogue_escaped_in_both_languages(app, session_factory, world, client_for, tmp_path):
    _lists(session_factory, world)
    cid = _transcribed(session_factory, world, "2.1", [("operator", 0.5, 2.0, "Good afternoon, " + HOSTILE),
                                                       ("caller", 65.25, 67.0, "I need a delivery")])
    wav = tmp_path / "2.1.wav"
    wav.write_bytes(b"RIFF")
    with session_factory() as s:
        s.add(RecordingInfo(call_id=cid, status="ok", file=str(wav), format="wav", source_files="[]", error="",
                            attempts=1))
        s.commit()
    c = client_for("admin")
    html = c.get(f"/calls/{cid}").get_data(as_text=True)
    assert HOSTILE not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'data-start="0.50"' in html and 'data-start="65.25"' in html and ">1:05</button>" in html
    assert 'class="phrase side-operator"' in html and 'class="phrase side-caller"' in html
    assert 'id="greeting-said" data-said="yes"' in html
    assert "transcript.js" in html and 'id="recording"' in html
    c.post("/language", data={"lang": "ru", "next": f"/calls/{cid}"})
    html = c.get(f"/calls/{cid}").get_data(as_text=True)
    assert "Расшифровка" in html and "Оператор произнёс приветствие" in html and "Звонящий" in html
    with session_factory() as s:
        s.get(Transcript, cid).status = "failed"
        s.get(Transcript, cid).error = "engine exited with status 3: " + HOSTILE
        s.commit()
    html = c.get(f"/calls/{cid}").get_data(as_text=True)
    assert 'id="transcript-error"' in html and HOSTILE not in html


def test_keyword_lists_page(app, csrf_app, session_factory, world, client_for):
    cid = _transcribed(session_factory, world, "3.1", [("caller", 1.0, 2.0, "We want the PRICE list")])
    for role in ("supervisor", "operator"):
        assert client_for(role).get("/settings/keywords").status_code == 403
    c = client_for("admin")
    r = c.post(f"/settings/keywords/{world['project']}",
               data={"name": "Price " + HOSTILE, "words": "pric*\n цена ", "tag": "price talk"})
    assert r.status_code == 302
    html = c.get(f"/settings/keywords?project={world['project']}").get_data(as_text=True)
    assert HOSTILE not in html and "Price &lt;script&gt;" in html
    r = c.post(f"/settings/keywords/{world['project']}", data={"name": "Bad", "words": "de*livery"})
    assert "may only end an entry" in c.get(r.headers["Location"]).get_data(as_text=True)
    c.post(f"/settings/keywords/{world['project']}/reapply")
    with session_factory() as s:
        kl = s.scalars(select(KeywordList)).one()
        assert (kl.words, kl.tag) == ("pric*\nцена", "price talk")
        assert [(m.word, m.side) for m in s.scalars(select(KeywordMention))] == [("pric*", "caller")]
        assert s.scalar(select(Tag).where(Tag.name == "price talk")) is not None
        list_id = kl.id
    c.post(f"/settings/keywords/lists/{list_id}/delete")
    with session_factory() as s:
        assert s.scalars(select(KeywordList)).all() == [] and s.scalars(select(KeywordMention)).all() == []
    # CSRF: a forged post without the token is refused
    cc = csrf_app.test_client()
    cc.post("/login", data={"username": "admin", "password": PASSWORD,
                            "csrf_token": csrf_token(cc.get("/login").get_data(as_text=True))})
    assert cc.post(f"/settings/keywords/{world['project']}", data={"name": "x", "words": "y"}).status_code == 400
    page = cc.get("/settings/keywords").get_data(as_text=True)
    r = cc.post(f"/settings/keywords/{world['project']}",
                data={"csrf_token": csrf_token(page), "name": "x", "words": "y"})
    assert r.status_code == 302
    assert cid


def test_keyword_report_and_csv(app, session_factory, world, client_for):
    _lists(session_factory, world)
    with session_factory() as s:
        s.add(KeywordList(project_id=world["project"], name="=SUM(1,2)", words="ещё"))
        s.commit()
    _transcribed(session_factory, world, "4.1", [("caller", 1.0, 2.0, "доставка и ещё доставка"),
                                                 ("operator", 3.0, 4.0, "we deliver")], operator_id=world["operator"])
    _transcribed(session_factory, world, "4.2", [("caller", 1.0, 2.0, "=cmd|' /C calc'!A0 deliver")], source=False)
    c = client_for("supervisor")
    html = c.get(f"/reports/mentions?project={world['project']}").get_data(as_text=True)
    assert "Google Ads" in html and "Delivery" in html
    body = c.get(f"/reports/mentions.csv?project={world['project']}&by=source").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert rows == [["Source", "Keyword list", "Mentions", "Calls"], ["", "Delivery", "1", "1"],
                    ["Google Ads", "'=SUM(1,2)", "1", "1"], ["Google Ads", "Delivery", "2", "1"]]
    body = c.get(f"/reports/mentions.csv?project={world['project']}&by=operator").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert rows[0][0] == "Operator" and ["Olga", "Delivery", "2", "1"] in rows
    assert client_for("operator").get("/reports/mentions").status_code == 403


def test_backlog_on_the_jobs_page_and_in_metrics(db_url, session_factory, world, tmp_path):
    cid = add_call(session_factory, world["project"], "5.1")
    with session_factory() as s:
        s.add(RecordingInfo(call_id=cid, status="ok", file=str(tmp_path / "x.wav"), format="wav",
                            source_files="[]", error="", attempts=1))
        s.commit()
    for backend, waiting in (("none", 0), ("pocketsphinx", 1)):
        app = create_app(make_config(db_url, transcripts__backend=backend), session_factory, testing=True)
        app.config["WTF_CSRF_ENABLED"] = False
        c = app.test_client()
        assert login(c, "admin").status_code == 302
        html = c.get("/settings/integrations/").get_data(as_text=True)
        assert f"Transcripts (backend {backend}): {waiting} recorded call(s) waiting" in html
        text = c.get("/metrics").get_data(as_text=True)
        assert f"calltracking_transcripts_backlog {waiting}.0" in text
        assert 'calltracking_transcripts{status="failed"} 0.0' in text
