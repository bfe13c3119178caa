#!/usr/bin/env python3
"""Benchmark the missed-calls worklist with outbound callbacks.

    .venv/bin/python bench/missed_outbound.py --db sqlite --calls 1000000
    .venv/bin/python bench/missed_outbound.py --db postgresql --calls 1000000

Loads calls with bench/reports.py's generator (about 20 % missed), then outbound calls: for
60 % of the missed calls an operator calls the number back after a log-normal delay (median
about 20 minutes; 70 % answered, some attempts before the answered one), plus unrelated outbound
calls to other numbers (``--noise`` × calls). Times ``calltracking.calls.missed.worklist`` as the web
page runs it (last 30 days, open / closed / all, with and without a project) and prints p50/p95
in milliseconds. PostgreSQL without ``--url`` runs in a throw-away cluster.
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from calltracking import migrate  # noqa: E402
from calltracking.calls import missed  # noqa: E402
from calltracking.db import make_engine, make_sessionmaker  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_reports", ROOT / "bench" / "reports.py")
R = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(R)

OUT_COLS = ("pbx_id", "linkedid", "project_id", "operator_id", "operator_name", "interface", "number",
            "started_at", "answered_at", "ended_at", "talk_seconds", "status", "originated_by_us",
            "created_at", "updated_at")


def outbound_rows(engine, noise: float, seed: int = 11):
    rnd = random.Random(seed)
    with engine.connect() as c:
        missed_calls = c.execute(text("SELECT caller_number, started_at, project_id FROM calls "
                                      "WHERE status = 'missed'")).all()
        ops = [r[0] for r in c.execute(text("SELECT id FROM operators"))]
    n = 0
    for number, started, pid in missed_calls:
        if isinstance(started, str):
            started = dt.datetime.fromisoformat(started)
        if rnd.random() >= 0.6:
            continue
        at = started + dt.timedelta(seconds=min(rnd.lognormvariate(7.1, 1.2), 7 * 86400))
        attempts = 1 + (rnd.random() < 0.3) + (rnd.random() < 0.1)
        for k in range(attempts):
            answered = k == attempts - 1 and rnd.random() < 0.7
            n += 1
            yield _row(n, rnd, ops, number, at, answered, pid if rnd.random() < 0.5 else None)
            at += dt.timedelta(minutes=rnd.randrange(5, 120))
    total = len(missed_calls) * 5 * noise
    end = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    for _ in range(int(total)):
        n += 1
        at = end - dt.timedelta(seconds=rnd.random() * 730 * 86400)
        yield _row(n, rnd, ops, f"+7903{rnd.randrange(10**7):07d}", at, rnd.random() < 0.7, None)


def _row(n, rnd, ops, number, at, answered, pid):
    talk = round(rnd.lognormvariate(4.5, 1.0), 3) if answered else 0
    op = rnd.choice(ops)
    ans = at + dt.timedelta(seconds=rnd.uniform(3, 20)) if answered else None
    end = (ans + dt.timedelta(seconds=talk)) if answered else at + dt.timedelta(seconds=30)
    return ("pbx1", f"out.{n}", pid, op, f"Operator {op}", f"PJSIP/{99 + op}", number, at, ans, end,
            talk, "answered" if answered else "missed", rnd.random() < 0.2, end, end)


def load_outbound(engine, noise, batch=20000):
    t0 = time.perf_counter()
    raw = engine.raw_connection()
    cur = raw.cursor()
    is_pg = engine.dialect.name == "postgresql"
    rows, n = [], 0

    def flush():
        if not rows:
            return
        if is_pg:
            with cur.copy(f"COPY outbound_calls ({', '.join(OUT_COLS)}) FROM STDIN") as cp:
                for r in rows:
                    cp.write_row(r)
        else:
            cur.executemany(f"INSERT INTO outbound_calls ({', '.join(OUT_COLS)}) VALUES "
                            f"({', '.join('?' * len(OUT_COLS))})",
                            [tuple(R._sqlite_val(v) for v in r) for r in rows])
        raw.commit()
        rows.clear()

    for r in outbound_rows(engine, noise):
        rows.append(r)
        n += 1
        if len(rows) >= batch:
            flush()
    flush()
    if is_pg:
        raw.driver_connection.autocommit = True
        cur.execute("VACUUM ANALYZE outbound_calls")
    else:
        cur.execute("ANALYZE")
    raw.close()
    return n, time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--noise", type=float, default=0.2, help="unrelated outbound calls per call")
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cluster = tmpdir = None
    if args.db == "postgresql":
        cluster = R.PgCluster()
        url = cluster.start()
    else:
        tmpdir = tempfile.mkdtemp(prefix="ct-missed-bench-", dir=R.WORKDIR)
        url = f"sqlite:///{tmpdir}/bench.db"
    try:
        migrate.upgrade(url)
        engine = make_engine(url)
        n, secs = R.load(engine, args.calls, args.days)
        print(f"database: {args.db}; loaded {n:,} calls in {secs:.0f} s")
        m, secs = load_outbound(engine, args.noise)
        print(f"loaded {m:,} outbound calls in {secs:.0f} s")
        sf = make_sessionmaker(engine)
        print("load average before timing: %.1f %.1f %.1f" % os.getloadavg())
        start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=30)
        with sf() as s:
            for project in (1, None):
                for state in ("open", "closed", "all"):
                    rows = missed.worklist(s, project_id=project, state=state, start=start)
                    p50, p95 = R.timed(lambda: missed.worklist(s, project_id=project, state=state, start=start),
                                       args.runs)
                    s.expunge_all()
                    by_out = sum(1 for r in rows if r.outbound is not None)
                    print(f"worklist project={project or 'all'} state={state:6}: {len(rows)} rows "
                          f"({by_out} closed by an outbound call): p50 {p50:.1f} ms, p95 {p95:.1f} ms")
    finally:
        if cluster:
            cluster.stop()
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)


if __name__ == "__main__":
    main()
