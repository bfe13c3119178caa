"""Pool sizing from measured traffic, and the `calltracking pools` commands (both DBs)."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from calltracking.dni import assign as dni
from calltracking.dni import holds
from calltracking.dni.request import parse_request
from calltracking.dni import pool_sizing
from calltracking.attribution.lookup import attribute
from calltracking.db import session_scope
from calltracking.models import Call, NumberPool, PoolReservation, utcnow

from support.dni import make_project
from support.web import UA

NOW = dt.datetime(2026, 3, 5, 0, 0, tzinfo=dt.timezone.utc)


def test_erlang_b():
    assert pool_sizing.erlang_b(1.0, 1) == pytest.approx(0.5)
    assert pool_sizing.erlang_b(10.0, 15) == pytest.approx(0.0365, abs=5e-4)
    assert pool_sizing.erlang_b(0.0, 3) == 0.0


def _traffic(factory, visitors=60, hours=3, call_every=4, late_every=0):
    """Visitors over a few hours (hold 900 s), each seen for 5 minutes; some call."""
    start = NOW - dt.timedelta(hours=hours)
    step = dt.timedelta(seconds=hours * 3600 / visitors)
    calls = []
    for i in range(visitors):
        t = start + i * step
        r = dni.assign(factory, parse_request({"project": "acme", "utm_term": f"k{i}"}, UA), t)
        holds.heartbeat(factory, "acme", r.visitor_id, t + dt.timedelta(minutes=5))
        holds.release_expired(factory, t)
        if r.kind == "pool" and i % call_every == 0:
            delay = dt.timedelta(minutes=2 if not (late_every and i % late_every == 0) else 25)
            calls.append((r, t + dt.timedelta(minutes=5) + delay))
    with session_scope(factory) as s:
        for n, (r, at) in enumerate(calls):
            att = attribute(s, r.number, at)
            s.add(Call(pbx_id="pbx1", linkedid=f"sz.{n}", project_id=att.project_id,
                       tracking_number_id=att.tracking_number.id, did=r.number, attribution=att.kind,
                       session_id=att.session_id, candidate_count=att.candidate_count,
                       attribution_confidence=att.confidence, started_at=at,
                       time_to_call_seconds=att.time_to_call(at), status="answered"))
    return calls


def test_sizing_report_from_measured_traffic(session_factory):
    make_project(session_factory, pool_size=20)
    calls = _traffic(session_factory)
    with session_scope(session_factory) as s:
        rows = pool_sizing.report(s, "acme", days=1, now=NOW)
    assert len(rows) == 1
    r = rows[0]
    assert r["sessions"] == 60 and r["peak_per_hour"] == 20 and r["sessions_per_hour"] == 2.5
    # Occupancy = 5 min visit + 15 min hold.
    assert r["occupancy_seconds"] == pytest.approx(1200, abs=1)
    assert r["calls"] == len(calls) == 15 and r["ttc_p50"] == pytest.approx(420, abs=1)
    assert r["collision_rate"] == 0 and r["exhausted_count"] == 0
    # Offered load at the peak: 20/h * 1200 s = 6.67 numbers busy.
    assert 8 <= r["recommended"] <= 20 and r["estimated_collision_rate"] <= 0.01


def test_late_calls_raise_the_recommendation(session_factory):
    make_project(session_factory, pool_size=20)
    _traffic(session_factory, call_every=2, late_every=4)     # half the calls come 25 min after activity
    with session_scope(session_factory) as s:
        late = pool_sizing.report(s, "acme", days=1, now=NOW)[0]
        pool = s.scalars(select(NumberPool)).one()
        st = pool_sizing.measure(s, pool, NOW - dt.timedelta(days=1), NOW)
    assert late["recommended"] is not None
    # Calls 25 min after activity need numbers to stay unused 10 min past the hold.
    est = pool_sizing.estimate(st, late["recommended"])
    assert est["reuse_after_s"] + 900 >= 25 * 60 and est["collision_rate"] <= 0.01
    assert pool_sizing.estimate(st, late["recommended"] - 1)["collision_rate"] > 0.01


def test_no_traffic_no_recommendation(session_factory):
    make_project(session_factory)
    with session_scope(session_factory) as s:
        r = pool_sizing.report(s, now=NOW)[0]
    assert r["recommended"] is None and r["sessions"] == 0


def test_cli_pools(run_cli, session_factory):
    make_project(session_factory, pool_size=3, hold_seconds=60)
    a = dni.assign(session_factory, parse_request({"project": "acme"}, UA),
                   utcnow() - dt.timedelta(minutes=5))
    out = json.loads(run_cli("pools", "list", "acme", "--format", "json").output)
    assert out == [{"project": "acme", "pool": "website", "numbers": 3, "held": 1, "provisional": 1, "free": 2,
                    "pressure": 0.333, "hold_seconds": 60, "exhausted_count": 0, "promo_mode": "off"}]
    assert "released 1 number(s)" in run_cli("pools", "release").output
    with session_scope(session_factory) as s:
        assert s.scalars(select(PoolReservation)).one().released_at is not None
    res = run_cli("pools", "set", "acme", "website", "--hold", "120", "--promo", "exhausted",
                  "--fallback", "8 495 111-22-33")
    assert "hold 120 s, fallback +74951112233, promo exhausted" in res.output
    rows = json.loads(run_cli("pools", "sizing", "--project", "acme", "--format", "json").output)
    assert rows[0]["pool"] == "website" and rows[0]["sessions"] == 1
    table = run_cli("pools", "sizing").output
    assert "recommended" in table
    bad = run_cli("pools", "sizing", "--project", "nope", ok=False)
    assert bad.exit_code == 1 and "project 'nope' not found" in bad.output
    bad = run_cli("pools", "set", "acme", "nope", "--hold", "5", ok=False)
    assert bad.exit_code == 1 and "pool 'nope'" in bad.output
    assert a.number
