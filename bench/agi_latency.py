#!/usr/bin/env python3
"""FastAGI benchmark: answer time of the `route` hook as Asterisk sees it (prints figures).

Not a test. Builds a realistic data set (10,000 tracking numbers of which 1,000
are pool numbers held by live visitor sessions, 50 routing rules, 1,000,000
past calls for the first/repeat check), starts the real `calltracking agi`
server in its own process, and drives it with an Asterisk-like FastAGI client
(the headers Asterisk 22 sends, every command answered like Asterisk: `200 result=1`, `EXEC MSet` `200 result=0`).
The client is ``bench/fastagi_load.c`` (compiled with gcc at the start; one thread, epoll,
like Asterisk's own C code), or with ``--client python`` this script's asyncio client, which
spends about three times the CPU per call on the same two cores as the server (both printed):

- open loop: new calls at a fixed rate (default 200/s for 30 s): p50/p99/max;
- closed loop: as many calls as the server answers (saturation, calls/s), until
  the total reaches --total (default 100,000 calls, all of which must succeed);
- the classic process-per-call script (``python -m agi.classic``) on the same data.

With ``--floor``, the same load from the same client (by default the Python asyncio one, the
one the targets were set with) goes, in alternating rounds (floor, ours, floor, ours, ...), to
ours and to a trivial FastAGI server without a database (it reads the header, sets CT_STATUS
and CT_QUEUE with one ``EXEC MSet``, closes): the floor for a Python server on this machine. Each round is
an open loop (``--rate`` for ``--seconds``: p50, p99, max) and a closed loop (``--concurrency``
at a time for ``--closed-seconds``: saturation); the medians and the ratios ours / floor are
printed for each count of ``--floor-processes`` (default 1 and 2), with the targets: one
process p99 <= 2x the floor's in every round and saturation >= 0.5x the floor's; two processes
saturation >= 0.8x the floor's single process; no fallback answer.

    .venv/bin/python bench/agi_latency.py --db sqlite
    .venv/bin/python bench/agi_latency.py --db postgresql        # throw-away cluster
    .venv/bin/python bench/agi_latency.py --db sqlite --small    # a quick run
    .venv/bin/python bench/agi_latency.py --db sqlite --floor    # beside the floor, 3 rounds
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]       # calltracking, and the tests' helpers (support)

from sqlalchemy import insert, select  # noqa: E402

from calltracking import migrate  # noqa: E402
from calltracking.db import make_engine  # noqa: E402
from calltracking.models import (  # noqa: E402
    Call, Campaign, NumberPool, PoolReservation, Project, RoutingRule, Source, TrackingNumber,
    VisitorSession,
)

FIXTURE = ROOT / "tests" / "fixtures" / "asterisk-22" / "fastagi_route_session.json"
UTC = dt.timezone.utc


# ------------------------------------------------------------------ data set
def _calls_columns():
    """Every NOT NULL column of calls needs a value in bulk inserts (Python defaults do not run in COPY)."""
    return [c for c in Call.__table__.c if not c.primary_key]


def _default_for(col, now):
    from sqlalchemy import Boolean, Integer, Numeric

    if col.nullable:
        return None
    t = col.type
    if isinstance(t, Boolean):
        return False
    if isinstance(t, (Integer, Numeric)):
        return 0
    if "DateTime" in type(t).__name__ or getattr(t, "impl", None) is not None and "DateTime" in str(t):
        return now
    return ""


def generate(url: str, numbers: int, pool_numbers: int, rules: int, past_calls: int, seed: int = 1):
    rnd = random.Random(seed)
    engine = make_engine(url)
    now = dt.datetime.now(UTC)
    t0 = time.monotonic()
    with engine.begin() as conn:
        pid = conn.execute(insert(Project).values(key="bench", name="Bench", timezone="Europe/Moscow",
                                                  default_queue="sales", first_call_window_days=0,
                                                  allowed_origins="", currency="RUB", created_at=now)
                           ).inserted_primary_key[0]
        src_ids = []
        for i in range(20):
            src_ids.append(conn.execute(insert(Source).values(
                project_id=pid, name=f"Source {i}", channel="ads", short_label=f"S{i}", active=True)
            ).inserted_primary_key[0])
        camp_ids = []
        for i in range(50):
            camp_ids.append((conn.execute(insert(Campaign).values(
                project_id=pid, source_id=src_ids[i % 20], name=f"Campaign {i}", utm_campaign=f"c{i}",
                active=True)).inserted_primary_key[0], src_ids[i % 20]))
        pool_id = conn.execute(insert(NumberPool).values(project_id=pid, name="website", hold_seconds=900,
                                                         source_id=src_ids[0], exhausted_count=0,
                                                         active=True)).inserted_primary_key[0]
        static_n = numbers - pool_numbers
        static = [f"+7495{1000000 + i:07d}" for i in range(static_n)]
        pooled = [f"+7495{3000000 + i:07d}" for i in range(pool_numbers)]
        rows = []
        for i, num in enumerate(static):
            cid, sid = camp_ids[i % 50]
            rows.append(dict(project_id=pid, number=num, kind="static", source_id=sid,
                             campaign_id=cid if i % 2 else None, pool_id=None, active=True,
                             callerid_prefix=True, record=bool(i % 3), description="", created_at=now))
        for num in pooled:
            rows.append(dict(project_id=pid, number=num, kind="pool", source_id=src_ids[0], campaign_id=None,
                             pool_id=pool_id, active=True, callerid_prefix=True, record=True,
                             description="", created_at=now))
        conn.execute(insert(TrackingNumber), rows)
        tn_ids = dict(conn.execute(select(TrackingNumber.number, TrackingNumber.id)).all())
        sessions = [dict(project_id=pid, visitor_id=f"v{i}", keyword=rnd.choice(["buy", "cheap", "bulk", ""]),
                         utm_term=rnd.choice(["retail", "wholesale", ""]), source_id=rnd.choice(src_ids),
                         first_seen=now - dt.timedelta(minutes=10), last_seen=now)
                    for i in range(pool_numbers)]
        conn.execute(insert(VisitorSession), sessions)
        vs_ids = conn.execute(select(VisitorSession.id).order_by(VisitorSession.id)).scalars().all()
        conn.execute(insert(PoolReservation), [
            dict(pool_id=pool_id, tracking_number_id=tn_ids[num], session_id=vs, released_at=None,
                 assigned_at=now - dt.timedelta(minutes=10), last_seen_at=now)
            for num, vs in zip(pooled, vs_ids)])
        rule_rows = []
        for i in range(rules):
            kind = i % 5
            r = dict(project_id=pid, name=f"rule {i}", priority=10 + i, weekdays="1234567", enabled=True,
                     queue=f"q{i}", target="", keyword_regex="", utm_regex="", source_id=None,
                     campaign_id=None, time_from=None, time_to=None, record=None)
            if kind == 0:
                r["source_id"] = src_ids[i % 20]
            elif kind == 1:
                r["campaign_id"] = camp_ids[i % 50][0]
            elif kind == 2:
                r.update(time_from=dt.time(22), time_to=dt.time(6), source_id=src_ids[(i + 3) % 20])
            elif kind == 3:
                r["keyword_regex"] = "bulk|wholesale"
            else:
                r.update(source_id=src_ids[(i + 7) % 20], weekdays="67")
            rule_rows.append(r)
        conn.execute(insert(RoutingRule), rule_rows)
    print(f"  catalogue: {numbers} numbers ({pool_numbers} pool, live sessions), {rules} rules "
          f"in {time.monotonic() - t0:.1f} s", flush=True)

    # past calls: callers from a set of 200,000 numbers, spread over a year
    t0 = time.monotonic()
    cols = _calls_columns()
    names = [c.name for c in cols]
    base = {c.name: _default_for(c, now) for c in cols}
    callers = [f"+7916{i:07d}" for i in range(200_000)]
    dids = static + pooled
    chunk = 50_000
    pg = engine.dialect.name == "postgresql"
    for start in range(0, past_calls, chunk):
        batch = []
        for i in range(start, min(start + chunk, past_calls)):
            when = now - dt.timedelta(seconds=rnd.randint(3600, 365 * 86400))
            row = dict(base, pbx_id="pbx1", linkedid=f"h{i}", project_id=pid, did=rnd.choice(dids),
                       caller_number=rnd.choice(callers), attribution="static", status="answered",
                       started_at=when, created_at=when, updated_at=when, source_id=rnd.choice(src_ids))
            batch.append(row)
        if pg:
            raw = engine.raw_connection()
            try:
                cur = raw.cursor()
                with cur.copy(f"COPY calls ({', '.join(names)}) FROM STDIN") as cp:
                    for row in batch:
                        cp.write_row([(row[n].replace(tzinfo=None) if isinstance(row[n], dt.datetime)
                                       else row[n]) for n in names])
                raw.commit()
            finally:
                raw.close()
        else:               # the DBAPI directly: SQLAlchemy's per-row processing is the slow part
            raw = engine.raw_connection()
            try:
                cur = raw.cursor()
                cur.execute("BEGIN")
                cur.executemany(f"INSERT INTO calls ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                                [[(row[n].replace(tzinfo=None).isoformat(" ", "microseconds") if isinstance(row[n], dt.datetime)
                                   else row[n]) for n in names] for row in batch])
                cur.execute("COMMIT")
            finally:
                raw.close()
    if pg:
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    else:
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    print(f"  {past_calls:,} past calls in {time.monotonic() - t0:.1f} s", flush=True)
    return static, pooled, callers


# --------------------------------------------------------------- the client
class Headers:
    def __init__(self):
        self.template = json.loads(FIXTURE.read_text())[0]["asterisk_sent_headers"]

    def build(self, did: str, linkedid: str, caller: str) -> bytes:
        out = []
        for line in self.template:
            key = line.split(":", 1)[0]
            if key == "agi_arg_1":
                line = f"agi_arg_1: {did.lstrip('+')}"
            elif key == "agi_arg_2":
                line = f"agi_arg_2: {linkedid}"
            elif key == "agi_callerid":
                line = f"agi_callerid: {caller.lstrip('+')}"
            elif key == "agi_extension":
                line = f"agi_extension: {did.lstrip('+')}"
            out.append(line)
        return ("\n".join(out) + "\n\n").encode()


def answer(line: bytes, got: dict) -> bytes:
    """Asterisk's reply to one command, noting the variables set (the values we send for
    MSet hold no separators, quotes or escapes, see agi/protocol.py)."""
    if line.startswith(b"SET VARIABLE "):
        name, _, value = line[13:].decode().rstrip("\n").partition(" ")
        got[name] = value.strip('"')
        return b"200 result=1\n"
    if line.startswith(b'EXEC MSet "'):
        for pair in line[11:].decode().rstrip('"\n').split(","):
            name, _, value = pair.partition("=")
            got[name] = value
        return b"200 result=0\n"
    return b"200 result=1\n"


async def fastagi_call(port: int, header: bytes) -> tuple[float, bool, str]:
    """One call; ok when the server set CT_STATUS=ok and a queue (the floor sets just those)."""
    t0 = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(header)
        got = {}
        while True:
            line = await reader.readline()
            if not line:
                break
            writer.write(answer(line, got))
        writer.close()
        elapsed = time.perf_counter() - t0
        ok = got.get("CT_STATUS") == "ok" and bool(got.get("CT_QUEUE"))
        return elapsed, ok, "" if ok else f"status={got.get('CT_STATUS')!r}"
    except Exception as e:  # noqa: BLE001
        return time.perf_counter() - t0, False, f"{type(e).__name__}: {e}"


class Load:
    def __init__(self, static, pooled, callers, seed=2):
        self.rnd = random.Random(seed)
        self.static, self.pooled, self.callers = static, pooled, callers
        self.headers = Headers()
        self.n = 0
        self.prefix = f"b{int(time.time())}"

    def next(self) -> bytes:
        self.n += 1
        did = self.rnd.choice(self.pooled) if self.rnd.random() < 0.3 else self.rnd.choice(self.static)
        caller = self.rnd.choice(self.callers) if self.rnd.random() < 0.7 else f"+7926{self.rnd.randint(0, 9999999):07d}"
        return self.headers.build(did, f"{self.prefix}.{self.n}", caller)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_pids(pid: int) -> list[int]:
    """The server process and its children (``--processes``)."""
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [pid] + [int(x) for x in f.read().split()]


def children_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def client_cpu() -> float:
    """CPU seconds of this process and its finished children (the C client)."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(p / 100 * len(values) + 0.5)) - 1))
    return values[k]


