"""Attacks on the public DNI endpoints, over real sockets, on both listeners (the web port's
waitress path and the asyncio DNI server) and both databases: a script emptying the pool,
forged client addresses and visitor ids, requests without Origin, a flood of new clients
against the rate limiter; and what the admin sees of it (/metrics, the pools page)."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from calltracking.dni import holds, projects
from calltracking import entities as svc
from calltracking.db import session_scope
from calltracking.models import NumberPool, PoolReservation, Project, VisitorSession, utcnow

from support.dni import FALLBACK, make_project, start  # noqa: F401 - start: the fixture, on both listeners
from support.web import post_json

SITE = "https://shop.example"
PROXY = {"web__trusted_proxies": "127.0.0.1/8, ::1"}
CAP = 4                                   # [dni] max_holds_per_client, default


def assign(srv, body=None, headers=None):
    return post_json(srv.url + "/api/dni/assign", {"project": "acme", **(body or {})}, headers)


def heartbeat(srv, visitor_id, headers=None):
    return post_json(srv.url + "/api/dni/heartbeat", {"project": "acme", "visitor_id": visitor_id},
                     {"Origin": SITE, **(headers or {})})


def live_holds(factory) -> int:
    with session_scope(factory) as s:
        return s.scalar(select(func.count()).select_from(PoolReservation)
                        .where(PoolReservation.released_at.is_(None)))


def test_requests_without_origin_are_refused_when_the_project_lists_origins(start, session_factory):
    make_project(session_factory, origins=SITE)
    srv = start()
    # The attack as tried: a browser User-Agent, a new X-Forwarded-For each time, no Origin.
    codes = [assign(srv, {"utm_term": f"k{i}"}, {"X-Forwarded-For": f"198.51.100.{i}"})[0] for i in range(20)]
    assert codes == [403] * 20
    st, body, _ = assign(srv)
    assert "Origin" in body["error"]
    st, body, _ = post_json(srv.url + "/api/dni/heartbeat", {"project": "acme", "visitor_id": "v" * 20})
    assert st == 403
    assert live_holds(session_factory) == 0
    with session_scope(session_factory) as s:
        assert s.scalar(select(func.count()).select_from(VisitorSession)) == 0
    st, body, _ = assign(srv, headers={"Origin": SITE})
    assert st == 200 and body["kind"] == "pool"


def test_a_project_without_origins_serves_servers_only(start, session_factory):
    make_project(session_factory, origins="")
    srv = start()
    assert assign(srv)[0] == 200                                  # server to server: no Origin
    assert assign(srv, headers={"Origin": SITE})[0] == 403        # any browser: refused


def test_one_client_cannot_hold_the_pool(start, session_factory):
    """Exposed directly (no trusted proxy): the X-Forwarded-For a client writes is ignored, so
    changing it does not make it many clients."""
    make_project(session_factory, origins=SITE, pool_size=20)
    srv = start()
    got = [assign(srv, {"utm_term": f"k{i}"}, {"Origin": SITE, "X-Forwarded-For": f"203.0.113.{i}"})
           for i in range(20)]
    assert all(st == 200 for st, _, _ in got)
    kinds = [b["kind"] for _, b, _ in got]
    assert kinds == ["pool"] * CAP + ["refused"] * (20 - CAP)
    assert len({b["number"] for _, b, _ in got[:CAP]}) == CAP
    assert all(b["number"] == FALLBACK and b["session"] is None for _, b, _ in got[CAP:])
    assert live_holds(session_factory) == CAP                     # 16 numbers stay for real visitors
    # A returning visitor of that client keeps its number (no new hold needed).
    st, again, _ = assign(srv, {"visitor_id": got[0][1]["visitor_id"]}, {"Origin": SITE})
    assert again["kind"] == "pool" and again["number"] == got[0][1]["number"]


def test_behind_a_trusted_proxy_each_visitor_is_one_client(start, session_factory):
    make_project(session_factory, origins=SITE, pool_size=20)
    srv = start(config=PROXY)
    # nginx with $proxy_add_x_forwarded_for: whatever the client wrote, then its real address.
    forged = [assign(srv, {"utm_term": f"a{i}"},
                     {"Origin": SITE, "X-Forwarded-For": f"10.9.{i}.1, 192.0.2.{i}, 203.0.113.66"})[1]
              for i in range(10)]
    assert [b["kind"] for b in forged] == ["pool"] * CAP + ["refused"] * (10 - CAP)
    # IPv6: one subscriber's /64 is one client, whatever address of it is used.
    v6 = [assign(srv, {"utm_term": f"b{i}"}, {"Origin": SITE, "X-Forwarded-For": f"2001:db8:77:1::{i + 1:x}"})[1]
          for i in range(10)]
    assert [b["kind"] for b in v6] == ["pool"] * CAP + ["refused"] * (10 - CAP)
    # Real visitors behind the same proxy still get numbers.
    real = [assign(srv, {"utm_term": f"c{i}"}, {"Origin": SITE, "X-Forwarded-For": f"198.51.100.{i}"})[1]
            for i in range(12)]
    assert [b["kind"] for b in real] == ["pool"] * 12
    assert live_holds(session_factory) == 2 * CAP + 12


def test_the_rate_limit_applies_to_loopback_peers(start, session_factory):
    make_project(session_factory, origins=SITE)
    srv = start(DNI_RATE_BURST=5, DNI_RATE_PER_MINUTE=1)
    codes = [assign(srv, headers={"Origin": SITE})[0] for _ in range(7)]
    assert codes == [200] * 5 + [429] * 2


def test_forged_visitor_ids_are_new_visitors(start, session_factory):
    from calltracking.dni.guard import VisitorSigner

    make_project(session_factory, origins=SITE)
    srv = start()
    h = {"Origin": SITE}
    victim = assign(srv, {"utm_term": "victim"}, h)[1]
    assert VisitorSigner("test-secret-key-0123456789abcdef").valid(victim["visitor_id"])
    for forged in ("attacker-chosen-1", VisitorSigner("another secret").new(),
                   victim["visitor_id"][:-2] + ("AA" if victim["visitor_id"][-2:] != "AA" else "BB")):
        st, body, _ = assign(srv, {"visitor_id": forged}, h)
        assert st == 200 and body["visitor_id"] != forged and body["number"] != victim["number"]
        assert VisitorSigner("test-secret-key-0123456789abcdef").valid(body["visitor_id"])
        st, hb, _ = heartbeat(srv, forged)
        assert st == 200 and hb["number"] is None                 # extends nothing
    st, mine, _ = assign(srv, {"visitor_id": victim["visitor_id"]}, h)
    assert mine["visitor_id"] == victim["visitor_id"] and mine["number"] == victim["number"]


def test_a_new_hold_is_provisional_until_its_first_heartbeat(start, session_factory):
    make_project(session_factory, origins=SITE, hold_seconds=900)
    srv = start()
    h = {"Origin": SITE}
    quiet = assign(srv, {"utm_term": "never comes back"}, h)[1]
    assert quiet["kind"] == "pool" and quiet["provisional"] is True
    assert quiet["hold_seconds"] == holds.PROVISIONAL_SECONDS
    active = assign(srv, {"utm_term": "reads the page"}, h)[1]
    st, hb, _ = heartbeat(srv, active["visitor_id"])
    assert hb["number"] == active["number"] and hb["hold_seconds"] == 900 and hb["provisional"] is False
    now = utcnow()
    # After the provisional time only the unconfirmed hold is released ...
    assert holds.release_expired(session_factory, now + dt.timedelta(seconds=holds.PROVISIONAL_SECONDS + 1)) == 1
    assert heartbeat(srv, quiet["visitor_id"])[1]["number"] is None
    assert heartbeat(srv, active["visitor_id"])[1]["number"] == active["number"]
    # ... the confirmed one lasts the pool's hold time after the last heartbeat.
    assert holds.release_expired(session_factory, utcnow() + dt.timedelta(seconds=899)) == 0
    assert holds.release_expired(session_factory, utcnow() + dt.timedelta(seconds=901)) == 1


def test_one_visitor_id_holds_a_bounded_number_of_pools(start, session_factory):
    ids = make_project(session_factory, origins=SITE, pool_size=2)
    with session_scope(session_factory) as s:
        project = s.get(Project, ids["project"])
        for i in range(4):
            pool = svc.add_pool(s, project, f"landing{i}", hold_seconds=900)
            svc.add_number(s, project, f"+7495000300{i}", pool=pool)
    projects.invalidate_cache()
    srv = start()
    h = {"Origin": SITE}
    vid = assign(srv, {"pool": "landing0"}, h)[1]["visitor_id"]
    kinds = [assign(srv, {"pool": f"landing{i}", "visitor_id": vid}, h)[1]["kind"] for i in range(4)]
    assert kinds == ["pool", "pool", "pool", "refused"]           # [dni] max_holds_per_visitor = 3


def test_the_caps_survive_a_restart(start, session_factory):
    make_project(session_factory, origins=SITE, pool_size=20)
    first = start()
    h = {"Origin": SITE}
    held = [assign(first, {"utm_term": f"k{i}"}, h)[1] for i in range(CAP)]
    for b in held:
        heartbeat(first, b["visitor_id"])
    first.close()
    second = start()                                              # a new process: a new ledger
    st, body, _ = assign(second, {"utm_term": "one more"}, h)
    assert body["kind"] == "refused"
    assert live_holds(session_factory) == CAP


def test_a_flood_of_new_clients_neither_resets_a_limited_client_nor_grows_memory(start, session_factory):
    make_project(session_factory, origins=SITE)
    srv = start(config=PROXY, DNI_RATE_BURST=3, DNI_RATE_PER_MINUTE=1)
    api = srv.app.extensions["dni_api"]
    api.limiter.max_keys = 50
    attacker = {"X-Forwarded-For": "203.0.113.1"}
    assert [heartbeat(srv, "v" * 20, attacker)[0] for _ in range(4)] == [200, 200, 200, 429]
    for i in range(120):                  # new clients, far more than the limiter keeps
        assert heartbeat(srv, "v" * 20, {"X-Forwarded-For": f"198.51.{i // 250}.{i % 250}"})[0] == 200
        if i % 10 == 9:
            assert heartbeat(srv, "v" * 20, attacker)[0] == 429
        assert len(api.limiter.buckets) <= 50


def test_the_hold_ledger_is_bounded():
    from calltracking.dni.guard import HoldLedger

    ledger = HoldLedger(max_entries=100)
    for i in range(1000):
        assert ledger.claim(1, f"v{i}", f"c{i}", 1000.0, 4, 3) is None
    assert len(ledger) == 100 and sum(ledger.clients.values()) == 100 and len(ledger.heap) == 100
    assert ledger.held(1, "c999", 1000.0) == 1 and ledger.held(1, "c0", 1000.0) == 0
    assert len(ledger.clients) == 100
    assert ledger.held(1, "c999", 1000.0 + HoldLedger.PENDING + 1) == 0 and len(ledger) == 0


def test_pressure_and_refusals_on_metrics_and_the_pools_page(start, session_factory):
    from webui.auth import new_api_token

    ids = make_project(session_factory, origins=SITE, pool_size=20)
    with session_scope(session_factory) as s:
        admin = svc.add_user(s, "root1", "password-123456", "admin")
        token = new_api_token(admin)
    srv = start()
    for i in range(10):
        assign(srv, {"utm_term": f"k{i}"}, {"Origin": SITE})
    client = srv.app.test_client()
    res = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert res.status_code == 200
    fams = {f.name: f for f in text_string_to_metric_families(res.get_data(as_text=True))}
    label = f"{ids['project']}/website"
    refused = {(x.labels["pool"], x.labels["reason"]): x.value for x in fams["calltracking_dni_refused"].samples
               if x.name.endswith("_total")}
    assert refused[(label, "client_limit")] == 10 - CAP
    pressure = {x.labels["pool"]: x.value for x in fams["calltracking_pool_pressure"].samples}
    assert pressure[label] == pytest.approx(CAP / 20)
    provisional = {x.labels["pool"]: x.value for x in fams["calltracking_pool_numbers_provisional"].samples}
    assert provisional[label] == CAP
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    assert client.post("/login", data={"username": "root1", "password": "password-123456",
                                       "csrf_token": csrf}).status_code == 302
    page = client.get("/settings/pools").get_data(as_text=True)
    assert f"{CAP}/20" in page and f"{10 - CAP} refused" in page
    with session_scope(session_factory) as s:
        assert s.get(NumberPool, ids["pool"]).exhausted_count == 0     # refusals are not exhaustion
