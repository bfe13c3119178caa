"""Per-process memory of the AGI hooks: the number catalogue, routing rules, fallback queues.

The catalogue (which project, source and campaign each DID maps to, and the
routing rules) changes rarely and is needed on every call, so it is read in
one go and checked in the background once it is ``ttl`` seconds old (default
2): a change made in the web UI or the CLI reaches the FastAGI server within
seconds, and no call waits for the re-read. The check reads one number, the
``catalogue_version`` row that database triggers bump on every change of the
tables the catalogue comes from (migration 0009); the whole catalogue (10,000
numbers take ~0.1 s of CPU, time the calls would wait for the interpreter
lock) is re-read only when it moved, and at the latest every ``full_every``
seconds. Who holds a pool number, and whether the caller called before, are
always read from the database.

The default queue of every DID seen is remembered without a time limit: when
the database is down, the hooks still answer with the right project's queue.
"""
from __future__ import annotations

import gc
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import select
from sqlalchemy.engine import Connection

from calltracking.attribution import routing
from calltracking.attribution.rawsql import autocommit, discard, run_sql
from calltracking.enums import NumberKind
from calltracking.models import (
    Campaign, CatalogueVersion, NumberPool, Project, RoutingRule, Source, TrackingNumber,
)


@dataclass(frozen=True)
class ProjectInfo:
    id: int
    key: str
    timezone: str
    default_queue: str
    first_call_window_days: int


@dataclass(frozen=True)
class NumberInfo:
    """A DID as the catalogue maps it (``tn_id`` None: not a tracking number)."""

    did: str
    project: Optional[ProjectInfo] = None
    tn_id: Optional[int] = None
    active: bool = False
    kind: NumberKind = NumberKind.STATIC
    source_id: Optional[int] = None
    campaign_id: Optional[int] = None
    pool_id: Optional[int] = None
    hold_seconds: int = 0
    pool_source_id: Optional[int] = None
    callerid_prefix: bool = True
    record: bool = False


_P, _TN, _NP = Project.__table__.c, TrackingNumber.__table__.c, NumberPool.__table__.c
_CV = CatalogueVersion.__table__.c
_PROJECT_COLS = (_P.id, _P.key, _P.timezone, _P.default_queue, _P.first_call_window_days)


def _project(row) -> ProjectInfo:
    return ProjectInfo(row.id, row.key, row.timezone, row.default_queue or "", row.first_call_window_days or 0)


@dataclass
class Catalogue:
    """Every DID, project, source, campaign and enabled routing rule, read in one go."""

    numbers: dict           # e164 -> NumberInfo (the active mapping, else the last retired one)
    projects: dict          # id -> ProjectInfo
    sources: dict           # id -> (name, label)
    campaigns: dict         # id -> name
    rules: dict             # project id -> [routing.Rule] by priority
    loaded_at: float = 0.0  # when read or last found unchanged (monotonic)
    version: Optional[int] = None   # catalogue_version when read (None: unknown)
    read_at: float = 0.0    # when read (monotonic)

    @property
    def only_project(self) -> Optional[ProjectInfo]:
        return next(iter(self.projects.values())) if len(self.projects) == 1 else None

    def number(self, e164: Optional[str], did: str) -> NumberInfo:
        """The mapping of a DID (``did``: as dialled, shown on the call): its active mapping,
        else its last retired one (inactive: not attributed, but its project's default queue),
        else (not a tracking number) no number, in the only project when there is one; the
        same project as :func:`calltracking.attribution.lookup.attribute` finds."""
        info = self.numbers.get(e164) if e164 else None
        if info is None:
            return NumberInfo(did=did, project=self.only_project)
        return info if info.did == did else NumberInfo(**{**info.__dict__, "did": did})

    def names(self, source_id, campaign_id) -> tuple:
        name, label = self.sources.get(source_id, ("", ""))
        return name, label, self.campaigns.get(campaign_id, "")


def catalogue_version(conn: Connection) -> Optional[int]:
    """The change counter the triggers of migration 0009 keep (None when there is none)."""
    try:
        with conn.begin_nested():       # a missing table must not abort the caller's transaction
            return conn.execute(select(_CV.version).where(_CV.id == 1)).scalar()
    except Exception:  # noqa: BLE001 - an older schema: always re-read
        return None


def load_catalogue(conn: Connection, number: Optional[str] = None) -> Catalogue:
    """Everything, or (``number`` given: one call per process) only that DID's mappings."""
    version = catalogue_version(conn) if number is None else None
    projects = {r.id: _project(r) for r in conn.execute(select(*_PROJECT_COLS))}
    numbers: dict = {}
    stmt = (select(_TN.number, _TN.project_id, _TN.id.label("tn_id"), _TN.active, _TN.kind, _TN.source_id,
                   _TN.campaign_id, _TN.pool_id, _TN.callerid_prefix, _TN.record, _NP.hold_seconds,
                   _NP.source_id.label("pool_source_id"))
            .outerjoin(NumberPool.__table__, _NP.id == _TN.pool_id)
            .order_by(_TN.active, _TN.id))          # the active (or newest) mapping comes last
    if number is not None:
        stmt = stmt.where(_TN.number == number)
    rows = conn.execute(stmt)
    for r in rows:
        numbers[r.number] = NumberInfo(
            did=r.number, project=projects.get(r.project_id), tn_id=r.tn_id, active=bool(r.active),
            kind=r.kind, source_id=r.source_id, campaign_id=r.campaign_id, pool_id=r.pool_id,
            hold_seconds=r.hold_seconds or 0, pool_source_id=r.pool_source_id,
            callerid_prefix=bool(r.callerid_prefix), record=bool(r.record))
    sources = {r.id: (r.name, r.short_label or r.name)
               for r in conn.execute(select(Source.id, Source.name, Source.short_label))}
    campaigns = dict(conn.execute(select(Campaign.id, Campaign.name)).all())
    rules: dict = {}
    for r in conn.execute(select(RoutingRule.__table__).where(RoutingRule.enabled.is_(True))):
        rules.setdefault(r.project_id, []).append(routing.Rule.from_row(r))
    rules = {pid: routing.sort_rules(rs) for pid, rs in rules.items()}
    now = time.monotonic()
    return Catalogue(numbers, projects, sources, campaigns, rules, now, version, now)


