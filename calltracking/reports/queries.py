"""Report queries: pure functions over the rollup tables (and ``calls`` for the
live dashboard and drill-downs).

Every report takes a session and a :class:`ReportFilter` (project, first and
last local day, both inclusive, in the project's time zone) and returns a
:class:`Report`: column names, rows (lists of plain values) and the chart
series. The web UI, the CSV export and the benchmark all use these functions.
See :mod:`calltracking.reports.rollup` for how the rollups are kept current.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Callable, Optional

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from calltracking.models import (
    AdSpend, Call, Campaign, Operator, Project, ReportDaily, ReportHourly, Source, VisitorSession,
)
from calltracking.reports import adspend
from calltracking.reports import callbacks as callback_report
from calltracking.reports.figures import cap_dominant
from calltracking.reports.ranges import rollup_range, split_range  # noqa: F401  (part of this API)
from calltracking.reports.ranges import rollup_rows as _rollup_rows
from calltracking.reports.rollup import TTC_LABELS, day_bounds, zone

MAX_RANGE_DAYS = 3660
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class ReportError(ValueError):
    """Bad report parameters (message is shown to the user)."""


@dataclass(frozen=True)
class ReportFilter:
    project: Project
    date_from: dt.date
    date_to: dt.date
    projects: tuple = ()        # several projects summed ("all projects"); empty: ``project`` only

    def __post_init__(self):
        if self.date_from > self.date_to:
            raise ReportError(f"date range is reversed: {self.date_from} > {self.date_to}")
        if (self.date_to - self.date_from).days > MAX_RANGE_DAYS:
            raise ReportError(f"date range longer than {MAX_RANGE_DAYS} days")

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(p.id for p in self.projects) or (self.project.id,)

    def utc_range_of(self, project: Project) -> tuple[dt.datetime, dt.datetime]:
        tz = zone(project)
        return day_bounds(tz, self.date_from)[0], day_bounds(tz, self.date_to)[1]

    @property
    def utc_range(self) -> tuple[dt.datetime, dt.datetime]:
        """UTC bounds of the local days (several projects: from the earliest start to the latest end)."""
        ranges = [self.utc_range_of(p) for p in (self.projects or (self.project,))]
        return min(r[0] for r in ranges), max(r[1] for r in ranges)


@dataclass
class Report:
    name: str
    columns: list[str]
    rows: list[list]
    chart: dict = field(default_factory=dict)   # {"type", "labels", "datasets": [{label, data}]}

    def as_dicts(self) -> list[dict]:
        return [dict(zip(self.columns, r)) for r in self.rows]


def parse_date(value: Optional[str], default: dt.date) -> dt.date:
    if not value:
        return default
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ReportError(f"invalid date {value!r}: use YYYY-MM-DD") from None


def today_in(project: Project, now: Optional[dt.datetime] = None) -> dt.date:
    return (now or dt.datetime.now(dt.timezone.utc)).astimezone(zone(project)).date()


def _avg(total, n) -> Optional[float]:
    return round(float(total) / n, 1) if n else None


def _money(v) -> Optional[float]:
    return None if v is None else float(Decimal(v).quantize(Decimal("0.01")))


_SUM_COLS = ("calls", "answered", "missed", "first_calls", "repeat_calls", "wait_sum", "talk_sum",
             "deals", "value_sum", "missed_rung", "targets")


def _sums(f: ReportFilter, dim: str, session: Optional[Session] = None):
    d = ReportDaily
    sub = _rollup_rows(f, [dim], [d.key] + [getattr(d, c) for c in _SUM_COLS], session)
    return (select(sub.c.key, *[func.sum(sub.c[c]) for c in _SUM_COLS]).group_by(sub.c.key)
            .having(func.sum(sub.c.calls) + func.sum(sub.c.missed_rung) > 0))


def _names(session: Session, model, ids, label=lambda o: o.name) -> dict[str, str]:
    ids = [int(k) for k in ids if k and k.isdigit()]
    if not ids:
        return {}
    return {str(o.id): label(o) for o in session.scalars(select(model).where(model.id.in_(ids)))}


def _spend(session: Session, f: ReportFilter, by: str) -> dict[str, Decimal]:
    if by == "source":          # a source's own row, else its campaigns' rows: never both
        return {str(k): v for k, v in adspend.source_spend(session, f.ids, f.date_from, f.date_to).items()}
    col = AdSpend.campaign_id
    q = (select(col, func.sum(AdSpend.amount))
         .where(AdSpend.project_id.in_(f.ids), AdSpend.day >= f.date_from, AdSpend.day <= f.date_to,
                col.is_not(None))
         .group_by(col))
    return {str(k): v for k, v in session.execute(q)}


ATTR_COLUMNS = ["key", "name", "calls", "answered", "missed", "first", "repeat", "avg_wait",
                "avg_talk", "deals", "value", "spend", "cost_per_call", "cost_per_deal", "targets",
                "cost_per_target"]


def by_attribute(session: Session, f: ReportFilter, dim: str) -> Report:
    """Calls by source, campaign or keyword, with ad spend, cost per call and cost per deal, target
    calls (``calls.is_target``) and cost per target call."""
    if dim not in ("source", "campaign", "keyword"):
        raise ReportError(f"unknown dimension {dim!r}")
    raw = session.execute(_sums(f, dim, session)).all()
    keys = [r[0] for r in raw]
    if dim == "source":
        names = _names(session, Source, keys)
    elif dim == "campaign":
        ids = [int(k) for k in keys if k.isdigit()]
        names = {str(i): f"{sn} / {cn}" for i, cn, sn in session.execute(
            select(Campaign.id, Campaign.name, Source.name).join(Source, Source.id == Campaign.source_id)
            .where(Campaign.id.in_(ids)))} if ids else {}
    else:
        names = {k: k for k in keys}
    spend = _spend(session, f, dim) if dim != "keyword" else {}
    rows = []
    for key, calls, ans, mis, first, rep, wsum, tsum, deals, vsum, _, targets in raw:
        sp = spend.get(key)
        rows.append([key, names.get(key) or "", calls, ans, mis, first, rep, _avg(wsum, calls),
                     _avg(tsum, ans), deals, _money(vsum), _money(sp),
                     _money(sp / calls) if sp is not None and calls else None,
                     _money(sp / deals) if sp is not None and deals else None, targets,
                     _money(sp / targets) if sp is not None and targets else None])
    rows.sort(key=lambda r: (-r[2], r[1]))
    top = rows[:20]
    chart = {"type": "bar", "labels": [r[1] for r in top],
             "datasets": [{"label": "answered", "data": [r[3] for r in top]},
                          {"label": "missed", "data": [r[4] for r in top]}], "stacked": True}
    chart.update(cap_dominant([r[2] for r in top]))
    return Report(dim, ATTR_COLUMNS, rows, chart)



def daily_trend(session: Session, f: ReportFilter, today: Optional[dt.date] = None) -> Report:
    """One row per local day. Today is counted so far (chart: ``partial`` = its index,
    drawn dashed); days after today have no figures (None), not zeros."""
    today = today or today_in(f.project)
    d = ReportDaily
    q = (select(d.day, d.calls, d.answered, d.missed, d.first_calls, d.wait_sum, d.talk_sum)
         .where(d.project_id.in_(f.ids), d.dim == "all", d.day >= f.date_from, d.day <= f.date_to))
    got = {r[0]: r for r in session.execute(q)}
    rows, day = [], f.date_from
    while day <= f.date_to:
        r = got.get(day)
        zeros = (None,) * 4 if day > today else (0, 0, 0, 0)
        rows.append([day.isoformat(), *(r[1:5] if r else zeros),
                     _avg(r[5], r[1]) if r else None, _avg(r[6], r[2]) if r else None])
        day += dt.timedelta(days=1)
    chart = {"type": "line", "labels": [r[0] for r in rows],
             "datasets": [{"label": "calls", "data": [r[1] for r in rows]},
                          {"label": "answered", "data": [r[2] for r in rows]},
                          {"label": "missed", "data": [r[3] for r in rows]}]}
    if f.date_from <= today <= f.date_to:
        chart["partial"] = (today - f.date_from).days
    return Report("daily", ["day", "calls", "answered", "missed", "first", "avg_wait", "avg_talk"],
                  rows, chart)


def heatmap(session: Session, f: ReportFilter, metric: str = "calls") -> Report:
    """Calls (``metric="calls"``) or missed calls (``"missed"``) by local weekday × local hour
    (the project's time zone)."""
    h = ReportHourly
    q = (select(h.weekday, h.hour, func.sum(h.calls), func.sum(h.missed))
         .where(h.project_id.in_(f.ids), h.day >= f.date_from, h.day <= f.date_to)
         .group_by(h.weekday, h.hour))
    at = 1 if metric == "missed" else 0
    cells = {(wd, hr): (c, m)[at] for wd, hr, c, m in session.execute(q)}
    rows = [[WEEKDAYS[wd - 1], *[cells.get((wd, hr), 0) for hr in range(24)]] for wd in range(1, 8)]
    data = [{"x": hr, "y": WEEKDAYS[wd - 1], "v": cells.get((wd, hr), 0)}
            for wd in range(1, 8) for hr in range(24)]
    chart = {"type": "matrix", "labels": [str(h) for h in range(24)], "ylabels": list(WEEKDAYS),
             "datasets": [{"label": metric, "data": data}]}
    return Report("heatmap" if at == 0 else "missed_heatmap",
                  ["weekday", *[f"{hr:02d}" for hr in range(24)]], rows, chart)


def operators(session: Session, f: ReportFilter) -> Report:
    """Per operator: calls offered, taken and missed while rung, answer rate, avg talk, avg wait
    of the callers they answered, deals and deal value (the call card's value, on the calls
    they answered).

    *Offered* = the rings that reached the operator: every call they answered plus every
    unanswered leg to them (``call_legs`` ``no_answer``; a call that rang them twice without
    an answer counts twice). Answer rate = taken / offered, in %."""
    raw = session.execute(_sums(f, "operator", session)).all()
    names = _names(session, Operator, [r[0] for r in raw])
    rows = []
    for key, calls, ans, mis, first, rep, wsum, tsum, deals, vsum, rung, _targets in raw:
        offered = ans + rung
        rows.append([key, names.get(key) or "", offered, ans, rung,
                     round(100.0 * ans / offered, 1) if offered else None,
                     _avg(tsum, ans), _avg(wsum, ans), deals, _money(vsum)])
    rows.sort(key=lambda r: (-r[3], -r[4], r[1]))
    chart = {"type": "bar", "labels": [r[1] or "?" for r in rows[:30]],
             "datasets": [{"label": "taken", "data": [r[3] for r in rows[:30]]},
                          {"label": "missed_rung", "data": [r[4] for r in rows[:30]]}]}
    return Report("operators", ["key", "name", "offered", "taken", "missed_rung", "answer_rate",
                                "avg_talk", "avg_wait", "deals", "value"], rows, chart)


def time_to_call(session: Session, f: ReportFilter) -> Report:
    got = {r[0]: r for r in session.execute(_sums(f, "ttc", session))}
    rows = [[lbl, got[lbl][1] if lbl in got else 0, got[lbl][2] if lbl in got else 0]
            for lbl in TTC_LABELS]
    chart = {"type": "bar", "labels": list(TTC_LABELS),
             "datasets": [{"label": "calls", "data": [r[1] for r in rows]}]}
    return Report("time_to_call", ["bucket", "calls", "answered"], rows, chart)


def devices(session: Session, f: ReportFilter) -> Report:
    """Devices, operating systems and browsers of dynamically attributed calls."""
    d = ReportDaily
    sub = _rollup_rows(f, ["device", "os", "browser"], [d.key, d.calls, d.answered], session)
    q = (select(sub.c.dim, sub.c.key, func.sum(sub.c.calls), func.sum(sub.c.answered))
         .group_by(sub.c.dim, sub.c.key).having(func.sum(sub.c.calls) > 0))
    rows = sorted(([dim, key, c, a] for dim, key, c, a in session.execute(q)),
                  key=lambda r: (("device", "os", "browser").index(r[0]), -r[2], r[1]))
    dev = [r for r in rows if r[0] == "device"]
    chart = {"type": "doughnut", "labels": [r[1] or "?" for r in dev],
             "datasets": [{"label": "calls", "data": [r[2] for r in dev]}]}
    return Report("devices", ["kind", "name", "calls", "answered"], rows, chart)


def peak_concurrency(session: Session, f: ReportFilter) -> Report:
    """Peak concurrent calls by local hour of day: the highest and the average
    of the daily peaks (are there enough lines?)."""
    h = ReportHourly
    q = (select(h.hour, func.max(h.peak_concurrent), func.sum(h.peak_concurrent), func.count())
         .where(h.project_id.in_(f.ids), h.day >= f.date_from, h.day <= f.date_to)
         .group_by(h.hour))
    got = {hr: (mx, sm) for hr, mx, sm, _ in session.execute(q)}
    days = (f.date_to - f.date_from).days + 1
    rows = [[f"{hr:02d}:00", got.get(hr, (0, 0))[0] or 0,
             round(float(got.get(hr, (0, 0))[1] or 0) / days, 2)] for hr in range(24)]
    chart = {"type": "bar", "labels": [r[0] for r in rows],
             "datasets": [{"label": "peak", "data": [r[1] for r in rows]},
                          {"label": "avg_peak", "data": [r[2] for r in rows]}]}
    return Report("concurrency", ["hour", "peak", "avg_daily_peak"], rows, chart)


REPORTS: dict[str, tuple[str, Callable[[Session, ReportFilter], Report]]] = {
    "sources": ("By source", lambda s, f: by_attribute(s, f, "source")),
    "campaigns": ("By campaign", lambda s, f: by_attribute(s, f, "campaign")),
    "keywords": ("By keyword", lambda s, f: by_attribute(s, f, "keyword")),
    "daily": ("Daily trend", daily_trend),
    "heatmap": ("Hour × weekday", heatmap),
    "missed_heatmap": ("Missed calls: hour × weekday", lambda s, f: heatmap(s, f, "missed")),
    "first_repeat": ("First and repeat calls", lambda s, f: first_repeat(s, f)),
    "operators": ("Operators", operators),
    "time_to_call": ("Time to call", time_to_call),
    "devices": ("Devices, OS, browsers", devices),
    "concurrency": ("Peak concurrent calls", peak_concurrency),
    "callbacks": ("Callback requests", lambda s, f: Report("callbacks", *callback_report.by_source(s, f))),
}


def first_repeat(session: Session, f: ReportFilter) -> Report:
    """First calls (``calls.first_call``: the caller's first call to the project) and repeat
    calls per source (the table) and per day (the chart); calls whose first-call flag is
    unknown count in neither."""
    raw = session.execute(_sums(f, "source", session)).all()
    names = _names(session, Source, [r[0] for r in raw])
    rows = [[key, names.get(key) or "", calls, first, rep,
             round(100.0 * first / (first + rep), 1) if first + rep else None]
            for key, calls, _a, _m, first, rep, *_ in raw]
    rows.sort(key=lambda r: (-r[2], r[1]))
    d = ReportDaily
    got = dict((day, (fc, rc)) for day, fc, rc in session.execute(
        select(d.day, func.sum(d.first_calls), func.sum(d.repeat_calls)).where(
            d.project_id.in_(f.ids), d.dim == "all", d.day >= f.date_from, d.day <= f.date_to)
        .group_by(d.day)))
    days = [f.date_from + dt.timedelta(days=i) for i in range((f.date_to - f.date_from).days + 1)]
    chart = {"type": "bar", "stacked": True, "labels": [x.isoformat() for x in days],
             "datasets": [{"label": "first", "data": [got.get(x, (0, 0))[0] for x in days]},
                          {"label": "repeat", "data": [got.get(x, (0, 0))[1] for x in days]}]}
    return Report("first_repeat", ["key", "name", "calls", "first", "repeat", "first_share"], rows, chart)


def run_report(session: Session, name: str, f: ReportFilter) -> Report:
    if name not in REPORTS:
        raise ReportError(f"unknown report {name!r}")
    return REPORTS[name][1](session, f)


# --- drill-down and live data (straight from ``calls``) ---------------------------

DRILL_DIMS = ("source", "campaign", "operator", "keyword")
DRILL_COLUMNS = ["id", "started_at", "caller_number", "status", "wait_seconds", "talk_seconds",
                 "operator_name", "value"]


def drilldown(session: Session, f: ReportFilter, dim: str, key: str, limit: int = 50,
              before: Optional[tuple[dt.datetime, int]] = None) -> list[Call]:
    """The calls behind one report row, newest first, one keyset page
    (``before`` = (started_at, id) of the last row of the previous page)."""
    if dim not in DRILL_DIMS:
        raise ReportError(f"unknown drill-down {dim!r}")
    q = select(Call).where(or_(*[and_(Call.project_id == p.id, Call.started_at >= f.utc_range_of(p)[0],
                                      Call.started_at < f.utc_range_of(p)[1])
                                 for p in (f.projects or (f.project,))]),
                           Call.status.in_(("answered", "missed")))
    ident = int(key) if key.isdigit() else None
    if dim == "keyword":
        # the rollup's key: the keyword, else the utm_term, trimmed; "" = none (or no visit)
        kw = func.substr(func.coalesce(func.nullif(func.trim(VisitorSession.keyword), ""),
                                       func.trim(VisitorSession.utm_term), ""), 1, 200)
        q = q.outerjoin(VisitorSession, VisitorSession.id == Call.session_id)
        q = q.where(or_(Call.session_id.is_(None), kw == "") if key == "" else kw == key)
    else:
        col = {"source": Call.source_id, "campaign": Call.campaign_id, "operator": Call.operator_id}[dim]
        q = q.where(col == ident if ident is not None else col.is_(None))
    if before is not None:
        q = q.where(or_(Call.started_at < before[0], and_(Call.started_at == before[0], Call.id < before[1])))
    return list(session.scalars(q.order_by(Call.started_at.desc(), Call.id.desc()).limit(limit)))


def drill_label(session: Session, dim: str, key: str) -> str:
    """What a drill-down is about, by name: the source, "source / campaign", the
    operator, the keyword ("" when not set or unknown)."""
    if dim == "keyword" or not key.isdigit():
        return key if dim == "keyword" else ""
    if dim == "campaign":
        row = session.execute(select(Campaign.name, Source.name).join(Source, Source.id == Campaign.source_id)
                              .where(Campaign.id == int(key))).first()
        return f"{row[1]} / {row[0]}" if row else key
    model = {"source": Source, "operator": Operator}[dim]
    return _names(session, model, [key]).get(key, key)


def live_snapshot(session: Session, project: Project, now: Optional[dt.datetime] = None,
                  max_in_progress: int = 100) -> dict:
    """Calls in progress and today's counters (local day) for the dashboard."""
    now = now or dt.datetime.now(dt.timezone.utc)
    start, end = day_bounds(zone(project), today_in(project, now))
    tz = zone(project)
    c = Call
    cnt = session.execute(
        select(func.count(), func.sum(case((c.status == "answered", 1), else_=0)),
               func.sum(case((c.status == "missed", 1), else_=0)),
               func.sum(case((c.status == "in_progress", 1), else_=0)),
               func.avg(case((c.status != "in_progress", c.wait_seconds), else_=None)),
               func.sum(case((c.first_call.is_(True), 1), else_=0)))
        .where(c.project_id == project.id, c.started_at >= start, c.started_at < end)).one()
    live = session.execute(
        select(c.id, c.started_at, c.answered_at, c.caller_number, c.caller_name, c.operator_name,
               Source.name)
        .outerjoin(Source, Source.id == c.source_id)
        .where(c.project_id == project.id, c.status == "in_progress",
               c.started_at >= now - dt.timedelta(hours=12))
        .order_by(c.started_at).limit(max_in_progress)).all()
    return {
        "project": project.key,
        "now": now.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
        "today": {"calls": cnt[0] or 0, "answered": int(cnt[1] or 0), "missed": int(cnt[2] or 0),
                  "in_progress": int(cnt[3] or 0), "first": int(cnt[5] or 0),
                  "avg_wait": _avg(cnt[4], 1) if cnt[4] is not None else None},
        "in_progress": [
            {"id": r.id, "started": r.started_at.astimezone(tz).strftime("%H:%M:%S"),
             "seconds": int((now - r.started_at).total_seconds()),
             "state": "talking" if r.answered_at else "waiting",
             "caller": r.caller_number, "caller_name": r.caller_name,
             "operator": r.operator_name, "source": r.name or ""}
            for r in live],
    }
