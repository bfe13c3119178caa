"""Automatic sources: a tagged visit no source names gets ``<utm_source> / <utm_medium>``; merge
and rename keep later visits where the admin put them (both databases)."""
from __future__ import annotations

import datetime as dt
import json
import threading
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from calltracking import hooks
from calltracking import sources as auto
from calltracking.attribution import fast, lookup
from calltracking.db import session_scope
from calltracking.dni import assign as dni
from calltracking.dni import projects
from calltracking.dni.request import parse_request
from calltracking.hooks import inputs
from calltracking.models import (
    AdSpend, AuditLog, Call, Campaign, Project, Source, SourceAlias, TrackingNumber, VisitorSession,
)
from calltracking.reports import queries
from calltracking.reports.rollup import refresh_rollups
from support.config import make_config
from support.dni import make_project
from support.report_data import add_call
from support.web import UA

T0 = dt.datetime(2026, 3, 4, 9, 0, tzinfo=dt.timezone.utc)
YANDEX = {"utm_source": "Yandex", "utm_medium": "CPC"}


@pytest.fixture
def acme(session_factory):
    return make_project(session_factory)


def req(visitor="", **fields):
    return parse_request({"project": "acme", "visitor_id": visitor or None, **fields}, UA, "203.0.113.7")


def session_source(factory, session_id):
    with session_scope(factory) as s:
        return s.get(VisitorSession, session_id).source_id


def auto_sources(factory):
    with session_scope(factory) as s:
        return [(x.name, x.channel, x.short_label) for x in
                s.scalars(select(Source).where(Source.auto.is_(True)).order_by(Source.name))]


@pytest.mark.parametrize("medium, channel", [
    ("cpc", "ads"), ("PPC", "ads"), ("display", "ads"), ("organic", "search"), ("social", "social"),
    ("paid_social", "social"), ("email", "email"), ("newsletter", "email"), ("referral", "referral"),
    ("", "direct"), ("(none)", "direct"), ("qr-flyer", "other"),
])
def test_channel_from_medium(medium, channel):
    assert auto.channel_for(medium) == channel


def test_which_visits_are_tagged():
    assert auto.visit_key({"utm_source": " Yandex ", "utm_medium": "CPC"}) == ("yandex", "cpc")
    assert auto.visit_key({"utm_source": "vk"}) == ("vk", "(none)")
    assert auto.visit_key({"gclid": "abc"}) == ("google", "cpc")
    assert auto.visit_key({"yclid": "123"}) == ("yandex", "cpc")
    assert auto.visit_key({"referrer": "https://example.org/x"}) is None
    assert auto.visit_key({}) is None
    assert auto.auto_name(("yandex", "cpc")) == "yandex / cpc"
    assert len(auto.auto_name(("x" * 200, "y" * 200))) <= 200


