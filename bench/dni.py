#!/usr/bin/env python3
"""Benchmark of dynamic number insertion (a script, not a test). Prints its figures.

1. ``load``: the production server in its own process, on loopback — ``--server
   fast`` (default): the asyncio DNI server of ``[dni] listen``
   (``webui.dni_server``, next to an idle waitress as in ``calltracking web``);
   ``waitress``: the web UI's waitress + the real Flask app (the WSGI path of
   the same endpoints); ``both``: one after the other. A cheap asyncio client
   (``bench/dni_load.py``: raw HTTP/1.1 keep-alive, pre-built requests) posts
   ``/api/dni/assign`` for NEW visitors, first closed loop (max throughput),
   then open loop at ``--rate`` requests/s (latency from the scheduled send
   time). Every answer is checked: status, kind "pool", and the number — the
   same number twice is a double assignment (all holds are live during the
   run), and the database is checked for numbers with two live reservations.
   Also printed: CPU of the server process (and of PostgreSQL) per
   assignment, read from /proc. The per-client rate limit and hold cap are
   raised for the run (every client is 127.0.0.1 here); the cap's bookkeeping
   still runs for every request.
2. ``sim``: a day of synthetic visitor traffic through the real core
   (``calltracking.dni.assign`` with simulated time, the scheduler's release every
   minute, calls attributed with ``calltracking.attribution.lookup``): day 1 on a
   large pool measures the traffic, ``calltracking.dni.pool_sizing`` recommends a
   size, day 2 runs fresh traffic on a pool of that size and reports the
   attribution accuracy (calls attributed to the visitor who called).

Usage: ``.venv/bin/python bench/dni.py [load|sim|all] [--db sqlite|postgresql|both]
[--server fast|waitress|both] [--seconds 10] [--clients 16] [--server-threads 8] [--rate 1500]
[--visitors 10000] [--quick]`` (``--quick``: the load test only, 4 s measured after 1 s of warm-up).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select  # noqa: E402

import dni_load as L  # noqa: E402
from calltracking import migrate  # noqa: E402
from calltracking.dni import assign as dni  # noqa: E402
from calltracking.dni import holds, pool_sizing, projects  # noqa: E402
from calltracking.dni.request import parse_request  # noqa: E402
from calltracking import entities as svc  # noqa: E402
from calltracking.attribution.lookup import attribute  # noqa: E402
from calltracking.config import load_config  # noqa: E402
from calltracking.db import make_engine, make_sessionmaker, session_scope  # noqa: E402
from calltracking.models import Call, NumberPool, PoolReservation, TrackingNumber, VisitorSession, utcnow  # noqa: E402

UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


# --------------------------------------------------------------- databases
class Pg:
    """A throw-away PostgreSQL cluster on a Unix socket (as the tests start one)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="calltracking-dni-bench-pg-", dir="/var/tmp")
        bindir = next(p for p in ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin") if os.path.isdir(p))
        self.bin = bindir
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", f"{self.dir}/data", "-A", "trust", "-U", "postgres", "--no-sync")
        self._run("pg_ctl", "-D", f"{self.dir}/data", "-l", f"{self.dir}/log", "-w", "-o",
                  f"-c listen_addresses='' -k {self.dir} -p {self.port} "      # durable, as deployed
                  f"-c max_connections=200", "start")
        self._run("createdb", "-h", self.dir, "-p", str(self.port), "-U", "postgres", "bench")
        self.url = f"postgresql+psycopg://postgres@/bench?host={self.dir}&port={self.port}"

    def _run(self, *cmd):
        cmd = [os.path.join(self.bin, cmd[0]), *cmd[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def close(self):
        try:
            self._run("pg_ctl", "-D", f"{self.dir}/data", "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def new_db(kind: str):
    if kind == "postgresql":
        pg = Pg()
        migrate.upgrade(pg.url)
        return pg.url, pg.close
    d = tempfile.mkdtemp(prefix="ct-bench-")
    url = f"sqlite:///{d}/bench.db"
    migrate.upgrade(url)
    return url, lambda: shutil.rmtree(d, ignore_errors=True)


def setup_pool(url: str, numbers: int, hold: int = 900):
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with session_scope(factory) as s:
        p = svc.add_project(s, "acme", "Acme", "UTC", "sales", "+74951234567")
        p.allowed_origins = "https://shop.example"
        pool = svc.add_pool(s, p, "website", hold_seconds=hold, fallback_number="+74951230000")
        pid, pool_id = p.id, pool.id
    with engine.begin() as conn:
        conn.execute(insert(TrackingNumber.__table__), [
            dict(project_id=pid, number=f"+7800{i:07d}", kind="pool", pool_id=pool_id, active=True,
                 callerid_prefix=True, record=True, description="", pool_held=False,
                 created_at=utcnow()) for i in range(numbers)])
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE")      # fresh statistics after the bulk load (autovacuum's job)
    projects.invalidate_cache()
    return engine, factory, pool_id


def set_pool_size(engine, pool_id: int, n: int):
    with engine.begin() as conn:
        ids = conn.execute(select(TrackingNumber.id).where(TrackingNumber.pool_id == pool_id)
                           .order_by(TrackingNumber.id)).scalars().all()
        conn.execute(TrackingNumber.__table__.update().where(TrackingNumber.id.in_(ids[:n])).values(active=True))
        conn.execute(TrackingNumber.__table__.update().where(TrackingNumber.id.in_(ids[n:])).values(active=False))


# --------------------------------------------------------------- load test
def _serve(url: str, port_q, threads: int, server_kind: str = "fast"):
    import logging
    import threading

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)     # "Task queue depth is N"
    from webui import create_app
    from webui.dni_server import DniServer
    from webui.server import make_server

    cfg = load_config("/nonexistent.ini", env={}, require_file=False, overrides={
        "database.url": url, "web.listen": "127.0.0.1:0", "web.threads": str(threads),
        "web.secret_key": "bench-secret-key-0123456789abcdef", "web.secure_cookies": "no",
        "database.pool_size": str(threads)})
    factory = make_sessionmaker(make_engine(url, pool_size=threads))
    app = create_app(cfg, factory)
    app.config.update(DNI_RATE_PER_MINUTE=10**9, DNI_RATE_BURST=10**9, DNI_MAX_HOLDS_PER_CLIENT=10**9)
    server = make_server(cfg, factory, app=app)
    if server_kind == "waitress":
        port_q.put(server.effective_port)
        server.run()
        return
    # as `calltracking web`: waitress in a thread, the DNI server (sharing the app's DniApi) in its own
    threading.Thread(target=server.run, daemon=True).start()
    dni_server = DniServer(app.extensions["dni_api"], "127.0.0.1", 0).start()
    port_q.put(dni_server.port)
    threading.Event().wait()


def _pg_pids(url: str) -> list:
    """The PostgreSQL processes of a bench cluster (postmaster and its children)."""
    host = url.split("host=", 1)[1].split("&", 1)[0]
    with open(f"{host}/data/postmaster.pid") as f:
        return L.children(int(f.readline()))


def load(kind: str, seconds: float, clients: int, server_threads: int, rate: float = 0.0,
         warmup: float = 2.0, client_procs: int = 1, server_kind: str = "fast") -> dict:
    url, cleanup = new_db(kind)
    numbers = 100_000
    engine, factory, pool_id = setup_pool(url, numbers)
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    srv = ctx.Process(target=_serve, args=(url, q, server_threads, server_kind), daemon=True)
    srv.start()
    port = q.get(timeout=60)
    req = L.request_bytes("/api/dni/assign", {"project": "acme", "utm_source": "google", "utm_term": "bench"},
                          {"Content-Type": "text/plain", "Origin": "https://shop.example", "User-Agent": UA})
    try:
        out = ctx.Queue()
        t_measure = time.monotonic() + 1.0 + warmup        # client start-up, then warm-up
        t_end = t_measure + seconds
        cps = [ctx.Process(target=L.client, args=(port, req, clients // client_procs, t_measure, t_end,
                                                  rate / client_procs, out)) for _ in range(client_procs)]
        for p in cps:
            p.start()
        time.sleep(max(0.0, t_measure - time.monotonic()))
        pg_pids = _pg_pids(url) if kind == "postgresql" else []
        srv0, pg0 = L.cpu_seconds([srv.pid]), L.cpu_seconds(pg_pids)
        time.sleep(max(0.0, t_end - time.monotonic()))
        srv1, pg1 = L.cpu_seconds([srv.pid]), L.cpu_seconds(pg_pids)
        parts = [out.get(timeout=seconds + 120) for _ in cps]
        for p in cps:
            p.join()
    finally:
        srv.terminate()
        srv.join(10)
    lat = [x for part in parts for x in part[0]]
    statuses, kinds = Counter(), Counter()
    for part in parts:
        statuses.update(part[1])
        kinds.update(part[2])
    res = L.summarize(seconds, lat, dict(statuses), dict(kinds), [n for part in parts for n in part[3]])
    with engine.connect() as conn:
        db_doubles = conn.execute(select(func.count()).select_from(
            select(PoolReservation.tracking_number_id).where(PoolReservation.released_at.is_(None))
            .group_by(PoolReservation.tracking_number_id).having(func.count() > 1).subquery())).scalar_one()
        sessions = conn.execute(select(func.count()).select_from(VisitorSession)).scalar_one()
    engine.dispose()
    cleanup()
    per = max(kinds.get("pool", 0), 1)
    res.update({"db": kind, "server": server_kind, "offered_rate": rate or "max", "connections": clients,
                "server_threads": server_threads if server_kind == "waitress" else None, "seconds": seconds,
                "server_cpu_ms_per_assignment": round((srv1 - srv0) * 1000 / per, 3),
                "server_cpu_util": round((srv1 - srv0) / seconds, 2),
                "client_cpu_ms_per_request": round(sum(p[5] for p in parts) * 1000 / max(len(lat), 1), 3),
                "answered_per_s": round(sum(p[6] for p in parts) / seconds, 1),
                "warmup_failures": sum(p[4] for p in parts), "db_double_live": db_doubles,
                "sessions_created": sessions})
    if kind == "postgresql":
        res["postgres_cpu_ms_per_assignment"] = round((pg1 - pg0) * 1000 / per, 3)
    return res


# --------------------------------------------------------------- pool simulation
def _day(rng: random.Random, visitors: int, day0: dt.datetime):
    """Synthetic visits of one day: (arrival, duration s, returning index or None, call delay or None)."""
    # Hourly weights: quiet night, morning ramp, lunch and evening peaks.
    w = [0.15, 0.1, 0.08, 0.08, 0.1, 0.2, 0.4, 0.7, 1.0, 1.2, 1.3, 1.35, 1.45, 1.4, 1.3, 1.25, 1.2, 1.15,
         1.2, 1.35, 1.4, 1.1, 0.7, 0.35]
    visits = []
    for i in range(visitors):
        hour = rng.choices(range(24), w)[0]
        t = day0 + dt.timedelta(hours=hour, seconds=rng.uniform(0, 3600))
        duration = min(rng.lognormvariate(5.2, 0.9), 3600.0)        # median ≈ 3 min
        call = None
        if rng.random() < 0.06:                                       # 6 % of visits call
            u = rng.random()
            if u < 0.6:
                call = -rng.uniform(0, duration)                      # while still on the site
            elif u < 0.95:
                call = rng.expovariate(1 / 180)                       # soon after leaving
            else:
                call = rng.expovariate(1 / 600)                       # later (mean 10 min)
        visits.append([t, duration, None, call])
    visits.sort(key=lambda v: v[0])
    for i, v in enumerate(visits):                                    # 10 % are returning visitors
        if i > 50 and rng.random() < 0.1:
            v[2] = rng.randrange(0, i)
    return visits


def simulate(factory, engine, visits, label: str) -> dict:
    import heapq

    events = []
    for i, (t, dur, ret, call) in enumerate(visits):
        heapq.heappush(events, (t, 0, i, "visit"))
        if dur > 5:                       # the snippet confirms a new (provisional) number after 5 s
            heapq.heappush(events, (t + dt.timedelta(seconds=5), 1, i, "hb"))
        k = 1
        while k * 60 < dur:
            heapq.heappush(events, (t + dt.timedelta(seconds=k * 60), 1, i, "hb"))
            k += 1
        if call is not None:
            at = t + dt.timedelta(seconds=dur + call) if call >= 0 else t + dt.timedelta(seconds=dur + call)
            heapq.heappush(events, (at, 2, i, "call"))
    start = visits[0][0].replace(hour=0, minute=0, second=0, microsecond=0)
    for m in range(24 * 60 + 60):
        heapq.heappush(events, (start + dt.timedelta(minutes=m), 3, -1, "release"))
    vid = {}
    calls = correct = lost_exhausted = 0
    n_call = 0
    while events:
        at, _, i, what = heapq.heappop(events)
        if what == "release":
            holds.release_expired(factory, at)
        elif what == "visit":
            ret = visits[i][2]
            body = {"project": "acme", "utm_source": "google", "utm_term": f"kw{i}"}
            if ret is not None and ret in vid:
                body["visitor_id"] = vid[ret]
                body.pop("utm_source")
            r = dni.assign(factory, parse_request(body, UA), at)
            vid[i] = r.visitor_id
            visits[i].append(r.kind)
        elif what == "hb":
            holds.heartbeat(factory, "acme", vid[i], at)
        else:
            calls += 1
            if visits[i][4] != "pool":
                lost_exhausted += 1
                continue
            with session_scope(factory) as s:
                num = s.execute(select(TrackingNumber.number).join(
                    PoolReservation, PoolReservation.tracking_number_id == TrackingNumber.id).join(
                    VisitorSession, VisitorSession.id == PoolReservation.session_id).where(
                    VisitorSession.visitor_id == vid[i]).order_by(PoolReservation.id.desc()).limit(1)).scalar()
                att = attribute(s, num, at)
                n_call += 1
                s.add(Call(pbx_id="sim", linkedid=f"{label}.{n_call}", project_id=att.project_id,
                           tracking_number_id=att.tracking_number.id if att.tracking_number else None,
                           did=num, attribution=att.kind, session_id=att.session_id,
                           candidate_count=att.candidate_count, attribution_confidence=att.confidence,
                           started_at=at, time_to_call_seconds=att.time_to_call(at), status="answered"))
                if att.visitor_session is not None and att.visitor_session.visitor_id == vid[i]:
                    correct += 1
    return {"visits": len(visits), "calls": calls, "correct": correct, "lost_exhausted": lost_exhausted,
            "accuracy": round(correct / calls, 4) if calls else None}


def sim(kind: str, visitors: int, seed: int = 7) -> dict:
    url, cleanup = new_db(kind)
    engine, factory, pool_id = setup_pool(url, 2000)
    rng = random.Random(seed)
    day1 = dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc)
    t0 = time.perf_counter()
    m = simulate(factory, engine, _day(rng, visitors, day1), "d1")
    with session_scope(factory) as s:
        rep = pool_sizing.report(s, "acme", days=1, now=day1 + dt.timedelta(days=1))[0]
    n = rep["recommended"]
    out = {"db": kind, "visitors_per_day": visitors, "measure_day": m, "sizing": rep}
    for label, size in (("recommended", n), ("half", max(1, n // 2))):
        with engine.begin() as conn:                 # a fresh day on a pool of `size` numbers
            for t in (Call.__table__, PoolReservation.__table__):
                conn.execute(t.delete())
            conn.execute(VisitorSession.__table__.delete())
            conn.execute(TrackingNumber.__table__.update().values(pool_held=False, pool_released_at=None))
            conn.execute(NumberPool.__table__.update().values(exhausted_count=0))
        set_pool_size(engine, pool_id, size)
        projects.invalidate_cache()
        day2 = day1 + dt.timedelta(days=1)
        res = simulate(factory, engine, _day(random.Random(seed + 1), visitors, day2), label)
        with session_scope(factory) as s:
            res["exhausted_count"] = s.get(NumberPool, pool_id).exhausted_count
        out[f"day2_{label}"] = dict(res, pool_size=size)
    out["elapsed_s"] = round(time.perf_counter() - t0, 1)
    engine.dispose()
    cleanup()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", nargs="?", choices=["load", "sim", "all"], default="all")
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--server", choices=["fast", "waitress", "both"], default="fast",
                    help="fast: the asyncio DNI server ([dni] listen); waitress: the web UI's WSGI path")
    ap.add_argument("--server-threads", type=int, default=8, help="waitress threads")
    ap.add_argument("--visitors", type=int, default=10_000)
    ap.add_argument("--rate", type=float, default=1500.0,
                    help="then measure latency at this fixed offered rate (requests/s, open loop; 0: skip)")
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--client-procs", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="load only, --seconds 4 --warmup 1")
    a = ap.parse_args(argv)
    if a.quick:
        a.what, a.seconds, a.warmup = "load", 4.0, 1.0
    dbs = ["sqlite", "postgresql"] if a.db == "both" else [a.db]
    servers = ["fast", "waitress"] if a.server == "both" else [a.server]
    for kind in dbs:
        if a.what in ("load", "all"):
            for server in servers:
                for rate in ([0.0, a.rate] if a.rate else [0.0]):
                    print(json.dumps({"load": load(kind, a.seconds, a.clients, a.server_threads, rate, a.warmup,
                                                   a.client_procs, server)}), flush=True)
        if a.what in ("sim", "all"):
            print(json.dumps({"sim": sim(kind, a.visitors)}, default=str), flush=True)


if __name__ == "__main__":
    main()
