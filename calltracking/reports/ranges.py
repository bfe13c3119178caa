"""Which rollup rows cover a report's date range.

``report_daily`` holds daily rows, "<dim>@m" rows per month (dated the 1st) and "<dim>@y"
rows per calendar year (dated 1 January), each the exact sum of the finer rows
(:mod:`calltracking.reports.rollup`). A range is read from the coarsest rows that cover it
exactly: whole years from yearly rows, whole months from monthly rows, the edges from daily
rows. A partial month or year is read from its coarser row when the project has no
rolled-up day of that month or year outside the range (the current month or year when the
range ends today, the first one of the data when it starts there), which is still exact.
A partial month that is mostly inside the range is read as its monthly rows minus the daily
rows of its days outside the range (30 days ending on the 4th: 26 days of November are one
monthly row set and 4 days subtracted, ~10,000 keyword rows instead of ~52,000).

The filter ``f`` is a :class:`calltracking.reports.queries.ReportFilter` (``ids``,
``date_from``, ``date_to``).
"""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import and_, func, not_, select, union_all
from sqlalchemy.orm import Session

from calltracking.models import ReportDaily
from calltracking.reports.rollup import MONTH_SUFFIX, YEAR_SUFFIX, month_end, month_start


def split_range(date_from: dt.date, date_to: dt.date):
    """(whole months as (first, last month start) or None, [daily (from, to) edges])."""
    m0 = date_from if date_from.day == 1 else month_end(date_from) + dt.timedelta(days=1)
    m1 = date_to if date_to == month_end(date_to) else month_start(date_to) - dt.timedelta(days=1)
    if m0 > m1:
        return None, [(date_from, date_to)]
    edges = [(a, b) for a, b in ((date_from, m0 - dt.timedelta(days=1)),
                                 (m1 + dt.timedelta(days=1), date_to)) if a <= b]
    return (m0, month_start(m1)), edges


def _has_day(session: Session, f, first: dt.date, last: dt.date, a: dt.date, b: dt.date) -> bool:
    """Whether the filter's projects have a rolled-up day in ``first .. last`` outside ``a .. b``."""
    d = ReportDaily
    return session.execute(select(d.day).where(
        d.project_id.in_(f.ids), d.dim == "all", d.day >= first, d.day <= last,
        not_(and_(d.day >= a, d.day <= b))).limit(1)).first() is not None


def rollup_range(session: Session, f):
    """:func:`split_range`, but a partial first or last month is read from its monthly rows
    when the project has no rolled-up day in that month outside the range. Exact, and far
    fewer rows (two years of keywords: ~50,000 rows instead of ~100,000)."""
    months, edges = split_range(f.date_from, f.date_to)
    if not edges:
        return months, edges
    kept, widened = [], []
    for a, b in edges:
        ms, me = month_start(a), month_end(a)
        if month_start(b) != ms or _has_day(session, f, ms, me, a, b):
            kept.append((a, b))
        else:
            widened.append(ms)
    if widened:
        starts = widened + ([months[0], months[1]] if months else [])
        months = (min(starts), max(starts))
    return months, kept


def split_years(session: Session, f, months: Optional[tuple[dt.date, dt.date]]):
    """The whole months ``months`` (first, last month start) as ([1 January of each year read
    from its yearly rows], [(first, last month start) read from monthly rows]). Two years of
    keywords: ~6,000 rows instead of ~50,000. Without any yearly row yet (rollups built by an
    older version, until the scheduler rebuilds them), every month from monthly rows."""
    if months is None:
        return [], []
    d = ReportDaily
    if session.execute(select(d.day).where(d.project_id.in_(f.ids), d.dim == "source" + YEAR_SUFFIX)
                       .limit(1)).first() is None:
        return [], [months]         # rollups built before the yearly rows, until rebuilt
    years, rest = [], []
    for y in range(months[0].year, months[1].year + 1):
        jan, dec = dt.date(y, 1, 1), dt.date(y, 12, 1)
        a, b = max(months[0], jan), min(months[1], dec)
        if (a, b) == (jan, dec) or not _has_day(session, f, jan, dt.date(y, 12, 31), a, month_end(b)):
            years.append(jan)
        else:
            rest.append((a, b))
    return years, rest


def _by_month(a: dt.date, b: dt.date):
    """``a .. b`` cut at month boundaries."""
    while a <= b:
        yield a, min(b, month_end(a))
        a = month_end(a) + dt.timedelta(days=1)


def rollup_rows(f, dims, cols, session: Optional[Session] = None):
    """The report_daily rows covering the filter's range for ``dims``, as a subquery with a
    ``dim`` column (suffix removed) and ``cols``: yearly, monthly and daily rows as the
    module says; without a session, only the exact split (:func:`split_range`)."""
    d = ReportDaily
    if session is not None:
        months, edges = rollup_range(session, f)
        years, month_parts = split_years(session, f, months)
    else:
        months, edges = split_range(f.date_from, f.date_to)
        years, month_parts = [], [months] if months else []
    parts, minus = [], []
    for a, b in (piece for edge in edges for piece in _by_month(*edge)):
        ms, me = month_start(a), month_end(a)
        outside = [(x, y) for x, y in ((ms, a - dt.timedelta(days=1)), (b + dt.timedelta(days=1), me)) if x <= y]
        if session is None or sum((y - x).days + 1 for x, y in outside) >= (b - a).days:
            parts.append(select(d.dim.label("dim"), *cols).where(
                d.project_id.in_(f.ids), d.dim.in_(dims), d.day >= a, d.day <= b))
            continue
        month_parts.append((ms, ms))
        negated = [c if c.key == "key" else (-c).label(c.key) for c in cols]
        for x, y in outside:
            minus.append(select(d.dim.label("dim"), *negated).where(
                d.project_id.in_(f.ids), d.dim.in_(dims), d.day >= x, d.day <= y))
    for a, b in month_parts:
        parts.append(select(func.replace(d.dim, MONTH_SUFFIX, "").label("dim"), *cols).where(
            d.project_id.in_(f.ids), d.dim.in_([x + MONTH_SUFFIX for x in dims]), d.day >= a, d.day <= b))
    if years:
        parts.append(select(func.replace(d.dim, YEAR_SUFFIX, "").label("dim"), *cols).where(
            d.project_id.in_(f.ids), d.dim.in_([x + YEAR_SUFFIX for x in dims]), d.day.in_(years)))
    parts += minus          # after a positive part: the union's column names come from the first
    return (parts[0] if len(parts) == 1 else union_all(*parts)).subquery()

