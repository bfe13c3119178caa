"""The AGI hooks ``route``, ``promo``, ``tag`` and ``lookup``: the core behind both adapters.

The FastAGI server (``agi/server.py``) and the classic stdin/stdout script
(``agi/classic.py``) translate the AGI protocol and call these functions; each
takes a :class:`HookEnv` (configuration, session factory, clock, caches) and
the hook's inputs and returns the ``{variable: value}`` dict to set on the
channel. :func:`defaults` gives the safe answer used when the database is slow,
locked or down: the adapters answer with it instead of leaving the channel
waiting.

Database work is split into reads and a short write transaction (an upsert of
the call keyed by ``(pbx_id, linkedid)``, or ``tag``'s transaction). Under the
FastAGI server every write goes to its writer thread (:mod:`calltracking.hooks.writer`),
which retries a locked database until the write is done: a hook waits for the commit
at most ``[agi] write_wait_ms`` (within its budget) and answers anyway, so a hook never
loses its write to "database is locked" and never keeps the channel waiting for it.
The classic script writes itself (:func:`hookdb.write`: ``BEGIN IMMEDIATE`` within
the budget).
"""
from __future__ import annotations

import logging
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Callable, Optional

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from calltracking.attribution import lookup as attr_mod
from calltracking import phone
from calltracking.hooks import storage as hookdb
from calltracking.attribution import routing
from calltracking.attribution.catalogue import HookCache, NumberInfo  # noqa: F401 (HookCache is part of this API)
from calltracking.models import (
    Call, Campaign, Project, PromoCode, Source, Tag, VisitorSession, call_tags, utcnow,
)

log = logging.getLogger("calltracking.hooks.core")

HOOKS = ("route", "promo", "tag", "lookup")
ROUTE_VARS = ("CT_CALL_ID", "CT_PROJECT", "CT_SOURCE", "CT_CAMPAIGN", "CT_ATTRIBUTION", "CT_QUEUE",
              "CT_TARGET", "CT_CALLER_TYPE", "CT_RECORD", "CT_CONFIDENCE", "CT_STATUS")
_NO_VALUE = phone.NO_NUMBER  # the same words in CALLERID(name) mean "no name"
# what a later `route` of the same call replaces (the listener may have created the row first)
ROUTE_OVERWRITE = ("source_id", "campaign_id", "session_id", "routing_rule_id", "attribution",
                   "attribution_confidence", "candidate_count", "queue", "target", "first_call",
                   "time_to_call_seconds", "record", "project_id", "tracking_number_id")
# what a valid promo code replaces
PROMO_OVERWRITE = ("project_id", "source_id", "campaign_id", "promo_code_id", "session_id", "attribution",
                   "attribution_confidence", "candidate_count", "routing_rule_id", "queue", "target",
                   "time_to_call_seconds")


@dataclass
class HookEnv:
    config: object                                  # calltracking.config.Config
    session_factory: Callable[[], Session]
    clock: Callable = utcnow                        # aware UTC "now"; tests inject their own
    cache: HookCache = field(default_factory=HookCache)
    writer: Optional[object] = None                 # hookwriter.CallWriter (FastAGI) or None:
                                                    # FastAGI runs plan_route() and submits the row

    _local: threading.local = field(default_factory=threading.local, repr=False)
    _opened: list = field(default_factory=list, repr=False)

    @property
    def engine(self):
        return self.session_factory.kw["bind"]

    @contextmanager
    def connection(self):
        """This thread's own connection for the hot path's reads, kept open between calls:
        no pool checkout and no pre-ping round trip per call (a dropped connection is
        replaced on the spot by :func:`hookdb.run_sql`). The driver is in autocommit mode
        (PostgreSQL: each read its own snapshot, nothing left open); a transaction
        SQLAlchemy began (SQLite) is rolled back after use."""
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._local.conn = self.engine.connect()
            self._opened = [c for c in self._opened if not c.closed] + [conn]
        try:
            hookdb.autocommit(conn)
            yield conn
        finally:
            try:
                conn.rollback()
            except Exception:  # noqa: BLE001 - broken: the next call opens a new one
                self._local.conn = None
                hookdb.discard(conn)

    def close_connections(self) -> None:
        """Close the threads' connections (the server is stopping; its threads are idle)."""
        for conn in self._opened:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing anyway
                pass
        self._opened = []

    @property
    def region(self) -> str:
        return self.config.general.default_region

    @property
    def pbx_id(self) -> str:
        return self.config.general.pbx_id