def test_tagged_visit_gets_an_automatic_source_on_both_paths(session_factory, acme):
    engine = session_factory.kw["bind"]
    first = dni.assign(session_factory, req(**YANDEX), T0)          # creates it (general path)
    assert first.kind == "pool"
    sid = session_source(session_factory, first.session_id)
    assert sid is not None
    assert auto_sources(session_factory) == [("yandex / cpc", "ads", "yandex")]
    # The next new visitor with the same tags takes the batched path, with the same source.
    info = projects.project_info(engine, "acme")
    plan = dni.prepare(engine, req(utm_source="yandex", utm_medium="cpc"), info, T0)
    assert plan.fast is not None and plan.source_id == sid and plan.auto is None
    second = dni.assign(session_factory, req(utm_source="yandex", utm_medium="cpc"), T0)
    assert session_source(session_factory, second.session_id) == sid
    # A fresh process (empty cache) reads the alias from the database.
    projects.invalidate_cache()
    third = dni.assign(session_factory, req(utm_source="YANDEX", utm_medium="cpc"), T0)
    assert session_source(session_factory, third.session_id) == sid
    # A known visitor coming back with new tags: the general path, a second automatic source.
    back = dni.assign(session_factory, req(first.visitor_id, utm_source="vk", utm_medium="social"),
                      T0 + dt.timedelta(minutes=5))
    assert back.number == first.number and back.session_id != first.session_id
    vk = session_source(session_factory, back.session_id)
    assert vk not in (None, sid)
    # A configured source's name or label wins; click ids name their engine; untagged: no source.
    g = dni.assign(session_factory, req(utm_source="Google", utm_medium="cpc"), T0)
    assert session_source(session_factory, g.session_id) == acme["google"]
    gclid = dni.assign(session_factory, req(gclid="Cj0KCQ"), T0)
    assert session_source(session_factory, gclid.session_id) == acme["google"]
    plain = dni.assign(session_factory, req(referrer="https://example.org/"), T0)
    assert session_source(session_factory, plain.session_id) is None
    assert [n for n, _, _ in auto_sources(session_factory)] == ["vk / social", "yandex / cpc"]
    with session_scope(session_factory) as s:
        assert s.scalar(select(func.count()).select_from(SourceAlias)) == 2


def test_concurrent_first_visits_make_one_source(session_factory, acme):
    errors, results = [], []
    start = threading.Barrier(8)

    def visit():
        try:
            start.wait()
            results.append(dni.assign(session_factory, req(utm_source="facebook", utm_medium="paid_social"), T0))
        except Exception as e:      # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=visit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 8
    assert auto_sources(session_factory) == [("facebook / paid_social", "social", "facebook")]
    ids = {session_source(session_factory, r.session_id) for r in results}
    assert len(ids) == 1 and None not in ids


def test_resolve_twice_and_the_cap(session_factory, acme, monkeypatch):
    engine = session_factory.kw["bind"]
    with engine.begin() as conn:
        a = auto.resolve(conn, acme["project"], ("bing", "cpc"))
    with engine.begin() as conn:
        assert auto.resolve(conn, acme["project"], ("bing", "cpc")) == a
    monkeypatch.setattr(auto, "MAX_AUTO", 1)
    with engine.begin() as conn:
        assert auto.resolve(conn, acme["project"], ("spam", "cpc")) is None
    assert [n for n, _, _ in auto_sources(session_factory)] == ["bing / cpc"]


def test_a_pool_call_lands_in_the_automatic_source_row(db_url, session_factory, acme):
    """The FastAGI path and the ORM path give the call the visit's automatic source; the source
    report shows it by name."""
    visit = dni.assign(session_factory, req(**YANDEX), T0)
    at = T0 + dt.timedelta(minutes=3)
    env = hooks.HookEnv(make_config(db_url), session_factory, clock=lambda: at)
    s = session_factory()
    try:
        ref = lookup.attribute(s, visit.number, at, "RU")
        cat = env.cache.catalogue(s.connection(), None)
        info = cat.number(*inputs.dialled(visit.number, "RU"))
        got = fast.attribute_number(s.connection(), info, at)
    finally:
        s.close()
    assert ref.kind == got.kind == "dynamic"
    assert ref.source_id == got.source_id == session_source(session_factory, visit.session_id)
    assert ref.source.name == "yandex / cpc"
    _, row = hooks.plan_route(env, visit.number, "L-auto-1")
    assert row["source_id"] == ref.source_id
    with session_scope(session_factory) as s:
        p = s.get(Project, acme["project"])
        add_call(s, p, at, source=s.get(Source, ref.source_id))
    with session_scope(session_factory) as s:
        refresh_rollups(s, full=True)
        p = s.get(Project, acme["project"])
        rep = queries.by_attribute(s, queries.ReportFilter(p, dt.date(2026, 3, 1), dt.date(2026, 3, 31)), "source")
    assert [(r[1], r[2]) for r in rep.rows] == [("yandex / cpc", 1)]


