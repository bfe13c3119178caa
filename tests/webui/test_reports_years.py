"""Yearly rollup rows ("<dim>@y"): kept equal to the sum of the monthly rows, read for whole
(or exactly widenable) years, and the same figures as the daily rows."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select

from calltracking.models import Call, ReportDaily
from calltracking.reports import queries, ranges
from calltracking.reports.rollup import recompute_month, refresh_rollups
from support import report_data as D


def _rows(session, suffix):
    return sorted((r.dim, r.day, r.key, r.calls, r.answered, round(float(r.wait_sum), 3), r.deals,
                   r.missed_rung)
                  for r in session.scalars(select(ReportDaily).where(ReportDaily.dim.like("%" + suffix)))
                  if r.calls or r.missed_rung)


def _year_sums_of_months(session):
    sums = {}
    for dim, day, key, *vals in _rows(session, "@m"):
        k = (dim.replace("@m", "@y"), dt.date(day.year, 1, 1), key)
        sums[k] = [a + b for a, b in zip(sums.get(k, [0] * len(vals)), vals)]
    return sorted((*k, *[round(v, 3) for v in vals]) for k, vals in sums.items() if vals[0] or vals[-1])


def _two_years(session):
    d = D.build(session)
    p, g, h = d["project"], d["google"], d["hostile"]
    D.add_call(session, p, "2025-02-10 15:00:00", wait=7, talk=40, source=g, value=500)
    D.add_call(session, p, "2025-12-31 15:00:00", status="missed", wait=12, source=h)
    D.add_call(session, p, "2024-11-20 15:00:00", wait=4, talk=20, source=h)
    session.commit()
    assert refresh_rollups(session) > 0
    return d


def test_year_rows_follow_incremental_changes(session):
    d = _two_years(session)
    assert _rows(session, "@y") and _rows(session, "@y") == _year_sums_of_months(session)
    c = session.scalars(select(Call).where(Call.status == "missed", Call.source_id == d["hostile"].id)).first()
    c.source_id = d["google"].id                          # re-attributed: delta applied to month and year
    D.add_call(session, d["project"], "2025-06-01 15:00:00", wait=3, talk=10, source=d["hostile"])
    session.commit()
    refresh_rollups(session)
    incremental = _rows(session, "@y")
    assert incremental == _year_sums_of_months(session)
    recompute_month(session, d["project"].id, dt.date(2025, 6, 1))   # from scratch: the same
    session.commit()
    assert _rows(session, "@y") == incremental
    refresh_rollups(session, full=True)                              # rebuilt: the same again
    assert _rows(session, "@y") == incremental
    google_2025 = [r for r in incremental if r[0] == "source@y" and r[1] == dt.date(2025, 1, 1)
                   and r[2] == str(d["google"].id)]
    assert google_2025[0][3] == 2


def test_whole_and_widened_years_read_year_rows_with_the_same_figures(session):
    d = _two_years(session)

    def flt(a, b):
        return queries.ReportFilter(d["project"], a, b)

    # 2024 has data only from November: a range from 1 Nov 2024 widens to the whole year
    f = flt(dt.date(2024, 11, 1), dt.date(2026, 12, 31))
    months, _ = queries.rollup_range(session, f)
    assert ranges.split_years(session, f, months) == (
        [dt.date(2024, 1, 1), dt.date(2025, 1, 1), dt.date(2026, 1, 1)], [])
    # 2025 has a call in February: a range from March reads 2025's months, not its year
    f = flt(dt.date(2025, 3, 1), dt.date(2025, 12, 31))
    assert ranges.split_years(session, f, ((dt.date(2025, 3, 1)), dt.date(2025, 12, 1))) == (
        [], [(dt.date(2025, 3, 1), dt.date(2025, 12, 1))])
    for a, b in ((dt.date(2024, 11, 1), dt.date(2026, 12, 31)), (dt.date(2024, 11, 15), dt.date(2026, 3, 20)),
                 (dt.date(2025, 3, 1), dt.date(2026, 4, 9)), (dt.date(2025, 1, 1), dt.date(2025, 12, 31))):
        for dim in ("source", "keyword", "operator", "ttc"):
            plain = sorted(map(tuple, session.execute(queries._sums(flt(a, b), dim)).all()))
            fast = sorted(map(tuple, session.execute(queries._sums(flt(a, b), dim, session)).all()))
            assert [r[:6] for r in plain] == [r[:6] for r in fast], (a, b, dim)
            assert [[round(float(x), 2) for x in r[6:]] for r in plain] == \
                [[round(float(x), 2) for x in r[6:]] for r in fast], (a, b, dim)


def test_rollups_without_year_rows_are_read_by_month_then_rebuilt(session):
    d = _two_years(session)
    f = queries.ReportFilter(d["project"], dt.date(2024, 11, 1), dt.date(2026, 12, 31))
    before = sorted(map(tuple, session.execute(queries._sums(f, "source", session)).all()))
    session.execute(delete(ReportDaily).where(ReportDaily.dim.like("%@y")))
    session.commit()
    months, _ = queries.rollup_range(session, f)
    assert ranges.split_years(session, f, months) == ([], [months])     # meanwhile: monthly rows
    assert sorted(map(tuple, session.execute(queries._sums(f, "source", session)).all())) == before
    assert refresh_rollups(session) > 0                     # a build from scratch, not an increment
    assert _rows(session, "@y") == _year_sums_of_months(session)
