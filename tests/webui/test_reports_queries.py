"""Report queries and rollup maintenance over known data (no web app)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from calltracking.reports import queries
from calltracking.models import Call, ReportDaily, ReportHourly
from calltracking.reports.rollup import peak_per_hour, refresh_rollups, rebuild_rollups, ttc_bucket
from support import report_data as D


MARCH = (dt.date(2026, 3, 1), dt.date(2026, 3, 31))


@pytest.fixture
def data(session):
    d = D.build(session)
    assert refresh_rollups(session) > 0
    return d


def flt(d, a=MARCH[0], b=MARCH[1]):
    return queries.ReportFilter(d["project"], a, b)


def by_name(report):
    return {r["name"]: r for r in report.as_dicts()}


def test_sources_counts_averages_and_cost_per_call(session, data):
    rows = by_name(queries.by_attribute(session, flt(data), "source"))
    g = rows["Google Ads"]
    assert (g["calls"], g["answered"], g["missed"], g["first"], g["repeat"]) == (3, 2, 1, 2, 1)
    assert g["avg_wait"] == 20.0 and g["avg_talk"] == 150.0
    assert g["deals"] == 1 and g["value"] == 1000.0
    assert g["spend"] == 210.0 and g["cost_per_call"] == 70.0   # 150 source-level + 60 campaign
    assert g["cost_per_deal"] == 210.0                          # one deal
    h = rows[D.HOSTILE]
    assert (h["calls"], h["avg_wait"], h["avg_talk"], h["spend"], h["cost_per_call"]) == (1, 40.0, 300.0, None, None)
    assert h["cost_per_deal"] is None
    assert sum(r["calls"] for r in rows.values()) == 4          # the call in progress is not counted


def test_campaigns_and_keywords(session, data):
    camp = by_name(queries.by_attribute(session, flt(data), "campaign"))
    assert camp["Google Ads / brand"]["calls"] == 2
    assert camp["Google Ads / brand"]["cost_per_call"] == 30.0
    assert camp[""]["calls"] == 2 and camp[""]["cost_per_call"] is None
    kw = by_name(queries.by_attribute(session, flt(data), "keyword"))
    assert kw["buy widgets"]["calls"] == 1 and kw[D.HOSTILE]["calls"] == 1 and kw[""]["calls"] == 2
    with pytest.raises(queries.ReportError):
        queries.by_attribute(session, flt(data), "nope")


def test_date_range_is_in_project_time_zone(session, data):
    # the 02:30 UTC call on 3 March is 2 March 21:30 in New York
    one_day = by_name(queries.by_attribute(session, flt(data, dt.date(2026, 3, 2), dt.date(2026, 3, 2)), "source"))
    assert one_day[D.HOSTILE]["calls"] == 1
    assert queries.by_attribute(session, flt(data, dt.date(2026, 3, 3), dt.date(2026, 3, 3)), "source").rows == []
    spend_april = queries.by_attribute(session, flt(data, dt.date(2026, 4, 1), dt.date(2026, 4, 1)), "source")
    assert spend_april.rows == []      # spend without calls gives no row (no division by zero)
    with pytest.raises(queries.ReportError):
        queries.ReportFilter(data["project"], dt.date(2026, 3, 5), dt.date(2026, 3, 1))


def test_daily_trend_zero_fills(session, data):
    rep = queries.daily_trend(session, flt(data, dt.date(2026, 3, 1), dt.date(2026, 3, 3)))
    assert [r[:4] for r in rep.rows] == [["2026-03-01", 0, 0, 0], ["2026-03-02", 4, 3, 1],
                                         ["2026-03-03", 0, 0, 0]]
    assert rep.chart["labels"] == ["2026-03-01", "2026-03-02", "2026-03-03"]


def test_heatmap_cell_in_non_utc_zone(session, data):
    rep = queries.heatmap(session, flt(data))
    mon = rep.rows[0]
    assert mon[0] == "Mon"
    assert mon[1 + 10] == 3            # 15:00 UTC = 10:00 EST
    assert mon[1 + 21] == 1            # 02:30 UTC Tuesday = 21:30 Monday in New York
    assert mon[1 + 15] == 0
    assert sum(rep.rows[1][1:]) == 0   # nothing on Tuesday
    cell = [c for c in rep.chart["datasets"][0]["data"] if c["x"] == 10 and c["y"] == "Mon"]
    assert cell == [{"x": 10, "y": "Mon", "v": 3}]


def test_operators(session, data):
    rows = by_name(queries.operators(session, flt(data)))
    assert rows["Anna"]["taken"] == 2 and rows["Anna"]["missed_rung"] == 1
    assert rows["Anna"]["avg_talk"] == 150.0 and rows["Anna"]["avg_wait"] == 15.0
    assert rows["Boris"]["taken"] == 1 and rows["Boris"]["missed_rung"] == 2
    assert rows["Boris"]["avg_wait"] == 40.0


def test_time_to_call_devices_and_concurrency(session, data):
    ttc = {r[0]: r[1] for r in queries.time_to_call(session, flt(data)).rows}
    assert ttc["<1m"] == 1 and ttc["1-5m"] == 1 and sum(ttc.values()) == 2
    dev = {(r[0], r[1]): r[2] for r in queries.devices(session, flt(data)).rows}
    assert dev == {("device", "mobile"): 1, ("device", "desktop"): 1, ("os", "Android"): 1,
                   ("os", "Windows"): 1, ("browser", "Chrome"): 1, ("browser", "Firefox"): 1}
    conc = {r[0]: r[1] for r in queries.peak_concurrency(session, flt(data)).rows}
    assert conc["10:00"] == 2 and conc["21:00"] == 1 and conc["11:00"] == 0


def test_every_registered_report_runs(session, data):
    for name in queries.REPORTS:
        rep = queries.run_report(session, name, flt(data))
        assert rep.columns and isinstance(rep.rows, list) and rep.chart["datasets"]
    with pytest.raises(queries.ReportError):
        queries.run_report(session, "nope", flt(data))


def test_incremental_refresh_sees_new_and_changed_calls(session, data):
    p, g = data["project"], data["google"]
    assert refresh_rollups(session) == 0 or True   # nothing new (margin may recompute a day)
    D.add_call(session, p, "2026-03-05 16:00:00", wait=5, talk=50, source=g, value="20")
    session.commit()
    assert refresh_rollups(session) >= 1
    g_row = by_name(queries.by_attribute(session, flt(data), "source"))["Google Ads"]
    assert g_row["calls"] == 4 and g_row["value"] == 1020.0
    # a call in progress finishes: it appears; a value is edited: it changes
    live = session.scalars(select(Call).where(Call.status == "in_progress")).one()
    live.status, live.answered_at = "answered", live.started_at + dt.timedelta(seconds=3)
    live.ended_at = live.started_at + dt.timedelta(seconds=33)
    live.wait_seconds, live.talk_seconds = Decimal(3), Decimal(30)
    session.commit()
    refresh_rollups(session)
    assert by_name(queries.by_attribute(session, flt(data), "source"))["Google Ads"]["calls"] == 5
    # the same state rebuilt from scratch gives the same rollups
    before = sorted(tuple(r) for r in session.execute(select(ReportDaily.dim, ReportDaily.day, ReportDaily.key,
                                                             ReportDaily.calls, ReportDaily.wait_sum)))
    rebuild_rollups(session)
    session.commit()
    after = sorted(tuple(r) for r in session.execute(select(ReportDaily.dim, ReportDaily.day, ReportDaily.key,
                                                            ReportDaily.calls, ReportDaily.wait_sum)))
    assert before == after
    assert session.scalar(select(func.count()).select_from(ReportHourly)) > 0


def test_drilldown_keyset_pages(session, data):
    f, g = flt(data), data["google"]
    page1 = queries.drilldown(session, f, "source", str(g.id), limit=2)
    assert len(page1) == 2 and page1[0].started_at > page1[1].started_at
    page2 = queries.drilldown(session, f, "source", str(g.id), limit=2,
                        before=(page1[-1].started_at, page1[-1].id))
    assert len(page2) == 1 and page2[0].id not in {c.id for c in page1}
    assert len(queries.drilldown(session, f, "keyword", D.HOSTILE)) == 1
    assert len(queries.drilldown(session, f, "campaign", "")) == 2
    assert len(queries.drilldown(session, f, "operator", str(data["anna"].id))) == 2


def test_live_snapshot(session, data):
    now = D.t("2026-03-10 12:01:30")
    snap = queries.live_snapshot(session, data["project"], now=now)
    assert snap["today"]["calls"] == 1 and snap["today"]["in_progress"] == 1
    assert snap["in_progress"][0]["seconds"] == 90 and snap["in_progress"][0]["source"] == "Google Ads"
    assert snap["in_progress"][0]["started"] == "08:00:00"   # EDT after 8 March


def test_live_counters_agree_with_the_daily_report(session, data):
    """The dashboard's counters (SQL over ``calls``) and the daily report (the rollup, counted in
    Python) count a day's finished calls by the same rules."""
    tz = queries.zone(data["project"])
    days = [r for r in queries.daily_trend(session, flt(data)).as_dicts() if r["calls"]]
    assert days
    for r in days:
        end = queries.day_bounds(tz, dt.date.fromisoformat(r["day"]))[1]
        today = queries.live_snapshot(session, data["project"], now=end - dt.timedelta(seconds=1))["today"]
        assert (today["calls"] - today["in_progress"], today["answered"], today["missed"], today["first"],
                today["avg_wait"]) == (r["calls"], r["answered"], r["missed"], r["first"], r["avg_wait"]), r["day"]