def _yandex_with_history(factory, acme):
    """An automatic ``yandex / cpc`` with a visit, a call, a campaign and spend; Google Ads with
    spend the same day and a campaign of the same name. Returns the automatic source's id."""
    visit = dni.assign(factory, req(**YANDEX), T0)
    y = session_source(factory, visit.session_id)
    with session_scope(factory) as s:
        p = s.get(Project, acme["project"])
        add_call(s, p, T0 + dt.timedelta(minutes=2), source=s.get(Source, y))
        s.add(Campaign(project_id=p.id, source_id=y, name="Brand", utm_campaign=""))
        s.add(AdSpend(project_id=p.id, source_id=y, day=dt.date(2026, 3, 4), amount=Decimal("100.00")))
        s.add(AdSpend(project_id=p.id, source_id=acme["google"], day=dt.date(2026, 3, 4), amount=Decimal("50.00")))
        s.add(AdSpend(project_id=p.id, source_id=y, day=dt.date(2026, 3, 5), amount=Decimal("7.00")))
    return y, visit


def test_merge_moves_everything_and_later_visits_follow(session_factory, acme):
    y, visit = _yandex_with_history(session_factory, acme)
    with session_scope(session_factory) as s:
        refresh_rollups(s, full=True)
    with session_scope(session_factory) as s:
        moved = auto.merge(s, s.get(Source, y), s.get(Source, acme["google"]))
    assert (moved["calls"], moved["visits"], moved["from"], moved["into"]) == (1, 1, "yandex / cpc", "Google Ads")
    with session_scope(session_factory) as s:
        assert s.get(Source, y) is None
        assert s.get(VisitorSession, visit.session_id).source_id == acme["google"]
        assert s.scalar(select(func.count()).select_from(Call).where(Call.source_id == acme["google"])) == 1
        assert sorted(s.scalars(select(Campaign.name).where(Campaign.source_id == acme["google"]))) == [
            "Brand", "Brand (yandex / cpc)"]
        spend = sorted((r.day.day, r.amount) for r in s.scalars(select(AdSpend)))
        assert spend == [(4, Decimal("150.00")), (5, Decimal("7.00"))]
        refresh_rollups(s)
        p = s.get(Project, acme["project"])
        rep = queries.by_attribute(s, queries.ReportFilter(p, dt.date(2026, 3, 1), dt.date(2026, 3, 31)), "source")
        assert [(r[1], r[2]) for r in rep.rows] == [("Google Ads", 1)]
    # The next visit with the same tags, fresh cache or not, batched path or general: Google Ads.
    projects.invalidate_cache()
    for _ in range(2):
        again = dni.assign(session_factory, req(**YANDEX), T0 + dt.timedelta(hours=1))
        assert session_source(session_factory, again.session_id) == acme["google"]
    assert auto_sources(session_factory) == []


def test_merge_refuses_itself_and_other_projects(session_factory, acme):
    make_project(session_factory, key="other", base=74950003000)
    with session_scope(session_factory) as s:
        g = s.get(Source, acme["google"])
        with pytest.raises(auto.SourceError, match="itself"):
            auto.merge(s, g, g)
        other = s.scalars(select(Source).join(Project).where(Project.key == "other",
                                                              Source.name == "Billboard")).one()
        with pytest.raises(auto.SourceError, match="same project"):
            auto.merge(s, g, other)


def test_merging_a_configured_source_keeps_its_tags(session_factory, acme):
    """Billboard (label ``billboard``) merged into Google Ads: ``utm_source=billboard`` goes there."""
    with session_scope(session_factory) as s:
        auto.merge(s, s.get(Source, acme["billboard"]), s.get(Source, acme["google"]))
        assert s.scalars(select(TrackingNumber.source_id).where(TrackingNumber.number == "+74950001001")).one() \
            == acme["google"]
    projects.invalidate_cache()
    v = dni.assign(session_factory, req(utm_source="Billboard", utm_medium="offline"), T0)
    assert session_source(session_factory, v.session_id) == acme["google"]
    assert auto_sources(session_factory) == []


