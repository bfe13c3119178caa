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
    assert b"invalid amount" in r.data
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