async def open_loop(port, load: Load, rate: float, seconds: float):
    n = int(rate * seconds)
    tasks = []
    start = time.perf_counter() + 0.1
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(fastagi_call(port, load.next())))
    results = await asyncio.gather(*tasks)
    lat = [r[0] * 1000 for r in results]
    errors = [r[2] for r in results if not r[1]]
    return dict(calls=n, rate=rate, p50=pct(lat, 50), p99=pct(lat, 99), max=max(lat),
                failed=len(errors), errors=errors)


async def closed_loop(port, load: Load, concurrency: int, total: int, max_seconds: float):
    done = 0
    failed: list[str] = []
    lat: list[float] = []
    t0 = time.perf_counter()
    deadline = t0 + max_seconds

    async def worker():
        nonlocal done
        while done < total and time.perf_counter() < deadline:
            done += 1
            e, ok, err = await fastagi_call(port, load.next())
            lat.append(e * 1000)
            if not ok:
                failed.append(err)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    return dict(calls=len(lat), seconds=elapsed, rate=len(lat) / elapsed, p50=pct(lat, 50),
                p99=pct(lat, 99), failed=len(failed), errors=failed, concurrency=concurrency)


# ---------------------------------------------- the C client (like Asterisk)
def build_c_client(tmp: Path) -> Path | None:
    """Compile bench/fastagi_load.c (gcc is on every machine we support); None without gcc."""
    exe = tmp / "fastagi_load"
    try:
        subprocess.run(["gcc", "-O2", "-o", str(exe), str(ROOT / "bench" / "fastagi_load.c")],
                       check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"  cannot build the C client ({e}); using the Python client", flush=True)
        return None
    return exe