Cancelled, Budget = hookdb.Cancelled, hookdb.Budget      # part of this module's API


# ------------------------------------------------------------------ helpers
def call_id(env: HookEnv, linkedid: str) -> str:
    """``CT_CALL_ID``: ``<pbx_id>-<linkedid>``, known even when the database is not."""
    return f"{env.pbx_id}-{linkedid}" if linkedid else ""


def clean_linkedid(value: str) -> str:
    return re.sub(r"[^0-9A-Za-z._-]", "", value or "")[:64]


@lru_cache(maxsize=65536)
def normalize(raw: str, region: str) -> Optional[str]:
    """:func:`phone.try_normalize`, remembered (DIDs and regular callers repeat all day)."""
    return phone.try_normalize(raw, region)


def caller_number(raw: str, region: str) -> str:
    """:func:`phone.caller_number` (the one rule, shared with the AMI listener)."""
    return phone.caller_number(raw, region)


def _name(raw: str) -> str:
    raw = (raw or "").strip()
    return "" if raw.lower() in _NO_VALUE else raw[:200]


def fallback_queue(env: HookEnv, did: str = "") -> str:
    key = phone.try_normalize(did, env.region) or (did or "").strip()
    return env.cache.queue_for(key) or env.config.general.default_queue


def defaults(env: HookEnv, hook: str = "route", did: str = "", linkedid: str = "",
             status: str = "fallback") -> dict[str, str]:
    """The safe answer: default queue, no attribution, no recording. Never touches the DB."""
    if hook == "promo":
        return {"CT_PROMO": "error", "CT_STATUS": status}
    if hook == "tag":
        return {"CT_TAG": "", "CT_STATUS": status}
    return {"CT_CALL_ID": call_id(env, clean_linkedid(linkedid)), "CT_PROJECT": "", "CT_SOURCE": "",
            "CT_CAMPAIGN": "", "CT_ATTRIBUTION": "none", "CT_QUEUE": fallback_queue(env, did),
            "CT_TARGET": "", "CT_CALLER_TYPE": "", "CT_RECORD": "no", "CT_CONFIDENCE": "",
            "CT_STATUS": status}


def write_wait(env: HookEnv, budget: Optional[Budget]) -> float:
    """Seconds a hook waits for its queued write to commit: ``[agi] write_wait_ms``, and at
    most four fifths of the budget left (the rest is for answering the channel)."""
    wait = env.config.agi.write_wait_ms / 1000.0
    if budget is not None:
        wait = min(wait, budget.remaining() * 0.8)
    return max(wait, 0.0)


def _load_rules(env: HookEnv, session: Session, project_id: int) -> list[routing.Rule]:
    return env.cache.catalogue(session.connection(), env.session_factory).rules.get(project_id, [])


def _facts(now, tz: str, source_id, campaign_id, vs: Optional[VisitorSession]) -> routing.CallFacts:
    return routing.CallFacts(local_time=routing.local_now(now, tz), source_id=source_id,
                             campaign_id=campaign_id, keyword=vs.keyword if vs else "",
                             utm_term=vs.utm_term if vs else "", has_session=vs is not None)


def _project_queue(env: HookEnv, project: Optional[Project]) -> str:
    return (project.default_queue if project and project.default_queue else "") or \
        env.config.general.default_queue


def _window_days(env: HookEnv, project: Optional[Project]) -> int:
    if project is not None and project.first_call_window_days:
        return project.first_call_window_days
    return env.config.general.first_call_window_days


