"""Dynamic number insertion: visitor sessions and atomic pool-number assignment.

``assign()`` is what ``POST /api/dni/assign`` runs for the website snippet:

1. the request is validated and bounded (:func:`parse_request`);
2. bots (by user agent) get the static/default number and no session;
3. the visitor session is found by (project, visitor id) or created (a new one after
   ``SESSION_IDLE`` of inactivity or when new campaign tags arrive);
4. the pool is chosen (the ``pool`` named by the snippet, the pool of the session's source, the
   source's static number — *combined mode* — or the project's general pool);
5. a number is reserved ATOMICALLY: the same visitor keeps the number it holds; otherwise it gets
   back its previous number when free, else a never used number, else the least recently released
   one. A number is never held by two live reservations: the partial unique index on
   ``pool_reservations(tracking_number_id) WHERE released_at IS NULL`` is the guarantee, and the
   writers avoid fighting over it — PostgreSQL takes the candidate row with ``FOR UPDATE SKIP
   LOCKED``; SQLite takes the database write lock at the start of the transaction (a first write
   statement, like ``BEGIN IMMEDIATE``) and writers of one process queue on a lock. A conflict
   that still happens (another process) is retried. A NEW visitor takes the fast path of
   :mod:`calltracking.dni.fast` first (batched raw writes, the same order and guarantees); what it
   cannot finish comes here;
6. when no number is free, expired holds of that pool are released on the spot and the pool is
   tried once more; still none → ``exhausted_count`` is incremented and the pool's fallback number
   (or the project's default number) is returned, with a promo code when the pool's
   ``promo_mode`` asks.

``assign()`` = :func:`prepare` (no database) + the fast path + :func:`complete`; the asyncio DNI
server (``webui/dni_server.py``) runs the same three steps without blocking its event loop.
A reservation is live while ``released_at`` is NULL. A new one is *provisional*: it lasts
``PROVISIONAL_SECONDS`` (at most the pool's hold) unless a heartbeat comes, so a client that asks
and never comes back (a script emptying the pool) holds nothing for long. A provisional
reservation is one never seen since it was made (``last_seen_at = assigned_at``); the first
``heartbeat()`` (or the same visitor asking again in the same session) makes it a full hold,
which lasts while the visitor is active and for the pool's ``hold_seconds`` after.
:func:`release_expired` (for the scheduler and ``calltracking pools release``) releases the
rest. :mod:`calltracking.attribution.lookup` reads the same rows at call time.

Visitor ids: with a :class:`calltracking.dni.guard.VisitorSigner` (the public endpoints always
pass one) new ids are signed by the server and an id without a valid signature is treated as
a new visitor (a new id, no previous number); without one (scripts, the simulation) any
well-formed id is accepted.
"""
from __future__ import annotations

import datetime as dt
import logging
import random
import re
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Optional

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from calltracking.dni import fast as dni_fast
from calltracking.dni import sql as Q
from calltracking.attribution import promo
from calltracking.dni import useragent
from calltracking.models import (
    Campaign, NumberPool, PoolReservation, Project, Source, TrackingNumber, VisitorSession, utcnow,
)

log = logging.getLogger(__name__)

SESSION_IDLE = dt.timedelta(minutes=30)
#: seconds a new reservation lasts without a heartbeat (at most the pool's hold time); the
#: snippet confirms it about 5 s after the number is shown
PROVISIONAL_SECONDS = 60
CACHE_TTL = 5.0
MAX_ATTEMPTS = 10

VS, PR, TN, NP = (VisitorSession.__table__, PoolReservation.__table__, TrackingNumber.__table__,
                  NumberPool.__table__)

#: request field → maximum length (the column sizes)
FIELDS = {"ga_client_id": 64, "utm_source": 200, "utm_medium": 200, "utm_campaign": 200, "utm_term": 200,
          "utm_content": 200, "gclid": 200, "yclid": 200, "keyword": 200, "referrer": 1000, "landing_page": 1000}
_KEY_RX = re.compile(r"[A-Za-z0-9_-]{1,64}")
_VISITOR_RX = re.compile(r"[A-Za-z0-9._-]{8,64}")
_CTRL_RX = re.compile(r"[\x00-\x1f\x7f]")


class DniError(ValueError):
    """A bad request: the message is safe to return to the client."""


class UnknownProject(DniError):
    pass