def test_rename_keeps_later_visits(session_factory, acme):
    visit = dni.assign(session_factory, req(**YANDEX), T0)
    y = session_source(session_factory, visit.session_id)
    with session_scope(session_factory) as s:
        assert auto.rename(s, s.get(Source, y), "Yandex Direct") == {"from": "yandex / cpc", "to": "Yandex Direct"}
        assert auto.rename(s, s.get(Source, acme["billboard"]), "Outdoor")["from"] == "Billboard"
        with pytest.raises(auto.SourceError, match="merge"):
            auto.rename(s, s.get(Source, acme["google"]), "Outdoor")
    projects.invalidate_cache()
    again = dni.assign(session_factory, req(**YANDEX), T0 + dt.timedelta(hours=1))
    assert session_source(session_factory, again.session_id) == y
    bb = dni.assign(session_factory, req(utm_source="billboard"), T0)
    assert session_source(session_factory, bb.session_id) == acme["billboard"]
    with session_scope(session_factory) as s:
        assert s.get(Source, y).name == "Yandex Direct"
        assert s.scalar(select(func.count()).select_from(Source)) == 3


def test_cli_merge_and_rename_with_audit(run_cli, session_factory, acme):
    y, _ = _yandex_with_history(session_factory, acme)
    listed = json.loads(run_cli("sources", "list", "acme", "--format", "json").stdout)
    assert {(r["name"], r["auto"]) for r in listed} >= {("yandex / cpc", True), ("Google Ads", False)}
    res = run_cli("sources", "rename", "acme", "yandex / cpc", "Yandex Direct")
    assert "renamed to 'Yandex Direct'" in res.output
    res = run_cli("sources", "merge", "acme", "Yandex Direct", "Google Ads")
    assert "1 calls, 1 visits moved" in res.output
    bad = run_cli("sources", "merge", "acme", "Google Ads", "Google Ads", ok=False)
    assert bad.exit_code == 1 and "itself" in bad.output
    with session_scope(session_factory) as s:
        rows = s.scalars(select(AuditLog).where(AuditLog.entity == "sources").order_by(AuditLog.id)).all()
        assert [(r.action, r.entity_id) for r in rows] == [("rename", str(y)), ("merge", str(acme["google"]))]
        assert rows[0].username.startswith("cli:")
        assert json.loads(rows[1].details)["calls"] == 1
        assert s.get(Source, y) is None


@pytest.fixture
def web(db_url, session_factory, acme):
    from calltracking import entities as svc
    from support.web import PASSWORD, login
    from webui import create_app

    with session_scope(session_factory) as s:
        svc.add_user(s, "admin", PASSWORD, "admin")
        svc.add_user(s, "adminru", PASSWORD, "admin", language="ru")
        svc.add_user(s, "super", PASSWORD, "supervisor")
    app = create_app(make_config(db_url), session_factory, testing=True)
    app.config["WTF_CSRF_ENABLED"] = False

    def client(user):
        c = app.test_client()
        assert login(c, user).status_code == 302
        return c
    return client


