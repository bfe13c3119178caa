"""The public endpoints over a real socket (waitress): CORS, bounds, hostile input, rate limit."""
from __future__ import annotations

import http.client
import json

import pytest
from sqlalchemy import select

from calltracking.db import session_scope
from calltracking.models import VisitorSession

from support.dni import SNIPPET_ROOT, make_project
from support.web import UA, LiveServer, post_json

SITE = "https://shop.example"
O = {"Origin": SITE}           # browsers send it with every POST; required when origins are listed


@pytest.fixture
def srv(db_url, session_factory):
    make_project(session_factory, origins=f"{SITE}\nhttps://www.shop.example/  http://127.0.0.1:9")
    s = LiveServer(db_url, session_factory)
    yield s
    s.close()


def test_snippet_is_served(srv):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.request("GET", "/dni.js")
    r = conn.getresponse()
    body = r.read()
    assert r.status == 200 and "javascript" in r.getheader("Content-Type")
    assert body == SNIPPET_ROOT.read_bytes()
    assert "max-age=300" in r.getheader("Cache-Control")


def test_cors_allowed_and_refused_origins(srv):
    st, body, h = post_json(srv.url + "/api/dni/assign", {"project": "acme"}, {"Origin": SITE})
    assert st == 200 and h["Access-Control-Allow-Origin"] == SITE and body["number"]
    assert body["default"] == "+74951234567" and h["Cache-Control"] == "no-store"
    st, _, h = post_json(srv.url + "/api/dni/assign", {"project": "acme"}, {"Origin": "https://www.shop.example"})
    assert st == 200 and h["Access-Control-Allow-Origin"] == "https://www.shop.example"
    st, body, h = post_json(srv.url + "/api/dni/assign", {"project": "acme"}, {"Origin": "https://evil.example"})
    assert st == 403 and "origin" in body["error"] and "Access-Control-Allow-Origin" not in h
    # Preflight for clients that send application/json.
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.request("OPTIONS", "/api/dni/assign", headers={"Origin": SITE, "Access-Control-Request-Method": "POST",
                                                       "Access-Control-Request-Headers": "content-type"})
    r = conn.getresponse()
    r.read()
    assert r.status == 204 and r.getheader("Access-Control-Allow-Origin") == SITE
    assert "Content-Type" in r.getheader("Access-Control-Allow-Headers")


def test_hostile_bodies(srv):
    url = srv.url + "/api/dni/assign"
    st, body, _ = post_json(url, None, raw=b"{not json")
    assert (st, body) == (400, {"error": "invalid JSON body"})
    st, body, _ = post_json(url, None, raw=b"\xff\xfe\x00garbage")
    assert st == 400 and body["error"] == "invalid JSON body"
    st, body, _ = post_json(url, None, raw=b"[1, 2, 3]")
    assert st == 400 and body["error"] == "expected a JSON object"
    st, body, _ = post_json(url, None, raw=json.dumps({"project": "acme", "utm_source": "x" * 20_000}).encode())
    assert st == 413 and "too large" in body["error"]
    st, body, _ = post_json(url, {"project": "acme", "utm_term": ["a"]}, O)
    assert st == 400 and "utm_term" in body["error"]
    st, body, _ = post_json(url, {"project": "no-such"})
    assert st == 404 and "unknown project" in body["error"]
    st, body, _ = post_json(url, {"project": "../../etc"})
    assert st == 400
    st, body, _ = post_json(srv.url + "/api/dni/heartbeat", {"project": "acme", "visitor_id": 5}, O)
    assert st == 400 and "visitor_id" in body["error"]
    # A huge body is refused (by its Content-Length, before parsing).
    st, body, _ = post_json(url, None, raw=b"{" * (3 * 1024 * 1024))
    assert st == 413 and "too large" in body["error"]


def test_script_in_utm_is_stored_as_text_and_returned_as_json(srv, session_factory):
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    st, body, h = post_json(srv.url + "/api/dni/assign", {"project": "acme", "utm_source": evil,
                                                          "utm_term": evil, "referrer": evil}, O)
    assert st == 200 and h["Content-Type"].startswith("application/json")
    with session_scope(session_factory) as s:
        vs = s.get(VisitorSession, body["session"])
        assert vs.utm_source == evil and vs.keyword == evil      # stored verbatim, escaped when shown


def test_rate_limit_per_ip(db_url, session_factory):
    make_project(session_factory, origins="*")
    s = LiveServer(db_url, session_factory, config={"web__trusted_proxies": "127.0.0.1"},
                   DNI_RATE_BURST=5, DNI_RATE_PER_MINUTE=60)
    url = s.url + "/api/dni/assign"
    try:
        # Behind a trusted local reverse proxy: the address it saw (the last hop) is the client.
        one = {"X-Forwarded-For": "203.0.113.50, 198.51.100.7", **O}
        codes = [post_json(url, {"project": "acme"}, one)[0] for _ in range(8)]
        assert codes[:5] == [200] * 5 and codes[5:] == [429] * 3
        st, body, h = post_json(s.url + "/api/dni/heartbeat", {"project": "acme", "visitor_id": "v" * 10}, one)
        assert st == 429 and body["error"] == "too many requests" and h["Retry-After"] == "10"
        # Each client has its own bucket (the left hop was the client's own word: not counted).
        assert post_json(url, {"project": "acme"}, {"X-Forwarded-For": "203.0.113.50", **O})[0] == 200
        # The proxy's own requests (no forwarded address) are one client too, limited like any.
        assert [post_json(url, {"project": "acme"}, O)[0] for _ in range(7)] == [200] * 5 + [429] * 2
    finally:
        s.close()


def test_heartbeat_over_http(srv):
    st, a, _ = post_json(srv.url + "/api/dni/assign", {"project": "acme"}, {"User-Agent": UA, **O})
    assert a["provisional"] is True and a["hold_seconds"] == 60           # until the first heartbeat
    st, hb, _ = post_json(srv.url + "/api/dni/heartbeat", {"project": "acme", "visitor_id": a["visitor_id"]}, O)
    assert st == 200 and hb["number"] == a["number"] and hb["kind"] == "pool"
    assert hb["provisional"] is False and hb["hold_seconds"] == 900
    st, hb, _ = post_json(srv.url + "/api/dni/heartbeat", {"project": "acme", "visitor_id": "unknown-visitor"}, O)
    assert st == 200 and hb["number"] is None


def test_bot_gets_default_over_http(srv, session_factory):
    st, body, _ = post_json(srv.url + "/api/dni/assign", {"project": "acme"},
                            {"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1)", **O})
    assert st == 200 and body["kind"] == "bot" and body["number"] == "+74951230000"
    with session_scope(session_factory) as s:
        assert s.scalars(select(VisitorSession)).first() is None