def test_pure_helpers():
    t = D.t
    b = [t("2026-01-01 10:00:00"), t("2026-01-01 11:00:00"), t("2026-01-01 12:00:00")]
    spans = [(t("2026-01-01 09:59:00"), t("2026-01-01 10:10:00")),
             (t("2026-01-01 10:05:00"), t("2026-01-01 10:06:00")),
             (t("2026-01-01 10:10:00"), t("2026-01-01 10:20:00")),   # starts as the first ends
             (t("2026-01-01 11:30:00"), t("2026-01-01 11:31:00"))]
    assert peak_per_hour(spans, b) == [2, 1]
    assert [ttc_bucket(s) for s in (0, 59.9, 60, 899, 3600 * 30, 86400 * 30)] == \
        ["<1m", "<1m", "1-5m", "5-15m", "1-7d", ">7d"]
    with pytest.raises(queries.ReportError):
        queries.parse_date("2026-13-01", dt.date.today())


def test_split_range_and_monthly_rows_agree_with_daily(session, data):
    d = dt.date
    assert queries.split_range(d(2026, 3, 5), d(2026, 3, 20)) == (None, [(d(2026, 3, 5), d(2026, 3, 20))])
    assert queries.split_range(d(2026, 3, 1), d(2026, 3, 31)) == ((d(2026, 3, 1), d(2026, 3, 1)), [])
    assert queries.split_range(d(2026, 1, 15), d(2026, 4, 2)) == (
        (d(2026, 2, 1), d(2026, 3, 1)), [(d(2026, 1, 15), d(2026, 1, 31)), (d(2026, 4, 1), d(2026, 4, 2))])
    assert queries.split_range(d(2024, 2, 1), d(2024, 2, 29)) == ((d(2024, 2, 1), d(2024, 2, 1)), [])
    # monthly rows exist and a range made of a whole month + edges gives the same totals
    assert session.scalar(select(func.count()).select_from(ReportDaily)
                          .where(ReportDaily.dim == "source@m")) == 2
    whole = by_name(queries.by_attribute(session, flt(data, d(2026, 2, 20), d(2026, 4, 3)), "source"))
    days_only = by_name(queries.by_attribute(session, flt(data, d(2026, 3, 2), d(2026, 3, 2)), "source"))
    assert {k: v["calls"] for k, v in whole.items()} == {k: v["calls"] for k, v in days_only.items()}
    assert whole["Google Ads"]["spend"] == 1209.0       # includes the 1 April spend
    dev = queries.devices(session, flt(data, d(2026, 2, 20), d(2026, 4, 3))).rows
    assert sum(r[2] for r in dev if r[0] == "device") == 2


