"""The demo shows website callbacks: settings on, reached requests with their callback calls,
unreached ones in the worklist, and the callbacks report per source."""
import datetime as dt

import pytest
from sqlalchemy import select

from calltracking.callbacks import settings, worklist
from calltracking.demo import seed
from calltracking.models import Call, CallbackRequest, Project
from calltracking.reports import queries

pytestmark = pytest.mark.db
NOW = dt.datetime(2026, 3, 4, 12, 0, tzinfo=dt.timezone.utc)


def test_demo_has_callback_requests(session_factory):
    with session_factory() as s:
        stats = seed(s, days=10, per_day=20, now=NOW)
        s.commit()
    cb = stats["callbacks"]
    assert cb["reached"] >= 5 and cb["unreached"] >= 2 and cb["pending"] == 1
    with session_factory() as s:
        p = s.scalars(select(Project)).one()
        assert settings.get(s, p.id).enabled
        reached = s.scalars(select(CallbackRequest).where(CallbackRequest.status == "reached")).all()
        calls = {c.id: c for c in s.scalars(select(Call).where(Call.attribution == "callback"))}
        assert sorted(calls) == sorted(r.call_id for r in reached)
        assert all(calls[r.call_id].caller_number == r.phone and calls[r.call_id].source_id == r.source_id
                   for r in reached)
        assert len(worklist.unreached(s, project_id=p.id)) == cb["unreached"] - 1     # one handled
        rep = queries.run_report(s, "callbacks", queries.ReportFilter(p, dt.date(2026, 2, 1), dt.date(2026, 3, 4)))
        col = rep.columns.index
        assert sum(r[col("requests")] for r in rep.rows) == cb["reached"] + cb["unreached"] + 1
        assert sum(r[col("reached")] for r in rep.rows) == cb["reached"]
        assert all(r[col("median_to_connected")] > 0 for r in rep.rows if r[col("reached")])
