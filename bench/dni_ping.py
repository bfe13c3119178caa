#!/usr/bin/env python3
"""Benchmark of "the snippet ran" (a script, not a test). Prints its figures.

In one process, on a fresh SQLite database (``--db postgresql``: a throw-away PostgreSQL cluster
too), the per-request cost of:

1. ``throttle``: :meth:`calltracking.dni.snippet_pings.PingThrottle.note` alone;
2. ``ping, throttled``: the whole handler of ``POST /api/dni/ping``
   (:meth:`webui.dni.DniApi.handle`: rate limiter, JSON, the project's cached settings, the
   origin check, normalising, the throttle) when the minute's write is already done — what a
   busy site costs per page view;
3. ``ping, written``: the same with the throttle off (one upsert per ping: what every page view
   would cost without it);
4. baseline ``heartbeat``: the snippet's existing keep-alive for a held number, same handler.

Usage: ``.venv/bin/python bench/dni_ping.py [--n 20000] [--db sqlite|postgresql|both]``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from calltracking import entities as svc  # noqa: E402
from calltracking import migrate  # noqa: E402
from calltracking.db import make_engine, make_sessionmaker, session_scope  # noqa: E402
from calltracking.dni import snippet_pings  # noqa: E402
from webui.dni import DniApi, run_blocking  # noqa: E402

SITE = "https://shop.example"
SETTINGS = {"DNI_RATE_PER_MINUTE": 1e9, "DNI_RATE_BURST": 1e9, "DNI_MAX_HOLDS_PER_CLIENT": 1000}


def per_call_us(fn, n: int, rounds: int = 5) -> tuple[float, float]:
    """(median, best) microseconds per call over ``rounds`` rounds of ``n`` calls."""
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        out.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(out), min(out)


def run(url: str, n: int, label: str) -> None:
    migrate.upgrade(url)
    engine = make_engine(url)
    with session_scope(make_sessionmaker(engine)) as s:
        p = svc.add_project(s, "acme", "Acme", "UTC", "sales", "+74951234567")
        p.allowed_origins = SITE
        pool = svc.add_pool(s, p, "website", hold_seconds=900)
        svc.add_number(s, p, "+74950002000", pool=pool)
    api = DniApi(SETTINGS, lambda: engine, secret="bench-secret")
    ping = json.dumps({"project": "acme", "snippet": snippet_pings.SNIPPET_VERSION, "origin": SITE,
                       "page": "/landing"}).encode()

    def call(path, body):
        return run_blocking(api.handle("POST", path, SITE, "192.0.2.7", "Mozilla/5.0 bench", body))

    st, out, _ = call("/api/dni/assign", json.dumps({"project": "acme"}).encode())
    assert st == 200 and out["kind"] == "pool", (st, out)
    beat = json.dumps({"project": "acme", "visitor_id": out["visitor_id"]}).encode()
    assert call("/api/dni/ping", ping)[0] == 204            # the minute's write

    throttle = snippet_pings.PingThrottle()
    throttle.note("k", time.monotonic())
    rows = [("throttle alone", per_call_us(lambda: throttle.note("k", time.monotonic()), n * 5)),
            ("ping, throttled", per_call_us(lambda: call("/api/dni/ping", ping), n))]
    api.pings.throttle.interval = 0.0
    rows.append(("ping, written (no throttle)", per_call_us(lambda: call("/api/dni/ping", ping), max(1, n // 20))))
    rows.append(("baseline: heartbeat", per_call_us(lambda: call("/api/dni/heartbeat", beat), max(1, n // 20))))
    with engine.connect() as conn:
        total = conn.exec_driver_sql("SELECT pings FROM dni_snippet_pings").scalar()
    print(f"\n{label}: µs per request (median of 5 rounds, best)")
    for name, (med, best) in rows:
        print(f"  {name:<30} {med:9.1f} {best:9.1f}")
    print(f"  (rows: 1, pings counted: {total})")
    engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="sqlite")
    a = ap.parse_args()
    if a.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="ct-bench-ping-") as d:
            run(f"sqlite:///{d}/bench.db", a.n, "SQLite")
    if a.db in ("postgresql", "both"):
        from support.postgres import PgCluster

        pg = PgCluster()
        pg.start()
        try:
            run(pg.create_database("bench_ping"), a.n, "PostgreSQL")
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
