"""Rollup tables behind the reports, and how they are kept up to date.

Reports never scan ``calls``: they read ``report_daily`` (one row per project,
local day, dimension and key) and ``report_hourly`` (one row per project and
local hour, with the peak number of concurrent calls). Both hold *finished*
calls only (status answered or missed); calls in progress are shown live by
the dashboard straight from ``calls``.

Keeping them current: :func:`refresh_rollups` looks at the calls whose
``updated_at`` moved since the stored watermark (index ``ix_calls_updated_at``),
finds the (project, local day) pairs they touch (the day the call started and
the day it ended), and recomputes each such day from scratch: delete its rollup
rows, aggregate the day's calls again, insert; the day's change is then added to
its month's "<dim>@m" rows and its year's "<dim>@y" rows. Recomputing is idempotent, so
the watermark is re-read with a safety margin and nothing is lost when a slow
transaction commits an older ``updated_at``. The scheduler calls it every
``REFRESH_INTERVAL`` seconds (lag ≤ 5 s), and report pages call it before
reading, so reports are current even without the scheduler. An empty state
(new install, upgrade), or monthly rows without yearly rows (rollups built by
a version without them), triggers a full :func:`rebuild_rollups`; call that too
after changing a project's time zone or bulk-deleting calls (retention), or
run ``refresh_rollups(session, full=True)``.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Iterable, Optional
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Float, cast, delete, func, insert, literal, select, update
from sqlalchemy.orm import Session

from calltracking.models import (
    Call, CallLeg, Project, ReportDaily, ReportHourly, ReportRollupState, VisitorSession, utcnow,
)

REFRESH_INTERVAL = 2.0          # seconds between scheduler runs
WATERMARK_MARGIN = dt.timedelta(seconds=10)
MAX_CALL_HOURS = 12             # calls longer than this do not count for peak concurrency
FINISHED = ("answered", "missed")
DIMS = ("all", "source", "campaign", "keyword", "operator", "device", "os", "browser", "ttc")
MONTH_DIMS = DIMS[1:]           # also kept per month as "<dim>@m" rows
MONTH_SUFFIX = "@m"
YEAR_SUFFIX = "@y"              # and per calendar year as "<dim>@y" rows (day = 1 January)
# Time-to-call buckets: (upper bound in seconds, label); the last has no bound.
TTC_BUCKETS = ((60, "<1m"), (300, "1-5m"), (900, "5-15m"), (3600, "15-60m"), (3 * 3600, "1-3h"),
               (24 * 3600, "3-24h"), (7 * 86400, "1-7d"), (None, ">7d"))
TTC_LABELS = tuple(b[1] for b in TTC_BUCKETS)
_METRICS = ("calls", "answered", "missed", "first_calls", "repeat_calls", "wait_sum", "talk_sum",
            "deals", "value_sum", "missed_rung", "targets")
_STATE_ID = 1
_ZERO = 0.0


def zone(project: Project) -> ZoneInfo:
    return ZoneInfo(project.timezone or "UTC")


def day_bounds(tz: ZoneInfo, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """UTC start (inclusive) and end (exclusive) of a local calendar day."""
    start = dt.datetime.combine(day, dt.time(), tz).astimezone(dt.timezone.utc)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tz).astimezone(dt.timezone.utc)
    return start, end


def ttc_bucket(seconds) -> str:
    s = float(seconds)
    for bound, label in TTC_BUCKETS:
        if bound is None or s < bound:
            return label
    return TTC_LABELS[-1]  # pragma: no cover


def _new_metrics() -> dict:
    return {"calls": 0, "answered": 0, "missed": 0, "first_calls": 0, "repeat_calls": 0,
            "wait_sum": _ZERO, "talk_sum": _ZERO, "deals": 0, "value_sum": _ZERO, "missed_rung": 0, "targets": 0}


def _add_call(m: dict, c) -> None:
    m["calls"] += 1
    if c.status == "answered":
        m["answered"] += 1
        m["talk_sum"] += c.talk_seconds or _ZERO
    else:
        m["missed"] += 1
    if c.first_call is True:
        m["first_calls"] += 1
    elif c.first_call is False:
        m["repeat_calls"] += 1
    m["wait_sum"] += c.wait_seconds or _ZERO
    if c.value is not None and c.value > 0:
        m["deals"] += 1
        m["value_sum"] += c.value
    if c.is_target:
        m["targets"] += 1


def _call_keys(c) -> Iterable[tuple[str, str]]:
    yield "all", ""
    yield "source", str(c.source_id or "")
    yield "campaign", str(c.campaign_id or "")
    yield "keyword", ((c.keyword or c.utm_term or "").strip())[:200]
    if c.session_id is not None:
        yield "device", (c.device or "")[:200]
        yield "os", (c.os or "")[:200]
        yield "browser", (c.browser or "")[:200]
    if c.time_to_call_seconds is not None:
        yield "ttc", ttc_bucket(c.time_to_call_seconds)


def peak_per_hour(intervals: Iterable[tuple[dt.datetime, dt.datetime]],
                  boundaries: list[dt.datetime]) -> list[int]:
    """Peak number of overlapping [start, end) intervals inside each window
    ``boundaries[k] .. boundaries[k+1]`` (pure; used for "are there enough lines?")."""
    events = []
    for s, e in intervals:
        if e is None or e <= s:
            continue
        events.append((s, 1))
        events.append((e, -1))
    events.sort(key=lambda ev: (ev[0], ev[1]))  # an end before a start at the same instant
    peaks, cur, i, n = [], 0, 0, len(events)
    while i < n and events[i][0] < boundaries[0]:
        cur += events[i][1]
        i += 1
    for k in range(len(boundaries) - 1):
        hi = boundaries[k + 1]
        best = cur
        while i < n and events[i][0] < hi:
            cur += events[i][1]
            best = max(best, cur)
            i += 1
        peaks.append(best)
    return peaks


def _f(col):
    """Sums are made with floats (fast) and stored rounded as NUMERIC."""
    return cast(col, Float).label(col.key)


def compute_day(session: Session, project: Project, day: dt.date) -> tuple[list[dict], list[dict]]:
    """Aggregate one local day of a project: (report_daily rows, report_hourly rows)."""
    tz = zone(project)
    start, end = day_bounds(tz, day)
    q = (select(Call.id, Call.started_at, Call.ended_at, Call.status, Call.first_call, Call.is_target,
                _f(Call.wait_seconds), _f(Call.talk_seconds), _f(Call.value), Call.source_id,
                Call.campaign_id, Call.operator_id, Call.session_id, _f(Call.time_to_call_seconds),
                VisitorSession.keyword, VisitorSession.utm_term, VisitorSession.device,
                VisitorSession.os, VisitorSession.browser)
         .outerjoin(VisitorSession, VisitorSession.id == Call.session_id)
         .where(Call.project_id == project.id, Call.started_at >= start, Call.started_at < end,
                Call.status.in_(FINISHED)))
    daily: dict[tuple[str, str], dict] = defaultdict(_new_metrics)
    hourly: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for c in session.execute(q):
        for key in _call_keys(c):
            _add_call(daily[key], c)
        if c.operator_id is not None and c.status == "answered":
            _add_call(daily[("operator", str(c.operator_id))], c)
        h = hourly[c.started_at.astimezone(tz).hour]
        h[0] += 1
        h[1 if c.status == "answered" else 2] += 1
    legs = (select(CallLeg.operator_id, func.count())
            .join(Call, Call.id == CallLeg.call_id)
            .where(Call.project_id == project.id, Call.started_at >= start, Call.started_at < end,
                   Call.status.in_(FINISHED), CallLeg.outcome == "no_answer")
            .group_by(CallLeg.operator_id))
    for op_id, n in session.execute(legs):
        daily[("operator", str(op_id or ""))]["missed_rung"] += n
    spans = session.execute(
        select(Call.started_at, Call.ended_at)
        .where(Call.project_id == project.id, Call.started_at >= start - dt.timedelta(hours=MAX_CALL_HOURS),
               Call.started_at < end, Call.ended_at > start, Call.status.in_(FINISHED))).all()
    n_hours = int((end - start).total_seconds() // 3600)
    bounds = [start + dt.timedelta(hours=k) for k in range(n_hours + 1)]
    if bounds[-1] < end:
        bounds.append(end)
    peaks = peak_per_hour(spans, bounds)
    peak_by_hour: dict[int, int] = {}
    for k, p in enumerate(peaks):
        hr = bounds[k].astimezone(tz).hour
        peak_by_hour[hr] = max(peak_by_hour.get(hr, 0), p)
    daily_rows = [dict(project_id=project.id, day=day, dim=dim, key=key, **m)
                  for (dim, key), m in daily.items()]
    hourly_rows = []
    for hr in sorted(set(hourly) | {h for h, p in peak_by_hour.items() if p}):
        calls, answered, missed = hourly.get(hr, (0, 0, 0))
        hourly_rows.append(dict(project_id=project.id, day=day, hour=hr, weekday=day.isoweekday(),
                                calls=calls, answered=answered, missed=missed,
                                peak_concurrent=peak_by_hour.get(hr, 0)))
    return daily_rows, hourly_rows


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def month_end(day: dt.date) -> dt.date:
    nxt = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return nxt - dt.timedelta(days=1)


def year_start(day: dt.date) -> dt.date:
    return day.replace(month=1, day=1)


def _resum(session: Session, project_id: int, first: dt.date, last: dt.date, dims: list[str],
           suffix: str) -> None:
    """Replace the "<dim><suffix>" rows dated ``first`` by the sums of the ``dims`` rows
    dated ``first`` .. ``last`` (in SQL)."""
    d = ReportDaily
    session.execute(delete(d).where(d.project_id == project_id, d.day == first,
                                    d.dim.in_([x.replace(MONTH_SUFFIX, "") + suffix for x in dims])))
    sums = [func.sum(getattr(d, m)) for m in _METRICS]
    sel = (select(d.project_id, func.replace(d.dim, MONTH_SUFFIX, "") + literal(suffix),
                  literal(first, Date), d.key, *sums)
           .where(d.project_id == project_id, d.dim.in_(dims), d.day >= first, d.day <= last)
           .group_by(d.project_id, d.dim, d.key))
    session.execute(insert(d).from_select(["project_id", "dim", "day", "key", *_METRICS], sel))


def recompute_month(session: Session, project_id: int, month: dt.date) -> None:
    """Rebuild the "<dim>@m" rows of one month by summing its daily rows, then the
    "<dim>@y" rows of its year by summing the year's "@m" rows (in SQL)."""
    _resum(session, project_id, month_start(month), month_end(month), list(MONTH_DIMS), MONTH_SUFFIX)
    y0 = year_start(month)
    _resum(session, project_id, y0, y0.replace(month=12, day=31), [x + MONTH_SUFFIX for x in MONTH_DIMS],
           YEAR_SUFFIX)