def _names(session: Session, source_id, campaign_id) -> tuple[Optional[Source], str]:
    src = session.get(Source, source_id) if source_id else None
    camp = session.get(Campaign, campaign_id) if campaign_id else None
    return src, camp.name if camp else ""


def _prefixed_name(label: str, name: str) -> str:
    tag = f"[{label}]"
    if name.startswith(tag):
        return name
    return f"{tag} {name}".strip()[:200]


# --------------------------------------------------------------------- route
def with_connection(env: HookEnv, fn):
    """``fn(conn)`` on this thread's kept-open connection; when the database dropped that
    connection (restart, admin kill), once more on a fresh one instead of failing the call."""
    for attempt in (1, 2):
        with env.connection() as conn:
            try:
                return fn(conn)
            except Exception as e:
                if attempt == 2 or not hookdb.disconnected(conn, e):
                    raise
                log.info("database connection lost (%s); reconnecting", type(e).__name__)
                conn.invalidate()


def attribute_number(conn, info: NumberInfo, now) -> dict:
    """:func:`attribution.attribute` on a cached catalogue entry (same rules, fewer queries)."""
    out = dict(kind="none", source_id=None, campaign_id=None, session=None, confidence=None,
               candidates=None)
    if info.tn_id is None or not info.active:
        return out                                   # unknown or retired: keeps ringing
    if info.kind == "static":
        if info.source_id is not None:
            out.update(kind="static", source_id=info.source_id, campaign_id=info.campaign_id,
                       confidence=Decimal("1.000"))
        return out
    holder, candidates = hookdb.pool_holder(conn, info.tn_id, info.hold_seconds, now)
    out["candidates"] = candidates
    if holder is None:
        out["source_id"] = info.pool_source_id
        return out
    out.update(kind="dynamic", session=holder, source_id=holder.source_id or info.pool_source_id,
               confidence=(Decimal(1) / Decimal(candidates)).quantize(Decimal("0.001")))
    return out


def route(env: HookEnv, did: str, linkedid: str, caller: str = "", caller_name: str = "",
          budget: Optional[Budget] = None, write: bool = True) -> dict[str, str]:
    """Attribute the call, pick its queue, record it; returns the CT_* variables.

    ``write=False`` computes the answer without creating the call (dry run).
    """
    out, values = plan_route(env, did, linkedid, caller, caller_name)
    if write and values["linkedid"]:        # (FastAGI writes through its CallWriter instead)
        hookdb.write(env.session_factory, budget,
                     lambda s: hookdb.upsert_call(s, values, overwrite=ROUTE_OVERWRITE))
    return out


