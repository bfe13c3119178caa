"""Database helpers of the AGI hooks: the time budget, the call upsert, the first-call query.

Kept apart from :mod:`calltracking.hooks` (the hooks' logic) so each file stays small.
"""
from __future__ import annotations

import datetime as dt
import time
from functools import lru_cache
from typing import Callable, Optional

from sqlalchemy import and_, bindparam, case, func, select
from sqlalchemy.orm import Session

from .models import Call


class Cancelled(Exception):
    """The adapter already answered with the defaults: do not write anything."""


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
    """Run ``work`` in a short write transaction that gives up when the budget is spent.

    SQLite: the busy timeout is lowered to the time left (and put back before
    the commit), so a locked database fails fast instead of holding a worker
    for seconds. PostgreSQL: ``statement_timeout`` for this transaction.
    """
    if budget is not None:
        budget.check()
    session = session_factory()
    restore = None
    try:
        conn = session.connection()
        ms = max(1, int(budget.remaining() * 1000)) if budget is not None else None
        if ms is not None and conn.dialect.name == "sqlite":
            info = conn.connection.info
            if "ct_busy_timeout" not in info:
                info["ct_busy_timeout"] = int(conn.exec_driver_sql("PRAGMA busy_timeout").scalar())
            restore = info["ct_busy_timeout"]
            conn.exec_driver_sql(f"PRAGMA busy_timeout={ms}")
        elif ms is not None and conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SET LOCAL statement_timeout = {ms}")
        work(session)
        if budget is not None:
            budget.check()      # answered with the defaults meanwhile: keep the DB consistent
        if restore is not None:
            conn.exec_driver_sql(f"PRAGMA busy_timeout={restore}")
            restore = None
        session.commit()
    except BaseException:
        if restore is not None:
            try:
                session.connection().exec_driver_sql(f"PRAGMA busy_timeout={restore}")
            except Exception:  # noqa: BLE001 - the connection may be gone
                pass
        session.rollback()
        raise
    finally:
        session.close()


def first_call(conn, pbx_id: str, project_id: Optional[int], number: str, now, window_days: int,
               linkedid: str) -> Optional[bool]:
    """Like :func:`attribution.is_first_call`, in one query that skips this call's own row."""
    if not number or not number.strip("+").isdigit():
        return None
    params = {"number": number, "now": now, "pbx": pbx_id, "linkedid": linkedid}
    if project_id is not None:
        params["project"] = project_id
    if window_days:
        params["since"] = now - dt.timedelta(days=window_days)
    stmt = _first_call_stmt(project_id is not None, bool(window_days))
    return conn.execute(stmt, params).first() is None


@lru_cache(maxsize=4)
def _first_call_stmt(by_project: bool, windowed: bool):
    c = Call.__table__.c
    conds = [c.caller_number == bindparam("number"), c.started_at < bindparam("now", type_=c.started_at.type),
             ~and_(c.pbx_id == bindparam("pbx"), c.linkedid == bindparam("linkedid"))]
    if by_project:
        conds.append(c.project_id + 0 == bindparam("project"))  # keep the caller index (attribution.py)
    if windowed:
        conds.append(c.started_at >= bindparam("since", type_=c.started_at.type))
    return select(c.id).where(*conds).limit(1)
