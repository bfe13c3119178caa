"""Setting DNI up on a site: the snippet tag of a project, whether the snippet runs, pool usage.

- :func:`snippet_tag` — the ``<script>`` tag to paste into the site, with the project's key and
  the chosen options (the data attributes ``webui/static/dni.js`` reads); every value escaped.
- :func:`visitors_today` — new visitor sessions since local midnight; where and when the
  snippet last ran, per site, is :func:`calltracking.dni.snippet_pings.sites`.
- :func:`pool_usage` — each active pool of a project now (held numbers), today (numbers handed
  out since local midnight) and its recommended size (:mod:`calltracking.dni.pool_sizing`).
"""
from __future__ import annotations

import datetime as dt
import html
from typing import Optional
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from calltracking.dni import holds, pool_sizing
from calltracking.models import NumberPool, PoolReservation, Project, VisitorSession, utcnow

OPTIONS = ("default", "selector", "pool", "timeout")


def snippet_tag(base_url: str, project_key: str, **options: str) -> str:
    """``<script src="BASE/dni.js" data-project="KEY" … async></script>``; ``options`` (see
    :data:`OPTIONS`) become ``data-*`` attributes when not empty."""
    base = (base_url or "").rstrip("/")
    attrs = [f'src="{html.escape(base + "/dni.js", quote=True)}"',
             f'data-project="{html.escape(project_key, quote=True)}"']
    for name in OPTIONS:
        value = str(options.get(name) or "").strip()
        if value:
            attrs.append(f'data-{name}="{html.escape(value, quote=True)}"')
    return f"<script {' '.join(attrs)} async></script>"


def visitors_today(session: Session, project: Project, now: Optional[dt.datetime] = None) -> int:
    """Visitor sessions the project's site started since midnight in the project's time zone."""
    return session.scalar(select(func.count(VisitorSession.id)).where(
        VisitorSession.project_id == project.id, VisitorSession.first_seen >= _local_midnight(project, now))) or 0


def _local_midnight(project: Project, now: Optional[dt.datetime]) -> dt.datetime:
    now = now or utcnow()
    local = now.astimezone(ZoneInfo(project.timezone or "UTC"))
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.timezone.utc)


def pool_today(session: Session, pool: NumberPool, now: Optional[dt.datetime] = None) -> int:
    """Numbers the pool handed out since midnight in its project's time zone."""
    start = _local_midnight(session.get(Project, pool.project_id), now)
    return session.scalar(select(func.count(PoolReservation.id)).where(
        PoolReservation.pool_id == pool.id, PoolReservation.assigned_at >= start)) or 0


def pool_recommended(session: Session, pool: NumberPool, days: float = 7.0,
                     now: Optional[dt.datetime] = None) -> Optional[int]:
    """The pool's recommended size over the last ``days`` (None: no traffic measured)."""
    until = now or utcnow()
    return pool_sizing.recommend(pool_sizing.measure(session, pool, until - dt.timedelta(days=days), until))


def pool_usage(session: Session, project: Project, now: Optional[dt.datetime] = None,
               days: float = 7.0) -> list[dict]:
    """One row per active pool of ``project``: numbers, held now, handed out today, exhausted,
    and the pool sizing report's figures (``recommended`` size over the last ``days``)."""
    now = now or utcnow()
    sizing = {r["pool"]: r for r in pool_sizing.report(session, project.key, days, now=now)}
    out = []
    for pool in session.scalars(select(NumberPool).where(NumberPool.project_id == project.id,
                                                         NumberPool.active.is_(True)).order_by(NumberPool.name)):
        st = holds.pool_status(session, pool)
        today = pool_today(session, pool, now)
        size = sizing.get(pool.name, {})
        out.append({"id": pool.id, "pool": pool.name, "numbers": st["numbers"], "held": st["held"],
                    "provisional": st["provisional"], "today": today, "exhausted": pool.exhausted_count,
                    "peak_per_hour": size.get("peak_per_hour"), "recommended": size.get("recommended"),
                    "collision_rate": size.get("collision_rate"),
                    "estimated_collision_rate": size.get("estimated_collision_rate")})
    return out
