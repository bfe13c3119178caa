"""Fixtures of the AGI tests: a FastAGI server in a thread, a clock, a small data set."""
from __future__ import annotations

import datetime as dt

import pytest

from calltracking import entities as svc
from calltracking.attribution.catalogue import HookCache
from calltracking.db import session_scope
from calltracking.models import PromoCode
from support.agi_server import Clock, ServerThread
from support.config import make_config


@pytest.fixture
def clock():
    return Clock(dt.datetime(2026, 3, 4, 9, 30, tzinfo=dt.timezone.utc))   # a Wednesday


@pytest.fixture
def config(db_url):
    return make_config(db_url)


@pytest.fixture
def agi(config, session_factory, clock):
    # The tests change numbers and rules while the server runs: read the catalogue on every
    # call (ttl 0). The background-refreshed snapshot has its own test (test_agi_core.py).
    srv = ServerThread(config, session_factory, clock=clock, header_timeout=1.0,
                       cache=HookCache(rules_ttl=0))
    yield srv
    srv.stop()


@pytest.fixture
def data(session_factory):
    """A project in Moscow time with a static number, a pool and a promo code."""
    with session_scope(session_factory) as s:
        p = svc.add_project(s, "acme", "ACME", timezone="Europe/Moscow", default_queue="sales")
        google = svc.add_source(s, p, "Google Ads", channel="ads", short_label="Google")
        brand = svc.add_campaign(s, google, "brand")
        billboard = svc.add_source(s, p, "Billboard", channel="offline")
        site = svc.add_source(s, p, "Website", channel="referral")
        pool = svc.add_pool(s, p, "website", hold_seconds=900, source=site)
        svc.add_number(s, p, "+74950001001", source=google, campaign=brand)
        svc.add_number(s, p, "+74950001002", source=billboard, callerid_prefix=False, record=False)
        svc.add_number(s, p, "+74950002001", pool=pool)
        svc.add_number(s, p, "+74950002002", pool=pool)
        s.add(PromoCode(project_id=p.id, code="4242", source_id=billboard.id))
        s.flush()
        ids = dict(project=p.id, google=google.id, brand=brand.id, billboard=billboard.id,
                   site=site.id, pool=pool.id)
    return ids
