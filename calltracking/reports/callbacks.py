"""The callback requests report: per source, the website callback requests of the period
(requested within the filter's local days), the calls the PBX made for them, how many reached
the visitor and the median time from the request to the connected call (the visitor answered).

``calls_made`` counts the attempts Asterisk accepted (every attempt but ``failed``: an
Originate the PBX refused or never received). Read straight from ``callback_requests`` and
``callback_attempts`` (no rollup: a project has a few requests a day, not thousands of calls).
"""
from __future__ import annotations

import statistics
from typing import Optional

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from calltracking.enums import CallbackResult, CallbackStatus
from calltracking.models import CallbackAttempt, CallbackRequest, Source

COLUMNS = ["key", "name", "requests", "calls_made", "reached", "reach_rate", "median_to_connected"]


def by_source(session: Session, f) -> tuple[list[str], list[list], dict]:
    """(columns, rows, chart) of the report for the :class:`~calltracking.reports.queries.ReportFilter`
    ``f``; rows by requests, most first; ``key`` is the source id (None: no source)."""
    start, end = f.utc_range
    r = CallbackRequest
    base = [r.project_id.in_(f.ids), r.requested_at >= start, r.requested_at < end]
    stats: dict[Optional[int], list] = {}
    for sid, status, requested, reached in session.execute(
            select(r.source_id, r.status, r.requested_at, r.reached_at).where(*base)):
        row = stats.setdefault(sid, [0, 0, 0, []])
        row[0] += 1
        if status == CallbackStatus.REACHED and reached is not None:
            row[2] += 1
            row[3].append(max((reached - requested).total_seconds(), 0.0))
    made = select(r.source_id, func.count(CallbackAttempt.id)).join(
        CallbackAttempt, CallbackAttempt.request_id == r.id).where(
        *base, func.coalesce(CallbackAttempt.result, "") != CallbackResult.FAILED).group_by(r.source_id)
    for sid, n in session.execute(made):
        stats[sid][1] = n
    names = dict(session.execute(select(Source.id, Source.name).where(
        Source.id.in_([k for k in stats if k is not None]))).all()) if stats else {}
    rows = [[sid, names.get(sid, "") if sid is not None else "", n, made_n, reached,
             round(100.0 * reached / n, 1) if n else None,
             round(statistics.median(waits), 1) if waits else None]
            for sid, (n, made_n, reached, waits) in stats.items()]
    rows.sort(key=lambda x: (-x[2], x[1]))
    chart = {"type": "bar", "labels": [x[1] for x in rows[:30]],
             "datasets": [{"label": "requests", "data": [x[2] for x in rows[:30]]},
                          {"label": "reached", "data": [x[4] for x in rows[:30]]}]}
    return list(COLUMNS), rows, chart
