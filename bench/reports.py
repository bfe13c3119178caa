#!/usr/bin/env python3
"""Benchmark the reports, the drill-down and the journal over many calls.

    .venv/bin/python bench/reports.py --db sqlite --calls 10000000 --keep   # load, build, time
    .venv/bin/python bench/reports.py --db sqlite --url sqlite:////var/tmp/ct-reports-bench-…/bench.db \
        --calls 10000000 --timings-only                                     # time it again, quiet
    .venv/bin/python bench/reports.py --db postgresql --calls 10000000

Generates calls with realistic distributions (two projects in Moscow and New York time, 20
sources with a Zipf-like share, 3 campaigns each, 30 operators, 2,000 keywords on the ~40 %
dynamic calls, a daily and weekly rhythm, 80 % answered, log-normal wait and talk times, 10 %
of answered calls with a deal, no_answer legs on ~25 % of calls) over ``--days`` days ending
today. The rows are made by ``--workers`` processes in chunks of 100,000 calls (the number of
calls of each hour is drawn first, so every chunk knows its ids) and loaded into the product's
own tables with their secondary indexes dropped and built once at the end (SQLite: its own
connection with journal_mode=OFF, synchronous=OFF and a 2 GB cache during the load, then WAL
again; PostgreSQL: COPY). The rollups are then built by the product's own code
(``refresh_rollups(full=True)``). Then each report is timed (last 30 days and the whole range;
alone and as the page with "compare with the previous period"; all projects), the 30-day
drill-down and the journal's first and last page. Prints p50/p95 in milliseconds. 10 M calls
on SQLite load in about 13 minutes on a shared 2-core machine (docs/performance.md).
PostgreSQL without ``--url`` runs in a throw-away cluster started here (as the ``postgres``
user when root).
"""
from __future__ import annotations

import argparse
import datetime as dt
import math
import multiprocessing
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select, text  # noqa: E402

from calltracking import migrate  # noqa: E402
from calltracking.calls import journal  # noqa: E402
from calltracking.reports import compare, figures  # noqa: E402
from calltracking.reports import queries as reports  # noqa: E402
from calltracking.db import make_engine, make_sessionmaker  # noqa: E402
from calltracking.models import Call, Project  # noqa: E402
from calltracking.reports.rollup import refresh_rollups  # noqa: E402

UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1)
WORKDIR = os.environ.get("CT_BENCH_DIR", "/var/tmp")
PG_BIN = next((p for p in ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin")
               if os.path.isdir(p)), "")
HOUR_W = [1, 0.5, 0.3, 0.2, 0.2, 0.3, 1, 3, 6, 9, 10, 10, 9, 9, 10, 10, 9, 8, 6, 4, 3, 2, 1.5, 1]
WEEKDAY_W = [1.0, 1.0, 0.95, 0.95, 0.9, 0.5, 0.35]
CALL_COLS = ("id", "pbx_id", "linkedid", "project_id", "did", "caller_number", "caller_name",
             "source_id", "campaign_id", "session_id", "attribution", "queue", "target", "started_at",
             "queued_at", "answered_at", "ended_at", "wait_seconds", "queue_wait_seconds",
             "talk_seconds", "hold_seconds", "time_to_call_seconds", "status", "missed_reason",
             "operator_id", "operator_name", "first_call", "record", "recording_file", "value",
             "comment", "closed_reason", "via_agi", "handled_by", "created_at", "updated_at", "is_target")
SESSION_COLS = ("id", "project_id", "visitor_id", "ga_client_id", "utm_source", "utm_medium",
                "utm_campaign", "utm_term", "utm_content", "gclid", "yclid", "keyword", "referrer",
                "landing_page", "user_agent", "device", "os", "browser", "ip", "source_id",
                "first_seen", "last_seen")
LEG_COLS = ("call_id", "operator_id", "operator_name", "interface", "channel", "uniqueid", "queue",
            "kind", "rung_at", "ended_at", "ring_seconds", "outcome")
DEVICES = [("mobile", "Android", "Chrome", 45), ("mobile", "iOS", "Safari", 25),
           ("desktop", "Windows", "Chrome", 15), ("desktop", "Windows", "Edge", 5),
           ("desktop", "macOS", "Safari", 5), ("tablet", "iOS", "Safari", 3),
           ("desktop", "Linux", "Firefox", 2)]


