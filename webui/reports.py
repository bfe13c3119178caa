"""Reports (chart + table + CSV per report), drill-downs, and the live dashboard (SSE).

Thin adapter over :mod:`calltracking.reports.queries`: parse the filter (project, local
date range), make sure the rollups are current, render. Chart data goes to the
page as JSON through ``|tojson`` in a non-executed ``<script type="application/json">``
block and is drawn by ``static/reports.js`` with the vendored Chart.js.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import threading
import time

from flask import Blueprint, Response, abort, current_app, render_template, request, stream_with_context
from flask_babel import gettext as _, lazy_gettext as _l
from sqlalchemy import select

from calltracking.reports import compare, figures, queries
from calltracking.db import write_scope
from calltracking.models import Project
from calltracking.reports.rollup import refresh_rollups

from webui import csvexport, dateinput, labels
from webui import display
from webui.auth import roles_required
from webui.context import chosen_project, db, ext

log = logging.getLogger(__name__)
bp = Blueprint("reports", __name__)
ROLES = ("admin", "supervisor")
DEFAULT_DAYS = 30
ALL_PROJECTS = "all"        # ?project=all: every project summed (shown when there are several)
# The dashboard page polls /dashboard/snapshot.json (ETag, 304 while nothing changes): a poll
# holds a WSGI thread for milliseconds, so any number of tabs share the server's threads and a
# closed tab costs nothing. /dashboard/stream (SSE) stays for wallboards and scripts.
POLL_INTERVAL = 2.0         # seconds between the dashboard page's polls
SSE_INTERVAL = 1.0          # seconds between dashboard checks
SSE_MAX_SECONDS = 120       # a stream ends after this; the browser reconnects by itself
# Each open stream holds one WSGI worker thread: at most a quarter of them stream at
# once; a browser turned away (503) polls /dashboard/snapshot.json instead.
_streams_lock = threading.Lock()
_streams_open = [0]

HEATMAPS = ("heatmap", "missed_heatmap")
TITLES = {
    "sources": _l("By source"), "campaigns": _l("By campaign"), "keywords": _l("By keyword"),
    "daily": _l("Daily trend"), "heatmap": _l("Hour × weekday"),
    "missed_heatmap": _l("Missed calls: hour × weekday"), "operators": _l("Operators"),
    "first_repeat": _l("First and repeat calls"),
    "time_to_call": _l("Time to call"), "devices": _l("Devices, OS and browsers"),
    "concurrency": _l("Peak concurrent calls"), "callbacks": _l("Callback requests"),
}
COLUMN_TITLES = {
    "name": _l("Name"), "calls": _l("Calls"), "answered": _l("Answered"), "missed": _l("Missed"),
    "first": _l("First"), "repeat": _l("Repeat"), "avg_wait": _l("Avg wait, s"),
    "avg_talk": _l("Avg talk, s"), "deals": _l("Deals"), "value": _l("Value"), "spend": _l("Spend"),
    "cost_per_call": _l("Cost per call"), "cost_per_deal": _l("Cost per deal"), "day": _l("Day"), "weekday": _l("Weekday"),
    "taken": _l("Calls taken"), "missed_rung": _l("Missed while rung"), "bucket": _l("Time to call"),
    "kind": _l("Kind"), "hour": _l("Hour"), "peak": _l("Peak"), "avg_daily_peak": _l("Avg daily peak"),
    "avg_peak": _l("Avg daily peak"),
    "offered": _l("Offered"), "answer_rate": _l("Answer rate, %"), "first_share": _l("First calls, %"),
    "targets": _l("Target calls"),
    "requests": _l("Callback requests"), "calls_made": _l("Calls made"), "reached": _l("Reached"),
    "reach_rate": _l("Reached, %"), "median_to_connected": _l("Median time to connected call, s"), "cost_per_target": _l("Cost per target call"),
}
DRILL = {"sources": "source", "campaigns": "campaign", "keywords": "keyword", "operators": "operator",
         "first_repeat": "source"}

DRILL_BACK = {"source": "sources", "campaign": "campaigns", "keyword": "keywords", "operator": "operators"}


def _projects():
    return db().scalars(select(Project).order_by(Project.name, Project.id)).all()


def _filter():
    """(ReportFilter or None, projects, error) from the query string."""
    projects = _projects()
    if not projects:
        return None, projects, _("No project yet: add one in the settings.")
    pid = request.args.get("project", "")
    project = next((p for p in projects if str(p.id) == pid), projects[0])
    several = tuple(projects) if pid == ALL_PROJECTS and len(projects) > 1 else ()
    today = queries.today_in(project)
    try:
        preset = figures.preset_range(request.args.get("period", ""), today)
        if preset:
            frm, to = preset
        else:           # typed in the user's language, or ISO (webui/dateinput.py)
            to = dateinput.parse(request.args.get("to")) or today
            frm = dateinput.parse(request.args.get("from")) or to - dt.timedelta(days=DEFAULT_DAYS - 1)
        return queries.ReportFilter(project, frm, to, several), projects, None
    except (queries.ReportError, dateinput.DateInputError) as e:
        return None, projects, str(e)


def _comparison(name, f, rep) -> dict:
    """The totals row, and with ``compare=1`` the previous period's totals and the change."""
    total = figures.totals(name, rep.columns, rep.rows)
    out = {"totals": total, "previous": None, "change": None, "prev_range": None}
    if total is not None and request.args.get("compare") == "1":
        prev_f, out["previous"] = compare.previous_totals(db(), name, f)
        out["change"] = figures.change(total, out["previous"])
        out["prev_range"] = (prev_f.date_from, prev_f.date_to)
    return out


