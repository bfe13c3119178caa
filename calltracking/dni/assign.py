"""Dynamic number insertion: which number a website visitor is shown, and its visitor session.

``assign()`` is what ``POST /api/dni/assign`` runs for the website snippet:

1. the request is validated and bounded (:func:`calltracking.dni.request.parse_request`);
2. bots (by user agent, :mod:`calltracking.dni.useragent`) get the static/default number and
   no session;
3. the visitor session is found by (project, visitor id) or created: a new one after
   :data:`SESSION_IDLE` of inactivity or when new campaign tags arrive (``utm_source``,
   ``utm_campaign``, ``gclid``, ``yclid`` differing from the last session's); its row is
   :func:`session_row`;
4. the pool is chosen (:func:`choose`): the ``pool`` named by the snippet, else the pool of
   the session's source (:func:`source_for`: the campaign's source by ``utm_campaign``, else
   the source named by ``utm_source``), else that source's static number — *combined mode* —,
   else the project's first general pool;
5. a number is reserved ATOMICALLY (:func:`reserve`): the same visitor keeps the number it
   holds; otherwise it gets back its previous number when free, else a never used number,
   else the least recently released one (:data:`calltracking.dni.statements.FREE`), in one
   transaction retried on a lost race (:mod:`calltracking.dni.transactions`). A NEW visitor
   takes the batched path of :mod:`calltracking.dni.new_visitors` first (the same rules in
   raw SQL); what it cannot finish comes here;
6. when no number is free, expired holds of that pool are released on the spot
   (:func:`calltracking.dni.holds.release_pool`) and the pool is tried once more; still none
   → ``exhausted_count`` is incremented and the pool's fallback number (or the project's
   default number) is returned, with a promo code when the pool's ``promo_mode`` asks.

``assign()`` = :func:`prepare` (no database) + the batched path + :func:`complete`; the asyncio
DNI server (``webui/dni_server.py``) runs the same three steps without blocking its event loop.
A new reservation is provisional; how long holds last, heartbeats and release:
:mod:`calltracking.dni.holds`.

Visitor ids: with a :class:`calltracking.dni.guard.VisitorSigner` (the public endpoints always
pass one) new ids are signed by the server and an id without a valid signature is treated as
a new visitor (a new id, no previous number); without one (scripts, the simulation) any
well-formed id is accepted.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Optional

from sqlalchemy.engine import Connection, Engine

from calltracking import sources as auto_sources
from calltracking.attribution import promo
from calltracking.dni import new_visitors
from calltracking.dni import statements as Q
from calltracking.dni import useragent
from calltracking.dni.holds import provisional_seconds, release_pool
from calltracking.dni.projects import PoolInfo, ProjectInfo, project_info
from calltracking.dni.request import AssignRequest, AssignResult, UnknownProject, new_visitor_id
from calltracking.dni.transactions import MAX_ATTEMPTS, engine_of, retrying, write_lock
from calltracking.models import utcnow

log = logging.getLogger(__name__)

SESSION_IDLE = dt.timedelta(minutes=30)
#: the tags that start a new session when they differ from the last session's
SESSION_TAGS = ("utm_source", "utm_campaign", "gclid", "yclid")


def source_for(info: ProjectInfo, fields: dict) -> Optional[int]:
    """The visit's source: the campaign's by ``utm_campaign``, else the one ``utm_source`` names
    (a source's name or short label, case-insensitive; a ``gclid`` names ``google``, a ``yclid``
    ``yandex``), else the alias of its tags
    (:mod:`calltracking.sources`), else None (a tagged visit then gets an automatic source in
    :func:`complete`)."""
    if fields.get("utm_campaign"):
        sid = info.campaigns.get(fields["utm_campaign"].lower())
        if sid:
            return sid
    key = auto_sources.visit_key(fields)             # utm_source, or the click id's search engine
    if key is None:
        return None
    return info.sources.get(key[0]) or auto_sources.alias_for(info.aliases or {}, key)


def choose(info: ProjectInfo, source_id: Optional[int], pool_name: str):
    """(PoolInfo, None) or (None, the source's static number) or (None, None): see step 4 of
    the module doc."""
    if pool_name:
        for p in info.pools:
            if p.name == pool_name:
                return p, None
    if source_id is not None:
        for p in info.pools:
            if p.source_id == source_id:
                return p, None
        if source_id in info.statics:
            return None, info.statics[source_id]
    return (info.pools[0] if info.pools else None), None


def session_row(project_id: int, req: AssignRequest, source_id: Optional[int], ua, now) -> dict:
    """A new visitor session: column → value (the columns of
    :data:`calltracking.dni.statements.SESSION_COLUMNS`). ``keyword`` is the request's
    ``keyword`` field, else its ``utm_term``."""
    f = req.fields
    return {"project_id": project_id, "visitor_id": req.visitor_id, "ga_client_id": f["ga_client_id"],
            "utm_source": f["utm_source"], "utm_medium": f["utm_medium"], "utm_campaign": f["utm_campaign"],
            "utm_term": f["utm_term"], "utm_content": f["utm_content"], "gclid": f["gclid"], "yclid": f["yclid"],
            "keyword": f["keyword"] or f["utm_term"], "referrer": f["referrer"],
            "landing_page": f["landing_page"], "user_agent": req.user_agent, "device": ua.device, "os": ua.os,
            "browser": ua.browser, "ip": req.ip, "source_id": source_id, "first_seen": now, "last_seen": now}


def _session(conn: Connection, info: ProjectInfo, req: AssignRequest, source_id, now, ua, known: bool) -> int:
    """The visitor's session id: its last session when recent and with the same tags, else a new one."""
    f = req.fields
    row = conn.execute(Q.LAST_SESSION, {"b_pid": info.id, "b_vid": req.visitor_id}).first() if known else None
    new_tags = any(f.get(k) and f[k] != (getattr(row, k) if row else "") for k in SESSION_TAGS)
    if row is not None and row.last_seen >= now - SESSION_IDLE and not new_tags:
        conn.execute(Q.SESSION_SEEN, {"b_sid": row.id, "b_now": now})
        return row.id
    values = {f"v_{k}": v for k, v in session_row(info.id, req, source_id, ua, now).items()}
    return conn.execute(Q.NEW_SESSION, values).scalar_one()


def _take(conn: Connection, pool: PoolInfo, number_id: int, session_id: int, now) -> bool:
    """Mark the number held and reserve it; False when someone else holds it."""
    if conn.execute(Q.TAKE, {"b_tn": number_id}).rowcount != 1:
        return False
    # The partial unique index decides; a live reservation the hint missed leaves the number
    # marked held (which it is) and we try the next one.
    return conn.execute(Q.NEW_RES_IF_FREE[conn.dialect.name],
                        {"b_pool": pool.id, "b_tn": number_id, "b_sid": session_id, "b_now": now}
                        ).first() is not None


def reserve(conn: Connection, info: ProjectInfo, pool: PoolInfo, visitor_id: str, session_id: int,
            now, skip_locked: bool, known: bool) -> tuple:
    """``(number or None, provisional)``: the number given to the visitor (step 5 of the module
    doc), and whether its reservation is a new (provisional) one."""
    key = {"b_pid": info.id, "b_vid": visitor_id, "b_pool": pool.id}
    if known:
        # 1. The visitor already holds a number of this pool: keep it (moved to the new session).
        held = conn.execute(Q.HELD, key).first()
        if held is not None:
            if held.session_id == session_id:
                conn.execute(Q.RES_SEEN, {"b_rid": held.id, "b_now": now})
                return held.number, False
            conn.execute(Q.RES_END, {"b_rid": held.id, "b_now": now})
            conn.execute(Q.NEW_RES, {"b_pool": pool.id, "b_tn": held.tracking_number_id, "b_sid": session_id,
                                     "b_now": now})
            return held.number, True
        # 2. Its previous number, when free again.
        prev = conn.execute(Q.PREVIOUS, key).first()
        if prev is not None and _take(conn, pool, prev.id, session_id, now):
            return prev.number, True
    # 3. Never used first, then least recently released; release expired holds when none is free.
    free = Q.FREE_SKIP_LOCKED if skip_locked else Q.FREE
    for sweep in (False, True):
        if sweep and not release_pool(conn, pool.id, pool.hold_seconds, now):
            break
        for _ in range(MAX_ATTEMPTS):
            row = conn.execute(free[0], key).first() or conn.execute(free[1], key).first()
            if row is None:
                break
            if _take(conn, pool, row.id, session_id, now):
                return row.number, True
    return None, False


@dataclass
class Plan:
    """:func:`prepare`'s decision: ``result`` (bots), ``fast`` (a new visitor's session row for
    :mod:`calltracking.dni.new_visitors`), else :func:`complete`."""

    engine: Engine
    req: AssignRequest
    now: dt.datetime
    info: ProjectInfo
    ua: object = None
    source_id: Optional[int] = None
    pool: Optional[PoolInfo] = None
    static: Optional[str] = None          # the source's static number (combined mode)
    default: Optional[str] = None
    known: bool = False                   # a visitor id we issued earlier
    auto: Optional[tuple] = None          # tags naming no source: complete() gives the automatic one
    result: Optional[AssignResult] = None
    fast: Optional[tuple] = None
    write_lock: object = None

    def fast_result(self, session_id: int, number: str) -> AssignResult:
        return AssignResult(number, "pool", self.req.visitor_id, session_id, self.pool.id,
                            provisional_seconds(self.pool.hold_seconds), provisional=True)

    def refused(self) -> AssignResult:
        """The answer when a hold limit refuses a new number: the fallback, no session, no hold."""
        return AssignResult(self.default, "refused", self.req.visitor_id, None, self.pool.id)


def prepare(engine: Engine, req: AssignRequest, info: ProjectInfo, now: Optional[dt.datetime] = None,
            signer=None) -> Plan:
    """The database-free part of :func:`assign`: pool choice, bots, the visitor id (``signer``:
    an id without its valid signature is a new visitor; new ids are signed), the new visitor's row."""
    now = now or utcnow()
    ua = useragent.parse(req.user_agent)
    source_id = source_for(info, req.fields)
    pool, static = choose(info, source_id, req.pool)
    default = (pool.fallback_number if pool else None) or info.default_number
    plan = Plan(engine, req, now, info, ua, source_id, pool, static, default)
    if source_id is None:
        plan.auto = auto_sources.visit_key(req.fields)
    if ua.bot:
        plan.result = AssignResult(static or default, "bot")
        return plan
    if signer is not None and req.visitor_id and not signer.valid(req.visitor_id):
        req.visitor_id = ""               # forged, or issued under another secret: a new visitor
    plan.known = bool(req.visitor_id)
    req.visitor_id = req.visitor_id or (signer.new() if signer is not None else new_visitor_id())
    if (not plan.known and plan.auto is None and pool is not None and pool.promo_mode != "always"
            and new_visitors.supported(engine)):
        # A new visitor: batched by new_visitors' writer; what it cannot do falls through to complete().
        row = session_row(info.id, req, source_id, ua, now)
        plan.fast = tuple(row[c] for c in Q.SESSION_COLUMNS)
        plan.write_lock = None if engine.dialect.name == "postgresql" else write_lock(engine)
    return plan


def assign(factory, req: AssignRequest, now: Optional[dt.datetime] = None, signer=None) -> AssignResult:
    """Give the visitor a number (see the module doc). Raises UnknownProject."""
    engine = engine_of(factory)
    info = project_info(engine, req.project)
    if info is None:
        raise UnknownProject(f"unknown project {req.project!r}")
    plan = prepare(engine, req, info, now, signer)
    if plan.result is not None:
        return plan.result
    sid0 = None
    if plan.fast is not None:
        try:
            sid0, number = new_visitors.assign_new(engine, plan.fast, plan.pool.id, plan.write_lock)
        except Exception:                 # a lost race or a hint out of step: the general path decides
            log.debug("DNI batched path failed; using the general path", exc_info=True)
        else:
            if number is not None:
                return plan.fast_result(sid0, number)
    return complete(plan, sid0)


def complete(plan: Plan, sid0: Optional[int] = None) -> AssignResult:
    """The general path of :func:`assign` (one SQLAlchemy transaction, retried on a lost race);
    ``sid0``: the session the batched path already created (its pool had no free number)."""
    engine, info, req, pool, now = plan.engine, plan.info, plan.req, plan.pool, plan.now
    pg = engine.dialect.name == "postgresql"
    found: list = []                      # the source of each attempt (the last one committed)

    def work(conn: Connection) -> AssignResult:
        # resolved in each attempt: a retried transaction may have rolled the new source back
        source_id = plan.source_id if plan.auto is None else auto_sources.resolve(conn, info.id, plan.auto)
        found.append(source_id)
        sid = sid0 if sid0 is not None else _session(conn, info, req, source_id, now, plan.ua, plan.known)
        if pool is None:
            return AssignResult(plan.static or info.default_number, "static" if plan.static else "default",
                                req.visitor_id, sid)
        number, new = reserve(conn, info, pool, req.visitor_id, sid, now, pg, plan.known)
        res = AssignResult(number, "pool", req.visitor_id, sid, pool.id,
                           provisional_seconds(pool.hold_seconds) if new else pool.hold_seconds, provisional=new)
        if number is None:
            conn.execute(Q.EXHAUSTED, {"b_pool": pool.id})
            res.number, res.kind, res.exhausted = plan.default, "fallback", True
        if promo.wanted(pool.promo_mode, res.exhausted):
            res.promo = promo.code_for_session(conn, info.id, sid, source_id, now)
        return res

    res = retrying(engine, work, write_first=not plan.known and sid0 is None and plan.auto is None)
    if plan.auto is not None and found[-1] is not None and info.aliases is not None:
        info.aliases.setdefault(plan.auto, found[-1])     # the next visits need no database read
    return res

