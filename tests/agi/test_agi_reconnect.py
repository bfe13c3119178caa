"""The FastAGI server keeps its database connections open between calls; a connection the
database dropped (server restart, admin kill) is replaced without failing a call."""
from __future__ import annotations

from sqlalchemy import select, text

from calltracking.db import session_scope
from calltracking.models import Call

from support.fastagi_client import call, headers


def _route(port, linkedid):
    return call(port, headers(args=("74950001001", linkedid))).vars


def test_dropped_connections_are_replaced(agi, data, engine, session_factory):
    assert _route(agi.port, "c.1")["CT_STATUS"] == "ok"
    env = agi.server.env
    opened = [c for c in env._opened if not c.closed]
    assert opened, "the worker threads keep their connections"
    writer = env.writer._conn
    assert writer is not None
    if engine.dialect.name == "postgresql":
        with engine.connect() as c:                  # the database drops every other session
            killed = c.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
        assert killed >= 2
    else:
        for conn in opened + [writer]:               # the driver connections go away
            conn.connection.dbapi_connection.close()
    for i in range(2, 10):                           # every worker thread meets its dead one
        v = _route(agi.port, f"c.{i}")
        assert v["CT_STATUS"] == "ok" and v["CT_SOURCE"] == "Google Ads", v
    with session_scope(session_factory) as s:
        assert sorted(s.scalars(select(Call.linkedid))) == [f"c.{i}" for i in range(1, 10)]