def plan_route(env: HookEnv, did: str, linkedid: str, caller: str = "",
               caller_name: str = "") -> tuple[dict[str, str], dict]:
    """The reads and decisions of :func:`route`: ``(CT_* variables, the call row to upsert)``.
    The FastAGI server writes the row itself (asynchronously, in a batch)."""
    now = env.clock()
    linkedid = clean_linkedid(linkedid)
    number = caller_number(caller, env.region)
    name = _name(caller_name)
    e164 = normalize((did or "")[:64], env.region)
    did_text = e164 or (did or "").strip()[:32]

    def read(conn):
        cat, info = env.cache.number(conn, env.session_factory, e164, did_text)
        att = attribute_number(conn, info, now)
        project = info.project
        first = hookdb.first_call(conn, env.pbx_id, project.id if project else None, number, now,
                                  _window_days(env, project), linkedid)
        return cat, info, att, first

    cat, info, att, first = with_connection(env, read)
    project, vs = info.project, att["session"]
    rule = None
    if project is not None:
        rule = routing.choose(cat.rules.get(project.id, []),
                              _facts(now, project.timezone, att["source_id"], att["campaign_id"], vs))
    default_queue = _project_queue(env, project)
    queue = (rule.queue if rule and rule.queue else "") or default_queue
    target = rule.target if rule else ""
    if rule is not None and rule.record is not None:
        record = rule.record
    else:
        record = bool(info.active and info.record and att["kind"] != "none")
    source_name, label, campaign_name = cat.names(att["source_id"], att["campaign_id"])
    ttc = None
    if vs is not None:
        ttc = Decimal(str(round(max((now - vs.first_seen).total_seconds(), 0.0), 3)))
    values = dict(
        pbx_id=env.pbx_id, linkedid=linkedid, project_id=project.id if project else None,
        tracking_number_id=info.tn_id, did=did_text, caller_number=number, caller_name=name,
        source_id=att["source_id"], campaign_id=att["campaign_id"], session_id=vs.id if vs else None,
        routing_rule_id=rule.id if rule else None, attribution=att["kind"],
        attribution_confidence=att["confidence"], candidate_count=att["candidates"],
        queue=queue[:80], target=target[:200], started_at=now, first_call=first,
        time_to_call_seconds=ttc, record=record, via_agi=True, updated_at=now,
    )
    env.cache.remember_queue(did_text, default_queue)
    out = {
        "CT_CALL_ID": call_id(env, linkedid), "CT_PROJECT": project.key if project else "",
        "CT_SOURCE": source_name, "CT_CAMPAIGN": campaign_name, "CT_ATTRIBUTION": att["kind"],
        "CT_QUEUE": queue, "CT_TARGET": target,
        "CT_CALLER_TYPE": "" if first is None else ("first" if first else "repeat"),
        "CT_RECORD": "yes" if record else "no",
        "CT_CONFIDENCE": "" if att["confidence"] is None else str(att["confidence"]),
        "CT_STATUS": "ok",
    }
    if env.config.agi.callerid_prefix and label and att["kind"] != "none" and info.callerid_prefix:
        out["CALLERID(name)"] = _prefixed_name(label, name)
    return out, values


# --------------------------------------------------------------------- promo
def promo(env: HookEnv, linkedid: str, code: str, budget: Optional[Budget] = None) -> dict[str, str]:
    """Check a promo code typed by the caller; a valid one attributes the call to its source.

    Returns ``CT_PROMO=valid`` with the new attribution and queue, or
    ``CT_PROMO=invalid`` (nothing else changes).
    """
    now = env.clock()
    linkedid = clean_linkedid(linkedid)
    code = re.sub(r"[^0-9A-Za-z]", "", code or "")[:20]
    if not code:
        return {"CT_PROMO": "invalid", "CT_STATUS": "ok"}
    session = env.session_factory()
    try:
        call = session.scalars(select(Call).where(Call.pbx_id == env.pbx_id,
                                                  Call.linkedid == linkedid)).first() if linkedid else None
        project = session.get(Project, call.project_id) if call and call.project_id else \
            attr_mod._only_project(session)
        conds = [PromoCode.code == code, PromoCode.active.is_(True),
                 or_(PromoCode.valid_from.is_(None), PromoCode.valid_from <= now),
                 or_(PromoCode.valid_to.is_(None), PromoCode.valid_to >= now)]
        if project is not None:
            conds.append(PromoCode.project_id == project.id)
        pc = session.scalars(select(PromoCode).where(and_(*conds)).limit(2)).all()
        if len(pc) != 1:
            return {"CT_PROMO": "invalid", "CT_STATUS": "ok"}
        pc = pc[0]
        if project is None:
            project = session.get(Project, pc.project_id)
        vs = session.get(VisitorSession, pc.session_id) if pc.session_id else None
        tz = project.timezone if project else env.config.general.timezone
        rule = routing.choose(_load_rules(env, session, project.id),
                              _facts(now, tz, pc.source_id, pc.campaign_id, vs))
        queue = (rule.queue if rule and rule.queue else "") or _project_queue(env, project)
        target = rule.target if rule else ""
        src, campaign_name = _names(session, pc.source_id, pc.campaign_id)
        values = dict(pbx_id=env.pbx_id, linkedid=linkedid, project_id=project.id,
                      source_id=pc.source_id, campaign_id=pc.campaign_id, promo_code_id=pc.id,
                      session_id=pc.session_id, attribution="promo",
                      attribution_confidence=Decimal("1.000"), candidate_count=None,
                      routing_rule_id=rule.id if rule else None, queue=queue[:80],
                      target=target[:200], started_at=now, via_agi=True, updated_at=now)
        if vs is not None:          # a code issued to one visitor session (website snippet)
            values["time_to_call_seconds"] = Decimal(str(round(max(
                (now - vs.first_seen).total_seconds(), 0.0), 3)))
        out = {"CT_PROMO": "valid", "CT_CALL_ID": call_id(env, linkedid), "CT_PROJECT": project.key,
               "CT_SOURCE": src.name if src else "", "CT_CAMPAIGN": campaign_name,
               "CT_ATTRIBUTION": "promo", "CT_QUEUE": queue, "CT_TARGET": target,
               "CT_CONFIDENCE": "1.000", "CT_STATUS": "ok"}
    finally:
        session.close()
    if linkedid:
        if env.writer is not None:      # FastAGI: the writer thread, retried until written
            env.writer.write(values, PROMO_OVERWRITE, wait=write_wait(env, budget))
        else:
            hookdb.write(env.session_factory, budget,
                         lambda s: hookdb.upsert_call(s, values, overwrite=PROMO_OVERWRITE))
    return out


