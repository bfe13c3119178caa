"""POST /api/dni/callback over real sockets, on both DNI listeners (the web port's waitress path
and the asyncio DNI server) and both databases: the request stored with its visit, the widget's
settings in the assign answer, refused numbers, forged visitor ids, floods, the cooldown that
must not tell anything, the hourly cap."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from calltracking.db import session_scope
from calltracking.dni.guard import VisitorSigner
from calltracking.models import CallbackRequest, VisitorSession

from support.callback_widget import SITE, closed_until_tomorrow, enable_callbacks
from support.dni import make_project
from support.web import post_json

H = {"Origin": SITE}
PROXY = {"web__trusted_proxies": "127.0.0.1/8, ::1"}


def assign(srv, body=None, headers=None):
    return post_json(srv.url + "/api/dni/assign", {"project": "acme", **(body or {})}, headers or H)


def callback(srv, visitor_id, phone, headers=None, project="acme"):
    return post_json(srv.url + "/api/dni/callback", {"project": project, "visitor_id": visitor_id, "phone": phone},
                     headers or H)


def visitor(srv, headers=None, **tags) -> str:
    st, body, _ = assign(srv, tags, headers)
    assert st == 200
    return body["visitor_id"]


def stored(factory) -> list:
    with session_scope(factory) as s:
        return [(r.phone, r.visitor_id, r.status, r.session_id, r.source_id, r.client_key)
                for r in s.scalars(select(CallbackRequest).order_by(CallbackRequest.id))]


def test_a_request_is_accepted_and_stored_with_its_visit(start, project, session_factory):
    srv = start()
    st, body, headers = assign(srv, {"utm_source": "google", "utm_campaign": "brand_spring"})
    assert body["widget_config"] == {"enabled": True, "delay_seconds": 7, "open_now": True, "next_open": None}
    vid = body["visitor_id"]
    st, out, headers = callback(srv, vid, "8 (916) 123-45-67")
    assert (st, out) == (202, {"status": "queued", "at": None})
    assert headers["Access-Control-Allow-Origin"] == SITE and headers["Cache-Control"] == "no-store"
    with session_scope(session_factory) as s:
        vs = s.scalars(select(VisitorSession)).one()
        assert stored(session_factory) == [("+79161234567", vid, "pending", vs.id, project["google"], "127.0.0.1")]


def test_outside_the_opening_hours_the_visitor_is_told_when(start, session_factory):
    ids = make_project(session_factory, origins=SITE)
    schedule, opening = closed_until_tomorrow()
    enable_callbacks(session_factory, ids["project"], schedule=schedule)
    srv = start()
    body = assign(srv)[1]
    assert body["widget_config"]["open_now"] is False
    assert dt.datetime.fromisoformat(body["widget_config"]["next_open"]) == opening
    st, out, _ = callback(srv, body["visitor_id"], "+7 495 123 45 67")
    assert st == 202 and out["status"] == "scheduled"
    assert out["at"].endswith("Z") and dt.datetime.fromisoformat(out["at"]) == opening


def test_a_project_without_callbacks(start, session_factory):
    make_project(session_factory, origins=SITE)
    srv = start()
    body = assign(srv)[1]
    assert body["widget_config"] is None                          # the snippet shows no widget
    st, out, _ = callback(srv, body["visitor_id"], "+7 916 123 45 67")
    assert st == 422 and out["error"] == "disabled" and out["message"]
    assert stored(session_factory) == []


def test_refused_numbers_say_why_and_store_nothing(start, project, session_factory):
    srv = start()
    vid = visitor(srv)
    cases = {"": "empty", "+7 916 CALL-ME": "characters", "<script>alert(1)</script>": "characters",
             "9" * 40: "too_long", "+7 916 12": "invalid", "+1 212 555 1234": "region",
             "+7 800 555 35 35": "toll_free", "+7 809 505 12 34": "premium_rate"}
    for phone, code in cases.items():
        st, out, headers = callback(srv, vid, phone)
        assert (st, out["error"]) == (422, code), phone
        assert out["message"] and "<" not in out["message"]
        assert headers["Access-Control-Allow-Origin"] == SITE
    st, out, _ = callback(srv, vid, 79161234567)                  # not a string
    assert (st, out["error"]) == (422, "phone")
    assert stored(session_factory) == []
    # None of them used up the visitor's requests.
    assert callback(srv, vid, "+7 (701) 123-45-67")[0] == 202     # Kazakhstan is allowed


def test_forged_visitor_ids_are_refused(start, project, session_factory):
    srv = start()
    real = visitor(srv)
    forged = ["attacker-chosen-1", VisitorSigner("another secret").new(),
              real[:-2] + ("AA" if real[-2:] != "AA" else "BB"), "", None, 12345, "v" * 48]
    for vid in forged:
        st, out, _ = callback(srv, vid, "+7 916 123 45 67")
        assert (st, out["error"]) == (422, "visitor_id"), vid
    assert stored(session_factory) == []
    assert callback(srv, real, "+7 916 123 45 67")[0] == 202


def test_a_visitor_gets_a_few_requests_an_hour(start, project, session_factory):
    srv = start()
    vid = visitor(srv)
    codes = [callback(srv, vid, f"+7 916 123 45 6{i}") for i in range(5)]
    assert [c[0] for c in codes] == [202, 202, 202, 429, 429]    # [dni] callback_per_visitor = 3
    assert codes[3][1]["error"] == "visitor_limit" and codes[3][2]["Retry-After"] == "1200"
    assert len(stored(session_factory)) == 3
    assert callback(srv, visitor(srv), "+7 916 123 45 69")[0] == 202    # another visitor is not affected


def test_a_flood_from_one_client_is_cut(start, project, session_factory):
    """Exposed directly: a made-up X-Forwarded-For does not make the attacker many clients, and
    new visitor ids do not help either."""
    srv = start(DNI_CALLBACK_PER_CLIENT=6)
    codes = []
    for i in range(10):
        forged = {**H, "X-Forwarded-For": f"198.51.100.{i}"}
        codes.append(callback(srv, visitor(srv, forged), f"+7 916 000 00 {i:02d}", forged)[0])
    assert codes == [202] * 6 + [429] * 4
    assert len(stored(session_factory)) == 6


def test_behind_a_trusted_proxy_each_visitor_is_one_client(start, project, session_factory):
    srv = start(config=PROXY, DNI_CALLBACK_PER_CLIENT=2)
    attacker = {**H, "X-Forwarded-For": "10.0.0.1, 203.0.113.9"}
    got = [callback(srv, visitor(srv, attacker), f"+7 916 000 01 {i:02d}", attacker)[0] for i in range(4)]
    assert got == [202, 202, 429, 429]
    other = {**H, "X-Forwarded-For": "203.0.113.10"}
    assert callback(srv, visitor(srv, other), "+7 916 000 02 00", other)[0] == 202
    assert {r[5] for r in stored(session_factory)} == {"203.0.113.9", "203.0.113.10"}


def test_the_cooldown_does_not_tell_whether_a_number_was_asked_for(start, session_factory):
    """A second request for the same number (another visitor, another client) gets the answer a
    first request would get, and the PBX is not asked to call again."""
    for j, schedule in enumerate(("", closed_until_tomorrow()[0])):
        with session_scope(session_factory) as s:
            s.query(CallbackRequest).delete()
        key = f"p{j}"
        ids = make_project(session_factory, key=key, origins=SITE, base=74950005000 + 100 * j)
        enable_callbacks(session_factory, ids["project"], schedule=schedule)
        srv = start(config=PROXY)
        answers = []
        for i, phone in enumerate(("+7 916 555 00 11", "+7 916 555 00 11", "+7 916 555 00 22")):
            h = {**H, "X-Forwarded-For": f"203.0.113.{i + 20}"}
            vid = post_json(srv.url + "/api/dni/assign", {"project": key}, h)[1]["visitor_id"]
            answers.append(callback(srv, vid, phone, h, project=key)[:2])
        assert answers[0] == answers[1] == answers[2]
        assert answers[0][0] == 202 and answers[0][1]["status"] == ("scheduled" if schedule else "queued")
        assert sorted(r[0] for r in stored(session_factory)) == ["+79165550011", "+79165550022"]


def test_the_hourly_cap_of_calls(start, session_factory):
    ids = make_project(session_factory, origins=SITE)
    enable_callbacks(session_factory, ids["project"], max_calls_per_hour=2)
    srv = start(config=PROXY)
    got = []
    for i in range(3):
        h = {**H, "X-Forwarded-For": f"203.0.113.{i + 40}"}
        got.append(callback(srv, visitor(srv, h), f"+7 916 777 00 0{i}", h))
    assert [g[0] for g in got] == [202, 202, 429]
    assert got[2][1]["error"] == "hourly_limit" and got[2][1]["message"]
    # while the cap is full, a number inside its cooldown gets the same refusal as a new one
    h = {**H, "X-Forwarded-For": "203.0.113.49"}
    again = callback(srv, visitor(srv, h), "+7 916 777 00 00", h)
    assert again[:2] == got[2][:2]
    assert len(stored(session_factory)) == 2


def test_cors_origin_and_body_limits_are_those_of_assign(start, project, session_factory):
    srv = start(DNI_RATE_BURST=5, DNI_RATE_PER_MINUTE=1)
    vid = visitor(srv)
    assert callback(srv, vid, "+7 916 123 45 67", {"Origin": "https://evil.example"})[0] == 403
    assert callback(srv, vid, "+7 916 123 45 67", {"X-Other": "no origin"})[0] == 403
    st, out, _ = post_json(srv.url + "/api/dni/callback", None, H, raw=b"{not json")
    assert st == 400
    st, out, _ = post_json(srv.url + "/api/dni/callback", None, H, raw=b'{"project":"acme","phone":"' + b"9" * 9000
                           + b'"}')
    assert st == 413
    # the sixth request of the burst of five: the shared rate limit
    assert callback(srv, vid, "+7 916 123 45 67")[0] == 429
    assert stored(session_factory) == []


def test_preflight_is_answered(start, project):
    import urllib.request

    srv = start()
    req = urllib.request.Request(srv.url + "/api/dni/callback", method="OPTIONS",
                                 headers={"Origin": SITE, "Access-Control-Request-Method": "POST",
                                          "Access-Control-Request-Headers": "content-type"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 204
        assert r.headers["Access-Control-Allow-Origin"] == SITE
        assert "POST" in r.headers["Access-Control-Allow-Methods"]


def test_both_listeners_share_the_limits(db_url, project, session_factory):
    """``calltracking web`` starts the DNI server on the web application's DniApi: a visitor's
    requests count the same on either port."""
    from types import SimpleNamespace

    from support.web import LiveServer
    from webui.dni_server import DniServer

    web = LiveServer(db_url, session_factory)
    fast = DniServer(web.app.extensions["dni_api"], "127.0.0.1", 0).start()
    try:
        fast_url = SimpleNamespace(url=f"http://127.0.0.1:{fast.port}")
        vid = visitor(web)
        got = [callback(srv, vid, f"+7 916 321 00 0{i}")[0] for i, srv in enumerate((web, fast_url, web, fast_url))]
        assert got == [202, 202, 202, 429]
        assert len(stored(session_factory)) == 3
    finally:
        fast.close()
        web.close()