def _chart_labels(name, rep) -> None:
    """Translated series names (``key`` keeps the series for its colour), a label for the
    "(not set)" bar, today's point marked as so far, a cut bar's label with its real total."""
    for ds in rep.chart.get("datasets", []):
        ds["key"] = ds["label"]
        ds["label"] = str(COLUMN_TITLES.get(ds["label"], ds["label"]))
    names = rep.chart.get("labels")
    if not names or rep.chart.get("type") == "matrix":
        return
    if name in DRILL:
        rep.chart["labels"] = names = [lbl if lbl != "" else _("(not set)") for lbl in names]
    for i, total in rep.chart.get("clipped", {}).items():
        names[int(i)] = _("%(label)s (%(total)s, bar cut)", label=names[int(i)],
                          total=display.fmt_number(total))
    if "partial" in rep.chart:
        i = rep.chart["partial"]
        names[i] = _("%(day)s (so far)", day=names[i])


def _refresh() -> bool:
    """Bring the rollups up to date (cheap when nothing changed); never fail the page.
    False while a first build of a big database is left to the scheduler. The refresh
    writes: in its own transaction, which takes SQLite's write lock first (a GET's session
    is deferred); the request's read snapshot ends before, so the page reads the result."""
    db().commit()
    try:
        with write_scope(ext()["sessionmaker"]) as s:
            return refresh_rollups(s, allow_full=False) >= 0
    except Exception:  # the scheduler will catch up; the page shows what is there
        log.exception("report rollup refresh failed")
        return True


def _args(f) -> dict:
    out = {"project": ALL_PROJECTS if f.projects else f.project.id,
           "from": f.date_from.isoformat(), "to": f.date_to.isoformat()}
    if request.args.get("compare") == "1":
        out["compare"] = "1"
    return out


@bp.route("/reports")
@roles_required(*ROLES)
def index():
    f, projects, error = _filter()
    return render_template("reports/index.html", titles=TITLES, f=f, projects=projects, error=error,
                           args=_args(f) if f else {}, name=None)