# ----------------------------------------------------------------------- tag
def _tag_work(env: HookEnv, linkedid: str, name: str, now) -> Callable[[Session], None]:
    """The transaction that adds the tag ``name`` (created in the call's project when missing)
    to the call (created, bare, when no other hook or the listener created it yet)."""

    def work(s: Session) -> None:
        call = s.scalars(select(Call).where(Call.pbx_id == env.pbx_id, Call.linkedid == linkedid)).first()
        project_id = call.project_id if call else None
        if project_id is None:
            only = attr_mod._only_project(s)
            project_id = only.id if only else None
        if project_id is None:
            raise LookupError(f"call {linkedid}: no project to tag in")
        if call is None:
            hookdb.upsert_call(s, dict(pbx_id=env.pbx_id, linkedid=linkedid, project_id=project_id,
                                       started_at=now, via_agi=True, updated_at=now), overwrite=())
            call_pk = s.scalars(select(Call.id).where(Call.pbx_id == env.pbx_id,
                                                      Call.linkedid == linkedid)).one()
        else:
            call_pk = call.id
        t = s.scalars(select(Tag).where(Tag.project_id == project_id, Tag.name == name)).first()
        if t is None:
            with s.begin_nested():
                s.add(Tag(project_id=project_id, name=name))
            t = s.scalars(select(Tag).where(Tag.project_id == project_id, Tag.name == name)).one()
        if s.get_bind().dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        s.execute(insert(call_tags).values(call_id=call_pk, tag_id=t.id).on_conflict_do_nothing())

    return work


