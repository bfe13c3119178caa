"""200 simultaneous sessions on a 20-number pool: no number held twice, exhaustion counted."""
from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from calltracking.dni import assign as dni
from calltracking.dni.request import parse_request
from calltracking.db import session_scope
from calltracking.models import NumberPool, PoolReservation, TrackingNumber

from support.dni import FALLBACK, make_project
from support.web import UA, LiveServer, post_json

N_VISITORS, POOL = 200, 20


def check_db(factory, pool_id):
    with session_scope(factory) as s:
        live = s.execute(select(PoolReservation.tracking_number_id, func.count())
                         .where(PoolReservation.released_at.is_(None))
                         .group_by(PoolReservation.tracking_number_id)).all()
        held = s.scalar(select(func.count()).select_from(TrackingNumber)
                        .where(TrackingNumber.pool_held.is_(True)))
        exhausted = s.get(NumberPool, pool_id).exhausted_count
    assert len(live) == POOL and all(n == 1 for _, n in live)
    assert held == POOL
    return exhausted


def test_200_simultaneous_sessions_core(session_factory):
    ids = make_project(session_factory, pool_size=POOL)
    barrier = threading.Barrier(N_VISITORS)

    def one(i):
        r = parse_request({"project": "acme", "utm_source": "google", "utm_term": f"kw{i}"}, UA, "10.0.0.1")
        barrier.wait(timeout=60)
        return dni.assign(session_factory, r)

    with ThreadPoolExecutor(N_VISITORS) as ex:
        results = list(ex.map(one, range(N_VISITORS)))
    pool = [r for r in results if r.kind == "pool"]
    assert len(pool) == POOL
    assert len({r.number for r in pool}) == POOL                 # no double assignment
    assert len({r.session_id for r in results}) == N_VISITORS
    rest = [r for r in results if r.kind != "pool"]
    assert all(r.kind == "fallback" and r.number == FALLBACK and r.exhausted for r in rest)
    assert check_db(session_factory, ids["pool"]) == N_VISITORS - POOL


def test_200_simultaneous_sessions_http(db_url, session_factory):
    ids = make_project(session_factory, pool_size=POOL, origins="*")
    # 200 visitors behind the reverse proxy (each its own client address)
    srv = LiveServer(db_url, session_factory, config={"web__trusted_proxies": "127.0.0.1"},
                     DNI_RATE_BURST=10_000, DNI_RATE_PER_MINUTE=600_000)
    try:
        barrier = threading.Barrier(50)

        def one(i):
            if i < 50:
                barrier.wait(timeout=60)
            return post_json(srv.url + "/api/dni/assign", {"project": "acme", "utm_term": f"kw{i}"},
                             {"Origin": "https://shop.example", "X-Forwarded-For": f"198.51.100.{i}"})

        with ThreadPoolExecutor(50) as ex:
            results = list(ex.map(one, range(N_VISITORS)))
    finally:
        srv.close()
    assert all(status == 200 for status, _, _ in results), Counter(s for s, _, _ in results)
    kinds = Counter(body["kind"] for _, body, _ in results)
    assert kinds == {"pool": POOL, "fallback": N_VISITORS - POOL}
    numbers = [body["number"] for _, body, _ in results if body["kind"] == "pool"]
    assert len(set(numbers)) == POOL
    assert check_db(session_factory, ids["pool"]) == N_VISITORS - POOL
