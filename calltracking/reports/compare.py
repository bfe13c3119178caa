"""The previous period of a report page, for "compare with the previous period": the
same filter over the period just before (:func:`figures.previous_period`) and its totals row."""
from __future__ import annotations

from typing import Optional

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from calltracking.models import ReportDaily
from calltracking.reports import figures
from calltracking.reports.queries import ATTR_COLUMNS, Report, ReportFilter, _avg, _money, run_report


def previous_filter(f: ReportFilter) -> ReportFilter:
    a, b = figures.previous_period(f.date_from, f.date_to)
    return ReportFilter(f.project, a, b, f.projects)


def _all_calls(session: Session, f: ReportFilter) -> Report:
    """The keyword report's totals without its thousands of keyword rows: every finished call
    has exactly one keyword key ("" when none), so the "all" rollup rows sum to the same."""
    d = ReportDaily
    calls, ans, mis, first, rep, wsum, tsum, deals, vsum, targets = session.execute(
        select(*[func.coalesce(func.sum(getattr(d, c)), 0) for c in (
            "calls", "answered", "missed", "first_calls", "repeat_calls", "wait_sum", "talk_sum",
            "deals", "value_sum", "targets")])
        .where(d.project_id.in_(f.ids), d.dim == "all", d.day >= f.date_from, d.day <= f.date_to)).one()
    rows = [["", "", calls, ans, mis, first, rep, _avg(wsum, calls), _avg(tsum, ans), deals, _money(vsum),
             None, None, None, targets, None]] if calls else []
    return Report("keyword", ATTR_COLUMNS, rows)


def previous_totals(session: Session, name: str, f: ReportFilter) -> tuple[ReportFilter, Optional[list]]:
    """(the previous period's filter, its totals row; None for reports without totals)."""
    prev = previous_filter(f)
    if name in figures.NO_TOTALS:
        return prev, None
    rep = _all_calls(session, prev) if name == "keywords" else run_report(session, name, prev)
    return prev, figures.totals(name, rep.columns, rep.rows)