@dataclass
class AssignRequest:
    project: str
    visitor_id: str = ""
    pool: str = ""
    user_agent: str = ""
    ip: str = ""
    fields: dict = field(default_factory=dict)


@dataclass
class AssignResult:
    number: Optional[str]               # E.164 to show; None: keep the site's own number
    kind: str                           # pool | static | fallback | default | bot | refused
    visitor_id: str = ""
    session_id: Optional[int] = None
    pool_id: Optional[int] = None
    hold_seconds: int = 0               # how long the number stays without a heartbeat
    exhausted: bool = False
    promo: Optional[str] = None
    provisional: bool = False           # a new hold: a heartbeat within hold_seconds confirms it
    held: tuple = ()                    # heartbeat: ((pool id, hold seconds), …) of the live holds

    def as_json(self) -> dict:
        return {"number": self.number, "kind": self.kind, "visitor_id": self.visitor_id,
                "session": self.session_id, "hold_seconds": self.hold_seconds,
                "provisional": self.provisional, "exhausted": self.exhausted, "promo": self.promo}


def _clean(value, name: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DniError(f"field {name!r} must be a string")
    return _CTRL_RX.sub("", value).strip()[:limit]


def new_visitor_id() -> str:
    return "v" + random.SystemRandom().getrandbits(96).to_bytes(12, "big").hex()


def parse_request(data, user_agent: str = "", ip: str = "") -> AssignRequest:
    """Validate a JSON body from the snippet. Unknown fields are ignored."""
    if not isinstance(data, dict):
        raise DniError("expected a JSON object")
    key = data.get("project")
    if not isinstance(key, str) or not _KEY_RX.fullmatch(key):
        raise DniError("field 'project' must be a project key (1-64 letters, digits, '_', '-')")
    visitor = data.get("visitor_id")
    if visitor is not None and not isinstance(visitor, str):
        raise DniError("field 'visitor_id' must be a string")
    visitor = visitor if visitor and _VISITOR_RX.fullmatch(visitor) else ""
    fields = {name: _clean(data.get(name), name, limit) for name, limit in FIELDS.items()}
    return AssignRequest(project=key, visitor_id=visitor, pool=_clean(data.get("pool"), "pool", 200),
                         user_agent=_clean(user_agent, "user_agent", 500), ip=(ip or "")[:45],
                         fields=fields)


# ------------------------------------------------------------ project cache
@dataclass
class PoolInfo:
    id: int
    name: str
    source_id: Optional[int]
    hold_seconds: int
    fallback_number: Optional[str]
    promo_mode: str


@dataclass
class ProjectInfo:
    id: int
    key: str
    default_number: Optional[str]
    origins: frozenset
    pools: list                     # [PoolInfo], general pools (no source) first
    sources: dict                   # lower(name or label) -> source id
    campaigns: dict                 # lower(utm_campaign) -> source id
    statics: dict                   # source id -> static number
    loaded: float = 0.0


_cache: dict = {}
_cache_lock = threading.Lock()
_write_locks: dict = {}
_urls: "weakref.WeakKeyDictionary[Engine, str]" = weakref.WeakKeyDictionary()


def invalidate_cache() -> None:
    with _cache_lock:
        _cache.clear()


def parse_origins(text_: str) -> frozenset:
    return frozenset(o.strip().rstrip("/").lower() for o in re.split(r"[\s,]+", text_ or "") if o.strip())


def _url(engine: Engine) -> str:
    """The engine's URL as a string, computed once (hashing a ``URL`` renders it every time)."""
    url = _urls.get(engine)
    if url is None:
        url = _urls[engine] = engine.url.render_as_string(hide_password=False)
    return url


def project_info(engine: Engine, key: str) -> Optional[ProjectInfo]:
    info = cached_project_info(engine, key)
    if info is not None:
        return info
    with engine.connect() as conn:
        p = conn.execute(select(Project.__table__).where(Project.key == key)).mappings().first()
        if p is None:
            return None
        pools = [PoolInfo(r.id, r.name, r.source_id, r.hold_seconds, r.fallback_number,
                          r.promo_mode or "off")
                 for r in conn.execute(select(NP).where(NP.c.project_id == p["id"], NP.c.active.is_(True))
                                       .order_by(NP.c.source_id.is_(None).desc(), NP.c.id))]
        sources: dict = {}
        for r in conn.execute(select(Source.__table__).where(Source.project_id == p["id"],
                                                             Source.active.is_(True))):
            for label in (r.short_label, r.name):
                if label:
                    sources.setdefault(label.strip().lower(), r.id)
        campaigns = {r.utm_campaign.strip().lower(): r.source_id
                     for r in conn.execute(select(Campaign.__table__).where(
                         Campaign.project_id == p["id"], Campaign.active.is_(True), Campaign.utm_campaign != ""))}
        statics = {}
        for r in conn.execute(select(TN.c.source_id, TN.c.number).where(
                TN.c.project_id == p["id"], TN.c.kind == "static", TN.c.active.is_(True),
                TN.c.source_id.is_not(None)).order_by(TN.c.id)):
            statics.setdefault(r.source_id, r.number)
    info = ProjectInfo(p["id"], key, p["default_number"], parse_origins(p["allowed_origins"]), pools,
                       sources, campaigns, statics, time.monotonic())
    with _cache_lock:
        _cache[(_url(engine), key)] = info
    return info


def _write_lock(engine: Engine):
    """Writers of one process queue here on SQLite (one writer at a time anyway)."""
    url = _url(engine)
    lock = _write_locks.get(url)
    if lock is None:
        with _cache_lock:
            lock = _write_locks.setdefault(url, threading.Lock())
    return lock


def _engine(factory_or_engine) -> Engine:
    if isinstance(factory_or_engine, Engine):
        return factory_or_engine
    return factory_or_engine.kw["bind"]


def _retrying(engine: Engine, fn, write_first: bool = False):
    """Run ``fn(conn)`` in a transaction; retry on a lost race (unique index, lock).

    ``write_first``: ``fn`` starts with a write, which takes SQLite's write
    lock by itself; otherwise a no-op write takes it before ``fn`` reads.
    """
    sqlite = engine.dialect.name == "sqlite"
    lock = _write_lock(engine) if sqlite else None
    for attempt in range(MAX_ATTEMPTS):
        try:
            if lock is not None:
                with lock, engine.begin() as conn:
                    if not write_first:   # take the write lock now (BEGIN IMMEDIATE semantics)
                        conn.execute(Q.SQLITE_WRITE_LOCK)
                    return fn(conn)
            with engine.begin() as conn:
                return fn(conn)
        except (IntegrityError, OperationalError):
            if attempt == MAX_ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0.001, 0.004) * (attempt + 1))


