#!/usr/bin/env python3
"""Benchmark of one route-hook read on PostgreSQL: through a thread pool or on the event loop
(a script, not a test). Prints its figures.

A throw-away PostgreSQL cluster (as the tests start one), 200,000 past calls, and the route
hook's "did this caller call before" statement (:func:`calltracking.attribution.fast.first_call_steps`)
run ``--queries`` times, ``--concurrency`` at a time, on uvloop, alternating for ``--rounds``:

- ``thread``: as the FastAGI server read before ``agi/pg_reads.py`` (and still reads when
  none of the loop's connections is open): ``run_in_executor`` on a pool of ``--concurrency``
  threads, each keeping its connection in autocommit mode as ``HookEnv.connection`` does,
  awaited with ``wait_for(shield(...))``;
- ``loop``: as it reads now: :class:`agi.pg_reads.PgReads` (``--concurrency`` asynchronous
  connections, a task per read, awaited the same way).

Printed per round and kind: reads per second, the process's CPU per read (PostgreSQL's own is
not in it), p50 and p99 of the time a read took.

Usage: ``.venv/bin/python bench/pg_reads.py [--queries 20000] [--concurrency 16] [--rounds 2]``
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import uvloop  # noqa: E402
from sqlalchemy import text  # noqa: E402

from agi.pg_reads import PgReads  # noqa: E402
from calltracking.attribution.fast import first_call_steps  # noqa: E402
from calltracking.attribution.rawsql import autocommit, run_reads  # noqa: E402
from calltracking.db import make_engine  # noqa: E402
from calltracking.hooks import Budget  # noqa: E402
from dni import Pg  # noqa: E402

NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.timezone.utc)


def fill(engine, calls: int) -> None:
    with engine.begin() as c:
        c.execute(text("CREATE TABLE calls (id serial PRIMARY KEY, caller_number text, "
                       "started_at timestamp, project_id int, pbx_id text, linkedid text)"))
        c.execute(text("INSERT INTO calls (caller_number, started_at, project_id, pbx_id, linkedid) "
                       "SELECT '+7916' || lpad(i::text, 7, '0'), :now - i * interval '1 second', 1, "
                       "'pbx', 'l' || i FROM generate_series(1, :n) AS i"),
                  {"now": NOW.replace(tzinfo=None), "n": calls})
        c.execute(text("CREATE INDEX ON calls (caller_number, started_at)"))
        c.execute(text("ANALYZE calls"))


def steps(i: int):
    """The route hook's first-call read of caller ``i`` (two thirds of them called before)."""
    return first_call_steps("postgresql", "pbx", 1, f"+7916{i % 300_000:07d}", NOW, 0, f"x{i}")


async def run(kind: str, engine, queries: int, concurrency: int) -> dict:
    loop = asyncio.get_running_loop()
    if kind == "thread":
        pool = ThreadPoolExecutor(concurrency)
        local = threading.local()
        opened = []

        def read(i):
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = local.conn = engine.connect()
                opened.append(conn)
            autocommit(conn)            # as HookEnv.connection: each read its own snapshot
            try:
                return run_reads(conn, steps(i))
            finally:
                conn.rollback()

        def start(i):
            return loop.run_in_executor(pool, read, i)
    else:
        reads = PgReads(engine, concurrency, 1000, sync=None)
        await reads.open(10)

        def start(i):
            return reads.start(lambda: steps(i), Budget(60))
    times: list[float] = []

    async def worker(k: int) -> None:
        for i in range(k, queries, concurrency):
            t = time.perf_counter()
            await asyncio.wait_for(asyncio.shield(start(i)), 1.0)
            times.append(time.perf_counter() - t)

    await asyncio.gather(*(worker(k) for k in range(min(concurrency, 4))))     # warm-up
    times.clear()
    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if kind == "thread":
        pool.shutdown()
        for conn in opened:
            conn.close()
    else:
        await reads.close()
    times.sort()
    return dict(rate=queries / wall, cpu_ms=cpu * 1000 / queries,
                p50=times[len(times) // 2] * 1000, p99=times[int(len(times) * 0.99)] * 1000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=20000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    pg = Pg()
    try:
        engine = make_engine(pg.url)
        fill(engine, 200_000)
        print(f"PostgreSQL on a Unix socket, 200,000 calls; {a.queries:,} first-call reads, "
              f"{a.concurrency} at a time, on uvloop", flush=True)
        got: dict[str, list[dict]] = {"thread": [], "loop": []}
        for r in range(a.rounds):
            for kind in ("thread", "loop"):
                m = uvloop.run(run(kind, engine, a.queries, a.concurrency))
                got[kind].append(m)
                print(f"  round {r + 1} {kind:6}: {m['rate']:7.0f} reads/s  CPU {m['cpu_ms']:.3f} ms a read  "
                      f"p50 {m['p50']:.2f}  p99 {m['p99']:.2f} ms", flush=True)
        for key, label in (("cpu_ms", "CPU ms a read"), ("p99", "p99 ms")):
            t = statistics.median(m[key] for m in got["thread"])
            lo = statistics.median(m[key] for m in got["loop"])
            print(f"  {label:14} loop {lo:.3f} / thread {t:.3f} = {lo / t:.2f}x (medians)")
        engine.dispose()
    finally:
        pg.close()


if __name__ == "__main__":
    main()
