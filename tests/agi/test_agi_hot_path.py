"""The FastAGI server's hot path: the route reads on the event loop (SQLite) bounded by the
budget, the header read in one go, the call rows written through the driver."""
from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from decimal import Decimal

import pytest
from sqlalchemy import text

from calltracking import hooks
from calltracking.hooks import call_row
from calltracking.hooks.route import ROUTE_OVERWRITE
from support.fastagi_client import call, headers

pytestmark = pytest.mark.db

# ~10^7 steps of SQLite's VM: seconds without a deadline
_LONG_QUERY = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000000)"
               " SELECT count(*) FROM n")


def test_route_reads_run_on_the_event_loop_on_sqlite(agi, data, db_url):
    server = agi.server
    assert server.inline_reads == db_url.startswith("sqlite")
    if not server.inline_reads:
        assert call(agi.port, headers(args=("74950001001", "pg.1"))).vars["CT_SOURCE"] == "Google Ads"
        return
    release = threading.Event()
    busy = [server.pool.submit(release.wait, 20) for _ in range(server.workers)]
    try:        # every database thread is taken: the route answer comes from the event loop
        res = call(agi.port, headers(args=("74950001001", "loop.1")), timeout=5)
        assert res.vars["CT_STATUS"] == "ok" and res.vars["CT_SOURCE"] == "Google Ads"
    finally:
        release.set()
    assert all(f.result(5) for f in busy)


def test_a_read_past_its_deadline_is_interrupted(config, session_factory, db_url):
    if not db_url.startswith("sqlite"):
        pytest.skip("the reads on the event loop are SQLite's")
    env = hooks.HookEnv(config, session_factory)
    t0 = time.monotonic()
    with pytest.raises(Exception) as err:
        with env.deadline(time.monotonic() + 0.05):
            env.read(lambda conn: conn.exec_driver_sql(_LONG_QUERY).fetchall())
    assert "interrupted" in str(err.value)
    assert time.monotonic() - t0 < 1.0
    # the deadline ends with its block: the same connection reads again
    assert env.read(lambda conn: conn.exec_driver_sql("SELECT 41 + 1").scalar()) == 42
    env.close_connections()


def _send(port: int, chunks: list[bytes]) -> dict:
    """A request sent in ``chunks`` (a pause between them); the variables the server set."""
    got: dict = {}
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        for i, chunk in enumerate(chunks):
            if i:
                time.sleep(0.05)
            s.sendall(chunk)
        f = s.makefile("rb")
        while raw := f.readline():
            line = raw.decode().rstrip("\r\n")
            if line.startswith('EXEC MSet "'):
                for pair in line[len('EXEC MSet "'):-1].split(","):
                    name, _, value = pair.partition("=")
                    got[name] = value
                s.sendall(b"200 result=0\n")
            else:
                if line.startswith("SET VARIABLE "):
                    name, _, value = line[len("SET VARIABLE "):].partition(" ")
                    got[name] = value.strip('"')
                s.sendall(b"200 result=1\n")
    return got


@pytest.mark.parametrize("shape", ["one line", "crlf", "6 KB", "blank line apart", "byte by byte"])
def test_every_header_shape_is_read(agi, data, shape):
    lines = headers(args=("74950001001", f"h.{shape.replace(' ', '')}"))
    if shape == "one line":
        chunks = [b"agi_network_script: ping\n\n"]
    elif shape == "crlf":
        chunks = [("\r\n".join(lines) + "\r\n\r\n").encode()]
    elif shape == "6 KB":
        extra = [f"agi_extra_{i}: {'x' * 200}" for i in range(30)]
        chunks = [("\n".join(lines + extra) + "\n\n").encode()]
    elif shape == "blank line apart":
        chunks = [("\n".join(lines) + "\n").encode(), b"\n"]
    else:
        whole = ("\n".join(lines) + "\n\n").encode()
        chunks = [whole[:1], whole[1:2], whole[2:40], whole[40:-1], whole[-1:]]
    got = _send(agi.port, chunks)
    assert got["CT_STATUS"] == "ok"
    if shape != "one line":
        assert got["CT_SOURCE"] == "Google Ads" and got["CT_QUEUE"] == "sales"


def test_driver_statement_writes_what_sqlalchemy_writes(engine, db_url):
    if not db_url.startswith("sqlite"):
        pytest.skip("the driver path is SQLite's (PostgreSQL: one statement per batch)")
    now = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.timezone.utc)

    def rows(prefix, name):
        return [dict(pbx_id="p", linkedid=f"{prefix}{i}", project_id=None, tracking_number_id=None,
                     did="+74950001001" if i else "", caller_number="+79161110001",
                     caller_name=name, source_id=None, campaign_id=None, session_id=None,
                     routing_rule_id=None, attribution="static", attribution_confidence=Decimal("0.333"),
                     candidate_count=3, queue="sales", target="", started_at=now, first_call=bool(i),
                     time_to_call_seconds=12, record=True, via_agi=True, updated_at=now)
                for i in range(3)]

    keys = tuple(sorted(rows("x", "")[0]))
    with engine.connect() as conn:
        for name in ("", "Ivan 'O\"Brien'"):        # inserted, then the conflict's update
            conn.execute(call_row.statement("sqlite", keys, ROUTE_OVERWRITE), rows("a", name))
            call_row.executemany(conn, *call_row.driver_statement(conn.dialect, keys, ROUTE_OVERWRITE),
                         rows("b", name))
            conn.commit()
        got = {}
        for r in conn.execute(text("SELECT * FROM calls ORDER BY linkedid")).mappings():
            r = dict(r)
            lid = r.pop("linkedid")
            for k in ("id", "created_at"):
                r.pop(k)
            got[lid] = r
    assert len(got) == 6
    for i in range(3):
        assert got[f"a{i}"] == got[f"b{i}"]
    assert got["b1"]["caller_name"] == "Ivan 'O\"Brien'" and got["b1"]["attribution_confidence"] == 0.333
