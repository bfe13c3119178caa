"""The asyncio DNI server when the database is locked or down: a quick JSON answer, never a hang;
the event loop keeps serving (both databases)."""
from __future__ import annotations

import json
import os
import socket
import threading
import time

import pytest

from support.dni import FastServer, make_project
from support.web import raw_exchange, read_response, request_bytes

O = {"Origin": "https://shop.example"}       # browsers send it with every POST


def _lock_database(engine):
    """Hold the database's write lock (SQLite) or an exclusive lock on the numbers (PostgreSQL)
    in an open transaction; returns the function that releases it."""
    raw = engine.raw_connection()
    dbapi = raw.driver_connection
    if engine.dialect.name == "sqlite":
        dbapi.isolation_level = None
        dbapi.execute("BEGIN IMMEDIATE")
        dbapi.execute("UPDATE tracking_numbers SET description = description")
    else:
        dbapi.execute("LOCK TABLE tracking_numbers, visitor_sessions IN ACCESS EXCLUSIVE MODE")

    def release():
        dbapi.rollback() if engine.dialect.name != "sqlite" else dbapi.execute("ROLLBACK")
        raw.close()

    return release


def test_locked_database_gives_a_quick_503_and_the_loop_keeps_serving(db_url, session_factory, engine):
    make_project(session_factory, origins="*")
    s = FastServer(db_url, session_factory, DNI_DB_TIMEOUT=0.5)
    try:
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as sock:
            buf = bytearray()
            sock.sendall(request_bytes("POST", "/api/dni/assign", {"project": "acme"}, O))
            st, _, body = read_response(sock, buf)
            assert st == 200                              # settings cached, writer warm
            visitor = json.loads(body)["visitor_id"]
            release = _lock_database(engine)
            try:
                answers = {}

                def ask(name, payload):
                    t = time.monotonic()
                    out = raw_exchange(s.port, request_bytes("POST", "/api/dni/assign", payload,
                                                             {"Connection": "close", **O}), timeout=10)
                    answers[name] = (out, time.monotonic() - t)

                threads = [threading.Thread(target=ask, args=("new", {"project": "acme"})),
                           threading.Thread(target=ask, args=("returning", {"project": "acme",
                                                                            "visitor_id": visitor}))]
                for t in threads:
                    t.start()
                time.sleep(0.1)
                t0 = time.monotonic()                     # meanwhile the loop answers at once
                sock.sendall(request_bytes("GET", "/healthz"))
                assert read_response(sock, buf)[0] == 200 and time.monotonic() - t0 < 0.3
                for t in threads:
                    t.join(10)
                for name, (out, took) in answers.items():
                    head, data = out.split(b"\r\n\r\n", 1)
                    assert head.startswith(b"HTTP/1.1 503 "), (name, out)
                    assert json.loads(data) == {"error": "temporarily unavailable (database timeout)"}
                    assert 0.4 < took < 2.5, (name, took)
            finally:
                release()
            deadline = time.monotonic() + 15        # the stuck writer finishes its wait, then all is well
            while True:
                sock.sendall(request_bytes("POST", "/api/dni/assign", {"project": "acme"}, O))
                st, _, body = read_response(sock, buf)
                if st == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert st == 200 and json.loads(body)["kind"] == "pool"
    finally:
        s.close()


@pytest.fixture
def dead_url(tmp_path):
    if os.environ.get("CALLTRACKING_TEST_DB") == "postgresql":
        with socket.socket() as probe:                # a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        return f"postgresql+psycopg://postgres@127.0.0.1:{port}/nowhere?connect_timeout=2"
    return f"sqlite:///{tmp_path}/missing-dir/none.db"


def test_database_down_gives_a_quick_json_error(dead_url):
    from calltracking.db import make_engine, make_sessionmaker

    factory = make_sessionmaker(make_engine(dead_url))
    s = FastServer(dead_url, factory, DNI_DB_TIMEOUT=1.0)
    try:
        t = time.monotonic()
        out = raw_exchange(s.port, request_bytes("POST", "/api/dni/assign", {"project": "acme"},
                                                 {"Connection": "close"}))
        head, body = out.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 503 ") and time.monotonic() - t < 2.5
        assert json.loads(body)["error"].startswith("temporarily unavailable")
        out = raw_exchange(s.port, request_bytes("GET", "/dni.js", headers={"Connection": "close"}))
        assert out.startswith(b"HTTP/1.1 200 ")        # the snippet itself needs no database
    finally:
        s.close()
        factory.kw["bind"].dispose()


def test_the_dni_server_gives_tagged_visits_their_automatic_source(db_url, session_factory, acme):
    """The asyncio server (general path for the first visit, batched path after it) and the
    threaded endpoint agree: one ``yandex / cpc`` source for every visit tagged so."""
    from sqlalchemy import select

    from calltracking.db import session_scope
    from calltracking.models import Source, VisitorSession
    from support.web import LiveServer, post_json

    body = {"project": "acme", "utm_source": "yandex", "utm_medium": "cpc"}
    s = FastServer(db_url, session_factory)
    live = LiveServer(db_url, session_factory)
    try:
        got = [post_json(f"{s.url}/api/dni/assign", body) for _ in range(3)]
        got.append(post_json(f"{live.url}/api/dni/assign", body))
    finally:
        s.close()
        live.close()
    assert [st for st, _, _ in got] == [200] * 4
    with session_scope(session_factory) as db:
        auto = db.scalars(select(Source).where(Source.auto.is_(True))).all()
        assert [a.name for a in auto] == ["yandex / cpc"]
        sids = [db.get(VisitorSession, out["session"]).source_id for _, out, _ in got]
    assert sids == [auto[0].id] * 4