def test_first_build_of_a_big_database_is_left_to_the_scheduler(session, monkeypatch):
    from calltracking.reports import rollup as reports_rollup

    d = D.build(session)
    monkeypatch.setattr(reports_rollup, "FULL_BUILD_LIMIT", 2)     # "big": more than 2 calls
    assert refresh_rollups(session, allow_full=False) == -1
    assert session.scalar(select(func.count()).select_from(ReportDaily)) == 0
    assert refresh_rollups(session) > 0                             # what the scheduler does
    assert refresh_rollups(session, allow_full=False) >= 0          # then increments are fine
    assert by_name(queries.by_attribute(session, flt(d), "source"))["Google Ads"]["calls"] == 3


def test_month_rows_stay_equal_to_the_sum_of_day_rows(session, data):
    """Incremental refreshes apply deltas to the @m rows; a from-scratch month sum must agree."""
    from calltracking.reports.rollup import recompute_month

    p, g, h = data["project"], data["google"], data["hostile"]
    D.add_call(session, p, "2026-03-01 06:00:00", wait=3, talk=30, source=h)     # 1 March local = month start
    D.add_call(session, p, "2026-03-20 16:00:00", status="missed", wait=9, source=g)
    session.commit()
    refresh_rollups(session)
    c = session.scalars(select(Call).where(Call.source_id == g.id, Call.status == "missed")).first()
    c.source_id = h.id                                                       # re-attributed later
    session.commit()
    refresh_rollups(session)

    def month_rows():
        return sorted((r.dim, r.key, r.calls, r.answered, float(r.wait_sum), r.missed_rung)
                      for r in session.scalars(select(ReportDaily).where(ReportDaily.dim.like("%@m")))
                      if r.calls or r.missed_rung)
    incremental = month_rows()
    recompute_month(session, p.id, dt.date(2026, 3, 1))
    session.commit()
    assert incremental == month_rows()
    src = {k: n for dim, k, n, *_ in incremental if dim == "source@m"}
    assert src == {str(g.id): 3, str(h.id): 3}


