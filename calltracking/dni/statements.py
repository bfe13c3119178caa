"""The SQL of the DNI core's general path (:mod:`calltracking.dni.assign`, :mod:`calltracking.dni.holds`).

Building a SQLAlchemy statement costs more than running it on an indexed
table, so every statement of assign/heartbeat/release is constructed here at
import time with bound parameters (``b_*``) and reused; SQLAlchemy's compiled
cache then serves each execution. The new visitors' batched path
(:mod:`calltracking.dni.new_visitors`) writes the same rows in raw SQL.
"""
from __future__ import annotations

from sqlalchemy import and_, bindparam, case, func, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from calltracking.models import NumberPool, PoolReservation, TrackingNumber, VisitorSession

VS, PR, TN, NP = (VisitorSession.__table__, PoolReservation.__table__, TrackingNumber.__table__,
                  NumberPool.__table__)

#: taking SQLite's write lock first (BEGIN IMMEDIATE semantics inside SQLAlchemy's BEGIN)
SQLITE_WRITE_LOCK = text("UPDATE number_pools SET id = id WHERE 1 = 0")

#: the columns of a new visitor session (:func:`calltracking.dni.assign.session_row` gives their values),
#: in the order of the raw statements' parameters (:mod:`calltracking.dni.new_visitors`)
SESSION_COLUMNS = ("project_id", "visitor_id", "ga_client_id", "utm_source", "utm_medium", "utm_campaign",
                   "utm_term", "utm_content", "gclid", "yclid", "keyword", "referrer", "landing_page",
                   "user_agent", "device", "os", "browser", "ip", "source_id", "first_seen", "last_seen")

LAST_SESSION = (select(VS.c.id, VS.c.last_seen, VS.c.utm_source, VS.c.utm_campaign, VS.c.gclid, VS.c.yclid)
                .where(VS.c.project_id == bindparam("b_pid"), VS.c.visitor_id == bindparam("b_vid"))
                .order_by(VS.c.id.desc()).limit(1))
SESSION_SEEN = update(VS).where(VS.c.id == bindparam("b_sid")).values(last_seen=bindparam("b_now"))
NEW_SESSION = insert(VS).values({f: bindparam(f"v_{f}", type_=VS.c[f].type) for f in SESSION_COLUMNS}) \
    .returning(VS.c.id)

HELD = (select(PR.c.id, PR.c.session_id, PR.c.tracking_number_id, TN.c.number)
        .join(VS, VS.c.id == PR.c.session_id).join(TN, TN.c.id == PR.c.tracking_number_id)
        .where(VS.c.project_id == bindparam("b_pid"), VS.c.visitor_id == bindparam("b_vid"),
               PR.c.pool_id == bindparam("b_pool"), PR.c.released_at.is_(None))
        .order_by(PR.c.id.desc()).limit(1))
RES_SEEN = update(PR).where(PR.c.id == bindparam("b_rid")).values(last_seen_at=bindparam("b_now"))
RES_END = update(PR).where(PR.c.id == bindparam("b_rid")).values(released_at=bindparam("b_now"))
NEW_RES = insert(PR).values(pool_id=bindparam("b_pool"), tracking_number_id=bindparam("b_tn"),
                            session_id=bindparam("b_sid"), assigned_at=bindparam("b_now", type_=PR.c.assigned_at.type),
                            last_seen_at=bindparam("b_now", type_=PR.c.assigned_at.type))
_res_values = dict(pool_id=bindparam("b_pool"), tracking_number_id=bindparam("b_tn"), session_id=bindparam("b_sid"),
                   assigned_at=bindparam("b_now", type_=PR.c.assigned_at.type),
                   last_seen_at=bindparam("b_now", type_=PR.c.assigned_at.type))