# ------------------------------------------------------------------ assign
def _source_for(info: ProjectInfo, f: dict) -> Optional[int]:
    if f.get("utm_campaign"):
        sid = info.campaigns.get(f["utm_campaign"].lower())
        if sid:
            return sid
    if f.get("utm_source"):
        return info.sources.get(f["utm_source"].lower())
    return None


def _choose(info: ProjectInfo, source_id: Optional[int], pool_name: str):
    """(PoolInfo, None) or (None, static number) or (None, None)."""
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


def _session(conn: Connection, info: ProjectInfo, req: AssignRequest, source_id, now, ua, known: bool) -> int:
    f = req.fields
    row = conn.execute(Q.LAST_SESSION, {"b_pid": info.id, "b_vid": req.visitor_id}).first() if known else None
    new_tags = any(f.get(k) and f[k] != (getattr(row, k) if row else "")
                   for k in ("utm_source", "utm_campaign", "gclid", "yclid"))
    if row is not None and row.last_seen >= now - SESSION_IDLE and not new_tags:
        conn.execute(Q.SESSION_SEEN, {"b_sid": row.id, "b_now": now})
        return row.id
    values = {f"v_{k}": v for k, v in f.items()}
    values.update(v_keyword=f.get("keyword") or f.get("utm_term", ""), v_project_id=info.id,
                  v_visitor_id=req.visitor_id, v_user_agent=req.user_agent, v_device=ua.device, v_os=ua.os,
                  v_browser=ua.browser, v_ip=req.ip, v_source_id=source_id, v_first_seen=now, v_last_seen=now)
    return conn.execute(Q.NEW_SESSION, values).scalar_one()


def provisional_seconds(hold_seconds: int) -> int:
    """How long a new (provisional) hold of a pool with this hold time lasts."""
    return min(PROVISIONAL_SECONDS, hold_seconds)