def recompute_day(session: Session, project: Project, day: dt.date, months: bool = True) -> None:
    """Recompute one local day; with ``months``, apply the change to the month's
    ``@m`` rows as a delta (old day rows out, new ones in), in the same transaction."""
    d = ReportDaily
    daily_rows, hourly_rows = compute_day(session, project, day)
    old: dict[tuple[str, str], list] = {}
    if months:
        for r in session.execute(select(d.dim, d.key, *[getattr(d, m) for m in _METRICS]).where(
                d.project_id == project.id, d.day == day, d.dim.in_(MONTH_DIMS))):
            old[(r[0], r[1])] = list(r[2:])
    session.execute(delete(d).where(d.project_id == project.id, d.day == day, d.dim.in_(DIMS)))
    session.execute(delete(ReportHourly).where(ReportHourly.project_id == project.id, ReportHourly.day == day))
    if daily_rows:
        session.execute(insert(d), daily_rows)
    if hourly_rows:
        session.execute(insert(ReportHourly), hourly_rows)
    if months:
        _apply_month_delta(session, project.id, month_start(day), old, daily_rows)


def _apply_month_delta(session: Session, project_id: int, m0: dt.date, old: dict, new_rows: list) -> None:
    delta: dict[tuple[str, str], list] = {}
    for row in new_rows:
        if row["dim"] in MONTH_DIMS:
            delta[(row["dim"], row["key"])] = [row[m] for m in _METRICS]
    for k, vals in old.items():
        cur = delta.setdefault(k, [0] * len(_METRICS))
        delta[k] = [a - (float(b) if isinstance(b, Decimal) else (b or 0)) for a, b in zip(cur, vals)]
    rows = [dict(project_id=project_id, dim=dim + suffix, day=first, key=key,
                 **{m: v for m, v in zip(_METRICS, vals)})
            for (dim, key), vals in delta.items() if any(vals)
            for suffix, first in ((MONTH_SUFFIX, m0), (YEAR_SUFFIX, year_start(m0)))]
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dinsert
    else:
        from sqlalchemy.dialects.sqlite import insert as dinsert
    stmt = dinsert(ReportDaily)
    t = ReportDaily.__table__.c
    session.execute(stmt.on_conflict_do_update(
        index_elements=["project_id", "dim", "day", "key"],
        set_={m: t[m] + stmt.excluded[m] for m in _METRICS}), rows)


