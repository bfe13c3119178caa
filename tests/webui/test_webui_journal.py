"""Call journal: filters, keyset pages, CSV export; call card: timeline, edits, recording."""
import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from sqlalchemy import select

from calltracking.models import AuditLog, Call, Tag, VisitorSession, utcnow
from support.web import add_call

pytestmark = pytest.mark.db


def ids_on(html):
    return [int(x) for x in re.findall(r'data-call-id="(\d+)"', html)]


def test_filters(client_for, session_factory, world):
    base = utcnow().replace(microsecond=0) - dt.timedelta(days=3)
    a = add_call(session_factory, world["project"], "a", caller="+74951000001", source_id=world["source"],
                 operator_id=world["operator"], started=base, first_call=True, campaign_id=world["campaign"])
    b = add_call(session_factory, world["project"], "b", caller="+74951000002", status="missed",
                 started=base + dt.timedelta(days=1), first_call=False)
    c = add_call(session_factory, world["project"], "c", caller="+74951000001", status="in_progress",
                 started=base + dt.timedelta(days=2), first_call=False)
    s = session_factory()
    call = s.get(Call, b)
    call.tags = [Tag(project_id=world["project"], name="lead")]
    s.commit()
    s.close()
    cl = client_for("admin")

    def q(**params):
        r = cl.get("/calls", query_string=params)
        assert r.status_code == 200
        return ids_on(r.get_data(as_text=True))

    assert q() == [c, b, a]                                  # newest first
    assert q(status="missed") == [b]
    assert q(status="in_progress") == [c]
    assert q(source=world["source"]) == [a]
    assert q(campaign=world["campaign"]) == [a]
    assert q(operator=world["operator"]) == [a]
    assert q(first="first") == [a]
    assert q(first="repeat") == [c, b]
    assert q(tag="lead") == [b]
    assert q(caller="8 (495) 100-00-01") == [c, a]          # any readable form
    assert q(caller="000002") == [b]                       # partial digits
    assert q(project=world["project"]) == [c, b, a]
    day_b = (base + dt.timedelta(days=1)).astimezone(dt.timezone(dt.timedelta(hours=3))).date().isoformat()
    assert q(**{"from": day_b, "to": day_b, "project": world["project"]}) == [b]
    assert q(**{"from": day_b}) == [c, b]