def _take(conn: Connection, pool: PoolInfo, number_id: int, session_id: int, now) -> bool:
    """Mark the number held and reserve it; False when someone else holds it."""
    if conn.execute(Q.TAKE, {"b_tn": number_id}).rowcount != 1:
        return False
    # The partial unique index decides; a live reservation the hint missed leaves the number
    # marked held (which it is) and we try the next one.
    return conn.execute(Q.NEW_RES_IF_FREE[conn.dialect.name],
                        {"b_pool": pool.id, "b_tn": number_id, "b_sid": session_id, "b_now": now}
                        ).first() is not None


def _release_pool(conn: Connection, pool_id: int, hold_seconds: int, now) -> int:
    """Release the pool's reservations idle for longer than the hold time, and the provisional
    ones (never seen since they were made) older than :func:`provisional_seconds`."""
    rows = conn.execute(Q.EXPIRED, {
        "b_pool": pool_id, "b_before": now - dt.timedelta(seconds=hold_seconds),
        "b_before_new": now - dt.timedelta(seconds=provisional_seconds(hold_seconds))}).all()
    if not rows:
        return 0
    conn.execute(Q.RELEASE_MANY, {"b_ids": [r.id for r in rows], "b_now": now})
    conn.execute(Q.FREE_MANY, {"b_ids": [r.tracking_number_id for r in rows], "b_now": now})
    return len(rows)


def _reserve(conn: Connection, info: ProjectInfo, pool: PoolInfo, visitor_id: str, session_id: int,
             now, skip_locked: bool, known: bool) -> tuple:
    """``(number or None, provisional)``: the number given to the visitor, and whether its
    reservation is a new (provisional) one."""
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
        if sweep and not _release_pool(conn, pool.id, pool.hold_seconds, now):
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
    """:func:`prepare`'s decision: ``result`` (bots), ``fast`` (a new visitor's row), else complete()."""

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
    result: Optional[AssignResult] = None
    fast: Optional[tuple] = None
    write_lock: object = None

    def fast_result(self, session_id: int, number: str) -> AssignResult:
        return AssignResult(number, "pool", self.req.visitor_id, session_id, self.pool.id,
                            provisional_seconds(self.pool.hold_seconds), provisional=True)

    def refused(self) -> AssignResult:
        """The answer when a hold limit refuses a new number: the fallback, no session, no hold."""
        return AssignResult(self.default, "refused", self.req.visitor_id, None, self.pool.id)


def cached_project_info(engine: Engine, key: str, stale: bool = False) -> Optional[ProjectInfo]:
    """The project's settings when the cache has them (no database work; ``stale``: also when
    older than ``CACHE_TTL``, for a caller that refreshes them meanwhile), else None."""
    info = _cache.get((_url(engine), key))
    if info is not None and (stale or time.monotonic() - info.loaded < CACHE_TTL):
        return info
    return None


def prepare(engine: Engine, req: AssignRequest, info: ProjectInfo, now: Optional[dt.datetime] = None,
            signer=None) -> Plan:
    """The database-free part of :func:`assign`: pool choice, bots, the visitor id (``signer``:
    an id without its valid signature is a new visitor; new ids are signed), the new visitor's row."""
    now = now or utcnow()
    ua = useragent.parse(req.user_agent)
    source_id = _source_for(info, req.fields)
    pool, static = _choose(info, source_id, req.pool)
    default = (pool.fallback_number if pool else None) or info.default_number
    plan = Plan(engine, req, now, info, ua, source_id, pool, static, default)
    if ua.bot:
        plan.result = AssignResult(static or default, "bot")
        return plan
    if signer is not None and req.visitor_id and not signer.valid(req.visitor_id):
        req.visitor_id = ""               # forged, or issued under another secret: a new visitor
    plan.known = bool(req.visitor_id)
    visitor_id = req.visitor_id = req.visitor_id or (signer.new() if signer is not None else new_visitor_id())
    if not plan.known and pool is not None and pool.promo_mode != "always" and dni_fast.supported(engine):
        # A new visitor: batched by dni_fast's writer; what it cannot do falls through to complete().
        f = req.fields
        plan.fast = (info.id, visitor_id, f["ga_client_id"], f["utm_source"], f["utm_medium"], f["utm_campaign"],
                     f["utm_term"], f["utm_content"], f["gclid"], f["yclid"], f["keyword"] or f["utm_term"],
                     f["referrer"], f["landing_page"], req.user_agent, ua.device, ua.os, ua.browser, req.ip,
                     source_id, now, now)
        plan.write_lock = None if engine.dialect.name == "postgresql" else _write_lock(engine)
    return plan


