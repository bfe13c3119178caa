"""End to end: visitor → number (HTTP) → call through FastAGI (agi.server.run_agi) → attributed."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from calltracking.db import session_scope
from calltracking.models import Call, VisitorSession

from support.agi_server import Agi
from support.dni import make_project
from support.web import LiveServer, post_json

@pytest.fixture
def servers(db_url, session_factory):
    make_project(session_factory, pool_size=2, origins="https://shop.example", promo_mode="exhausted")
    web = LiveServer(db_url, session_factory)
    agi = Agi(db_url, session_factory)
    yield web, agi
    agi.close()
    web.close()


def test_session_number_call_attributed(servers, session_factory):
    web, agi = servers
    st, a, _ = post_json(web.url + "/api/dni/assign", {
        "project": "acme", "utm_source": "google", "utm_medium": "cpc", "utm_campaign": "brand_spring",
        "utm_term": "pizza near me", "gclid": "g-1"}, {"Origin": "https://shop.example"})
    assert st == 200 and a["kind"] == "pool"
    st, b, _ = post_json(web.url + "/api/dni/assign", {"project": "acme", "utm_source": "billboard-flyer",
                                                       "utm_term": "other"}, {"Origin": "https://shop.example"})
    assert b["number"] != a["number"]
    v = agi.call("route", (a["number"].lstrip("+"), "e2e.1"))
    assert v["CT_ATTRIBUTION"] == "dynamic" and v["CT_PROJECT"] == "acme"
    assert v["CT_SOURCE"] == "Google Ads" and v["CT_CONFIDENCE"] == "1.000"
    with session_scope(session_factory) as s:
        call = s.scalars(select(Call).where(Call.linkedid == "e2e.1")).one()
        assert call.session_id == a["session"] and call.attribution == "dynamic"
        vs = s.get(VisitorSession, call.session_id)
        assert (vs.utm_source, vs.utm_campaign, vs.keyword, vs.gclid) == (
            "google", "brand_spring", "pizza near me", "g-1")
        assert call.time_to_call_seconds is not None and call.time_to_call_seconds >= 0


def test_exhausted_pool_promo_code_typed_in_ivr(servers, session_factory):
    web, agi = servers
    site = {"Origin": "https://shop.example"}
    for i in range(2):
        post_json(web.url + "/api/dni/assign", {"project": "acme", "utm_term": f"k{i}"}, site)
    st, c, _ = post_json(web.url + "/api/dni/assign", {"project": "acme", "utm_source": "google",
                                                       "utm_term": "late visitor"}, site)
    assert c["kind"] == "fallback" and c["promo"]
    v = agi.call("route", (c["number"].lstrip("+"), "e2e.2"))
    assert v["CT_ATTRIBUTION"] == "none"                      # the fallback number alone says nothing
    v = agi.call("promo", ("e2e.2",), digits=[c["promo"]])
    assert v["CT_PROMO"] == "valid" and v["CT_ATTRIBUTION"] == "promo" and v["CT_SOURCE"] == "Google Ads"
    with session_scope(session_factory) as s:
        call = s.scalars(select(Call).where(Call.linkedid == "e2e.2")).one()
        assert call.session_id == c["session"] and call.attribution == "promo"
        assert s.get(VisitorSession, call.session_id).keyword == "late visitor"