def test_partial_months_read_from_monthly_rows_only_when_exact(session, data):
    d = dt.date
    # March's finished calls are all on the 2nd (project time)
    assert queries.rollup_range(session, flt(data, d(2026, 3, 2), d(2026, 3, 20))) == (
        (d(2026, 3, 1), d(2026, 3, 1)), [])                      # nothing else in March: widened
    assert queries.rollup_range(session, flt(data, d(2026, 3, 3), d(2026, 3, 31))) == (
        None, [(d(2026, 3, 3), d(2026, 3, 31))])                 # the 2nd is outside: kept daily
    assert queries.rollup_range(session, flt(data, d(2026, 3, 1), d(2026, 3, 1))) == (
        None, [(d(2026, 3, 1), d(2026, 3, 1))])
    assert queries.rollup_range(session, flt(data, d(2026, 2, 20), d(2026, 3, 2))) == (
        None, [(d(2026, 2, 20), d(2026, 3, 2))])                  # spans two months: daily
    assert queries.rollup_range(session, flt(data, d(2026, 1, 20), d(2026, 3, 2))) == (
        (d(2026, 1, 1), d(2026, 3, 1)), [])                      # both partial months widened
    for a, b in ((d(2026, 3, 2), d(2026, 3, 20)), (d(2026, 3, 3), d(2026, 3, 31)),
                 (d(2026, 2, 20), d(2026, 3, 2)), (d(2026, 1, 5), d(2026, 4, 9))):
        for dim in ("source", "keyword", "operator", "ttc"):
            plain = sorted(map(tuple, session.execute(queries._sums(flt(data, a, b), dim)).all()))
            fast = sorted(map(tuple, session.execute(queries._sums(flt(data, a, b), dim, session)).all()))
            assert plain == fast, (a, b, dim)
    only_3rd = by_name(queries.by_attribute(session, flt(data, d(2026, 3, 3), d(2026, 3, 31)), "source"))
    assert sum(r["calls"] for r in only_3rd.values()) == 0


def test_refresh_stops_recomputing_once_calls_written_together_have_settled(session, data):
    """Calls written within seconds (a demo, an import): after one refresh has seen them
    and the safety margin has passed, a refresh recomputes nothing (reports read the rollups)."""
    from calltracking.models import utcnow

    p, g = data["project"], data["google"]
    for k in range(5):
        D.add_call(session, p, f"2026-03-{10 + k:02d} 12:00:00", source=g)
    session.commit()
    t0 = utcnow()
    assert refresh_rollups(session, now=t0 + dt.timedelta(seconds=1)) >= 5
    assert refresh_rollups(session, now=t0 + dt.timedelta(seconds=15)) >= 5   # inside the margin: re-read
    assert refresh_rollups(session, now=t0 + dt.timedelta(seconds=30)) == 0
    assert refresh_rollups(session, now=t0 + dt.timedelta(seconds=31)) == 0
    late = D.add_call(session, p, "2026-03-20 12:00:00", source=g)          # a new call is still seen
    late.updated_at = t0 + dt.timedelta(seconds=31)                         # (written "then")
    session.commit()
    assert refresh_rollups(session, now=t0 + dt.timedelta(seconds=32)) == 1
    assert by_name(queries.by_attribute(session, flt(data), "source"))["Google Ads"]["calls"] == 9


def test_keyword_not_set_drills_down_to_the_calls_without_a_keyword(session, data):
    rows = queries.by_attribute(session, flt(data), "keyword").as_dicts()
    not_set = next(r for r in rows if r["key"] == "")
    calls = queries.drilldown(session, flt(data), "keyword", "", limit=1000)
    assert not_set["calls"] > 0 and len(calls) == not_set["calls"]
    for r in rows:
        if r["key"]:
            assert len(queries.drilldown(session, flt(data), "keyword", r["key"], limit=1000)) == r["calls"]
