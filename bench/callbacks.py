#!/usr/bin/env python3
"""Benchmark of website callback requests (a script, not a test). Prints its figures.

On a migrated SQLite file (or ``--db postgresql``: a throw-away cluster started like the tests'
one is not made here; pass ``--url``) with one project, ``--calls`` calls carrying a time to
call and ``--requests`` past requests:

- ``widget_config``: what the DNI assign answer adds, with the median cached (every call after
  the first) and uncached (the median read every time), beside the baseline of reading the
  settings row alone;
- ``create_request``: accepted requests per second, each its own write transaction
  (``run_write``), different numbers, the hourly cap raised out of the way.

Usage: ``.venv/bin/python bench/callbacks.py [--calls 20000] [--requests 5000] [--n 2000] [--url URL]``
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from calltracking import entities as svc  # noqa: E402
from calltracking import migrate  # noqa: E402
from calltracking.callbacks import create_request, requests as cb_requests, settings, widget_config  # noqa: E402
from calltracking.db import make_engine, make_sessionmaker, run_write  # noqa: E402
from calltracking.models import Call, CallbackRequest  # noqa: E402

UTC = dt.timezone.utc


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def show(name: str, ms: list[float]) -> None:
    ms = sorted(ms)
    print(f"  {name:<34} median {statistics.median(ms):7.3f} ms   p99 {ms[int(len(ms) * 0.99) - 1]:7.3f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--url", default="")
    a = ap.parse_args()
    url = a.url or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    migrate.upgrade(url)
    eng = make_engine(url)
    sm = make_sessionmaker(eng)
    now = dt.datetime.now(UTC)
    rng = random.Random(1)
    with sm() as s:
        p = svc.add_project(s, "bench", timezone="Europe/Moscow")
        s.flush()
        settings.save(s, p.id, {"enabled": True, "outbound_context": "from-internal", "max_calls_per_hour": 1000,
                                "cooldown_seconds": 60, "schedule": "mon-sun 00:00-24:00"})
        s.bulk_insert_mappings(Call, [dict(pbx_id="b", linkedid=f"{i}.1", project_id=p.id, status="answered",
                                           attribution="dynamic", started_at=now - dt.timedelta(minutes=i),
                                           time_to_call_seconds=Decimal(rng.randint(5, 900)))
                                      for i in range(a.calls)])
        s.bulk_insert_mappings(CallbackRequest, [dict(project_id=p.id, phone=f"+7926{i:07d}", status="reached",
                                                      requested_at=now - dt.timedelta(hours=2, minutes=i))
                                                 for i in range(a.requests)])
        s.commit()
        pid = p.id
    print(f"{url.split(':')[0]}: {a.calls} calls, {a.requests} past requests, {a.n} runs each")
    with sm() as s:
        show("baseline: settings row", timed(lambda: (settings.get(s, pid), s.rollback()), a.n))
        widget_config(s, pid, now)
        show("widget_config (median cached)", timed(lambda: (widget_config(s, pid, now), s.rollback()), a.n))

        def uncached():
            cb_requests._median_cache.clear()
            widget_config(s, pid, now)
            s.rollback()
        show("widget_config (median read)", timed(uncached, max(a.n // 10, 20)))
    phones = iter(f"+7916{i:07d}" for i in range(10**6))
    t = time.perf_counter()
    for _ in range(a.n):
        out = run_write(sm, lambda s: create_request(s, project_id=pid, visitor_id=None, phone=next(phones),
                                                     client_key="k", now=now))
        assert out.status in ("queued", "refused"), out
    took = time.perf_counter() - t
    print(f"  create_request (own transaction)   {a.n / took:8.0f} requests/s")
    eng.dispose()


if __name__ == "__main__":
    main()
