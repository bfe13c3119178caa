"""How long a visitor holds a pool number: provisional holds, heartbeats, release, pool status.

A reservation (``pool_reservations``) is live while ``released_at`` is NULL; the number's
``pool_held`` flag says so too (a hint the assignment reads). A new reservation is
*provisional*: never seen since it was made (``last_seen_at = assigned_at``), it lasts
:func:`provisional_seconds` — so a client that asks and never comes back (a script emptying
the pool) holds nothing for long. The first :func:`heartbeat` (or the same visitor asking
again in the same session) makes it a full hold, which lasts while the visitor is active and
for the pool's ``hold_seconds`` after: :func:`hold_end`. Expired holds are released by
:func:`release_expired` (the scheduler, ``calltracking pools release``) and, for one pool,
by the assignment when the pool runs out. :mod:`calltracking.attribution.lookup` reads the
same rows at call time.
"""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from calltracking.dni import statements as Q
from calltracking.dni.projects import project_info
from calltracking.dni.request import AssignResult, UnknownProject, check_heartbeat
from calltracking.dni.transactions import engine_of, retrying
from calltracking.models import NumberPool, utcnow

#: seconds a new reservation lasts without a heartbeat (at most the pool's hold time); the
#: snippet confirms it about 5 s after the number is shown
PROVISIONAL_SECONDS = 60

NP, TN = NumberPool.__table__, Q.TN


def provisional_seconds(hold_seconds: int) -> int:
    """How long a new (provisional) hold of a pool with this hold time lasts."""
    return min(PROVISIONAL_SECONDS, hold_seconds)


def hold_end(assigned_at: dt.datetime, last_seen_at: dt.datetime, hold_seconds: int) -> dt.datetime:
    """When a live hold expires: :func:`provisional_seconds` after it was made while never seen
    since, else ``hold_seconds`` after the visitor was last seen.
    :data:`calltracking.dni.statements.EXPIRED` is the same rule in SQL (tests/dni/test_dni_core.py
    checks that they agree)."""
    if last_seen_at == assigned_at:
        return assigned_at + dt.timedelta(seconds=provisional_seconds(hold_seconds))
    return last_seen_at + dt.timedelta(seconds=hold_seconds)


def release_pool(conn: Connection, pool_id: int, hold_seconds: int, now) -> int:
    """Release the pool's expired holds (:func:`hold_end` before ``now``); returns the count."""
    rows = conn.execute(Q.EXPIRED, {
        "b_pool": pool_id, "b_before": now - dt.timedelta(seconds=hold_seconds),
        "b_before_new": now - dt.timedelta(seconds=provisional_seconds(hold_seconds))}).all()
    if not rows:
        return 0
    conn.execute(Q.RELEASE_MANY, {"b_ids": [r.id for r in rows], "b_now": now})
    conn.execute(Q.FREE_MANY, {"b_ids": [r.tracking_number_id for r in rows], "b_now": now})
    return len(rows)


def heartbeat(factory, project: str, visitor_id: str, now: Optional[dt.datetime] = None,
              signer=None) -> AssignResult:
    """Extend the visitor's live reservations (a provisional one becomes a full hold).
    ``number`` None: nothing held (ask again) — also for an id without its valid signature
    (``signer``). Raises DniError (a malformed request), UnknownProject."""
    engine = engine_of(factory)
    now = now or utcnow()
    check_heartbeat(project, visitor_id)
    info = project_info(engine, project)
    if info is None:
        raise UnknownProject(f"unknown project {project!r}")
    if signer is not None and not signer.valid(visitor_id):
        return AssignResult(None, "none", visitor_id)

    def work(conn: Connection) -> AssignResult:
        rows = conn.execute(Q.VISITOR_LIVE, {"b_pid": info.id, "b_vid": visitor_id}).all()
        if not rows:
            return AssignResult(None, "none", visitor_id)
        conn.execute(Q.RES_SEEN_MANY, {"b_ids": [r.id for r in rows], "b_now": now})
        conn.execute(Q.SESSION_SEEN_MANY, {"b_ids": sorted({r.session_id for r in rows}), "b_now": now})
        holds = {p.id: p.hold_seconds for p in info.pools}
        held = tuple((r.pool_id, holds.get(r.pool_id, 0)) for r in rows)
        return AssignResult(rows[0].number, "pool", visitor_id, rows[0].session_id, rows[0].pool_id,
                            held[0][1], held=held)

    return retrying(engine, work)


def release_expired(factory, now: Optional[dt.datetime] = None) -> int:
    """Release every expired hold of every pool; returns the count.

    Scheduler-ready (one call per minute is plenty: assignment also releases
    expired holds of a pool on the spot when it runs out).
    """
    engine = engine_of(factory)
    now = now or utcnow()
    with engine.connect() as conn:
        pools = conn.execute(select(NP.c.id, NP.c.hold_seconds)).all()
    total = 0
    for pid, hold in pools:
        total += retrying(engine, lambda conn, pid=pid, hold=hold: release_pool(conn, pid, hold, now))
    return total


def pool_status(session, pool: NumberPool) -> dict:
    """Numbers, live holds (``provisional``: not confirmed by a heartbeat yet), pressure (held /
    numbers) and exhaustion of one pool (for the UI, the CLI and /metrics)."""
    total = session.execute(select(func.count()).select_from(TN).where(
        TN.c.pool_id == pool.id, TN.c.active.is_(True))).scalar_one()
    live, provisional = session.execute(Q.LIVE_COUNTS, {"b_pool": pool.id}).one()
    live, provisional = live or 0, provisional or 0
    return {"pool": pool.name, "numbers": total, "held": live, "provisional": provisional,
            "free": max(total - live, 0), "pressure": round(live / total, 3) if total else None,
            "hold_seconds": pool.hold_seconds, "exhausted_count": pool.exhausted_count,
            "promo_mode": pool.promo_mode}