def _lock_state(session: Session, now: dt.datetime) -> Optional[ReportRollupState]:
    """Take the refresh lock (a row update: a row lock on PostgreSQL, the write
    lock on SQLite) so concurrent refreshers run one after the other."""
    res = session.execute(update(ReportRollupState).where(ReportRollupState.id == _STATE_ID)
                          .values(refreshed_at=now))
    if res.rowcount == 0:
        session.add(ReportRollupState(id=_STATE_ID, watermark=None, refreshed_at=now))
        session.flush()
    return session.get(ReportRollupState, _STATE_ID, populate_existing=True)


def rebuild_rollups(session: Session, project_id: Optional[int] = None,
                    date_from: Optional[dt.date] = None, date_to: Optional[dt.date] = None,
                    progress=None) -> int:
    """Recompute every day of one or all projects (or a date range); returns days done.
    Does not commit itself; ``progress(project, day)`` is called after each day (the
    full refresh commits there every month, so writers are never blocked for long)."""
    projects = session.scalars(select(Project).where(Project.id == project_id) if project_id
                               else select(Project)).all()
    done = 0
    for p in projects:
        tz = zone(p)
        if date_from is None or date_to is None:
            lo, hi = session.execute(select(func.min(Call.started_at), func.max(Call.ended_at))
                                     .where(Call.project_id == p.id)).one()
            if lo is None:
                session.execute(delete(ReportDaily).where(ReportDaily.project_id == p.id))
                session.execute(delete(ReportHourly).where(ReportHourly.project_id == p.id))
                continue
            d0 = date_from or lo.astimezone(tz).date()
            d1 = date_to or max(hi or lo, lo).astimezone(tz).date()
            r = ReportDaily         # the first year's "@y" rows stay until that year is re-summed
            session.execute(delete(r).where(r.project_id == p.id, (r.day > d1) | (r.day < year_start(d0)) | (
                (r.day < d0) & ~r.dim.like("%" + YEAR_SUFFIX))))
            session.execute(delete(ReportHourly).where(ReportHourly.project_id == p.id,
                                                       (ReportHourly.day < d0) | (ReportHourly.day > d1)))
        else:
            d0, d1 = date_from, date_to
        d = d0
        while d <= d1:
            recompute_day(session, p, d, months=False)
            done += 1
            if progress:
                progress(p, d)
            if d == d1 or d == month_end(d):
                recompute_month(session, p.id, d)
            d += dt.timedelta(days=1)
    return done