def test_settings_page_merges_and_renames_with_audit(web, session_factory, acme):
    y, _ = _yandex_with_history(session_factory, acme)
    admin = web("admin")
    page = admin.get("/settings/sources").get_data(as_text=True)
    assert "yandex / cpc" in page and "Automatic" in page and "/settings/sources/merge" in page
    assert web("super").get("/settings/sources/merge").status_code == 403
    # Rename through the edit form: the old name of a configured source stays an alias.
    r = admin.post(f"/settings/sources/{acme['billboard']}",
                   data={"name": "Outdoor", "channel": "offline", "short_label": "outdoor"})
    assert r.status_code == 302
    r = admin.post("/settings/sources/merge", data={"source_id": str(y), "into_id": str(acme["google"])},
                   follow_redirects=True)
    assert r.status_code == 200 and "1 calls and 1 visits moved" in r.get_data(as_text=True)
    bad = admin.post("/settings/sources/merge", data={"source_id": str(acme["google"]),
                                                      "into_id": str(acme["google"])})
    assert bad.status_code == 400 and "cannot be merged into itself" in bad.get_data(as_text=True)
    ru = web("adminru").post("/settings/sources/merge", data={"source_id": str(acme["google"]),
                                                              "into_id": str(acme["google"])})
    assert ru.status_code == 400 and "нельзя объединить с самим собой" in ru.get_data(as_text=True)
    assert "Объединить источники" in ru.get_data(as_text=True)
    with session_scope(session_factory) as s:
        assert s.get(Source, y) is None
        rows = s.scalars(select(AuditLog).where(AuditLog.entity == "sources").order_by(AuditLog.id)).all()
        assert [(r.action, r.username) for r in rows] == [("update", "admin"), ("merge", "admin")]
        assert json.loads(rows[1].details)["from"] == "yandex / cpc"
    projects.invalidate_cache()
    for tags, want in ((YANDEX, acme["google"]), ({"utm_source": "billboard"}, acme["billboard"])):
        v = dni.assign(session_factory, req(**tags), T0 + dt.timedelta(hours=2))
        assert session_source(session_factory, v.session_id) == want


def test_hostile_tags_are_inert_in_pages_and_csv(web, session_factory, acme):
    evil = '=HYPERLINK("http://evil.example/")<script>alert(1)</script>'
    v = dni.assign(session_factory, req(utm_source=evil, utm_medium="cpc"), T0)
    sid = session_source(session_factory, v.session_id)
    with session_scope(session_factory) as s:
        name = s.get(Source, sid).name
        assert name.startswith('=hyperlink("http://evil.example/")<script>') and name.endswith(" / cpc")
        add_call(s, s.get(Project, acme["project"]), T0 + dt.timedelta(minutes=1), source=s.get(Source, sid))
    admin = web("admin")
    for url in ("/settings/sources", "/settings/sources/merge"):
        page = admin.get(url).get_data(as_text=True)
        assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    csv_text = admin.get(f"/reports/sources.csv?project={acme['project']}&from=2026-03-01&to=2026-03-31"
                         ).get_data(as_text=True)
    assert "'=hyperlink(" in csv_text and "\n=hyperlink" not in csv_text.replace(";", "\n").replace(",", "\n")


@pytest.mark.browser
def test_merge_in_chromium_at_390px_in_russian(db_url, session_factory, acme):
    """An admin merges the automatic source from the page, on a phone, in Russian."""
    from playwright.sync_api import sync_playwright

    from calltracking import entities as svc
    from support.browser import ARGS, CHROMIUM, log_in
    from support.web import PASSWORD, LiveServer

    y, _ = _yandex_with_history(session_factory, acme)
    with session_scope(session_factory) as s:
        svc.add_user(s, "adminru", PASSWORD, "admin", language="ru")
    live = LiveServer(db_url, session_factory)
    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = b.new_page(viewport={"width": 390, "height": 800})
            log_in(page, live.url, "adminru", PASSWORD)
            page.goto(live.url + "/settings/sources")
            page.click("text=Объединить источники")
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            page.select_option("select[name=source_id]", str(y))
            page.select_option("select[name=into_id]", str(acme["google"]))
            page.click("#merge-form button[type=submit]")
            page.wait_for_url(lambda u: u.endswith("/settings/sources"), timeout=10_000)
            assert "объединён с Google Ads" in page.inner_text("body")
            assert "yandex / cpc" not in page.inner_text("#entity-list")
            b.close()
    finally:
        live.close()
    with session_scope(session_factory) as s:
        assert s.get(Source, y) is None
