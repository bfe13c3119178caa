"""A project's DNI settings as the assignment reads them, cached for ``CACHE_TTL`` seconds.

Per request the assignment needs the project's active pools (general pools — no source —
first, then by id), its sources by lower-case name and short label, its campaigns by
lower-case ``utm_campaign``, its source aliases (:mod:`calltracking.sources`), the static
numbers of its sources (combined mode), its default number and allowed origins. They are read in one go (:func:`project_info`) and kept per
(database, project key) for :data:`CACHE_TTL` seconds: a settings change reaches the
endpoints within that time, without a database read per request.
"""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import select
from sqlalchemy.engine import Engine

from calltracking import sources as auto_sources
from calltracking.dni.transactions import engine_key
from calltracking.models import Campaign, NumberPool, Project, Source, TrackingNumber

CACHE_TTL = 5.0

NP, TN = NumberPool.__table__, TrackingNumber.__table__


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
    aliases: dict = None            # (utm_source, utm_medium) -> source id (calltracking.sources)


_cache: dict = {}
_cache_lock = threading.Lock()


def invalidate_cache() -> None:
    with _cache_lock:
        _cache.clear()


def parse_origins(text_: str) -> frozenset:
    """A project's ``allowed_origins`` (separated by spaces or commas) as lower-case origins."""
    return frozenset(o.strip().rstrip("/").lower() for o in re.split(r"[\s,]+", text_ or "") if o.strip())


def cached_project_info(engine: Engine, key: str, stale: bool = False) -> Optional[ProjectInfo]:
    """The project's settings when the cache has them (no database work; ``stale``: also when
    older than ``CACHE_TTL``, for a caller that refreshes them meanwhile), else None."""
    info = _cache.get((engine_key(engine), key))
    if info is not None and (stale or time.monotonic() - info.loaded < CACHE_TTL):
        return info
    return None


def project_info(engine: Engine, key: str) -> Optional[ProjectInfo]:
    """The project's settings (from the cache when fresh); None for an unknown project."""
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
        aliases = auto_sources.load_aliases(conn, p["id"])
    info = ProjectInfo(p["id"], key, p["default_number"], parse_origins(p["allowed_origins"]), pools,
                       sources, campaigns, statics, time.monotonic(), aliases)
    with _cache_lock:
        _cache[(engine_key(engine), key)] = info
    return info
