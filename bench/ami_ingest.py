"""AMI listener ingest benchmark (a script, not a test). Prints the figures for docs/performance.md.

    .venv/bin/python bench/ami_ingest.py                  # full run: 1 M events, 60 s burst
    .venv/bin/python bench/ami_ingest.py --quick          # 50 k events, 10 s burst
    .venv/bin/python bench/ami_ingest.py --postgresql     # same on a throw-away PostgreSQL cluster

Phases:
1. sustained: >= 1 M synthetic events built from the Asterisk 22 recordings (distinct
   Linkedids, copies of the recorded calls started 50 ms apart, so ~100-200 calls are in
   progress at once) served by a local AMI server process as fast as the socket allows;
   events/s and calls/s until the last record is committed, then every call is checked
   against its expected record (zero lost, zero duplicated). Beside it, panoramisk's bare
   parse-and-dispatch rate on the same bytes (its AMIProtocol + Manager.dispatch, one '*'
   callback), our frame parser's, and the ratio of our ingest to panoramisk's bare rate.
2. burst: a fixed 5,000 events/s for N seconds; the server stamps each event's Timestamp
   with its send time, so event-to-commit latency is measured on one clock; p50/p99/max
   and the longest gap between two socket reads while the server was sending.
3. resync: 200 calls in progress, the connection is cut; time from the cut until the
   listener has reconnected, reconciled (CoreShowChannels, QueueStatus) and committed.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing as mp
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]       # calltracking, and the tests' helpers (support)

from support.ami_streams import burst  # noqa: E402

_TS = re.compile(rb"Timestamp: \d+\.\d+")


# ---------------------------------------------------------------------- server process
def serve(path: str, port_q, mode: str, rate: int, seconds: float):
    data = Path(path).read_bytes()
    frames_end = []
    if mode == "paced":
        frames_end = data.split(b"\r\n\r\n")[:-1]

    async def client(reader, writer):
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        streaming = None
        while True:
            try:
                raw = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            head = dict(line.split(": ", 1) for line in raw.decode().split("\r\n") if ": " in line)
            aid = head.get("ActionID", "")
            action = head.get("Action", "").lower()
            if action == "login":
                writer.write(f"Response: Success\r\nActionID: {aid}\r\nMessage: Authentication accepted\r\n\r\n".encode())
                streaming = asyncio.ensure_future(send(writer))
            elif action == "ping":
                writer.write(f"Response: Success\r\nActionID: {aid}\r\nPing: Pong\r\nTimestamp: {time.time():.6f}\r\n\r\n".encode())
            elif action == "coreshowchannels":
                writer.write(f"Response: Success\r\nActionID: {aid}\r\nEventList: start\r\n\r\n"
                             f"Event: CoreShowChannelsComplete\r\nActionID: {aid}\r\nEventList: Complete\r\nListItems: 0\r\n\r\n".encode())
            else:
                writer.write(f"Response: Success\r\nActionID: {aid}\r\n\r\n".encode())
            await writer.drain()
        if streaming:
            streaming.cancel()

    async def send(writer):
        await asyncio.sleep(0.3)          # let the listener's sync actions go first
        if mode == "fast":
            view = memoryview(data)
            step = 1 << 16
            i = 0
            while i < len(data):
                j = data.find(b"\r\n\r\n", min(i + step, len(data) - 4))
                j = len(data) if j < 0 else j + 4
                writer.write(view[i:j])
                await writer.drain()
                i = j
            return
        per_tick, tick = rate // 100, 0.01
        start = time.monotonic()
        n = 0
        total = int(rate * seconds)
        while n < total and n < len(frames_end):
            due = start + (n // per_tick) * tick
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            now = b"Timestamp: %.6f" % time.time()
            chunk = b"".join(_TS.sub(now, f) + b"\r\n\r\n" for f in frames_end[n:n + per_tick])
            writer.write(chunk)
            await writer.drain()
            n += per_tick

    async def main():
        srv = await asyncio.start_server(client, "127.0.0.1", 0)
        port_q.put(srv.sockets[0].getsockname()[1])
        await asyncio.sleep(3600)

    asyncio.run(main())


def start_server(path, mode="fast", rate=0, seconds=0.0):
    q = mp.get_context("fork").Queue()
    p = mp.get_context("fork").Process(target=serve, args=(str(path), q, mode, rate, seconds), daemon=True)
    p.start()
    return p, q.get(timeout=30)


# ---------------------------------------------------------------------- listener side
def make_db(tmp: Path, name: str, pg) -> str:
    from calltracking import migrate
    from calltracking import entities as svc
    from calltracking.db import make_engine, make_sessionmaker
    from support.fixtures import DIDS

    url = pg.url(name) if pg is not None else f"sqlite:///{tmp / (name + '.db')}"
    if pg is not None:
        eng = make_engine(pg.url("postgres"))
        with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
        eng.dispose()
    migrate.upgrade(url)
    eng = make_engine(url)
    with make_sessionmaker(eng)() as s, s.begin():
        p = svc.add_project(s, "acme")
        src = svc.add_source(s, p, "Recorded")
        for did in DIDS:
            svc.add_number(s, p, did, source=src)
    eng.dispose()
    return url


class Run:
    def __init__(self, url: str, port: int, hook=None, instrument=False, parser_process=False):
        from calltracking.db import make_engine, make_sessionmaker
        from support.config import make_config
        from calltracking.cli._common import run_loop     # uvloop on Linux, as `calltracking run`
        from support.listener import Listener

        self.engine = make_engine(url)
        self.listener = Listener(make_config(url, ami__port=port, ami__ping_interval=5,
                                             ami__parser_process="yes" if parser_process else "no"),
                                 make_sessionmaker(self.engine), run=run_loop)
        self.gaps = []
        if instrument:
            self._instrument()
        self.hook = hook

    def _instrument(self):
        from ami_listener import connection

        orig = connection._Protocol.data_received
        state = {"last": None}
        gaps = self.gaps

        def timed(proto, data, _orig=orig):
            now = time.monotonic()
            if state["last"] is not None:
                gaps.append(now - state["last"])
            state["last"] = now
            return _orig(proto, data)

        connection._Protocol.data_received = timed
        self._restore = lambda: setattr(connection._Protocol, "data_received", orig)

    def start(self):
        self.listener.start()
        if self.hook:
            self.listener.stats["processor"].on_commit = self.hook
        self.lags = []

        async def ticker():
            while True:
                t = time.monotonic()
                await asyncio.sleep(0.01)
                self.lags.append(time.monotonic() - t - 0.01)

        self._ticker = asyncio.run_coroutine_threadsafe(ticker(), self.listener.loop)
        return self

    def stop(self):
        self._ticker.cancel()
        self.listener.stop()
        if hasattr(self, "_restore"):
            self._restore()
        self.engine.dispose()


def count_events(frames) -> int:
    return sum(1 for f in frames if f.startswith(b"Event: ") and b"ActionID: " not in f)


def sustained(tmp, pg, n_events, parser_process=False):
    t0 = time.time()
    frames, expected = burst(n_events)
    path = tmp / "stream.ami"
    path.write_bytes(b"".join(frames))
    n = count_events(frames)
    del frames
    gc.collect()
    print(f"stream: {n:,} events, {len(expected):,} calls, {path.stat().st_size / 1e6:.0f} MB "
          f"(built in {time.time() - t0:.0f} s)")
    load = os.getloadavg()
    bare = bare_rates(path)
    url = make_db(tmp, "ct_bench_sustained", pg)
    proc, port = start_server(path)
    run = Run(url, port, parser_process=parser_process).start()
    lst = run.listener
    p = lst.stats["processor"]
    start = None
    while p.counts["events"] < n:
        if start is None and p.counts["events"]:
            start = time.perf_counter()
        time.sleep(0.01)
    lst.wait_idle(n, timeout=600)
    elapsed = time.perf_counter() - start
    run.stop()
    proc.terminate()
    lost, dup, wrong = verify(url, expected)
    where = "a helper process" if parser_process else "the listener's process"
    print(f"frames parsed in {where} ([ami] parser_process = {'yes' if parser_process else 'no'})")
    print(f"sustained ingest: {n / elapsed:,.0f} events/s, {len(expected) / elapsed:,.0f} calls/s "
          f"({elapsed:.1f} s; max backlog {lst.stats.get('max_backlog', 0):,} events); "
          f"lost calls {lost}, duplicated {dup}, wrong records {wrong}")
    print(f"bare parse+dispatch, same bytes: panoramisk {bare['panoramisk']:,.0f} events/s; "
          f"our frame parser {bare['ours']:,.0f} events/s")
    print(f"sustained ingest / panoramisk bare parse: {n / elapsed / bare['panoramisk']:.2f}x (target >= 1.5x); "
          f"load average before the run {load[0]:.1f}, after {os.getloadavg()[0]:.1f}")


def bare_rates(path: Path) -> dict:
    from panoramisk import Manager
    from panoramisk.ami_protocol import AMIProtocol
    from calltracking.interpret import FrameParser

    data = path.read_bytes()
    chunks = [data[i:i + 65536] for i in range(0, len(data), 65536)]
    out = {}
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    m = Manager(loop=loop)
    seen = [0]
    m.register_event("*", lambda manager, event: seen.__setitem__(0, seen[0] + 1))

    class _T:
        def write(self, _):
            pass

        def close(self):
            pass

    proto = AMIProtocol()
    proto.connection_made(_T())
    proto.factory, proto.encoding = m, "utf-8"
    t = time.perf_counter()
    for c in chunks:
        proto.data_received(c)
    out["panoramisk"] = seen[0] / (time.perf_counter() - t)
    fp, n = FrameParser(), 0
    t = time.perf_counter()
    for c in chunks:
        n += len(fp.feed(c))
    out["ours"] = n / (time.perf_counter() - t)
    loop.close()
    asyncio.set_event_loop(None)
    return out


def verify(url, expected):
    from sqlalchemy import select
    from calltracking.db import make_engine, make_sessionmaker
    from calltracking.models import Call

    eng = make_engine(url)
    lost = dup = wrong = 0
    with make_sessionmaker(eng)() as s:
        rows = s.execute(select(Call.linkedid, Call.status, Call.talk_seconds, Call.wait_seconds,
                                Call.hold_seconds)).all()
    eng.dispose()
    by = {}
    for r in rows:
        dup += r.linkedid in by
        by[r.linkedid] = r
    for lid, e in expected.items():
        r = by.get(lid)
        if r is None:
            lost += 1
            continue
        if r.status != e["status"] or any(abs(float(getattr(r, k)) - e[k]) > 0.0011
                                          for k in ("talk_seconds", "wait_seconds", "hold_seconds")):
            wrong += 1
    return lost, dup, wrong


def paced_burst(tmp, pg, seconds, rate=5000):
    frames, _ = burst(int(rate * seconds) + 1000)
    path = tmp / "burst.ami"
    path.write_bytes(b"".join(frames))
    del frames, _
    gc.collect()
    url = make_db(tmp, "ct_bench_burst", pg)
    lat = []

    def hook(rows, _now=time.time):
        now = _now()
        lat.extend(now - r[2] for r in rows)        # (pbx_id, linkedid, at, event, data)

    proc, port = start_server(path, "paced", rate, seconds)
    run = Run(url, port, hook=hook, instrument=True).start()
    time.sleep(seconds + 1.5)
    run.listener.wait_idle(0, timeout=120)
    gaps = sorted(run.gaps[5:])          # skip the login exchange
    lags = sorted(run.lags)
    run.stop()
    proc.terminate()
    lat.sort()
    q = statistics.quantiles(lat, n=100)
    print(f"burst {rate:,} events/s for {seconds:.0f} s: event-to-commit p50 {q[49] * 1000:.0f} ms, "
          f"p99 {q[98] * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms ({len(lat):,} stored events timed); "
          f"longest socket-read gap {gaps[-1] * 1000:.0f} ms (p99 {statistics.quantiles(gaps, n=100)[98] * 1000:.0f} ms); "
          f"event-loop lag max {lags[-1] * 1000:.0f} ms")


def resync(tmp, pg, live_calls=200):
    from support.ami_server import FakeAsterisk
    from support.fixtures import queue_members

    frames, expected = burst(live_calls * 140, spacing=0.001)
    # Stop the stream while most calls are in progress: before the first caller hangs up.
    cut = next(i for i, f in enumerate(frames) if b"Event: Hangup" in f and b"from-trunk" in f)
    url = make_db(tmp, "ct_bench_resync", pg)
    srv = FakeAsterisk(members=queue_members()).start()
    srv.add(frames)
    run = Run(url, srv.port).start()
    srv.emit(cut)
    run.listener.wait_idle(0)
    live = len(run.listener.stats["processor"].it.calls)
    t = time.perf_counter()
    srv.drop()
    st = run.listener.stats
    while st.get("resyncs", 0) < 2:
        time.sleep(0.005)
    run.listener.wait_idle(0)
    took = time.perf_counter() - t
    run.stop()
    srv.stop()
    print(f"resync after a forced reconnect with {live} calls in progress: {took:.2f} s "
          f"(cut -> reconnected, CoreShowChannels+QueueStatus reconciled and committed)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="50 k events and a 10 s burst")
    ap.add_argument("--events", type=int, default=None)
    ap.add_argument("--burst-seconds", type=float, default=None)
    ap.add_argument("--postgresql", action="store_true", help="use a throw-away PostgreSQL cluster")
    ap.add_argument("--only", choices=["sustained", "burst", "resync"], default=None)
    ap.add_argument("--parser-process", action="store_true",
                    help="[ami] parser_process = yes: parse in a helper process (default: in the listener's)")
    a = ap.parse_args()
    n = a.events or (50_000 if a.quick else 1_000_000)
    secs = a.burst_seconds or (10.0 if a.quick else 60.0)
    import logging
    logging.basicConfig(level=logging.ERROR)
    pg = None
    if a.postgresql:
        from support.postgres import PgCluster
        pg = PgCluster().start()
    print(f"database: {'PostgreSQL (throw-away cluster)' if pg else 'SQLite (WAL)'}; "
          f"{os.cpu_count()} CPUs; Python {sys.version.split()[0]}")
    try:
        with tempfile.TemporaryDirectory(prefix="ct-ami-bench-") as d:
            tmp = Path(d)
            if a.only in (None, "sustained"):
                sustained(tmp, pg, n, parser_process=a.parser_process)
            if a.only in (None, "burst"):
                paced_burst(tmp, pg, secs)
            if a.only in (None, "resync"):
                resync(tmp, pg)
    finally:
        if pg is not None:
            pg.stop()


if __name__ == "__main__":
    main()
