"""Report pages around the figures: date presets, the previous period and the change, the
totals row, all projects; the keyword "(not set)" row, drill-down titles and the way back,
the daily chart's today (Flask's test client over real SQLite/PostgreSQL)."""
from __future__ import annotations

import datetime as dt
import html as htmllib
import json
import re

import pytest
from sqlalchemy import select

from calltracking import entities as svc
from calltracking.config import load_config
from calltracking.models import Project, Source, User
from calltracking.reports import figures, queries
from support import report_data as D

RANGE = {"from": "2026-03-01", "to": "2026-03-31"}
d = dt.date


# --- pure: presets, previous period, totals, change, the cut axis -------------------

def test_presets_and_previous_period():
    today = d(2026, 3, 15)
    assert figures.preset_range("today", today) == (today, today)
    assert figures.preset_range("yesterday", today) == (d(2026, 3, 14), d(2026, 3, 14))
    assert figures.preset_range("7d", today) == (d(2026, 3, 9), today)
    assert figures.preset_range("30d", today) == (d(2026, 2, 14), today)
    assert figures.preset_range("this_month", today) == (d(2026, 3, 1), today)
    assert figures.preset_range("last_month", d(2026, 1, 10)) == (d(2025, 12, 1), d(2025, 12, 31))
    assert figures.preset_range("nope", today) is None
    assert figures.preset_of(d(2026, 3, 9), today, today) == "7d"
    assert figures.previous_period(d(2026, 3, 9), d(2026, 3, 15)) == (d(2026, 3, 2), d(2026, 3, 8))
    assert figures.previous_period(d(2026, 3, 1), d(2026, 3, 31)) == (d(2026, 2, 1), d(2026, 2, 28))
    assert figures.previous_period(d(2026, 1, 1), d(2026, 3, 31)) == (d(2025, 10, 1), d(2025, 12, 31))


def test_totals_weighted_averages_costs_and_change():
    cols = ["key", "name", "calls", "answered", "missed", "avg_wait", "avg_talk", "spend", "cost_per_call"]
    rows = [["1", "a", 3, 2, 1, 20.0, 150.0, 210.0, 70.0], ["2", "b", 1, 1, 0, 40.0, 300.0, None, None]]
    tot = figures.totals("sources", cols, rows)
    assert tot == [None, None, 4, 3, 1, 25.0, 200.0, 210.0, 52.5]
    assert figures.totals("heatmap", ["weekday"], []) is None
    dev = figures.totals("devices", ["kind", "name", "calls", "answered"],
                         [["device", "mobile", 2, 1], ["os", "Android", 2, 1], ["browser", "x", 2, 1]])
    assert dev == [None, None, 2, 1]                                   # each call once, not per kind
    ch = figures.change([None, 4, 25.0, 0], [None, 2, 50.0, 0])
    assert ch == [None, (2, 100.0), (-25.0, -50.0), (0, None)]
    assert figures.change(None, [1]) is None


def test_a_dominant_bar_cuts_the_axis_above_the_second():
    assert figures.cap_dominant([2128, 300, 120]) == {"y_max": 376, "clipped": {"0": 2128}}
    assert figures.cap_dominant([500, 300, 120]) == {}
    assert figures.cap_dominant([10]) == {} and figures.cap_dominant([5, 0]) == {}


# --- through the web UI ---------------------------------------------------------------

@pytest.fixture
def app(db_url, session_factory, tmp_path):
    from webui import create_app

    cfg = load_config(tmp_path / "none.ini", env={"CALLTRACKING_DATABASE_URL": db_url}, require_file=False)
    with session_factory() as s:
        data = D.build(s)
        svc.add_user(s, "sup1", "password1", "supervisor")
        s.commit()
        pid, gid, oid = data["project"].id, data["google"].id, data["boris"].id
    app = create_app(cfg, session_factory, testing=True)
    app.ct = {"project": pid, "google": gid, "boris": oid}
    return app


@pytest.fixture
def sup(app):
    from webui.auth import _fingerprint

    client = app.test_client()
    with app.extensions["calltracking"]["sessionmaker"]() as s:
        user = s.scalars(select(User).where(User.username == "sup1")).one()
        uid, fp = user.id, _fingerprint(user)
    with client.session_transaction() as sess:
        sess["uid"], sess["fp"], sess["lang"] = uid, fp, "en"
    return client


def q(app, **extra):
    return {"project": app.ct["project"], **RANGE, **extra}


def chart_of(html: str) -> dict:
    return json.loads(html.split('id="report-chart-data">', 1)[1].split("</script>", 1)[0])


def row_cells(html: str, row_id: str) -> list[str]:
    tr = html.split(f'id="{row_id}">', 1)[1].split("</tr>", 1)[0]
    return [htmllib.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr, re.S)]