FULL_BUILD_LIMIT = 50_000      # calls: above this, only the scheduler/CLI build from scratch


def _since(watermark: dt.datetime, previous: Optional[dt.datetime], now: dt.datetime) -> dt.datetime:
    """Where the next refresh starts reading ``updated_at``. A row is assumed committed
    within WATERMARK_MARGIN of its ``updated_at``, so the previous refresh (which took the
    lock at ``previous``) saw every row older than ``previous - margin``: re-reading only
    ``watermark - margin`` would recompute the same days on every refresh while no newer
    row arrives (all calls written within seconds, as the demo does)."""
    since = watermark - WATERMARK_MARGIN
    if previous is not None and previous <= now:
        since = max(since, previous - WATERMARK_MARGIN)
    return since


def _years_missing(session: Session) -> bool:
    """Monthly rows without yearly rows: rollups built before the "@y" rows existed (a
    from-scratch build adds them). Two primary-key seeks per project."""
    d = ReportDaily
    def seek(pid, dim):
        return session.execute(select(d.day).where(d.project_id == pid, d.dim == dim).limit(1)).first()
    return any(seek(pid, "source" + MONTH_SUFFIX) is not None and seek(pid, "source" + YEAR_SUFFIX) is None
               for pid in session.scalars(select(Project.id)).all())