class PgCluster:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="ct-reports-bench-pg-", dir=WORKDIR))
        self.port = 5400 + random.randrange(500)
        self.root = os.geteuid() == 0
        if self.root:
            shutil.chown(self.dir, "postgres", "postgres")

    def _run(self, *cmd):
        cmd = [os.path.join(PG_BIN, cmd[0]) if PG_BIN else cmd[0], *cmd[1:]]
        if self.root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

    def start(self):
        self._run("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres", "--no-sync")
        opts = (f"-c listen_addresses='' -k {self.dir} -p {self.port} -c shared_buffers=2GB "
                f"-c work_mem=64MB -c maintenance_work_mem=512MB -c max_wal_size=8GB "
                f"-c synchronous_commit=off -c effective_cache_size=8GB -c random_page_cost=1.1")
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-o", opts, "-l", str(self.dir / "log"),
                  "-w", "start")
        subprocess.run([*(["runuser", "-u", "postgres", "--"] if self.root else []),
                        os.path.join(PG_BIN, "createdb"), "-h", str(self.dir), "-p", str(self.port),
                        "-U", "postgres", "bench"], check=True)
        return f"postgresql+psycopg://postgres@/bench?host={self.dir}&port={self.port}"

    def stop(self):
        try:
            self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _zipf(n, s=1.1):
    return [1.0 / (k + 1) ** s for k in range(n)]


def setup_entities(conn, n_sources=20, n_ops=30):
    """Projects, sources, campaigns, operators through plain SQL; returns ids."""
    ids = {"projects": [], "sources": {}, "campaigns": {}, "operators": []}
    now = dt.datetime.now(UTC).replace(tzinfo=None)
    for pid, (key, tz) in enumerate((("msk", "Europe/Moscow"), ("nyc", "America/New_York")), 1):
        conn.execute(text("INSERT INTO projects (id, key, name, timezone, default_queue, "
                          "first_call_window_days, allowed_origins, currency, created_at) VALUES "
                          "(:i, :k, :k, :tz, 'sales', 0, '', 'RUB', :now)"),
                     dict(i=pid, k=key, tz=tz, now=now))
        ids["projects"].append(pid)
        for s in range(n_sources):
            sid = (pid - 1) * n_sources + s + 1
            conn.execute(text("INSERT INTO sources (id, project_id, name, channel, short_label, active) "
                              "VALUES (:i, :p, :n, 'ads', '', true)"),
                         dict(i=sid, p=pid, n=f"Source {s + 1} <{key}>"))
            ids["sources"].setdefault(pid, []).append(sid)
            for c in range(3):
                cid = (sid - 1) * 3 + c + 1
                conn.execute(text("INSERT INTO campaigns (id, project_id, source_id, name, utm_campaign, "
                                  "active) VALUES (:i, :p, :s, :n, '', true)"),
                             dict(i=cid, p=pid, s=sid, n=f"campaign {c + 1}"))
                ids["campaigns"].setdefault(sid, []).append(cid)
    for o in range(n_ops):
        conn.execute(text("INSERT INTO operators (id, name, interface, member_name, extension, queues, "
                          "active, created_at) VALUES (:i, :n, :f, '', '', 'sales', true, :now)"),
                     dict(i=o + 1, n=f"Operator {o + 1}", f=f"PJSIP/{100 + o}", now=now))
        ids["operators"].append(o + 1)
    return ids