def assign(factory, req: AssignRequest, now: Optional[dt.datetime] = None, signer=None) -> AssignResult:
    """Give the visitor a number (see the module doc). Raises UnknownProject."""
    engine = _engine(factory)
    info = project_info(engine, req.project)
    if info is None:
        raise UnknownProject(f"unknown project {req.project!r}")
    plan = prepare(engine, req, info, now, signer)
    if plan.result is not None:
        return plan.result
    sid0 = None
    if plan.fast is not None:
        try:
            sid0, number = dni_fast.assign_new(engine, plan.fast, plan.pool.id, plan.write_lock)
        except Exception:                 # a lost race or a hint out of step: the general path decides
            log.debug("DNI fast path failed; using the general path", exc_info=True)
        else:
            if number is not None:
                return plan.fast_result(sid0, number)
    return complete(plan, sid0)


def complete(plan: Plan, sid0: Optional[int] = None) -> AssignResult:
    """The general path of :func:`assign` (one SQLAlchemy transaction, retried on a lost race);
    ``sid0``: the session the fast path already created (its pool had no free number)."""
    engine, info, req, pool, now = plan.engine, plan.info, plan.req, plan.pool, plan.now
    pg = engine.dialect.name == "postgresql"

    def work(conn: Connection) -> AssignResult:
        sid = sid0 if sid0 is not None else _session(conn, info, req, plan.source_id, now, plan.ua, plan.known)
        if pool is None:
            return AssignResult(plan.static or info.default_number, "static" if plan.static else "default",
                                req.visitor_id, sid)
        number, new = _reserve(conn, info, pool, req.visitor_id, sid, now, pg, plan.known)
        res = AssignResult(number, "pool", req.visitor_id, sid, pool.id,
                           provisional_seconds(pool.hold_seconds) if new else pool.hold_seconds, provisional=new)
        if number is None:
            conn.execute(Q.EXHAUSTED, {"b_pool": pool.id})
            res.number, res.kind, res.exhausted = plan.default, "fallback", True
        if promo.wanted(pool.promo_mode, res.exhausted):
            res.promo = promo.code_for_session(conn, info.id, sid, plan.source_id, now)
        return res

    return _retrying(engine, work, write_first=not plan.known and sid0 is None)


def heartbeat(factory, project: str, visitor_id: str, now: Optional[dt.datetime] = None,
              signer=None) -> AssignResult:
    """Extend the visitor's live reservations (a provisional one becomes a full hold).
    ``number`` None: nothing held (ask again) — also for an id without its valid signature
    (``signer``)."""
    engine = _engine(factory)
    now = now or utcnow()
    if not isinstance(project, str) or not _KEY_RX.fullmatch(project):
        raise DniError("field 'project' must be a project key")
    if not isinstance(visitor_id, str) or not _VISITOR_RX.fullmatch(visitor_id):
        raise DniError("field 'visitor_id' must be the visitor id returned by assign")
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

    return _retrying(engine, work)


def release_expired(factory, now: Optional[dt.datetime] = None) -> int:
    """Release every reservation idle for longer than its pool's hold time.

    Scheduler-ready (one call per minute is plenty: assignment also releases
    expired holds of a pool on the spot when it runs out). Returns the count.
    """
    engine = _engine(factory)
    now = now or utcnow()
    with engine.connect() as conn:
        pools = conn.execute(select(NP.c.id, NP.c.hold_seconds)).all()
    total = 0
    for pid, hold in pools:
        total += _retrying(engine, lambda conn, pid=pid, hold=hold: _release_pool(conn, pid, hold, now))
    return total


def pool_status(session, pool: NumberPool, now: Optional[dt.datetime] = None) -> dict:
    """Numbers, live holds (``provisional``: not confirmed by a heartbeat yet), pressure (held /
    numbers) and exhaustion of one pool (for the UI and the CLI)."""
    now = now or utcnow()
    total = session.execute(select(func.count()).select_from(TN).where(
        TN.c.pool_id == pool.id, TN.c.active.is_(True))).scalar_one()
    live, provisional = session.execute(Q.LIVE_COUNTS, {"b_pool": pool.id}).one()
    live, provisional = live or 0, provisional or 0
    return {"pool": pool.name, "numbers": total, "held": live, "provisional": provisional,
            "free": max(total - live, 0), "pressure": round(live / total, 3) if total else None,
            "hold_seconds": pool.hold_seconds, "exhausted_count": pool.exhausted_count,
            "promo_mode": pool.promo_mode}