class TagRequest:
    """One ``tag`` hook request: :meth:`run` is its database work, :meth:`fallback` the answer
    when the server answers without it (late, failed, too many waiting).

    FastAGI: the tag is handed to the writer thread exactly once, by whichever of the two
    comes first, so it is written (retried while the database is locked) even when the
    channel got the fallback answer (the defaults). ``run`` waits for the commit at most
    :func:`write_wait`: ``CT_STATUS=ok`` means written, or queued behind a locked database
    and written as soon as it allows; while the database cannot be reached at all the
    answer is the fallback (the tag stays queued for the writer's ``retry_seconds``);
    ``error`` means no project to tag in (or bad arguments). The classic script writes
    within the budget itself; its fallback writes nothing.
    """

    def __init__(self, env: HookEnv, linkedid: str, name: str):
        self.env = env
        self.now = env.clock()
        self.linkedid = clean_linkedid(linkedid)
        self.name = " ".join((name or "").split())[:100]
        self.valid = bool(self.name and self.linkedid)
        self.future = None              # the writer's future, once handed over
        self._lock = threading.Lock()

    def _hand_over(self):
        with self._lock:
            if self.future is None:
                self.future = self.env.writer.submit_work(
                    _tag_work(self.env, self.linkedid, self.name, self.now),
                    f"tag {self.name!r} of call {self.linkedid}")
            return self.future

    def run(self, budget: Optional[Budget] = None) -> dict[str, str]:
        if not self.valid:
            return {"CT_TAG": "", "CT_STATUS": "error"}
        try:
            if self.env.writer is None:
                hookdb.write(self.env.session_factory, budget,
                             _tag_work(self.env, self.linkedid, self.name, self.now))
            else:
                try:
                    self._hand_over().result(write_wait(self.env, budget))
                except TimeoutError:    # queued: the writer writes it as soon as it can
                    self.env.writer.stats["late"] += 1
                    if self.env.writer.unreachable:
                        raise hookdb.Unreachable("the database cannot be reached; the tag is "
                                                 "queued") from None
        except LookupError as e:
            if self.env.writer is None:     # (the writer thread logged it)
                log.warning("tag %r: %s", self.name, e, extra={"linkedid": self.linkedid})
            return {"CT_TAG": "", "CT_STATUS": "error"}
        return {"CT_TAG": self.name, "CT_STATUS": "ok"}

    def fallback(self) -> dict[str, str]:
        if self.valid and self.env.writer is not None:
            self._hand_over()
        return defaults(self.env, "tag")


def tag(env: HookEnv, linkedid: str, name: str, budget: Optional[Budget] = None) -> dict[str, str]:
    """Add the tag ``name`` (created in the call's project when missing) to the call
    (see :class:`TagRequest`)."""
    return TagRequest(env, linkedid, name).run(budget)


# -------------------------------------------------------------------- lookup
def lookup(env: HookEnv, linkedid: str, did: str = "", budget: Optional[Budget] = None) -> dict[str, str]:
    """Read-only: the attribution variables of a call already routed (or of a DID)."""
    linkedid = clean_linkedid(linkedid)
    session = env.session_factory()
    try:
        call = session.scalars(select(Call).where(Call.pbx_id == env.pbx_id,
                                                  Call.linkedid == linkedid)).first() if linkedid else None
        if call is None:
            if did:
                out = route(env, did, linkedid, write=False)
                out.pop("CALLERID(name)", None)
                out["CT_CALLER_TYPE"] = ""
                return out
            return {**defaults(env, "route", did, linkedid, status="unknown")}
        project = session.get(Project, call.project_id) if call.project_id else None
        src, campaign_name = _names(session, call.source_id, call.campaign_id)
        return {
            "CT_CALL_ID": call_id(env, linkedid), "CT_PROJECT": project.key if project else "",
            "CT_SOURCE": src.name if src else "", "CT_CAMPAIGN": campaign_name,
            "CT_ATTRIBUTION": call.attribution, "CT_QUEUE": call.queue or _project_queue(env, project),
            "CT_TARGET": call.target,
            "CT_CALLER_TYPE": "" if call.first_call is None else ("first" if call.first_call else "repeat"),
            "CT_RECORD": "yes" if call.record else "no",
            "CT_CONFIDENCE": "" if call.attribution_confidence is None else str(call.attribution_confidence),
            "CT_STATUS": "ok",
        }
    finally:
        session.close()


def preload_fallback_queues(env: HookEnv) -> int:
    """Warm up: read the catalogue and remember every DID's default queue (for outages)."""
    session = env.session_factory()
    try:
        cat = env.cache.catalogue(session.connection(), env.session_factory)
    finally:
        session.close()
    for number, info in cat.numbers.items():
        if info.active:
            env.cache.remember_queue(number, _project_queue(env, info.project))
    return len(cat.numbers)
