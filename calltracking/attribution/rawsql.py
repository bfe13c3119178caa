"""Plain SQL on the DBAPI connection under a SQLAlchemy connection: the FastAGI hot path's reads.

The reads of every ``route`` (who holds a pool number, did this caller call before, the
catalogue's version) run as plain SQL on the driver's connection: through SQLAlchemy's
execution machinery they cost several times the queries themselves. Queries are written
with ``:name`` parameters (SQLite's style) and rewritten once for PostgreSQL's ``%(name)s``.
Datetimes are bound and read back the way :class:`calltracking.models.UTCDateTime` stores
them (naive UTC).

A read of several queries can be written once as a generator of steps (:data:`Reads`): it
yields a :class:`Query` and gets its rows back, or a :class:`Sync` and gets what that function
returned on a connection. :func:`run_reads` runs it on a SQLAlchemy connection; the FastAGI
server runs the same generator on an asynchronous PostgreSQL connection, on its event loop
(:mod:`agi.pg_reads`).
"""
from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from typing import Any, Callable, Generator, NamedTuple, Optional

from sqlalchemy.exc import DBAPIError

UTC = dt.timezone.utc
_NAMED = re.compile(r":(\w+)")


def _driver(conn):
    """``(DBAPI connection, dialect name)`` under a SQLAlchemy connection."""
    return conn.connection.dbapi_connection, conn.dialect.name


def autocommit(conn) -> None:
    """PostgreSQL: put the driver connection in autocommit mode (reads leave nothing open)."""
    raw, dialect = _driver(conn)
    if dialect == "postgresql" and not raw.autocommit:
        raw.autocommit = True


def run_sql(conn, sql: str, params: dict):
    """Execute ``sql`` (``:name`` parameters) on the driver connection under ``conn``;
    returns the driver's cursor (the caller closes it)."""
    raw, dialect = _driver(conn)
    return raw.execute(for_dialect(dialect, sql), params)


@lru_cache(maxsize=32)
def for_dialect(dialect: str, text: str) -> str:
    """``text`` with its ``:name`` parameters in ``dialect``'s style (PostgreSQL: ``%(name)s``)."""
    return _NAMED.sub(r"%(\1)s", text) if dialect == "postgresql" else text


class Query(NamedTuple):
    """One statement of a :data:`Reads` generator, which gets back its first row (None when
    there is none) or, with ``many``, the list of its rows."""

    sql: str                    # with :name parameters
    params: dict
    many: bool = False


class Sync(NamedTuple):
    """A step of a :data:`Reads` generator that needs a SQLAlchemy connection (a read that is
    not one plain statement, e.g. the catalogue's); the generator gets back ``fn(conn)``."""

    fn: Callable[[Any], Any]


#: A read written as steps: yields :class:`Query` / :class:`Sync`, returns its result.
Reads = Generator[Any, Any, Any]


def run_query(conn, query: Query):
    """``query`` on the driver connection under ``conn``: its first row, or all with ``many``."""
    cur = run_sql(conn, query.sql, query.params)
    try:
        return cur.fetchall() if query.many else cur.fetchone()
    finally:
        cur.close()


def run_reads(conn, reads: Reads):
    """Run a :data:`Reads` generator on the SQLAlchemy connection ``conn``; its result."""
    value = None
    while True:
        try:
            step = reads.send(value)
        except StopIteration as done:
            return done.value
        value = run_query(conn, step) if isinstance(step, Query) else step.fn(conn)


def bind_time(value: dt.datetime, dialect: str):
    """An aware datetime as a bound parameter, the way ``UTCDateTime`` stores it (naive UTC)."""
    naive = value.astimezone(UTC).replace(tzinfo=None)
    return naive.isoformat(" ", "microseconds") if dialect == "sqlite" else naive


def read_time(value) -> Optional[dt.datetime]:
    """A stored datetime (SQLite: text; PostgreSQL: naive) as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC)


def discard(conn) -> None:
    """Throw a SQLAlchemy connection away (broken, or not to be reused); never raises."""
    try:
        conn.invalidate()
        conn.close()
    except Exception:  # noqa: BLE001 - it is being thrown away anyway
        pass


def disconnected(conn, e: Exception) -> bool:
    """Whether ``e`` means the database dropped the connection (SQLAlchemy's or the driver's)."""
    if isinstance(e, DBAPIError):
        return bool(e.connection_invalidated)
    try:
        return bool(conn.dialect.is_disconnect(e, None, None))
    except Exception:  # noqa: BLE001 - not a driver error
        return False