def hour_slots(n_calls, days, seed=7):
    """[(hour start, number of calls)] over ``days`` days ending this hour (naive UTC): a
    Poisson draw around the daily and weekly rhythm, decided up front so that chunks of
    hours can be generated in parallel with known call ids."""
    rnd = random.Random(seed)
    end = dt.datetime.now(UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    start = end - dt.timedelta(days=days)
    slots = []
    for d in range(days):
        day = start + dt.timedelta(days=d)
        for h in range(24):
            slots.append((day + dt.timedelta(hours=h), HOUR_W[h] * WEEKDAY_W[day.weekday()]))
    total_w = sum(w for _, w in slots)
    return [(t, _poisson(rnd, n_calls * w / total_w)) for t, w in slots]


def generate(slots, first_id, ids, seed):
    """Yield (call, session or None, [legs]) tuples in time order (naive UTC datetimes) for
    the hour ``slots``; call ids count up from ``first_id``, a visit's id is its call's id."""
    rnd = random.Random(seed)
    src_w = _zipf(20)
    kw_cum = list(_cum(_zipf(2000, 1.0)))
    dev_cum = list(_cum([d[3] for d in DEVICES]))
    call_id = first_id - 1
    for hour_start, k in slots:
        epoch = int((hour_start - EPOCH).total_seconds())
        offs = sorted(rnd.random() * 3600 for _ in range(k))
        for off in offs:
            call_id += 1
            pid = 1 if rnd.random() < 0.8 else 2
            sid = rnd.choices(ids["sources"][pid], weights=src_w)[0]
            cid = rnd.choice(ids["campaigns"][sid]) if rnd.random() < 0.7 else None
            started = hour_start + dt.timedelta(seconds=off)
            answered = rnd.random() < 0.8
            wait = min(rnd.lognormvariate(2.5, 0.8), 600)
            talk = min(rnd.lognormvariate(4.8, 1.0), 7200) if answered else None
            op = rnd.choice(ids["operators"]) if answered else None
            ans_at = started + dt.timedelta(seconds=wait) if answered else None
            ended = (ans_at + dt.timedelta(seconds=talk)) if answered else started + dt.timedelta(seconds=wait)
            vs = None
            ttc = None
            if rnd.random() < 0.4:
                ttc = rnd.lognormvariate(6.5, 1.5)
                first_seen = started - dt.timedelta(seconds=ttc)
                kw = f"keyword {rnd.choices(range(2000), cum_weights=kw_cum)[0]}"
                dv = DEVICES[rnd.choices(range(len(DEVICES)), cum_weights=dev_cum)[0]]
                vs = (call_id, pid, f"v{call_id}", "", "google", "cpc", "", kw, "", "", "", kw,
                      "", "https://example.com/", "Mozilla/5.0", dv[0], dv[1], dv[2], "192.0.2.1", sid,
                      first_seen, started)
            value = round(rnd.lognormvariate(8, 1), 2) if answered and rnd.random() < 0.1 else None
            # an Asterisk linkedid: "<epoch seconds>.<sequence>"
            call = (call_id, "pbx1", f"{epoch + int(off)}.{call_id}", pid, "+74950000001",
                    f"+7916{rnd.randrange(10**7):07d}",
                    "", sid, cid, call_id if vs else None, "dynamic" if vs else "static", "sales", "",
                    started, started, ans_at, ended, round(wait, 3), round(wait, 3),
                    round(talk, 3) if answered else None, 0 if answered else None,
                    round(ttc, 3) if ttc else None, "answered" if answered else "missed",
                    None if answered else "abandoned", op, f"Operator {op}" if op else "",
                    rnd.random() < 0.6, False, "", value, "", "", True, "", ended, ended,
                    bool(answered and talk >= 60))      # a target call: talk >= 60 s
            legs = []
            if rnd.random() < 0.25:
                o = rnd.choice(ids["operators"])
                legs.append((call_id, o, f"Operator {o}", f"PJSIP/{99 + o}", "", f"{call_id}.2",
                             "sales", "queue", started, started + dt.timedelta(seconds=15), 15,
                             "no_answer"))
            yield call, vs, legs


def _cum(ws):
    s = 0.0
    for w in ws:
        s += w
        yield s


def _poisson(rnd, lam):
    if lam > 30:
        return max(0, int(round(rnd.gauss(lam, math.sqrt(lam)))))
    L, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rnd.random()
        if p <= L:
            return k
        k += 1


def _sqlite_val(v):
    """A value as SQLAlchemy stores it in SQLite (datetimes: "YYYY-MM-DD HH:MM:SS.ffffff")."""
    if isinstance(v, dt.datetime):
        s = v.isoformat(" ")
        return s if len(s) == 26 else s + ".000000"
    return v


def chunk_rows(job):
    """Worker: the rows of one chunk of hours, ready for the database driver."""
    slots, first_id, ids, seed, sqlite = job
    calls, sessions, legs = [], [], []
    conv = (lambda r: tuple(map(_sqlite_val, r))) if sqlite else (lambda r: r)
    for call, vs, lg in generate(slots, first_id, ids, seed):
        calls.append(conv(call))
        if vs:
            sessions.append(conv(vs))
        legs.extend(map(conv, lg))
    return calls, sessions, legs


def _chunks(slots, ids, sqlite, size=100_000):
    """Jobs of about ``size`` calls each: (hour slots, first call id, ids, seed, sqlite)."""
    jobs, cur, first, n = [], [], 1, 0
    for slot in slots:
        cur.append(slot)
        n += slot[1]
        if n - first + 1 >= size:
            jobs.append((cur, first, ids, 1000 + len(jobs), sqlite))
            cur, first = [], n + 1
    if cur:
        jobs.append((cur, first, ids, 1000 + len(jobs), sqlite))
    return jobs


LOADED = ("visitor_sessions", "calls", "call_legs")


def _sqlite_path(engine):
    return engine.url.database


def load(engine, n_calls, days, workers=max(1, (os.cpu_count() or 1))):
    """Generate and insert the calls; returns (calls, seconds). Rows are made by ``workers``
    processes in chunks of 100,000 calls; the secondary indexes of the loaded tables are
    dropped first and built once at the end (a sort, not millions of random B-tree
    inserts). SQLite is written through its own connection with journal_mode=OFF,
    synchronous=OFF and a 2 GB page cache, then set back to WAL; PostgreSQL with COPY."""
    t0 = time.perf_counter()
    with engine.begin() as conn:
        ids = setup_entities(conn)
    is_pg = engine.dialect.name == "postgresql"
    engine.dispose()
    if is_pg:
        raw = engine.raw_connection()
        cur = raw.cursor()
        cur.execute("SELECT indexname, indexdef FROM pg_indexes i WHERE tablename = ANY(%s) AND NOT EXISTS "
                    "(SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)", (list(LOADED),))
        indexes = cur.fetchall()
        for name, _ in indexes:
            cur.execute(f"DROP INDEX {name}")
    else:
        raw = sqlite3.connect(_sqlite_path(engine), isolation_level=None)
        cur = raw.cursor()
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-2000000", "temp_store=MEMORY",
                       "threads=2", "foreign_keys=OFF"):
            cur.execute(f"PRAGMA {pragma}")
        indexes = cur.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                              f"AND tbl_name IN {LOADED}").fetchall()
        for name, _ in indexes:
            cur.execute(f"DROP INDEX {name}")
        cur.execute("BEGIN")
    slots = hour_slots(n_calls, days)
    n, reported = 0, 0
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for calls, sessions, legs in pool.imap(chunk_rows, _chunks(slots, ids, not is_pg)):
            for table, cols, rows in (("visitor_sessions", SESSION_COLS, sessions),
                                      ("calls", CALL_COLS, calls), ("call_legs", LEG_COLS, legs)):
                if not rows:
                    continue
                if is_pg:
                    with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
                        for r in rows:
                            cp.write_row(r)
                else:
                    cur.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES "
                                    f"({', '.join('?' * len(cols))})", rows)
            n += len(calls)
            if n - reported >= 1_000_000:
                reported = n
                print(f"  {n:,} calls loaded ({time.perf_counter() - t0:.0f} s)", flush=True)
    if not is_pg:
        cur.execute("COMMIT")
    else:
        raw.commit()
    t_idx = time.perf_counter()
    for _, sql in indexes:
        cur.execute(sql)
    if is_pg:
        raw.commit()
        raw.driver_connection.autocommit = True
        for table in ("projects", "sources", "campaigns", "operators", "calls", "visitor_sessions"):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT coalesce(max(id), 1) FROM {table}))")
        cur.execute("VACUUM ANALYZE")
    else:
        cur.execute("ANALYZE")
        cur.execute("PRAGMA journal_mode=WAL")
    print(f"  {len(indexes)} indexes built and analysed in {time.perf_counter() - t_idx:.0f} s")
    raw.close()
    return n, time.perf_counter() - t0