async def c_run(exe: Path, tmp: Path, port: int, load: "Load", mode: str, n: float, calls: int) -> dict:
    """Run ``calls`` calls through the C client (``mode`` open: n calls/s; closed: n in flight)."""
    headers, out = tmp / f"headers.{mode}", tmp / f"out.{mode}"
    headers.write_bytes(b"\0".join(load.next() for _ in range(calls)))
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(str(exe), str(port), str(headers), mode, str(n), str(calls),
                                                str(out), stderr=subprocess.PIPE)
    _, err = await proc.communicate()
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"C client failed: {err.decode(errors='replace')}")
    lat, errors = [], []
    for line in out.read_text().splitlines():
        us, ok, what = line.split(" ", 2)
        lat.append(int(us) / 1000.0)
        if ok != "1":
            errors.append(what)
    return dict(calls=len(lat), seconds=elapsed, rate=len(lat) / elapsed, p50=pct(lat, 50), p99=pct(lat, 99),
                max=max(lat), failed=len(errors), errors=errors)


async def classic_loop(env, load: Load, calls: int, concurrency: int):
    done, failed, lat = 0, [], []

    async def one():
        header = load.next()
        lines = [l for l in header.decode().splitlines() if l]
        args = ["route"] + [l.split(": ", 1)[1] for l in lines if l.startswith("agi_arg_")]
        classic = "\n".join(l for l in lines if not l.startswith(("agi_arg_", "agi_network"))
                            ) + "\n" + "\n".join(f"agi_arg_{i}: {a}" for i, a in enumerate(args, 1)) + "\n\n"
        t0 = time.perf_counter()
        p = await asyncio.create_subprocess_exec(sys.executable, "-m", "agi.classic", *args, cwd=str(ROOT),
                                                 env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                 stderr=subprocess.DEVNULL)
        p.stdin.write(classic.encode())
        got = {}
        while True:
            line = await p.stdout.readline()
            if not line:
                break
            p.stdin.write(answer(line, got))
        await p.wait()
        lat.append((time.perf_counter() - t0) * 1000)
        if got.get("CT_STATUS") != "ok":
            failed.append(str(got.get("CT_STATUS")))

    async def worker():
        nonlocal done
        while done < calls:
            done += 1
            await one()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    return dict(calls=len(lat), rate=len(lat) / elapsed, p50=pct(lat, 50), failed=len(failed),
                concurrency=concurrency)