class HookCache:
    """The catalogue snapshot (refreshed in the background after ``ttl`` s) and fallback queues.

    ``ttl=0`` reads the catalogue on every call (the classic script: one call per process).
    """

    def __init__(self, rules_ttl: float = 2.0, max_dids: int = 100_000, full_every: float = 300.0):
        self.rules_ttl = rules_ttl
        self.full_every = full_every
        self.max_dids = max_dids
        self._cat: Optional[Catalogue] = None
        self._refreshing = False
        self._queues: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        self._check_conn = None         # the refresh thread's connection for the version check

    def catalogue(self, conn: Connection, session_factory=None, number: Optional[str] = None) -> Catalogue:
        """The snapshot; with ``ttl <= 0`` a fresh read limited to ``number`` (when given)."""
        if self.rules_ttl <= 0:
            return load_catalogue(conn, number or "")
        cat = self._cat
        if cat is None:
            cat = self._cat = load_catalogue(conn)
            return cat
        if time.monotonic() - cat.loaded_at >= self.rules_ttl and session_factory is not None:
            with self._lock:
                start = not self._refreshing
                self._refreshing = True
            if start:       # stale-while-revalidate: this call still uses the old snapshot
                threading.Thread(target=self._refresh, args=(session_factory,), daemon=True,
                                 name="agi-catalogue").start()
        return cat

    def number(self, conn: Connection, session_factory, e164: Optional[str], did: str):
        """``(catalogue, NumberInfo)`` of a DID. A DID the snapshot does not know is read at
        once (a number added a second ago must not wait for the next refresh)."""
        cat = self.catalogue(conn, session_factory, e164)
        info = cat.number(e164, did)
        if info.tn_id is None and e164 and self.rules_ttl > 0:
            fresh = load_catalogue(conn, e164)
            if e164 in fresh.numbers:
                return fresh, fresh.number(e164, did)
        return cat, info

    def known(self, session_factory, e164: Optional[str], did: str):
        """:meth:`number` when the snapshot answers it alone, else None (no snapshot yet, no
        caching, or a DID the snapshot does not know: :meth:`number` reads the database)."""
        cat = self._cat
        if cat is None or self.rules_ttl <= 0:
            return None
        cat = self.catalogue(None, session_factory)
        info = cat.number(e164, did)
        if info.tn_id is None and e164:
            return None
        return cat, info

    def _refresh(self, session_factory) -> None:
        try:
            cat = self._cat
            if (cat is not None and cat.version is not None
                    and time.monotonic() - cat.read_at < self.full_every
                    and self._version(session_factory.kw["bind"]) == cat.version):
                cat.loaded_at = time.monotonic()            # unchanged: keep the snapshot
                return
            session = session_factory()
            try:
                self._cat = load_catalogue(session.connection())
                # 10,000 numbers are ~100,000 long-lived objects; a full collection
                # walking them would stall every call for tens of ms (the p99)
                gc.freeze()
            finally:
                session.close()
        except Exception:  # noqa: BLE001 - keep the old snapshot; the next call retries
            self._drop_check()
        finally:
            self._refreshing = False

    def _version(self, engine) -> Optional[int]:
        """The catalogue version, on a connection kept open for this check (one plain
        statement on the driver connection: no pool checkout, session or savepoint, whose
        interpreter time every call in flight would wait for)."""
        conn = self._check_conn
        if conn is None or conn.closed:
            conn = self._check_conn = engine.connect()
            autocommit(conn)
        try:
            row = run_sql(conn, "SELECT version FROM catalogue_version WHERE id = 1", {}).fetchone()
        except Exception:  # noqa: BLE001 - an older schema, or the connection broke: re-read all
            self._drop_check()
            return None
        return row[0] if row else None

    def _drop_check(self) -> None:
        conn, self._check_conn = self._check_conn, None
        if conn is not None:
            discard(conn)

    def invalidate(self) -> None:
        self._cat = None

    def remember_queue(self, did: str, queue: str) -> None:
        if not did or not queue or self._queues.get(did) == queue:
            return          # known (every call of a DID after its first): no lock, no reorder
        with self._lock:
            self._queues[did] = queue
            self._queues.move_to_end(did)
            while len(self._queues) > self.max_dids:
                self._queues.popitem(last=False)

    def queue_for(self, did: str) -> str:
        return self._queues.get(did, "")