def timed(fn, runs):
    """p50 and p95 in ms over ``runs`` timed calls, after one untimed warm-up call (the first
    read of a cold page cache is not the steady state of a report page)."""
    fn()
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    out.sort()
    return statistics.median(out), out[min(len(out) - 1, math.ceil(0.95 * len(out)) - 1)]


def with_comparison(s, name, f):
    """What a report page computes with "compare": the report, its totals, the previous
    period's report and totals, the change."""
    rep = reports.run_report(s, name, f)
    total = figures.totals(name, rep.columns, rep.rows)
    if total is None:                   # no totals row (heatmaps, concurrency): nothing compared
        return None
    return figures.change(total, compare.previous_totals(s, name, f)[1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--url", help="existing empty database (default: a temporary one)")
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--runs", type=int, default=20, help="timed runs per query")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes generating rows")
    ap.add_argument("--keep", action="store_true", help="keep the temporary SQLite file")
    ap.add_argument("--timings-only", action="store_true",
                    help="with --url of a database loaded before: only time the queries")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # clean up the cluster on kill
    cluster = tmpdir = None
    url = args.url
    if not url:
        if args.db == "postgresql":
            cluster = PgCluster()
            url = cluster.start()
        else:
            tmpdir = tempfile.mkdtemp(prefix="ct-reports-bench-", dir=WORKDIR)
            url = f"sqlite:///{tmpdir}/bench.db"
    try:
        return _run(url, args)
    finally:
        if cluster:
            cluster.stop()
        if tmpdir and not args.keep:
            shutil.rmtree(tmpdir, ignore_errors=True)


def _run(url, args):
    print(f"database: {args.db}; calls: {args.calls:,} over {args.days} days; runs per query: {args.runs}")
    migrate.upgrade(url)
    engine = make_engine(url)
    sf = make_sessionmaker(engine)
    if not args.timings_only:
        n, secs = load(engine, args.calls, args.days, args.workers)
        print(f"loaded {n:,} calls in {secs:.0f} s ({n / secs:,.0f} calls/s)")
        t = time.perf_counter()
        with sf() as s:
            days = refresh_rollups(s, full=True)
        print(f"rollups built from scratch: {days} project-days in {time.perf_counter() - t:.0f} s")
    if engine.dialect.name == "sqlite":
        with engine.connect() as c:
            c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    print("load average before timing: %.1f %.1f %.1f" % os.getloadavg())
    with sf() as s:
        p = s.get(Project, 1)
        today = reports.today_in(p)
        first_day = s.scalar(select(func.min(Call.started_at)).where(Call.project_id == 1)).astimezone(
            reports.zone(p)).date()
        in_project = s.scalar(select(func.count()).select_from(Call).where(Call.project_id == 1))
        ranges = {"30d": reports.ReportFilter(p, today - dt.timedelta(days=29), today),
                  "all": reports.ReportFilter(p, first_day, today)}
        print(f"project 'msk': {in_project:,} calls; timings in ms (p50 / p95)")
        results = []
        for name in reports.REPORTS:
            for rname, f in ranges.items():
                results.append((f"report {name} [{rname}]",) + timed(lambda: reports.run_report(s, name, f), args.runs))
        for name in reports.REPORTS:        # the page with "compare with the previous period"
            for rname, f in ranges.items():
                results.append((f"report {name} + comparison [{rname}]",)
                               + timed(lambda: with_comparison(s, name, f), args.runs))
        everywhere = reports.ReportFilter(p, today - dt.timedelta(days=29), today,
                                          tuple(s.scalars(select(Project).order_by(Project.id))))
        results.append(("report sources, all projects + comparison [30d]",)
                       + timed(lambda: with_comparison(s, "sources", everywhere), args.runs))
        f30 = ranges["30d"]
        top = reports.by_attribute(s, f30, "source").rows[0][0]
        results.append(("drill-down source, 30 days, first page",)
                       + timed(lambda: reports.drilldown(s, f30, "source", top), args.runs))
        kw = reports.by_attribute(s, f30, "keyword").rows[1][0]
        results.append(("drill-down keyword, 30 days, first page",)
                       + timed(lambda: reports.drilldown(s, f30, "keyword", kw), args.runs))
        start, end = f30.utc_range
        for label, jf in (("journal project, first page", journal.JournalFilter(project_id=1)),
                          ("journal 30 days, first page", journal.JournalFilter(project_id=1, start=start, end=end))):
            results.append((label,) + timed(lambda: journal.page(s, jf), args.runs))
            results.append((label.replace("first", "last"),)
                           + timed(lambda: journal.page(s, jf, last=True), args.runs))
            s.expunge_all()
        results.append(("live dashboard snapshot",) + timed(lambda: reports.live_snapshot(s, p), args.runs))
    # incremental refresh after one new call today (what the scheduler does every 2 s)
    with sf() as s:
        now = dt.datetime.now(UTC)
        s.add(Call(pbx_id="pbx1", linkedid=f"bench-new-{time.time_ns()}", project_id=1, caller_number="+79160000000",
                   started_at=now, ended_at=now, status="missed", wait_seconds=5))
        s.commit()

        def one_refresh():
            refresh_rollups(s)
        results.append(("rollup refresh (recompute today)",) + timed(one_refresh, max(3, args.runs // 4)))
    print("load average after timing: %.1f %.1f %.1f" % os.getloadavg())
    w = max(len(r[0]) for r in results)
    print(f"{'query':<{w}}  {'p50':>8}  {'p95':>8}")
    for label, p50, p95 in results:
        print(f"{label:<{w}}  {p50:8.1f}  {p95:8.1f}")
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