# ------------------------------------------------------- the floor (--floor)
FLOOR_COMMAND = b'EXEC MSet "CT_STATUS=ok,CT_QUEUE=sales"\n'


async def _floor_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The trivial FastAGI server: read the header to its blank line, set the variables the
    client checks with one command, read the reply, close. No database, no parsing beyond that."""
    try:
        while True:
            line = await reader.readline()
            if not line or line == b"\n":
                break
        writer.write(FLOOR_COMMAND)
        await reader.readline()
    except ConnectionError:
        pass
    finally:
        writer.close()


def serve_floor(listen: str, loop: str) -> None:
    """``--serve-floor HOST:PORT``: the floor server in this process (SO_REUSEPORT, so that
    several of them share the port like ``[agi] processes``), on asyncio's own event loop
    (the issue's floor) or on uvloop (the loop ours runs on: ``--floor-loop uvloop``)."""
    host, port = listen.rsplit(":", 1)

    async def main():
        server = await asyncio.start_server(_floor_connection, host, int(port), backlog=1024,
                                            reuse_address=True, reuse_port=True)
        print("floor listening", file=sys.stderr, flush=True)
        async with server:
            await server.serve_forever()

    if loop == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


def listening(port: int) -> int:
    """How many sockets listen on 127.0.0.1:``port`` (one per process with SO_REUSEPORT)."""
    n = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if f[3] == "0A" and int(f[1].split(":")[1], 16) == port:
            n += 1
    return n


class Server:
    """A server under test in its own process(es); its stderr is kept (warnings counted)."""

    def __init__(self, name: str, cmd: list[str], env: dict, port: int, processes: int):
        self.name, self.port, self.processes = name, port, processes
        self.proc = subprocess.Popen(cmd, cwd=str(ROOT), env=env, stderr=subprocess.PIPE)
        self.log: list[str] = []
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()
        deadline = time.monotonic() + 60
        while listening(port) < processes:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{name} did not start: {''.join(self.log)[-2000:]}")
            time.sleep(0.05)

    def _drain(self) -> None:
        for line in self.proc.stderr:
            self.log.append(line.decode(errors="replace"))

    def cpu(self) -> float:
        return sum(cpu_seconds(x) for x in server_pids(self.proc.pid))

    def warnings(self) -> list[str]:
        return [l for l in self.log if "WARNING" in l or "ERROR" in l or "Traceback" in l]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_floor(processes: int, loop: str) -> Server:
    port = _free_port()
    procs = [Server("floor", [sys.executable, str(Path(__file__).resolve()), "--serve-floor",
                              f"127.0.0.1:{port}", "--floor-loop", loop], dict(os.environ), port, 1)]
    for _ in range(processes - 1):      # the others join the port
        procs.append(Server("floor", procs[0].proc.args, dict(os.environ), port, len(procs) + 1))
    first = procs[0]
    first.others = procs[1:]
    first.processes = processes
    first.cpu = lambda: sum(cpu_seconds(p.proc.pid) for p in procs)
    first.stop = lambda: [Server.stop(p) for p in procs]
    return first


def start_ours(env: dict, workers: int, processes: int) -> Server:
    port = _free_port()
    env = dict(env, CALLTRACKING_AGI_LISTEN=f"127.0.0.1:{port}")
    return Server("ours", [sys.executable, "-c", "from calltracking.cli import main; "
                           f"main(['agi', '--workers', '{workers}', '--processes', '{processes}'])"],
                  env, port, processes)


async def measure(server: Server, load: Load, a, exe, tmp) -> dict:
    """One round against one server: the open loop (p50, p99, max), then the closed loop
    (saturation: --closed-seconds with the Python client, --closed-calls with the C one); the
    server's CPU per call in the closed loop."""
    o0 = server.cpu()
    if exe:
        ol = await c_run(exe, tmp, server.port, load, "open", a.rate, int(a.rate * a.seconds))
    else:
        ol = await open_loop(server.port, load, a.rate, a.seconds)
    c0 = server.cpu()
    open_cpu_ms = (c0 - o0) * 1000 / max(ol["calls"], 1)
    if exe:
        cl = await c_run(exe, tmp, server.port, load, "closed", a.concurrency, a.closed_calls)
    else:
        cl = await closed_loop(server.port, load, a.concurrency, 10 ** 9, a.closed_seconds)
    sat, lag = cl["rate"], 0.0
    if server.name == "ours":
        # the hooks answer before their rows are committed (the spool): a closed loop can run
        # ahead of the writer thread. Saturation counts what was also committed: the loop's
        # calls over its time plus the time the writer then needed to catch up.
        lag = await drained(tmp / "agi-spool")
        sat = committed_rate(cl["calls"], cl["rate"], lag)
    cpu_ms = (server.cpu() - c0) * 1000 / max(cl["calls"], 1)
    return dict(p50=ol["p50"], p99=ol["p99"], max=ol["max"], sat=sat, answered=cl["rate"], lag=lag,
                sat_p99=cl["p99"], cpu_ms=cpu_ms, open_cpu_ms=open_cpu_ms, failed=ol["failed"] + cl["failed"],
                calls=ol["calls"] + cl["calls"], errors=ol["errors"] + cl["errors"])


def committed_rate(calls: int, answered: float, lag: float) -> float:
    """Calls per second counting their rows' commits: ``calls`` answered at ``answered`` per
    second, the writer done ``lag`` seconds after the last."""
    return calls / (calls / answered + lag) if answered else answered


async def drained(spool: Path, timeout: float = 300.0) -> float:
    """Seconds until every call row in ``spool`` is committed (each server process's spool
    file is emptied, a rotated-out one deleted, once all its rows are)."""
    def size(p: Path) -> int:
        try:
            return p.stat().st_size
        except FileNotFoundError:   # a rotated-out file, deleted as its last row was done
            return 0

    t0 = time.perf_counter()
    while any(size(p) for p in spool.glob("*.spool")):
        if time.perf_counter() - t0 > timeout:
            raise SystemExit(f"the call rows in {spool} were not committed within {timeout:.0f} s")
        await asyncio.sleep(0.005)
    return time.perf_counter() - t0


def _median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def floor_run(a, env, load: Load, tmp: Path) -> bool:
    """Alternating rounds, floor then ours, for each process count; ratios and the targets."""
    from calltracking.cli._common import run_loop

    exe = build_c_client(tmp) if a.client == "c" else None
    print(f"floor: a trivial FastAGI server on {a.floor_loop} (reads the header, one EXEC MSet, "
          f"closes; no database); ours on uvloop; database {a.db}; call rows spooled, "
          f"write_wait_ms {a.write_wait_ms if a.write_wait_ms is not None else 'default (0)'}")
    print(f"client: {'C (bench/fastagi_load.c)' if exe else 'Python asyncio (uvloop)'}; "
          f"{a.rounds} rounds of: open loop {a.rate:.0f}/s for {a.seconds:g} s, closed loop "
          f"{a.concurrency} at a time for {a.closed_seconds:g} s", flush=True)
    results: dict = {}
    all_met = True
    floor_single = None
    for procs in a.floor_processes:
        floor, ours = start_floor(procs, a.floor_loop), start_ours(env, a.workers, procs)
        try:
            async def rounds():
                # warm-up, not counted: the servers' catalogues, connections, code paths
                await closed_loop(floor.port, load, 4, 300, 30)
                await closed_loop(ours.port, load, 4, 300, 30)
                gc.collect()
                gc.freeze()
                gc.disable()            # the client's own collector would show as server tail
                out = {"floor": [], "ours": []}
                try:
                    for r in range(a.rounds):
                        for name, srv in (("floor", floor), ("ours", ours)):
                            la = os.getloadavg()[0]
                            m = await measure(srv, load, a, exe, tmp)
                            m["load"] = la
                            out[name].append(m)
                            print(f"  {procs} proc. round {r + 1} {name:5}: p50 {m['p50']:6.2f}  p99 "
                                  f"{m['p99']:6.2f}  max {m['max']:6.2f} ms  saturation {m['sat']:6.0f}/s "
                                  + (f"(answered {m['answered']:.0f}/s, rows committed {m['lag']:.2f} s "
                                     f"later) " if name == "ours" else "")
                                  + f"(p99 {m['sat_p99']:.1f} ms)  server CPU {m['cpu_ms']:.3f} ms/call "
                                  f"({m['open_cpu_ms']:.3f} at {a.rate:g}/s)  "
                                  f"failed {m['failed']}  (load {la:.1f})", flush=True)
                finally:
                    gc.enable()
                return out

            out = run_loop(rounds())
        finally:
            ours.stop()
            floor.stop()
        results[procs] = out
        f, o = out["floor"], out["ours"]
        if procs == 1:
            floor_single = _median([m["sat"] for m in f])
        print(f"{procs} process{'es' if procs > 1 else ''}: medians over {a.rounds} rounds "
              f"(ours / floor = ratio)")
        for key, label in (("p50", "p50 ms"), ("p99", "p99 ms"), ("max", "max ms"),
                           ("sat", "saturation/s"), ("cpu_ms", "CPU ms/call"),
                           ("open_cpu_ms", f"CPU at {a.rate:g}/s")):
            mo, mf = _median([m[key] for m in o]), _median([m[key] for m in f])
            print(f"  {label:13} {mo:9.2f} / {mf:9.2f} = {mo / mf:5.2f}x")
        per_round = [oo["p99"] / ff["p99"] for oo, ff in zip(o, f)]
        failed = sum(m["failed"] for m in o)
        sat_ratio = _median([m["sat"] for m in o]) / _median([m["sat"] for m in f])
        checks = [(f"p99 <= 2x the floor's in every round ({', '.join(f'{x:.2f}x' for x in per_round)})",
                   all(x <= 2.0 for x in per_round))] if procs == 1 else []
        if procs == 1:
            checks.append((f"saturation >= 0.5x the floor's ({sat_ratio:.2f}x)", sat_ratio >= 0.5))
        else:
            vs1 = _median([m["sat"] for m in o]) / floor_single if floor_single else float("nan")
            checks.append((f"saturation >= 0.8x the floor's single process ({vs1:.2f}x)"
                           if floor_single else "saturation vs the floor's single process: "
                           "not measured (add 1 to --floor-processes)", bool(floor_single) and vs1 >= 0.8))
        checks.append((f"no fallback answers ({failed} of {sum(m['calls'] for m in o):,} calls)", failed == 0))
        for text, ok in checks:
            print(f"  target {'met    ' if ok else 'NOT met'}: {text}")
            all_met = all_met and ok
        from collections import Counter

        for e, n in Counter(x for m in o for x in m["errors"]).most_common(5):
            print(f"    {n:>6} x {e}")
        for w in ours.warnings()[:5]:
            print(f"    server: {w.rstrip()}")
    print(json.dumps({"db": a.db, "client": "c" if exe else "python", "rounds": {
        str(p): {k: [{kk: vv for kk, vv in m.items() if kk != "errors"} for m in v] for k, v in r.items()}
        for p, r in results.items()}}))
    print("all targets met" if all_met else "some targets NOT met")
    return all_met


# ------------------------------------------------------------------- driver
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_pg():
    from support.postgres import PgCluster

    return PgCluster().start()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--small", action="store_true", help="1,000 numbers, 20,000 past calls, short runs")
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--seconds", type=float, default=None, help="open-loop duration (default 30; 5 with --small)")
    ap.add_argument("--total", type=int, default=100_000, help="calls over the whole run (all must succeed)")
    ap.add_argument("--concurrency", type=int, default=16, help="closed-loop simultaneous calls")
    ap.add_argument("--max-closed-seconds", type=float, default=600.0)
    ap.add_argument("--classic-calls", type=int, default=40, help="calls to the classic script (0: none)")
    ap.add_argument("--workers", type=int, default=4, help="`calltracking agi --workers`")
    ap.add_argument("--processes", type=int, default=1, help="FastAGI server processes on the port")
    ap.add_argument("--write-wait-ms", type=int, default=None, help="[agi] write_wait_ms of the server "
                    "(default: the server's)")
    ap.add_argument("--timeout-ms", type=int, default=300, help="[agi] timeout_ms of the server")
    ap.add_argument("--client", choices=["c", "python"], default=None,
                    help="the load generator: bench/fastagi_load.c (falls back to python without gcc) "
                         "or the asyncio client of this script (default: c; python with --floor)")
    ap.add_argument("--floor", action="store_true",
                    help="compare with a trivial FastAGI server (no database) in alternating rounds")
    ap.add_argument("--rounds", type=int, default=3, help="--floor: rounds per server")
    ap.add_argument("--floor-processes", default="1,2",
                    help="--floor: the process counts compared, in order (default 1,2)")
    ap.add_argument("--closed-seconds", type=float, default=5.0,
                    help="--floor: closed-loop duration per round (Python client)")
    ap.add_argument("--closed-calls", type=int, default=10_000,
                    help="--floor: closed-loop calls per round (C client)")
    ap.add_argument("--floor-loop", choices=["asyncio", "uvloop"], default="asyncio",
                    help="--floor: the floor's event loop (default asyncio's own, the floor the targets "
                         "were set against; uvloop: the loop ours runs on, ~1.7x less CPU per call)")
    ap.add_argument("--serve-floor", metavar="HOST:PORT", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve_floor:
        return serve_floor(a.serve_floor, a.floor_loop)
    a.client = a.client or ("python" if a.floor else "c")
    a.floor_processes = [int(x) for x in a.floor_processes.split(",")]
    if a.small:
        numbers, pool, past = 1000, 100, 20_000
        a.seconds = 5.0 if a.seconds is None else a.seconds
        a.total, a.classic_calls = max(min(a.total, 3000), int(a.rate * a.seconds) + 1000), min(a.classic_calls, 10)
    elif a.floor:
        numbers, pool, past = 10_000, 1_000, 1_000_000
        a.seconds = 10.0 if a.seconds is None else a.seconds
    else:
        numbers, pool, past = 10_000, 1_000, 1_000_000
        a.seconds = 30.0 if a.seconds is None else a.seconds

    tmp = Path(tempfile.mkdtemp(prefix="ct-bench-"))
    cluster = None
    if a.db == "postgresql":
        cluster = start_pg()
        url = cluster.create_database("bench")
    else:
        url = f"sqlite:///{tmp / 'bench.db'}"
    servers = []
    try:
        print(f"database: {a.db}; building the data set", flush=True)
        migrate.upgrade(url)
        static, pooled, callers = generate(url, numbers, pool, 50, past)
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLTRACKING_")}
        env.update(CALLTRACKING_DATABASE_URL=url, CALLTRACKING_AGI_LISTEN=f"127.0.0.1:{port}",
                   CALLTRACKING_GENERAL_DEFAULT_QUEUE="sales", CALLTRACKING_AGI_TIMEOUT_MS=str(a.timeout_ms),
                   CALLTRACKING_LOG_LEVEL="warning", CALLTRACKING_DATABASE_POOL_SIZE="10",
                   CALLTRACKING_AGI_SPOOL_DIR=str(tmp / "agi-spool"))
        if a.write_wait_ms is not None:
            env["CALLTRACKING_AGI_WRITE_WAIT_MS"] = str(a.write_wait_ms)
        if a.floor:
            ok = floor_run(a, env, Load(static, pooled, callers), tmp)
            raise SystemExit(0 if ok else 1)
        server = subprocess.Popen(
            [sys.executable, "-c", "from calltracking.cli import main; "
             f"main(['agi', '--workers', '{a.workers}', '--processes', '{a.processes}'])"],
            cwd=str(ROOT), env=env, stderr=subprocess.PIPE)
        servers.append(server)
        line = b""
        while b"(budget" not in line:
            line = server.stderr.readline()
            assert line, "server did not start"
        time.sleep(1.0 if a.processes > 1 else 0)      # the other processes start
        load = Load(static, pooled, callers)

        async def run():
            await closed_loop(port, load, 4, 200, 30)          # warm-up (not counted)
            exe = build_c_client(tmp) if a.client == "c" else None
            print(f"client: {'C (bench/fastagi_load.c)' if exe else 'Python asyncio'}", flush=True)
            # The client's own garbage collector (thousands of tasks and results) would pause
            # it for tens of ms and show up as the server's tail latency: off while measuring.
            gc.collect()
            gc.freeze()
            gc.disable()
            print(f"load average before the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
                  flush=True)
            u0 = client_cpu()
            if exe:
                ol = await c_run(exe, tmp, port, load, "open", a.rate, int(a.rate * a.seconds))
                ol["rate"] = a.rate
            else:
                ol = await open_loop(port, load, a.rate, a.seconds)
            ol["client_cpu_ms"] = (client_cpu() - u0) * 1000 / max(ol["calls"], 1)
            print(f"open loop   {ol['calls']:>7,} calls at {a.rate:.0f}/s: p50 {ol['p50']:.2f} ms  "
                  f"p99 {ol['p99']:.2f} ms  max {ol['max']:.2f} ms  failed {ol['failed']}  (client CPU "
                  f"{ol['client_cpu_ms']:.3f} ms per call)", flush=True)
            pids = server_pids(server.pid)
            c0 = sum(cpu_seconds(x) for x in pids)
            if exe:
                cl = await c_run(exe, tmp, port, load, "closed", a.concurrency, max(0, a.total - ol["calls"]))
                cl["concurrency"] = a.concurrency
            else:
                cl = await closed_loop(port, load, a.concurrency, max(0, a.total - ol["calls"]),
                                       a.max_closed_seconds)
            answered, lag = cl["rate"], await drained(tmp / "agi-spool")
            cl["rate"] = committed_rate(cl["calls"], answered, lag)
            cl["cpu_ms"] = (sum(cpu_seconds(x) for x in pids) - c0) * 1000 / max(cl["calls"], 1)
            print(f"closed loop {cl['calls']:>7,} calls, {a.concurrency} at a time: {cl['rate']:.0f} calls/s "
                  f"committed (answered {answered:.0f}/s, the rows {lag:.2f} s later)  "
                  f"(p50 {cl['p50']:.2f} ms, p99 {cl['p99']:.2f} ms)  failed {cl['failed']}; server CPU "
                  f"{cl['cpu_ms']:.2f} ms per call = {1000 / cl['cpu_ms']:.0f} calls per CPU-second",
                  flush=True)
            if a.classic_calls <= 0:
                gc.enable()
                return ol, cl, None
            cenv = dict(env)
            k0 = children_cpu()
            cc = await classic_loop(cenv, load, a.classic_calls, 2)
            cc["cpu_ms"] = (children_cpu() - k0) * 1000 / max(cc["calls"], 1)
            print(f"classic     {cc['calls']:>7,} calls, 2 at a time: {cc['rate']:.1f} calls/s "
                  f"(p50 {cc['p50']:.0f} ms per call)  failed {cc['failed']}; CPU {cc['cpu_ms']:.0f} ms "
                  f"per call = {1000 / cc['cpu_ms']:.1f} calls per CPU-second", flush=True)
            gc.enable()
            print(f"load average after the run: {os.getloadavg()[0]:.1f}", flush=True)
            return ol, cl, cc

        from calltracking.cli._common import run_loop      # uvloop on Linux

        ol, cl, cc = run_loop(run())
        total = ol["calls"] + cl["calls"]
        failed = ol["failed"] + cl["failed"]
        if cc is not None:      # --classic-calls 0: no classic script
            ratio = cl["rate"] / cc["rate"] if cc["rate"] else float("inf")
            cpu_ratio = cc["cpu_ms"] / cl["cpu_ms"] if cl["cpu_ms"] else float("inf")
            print(f"FastAGI / classic saturation: {ratio:.0f}x (CPU per call: {cpu_ratio:.0f}x); "
                  f"failed {failed} of {total:,} FastAGI calls")
        from collections import Counter

        for e, n in Counter(ol["errors"] + cl["errors"]).most_common(5):
            print(f"  {n:>6} x {e}  (fallback = answered with the defaults: default queue, no attribution)")
        verdict = [("p99 <= 5 ms at %.0f/s" % a.rate, ol["p99"] <= 5.0),
                   ("saturation >= 1,000 calls/s", cl["rate"] >= 1000),
                   (f"zero failed calls over {total:,}", failed == 0)]
        if cc is not None:
            verdict.insert(2, (">= 50x the classic script", ratio >= 50))
        print("targets: " + "; ".join(f"{name}: {'met' if ok else 'NOT met'}" for name, ok in verdict))
        print(json.dumps({"db": a.db, "small": a.small, "open": {k: ol[k] for k in ("calls", "p50", "p99", "max", "failed")},
                          "closed": {k: cl[k] for k in ("calls", "rate", "p50", "p99", "failed", "cpu_ms")},
                          "classic": cc and {k: cc[k] for k in ("calls", "rate", "p50", "failed", "cpu_ms")},
                          "loadavg": os.getloadavg()[0]}, default=float))
    finally:
        for x in servers:
            x.terminate()
            try:
                x.wait(10)
            except subprocess.TimeoutExpired:
                x.kill()
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)     # the data set: up to 0.5 GB


if __name__ == "__main__":
    main()