def test_keyword_not_set_row_drills_to_its_calls_and_has_a_bar_label(app, sup):
    html = sup.get("/reports/keywords", query_string=q(app)).get_data(as_text=True)
    assert "(not set)" in chart_of(html)["labels"]
    link = re.search(r'href="(/reports/drill/keyword\?[^"]*key=(?:&|&amp;)[^"]*)"', html)
    assert link, "the (not set) row links to its calls"
    drill = sup.get(htmllib.unescape(link.group(1))).get_data(as_text=True)
    assert "No calls in this period" not in drill
    assert drill.count("/calls/") == 2                                 # the two calls without a keyword


def test_drill_titles_show_names_and_link_back_to_the_report(app, sup):
    src = sup.get("/reports/drill/source", query_string=q(app, key=app.ct["google"], report="sources"))
    page = src.get_data(as_text=True)
    title = page.split('id="drill-title">', 1)[1].split("</h1>", 1)[0]
    assert "«Google Ads»" in htmllib.unescape(title) and str(app.ct["google"]) not in title
    back = htmllib.unescape(re.search(r'href="([^"]+)" id="drill-back"', page).group(1))
    assert back.startswith("/reports/sources?") and "from=2026-03-01" in back and "to=2026-03-31" in back
    assert f"project={app.ct['project']}" in back
    op = sup.get("/reports/drill/operator", query_string=q(app, key=app.ct["boris"])).get_data(as_text=True)
    assert "«Boris»" in htmllib.unescape(op.split('id="drill-title">', 1)[1].split("</h1>", 1)[0])
    assert 'href="/reports/operators?' in op
    with app.extensions["calltracking"]["sessionmaker"]() as s:
        from calltracking.models import Campaign

        cid = s.scalars(select(Campaign.id)).one()
    camp = sup.get("/reports/drill/campaign", query_string=q(app, key=cid)).get_data(as_text=True)
    assert "«Google Ads / brand»" in htmllib.unescape(camp.split('id="drill-title">', 1)[1].split("</h1>", 1)[0])
    assert 'href="/reports/campaigns?' in camp
    hostile = sup.get("/reports/drill/keyword", query_string=q(app, key=D.HOSTILE)).get_data(as_text=True)
    assert "<script>alert(1)" not in hostile


def test_daily_chart_marks_today_as_so_far_and_keeps_series_keys(app, sup):
    with app.extensions["calltracking"]["sessionmaker"]() as s:
        p = s.get(Project, app.ct["project"])
        today = queries.today_in(p)
        from calltracking.reports.rollup import day_bounds, zone

        now = max(dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1),
                  day_bounds(zone(p), today)[0] + dt.timedelta(seconds=1))
        D.add_call(s, p, now.replace(tzinfo=None).isoformat(sep=" ", timespec="seconds"), wait=5, talk=10)
        s.commit()
    rng = {"from": (today - dt.timedelta(days=3)).isoformat(), "to": (today + dt.timedelta(days=2)).isoformat()}
    chart = chart_of(sup.get("/reports/daily", query_string={"project": app.ct["project"], **rng})
                     .get_data(as_text=True))
    assert chart["partial"] == 3 and "so far" in chart["labels"][3]
    series = {ds["key"]: ds["data"] for ds in chart["datasets"]}
    assert set(series) == {"calls", "answered", "missed"}
    assert series["answered"][3] >= 1                                   # counted so far, not 0
    assert series["calls"][4] is None and series["calls"][5] is None    # days to come: no figure
    page = sup.get("/reports/daily", query_string={"project": app.ct["project"], **rng}).get_data(as_text=True)
    tr = page.split('<tr class="partial"', 1)[1].split("</tr>", 1)[0]
    assert re.sub(r"<[^>]+>|\s+", " ", tr.split("<td>", 1)[1]).split()[:3] == [today.isoformat(), "(so", "far)"]


def test_preset_sets_the_range(app, sup):
    with app.extensions["calltracking"]["sessionmaker"]() as s:
        today = queries.today_in(s.get(Project, app.ct["project"]))
    html = sup.get("/reports/sources", query_string={"project": app.ct["project"], "period": "yesterday"}
                   ).get_data(as_text=True)
    y = (today - dt.timedelta(days=1)).isoformat()
    assert f'name="from" value="{y}"' in html and f'name="to" value="{y}"' in html
    assert 'data-preset="yesterday"' in html and 'aria-pressed="true"' in html