#: a new reservation unless the number has a live one (written by other code than ours: the
#: ``pool_held`` hint missed it); rowcount 0 then, and the transaction goes on
NEW_RES_IF_FREE = {
    name: mod.insert(PR).values(**_res_values).on_conflict_do_nothing(
        index_elements=[PR.c.tracking_number_id], index_where=PR.c.released_at.is_(None)).returning(PR.c.id)
    for name, mod in (("sqlite", sqlite), ("postgresql", postgresql))
}
TAKE = (update(TN).where(TN.c.id == bindparam("b_tn"), TN.c.pool_held.is_(False), TN.c.active.is_(True))
        .values(pool_held=True))
EXHAUSTED = update(NP).where(NP.c.id == bindparam("b_pool")).values(exhausted_count=NP.c.exhausted_count + 1)

PREVIOUS = (select(TN.c.id, TN.c.number).join(PR, PR.c.tracking_number_id == TN.c.id)
            .join(VS, VS.c.id == PR.c.session_id)
            .where(VS.c.project_id == bindparam("b_pid"), VS.c.visitor_id == bindparam("b_vid"),
                   PR.c.pool_id == bindparam("b_pool"), TN.c.pool_held.is_(False), TN.c.active.is_(True))
            .order_by(PR.c.id.desc()).limit(1))

_free = (select(TN.c.id, TN.c.number)
         .where(TN.c.pool_id == bindparam("b_pool"), TN.c.pool_held.is_(False), TN.c.active.is_(True)))
#: the free number a pool gives next: never used first (by id), then least recently released
#: (the same order as :data:`calltracking.dni.new_visitors.PG_ASSIGN_BATCH` and ``SQLITE_TAKE``;
#: tests/dni/test_dni_core.py runs both paths on it)
FREE = (_free.where(TN.c.pool_released_at.is_(None)).order_by(TN.c.id).limit(1),
        _free.where(TN.c.pool_released_at.is_not(None)).order_by(TN.c.pool_released_at, TN.c.id).limit(1))
FREE_SKIP_LOCKED = tuple(s.with_for_update(skip_locked=True, of=TN) for s in FREE)

VISITOR_LIVE = (select(PR.c.id, PR.c.session_id, PR.c.pool_id, TN.c.number)
                .join(VS, VS.c.id == PR.c.session_id).join(TN, TN.c.id == PR.c.tracking_number_id)
                .where(VS.c.project_id == bindparam("b_pid"), VS.c.visitor_id == bindparam("b_vid"),
                       PR.c.released_at.is_(None))
                .order_by(PR.c.id.desc()))
RES_SEEN_MANY = (update(PR).where(PR.c.id.in_(bindparam("b_ids", expanding=True)))
                 .values(last_seen_at=bindparam("b_now")))
SESSION_SEEN_MANY = (update(VS).where(VS.c.id.in_(bindparam("b_ids", expanding=True)))
                     .values(last_seen=bindparam("b_now")))

#: a provisional reservation: never seen since it was made (a heartbeat sets last_seen_at)
PROVISIONAL = PR.c.last_seen_at == PR.c.assigned_at
#: live reservations idle since ``b_before``, and provisional ones made before ``b_before_new``
EXPIRED = (select(PR.c.id, PR.c.tracking_number_id)
           .where(PR.c.pool_id == bindparam("b_pool"), PR.c.released_at.is_(None),
                  or_(PR.c.last_seen_at < bindparam("b_before", type_=PR.c.last_seen_at.type),
                      and_(PROVISIONAL,
                           PR.c.assigned_at < bindparam("b_before_new", type_=PR.c.assigned_at.type)))))
#: (live, provisional) reservations of a pool
LIVE_COUNTS = (select(func.count(), func.sum(case((PROVISIONAL, 1), else_=0)))
               .where(PR.c.pool_id == bindparam("b_pool"), PR.c.released_at.is_(None)))
RELEASE_MANY = (update(PR).where(PR.c.id.in_(bindparam("b_ids", expanding=True)), PR.c.released_at.is_(None))
                .values(released_at=bindparam("b_now")))
FREE_MANY = (update(TN).where(TN.c.id.in_(bindparam("b_ids", expanding=True)))
             .values(pool_held=False, pool_released_at=bindparam("b_now")))