@bp.route("/reports/<name>")
@roles_required(*ROLES)
def report(name):
    if name not in queries.REPORTS:
        abort(404)
    f, projects, error = _filter()
    rep, building = None, False
    if f is not None:
        building = not _refresh()
        rep = queries.run_report(db(), name, f)
    talk = []
    if rep is not None and name == "operators" and not f.projects:
        from calltracking.jobs.recording_audio import operator_talk_stats

        talk = operator_talk_stats(db(), f.project.id, *f.utc_range)
    cmp = {}
    if rep is not None:
        labels.localize_report(name, rep, dates=True)
        _chart_labels(name, rep)
        cmp = _comparison(name, f, rep)
    return render_template("reports/report.html", name=name, title=TITLES[name], titles=TITLES,
                           cmp=cmp, compare=request.args.get("compare") == "1",
                           f=f, projects=projects, error=error, rep=rep, building=building,
                           args=_args(f) if f else {}, drill=DRILL.get(name),
                           column_titles=COLUMN_TITLES, talk=talk,
                           heat_max=max([max(r[1:]) for r in rep.rows] + [1]) if name in HEATMAPS and rep else 1)


@bp.route("/reports/<name>.csv")
@roles_required(*ROLES)
def export(name):
    if name not in queries.REPORTS:
        abort(404)
    f, _projects_, error = _filter()
    if f is None:
        return Response((error or "no project") + "\n", status=400, mimetype="text/plain")
    _refresh()
    rep = queries.run_report(db(), name, f)
    labels.localize_report(name, rep)
    buf = io.StringIO()
    buf.write(csvexport.BOM)
    w = csvexport.writer(buf)
    w.writerow(csvexport.titles(rep.columns, COLUMN_TITLES))
    w.writerows([csvexport.number(v) for v in row] for row in rep.rows)
    if rep.rows:                              # the page's totals and comparison, under the table
        w.writerows(csvexport.report_footer(rep.columns, _comparison(name, f, rep)))
    if name == "operators" and not f.projects:  # the page's "Recorded conversations" table, below
        w.writerows(_talk_rows(f))
    fname = f"{name}_{ALL_PROJECTS if f.projects else f.project.key}_{f.date_from}_{f.date_to}.csv"
    return Response(buf.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{fname}"'})


TALK_COLUMNS = (("operator", _l("Operator")), ("calls", _l("Calls measured")),
                ("talk_ratio", _l("Operator's share of talk, %")),
                ("avg_longest_silence", _l("Avg longest silence, s")),
                ("max_longest_silence", _l("Longest silence, s")),
                ("interruptions_per_call", _l("Interruptions per call")),
                ("avg_first_word", _l("Avg time to first word, s")))


def _talk_rows(f) -> list[list]:
    """The conversation measures per operator for the CSV: an empty row, a title row, the header,
    one row per operator (talk share in percent; figures rounded as on the page)."""
    from calltracking.jobs.recording_audio import operator_talk_stats

    talk = operator_talk_stats(db(), f.project.id, *f.utc_range)
    if not talk:
        return []
    rows = [[], [_("Recorded conversations")], [str(t) for _k, t in TALK_COLUMNS]]
    for t in talk:
        cells = []
        for k, _t in TALK_COLUMNS:
            v = t[k]
            if k == "operator":
                v = v or _("(not set)")
            elif k == "talk_ratio" and v is not None:
                v = round(v * 100, 1)
            elif isinstance(v, float):
                v = round(v, 2)
            cells.append(csvexport.number(v))
        rows.append(cells)
    return rows


@bp.route("/reports/drill/<dim>")
@roles_required(*ROLES)
def drill(dim):
    if dim not in queries.DRILL_DIMS:
        abort(404)
    f, projects, error = _filter()
    calls, next_args = [], None
    key = request.args.get("key", "")
    if f is not None:
        before = None
        if request.args.get("before"):
            try:
                ts, _sep, cid = request.args["before"].partition("|")
                before = (dt.datetime.fromisoformat(ts), int(cid))
                if before[0].tzinfo is None:
                    raise ValueError
            except ValueError:
                abort(400)
        calls = queries.drilldown(db(), f, dim, key, limit=50, before=before)
        if len(calls) == 50:
            last = calls[-1]
            next_args = dict(_args(f), key=key,
                             before=f"{last.started_at.isoformat()}|{last.id}")
    back = request.args.get("report") if request.args.get("report") in DRILL else DRILL_BACK[dim]
    return render_template("reports/drill.html", dim=dim, key=key, f=f, projects=projects,
                           error=error, calls=calls, next_args=next_args, titles=TITLES,
                           args=_args(f) if f else {}, back=back, back_title=TITLES[back],
                           label=queries.drill_label(db(), dim, key) if f else key)


@bp.route("/dashboard")
@roles_required(*ROLES)
def dashboard():
    projects = _projects()
    project = chosen_project(projects)
    snap = queries.live_snapshot(db(), project) if project else None
    return render_template("reports/dashboard.html", projects=projects, project=project, snap=snap,
                           poll_ms=int(1000 * current_app.config.get("REPORTS_POLL_INTERVAL", POLL_INTERVAL)))


@bp.route("/dashboard/snapshot.json")
@roles_required(*ROLES)
def snapshot():
    """The live figures, polled by the dashboard page. The ETag covers the facts (counters and
    calls in progress), not the clock nor the running durations, which the page advances by
    itself: while nothing happens a poll with ``If-None-Match`` answers 304 with no body."""
    project = _one_project()
    snap = queries.live_snapshot(db(), project)
    facts = {"today": snap["today"], "calls": [{k: v for k, v in c.items() if k != "seconds"}
                                               for c in snap["in_progress"]]}
    resp = current_app.response_class(json.dumps(snap), mimetype="application/json")
    resp.set_etag(hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()[:32])
    resp.headers["Cache-Control"] = "no-cache"
    return resp.make_conditional(request)


def _one_project() -> Project:
    project = chosen_project(_projects())
    if project is None:
        abort(404)
    return project


@bp.route("/dashboard/stream")
@roles_required(*ROLES)
def stream():
    """Server-Sent Events: a ``snapshot`` event whenever the live figures change
    (checked every second), a comment line as keep-alive otherwise."""
    project_id = _one_project().id
    db().close()            # hold no connection while the stream is open
    factory = ext()["sessionmaker"]
    interval = current_app.config.get("REPORTS_SSE_INTERVAL", SSE_INTERVAL)
    limit = current_app.config.get("REPORTS_SSE_MAX_SECONDS", SSE_MAX_SECONDS)
    max_streams = current_app.config.get("REPORTS_SSE_MAX_STREAMS",
                                         max(1, int(ext()["config"].web.threads) // 4))
    with _streams_lock:
        if _streams_open[0] >= max_streams:
            return Response("too many live streams; poll /dashboard/snapshot.json\n", status=503,
                            mimetype="text/plain", headers={"Retry-After": "30"})
        _streams_open[0] += 1

    def events():
        try:
            yield "retry: 2000\n\n"
            last, started, quiet = None, time.monotonic(), 0
            while time.monotonic() - started < limit:
                s = factory()
                try:
                    snap = queries.live_snapshot(s, s.get(Project, project_id))
                finally:
                    s.close()
                body = json.dumps({k: v for k, v in snap.items() if k != "now"}, sort_keys=True)
                if body != last:
                    last, quiet = body, 0
                    yield f"event: snapshot\ndata: {json.dumps(snap)}\n\n"
                else:
                    quiet += 1
                    if quiet * interval >= 15:
                        quiet = 0
                        yield ": keep-alive\n\n"
                time.sleep(interval)
        finally:
            with _streams_lock:
                _streams_open[0] -= 1

    return Response(stream_with_context(events()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