def refresh_rollups(session: Session, full: bool = False, now: Optional[dt.datetime] = None,
                    allow_full: bool = True) -> int:
    """Bring the rollups up to date with ``calls``; returns the number of days
    recomputed (-1: a build from scratch is needed and ``allow_full`` is False on a
    database of more than FULL_BUILD_LIMIT calls). Commits. Safe to call often
    and from several processes (each transaction holds the state-row lock)."""
    now = now or utcnow()
    try:
        previous = session.scalar(select(ReportRollupState.refreshed_at)
                                  .where(ReportRollupState.id == _STATE_ID))
        state = _lock_state(session, now)
        if full or state.watermark is None or _years_missing(session):
            if not allow_full and session.execute(
                    select(Call.id).limit(1).offset(FULL_BUILD_LIMIT)).first() is not None:
                session.rollback()
                return -1
            mark = session.scalar(select(func.max(Call.updated_at)))

            def chunk(_project, day):
                if day == month_end(day):       # commit month by month; re-take the lock
                    session.commit()
                    _lock_state(session, now)

            done = rebuild_rollups(session, progress=chunk)
            state = _lock_state(session, now)
            if state.watermark is None or full:
                state.watermark = mark or now
            session.commit()
            return done
        since = _since(state.watermark, previous, now)
        rows = session.execute(select(Call.project_id, Call.started_at, Call.ended_at, Call.updated_at)
                               .where(Call.updated_at > since, Call.project_id.is_not(None))).all()
        if not rows:
            session.commit()
            return 0
        projects = {p.id: p for p in session.scalars(
            select(Project).where(Project.id.in_({r.project_id for r in rows})))}
        dirty: set[tuple[int, dt.date]] = set()
        newest = state.watermark
        for r in rows:
            tz = zone(projects[r.project_id])
            for t in (r.started_at, r.ended_at):
                if t is not None:
                    dirty.add((r.project_id, t.astimezone(tz).date()))
            if r.updated_at > newest:
                newest = r.updated_at
        for pid, day in sorted(dirty):
            recompute_day(session, projects[pid], day)
        state.watermark = newest
        session.commit()
        return len(dirty)
    except BaseException:
        session.rollback()
        raise


def rollup_lag(session: Session, now: Optional[dt.datetime] = None) -> Optional[float]:
    """Seconds since the last refresh (None before the first): for `doctor` and the UI."""
    st = session.get(ReportRollupState, _STATE_ID)
    if st is None or st.refreshed_at is None:
        return None
    return ((now or utcnow()) - st.refreshed_at).total_seconds()