def test_keyset_pages(client_for, session_factory, world):
    t0 = utcnow() - dt.timedelta(days=1)
    s = session_factory()
    # 120 calls, some sharing a start time (the id breaks ties)
    for i in range(120):
        s.add(Call(pbx_id="pbx1", linkedid=f"k{i}", project_id=world["project"], status="answered",
                   started_at=t0 + dt.timedelta(seconds=i // 2), caller_number="+74951000003"))
    s.commit()
    every = [cid for (cid,) in s.execute(select(Call.id).order_by(Call.started_at.desc(), Call.id.desc()))]
    s.close()
    cl = client_for("supervisor")
    seen, url, pages = [], "/calls", []
    while url:
        html = cl.get(url).get_data(as_text=True)
        page = ids_on(html)
        pages.append(page)
        seen += page
        m = re.search(r'href="([^"]+)" id="next-page"', html)
        url = m.group(1).replace("&amp;", "&") if m else None
    assert seen == every and [len(p) for p in pages] == [50, 50, 20]
    # back from the last page gives the middle page again
    html = cl.get("/calls?page=last").get_data(as_text=True)
    assert ids_on(html) == every[-50:]
    prev = re.search(r'href="([^"]+)" id="prev-page"', html).group(1).replace("&amp;", "&")
    assert ids_on(cl.get(prev).get_data(as_text=True)) == every[-100:-50]


def test_csv_export_follows_filters(client_for, session_factory, world):
    a = add_call(session_factory, world["project"], "e1", caller="+74951000004", source_id=world["source"])
    add_call(session_factory, world["project"], "e2", caller="+74951000005", status="missed")
    r = client_for("admin").get("/calls/export.csv", query_string={"status": "answered"})
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
    assert [row["linkedid"] for row in rows] == ["e1"] and rows[0]["source"] == "Google Ads"
    assert rows[0]["caller"] == "+74951000004" and a
    assert client_for("admin").get("/calls/export.csv?from=bad").status_code == 400


def test_operator_sees_only_own_calls(client_for, session_factory, world):
    mine = add_call(session_factory, world["project"], "o1", operator_id=world["operator"])
    other = add_call(session_factory, world["project"], "o2", operator_id=world["operator2"])
    c = client_for("operator")
    assert ids_on(c.get("/calls").get_data(as_text=True)) == [mine]
    assert c.get(f"/calls/{mine}").status_code == 200
    assert c.get(f"/calls/{other}").status_code == 403


def test_call_card_details_and_edit(client_for, session_factory, world):
    s = session_factory()
    vs = VisitorSession(project_id=world["project"], visitor_id="v1", utm_source="google", utm_medium="cpc",
                        utm_campaign="spring", utm_term="buy sofa", keyword="buy sofa",
                        landing_page="https://shop.example/sofas", device="mobile", os="Android",
                        browser="Chrome", first_seen=utcnow() - dt.timedelta(hours=1))
    s.add(vs)
    s.commit()
    vid = vs.id
    s.close()
    cid = add_call(session_factory, world["project"], "c1", operator_id=world["operator"], source_id=world["source"],
                   session_id=vid, attribution="dynamic", attribution_confidence=Decimal("0.5"), candidate_count=2,
                   queued_at=utcnow() - dt.timedelta(minutes=5) + dt.timedelta(seconds=1), queue="sales")
    c = client_for("supervisor")
    html = c.get(f"/calls/{cid}").get_data(as_text=True)
    for text in ("buy sofa", "https://shop.example/sofas", "mobile", "Android", "50 %", "2 candidate sessions",
                 "queued in sales", "rang operator Olga", "Olga answered", "hung up", "Europe/Moscow"):
        assert text in html, text
    # times are shown in the project's time zone (UTC+3)
    s = session_factory()
    started = s.get(Call, cid).started_at
    s.close()
    assert started.astimezone(dt.timezone(dt.timedelta(hours=3))).strftime("%Y-%m-%d %H:%M:%S") in html
    r = c.post(f"/calls/{cid}", data={"tags": "lead, vip, lead", "value": "1 500,50", "reason": "deal",
                                      "comment": "called about sofas"})
    assert r.status_code == 302
    s = session_factory()
    call = s.get(Call, cid)
    assert sorted(t.name for t in call.tags) == ["lead", "vip"]
    assert call.value == Decimal("1500.50") and call.closed_reason == "deal" and call.comment == "called about sofas"
    log = s.scalars(select(AuditLog).where(AuditLog.entity == "call")).one()
    assert log.username == "super" and "vip" in log.details
    s.close()
    r = c.post(f"/calls/{cid}", data={"tags": "", "value": "-5", "reason": "", "comment": ""},
               follow_redirects=True)
    assert "Invalid amount “-5”".encode() in r.data
    s = session_factory()
    assert s.get(Call, cid).value == Decimal("1500.50")
    s.close()


def test_recording_served_only_when_present(client_for, session_factory, world, tmp_path):
    wav = tmp_path / "rec1.wav"
    wav.write_bytes(b"RIFF" + b"\0" * 100)
    ok = add_call(session_factory, world["project"], "r1", recording_file="rec1.wav", operator_id=world["operator"])
    gone = add_call(session_factory, world["project"], "r2", recording_file=str(tmp_path / "gone.wav"))
    bad = add_call(session_factory, world["project"], "r3", recording_file="/etc/passwd")
    c = client_for("admin")
    r = c.get(f"/calls/{ok}/recording")
    assert r.status_code == 200 and r.mimetype == "audio/wav" and r.data.startswith(b"RIFF")
    assert 'id="recording"' in c.get(f"/calls/{ok}").get_data(as_text=True)
    r = c.get(f"/calls/{gone}/recording")
    assert r.status_code == 404 and b"missing" in r.data
    assert "The recording file is missing." in c.get(f"/calls/{gone}").get_data(as_text=True)
    assert c.get(f"/calls/{bad}/recording").status_code == 404       # not an audio file: never served
    assert client_for("operator").get(f"/calls/{ok}/recording").status_code == 200   # own call
    anon = client_for(None).get(f"/calls/{ok}/recording")
    assert anon.status_code == 302


def test_call_card_shows_recording_analysis(client_for, session_factory, world):
    from calltracking.models import RecordingInfo

    cid = add_call(session_factory, world["project"], "rec1", operator_id=world["operator"],
                   source_id=world["source"])
    c = client_for("supervisor")
    assert 'id="recording-analysis"' not in c.get(f"/calls/{cid}").get_data(as_text=True)
    s = session_factory()
    s.add(RecordingInfo(call_id=cid, status="ok", duration_seconds=Decimal("95.2"),
                        caller_talk_seconds=Decimal("30.0"), operator_talk_seconds=Decimal("50.0"),
                        talk_ratio=Decimal("0.625"), longest_silence_seconds=Decimal("7.5"), channels=2))
    s.commit()
    s.close()
    html = c.get(f"/calls/{cid}").get_data(as_text=True)
    part = html.split('id="recording-analysis"', 1)[1].split("</dl>", 1)[0]
    for text in ("1:35", "0:30", "0:50", "62 %", "7.5"):
        assert text in part, text


def test_call_value_is_read_in_the_users_language_and_a_bad_one_keeps_the_form(client_for, session_factory,
                                                                              world):
    cid = add_call(session_factory, world["project"], "v1")
    c = client_for("supervisor")
    r = c.post(f"/calls/{cid}", data={"tags": "deal", "value": "1,234.56", "reason": "", "comment": ""})
    assert r.status_code == 302
    s = session_factory()
    assert s.get(Call, cid).value == Decimal("1234.56")
    s.close()
    # a mistyped amount: the error quotes what was typed, the tags and comment just typed stay in the form
    r = c.post(f"/calls/{cid}", data={"tags": "lead, vip", "value": "1.234.56", "reason": "won",
                                      "comment": "wants <b>two</b> sofas"})
    html = r.get_data(as_text=True)
    assert r.status_code == 400
    assert "Invalid amount “1.234.56”" in html and "1.234.56.56" not in html
    form = re.search(r'<form method="post" id="call-edit">(.*?)</form>', html, re.S).group(1)
    assert 'value="lead, vip"' in form and 'value="1.234.56"' in form and 'value="won"' in form
    assert "wants &lt;b&gt;two&lt;/b&gt; sofas</textarea>" in form
    s = session_factory()
    call = s.get(Call, cid)
    assert call.value == Decimal("1234.56") and [t.name for t in call.tags] == ["deal"] and call.comment == ""
    s.close()
    # in Russian, "1 234,56" is the same amount
    assert c.post("/language", data={"lang": "ru"}).status_code == 302
    r = c.post(f"/calls/{cid}", data={"tags": "", "value": "2 345,50", "reason": "", "comment": ""})
    assert r.status_code == 302
    s = session_factory()
    assert s.get(Call, cid).value == Decimal("2345.50")
    s.close()


def api_headers(session_factory, username):
    from calltracking.models import User
    from webui.auth import new_api_token

    s = session_factory()
    token = new_api_token(s.scalars(select(User).where(User.username == username)).one())
    s.commit()
    s.close()
    return {"Authorization": f"Bearer {token}"}


def test_operator_follows_every_link_to_other_calls_from_the_number(client_for, session_factory, world):
    t = utcnow() - dt.timedelta(hours=5)
    number = "+74951230000"
    mine = add_call(session_factory, world["project"], "h1", caller=number, operator_id=world["operator"], started=t)
    rung = add_call(session_factory, world["project"], "h2", caller=number, status="missed",
                    started=t + dt.timedelta(hours=1), operator_id=world["operator"])
    s = session_factory()
    s.get(Call, rung).operator_id = None        # rung for (a leg), not answered by them
    s.commit()
    s.close()
    other = add_call(session_factory, world["project"], "h3", caller=number, operator_id=world["operator2"],
                     started=t + dt.timedelta(hours=2))
    nobody = add_call(session_factory, world["project"], "h4", caller=number, status="missed",
                      started=t + dt.timedelta(hours=3))
    c = client_for("operator")
    html = c.get(f"/calls/{mine}").get_data(as_text=True)
    links = [int(x) for x in re.findall(r'href="/calls/(\d+)"', html)]
    assert links == [rung]                      # only what the operator may open
    for cid in links:
        assert c.get(f"/calls/{cid}").status_code == 200
    for cid in (other, nobody):
        assert c.get(f"/calls/{cid}").status_code == 403
        assert c.get(f"/api/calls/{cid}", headers=api_headers(session_factory, "oper")).status_code == 403
    assert c.get(f"/api/calls/{rung}", headers=api_headers(session_factory, "oper")).status_code == 200
    # the journal link of the number shows the same calls
    journal = c.get(f"/calls?caller={number.replace('+', '%2B')}").get_data(as_text=True)
    assert sorted(ids_on(journal)) == sorted([mine, rung])
    assert sorted(ids_on(client_for("supervisor").get(f"/calls?caller=%2B{number[1:]}")
                         .get_data(as_text=True))) == sorted([mine, rung, other, nobody])


def test_audit_log_stores_tags_as_a_json_list(client_for, session_factory, world):
    import json

    cid = add_call(session_factory, world["project"], "a1")
    c = client_for("supervisor")
    assert c.patch(f"/api/calls/{cid}", json={"tags": ["deal", "api"], "value": "10"},
                   headers=api_headers(session_factory, "super")).status_code == 200
    assert c.post(f"/calls/{cid}", data={"tags": "deal, card", "value": "", "reason": "",
                                         "comment": ""}).status_code == 302
    s = session_factory()
    api_log, card_log = [json.loads(a.details) for a in s.scalars(
        select(AuditLog).where(AuditLog.entity == "call").order_by(AuditLog.id))]
    s.close()
    assert api_log["tags"] == ["api", "deal"] and api_log["value"] == "10.00" and api_log["api"] is True
    assert card_log["before"]["tags"] == ["api", "deal"] and card_log["after"]["tags"] == ["card", "deal"]


def test_total_count_sorting_and_name_search(client_for, session_factory, world):
    from calltracking.calls import journal

    base = utcnow().replace(microsecond=0) - dt.timedelta(days=1)
    ids = {}
    s = session_factory()
    for i in range(130):
        c = Call(pbx_id="pbx1", linkedid=f"s{i}", project_id=world["project"], did="+74950001001",
                 caller_number=f"+7495{i:07d}", caller_name="Иван Петров" if i % 10 == 0 else f"Client {i}",
                 status="answered" if i % 4 else "missed", started_at=base + dt.timedelta(seconds=i // 2),
                 wait_seconds=Decimal(i % 7), talk_seconds=Decimal(i % 13) * 10 if i % 4 else None)
        s.add(c)
        s.flush()
        ids[c.id] = c
    s.commit()
    want_talk = [c.id for c in sorted(ids.values(), key=lambda c: (-(c.talk_seconds or 0), -c.id))]
    want_wait_asc = [c.id for c in sorted(ids.values(), key=lambda c: (c.wait_seconds, c.id))]
    s.close()
    cl = client_for("supervisor")
    html = cl.get("/calls").get_data(as_text=True)
    assert re.search(r'id="calls-total">\s*130 calls', html)

    def walk(url):
        seen, html = [], cl.get(url).get_data(as_text=True)
        seen += ids_on(html)
        while (m := re.search(r'href="([^"]*after=[^"]*)" id="next-page"', html)):
            html = cl.get(m.group(1).replace("&amp;", "&")).get_data(as_text=True)
            seen += ids_on(html)
        back = ids_on(html)
        while (m := re.search(r'href="([^"]*before=[^"]*)" id="prev-page"', html)):
            html = cl.get(m.group(1).replace("&amp;", "&")).get_data(as_text=True)
            back = ids_on(html) + back
        assert back == seen              # the way back shows the same rows
        return seen

    assert walk("/calls?sort=-talk") == want_talk
    assert walk("/calls?sort=wait") == want_wait_asc
    # the header links toggle the order and keep the filters
    html = cl.get("/calls?sort=-talk&status=answered").get_data(as_text=True)
    assert 'href="/calls?sort=talk&amp;status=answered"' in html or 'href="/calls?status=answered&amp;sort=talk"' in html
    assert cl.get("/calls?sort=drop").status_code == 200 and "invalid sort" in cl.get("/calls?sort=drop").get_data(as_text=True)
    # search by caller name, whatever the case; Russian count grammar
    named = [cid for cid, c in ids.items() if c.caller_name == "Иван Петров"]
    for q in ("иван", "Петров", "ИВАН"):
        assert sorted(ids_on(cl.get("/calls", query_string={"name": q}).get_data(as_text=True))) == sorted(named)
    assert ids_on(cl.get("/calls", query_string={"name": "%"}).get_data(as_text=True)) == []
    assert cl.post("/language", data={"lang": "ru"}).status_code == 302
    assert re.search(r'id="calls-total">\s*13 звонков', cl.get("/calls?name=иван").get_data(as_text=True))
    # above the cap the figure says "more than"
    with session_factory() as s:
        assert journal.count(s, journal.JournalFilter(), cap=100) == (100, False)
        assert journal.count(s, journal.JournalFilter(status="missed")) == (33, True)


def test_saved_filters_belong_to_their_user(client_for, session_factory, world):
    from calltracking.models import SavedFilter

    a = add_call(session_factory, world["project"], "f1", status="missed")
    b = add_call(session_factory, world["project"], "f2")
    sup = client_for("supervisor")
    r = sup.post("/calls/filters", data={"filter_name": "Missed <today>", "status": "missed", "caller": "",
                                         "csrf_token": "x", "after": "junk"})
    assert r.status_code == 302 and "status=missed" in r.headers["Location"]
    html = sup.get("/calls").get_data(as_text=True)
    box = re.search(r'<div class="saved-filters" id="saved-filters">(.*?)</div>', html, re.S).group(1)
    assert "Missed &lt;today&gt;" in box and "<today>" not in box
    link = re.search(r'<a href="(/calls\?[^"]*)">Missed', box).group(1).replace("&amp;", "&")
    assert ids_on(sup.get(link).get_data(as_text=True)) == [a]
    # saving again under the same name replaces it; another user neither sees nor deletes it
    sup.post("/calls/filters", data={"filter_name": "Missed <today>", "status": "answered"})
    with session_factory() as s:
        saved = s.scalars(select(SavedFilter)).all()
        assert [(f.name, f.query) for f in saved] == [("Missed <today>", "status=answered")]
        fid = saved[0].id
    adm = client_for("admin")
    assert "Missed &lt;today&gt;" not in adm.get("/calls").get_data(as_text=True)
    assert adm.post(f"/calls/filters/{fid}/delete").status_code == 404
    assert "Give the filter a name." in sup.post("/calls/filters", data={"filter_name": " "},
                                                 follow_redirects=True).get_data(as_text=True)
    assert sup.post(f"/calls/filters/{fid}/delete").status_code == 302
    with session_factory() as s:
        assert s.scalars(select(SavedFilter)).all() == []
    assert b


def test_recordings_play_in_the_list(client_for, session_factory, world, app):
    rec = add_call(session_factory, world["project"], "p1", recording_file="p1.wav")
    plain = add_call(session_factory, world["project"], "p2")
    html = client_for("supervisor").get("/calls").get_data(as_text=True)
    row = re.search(rf'<tr class="answered" data-call-id="{rec}">(.*?)</tr>', html, re.S).group(1)
    assert f'<audio controls preload="none" src="/calls/{rec}/recording"' in row
    other = re.search(rf'<tr class="answered" data-call-id="{plain}">(.*?)</tr>', html, re.S).group(1)
    assert "<audio" not in other


def test_audit_log_page_shows_tags_as_tags(client_for, session_factory, world):
    cid = add_call(session_factory, world["project"], "a2")
    c = client_for("supervisor")
    assert c.post(f"/calls/{cid}", data={"tags": "deal, <b>x</b>", "value": "", "reason": "",
                                         "comment": ""}).status_code == 302
    html = client_for("admin").get("/settings/audit").get_data(as_text=True)
    after = re.search(r'<div class="audit-tags">tags after: (.*?)</div>', html).group(1)
    assert re.findall(r'<span class="badge">(.*?)</span>', after) == ["&lt;b&gt;x&lt;/b&gt;", "deal"]