def test_totals_row_and_comparison_with_the_previous_period(app, sup):
    html = sup.get("/reports/sources", query_string=q(app)).get_data(as_text=True)
    tot = row_cells(html, "totals-row")
    assert tot[0] == "Total" and tot[1] == "4"                          # calls: 3 Google + 1 hostile
    assert 'id="change-row"' not in html
    with app.extensions["calltracking"]["sessionmaker"]() as s:        # February: one call
        p = s.get(Project, app.ct["project"])
        D.add_call(s, p, "2026-02-10 15:00:00", source=s.get(Source, app.ct["google"]))
        s.commit()
    html = sup.get("/reports/sources", query_string=q(app, compare="1")).get_data(as_text=True)
    prev, change = row_cells(html, "previous-row"), row_cells(html, "change-row")
    assert "Previous period" in prev[0] and prev[1] == "1"
    assert change[1].startswith("+3") and "+300" in change[1]          # 4 against 1: +3 (+300 %)
    assert "compare=1" in html.split('class="subnav reports-nav"', 1)[1].split("</nav>", 1)[0]
    daily = sup.get("/reports/daily", query_string=q(app, compare="1")).get_data(as_text=True)
    assert row_cells(daily, "totals-row")[1] == "4" and row_cells(daily, "previous-row")[1] == "1"


def test_all_projects_sums_every_project(app, sup):
    html = sup.get("/reports/sources", query_string=q(app)).get_data(as_text=True)
    assert 'value="all"' not in html                                   # one project: no choice
    with app.extensions["calltracking"]["sessionmaker"]() as s:
        other = Project(key="beta", name="Beta", timezone="Europe/Moscow")
        s.add(other)
        s.flush()
        src = Source(project_id=other.id, name="Yandex", channel="ads")
        s.add(src)
        s.flush()
        D.add_call(s, other, "2026-03-05 09:00:00", source=src)
        D.add_call(s, other, "2026-03-06 09:00:00", status="missed", source=src)
        s.commit()
    html = sup.get("/reports/sources", query_string=dict(RANGE, project="all")).get_data(as_text=True)
    assert re.search(r'<option value="all"\s+selected', html)
    assert row_cells(html, "totals-row")[1] == "6" and "Yandex" in html and "Google Ads" in html
    one = sup.get("/reports/sources", query_string=q(app)).get_data(as_text=True)
    assert row_cells(one, "totals-row")[1] == "4" and "Yandex" not in one
    for name in queries.REPORTS:
        page = sup.get(f"/reports/{name}", query_string=dict(RANGE, project="all", compare="1"))
        assert page.status_code == 200, name
    drill = sup.get("/reports/drill/source", query_string={**RANGE, "project": "all", "key": ""})
    assert drill.status_code == 200
    csv_resp = sup.get("/reports/sources.csv", query_string=dict(RANGE, project="all"))
    assert "_all_" in csv_resp.headers["Content-Disposition"] and "Yandex" in csv_resp.get_data(as_text=True)


def test_russian_labels(app, sup):
    with sup.session_transaction() as sess:
        sess["lang"] = "ru"
    html = sup.get("/reports/sources", query_string=q(app, compare="1")).get_data(as_text=True)
    for text in ("Итого", "Предыдущий период", "Изменение", "Сегодня", "Прошлый месяц",
                 "Сравнить с предыдущим периодом"):
        assert text in html, text
    drill = sup.get("/reports/drill/source", query_string=q(app, key=app.ct["google"])).get_data(as_text=True)
    assert "Назад к отчёту" in drill


def test_a_dominant_not_set_bar_does_not_flatten_the_others(app, sup):
    with app.extensions["calltracking"]["sessionmaker"]() as s:
        p = s.get(Project, app.ct["project"])
        for k in range(10):
            D.add_call(s, p, f"2026-03-{5 + k:02d} 15:00:00")           # no visit: no keyword
        s.commit()
    chart = chart_of(sup.get("/reports/keywords", query_string=q(app)).get_data(as_text=True))
    assert chart["labels"][0] == "(not set) (12, bar cut)"
    assert chart["y_max"] == 2 and chart["clipped"] == {"0": 12}       # the other bars: 1 call each
    sources = chart_of(sup.get("/reports/sources", query_string=q(app)).get_data(as_text=True))
    assert "y_max" in sources and "(not set) (10, bar cut)" in sources["labels"]


def test_previous_totals_of_keywords_equal_the_full_report_totals(app):
    """The comparison reads the keyword totals from the "all" rollup rows: same figures."""
    from calltracking.reports import compare
    from calltracking.reports.rollup import refresh_rollups

    with app.extensions["calltracking"]["sessionmaker"]() as s:
        refresh_rollups(s)
        p = s.get(Project, app.ct["project"])
        f = queries.ReportFilter(p, d(2026, 4, 1), d(2026, 4, 30))          # previous: March
        prev, fast = compare.previous_totals(s, "keywords", f)
        full = queries.run_report(s, "keywords", prev)
        assert (prev.date_from, prev.date_to) == (d(2026, 3, 1), d(2026, 3, 31))
        assert fast == figures.totals("keywords", full.columns, full.rows) and fast[2] == 4
        assert compare.previous_totals(s, "heatmap", f)[1] is None
        empty = compare.previous_totals(s, "keywords", queries.ReportFilter(p, d(2025, 4, 1), d(2025, 4, 30)))
        assert empty[1] == figures.totals("keywords", full.columns, [])
