"""Database helpers of the AGI hooks: the time budget, the call upsert, the first-call query.

Kept apart from :mod:`calltracking.hooks.core` (the hooks' logic) so each file stays small.
"""
from __future__ import annotations

import datetime as dt
import re
import time
from functools import lru_cache
from typing import Callable, NamedTuple, Optional

from sqlalchemy import case, func
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from calltracking import db
from calltracking.models import Call


class Cancelled(Exception):
    """The adapter already answered with the defaults: do not write anything."""


class Unreachable(Exception):
    """The database cannot be reached: the hook answers with the defaults (its write queued)."""


class Budget:
    """The time left for one hook's database work; shared by the adapter and the worker."""

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds
        self.cancelled = False

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def check(self) -> None:
        if self.cancelled or self.remaining() <= 0:
            raise Cancelled()


def upsert_call(session: Session, values: dict, overwrite: tuple[str, ...]) -> None:
    """Insert the call or update it when the AMI listener (or a retry) created it first."""
    stmt = _upsert_stmt(session.get_bind().dialect.name, tuple(sorted(values)), overwrite)
    session.connection().execute(stmt, values)


@lru_cache(maxsize=64)
def _upsert_stmt(dialect: str, keys: tuple[str, ...], overwrite: tuple[str, ...]):
    """INSERT ... ON CONFLICT (pbx_id, linkedid) DO UPDATE, built once per shape (it is costly)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    table = Call.__table__
    stmt = insert(table)
    ex = stmt.excluded
    set_ = {c: ex[c] for c in overwrite if c in keys}
    for c in ("started_at", "project_id", "tracking_number_id", "first_call"):
        if c in keys and c not in overwrite:
            set_[c] = func.coalesce(table.c[c], ex[c])
    for c in ("did", "caller_number", "caller_name"):
        if c in keys:
            set_[c] = case((table.c[c] == "", ex[c]), else_=table.c[c])
    set_["via_agi"] = ex.via_agi
    set_["updated_at"] = ex.updated_at
    return stmt.on_conflict_do_update(index_elements=["pbx_id", "linkedid"], set_=set_)


def write(session_factory, budget: Optional[Budget], work: Callable[[Session], None]) -> None:
    """Run ``work`` in one write transaction that gives up when the budget is spent.

    SQLite: the transaction begins IMMEDIATE (:func:`calltracking.db.writer`), waiting for
    the write lock at most the time left; once it has the lock, none of ``work``'s reads
    and writes can fail with "database is locked". PostgreSQL: ``statement_timeout`` for
    this transaction. The classic AGI script writes this way; the FastAGI server hands its
    writes to :class:`calltracking.hooks.writer.CallWriter` instead.
    """
    if budget is not None:
        budget.check()
    wait = max(budget.remaining(), 0.001) if budget is not None else None
    session = session_factory(bind=db.writer(session_factory.kw["bind"], wait))
    try:
        conn = session.connection()
        if budget is not None and conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, int(budget.remaining() * 1000))}")
        work(session)
        if budget is not None:
            budget.check()      # answered with the defaults meanwhile: keep the DB consistent
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# The two reads of every `route` run as plain SQL on the driver's connection: through
# SQLAlchemy's execution machinery they cost several times the queries themselves.
_UTC = dt.timezone.utc
_NAMED = re.compile(r":(\w+)")


class Holder(NamedTuple):
    """The visitor session holding a pool number (what the route hook needs of it)."""

    id: int
    source_id: Optional[int]
    first_seen: dt.datetime
    keyword: str
    utm_term: str
    visitor_id: str


def _driver(conn):
    """``(DBAPI connection, dialect name)`` under a SQLAlchemy connection."""
    return conn.connection.dbapi_connection, conn.dialect.name


def autocommit(conn) -> None:
    """PostgreSQL: put the driver connection in autocommit mode (reads leave nothing open)."""
    raw, dialect = _driver(conn)
    if dialect == "postgresql" and not raw.autocommit:
        raw.autocommit = True


def run_sql(conn, sql: str, params: dict):
    """Execute ``sql`` (``:name`` parameters) on the driver connection under ``conn``."""
    raw, dialect = _driver(conn)
    return raw.execute(_sql(dialect, sql), params)


@lru_cache(maxsize=32)
def _sql(dialect: str, text: str) -> str:
    return _NAMED.sub(r"%(\1)s", text) if dialect == "postgresql" else text


def _ts(value: dt.datetime, dialect: str):
    """A bound datetime the way :class:`models.UTCDateTime` stores it (naive UTC)."""
    naive = value.astimezone(_UTC).replace(tzinfo=None)
    return naive.isoformat(" ", "microseconds") if dialect == "sqlite" else naive


def _aware(value) -> Optional[dt.datetime]:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=_UTC)


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


def first_call(conn, pbx_id: str, project_id: Optional[int], number: str, now, window_days: int,
               linkedid: str) -> Optional[bool]:
    """Like :func:`attribution.is_first_call`, in one query that skips this call's own row."""
    if not number or not number.strip("+").isdigit():
        return None
    dialect = conn.dialect.name
    params = {"number": number, "now": _ts(now, dialect), "pbx": pbx_id, "linkedid": linkedid}
    sql = ("SELECT 1 FROM calls WHERE caller_number = :number AND started_at < :now"
           " AND NOT (pbx_id = :pbx AND linkedid = :linkedid)")
    if project_id is not None:
        params["project"] = project_id
        sql += " AND project_id + 0 = :project"      # keep the caller index (attribution.py)
    if window_days:
        params["since"] = _ts(now - dt.timedelta(days=window_days), dialect)
        sql += " AND started_at >= :since"
    cur = run_sql(conn, sql + " LIMIT 1", params)
    try:
        return cur.fetchone() is None
    finally:
        cur.close()


_HOLDER_SQL = (
    "SELECT v.id, v.source_id, v.first_seen, v.keyword, v.utm_term, v.visitor_id"
    " FROM pool_reservations r JOIN visitor_sessions v ON v.id = r.session_id"
    " WHERE r.tracking_number_id = :tn AND r.assigned_at <= :at"
    " AND (r.released_at IS NULL OR r.released_at >= :since)"
    " ORDER BY (r.released_at IS NULL) DESC, r.last_seen_at DESC")


def pool_holder(conn, tn_id: int, hold_seconds: int, at) -> tuple[Optional[Holder], int]:
    """:func:`attribution.pool_holder` in one query (FastAGI hot path).

    Returns ``(holder or None, candidate count)``.
    """
    dialect = conn.dialect.name
    cur = run_sql(conn, _HOLDER_SQL, {
        "tn": tn_id, "at": _ts(at, dialect),
        "since": _ts(at - dt.timedelta(seconds=hold_seconds), dialect)})
    try:
        rows = cur.fetchall()
    finally:
        cur.close()
    if not rows:
        return None, 0
    r = rows[0]
    holder = Holder(r[0], r[1], _aware(r[2]), r[3] or "", r[4] or "", r[5])
    return holder, len({row[5] for row in rows})
